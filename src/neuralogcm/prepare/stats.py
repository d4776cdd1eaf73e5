"""Per-channel normalisation statistics over the training years (paper Appendix A.2).

``neuralogcm stats --config C --data-dir DATA --out DATA/stats.nc`` writes ``mean`` and ``std``
along ``channel`` = ocean_channel_names(L) + u10, v10, t2m, msl (4 L + 5 entries) with a bool
coordinate ``periodic``. The periodic channels (S, T, SSH) are reduced as anomalies from the
day-of-year climatology (:func:`~neuralogcm.dates.day_index`), U and V and the
forcing as they are. Each statistic is the plain (unweighted) NaN-aware mean / population std
over every ocean (finite) value of the channel on every training day: over time, lat and lon.
Dask reduces one-day chunks in float64, so the training years are never loaded at once.

A channel whose std is degenerate stops the run (DataError naming it): zero, below
:data:`MIN_STD` of its variable, or below :data:`MIN_RELATIVE_STD` of the spread of the field
itself (for an anomaly: of the field before the climatology is removed). Normalising by such a
std turns rounding noise into values of order one (one training year: std about 1e-4).
"""

from __future__ import annotations

import argparse
import logging
import warnings
from pathlib import Path

import dask
import numpy as np
import xarray as xr

from neuralogcm import config as config_mod
from neuralogcm.channels import CF, FORCING, OCEAN_2D, OCEAN_3D, PERIODIC, ocean_channel_names
from neuralogcm.dates import day_index
from neuralogcm.errors import DataError
from neuralogcm.io import atomic_path
from neuralogcm.prepare.climatology import select_years
from neuralogcm.prepare.store import open_store

log = logging.getLogger(__name__)

#: Smallest meaningful std per variable, in its units (about the packing resolution of the
#: sources: GLORYS12 int16 packing 3e-4..1.5e-3, ERA5 GRIB 16-bit packing).
MIN_STD = {"so": 1e-4, "uo": 1e-5, "vo": 1e-5, "thetao": 1e-4, "zos": 1e-5,
           "u10": 1e-4, "v10": 1e-4, "t2m": 1e-4, "msl": 1e-2}

#: Smallest std of a channel as a fraction of the std of the field itself (before the
#: climatology is removed); real anomalies keep a few percent of it at least.
MIN_RELATIVE_STD = 1e-3


def anomalies(x: xr.DataArray, climatology: xr.DataArray) -> xr.DataArray:
    """``x`` (time, ...) minus the climatology of each day, one dask task per time chunk.

    Each task reads only the climatology days of its own chunk (``climatology`` may be lazy
    zarr without dask), so nothing is gathered or rechunked across the years.
    """
    doy = day_index(x.time.values)

    def subtract(block: np.ndarray, block_info=None) -> np.ndarray:
        start, stop = block_info[0]["array-location"][0]
        return block - climatology.isel(dayofyear=doy[start:stop]).values.astype(np.float64)

    data = x.data.astype(np.float64).map_blocks(subtract, dtype=np.float64)
    return x.copy(data=data)


def channel_fields(ocean: xr.Dataset, forcing: xr.Dataset,
                   climatology: xr.Dataset) -> list[tuple[str, xr.DataArray]]:
    """(variable, float64 field) pairs in channel order; periodic fields as anomalies.

    3-D fields keep their ``depth`` dim (one channel per level), the others are one channel.
    """
    fields = []
    for var in OCEAN_3D + OCEAN_2D:
        x = ocean[var].astype(np.float64)
        fields.append((var, anomalies(x, climatology[var]) if var in PERIODIC else x))
    fields += [(var, forcing[var].astype(np.float64)) for var in FORCING]
    return fields


def compute_stats(ocean: xr.Dataset, forcing: xr.Dataset, climatology: xr.Dataset,
                  years: list[int]) -> xr.Dataset:
    """mean and std (channel,) over ``years``, computed out of core in one dask pass."""
    ocean = select_years(ocean, years)
    forcing = select_years(forcing, years)
    n_levels = ocean.sizes["depth"]
    lazy = []
    for var, x in channel_fields(ocean, forcing, climatology):
        dims = [d for d in x.dims if d != "depth"]
        field = ocean[var].astype(np.float64) if var in PERIODIC else None
        lazy += [x.mean(dims, skipna=True), x.std(dims, skipna=True),
                 (x if field is None else field).std(dims, skipna=True)]
    with warnings.catch_warnings():  # an all-land channel gives NaN: reported below
        warnings.simplefilter("ignore", RuntimeWarning)
        computed = dask.compute(*lazy)
    means, stds, spreads = (np.concatenate([np.atleast_1d(c.values) for c in computed[k::3]])
                            for k in range(3))

    names = ocean_channel_names(n_levels) + list(FORCING)
    variables = [name.rsplit("_", 1)[0] for name in names]
    periodic = np.array([var in PERIODIC for var in variables])
    empty = [n for n, m in zip(names, means, strict=True) if not np.isfinite(m)]
    if empty:
        raise DataError(f"channels {empty} have no ocean value in the training years "
                        f"{years[0]}-{years[-1]}: they cannot be normalised")
    degenerate = [f"{n} (std {s:.3g} {CF[v]['units']}, the field's own {f:.3g})"
                  for n, v, s, f in zip(names, variables, stds, spreads, strict=True)
                  if not (s >= MIN_STD[v] and s >= MIN_RELATIVE_STD * f)]
    if degenerate:
        hint = (" (with a single training year the anomalies from its own climatology are "
                "nearly zero: configure at least two)") if len(years) == 1 else ""
        raise DataError(f"channels {', '.join(degenerate)} have a degenerate spread in the "
                        f"training years {years[0]}-{years[-1]} (below the floor MIN_STD or "
                        f"{MIN_RELATIVE_STD:g} of the field's): they cannot be normalised{hint}")
    units = [CF[var]["units"] for var in variables]
    return xr.Dataset(
        {"mean": ("channel", means, {"long_name": "mean over the training years "
                                                  "(anomaly w.r.t. the climatology if periodic)"}),
         "std": ("channel", stds, {"long_name": "population standard deviation over the "
                                                "training years (of the anomaly if periodic)"})},
        coords={"channel": ("channel", names),
                "periodic": ("channel", periodic, {"long_name": "channel is an anomaly"}),
                "units": ("channel", units)},
        attrs={"training_years": f"{years[0]}-{years[-1]}",
               "comment": "unweighted NaN-aware statistics over time, lat, lon per channel"},
    )


def cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="resolved config (YAML or JSON)")
    parser.add_argument("--data-dir", required=True, type=Path,
                        help="folder with ocean.zarr, forcing.zarr, climatology.zarr")
    parser.add_argument("--out", required=True, type=Path, help="stats.nc to write")


def cli_main(args: argparse.Namespace) -> None:
    cfg = config_mod.load(args.config)
    years = cfg.data.years.split("train")
    stats = compute_stats(open_store(args.data_dir / "ocean.zarr"),
                          open_store(args.data_dir / "forcing.zarr"),
                          open_store(args.data_dir / "climatology.zarr", dask=False), years)
    stats.attrs["config_digest"] = cfg.digest()
    with atomic_path(args.out) as tmp:
        stats.to_netcdf(tmp, engine="netcdf4")
    log.info("wrote %s (%d channels)", args.out, stats.sizes["channel"])
