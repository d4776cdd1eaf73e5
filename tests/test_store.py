"""Assembling the interim years into data/ (prepare/store.py)."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import neuralogcm
from neuralogcm import cli, config
from neuralogcm.dates import format_dates
from neuralogcm.errors import DataError
from neuralogcm.grid import Grid
from neuralogcm.prepare.store import assemble, write_store

YEARS = (2017, 2020)
DEPTHS = [0.494025, 40.34405]
RES = 30.0  # 6 x 12 cells


def tiny_config():
    return config.load({
        "run": "t", "models": {"u": {"arch": "unet"}},
        "data": {"years": {"train": [2017, 2018], "valid": [2019, 2019], "test": [2020, 2020]},
                 "depths": DEPTHS},
        "grid": {"resolution": RES},
    })


def ocean_year(year, depths=DEPTHS, res=RES):
    """A year of the ocean variables: value = variable number + day of year / 1000 + level,
    land at the first column everywhere and, at depth, in the first row; one cell of the surface
    is NaN on 3 March only (so the mask must call it land)."""
    grid = Grid(res)
    dates = pd.date_range(f"{year}-01-01", f"{year}-12-31")
    doy = dates.day_of_year.to_numpy(float)[:, None, None, None]
    shape = (len(dates), len(depths), *grid.shape)
    land = np.zeros(shape[1:], bool)
    land[:, :, 0] = True
    land[1:, 0, :] = True
    data = {}
    for n, name in enumerate(("so", "uo", "vo", "thetao")):
        values = np.broadcast_to(n + doy / 1000 + np.arange(len(depths))[:, None, None], shape)
        data[name] = (("time", "depth", "lat", "lon"),
                      np.where(land, np.nan, values).astype(np.float32))
    data["zos"] = (("time", "lat", "lon"),
                   np.where(land[0], np.nan, 4 + doy[:, 0] / 1000 + 0 * land[0]).astype(
                       np.float32))
    ds = xr.Dataset(data, coords={"time": dates, "depth": depths, **grid.coords()},
                    attrs={"source": "test ocean", "dataset_id": "test-glorys",
                           "regrid_method": "bilinear"})
    ds["thetao"][dates.get_loc(f"{year}-03-03"), 0, 3, 5] = np.nan
    return ds


def forcing_year(year, res=RES):
    grid = Grid(res)
    dates = pd.date_range(f"{year}-01-01", f"{year}-12-31")
    values = np.broadcast_to(dates.day_of_year.to_numpy(float)[:, None, None],
                             (len(dates), *grid.shape))
    return xr.Dataset({name: (("time", "lat", "lon"), (values + k).astype(np.float32))
                       for k, name in enumerate(("u10", "v10", "t2m", "msl"))},
                      coords={"time": dates, **grid.coords()},
                      attrs={"source": "test atmosphere", "dataset_id": "test-era5"})


def write_years(folder, make, years=range(YEARS[0], YEARS[1] + 1), change=None):
    """Interim stores of ``years`` made by ``make``, each passed through ``change``."""
    paths = []
    for year in years:
        ds = make(year)
        paths.append(folder / f"{make.__name__}_{year}.zarr")
        write_store(change(ds) if change else ds, paths[-1])
    return paths


@pytest.fixture(scope="module")
def interim(tmp_path_factory):
    folder = tmp_path_factory.mktemp("interim")
    return write_years(folder, ocean_year), write_years(folder, forcing_year)


@pytest.fixture(scope="module")
def data_dir(interim, tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    ocean, forcing = interim
    assemble(tiny_config(), ocean[::-1], forcing, out)  # any order of years
    return out


def test_stores_layout_values_and_attributes(data_dir):
    ocean = xr.open_zarr(data_dir / "ocean.zarr")
    forcing = xr.open_zarr(data_dir / "forcing.zarr")
    dates = pd.date_range("2017-01-01", "2020-12-31")
    np.testing.assert_array_equal(ocean.time.values, dates.values.astype("datetime64[ns]"))
    np.testing.assert_array_equal(forcing.time.values, ocean.time.values)
    assert ocean.thetao.dims == ("time", "depth", "lat", "lon") and ocean.zos.dims == (
        "time", "lat", "lon")
    for ds in (ocean, forcing):
        for name, var in ds.data_vars.items():
            assert var.dtype == np.float32
            assert var.encoding["chunks"] == (1, *var.shape[1:]), name  # one chunk per day
    assert ocean.thetao.attrs["standard_name"] == "sea_water_potential_temperature"
    assert forcing.msl.attrs["units"] == "Pa" and ocean.depth.attrs["positive"] == "down"
    cfg = tiny_config()
    assert ocean.attrs["source"] == "test ocean" and ocean.attrs["dataset_id"] == "test-glorys"
    assert forcing.attrs["dataset_id"] == "test-era5"
    for ds in (ocean, forcing):
        assert ds.attrs["config_digest"] == cfg.digest()
        assert ds.attrs["neuralogcm_version"] == neuralogcm.__version__
    # values come through unchanged: so = 0 + day/1000 + level, msl = day + 3
    day = ocean.so.sel(time="2019-07-04").values
    np.testing.assert_allclose(day[1, 3, 4], 185 / 1000 + 1, rtol=1e-6)
    assert forcing.msl.sel(time="2020-12-31").values[0, 0] == 366 + 3


def test_mask_is_ocean_where_thetao_is_finite_on_every_day(data_dir):
    mask = xr.open_dataset(data_dir / "mask.nc")["mask"]
    assert mask.dtype == np.int8 and mask.dims == ("depth", "lat", "lon")
    expected = np.ones((2, 6, 12), np.int8)
    expected[:, :, 0] = 0
    expected[1, 0, :] = 0
    expected[0, 3, 5] = 0  # NaN on a single day (3 March) is land
    np.testing.assert_array_equal(mask.values, expected)
    ocean = xr.open_zarr(data_dir / "ocean.zarr")
    # every ocean variable is NaN exactly on land, on every day (zos: the surface mask)
    for name in ("so", "uo", "thetao"):
        finite = np.isfinite(ocean[name].isel(time=[0, 400, 1095]).values)
        np.testing.assert_array_equal(finite, np.broadcast_to(expected == 1, finite.shape))
    assert np.isnan(ocean.zos.sel(time="2018-06-01").values[3, 5])


def test_gap_in_the_ocean_days_names_the_missing_dates(interim, tmp_path):
    gap = pd.date_range("2019-03-01", "2019-03-03")
    ocean = write_years(tmp_path, ocean_year, [2019], lambda ds: ds.drop_sel(time=gap))
    paths = [*interim[0][:2], ocean[0], interim[0][3]]
    with pytest.raises(DataError, match=r"ocean years: missing dates "
                                        r"2019-03-01\.\.2019-03-03 \(3 days\)"):
        assemble(tiny_config(), paths, interim[1], tmp_path / "data")
    with pytest.raises(DataError, match=r"forcing years: missing dates "
                                        r"2020-01-01\.\.2020-12-31 \(366 days\)"):
        assemble(tiny_config(), interim[0], interim[1][:3], tmp_path / "data")
    with pytest.raises(DataError, match=r"duplicated dates 2019-01-01\.\.2019-12-31"):
        assemble(tiny_config(), interim[0] + interim[0][2:3], interim[1], tmp_path / "data")
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())


def test_wrong_grid_depths_or_variables_are_named(interim, tmp_path):
    coarse = write_years(tmp_path, forcing_year, [2017], lambda ds: ds.isel(lon=slice(0, 6)))
    with pytest.raises(DataError, match=r"coordinate lon differs from .*forcing_year_2017\.zarr"):
        assemble(tiny_config(), interim[0], coarse + interim[1][1:], tmp_path / "d")
    cfg = config.load({**tiny_config().model_dump(), "data": {
        **tiny_config().data.model_dump(), "depths": [0.494025, 155.8507]}})
    with pytest.raises(DataError, match="not the configured data.depths"):
        assemble(cfg, interim[0], interim[1], tmp_path / "d")
    with pytest.raises(DataError, match=r"variables \['u10', 'v10', 't2m', 'msl'\] are missing"):
        assemble(tiny_config(), interim[0], interim[0], tmp_path / "d")
    with pytest.raises(DataError, match="does not exist"):
        assemble(tiny_config(), interim[0], [tmp_path / "nowhere.zarr"], tmp_path / "d")


def test_format_dates_runs():
    dates = pd.DatetimeIndex(["2019-01-05", "2019-01-01", "2019-01-02", "2019-01-03"])
    assert format_dates(dates) == "2019-01-01..2019-01-03 (3 days), 2019-01-05"
    many = pd.date_range("2019-01-01", periods=30, freq="2D")
    assert format_dates(many, most=2).endswith("and 28 more gaps")


def test_assemble_cli(interim, tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(tiny_config().model_dump_json())
    ocean, forcing = interim
    args = ["assemble", "--config", str(cfg), "--ocean", *map(str, ocean),
            "--forcing", *map(str, forcing), "--out-dir", str(tmp_path / "data")]
    assert cli.main(args) == 0
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [
        "forcing.zarr", "mask.nc", "ocean.zarr"]
    assert cli.main(args[:-4] + [str(forcing[0]), "--out-dir", str(tmp_path / "d2")]) == 1
