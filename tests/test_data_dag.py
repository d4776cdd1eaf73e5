"""End to end: the data part of the Snakemake DAG (synthesize -> regrid -> assemble ->
climatology -> stats) of the whole-DAG run on a tiny config (conftest.py: DAG_CONFIG, four years,
2020 a leap year), its outputs checked for sense."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from neuralogcm.channels import FORCING, ocean_channel_names

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data_dir(dag_workdir):
    return dag_workdir / "results/dagtest/data"


def test_stores_cover_every_day_on_the_target_grid(data_dir):
    ocean = xr.open_zarr(data_dir / "ocean.zarr")
    forcing = xr.open_zarr(data_dir / "forcing.zarr")
    assert dict(ocean.sizes) == {"time": 1461, "depth": 2, "lat": 15, "lon": 30}
    np.testing.assert_array_equal(ocean.time.values, pd.date_range(
        "2017-01-01", "2020-12-31").values.astype("datetime64[ns]"))
    np.testing.assert_array_equal(forcing.time.values, ocean.time.values)
    np.testing.assert_allclose(ocean.lat.values, np.arange(-84.0, 85.0, 12.0))
    assert ocean.attrs["dataset_id"] == "neuralogcm-synthetic-glorys"
    assert forcing.attrs["dataset_id"] == "neuralogcm-synthetic-era5"
    # the synthetic ocean's true diffusivity travels from the raw files' attributes
    assert ocean.attrs["synthetic_tracer_diffusivity_m2_s"] == 2000.0
    day = ocean.isel(time=200).compute()
    thetao = day.thetao.values
    assert -3 < np.nanmin(thetao) and np.nanmax(thetao) < 35
    assert np.nanmean(thetao[0]) > np.nanmean(thetao[1])  # warmer at the surface than at 156 m
    assert 30 < np.nanmin(day.so.values) and np.nanmax(day.so.values) < 40
    assert np.nanmax(np.abs(day.zos.values)) < 3
    t2m = forcing.t2m.isel(time=200).values
    assert np.isfinite(t2m).all() and 200 < t2m.min() and t2m.max() < 330


def test_mask_matches_the_land_of_the_data(data_dir):
    mask = xr.open_dataset(data_dir / "mask.nc")["mask"].values
    ocean = xr.open_zarr(data_dir / "ocean.zarr")
    surface, deep = mask.mean(axis=(1, 2))
    assert 0.4 < surface < 0.9 and deep < surface  # continents, and more land at depth
    assert not mask[:, 0].any()  # 84 S: Antarctica (GLORYS starts at 80 S anyway)
    for name in ("so", "uo", "vo", "thetao"):
        finite = np.isfinite(ocean[name].isel(time=[0, 800]).values)
        np.testing.assert_array_equal(finite, np.broadcast_to(mask == 1, finite.shape))


def test_climatology_and_stats_make_sense(data_dir):
    clim = xr.open_zarr(data_dir / "climatology.zarr")
    assert clim.sizes["dayofyear"] == 365 and set(clim.data_vars) == {"so", "thetao", "zos"}
    ocean = xr.open_zarr(data_dir / "ocean.zarr")
    train = ocean.thetao.sel(time=ocean.time.dt.year.isin([2017, 2018]))
    july_first = train.sel(time=["2017-07-01", "2018-07-01"]).mean("time")
    np.testing.assert_allclose(clim.thetao.sel(dayofyear=181), july_first, rtol=1e-5)

    stats = xr.open_dataset(data_dir / "stats.nc")
    assert stats.channel.values.tolist() == ocean_channel_names(2) + list(FORCING)
    assert (stats["std"] > 0).all()
    periodic = stats.sel(channel=stats.periodic)
    assert (np.abs(periodic["mean"]) < 0.2 * periodic["std"]).all()  # anomalies: centred
    assert 250 < stats["mean"].sel(channel="t2m") < 300
    assert 9.0e4 < stats["mean"].sel(channel="msl") < 1.1e5
