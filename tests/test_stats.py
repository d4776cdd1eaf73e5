"""Per-channel normalisation statistics (prepare/stats.py) against numpy."""

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from test_climatology import (
    DEPTHS,
    RES,
    TRAIN,
    config_file,
    expected_climatology,
    ocean_dataset,
    reference_day,
)

from neuralogcm import cli
from neuralogcm.channels import FORCING, ocean_channel_names
from neuralogcm.errors import DataError
from neuralogcm.grid import Grid
from neuralogcm.prepare.climatology import compute_climatology
from neuralogcm.prepare.stats import compute_stats
from neuralogcm.prepare.store import write_store

YEARS = [2016, 2019]  # data years; 2019 is outside the training years


def forcing_dataset(years, seed=1):
    grid = Grid(RES)
    dates = pd.date_range(f"{years[0]}-01-01", f"{years[-1]}-12-31")
    rng = np.random.default_rng(seed)
    scale = {"u10": (2.0, 5.0), "v10": (-1.0, 3.0), "t2m": (285.0, 12.0), "msl": (1.0e5, 900.0)}
    shape = (len(dates), *grid.shape)
    year_shift = (dates.year.to_numpy() == 2019)[:, None, None] * 100.0  # must not count
    return xr.Dataset({name: (("time", "lat", "lon"),
                              (m + s * rng.standard_normal(shape) + year_shift).astype(np.float32))
                       for name, (m, s) in scale.items()},
                      coords={"time": dates, **grid.coords()}).chunk({"time": 10})


def expected_stats(ocean, forcing):
    """mean and std per channel by numpy: anomalies for so, thetao, zos; train days only."""
    dates = pd.DatetimeIndex(ocean.time.values)
    train = np.isin(dates.year, TRAIN)
    days = np.array([reference_day(d) for d in dates])[train]
    means, stds = [], []
    for name in ("so", "uo", "vo", "thetao", "zos"):
        values = ocean[name].values[train].astype(np.float64)
        if name in ("so", "thetao", "zos"):
            values = values - expected_climatology(ocean, name, TRAIN)[days]
        if values.ndim == 3:
            values = values[:, None]
        for level in range(values.shape[1]):
            means.append(np.nanmean(values[:, level]))
            stds.append(np.nanstd(values[:, level]))
    for name in FORCING:
        values = forcing[name].values[train].astype(np.float64)
        means.append(values.mean())
        stds.append(values.std())
    return np.array(means), np.array(stds)


@pytest.fixture(scope="module")
def data():
    ocean, forcing = ocean_dataset(YEARS), forcing_dataset(YEARS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # land: the mean of nothing
        climatology = compute_climatology(ocean, TRAIN).compute()
    return ocean, forcing, climatology


def test_stats_match_numpy_over_the_train_years(data):
    ocean, forcing, climatology = data
    stats = compute_stats(ocean, forcing, climatology, TRAIN)
    names = ocean_channel_names(len(DEPTHS)) + list(FORCING)
    assert stats.channel.values.tolist() == names and len(names) == 4 * 2 + 5
    assert stats.periodic.dtype == bool
    assert [n for n, p in zip(names, stats.periodic.values, strict=True) if p] == [
        "so_00", "so_01", "thetao_00", "thetao_01", "zos"]
    mean, std = expected_stats(ocean, forcing)
    np.testing.assert_allclose(stats["mean"].values, mean, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(stats["std"].values, std, rtol=1e-9)
    # thetao anomalies keep only the yearly offsets 0, 2, 4 deg C around their mean 2 (std
    # sqrt(8/3)) and the noise; the seasonal cycle (amplitude 4) is gone. 2019 did not count.
    assert abs(stats["mean"].sel(channel="thetao_00")) < 0.05
    assert stats["std"].sel(channel="thetao_00") == pytest.approx(np.sqrt(8 / 3), rel=0.02)
    assert stats["mean"].sel(channel="t2m") == pytest.approx(285.0, abs=0.5)
    assert stats.units.sel(channel="msl") == "Pa"


def test_a_channel_without_ocean_is_an_error(data):
    ocean, forcing, climatology = data
    ocean = ocean.copy()
    ocean["uo"] = ocean.uo.where(ocean.depth < 10)  # the second level of uo is all land
    with pytest.raises(DataError, match=r"channels \['uo_01'\] have no ocean value"):
        compute_stats(ocean, forcing, climatology, TRAIN)


def test_a_degenerate_spread_is_an_error():
    """One (leap) training year: the anomalies from its own climatology vanish but on 28 and
    29 February, a std about 1e-4 of the field's, not zero (the old check)."""
    ocean, forcing = ocean_dataset([2016, 2016]), forcing_dataset([2016, 2016])
    # most of the fields' spread in space, as the ocean's, with noise 0.1 from day to day
    ocean = ocean + 20.0 * xr.DataArray(np.arange(ocean.sizes["lon"]), dims="lon")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # land: the mean of nothing
        climatology = compute_climatology(ocean, [2016]).compute()
    with pytest.raises(DataError, match=r"channels so_00 \(std 0\.00\d+ 1e-3, the field's own "
                                        r"3\d\.\d\), .*zos \(.*\) have a degenerate spread in "
                                        r"the training years 2016-2016 .*configure at least two"):
        compute_stats(ocean, forcing, climatology, [2016])


def test_a_spread_under_the_variables_floor_is_an_error(data):
    ocean, forcing, climatology = data
    forcing = forcing.assign(u10=1e-5 * np.sin(forcing.u10))  # std 7e-6 m/s < 1e-4 m/s
    with pytest.raises(DataError, match=r"channels u10 \(std 7\.\d+e-06 m s-1, the field's own "
                                        r"7\.\d+e-06\) have a degenerate spread"):
        compute_stats(ocean, forcing, climatology, TRAIN)


def test_stats_cli(tmp_path):
    write_store(ocean_dataset([2016, 2018]), tmp_path / "ocean.zarr")
    write_store(forcing_dataset([2016, 2018]), tmp_path / "forcing.zarr")
    cfg_file, cfg = config_file(tmp_path)
    base = ["--config", str(cfg_file), "--data-dir", str(tmp_path)]
    assert cli.main(["climatology", *base, "--out", str(tmp_path / "climatology.zarr")]) == 0
    assert cli.main(["stats", *base, "--out", str(tmp_path / "stats.nc")]) == 0
    stats = xr.open_dataset(tmp_path / "stats.nc")
    assert stats.periodic.dtype == bool and stats.sizes["channel"] == 13
    assert stats.attrs["config_digest"] == cfg.digest()
    ocean = xr.open_zarr(tmp_path / "ocean.zarr")
    mean, std = expected_stats(ocean, xr.open_zarr(tmp_path / "forcing.zarr"))
    np.testing.assert_allclose(stats["std"].values, std, rtol=1e-6)  # float32 climatology
