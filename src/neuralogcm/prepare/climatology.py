"""Day-of-year climatology of the periodic channels (S, T, SSH) over the training years.

``neuralogcm climatology --config C --data-dir DATA --out DATA/climatology.zarr`` reads
DATA/ocean.zarr and writes so, thetao (dayofyear, depth, lat, lon) and zos (dayofyear, lat, lon),
``dayofyear`` = 0..364, each the NaN-aware mean over the training years only (NaN on land).

The reduction is a dask groupby over :func:`~neuralogcm.dates.day_index` (flox map-reduce over
one-day chunks), so the training years (about 78 GB of float32 at paper scale) are never loaded
at once.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import xarray as xr

from neuralogcm import config as config_mod
from neuralogcm.channels import CF, PERIODIC
from neuralogcm.dates import day_index
from neuralogcm.errors import DataError
from neuralogcm.prepare.store import open_store, write_store

log = logging.getLogger(__name__)

N_DAYS = 365


def select_years(ds: xr.Dataset, years: list[int]) -> xr.Dataset:
    """The days of ``ds`` that fall in ``years``; DataError if a year has no day."""
    missing = sorted(set(years) - set(np.unique(ds.time.dt.year.values).tolist()))
    if missing:
        raise DataError(f"the data have no days in the training year(s) {missing}")
    return ds.sel(time=ds.time.dt.year.isin(years))


def compute_climatology(ocean: xr.Dataset, years: list[int]) -> xr.Dataset:
    """Lazy day-of-year mean of so, thetao, zos over ``years``: dims (dayofyear, ...), 0..364."""
    train = select_years(ocean[list(PERIODIC)], years)
    doy = xr.DataArray(day_index(train.time.values), dims="time", name="dayofyear")
    clim = train.groupby(doy).mean(skipna=True)
    absent = sorted(set(range(N_DAYS)) - set(clim.dayofyear.values.tolist()))
    if absent:
        raise DataError(f"the training years {years} do not cover climatology days {absent}")
    clim = clim.assign_coords(dayofyear=clim.dayofyear.astype(np.int16))
    clim.dayofyear.attrs = {"long_name": "day of a non-leap year, 0-based; 29 Feb -> 58",
                            "units": "1"}
    for var in PERIODIC:
        clim[var].attrs = dict(CF[var], cell_methods="time: mean within days of year")
    clim.attrs = {"title": "day-of-year climatology over the training years",
                  "training_years": f"{years[0]}-{years[-1]}"}
    return clim


def cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="resolved config (YAML or JSON)")
    parser.add_argument("--data-dir", required=True, type=Path, help="folder with ocean.zarr")
    parser.add_argument("--out", required=True, type=Path, help="climatology.zarr to write")


def cli_main(args: argparse.Namespace) -> None:
    cfg = config_mod.load(args.config)
    years = cfg.data.years.split("train")
    ocean = open_store(args.data_dir / "ocean.zarr")
    log.info("climatology of %s over %d training years", ", ".join(PERIODIC), len(years))
    write_store(compute_climatology(ocean, years), args.out)  # one chunk per day of year
    log.info("wrote %s", args.out)
