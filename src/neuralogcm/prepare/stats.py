"""Per-channel normalisation statistics over the training years (paper Appendix A.2).

``neuralogcm stats --config C --data-dir DATA --out DATA/stats.nc`` writes ``mean`` and ``std``
along ``channel`` = ocean_channel_names(L) + u10, v10, t2m, msl (4 L + 5 entries) with a bool
coordinate ``periodic``. The periodic channels (S, T, SSH) are reduced as anomalies from the
day-of-year climatology (:func:`~neuralogcm.prepare.climatology.day_index`), U and V and the
forcing as they are. Each statistic is the plain (unweighted) NaN-aware mean / population std
over every ocean (finite) value of the channel on every training day: over time, lat and lon.
Dask reduces one-day chunks in float64, so the training years are never loaded at once.
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
from neuralogcm.errors import DataError
from neuralogcm.io import atomic_path
from neuralogcm.prepare.climatology import day_index, select_years
from neuralogcm.prepare.store import open_store

log = logging.getLogger(__name__)


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
    for _, x in channel_fields(ocean, forcing, climatology):
        dims = [d for d in x.dims if d != "depth"]
        lazy += [x.mean(dims, skipna=True), x.std(dims, skipna=True)]
    with warnings.catch_warnings():  # an all-land channel gives NaN: reported below
        warnings.simplefilter("ignore", RuntimeWarning)
        computed = dask.compute(*lazy)
    means = np.concatenate([np.atleast_1d(m.values) for m in computed[0::2]])
    stds = np.concatenate([np.atleast_1d(s.values) for s in computed[1::2]])

    names = ocean_channel_names(n_levels) + list(FORCING)
    periodic = np.array([name.rsplit("_", 1)[0] in PERIODIC for name in names])
    bad = [n for n, m, s in zip(names, means, stds, strict=True) if not (np.isfinite(m) and s > 0)]
    if bad:
        hint = (" (with a single training year the anomalies from its own climatology are all "
                "zero: configure at least two)") if len(years) == 1 else ""
        raise DataError(f"channels {bad} have no ocean value or no variance in the training "
                        f"years {years[0]}-{years[-1]}: they cannot be normalised{hint}")
    units = [CF[name.rsplit("_", 1)[0]]["units"] for name in names]
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
