"""Regridding (prepare/regrid.py) against analytic fields, and the regrid step on raw files."""

import re
import subprocess
import sys
import tracemalloc
from pathlib import Path

import dask.array
import numpy as np
import pandas as pd
import pytest
import xarray as xr
import xarray_regrid  # noqa: F401  (the .regrid accessor, an independent conservative regridder)
from raw_formats import era5_month, glorys_month

from neuralogcm import cli, config
from neuralogcm.errors import DataError, UserError
from neuralogcm.grid import Grid
from neuralogcm.prepare import regrid
from neuralogcm.prepare.regrid import (
    ConservativeRegridder,
    LinearRegridder,
    day_blocks,
    make_regridder,
    regrid_year,
)

DEPTHS = [0.494025, 155.8507]  # two of the GLORYS_LEVELS of tests/raw_formats.py


def smooth(lat, lon):
    """A smooth test field of latitude and longitude (deg), periodic in longitude."""
    la, lo = np.deg2rad(lat), np.deg2rad(lon)
    return np.cos(la) ** 2 * np.cos(2 * lo) + 0.5 * np.sin(la) + 0.3 * np.cos(la) * np.sin(lo)


def on_grid(f, lat, lon):
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    return f(la, lo)


def run(regridder, field):
    """Regrid one 2-D field, in float64 (the store gets float32)."""
    return regridder.regrid_block(field[None])[0]


def centres(res, start=-90.0, stop=90.0):
    """Cell centres of a regular grid of spacing ``res`` between ``start`` and ``stop``."""
    return np.arange(start + res / 2, stop, res)


def test_bilinear_reproduces_a_smooth_field_and_would_fail_on_a_shifted_grid():
    grid = Grid(6.0)
    lat, lon = centres(0.5), centres(0.5, 0.0, 360.0)
    out = run(LinearRegridder(lat, lon, grid, 0.5), on_grid(smooth, lat, lon))
    exact = on_grid(smooth, grid.lat, grid.lon)
    error = np.abs(out - exact).max()
    assert np.isfinite(out).all()
    assert error < 2e-4  # second order in the 0.5 deg source spacing
    # a target half a source cell off (or a source read upside down) is far outside that
    assert np.abs(out - on_grid(smooth, grid.lat + 0.25, grid.lon)).max() > 10 * error
    assert np.abs(out - on_grid(smooth, -grid.lat, grid.lon)).max() > 0.5


def test_bilinear_is_exact_where_target_points_are_source_points():
    grid = Grid(6.0)  # -87, -81, ... and 0, 6, ... lie on the 1 deg source grid
    lat, lon = np.arange(-90.0, 90.1, 1.0), np.arange(0.0, 360.0, 1.0)
    rng = np.random.default_rng(0)
    field = rng.normal(size=(lat.size, lon.size))
    field[rng.random(field.shape) < 0.3] = np.nan  # scattered land
    out = run(LinearRegridder(lat, lon, grid, 0.5), field)
    at_targets = field[np.searchsorted(lat, grid.lat)][:, np.searchsorted(lon, grid.lon)]
    np.testing.assert_array_equal(np.isnan(out), np.isnan(at_targets))
    np.testing.assert_allclose(out, at_targets, rtol=1e-14, atol=1e-14, equal_nan=True)


def test_bilinear_is_periodic_across_the_seam():
    grid = Grid(1.5)  # target lon 0 lies between source 359.5 and 0.5
    lat, lon = np.arange(-89.25, 89.3, 1.5), centres(1.0, 0.0, 360.0)
    rng = np.random.default_rng(1)
    field = rng.normal(size=(lat.size, lon.size))
    out = run(LinearRegridder(lat, lon, grid, 0.5), field)
    np.testing.assert_allclose(out[:, 0], 0.5 * (field[:, -1] + field[:, 0]), rtol=1e-12)
    np.testing.assert_allclose(out[:, -1], field[:, 358], rtol=1e-12)  # 358.5: a source point


def test_coastal_cell_keeps_its_value_and_na_thres_decides_land():
    grid = Grid(6.0)
    lat, lon = centres(2.0), centres(2.0, 0.0, 360.0)  # target points sit on source corners
    field = np.full((lat.size, lon.size), 7.0)
    field[:, (lon > 102) & (lon < 200)] = np.nan  # a continent from 103 E to 199 E
    out = run(LinearRegridder(lat, lon, grid, 0.4), field)
    ocean = np.isfinite(out)
    np.testing.assert_allclose(out[ocean], 7.0, rtol=1e-12)  # renormalised: no land leaks in
    # target (3 N, 102 E) sits on source row 3 N between 101 E (ocean) and 103 E (land)
    i, j = np.flatnonzero(grid.lat == 3.0)[0], np.flatnonzero(grid.lon == 102.0)[0]
    assert out[i, j] == pytest.approx(7.0)  # valid fraction 0.5 >= na_thres 0.4: ocean
    strict = run(LinearRegridder(lat, lon, grid, 0.6), field)
    assert np.isnan(strict[i, j])  # 0.5 < na_thres 0.6: the same cell is land
    assert np.isnan(out[i, np.flatnonzero(grid.lon == 150.0)[0]])  # inland: land


def test_rows_south_of_the_glorys_domain_are_land():
    grid = Grid(1.5)
    lat, lon = np.arange(-80.0, 90.01, 0.5), np.arange(-180.0, 180.0, 0.5) % 360
    lon.sort()
    field = on_grid(smooth, lat, lon)
    out = run(LinearRegridder(lat, lon, grid, 0.5), field)
    south = grid.lat < -80
    assert south.sum() == 7 and np.isnan(out[south]).all()
    assert np.isfinite(out[~south]).all()
    np.testing.assert_allclose(out[~south], on_grid(smooth, grid.lat[~south], grid.lon),
                               atol=1e-4)
    cons = run(ConservativeRegridder(lat, lon, grid, 0.5), field)
    assert np.isnan(cons[south]).all() and np.isfinite(cons[~south]).all()


def test_global_cell_centred_source_reaches_the_poles():
    grid = Grid(1.5)  # -89.25 lies between the source's -89.5 and the pole
    lat, lon = centres(1.0), centres(1.0, 0.0, 360.0)
    out = run(LinearRegridder(lat, lon, grid, 0.5), on_grid(smooth, lat, lon))
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, on_grid(smooth, grid.lat, grid.lon), atol=2e-3)


def test_conservative_preserves_the_area_weighted_global_mean():
    grid = Grid(3.0)
    fine = Grid(0.5)  # 0.5 deg latitude bands nest in the 3 deg ones
    lon = centres(0.5, 0.0, 360.0)  # and these cells in longitude (Grid's straddle 0)
    field = on_grid(smooth, fine.lat, lon) + 2.0
    out = run(ConservativeRegridder(fine.lat, lon, grid, 0.5), field)
    assert np.isfinite(out).all()
    source_mean = (field * fine.cell_area).sum() / fine.cell_area.sum()
    target_mean = (out * grid.cell_area).sum() / grid.cell_area.sum()
    assert target_mean == pytest.approx(source_mean, rel=1e-12)
    # and each cell is the area mean of its 36 source cells (cell 0, 0 spans 90-87 S, 1.5 W-1.5 E)
    lat_rows = slice(0, 6)
    cols = np.r_[fine.lon.size - 3:fine.lon.size, 0:3]
    block, area = field[lat_rows][:, cols], fine.cell_area[lat_rows][:, cols]
    assert out[0, 0] == pytest.approx((block * area).sum() / area.sum(), rel=1e-12)


def test_conservative_matches_xarray_regrid_with_land():
    grid = Grid(6.0)
    lat, lon = centres(1.0, -80.0, 80.0), centres(1.0, 0.0, 360.0)  # no pole padding upstream
    field = on_grid(smooth, lat, lon)
    field[np.ix_((lat > 11) & (lat < 50), (lon > 31) & (lon < 100))] = np.nan  # no cell half
    field[np.ix_(lat < -70, lon < 200)] = np.nan
    ours = run(ConservativeRegridder(lat, lon, grid, 0.5), field)
    source = xr.DataArray(field, dims=("lat", "lon"), coords={"lat": lat, "lon": lon})
    target = xr.Dataset(coords={"lat": grid.lat, "lon": grid.lon})
    theirs = source.regrid.conservative(target, latitude_coord="lat", skipna=True,
                                        nan_threshold=0.5).values
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, equal_nan=True)
    assert 0 < np.isnan(ours).sum() < ours.size // 4


def test_make_regridder_picks_the_backend(monkeypatch):
    grid = Grid(6.0)
    lat, lon = centres(2.0), centres(2.0, 0.0, 360.0)
    monkeypatch.setattr(regrid, "xesmf", None)
    assert isinstance(make_regridder(lat, lon, grid, "bilinear", 0.5), LinearRegridder)
    assert isinstance(make_regridder(lat, lon, grid, "conservative", 0.5),
                      ConservativeRegridder)
    with pytest.raises(UserError, match="nearest"):
        make_regridder(lat, lon, grid, "nearest", 0.5)


def test_xesmf_agrees_with_the_xarray_backend(tmp_path):
    pytest.importorskip("xesmf", reason="xesmf/esmpy come with the conda env (envs/data.yaml)")
    grid = Grid(6.0)
    lat, lon = np.arange(-80.0, 90.01, 1.0), np.arange(0.0, 360.0, 1.0)
    field = on_grid(smooth, lat, lon)
    field[np.ix_((lat > 10) & (lat < 50), (lon > 30) & (lon < 100))] = np.nan
    weights = tmp_path / "w.nc"
    esmf = run(make_regridder(lat, lon, grid, "bilinear", 0.5, weights), field)
    assert weights.exists()
    cached = run(make_regridder(lat, lon, grid, "bilinear", 0.5, weights), field)
    ours = run(LinearRegridder(lat, lon, grid, 0.5), field)
    np.testing.assert_array_equal(np.isnan(esmf), np.isnan(ours))
    np.testing.assert_allclose(esmf, ours, atol=1e-3, equal_nan=True)
    np.testing.assert_array_equal(esmf, cached)


def test_regridder_loads_a_lazy_month_one_block_at_a_time(monkeypatch):
    grid = Grid(6.0)
    lat, lon = centres(0.5), centres(0.5, 0.0, 360.0)
    level_bytes = 4 * lat.size * lon.size
    monkeypatch.setattr(regrid, "BLOCK_BYTES", level_bytes)
    month = dask.array.random.default_rng(0).random((31, 2, lat.size, lon.size),
                                                    chunks=(1, 1, lat.size, lon.size))
    field = xr.DataArray(month.astype(np.float32), dims=("time", "depth", "lat", "lon"))
    regridder = LinearRegridder(lat, lon, grid, 0.5)
    regridder(field[:1])  # warm up imports and caches
    tracemalloc.start()
    out = regridder(field)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert out.shape == (31, 2, *grid.shape)
    month_bytes = 31 * 2 * level_bytes
    assert peak < month_bytes / 6, f"peak {peak} B while a month is {month_bytes} B"


def test_day_blocks_cover_every_day_once():
    blocks = day_blocks(31, regrid.BLOCK_BYTES // 3)
    assert [(b.start, b.stop) for b in blocks] == [(0, 3), (3, 6)] + [
        (i, min(i + 3, 31)) for i in range(6, 31, 3)]
    assert day_blocks(2, 10 * regrid.BLOCK_BYTES) == [slice(0, 1), slice(1, 2)]


# --- the regrid step on raw files in the real formats -------------------------------------


def tiny_config(**grid):
    return config.load({
        "run": "t", "models": {"u": {"arch": "unet"}},
        "data": {"years": {"train": [2018, 2019], "valid": [2020, 2020], "test": [2021, 2021]},
                 "depths": DEPTHS},
        "grid": {"resolution": 15.0, **grid},
    })


@pytest.fixture(scope="module")
def raw_2020(tmp_path_factory):
    """The 12 monthly GLORYS-format and ERA5-format files of 2020 (tests/raw_formats.py)."""
    folder = tmp_path_factory.mktemp("raw")
    files = {"glorys": [], "era5": []}
    for month in range(1, 13):
        for source, make in (("glorys", glorys_month), ("era5", era5_month)):
            path = folder / f"{source}_{month:02d}.nc"
            make(2020, month).to_netcdf(path)
            files[source].append(path)
    return files


def test_regrid_year_glorys_values_land_and_layout(raw_2020, tmp_path):
    out = tmp_path / "2020.zarr"
    regrid_year(tiny_config(), "glorys", 2020, raw_2020["glorys"], out, tmp_path / "w")
    ds = xr.open_zarr(out)
    grid = Grid(15.0)
    assert set(ds.data_vars) == {"so", "uo", "vo", "thetao", "zos"}
    assert ds.sizes == {"time": 366, "depth": 2, "lat": 12, "lon": 24}
    assert ds.thetao.dtype == np.float32 and ds.thetao.encoding["chunks"] == (1, 2, 12, 24)
    np.testing.assert_array_equal(ds.depth.values, DEPTHS)
    np.testing.assert_array_equal(ds.lat.values, grid.lat)
    np.testing.assert_array_equal(ds.time.values, pd.date_range("2020-01-01", "2020-12-31")
                                  .values.astype("datetime64[ns]"))
    assert ds.attrs["dataset_id"] == "neuralogcm-synthetic-glorys"
    assert ds.thetao.attrs["units"] == "degrees_C"
    # thetao = 2 + 25 cos^2(lat) exp(-z/300) + 0.05 (day of month - 1) on ocean, zonally
    # constant; the source rows are 0 and 20 N, so 7.5 N is 5/8 of the one and 3/8 of the other
    def thetao(lat, z, day):
        return 2 + 25 * np.cos(np.deg2rad(lat)) ** 2 * np.exp(-z / 300) + 0.05 * day

    day = ds.thetao.sel(time="2020-03-05", lat=7.5, lon=270.0).values  # 90 W: ocean at depth
    expected = [0.625 * thetao(0, z, 4) + 0.375 * thetao(20, z, 4) for z in DEPTHS]
    np.testing.assert_allclose(day, expected, atol=2e-3)  # int16 packing: 7e-4 per value
    # the continent at 0-90 E is land at every depth, and the deep level is land in the west
    assert np.isnan(ds.thetao.sel(lon=slice(0, 60)).isel(time=0)).all()
    deep_west = ds.thetao.isel(time=0, depth=1).sel(lon=195.0).values  # 165 W, shelf < 150 m
    assert np.isnan(deep_west).all()
    assert np.isfinite(ds.thetao.isel(time=0, depth=0).sel(lon=195.0, lat=7.5))


def test_regrid_year_era5_flips_latitude_and_keeps_the_dates(raw_2020, tmp_path):
    out = tmp_path / "2020.zarr"
    regrid_year(tiny_config(), "era5", 2020, raw_2020["era5"], out, tmp_path / "w")
    ds = xr.open_zarr(out)
    assert set(ds.data_vars) == {"u10", "v10", "t2m", "msl"} and "depth" not in ds.dims
    assert np.isfinite(ds.t2m).all()

    def t2m(lat, day):  # 288 - 40 sin^2(lat) + 0.1 (day of month - 1): source rows 0 and 30 N
        return 288 - 40 * np.sin(np.deg2rad(lat)) ** 2 + 0.1 * day

    got = ds.t2m.sel(time="2020-02-29", lat=7.5).values
    np.testing.assert_allclose(got, 0.75 * t2m(0, 28) + 0.25 * t2m(30, 28), rtol=1e-6)
    south = ds.t2m.sel(time="2020-12-31", lat=-82.5).values  # a quarter of the way to 60 S
    np.testing.assert_allclose(south, 0.75 * t2m(-90, 30) + 0.25 * t2m(-60, 30), rtol=1e-6)


def test_regrid_year_streams_one_day_at_a_time(raw_2020, tmp_path, monkeypatch):
    # a budget of one day of the 9 x 8 source grid (4 variables x 2 levels + zos, float32)
    monkeypatch.setattr(regrid, "BLOCK_BYTES", 4 * 9 * 8 * 9)
    blocks = []

    def spy(ds, regridder):  # records each block of days; the values do not matter here
        blocks.append(pd.DatetimeIndex(ds.time.values))
        return xr.Dataset({name: (var.dims, np.zeros((*var.shape[:-2], *regridder.grid.shape),
                                                     np.float32)) for name, var in ds.items()},
                          coords={"time": ds.time.values})

    monkeypatch.setattr(regrid, "regrid_days", spy)
    regrid_year(tiny_config(), "glorys", 2020, raw_2020["glorys"], tmp_path / "y.zarr",
                tmp_path / "w")
    assert [len(b) for b in blocks] == [1] * 366  # never more than a day held at once
    assert pd.DatetimeIndex(np.concatenate(blocks)).equals(pd.date_range("2020-01-01",
                                                                         "2020-12-31"))


def test_regrid_year_conservative(raw_2020, tmp_path):
    out = tmp_path / "2020.zarr"
    regrid_year(tiny_config(regrid_method="conservative"), "era5", 2020, raw_2020["era5"], out,
                tmp_path / "w")
    ds = xr.open_zarr(out)
    assert "conservative" in ds.attrs["regrid_method"]
    assert np.isfinite(ds.msl).all() and ds.sizes["time"] == 366


def test_regrid_year_errors_name_the_file_and_leave_nothing(raw_2020, tmp_path):
    out = tmp_path / "2020.zarr"
    with pytest.raises(UserError, match="expected 12 monthly raw files"):
        regrid_year(tiny_config(), "glorys", 2020, raw_2020["glorys"][:11], out, tmp_path)
    gap = tmp_path / "02.nc"
    glorys_month(2020, 2).drop_sel(time=[glorys_month(2020, 2).time.values[28]]).to_netcdf(gap)
    files = list(raw_2020["glorys"])
    files[1] = gap
    with pytest.raises(DataError, match=r"02\.nc.*2020-02-29"):
        regrid_year(tiny_config(), "glorys", 2020, files, out, tmp_path)
    other_grid = tmp_path / "other_grid.nc"
    glorys_month(2020, 2).isel(latitude=slice(1, None)).to_netcdf(other_grid)
    files[1] = other_grid
    with pytest.raises(DataError, match=r"other_grid\.nc: its grid"):
        regrid_year(tiny_config(), "glorys", 2020, files, out, tmp_path)
    regional = tmp_path / "regional.nc"
    glorys_month(2020, 1).isel(longitude=slice(0, 4)).to_netcdf(regional)
    with pytest.raises(DataError, match=r"regional\.nc: its longitudes 180\.\.315 E do not go"):
        regrid_year(tiny_config(), "glorys", 2020, [regional] + files[1:], out, tmp_path)
    # a depth that is no level of the file (config validation rejects it for real GLORYS
    # levels; model_copy skips that, as a config and raw files out of step would)
    cfg = tiny_config()
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"depths": [0.494025, 100.0]})})
    with pytest.raises(DataError, match="depth"):
        regrid_year(cfg, "glorys", 2020, raw_2020["glorys"], out, tmp_path)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_regrid_cli(raw_2020, tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(tiny_config().model_dump_json())
    out = tmp_path / "2020.zarr"
    args = ["regrid", "--config", str(cfg), "--source", "era5", "--year", "2020",
            "--weights-dir", str(tmp_path / "w"), "--out", str(out)]
    assert cli.main(args + [str(p) for p in raw_2020["era5"]]) == 0
    assert xr.open_zarr(out).sizes["time"] == 366
    assert cli.main(args + [str(p) for p in raw_2020["era5"][::-1]]) == 1  # December first


def test_a_bad_december_stops_the_year_before_any_month_is_regridded(raw_2020, tmp_path,
                                                                      monkeypatch, caplog):
    december = tmp_path / "12.nc"
    whole = raw_2020["glorys"][11].read_bytes()
    december.write_bytes(whole[: len(whole) // 2])  # a download cut short
    pieces = []
    monkeypatch.setattr(regrid, "regrid_piece", lambda *args: pieces.append(args))
    out = tmp_path / "2020.zarr"
    with pytest.raises(DataError, match=r"12\.nc.*(truncated|corrupt)"):
        regrid_year(tiny_config(), "glorys", 2020, raw_2020["glorys"][:11] + [december], out,
                    tmp_path / "w")
    assert pieces == [] and "regridded" not in caplog.text  # not even January
    assert not out.exists() and not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_two_workers_write_the_same_store_as_one(raw_2020, tmp_path):
    stores = {}
    for workers in (1, 2):
        stores[workers] = tmp_path / f"{workers}.zarr"
        regrid_year(tiny_config(), "glorys", 2020, raw_2020["glorys"], stores[workers],
                    tmp_path / "w", workers=workers)
    with xr.open_zarr(stores[1]) as one, xr.open_zarr(stores[2]) as two:
        xr.testing.assert_identical(one.load(), two.load())
    files = {w: sorted(str(p.relative_to(s)) for p in s.rglob("*") if p.is_file())
             for w, s in stores.items()}
    assert files[1] == files[2]  # the same chunks: every day written, by whichever worker
    assert [len(regrid.month_pieces(31, 2)), len(regrid.month_pieces(1, 8))] == [2, 1]


#: benchmarks/regrid_benchmark.py, a full-resolution GLORYS day on one core (README)
VALIDATE_S_PER_DAY, REGRID_S_PER_DAY = 45.0, 74.8


def test_paper_regrid_jobs_fit_their_time_limit(tmp_path):
    """The paper's regrid job runs as many workers as it has CPUs and its time limit covers a
    leap year of GLORYS days at the benchmark's speed with a safety factor of 1.5 (the old
    threads: 1 with 240 min needed 7.6 h of regridding alone)."""
    repo = Path(__file__).resolve().parents[1]
    dry = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "-p", "--cores", "64",
         "--snakefile", repo / "Snakefile", "--configfile", repo / "config/paper.yaml"],
        cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    job = re.search(r"^rule regrid:\n(?:    .*\n)*?    resources: (.*)\nShell command: (.*)$",
                    dry, re.M)
    resources = dict(item.split("=", 1) for item in job.group(1).split(", "))
    workers = int(re.search(r"--threads (\d+) ", job.group(2)).group(1))
    assert workers == int(resources["cpus_per_task"]) > 1  # the cores the job asks for
    needed_s = 366 * (VALIDATE_S_PER_DAY + REGRID_S_PER_DAY) / workers * 1.5
    assert int(resources["runtime"]) * 60 >= needed_s
