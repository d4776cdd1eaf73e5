"""The embedded synthetic source: real on-disk layouts, determinism, ranges, geometry, physics.

One tiny run (4 years on a 5-degree native grid, 10 spin-up days) is synthesised per session
through the CLI and shared by the tests; the layout tests compare it with the real fixtures.
"""

from __future__ import annotations

import filecmp
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import ndimage

from neuralogcm import cli
from neuralogcm.config import ConfigError, validate
from neuralogcm.levels import GLORYS_LEVELS
from neuralogcm.sources import read, synthetic
from neuralogcm.sources.synthetic import (
    Atmosphere,
    Ocean,
    Processes,
    bathymetry,
    file_levels,
    synthesize,
)

FIXTURES = Path(__file__).parent / "data" / "real"
ERA5_FIXTURE = FIXTURES / "era5_newcds_u10v10_instant.nc"
GLORYS_FIXTURE = FIXTURES / "glorys12_my_P1D_multivars_1993-01-01_02.nc"
DEPTHS = [0.494025, 40.34405, 155.8507]
RES = 5.0  # deg, native grids of the tiny run
KAPPA = 3000.0  # m^2/s, not the default, so the attribute test cannot pass by accident

TINY = {
    "run": "synthetic-test",
    "data": {"source": "synthetic", "depths": DEPTHS,
             "years": {"train": [2017, 2018], "valid": [2019, 2019], "test": [2020, 2020]},
             "synthetic": {"seed": 0, "ocean_resolution": RES, "atmosphere_resolution": RES,
                           "spinup_days": 10, "diffusivity": KAPPA}},
    "grid": {"resolution": 10.0},
    "models": {"unet": {"arch": "unet", "width": 8, "depth": 2}},
}


def _config(**synthetic_changes):
    raw = yaml.safe_load(yaml.safe_dump(TINY))
    raw["data"]["synthetic"].update(synthetic_changes)
    return raw


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    """The tiny run's raw/ folder, written through ``neuralogcm synthesize``."""
    root = tmp_path_factory.mktemp("synthetic")
    config = root / "config.yaml"
    config.write_text(yaml.safe_dump(_config()))
    assert cli.main(["synthesize", "--config", str(config), "--out-dir", str(root / "raw")]) == 0
    return root / "raw"


def _read(path: Path, name: str) -> np.ndarray:
    """A variable decoded as the CF conventions say (scale, offset, fill -> NaN)."""
    with netCDF4.Dataset(path) as nc:
        values = nc[name][:]
    return np.ma.filled(values.astype(np.float64), np.nan)


def _attr_types(var) -> dict[str, type]:
    return {k: type(var.getncattr(k)) for k in var.ncattrs()}


# --- files and layout ---------------------------------------------------------------------------


def test_every_month_of_every_year_is_written(run_dir):
    expected = {f"{source}/{year}/{month:02d}.nc" for source in ("era5", "glorys")
                for year in (2017, 2018, 2019, 2020) for month in range(1, 13)}
    found = {str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file()}
    assert found == expected  # no temporary files left behind either


def test_era5_layout_matches_the_new_cds_fixture(run_dir):
    path = run_dir / "era5/2020/02.nc"
    with netCDF4.Dataset(path) as ours, netCDF4.Dataset(ERA5_FIXTURE) as real:
        assert list(ours.dimensions) == list(real.dimensions)
        assert ours.ncattrs() == real.ncattrs()
        for name in ("number", "valid_time", "latitude", "longitude", "expver", "u10", "v10"):
            assert ours[name].dimensions == real[name].dimensions, name
            assert ours[name].dtype == real[name].dtype, name
            assert _attr_types(ours[name]) == _attr_types(real[name]), name
            if name in ("u10", "v10"):
                assert ours[name].filters()["zlib"] and ours[name].filters()["shuffle"]
        for name in ("t2m", "msl"):
            assert ours[name].dtype == np.float32
            assert ours[name].ncattrs() == real["u10"].ncattrs()
        assert ours["msl"].units == "Pa" and ours["t2m"].units == "K"
        assert ours["msl"].GRIB_paramId == 151 and ours["t2m"].GRIB_paramId == 167
        assert np.isnan(ours["u10"]._FillValue) and np.isnan(ours["latitude"]._FillValue)
        for attr in ("units", "calendar"):
            assert ours["valid_time"].getncattr(attr) == real["valid_time"].getncattr(attr)
        assert ours["number"][...] == 0
        assert set(ours["expver"][:]) == {"0001"}
        lat, lon = ours["latitude"][:], ours["longitude"][:]
        seconds = ours["valid_time"][:]
    np.testing.assert_allclose(lat, 90.0 - RES * np.arange(180 / RES + 1))  # descending
    np.testing.assert_allclose(lon, RES * np.arange(360 / RES))
    expected = pd.date_range("2020-02-01 12:00", "2020-02-29 12:00", freq="D")  # leap year
    assert (pd.to_datetime(seconds, unit="s") == expected).all()


def test_glorys_layout_matches_the_toolbox_fixture(run_dir):
    path = run_dir / "glorys/2019/07.nc"
    with netCDF4.Dataset(path) as ours, netCDF4.Dataset(GLORYS_FIXTURE) as real:
        assert list(ours.dimensions) == list(real.dimensions)
        assert list(ours.variables) == list(real.variables)
        assert ours.ncattrs()[: len(real.ncattrs())] == real.ncattrs()
        assert _attr_types(ours)["field_julian_date"] == _attr_types(real)["field_julian_date"]
        for name, var in real.variables.items():
            mine = ours[name]
            assert mine.dimensions == var.dimensions, name
            assert mine.dtype == var.dtype, name
            assert _attr_types(mine) == _attr_types(var), name
            for attr in ("units", "standard_name", "long_name", "add_offset", "scale_factor",
                         "_FillValue", "positive", "calendar", "axis", "unit_long"):
                if attr in var.ncattrs():
                    assert mine.getncattr(attr) == var.getncattr(attr), (name, attr)
            if mine.dtype == np.int16:
                assert mine.filters()["zlib"], name
        depth = ours["depth"][:]
        lat, lon = ours["latitude"][:], ours["longitude"][:]
        hours = ours["time"][:]
        ours.set_auto_maskandscale(False)
        packed = ours["thetao"][:]
        valid = packed[packed != -32767]
        assert ours["thetao"].valid_min == valid.min() and ours["thetao"].valid_max == valid.max()
    # depth: the configured levels and unselected real GLORYS levels next to them
    assert set(np.round(DEPTHS, 3)) < set(np.round(depth.astype(float), 3))
    assert all(np.abs(np.asarray(GLORYS_LEVELS) - d).min() < 1e-3 for d in depth)
    assert (np.diff(depth) > 0).all()
    np.testing.assert_allclose(lat, -80.0 + RES * np.arange(170 / RES + 1))  # ascending
    np.testing.assert_allclose(lon, -180.0 + RES * np.arange(360 / RES))
    assert hours.dtype == np.float32
    expected = pd.date_range("2019-07-01", "2019-07-31", freq="D")  # 00:00 daily means
    assert (pd.Timestamp("1950-01-01") + pd.to_timedelta(hours, unit="h") == expected).all()
    assert (packed == -32767).any()  # land is the fill value


def test_files_open_through_the_raw_reader(run_dir):
    glorys = read.open_month(run_dir / "glorys/2020/02.nc", "glorys", 2020, 2, depths=DEPTHS)
    era5 = read.open_month(run_dir / "era5/2020/02.nc", "era5", 2020, 2)
    days = pd.date_range("2020-02-01", "2020-02-29", freq="D")
    for ds in (glorys, era5):
        assert (pd.DatetimeIndex(ds["time"].values) == days).all()
        assert (np.diff(ds["lat"].values) > 0).all()
        assert ds["lon"].values.min() >= 0 and ds["lon"].values.max() < 360
    np.testing.assert_allclose(glorys["depth"].values, DEPTHS)
    assert glorys["thetao"].dims == ("time", "depth", "lat", "lon")
    # the reader's values are the file's values, moved to 0..360 and with NaN on land
    raw = _read(run_dir / "glorys/2020/02.nc", "thetao")  # (T, Lfile, H, W), lon -180..180
    with netCDF4.Dataset(run_dir / "glorys/2020/02.nc") as nc:
        level = int(np.abs(nc["depth"][:] - DEPTHS[1]).argmin())
    expected = np.roll(raw[:, level], raw.shape[-1] // 2, axis=-1)  # -180..180 -> 0..360
    got = glorys["thetao"].isel(depth=1).values
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    assert np.isnan(got).any() and np.isfinite(got).any()
    t2m = era5["t2m"].values
    np.testing.assert_allclose(t2m, _read(run_dir / "era5/2020/02.nc", "t2m")[:, ::-1], atol=0)


# --- determinism --------------------------------------------------------------------------------


def test_same_seed_same_bytes_other_seed_other_values(run_dir, tmp_path):
    same, other = tmp_path / "same", tmp_path / "other"
    synthesize(validate(_config()), same)
    synthesize(validate(_config(seed=1)), other)
    for name in ("era5/2018/03.nc", "glorys/2018/03.nc", "glorys/2020/12.nc"):
        assert filecmp.cmp(run_dir / name, same / name, shallow=False), name
    for name, var in (("era5/2018/03.nc", "msl"), ("glorys/2018/03.nc", "zos"),
                      ("glorys/2018/03.nc", "thetao")):
        a, b = _read(run_dir / name, var), _read(other / name, var)
        assert np.nanmax(np.abs(a - b)) > {"msl": 500.0, "zos": 0.02, "thetao": 0.05}[var]


# --- ranges, mask, balance, seasons -------------------------------------------------------------


def _year(run_dir: Path, source: str, name: str, year: int = 2019) -> np.ndarray:
    return np.concatenate([_read(run_dir / f"{source}/{year}/{m:02d}.nc", name)
                           for m in range(1, 13)])


def test_values_lie_in_realistic_ranges(run_dir):
    limits = {"thetao": (-2.0, 31.0), "so": (32.5, 37.5), "zos": (-1.6, 1.6),
              "uo": (-1.5, 1.5), "vo": (-1.5, 1.5)}
    for name, (lo, hi) in limits.items():
        values = _year(run_dir, "glorys", name)
        assert lo <= np.nanmin(values) and np.nanmax(values) <= hi, name
    speed = np.hypot(_year(run_dir, "glorys", "uo"), _year(run_dir, "glorys", "vo"))
    assert np.nanmax(speed) > 0.4  # the equatorial currents
    thetao = _year(run_dir, "glorys", "thetao")
    assert np.nanmax(thetao[:, 0]) > 25.0 and np.nanmin(thetao[:, 0]) < 0.0
    mean_by_level = np.nanmean(thetao, axis=(0, 2, 3))
    assert (np.diff(mean_by_level) < 0).all()  # temperature falls with depth
    limits = {"t2m": (200.0, 320.0), "msl": (94000.0, 108000.0), "u10": (-40.0, 40.0),
              "v10": (-40.0, 40.0)}
    for name, (lo, hi) in limits.items():
        values = _year(run_dir, "era5", name)
        assert np.isfinite(values).all() and lo <= values.min() and values.max() <= hi, name
    assert np.std(_year(run_dir, "era5", "msl")) > 500.0  # weather


def test_land_mask_grows_with_depth(run_dir):
    thetao = _read(run_dir / "glorys/2019/01.nc", "thetao")
    ocean = np.isfinite(thetao)
    assert (ocean == ocean[:1]).all()  # the same mask every day
    mask = ocean[0]
    for upper, lower in zip(mask[:-1], mask[1:], strict=True):
        assert (lower <= upper).all()
    assert mask[-1].sum() < mask[0].sum()
    zos = _read(run_dir / "glorys/2019/01.nc", "zos")
    assert (np.isfinite(zos[0]) == mask[0]).all()


def test_planet_has_islands_a_closed_sea_shelves_and_a_sill():
    lat = np.arange(-79.75, 90.0, 0.5)
    lon = np.arange(-180.0, 180.0, 0.5)
    depth = bathymetry(*np.meshgrid(lat, lon, indexing="ij"))
    surface, deep = depth > 0.5, depth > 155.0
    tiled = np.concatenate([surface, surface], axis=1)  # longitude is periodic

    def components(water):
        labels, n = ndimage.label(np.concatenate([water, water], axis=1))
        sizes = np.bincount(labels.ravel())[1:]
        return labels[:, : water.shape[1]], sizes, n

    _, n_land = ndimage.label(~tiled)
    assert n_land >= 2 * 8  # continents, caps and islands (each counted twice when tiled)
    labels, sizes, _ = components(surface)
    world = np.argmax(sizes) + 1
    closed = [k for k in np.unique(labels[surface]) if k != world]
    assert closed, "no closed sea"
    # the Mediterranean-like sea is joined to the world ocean at the surface, not below its sill
    med = (np.abs(lat - 38.5) < 1)[:, None] & (np.abs(lon - 16) < 1)[None]
    assert (labels[med & surface] == world).all()
    deep_labels, deep_sizes, _ = components(deep)
    assert (deep_labels[med & deep] != np.argmax(deep_sizes) + 1).all()
    # shelves: ocean at the surface that is land at 155 m, around every continent
    assert (surface & ~deep).sum() > 0.05 * surface.sum()


def _geostrophic_terms(zos, vo, lat, res):
    """(f v, g d(zos)/dx) by centred differences on a periodic grid of ``res`` deg, 1/s^2 m."""
    dx = 6.371e6 * np.cos(np.deg2rad(lat))[:, None] * np.deg2rad(res)
    detadx = (np.roll(zos, -1, -1) - np.roll(zos, 1, -1)) / (2 * dx)
    f = 2 * 7.292115e-5 * np.sin(np.deg2rad(lat))[:, None]
    return f * vo, 9.80665 * detadx


def _balance(lhs, rhs, lat):
    """RMS of (lhs - rhs) relative to RMS of rhs, and their correlation, 20-70 deg N and S."""
    band = np.broadcast_to(((np.abs(lat) >= 20) & (np.abs(lat) <= 70))[:, None], lhs.shape[-2:])
    use = band & np.isfinite(lhs) & np.isfinite(rhs)
    residual = np.sqrt(np.mean((lhs - rhs)[use] ** 2) / np.mean(rhs[use] ** 2))
    return residual, np.corrcoef(lhs[use], rhs[use])[0, 1]


def test_currents_are_in_near_geostrophic_balance():
    """On the demo's 2-degree native grid over 30 days, 20-70 degrees from the equator:
    the geostrophic part satisfies f v = g d(zos)/dx to 3 % (the regularised 1/f), and with the
    wind-driven Ekman drift added the RMS residual stays below 35 %."""
    lat = -80.0 + 2.0 * np.arange(86)
    lon = -180.0 + 2.0 * np.arange(180)
    rng = np.random.default_rng(0)
    atmosphere = Atmosphere(rng)
    ocean = Ocean(lat, lon, [0.494025], atmosphere, Processes(), rng)
    terms = {"geostrophic": [], "total": []}
    for day in range(30):
        t = 17000.5 + day
        zos = ocean.ssh(t)
        forcing = ocean.atm.fields(t)
        stress = synthetic.wind_stress(forcing["u10"], forcing["v10"], ocean.p)
        for name, (taux, tauy) in (("geostrophic", (0 * zos, 0 * zos)), ("total", stress)):
            _, vo = ocean.currents(zos, taux, tauy)
            lhs, rhs = _geostrophic_terms(zos, np.where(ocean.mask[0], vo[0], np.nan), lat, 2.0)
            terms[name].append((lhs, rhs))
        atmosphere.advance(rng)
        ocean.advance_eddies(rng)
    for name, limit in (("geostrophic", 0.03), ("total", 0.35)):
        lhs, rhs = (np.stack(x) for x in zip(*terms[name], strict=True))
        residual, correlation = _balance(lhs, rhs, lat)
        assert residual < limit, (name, residual)
        assert correlation > 0.9, (name, correlation)


def test_written_currents_follow_the_written_sea_surface_height(run_dir):
    path = run_dir / "glorys/2019/05.nc"
    lat = _read(path, "latitude")
    lhs, rhs = _geostrophic_terms(_read(path, "zos"), _read(path, "vo")[:, 0], lat, RES)
    _, correlation = _balance(lhs, rhs, lat)
    assert correlation > 0.7


def test_sea_surface_temperature_follows_the_seasons(run_dir):
    sst = _year(run_dir, "glorys", "thetao")[:, 0]
    days = pd.date_range("2019-01-01", "2019-12-31", freq="D")
    lat = _read(run_dir / "glorys/2019/01.nc", "latitude")
    feb, aug = days.month == 2, days.month == 8
    for band, sign in (((lat >= 20) & (lat <= 60), 1), ((lat <= -20) & (lat >= -60), -1)):
        summer_minus_winter = sign * (np.nanmean(sst[aug][:, band]) - np.nanmean(sst[feb][:, band]))
        assert summer_minus_winter > 1.0, sign
    t2m = _year(run_dir, "era5", "t2m")
    north = RES * np.arange(180 / RES + 1)[::-1] - 90.0 > 30  # descending latitudes
    assert t2m[aug][:, north].mean() - t2m[feb][:, north].mean() > 5.0


# --- the known diffusivity and the advection scheme ---------------------------------------------


def test_recorded_diffusivity_is_the_one_the_generator_uses(run_dir):
    with netCDF4.Dataset(run_dir / "glorys/2018/01.nc") as nc:
        recorded = nc.getncattr("synthetic_tracer_diffusivity_m2_s")
    assert recorded == KAPPA
    # the generator's diffusion with that diffusivity: kappa lap(Y) = -2 kappa Y / R^2 for the
    # degree-1 spherical harmonics Y = sin(lat) + cos(lat) cos(lon)
    lat = -80.0 + 2.0 * np.arange(86)
    lon = -180.0 + 2.0 * np.arange(180)
    rng = np.random.default_rng(0)
    ocean = Ocean(lat, lon, [0.494025], Atmosphere(rng),
                  Processes(tracer_diffusivity_m2_s=recorded), rng)
    phi, lam = np.deg2rad(np.meshgrid(lat, lon, indexing="ij"))
    field = (np.sin(phi) + np.cos(phi) * np.cos(lam))[None]
    tendency = ocean.diffusion_tendency(field)[0] / synthetic.DAY
    m = ocean.mask[0]
    interior = m & np.roll(m, 1, 0) & np.roll(m, -1, 0) & np.roll(m, 1, 1) & np.roll(m, -1, 1)
    expected = -2 * KAPPA * field[0] / synthetic.EARTH_RADIUS**2
    np.testing.assert_allclose(tendency[interior], expected[interior], rtol=0,
                               atol=2e-3 * np.abs(expected).max())
    # no flux through land: a field that is 1 on the ocean does not change anywhere
    assert np.abs(ocean.diffusion_tendency(np.ones_like(field))).max() == 0


def test_stommel_gyre_has_a_sverdrup_interior_and_a_western_boundary_current():
    """Uniform curl in a closed basin (10-50 N, 0-60 E, 1-degree grid): in the eastern interior
    beta dpsi/dx = curl / rho0 (psi = curl R^2 / (2 Omega rho0) (lon - lon_east)) to 5 %, and the
    return flow is squeezed against the western wall."""
    lat = np.arange(-89.5, 90.0, 1.0)
    lon = np.arange(0.0, 360.0, 1.0)
    basin = ((lat > 10) & (lat < 50))[:, None] & ((lon > 0) & (lon < 60))[None]
    forcing = -1.0e-10  # curl(tau) / rho0, m/s^2
    psi = synthetic._stommel(basin, lat, np.deg2rad(1.0), np.full((1, *basin.shape), forcing),
                             250.0e3)[0]
    row = int(np.argmin(np.abs(lat - 30.5)))
    sverdrup = forcing * synthetic.EARTH_RADIUS**2 / (2 * synthetic.OMEGA) * np.deg2rad(lon - 60)
    east = (lon >= 40) & (lon < 60)
    np.testing.assert_allclose(psi[row, east], sverdrup[east], rtol=0.05)
    v = np.abs(np.diff(psi[row]))
    assert v[(lon[1:] > 0) & (lon[1:] <= 5)].max() > 10 * v[(lon[1:] > 30) & (lon[1:] < 60)].max()


def test_quickest_advection_is_third_order():
    errors = []
    for n in (32, 64, 128):
        x = np.sin(2 * np.pi * np.arange(n) / n)
        courant = np.full(n, 0.4)
        weights = Ocean.quickest_weights(courant)
        field = x.copy()
        for _ in range(5 * n):  # two revolutions
            m1, p1 = np.roll(field, 1), np.roll(field, -1)
            m2, p2 = np.roll(field, 2), np.roll(field, -2)
            field = (weights[0] * field + weights[1] * (p1 - m1) + weights[2] * (p1 + m1)
                     + weights[3] * (p2 - m2) + weights[4] * (p2 + m2))
        errors.append(np.abs(field - x).max())
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert (orders > 2.7).all(), orders


# --- bad input ----------------------------------------------------------------------------------


def test_depth_that_is_not_a_glorys_level_is_a_config_error():
    raw = _config()
    raw["data"]["depths"] = [0.494025, 42.0]
    with pytest.raises(ConfigError, match=r"'data\.depths'.*42 m \(nearest level 40\.344"):
        validate(raw)
    np.testing.assert_allclose(file_levels([0.494025, 40.34405]),
                               [0.494025, 1.541375, 40.34405, 47.37369])


@pytest.mark.parametrize(("key", "value", "message"), [
    ("ocean_resolution", 3.0, "does not divide 170"),
    ("atmosphere_resolution", 7.0, "does not divide 180"),
    ("ocean_resolution", 10.0, "finer than the target grid"),
])
def test_bad_native_grid_stops_before_writing(tmp_path, capsys, key, value, message):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(_config(**{key: value})))
    out = tmp_path / "raw"
    assert cli.main(["synthesize", "--config", str(config), "--out-dir", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"data.synthetic.{key}" in err and message in err
    assert not out.exists()
