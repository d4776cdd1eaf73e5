"""Assemble the regridded years into data/ocean.zarr, data/forcing.zarr and data/mask.nc.

``neuralogcm assemble --config C --ocean Z... --forcing Z... --out-dir DATA`` concatenates the
interim/{glorys,era5}/{year}.zarr stores along time with dask (nothing is loaded at once; the
paper's stores are about 100 GB), checks that ocean and forcing cover every day of the
configured years, derives the land-sea mask (ocean where thetao is finite on every day), sets
land to NaN in every ocean variable, and writes float32 stores with one chunk per day, CF
attributes and provenance attributes (source, dataset id, config digest, package version).
"""

from __future__ import annotations

import argparse
import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

import neuralogcm
from neuralogcm import config as config_mod
from neuralogcm.channels import CF, FORCING, OCEAN, OCEAN_2D, OCEAN_3D
from neuralogcm.dates import format_dates
from neuralogcm.errors import DataError
from neuralogcm.grid import Grid
from neuralogcm.io import atomic_path

log = logging.getLogger(__name__)

PROVENANCE = ("source", "dataset_id")  # attributes the regrid step sets on every interim store
DEPTH_ATTRS = {"units": "m", "positive": "down", "standard_name": "depth", "axis": "Z"}
STEP_DIMS = ("time", "dayofyear")  # the dims stored one step per zarr chunk
TASK_BYTES = 64 * 2**20  # about this much data per dask task when reading or writing stores


def open_store(path: str | Path, dask: bool = True) -> xr.Dataset:
    """Open a zarr store lazily: dask chunks of :func:`steps_per_task` days (zarr's are one
    day), or with ``dask=False`` lazily indexed arrays that read what is indexed.

    Raises DataError naming the path if it is missing or not a readable store.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist")
    try:
        layout = xr.open_zarr(path, chunks=None)
        if not dask:
            return layout
        step = next((d for d in STEP_DIMS if d in layout.dims), None)
        return xr.open_zarr(path, chunks={step: steps_per_task(layout)} if step else {})
    except Exception as err:  # zarr raises many kinds for a damaged store
        raise DataError(f"{path} is not a readable zarr store: {err}") from err


def steps_per_task(ds: xr.Dataset) -> int:
    """How many time steps (days) of ``ds`` make about :data:`TASK_BYTES` for one dask task."""
    step = next((d for d in STEP_DIMS if d in ds.dims), None)
    if step is None:
        return 1
    per_step = max(var.dtype.itemsize * var.size // ds.sizes[step]
                   for var in ds.data_vars.values() if step in var.dims)
    return max(1, TASK_BYTES // max(per_step, 1))


def write_store(ds: xr.Dataset, path: str | Path, **to_zarr) -> None:
    """Write ``ds`` as float32 zarr at ``path`` atomically, one zarr chunk per time step.

    Dask writes :func:`steps_per_task` steps per task. Extra keyword arguments go to
    :meth:`xarray.Dataset.to_zarr` (e.g. ``compute=False`` to write only the layout of a store
    whose days are filled in later by region writes).
    """
    step = next(d for d in STEP_DIMS if d in ds.dims)
    ds = ds.chunk({d: (steps_per_task(ds) if d == step else -1) for d in ds.dims})
    encoding = {}
    for name, var in ds.data_vars.items():
        var.encoding = {}
        encoding[name] = {"dtype": "float32",
                          "chunks": tuple(1 if d == step else n for d, n in var.sizes.items())}
    if "time" in ds.coords:
        encoding["time"] = {"units": "days since 1970-01-01", "dtype": "int64"}
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        ds.to_zarr(tmp, mode="w", encoding=encoding, **to_zarr)


def expected_dates(years: list[int]) -> pd.DatetimeIndex:
    """Every day from 1 January of the first year to 31 December of the last."""
    return pd.date_range(f"{years[0]}-01-01", f"{years[-1]}-12-31", freq="D")


def check_dates(times: pd.DatetimeIndex, expected: pd.DatetimeIndex, what: str) -> None:
    """DataError naming the missing, duplicated or unexpected dates of ``what``."""
    problems = []
    missing = expected.difference(times)
    if len(missing):
        problems.append(f"missing dates {format_dates(missing)}")
    duplicated = times[times.duplicated()]
    if len(duplicated):
        problems.append(f"duplicated dates {format_dates(duplicated.unique())}")
    extra = times.difference(expected)
    if len(extra):
        problems.append(f"dates outside the configured years {format_dates(extra)}")
    if problems:
        raise DataError(f"{what}: " + "; ".join(problems))


def concat_years(paths: list[Path], variables: tuple[str, ...], what: str) -> xr.Dataset:
    """Open the interim year stores and concatenate them along time (lazy, in date order)."""
    parts = []
    for path in paths:
        ds = open_store(path)
        absent = [v for v in variables if v not in ds]
        if absent:
            raise DataError(f"{path}: variables {absent} are missing ({what} needs {variables})")
        if ds.sizes.get("time", 0) == 0:
            raise DataError(f"{path}: no time steps")
        first = parts[0][1] if parts else ds
        for name in ("lat", "lon", "depth"):
            if name in ds.coords and not np.array_equal(ds[name].values, first[name].values):
                raise DataError(f"{path}: coordinate {name} differs from {paths[0]}")
        parts.append((path, ds[list(variables)]))
    parts.sort(key=lambda item: item[1].time.values[0])
    return xr.concat([ds for _, ds in parts], dim="time", data_vars="all", coords="minimal",
                     compat="override", join="override", combine_attrs="override")


def check_grid(ds: xr.Dataset, grid: Grid, what: str) -> None:
    """DataError if ``ds`` is not on the target grid."""
    for name, want in (("lat", grid.lat), ("lon", grid.lon)):
        got = ds[name].values
        if got.shape != want.shape or not np.allclose(got, want, atol=1e-6):
            raise DataError(f"{what}: {name} is not the {grid.resolution} deg target grid "
                            f"({got.size} points from {got[0]:g} to {got[-1]:g})")


def check_depths(ds: xr.Dataset, depths: list[float], what: str) -> None:
    got = ds.depth.values
    if got.shape != (len(depths),) or not np.allclose(got, depths, atol=0.01):
        raise DataError(f"{what}: depths {got.tolist()} are not the configured data.depths "
                        f"{list(depths)}")


def ocean_mask(thetao: xr.DataArray) -> xr.DataArray:
    """Land-sea mask (depth, lat, lon) int8, 1 ocean 0 land: thetao finite on every day."""
    mask = thetao.notnull().all("time").compute().astype(np.int8)
    mask.name = "mask"
    mask.attrs = {"long_name": "land-sea mask (1 ocean, 0 land)", "flag_values": [0, 1],
                  "flag_meanings": "land ocean",
                  "comment": "ocean where thetao is finite on every day of the data"}
    return mask


def mask_land(ocean: xr.Dataset, mask: xr.DataArray) -> xr.Dataset:
    """Set every ocean variable to NaN where the mask says land (zos: the top level)."""
    out = ocean.copy()
    for var in OCEAN_3D:
        out[var] = ocean[var].where(mask == 1)
    for var in OCEAN_2D:
        out[var] = ocean[var].where(mask.isel(depth=0, drop=True) == 1)
    return out


def provenance(ds: xr.Dataset, cfg: config_mod.Config, what: str) -> dict[str, str]:
    """Provenance attributes of an assembled store, taken from its interim years (with the
    synthetic source's parameters, ``synthetic_<name>``, where the raw files had them)."""
    absent = [key for key in PROVENANCE if key not in ds.attrs]
    if absent:
        raise DataError(f"{what}: interim stores lack provenance attributes {absent}")
    return {"title": f"NeuralOGCM {what} on the {cfg.grid.resolution} deg grid",
            **{key: ds.attrs[key] for key in PROVENANCE},
            "regrid_method": ds.attrs.get("regrid_method", cfg.grid.regrid_method),
            **{k: v for k, v in ds.attrs.items() if k.startswith("synthetic_")},
            "config_digest": cfg.digest(), "neuralogcm_version": neuralogcm.__version__,
            "Conventions": "CF-1.8"}


def with_cf(ds: xr.Dataset) -> xr.Dataset:
    """Set the CF attributes of every canonical variable and of depth."""
    for var in ds.data_vars:
        ds[var].attrs = dict(CF[var])
    if "depth" in ds.coords:
        ds.depth.attrs = DEPTH_ATTRS
    return ds


def assemble(cfg: config_mod.Config, ocean_paths: list[Path], forcing_paths: list[Path],
             out_dir: Path) -> None:
    """Write out_dir/ocean.zarr, out_dir/forcing.zarr and out_dir/mask.nc (see module doc)."""
    grid = Grid(cfg.grid.resolution)
    dates = expected_dates(cfg.data.years.all())
    ocean = concat_years(ocean_paths, OCEAN, "ocean")
    forcing = concat_years(forcing_paths, FORCING, "forcing")
    for ds, what in ((ocean, "ocean"), (forcing, "forcing")):
        check_grid(ds, grid, what)
        check_dates(pd.DatetimeIndex(ds.time.values), dates, f"{what} years")
    check_depths(ocean, cfg.data.depths, "ocean")

    log.info("land-sea mask from thetao over %d days", ocean.sizes["time"])
    mask = ocean_mask(ocean.thetao)
    if not mask.any():
        raise DataError("ocean: thetao is NaN everywhere on some day: no ocean point is left")
    ocean = with_cf(mask_land(ocean, mask))
    ocean.attrs = provenance(ocean, cfg, "ocean")
    forcing = with_cf(forcing)
    forcing.attrs = provenance(forcing, cfg, "forcing")

    log.info("writing %s and %s", out_dir / "ocean.zarr", out_dir / "forcing.zarr")
    write_store(ocean, out_dir / "ocean.zarr")
    write_store(forcing, out_dir / "forcing.zarr")
    mask_ds = mask.to_dataset()
    mask_ds.attrs = {k: ocean.attrs[k] for k in ("source", "dataset_id", "config_digest")}
    with atomic_path(out_dir / "mask.nc") as tmp:
        mask_ds.to_netcdf(tmp, engine="netcdf4")


def cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="resolved config (YAML or JSON)")
    parser.add_argument("--ocean", required=True, nargs="+", type=Path,
                        help="interim/glorys/{year}.zarr stores")
    parser.add_argument("--forcing", required=True, nargs="+", type=Path,
                        help="interim/era5/{year}.zarr stores")
    parser.add_argument("--out-dir", required=True, type=Path, help="the data/ folder")


def cli_main(args: argparse.Namespace) -> None:
    cfg = config_mod.load(args.config)
    assemble(cfg, args.ocean, args.forcing, args.out_dir)
    log.info("wrote %s", args.out_dir)
