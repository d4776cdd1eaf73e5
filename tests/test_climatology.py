"""The day-of-year mapping and the climatology (prepare/climatology.py)."""

import datetime
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from neuralogcm import cli, config
from neuralogcm.dates import day_index
from neuralogcm.errors import DataError
from neuralogcm.grid import Grid
from neuralogcm.prepare.climatology import compute_climatology
from neuralogcm.prepare.store import write_store

TRAIN = [2016, 2017, 2018]  # 2016 is a leap year
DEPTHS = [0.494025, 40.34405]
RES = 60.0  # 3 x 6 cells


def reference_day(date) -> int:
    """Independent mapping: the date's place in the non-leap year 2019 (29 Feb as 28 Feb)."""
    day = min(date.day, 28) if (date.month, date.day) == (2, 29) else date.day
    return (datetime.date(2019, date.month, day) - datetime.date(2019, 1, 1)).days


def test_day_index_on_named_dates():
    dates = ["2019-01-01", "2019-01-31", "2019-02-28", "2019-03-01", "2019-12-31",
             "2020-01-01", "2020-02-28", "2020-02-29", "2020-03-01", "2020-12-31"]
    assert day_index(np.array(dates, dtype="datetime64[ns]")).tolist() == [
        0, 30, 58, 59, 364, 0, 58, 58, 59, 364]


def test_day_index_covers_each_year_once_but_the_leap_day():
    for year, repeated in ((2019, []), (2020, [58])):
        dates = pd.date_range(f"{year}-01-01", f"{year}-12-31")
        days = day_index(dates.values)
        assert days.dtype == np.int64
        assert days.tolist() == [reference_day(d) for d in dates]
        counts = np.bincount(days, minlength=365)
        assert counts.size == 365 and set(np.flatnonzero(counts == 2)) == set(repeated)
        assert (counts >= 1).all()


def ocean_dataset(years, seed=0):
    """Daily so, thetao, zos, uo, vo on a 3 x 6 grid: a seasonal cycle in the leap-aware day of
    year (so 29 February differs from 28 February), an offset per year, noise, and land (NaN)
    at cell (0, 0) and, at depth, cell (2, 5); dask chunks of 10 days."""
    grid = Grid(RES)
    dates = pd.date_range(f"{years[0]}-01-01", f"{years[-1]}-12-31")
    rng = np.random.default_rng(seed)
    phase = 2 * np.pi * (dates.day_of_year.to_numpy() - 1) / 366
    offset = (dates.year.to_numpy() - 2016) * 0.5
    shape = (len(dates), len(DEPTHS), *grid.shape)
    cycle = (np.sin(phase) + offset)[:, None, None, None]
    land = np.zeros(shape[1:], bool)
    land[:, 0, 0] = True
    land[1, 2, 5] = True

    def field(mean, amplitude):
        values = mean + amplitude * cycle + 0.1 * rng.standard_normal(shape)
        return np.where(land, np.nan, values).astype(np.float32)

    dims = ("time", "depth", "lat", "lon")
    ds = xr.Dataset({"so": (dims, field(35.0, 0.3)), "thetao": (dims, field(15.0, 4.0)),
                     "uo": (dims, field(0.1, 0.05)), "vo": (dims, field(-0.1, 0.02)),
                     "zos": (dims[:1] + dims[2:], field(0.2, 0.1)[:, 0])},
                    coords={"time": dates, "depth": DEPTHS, **grid.coords()})
    return ds.chunk({"time": 10})


def expected_climatology(ocean, name, years):
    """Mean of ``name`` per reference day over ``years``, by explicit grouping in numpy."""
    dates = pd.DatetimeIndex(ocean.time.values)
    values = ocean[name].values
    days = np.array([reference_day(d) for d in dates])
    train = np.isin(dates.year, years)
    with warnings.catch_warnings():  # land cells: the mean of nothing is NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.stack([np.nanmean(values[train & (days == d)], axis=0) for d in range(365)])


def test_climatology_is_the_day_of_year_mean_over_the_train_years_only():
    ocean = ocean_dataset([2016, 2019])  # 2019 is not a training year: its offset would show
    clim = compute_climatology(ocean, TRAIN)
    assert clim.so.chunks is not None  # lazy: reduced by dask, not loaded
    clim = clim.compute()
    assert set(clim.data_vars) == {"so", "thetao", "zos"}
    assert clim.so.dims == ("dayofyear", "depth", "lat", "lon")
    assert clim.zos.dims == ("dayofyear", "lat", "lon")
    assert clim.dayofyear.values.tolist() == list(range(365))
    for name in ("so", "thetao", "zos"):
        np.testing.assert_allclose(clim[name].values, expected_climatology(ocean, name, TRAIN),
                                   rtol=1e-6, equal_nan=True)
    # day 58 averages 28 Feb of 2016-2018 and 29 Feb 2016; day 59 is 1 March of each year
    feb = ocean.thetao.sel(time=["2016-02-28", "2016-02-29", "2017-02-28", "2018-02-28"])
    np.testing.assert_allclose(clim.thetao.sel(dayofyear=58), feb.mean("time"), rtol=1e-6)
    march = ocean.thetao.sel(time=["2016-03-01", "2017-03-01", "2018-03-01"])
    np.testing.assert_allclose(clim.thetao.sel(dayofyear=59), march.mean("time"), rtol=1e-6)
    assert np.isnan(clim.so.values[:, :, 0, 0]).all() and np.isnan(clim.so.values[:, 1, 2, 5]).all()
    assert np.isfinite(clim.so.values[:, 0, 2, 5]).all()
    assert clim.thetao.attrs["units"] == "degrees_C"


def test_climatology_needs_every_training_year():
    with pytest.raises(DataError, match=r"no days in the training year\(s\) \[2018\]"):
        compute_climatology(ocean_dataset([2016, 2017]), TRAIN)


def config_file(folder):
    """A config for these datasets (train 2016-2018) written to folder/config.json."""
    cfg = config.load({"run": "t", "models": {"u": {"arch": "unet"}}, "grid": {"resolution": RES},
                       "data": {"years": {"train": [2016, 2018], "valid": [2019, 2019],
                                          "test": [2020, 2020]}, "depths": DEPTHS}})
    (folder / "config.json").write_text(cfg.model_dump_json())
    return folder / "config.json", cfg


def test_climatology_cli(tmp_path):
    write_store(ocean_dataset([2016, 2018]), tmp_path / "ocean.zarr")
    cfg_file, _ = config_file(tmp_path)
    out = tmp_path / "climatology.zarr"
    assert cli.main(["climatology", "--config", str(cfg_file), "--data-dir", str(tmp_path),
                     "--out", str(out)]) == 0
    clim = xr.open_zarr(out)
    assert clim.so.dtype == np.float32 and clim.so.encoding["chunks"] == (1, 2, 3, 6)
    ocean = xr.open_zarr(tmp_path / "ocean.zarr")
    np.testing.assert_allclose(clim.zos.values, expected_climatology(ocean, "zos", TRAIN),
                               rtol=1e-6, equal_nan=True)
