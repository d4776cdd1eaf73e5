"""The raw-file reader (sources/read.py) against the real-format fixtures and broken files.

Expected values come from netCDF4 with automatic masking and scaling switched off, decoded by
hand (raw * scale_factor + add_offset, NaN where raw == _FillValue) and reordered to ascending
latitude and 0..360 longitude independently of the reader.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import dask
import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from raw_formats import GLORYS_LEVELS, era5_month, glorys_month

from neuralogcm.errors import DataError, UserError
from neuralogcm.levels import DEPTH_TOLERANCE_M
from neuralogcm.sources.read import (
    PLAUSIBLE_RANGES,
    VARIABLES,
    open_month,
    open_raw,
    select_depths,
    validate_raw,
)

REAL = Path(__file__).parent / "data" / "real"
GLORYS_MY = REAL / "glorys12_my_P1D_multivars_1993-01-01_02.nc"
GLORYS_ORIGINAL = REAL / "glorys12_original_5levels_packed.nc"
GLORYS_ANFC = REAL / "glorys12_anfc_uovo_toolbox222.nc"
ERA5_NEW = REAL / "era5_newcds_u10v10_instant.nc"
ERA5_EXPVER = REAL / "era5_newcds_t2m_mixed_expver.nc"
ERA5_LEGACY = REAL / "era5_legacy_u10v10t2mmsl_packed.nc"
FIXTURES = {GLORYS_MY: "glorys", GLORYS_ORIGINAL: "glorys", GLORYS_ANFC: "glorys",
            ERA5_NEW: "era5", ERA5_EXPVER: "era5", ERA5_LEGACY: "era5"}
DEMO_DEPTHS = [0.494025, 40.34405, 155.8507, 541.0889]


def decode_by_hand(path: Path, name: str):
    """(values float64 with NaN at _FillValue, lat ascending, lon in 0..360 ascending)."""
    with netCDF4.Dataset(path) as nc:
        var = nc[name]
        var.set_auto_maskandscale(False)
        raw = np.asarray(var[:])
        values = raw * getattr(var, "scale_factor", 1.0) + getattr(var, "add_offset", 0.0)
        values = np.where(raw == var.getncattr("_FillValue"), np.nan, values)
        lat = np.asarray(nc["latitude"][:], dtype=np.float64)
        lon = np.asarray(nc["longitude"][:], dtype=np.float64)
    lon = np.where(lon < 0, lon + 360.0, lon)
    ilat, ilon = np.argsort(lat), np.argsort(lon)
    return values[..., ilat, :][..., ilon], lat[ilat], lon[ilon]


def dates(ds: xr.Dataset) -> list[str]:
    """The dataset's times as YYYY-MM-DD strings, after checking they are midnights."""
    times = pd.DatetimeIndex(ds["time"].values)
    assert (times == times.normalize()).all()
    return times.strftime("%Y-%m-%d").tolist()


@pytest.mark.parametrize("path", list(FIXTURES), ids=lambda p: p.stem)
def test_every_fixture_opens_in_canonical_layout(path):
    source = FIXTURES[path]
    with open_raw(path, source) as ds:
        assert set(ds.data_vars) <= set(VARIABLES[source]) and len(ds.data_vars) > 0
        assert np.all(np.diff(ds["lat"].values) > 0)
        lon = ds["lon"].values
        assert np.all(np.diff(lon) > 0) and lon.min() >= 0 and lon.max() < 360
        assert ds["time"].dtype == np.dtype("datetime64[ns]")
        assert np.all(ds["time"].values == ds["time"].values.astype("datetime64[D]"))
        assert set(ds.coords) <= {"time", "depth", "lat", "lon"}  # number, expver dropped
        for name, var in ds.data_vars.items():
            assert var.dtype == np.float32
            assert var.dims == (("time", "depth", "lat", "lon") if "depth" in var.dims
                                else ("time", "lat", "lon"))
            expected, lat, lon_expected = decode_by_hand(path, name)
            np.testing.assert_allclose(ds["lat"].values, lat, rtol=0, atol=1e-12)
            np.testing.assert_allclose(lon, lon_expected, rtol=0, atol=1e-9)
            values = var.values
            assert np.array_equal(np.isnan(values), np.isnan(expected)), name
            np.testing.assert_allclose(values, expected, rtol=2e-7, atol=1e-6, equal_nan=True)


def test_glorys_toolbox1_int16_values_and_times():
    with open_raw(GLORYS_MY, "glorys") as ds:
        assert list(ds.data_vars) == ["so", "uo", "vo", "thetao", "zos"]
        assert dates(ds) == ["1993-01-01", "1993-01-02"]
        assert ds["depth"].values == pytest.approx([0.494025])
        assert ds["lat"].values[[0, -1]] == pytest.approx([37.75, 43.0])
        assert ds["lon"].values[[0, -1]] == pytest.approx([295.0, 300.25])  # -65 .. -59.75 E
        # raw int16 2579 at (1993-01-01, 0.494 m, 37.75 N, 65 W); 21 + 2579 * scale_factor
        cell = ds["thetao"].sel(time="1993-01-01", lat=37.75, lon=295.0).isel(depth=0)
        assert float(cell) == pytest.approx(21.0 + 2579 * 0.0007324442267417908, rel=1e-6)
        # zos raw -2180 at (1993-01-02, 43 N, 59.75 W)
        cell = ds["zos"].sel(time="1993-01-02", lat=43.0, lon=300.25)
        assert float(cell) == pytest.approx(-2180 * 0.00030518509447574615, rel=1e-6)


def test_glorys_original_files_land_depths_and_noon_times():
    with open_raw(GLORYS_ORIGINAL, "glorys") as ds:
        # daily means stamped 12:00 map to their date
        assert dates(ds) == ["2012-01-01", "2012-12-31"]
        assert ds["depth"].values == pytest.approx([6.23941, 35.428406, 193.94075, 1069.0425,
                                                    3867.5671], rel=1e-7)
        assert int(ds["thetao"].isnull().sum()) == 542  # cells == -32767 in the file
        assert int(ds["uo"].isnull().sum()) == 544
        assert float(ds["thetao"].isel(time=0, depth=0).sel(lat=55.375, lon=345.375)) == \
            pytest.approx(21.0 - 13759 * 0.0007324442267417908, rel=1e-6)
        so = ds["so"].isel(time=1).sel(depth=193.94075, method="nearest")
        assert float(so.sel(lat=59.541668, lon=360 - 8.791666, method="nearest")) == \
            pytest.approx((23172 - 1) * 0.0015259254723787308, rel=1e-6)


def test_glorys_toolbox2_float_fill_becomes_nan():
    with open_raw(GLORYS_ANFC, "glorys") as ds:
        assert list(ds.data_vars) == ["uo", "vo"]
        assert dates(ds) == ["2025-01-01", "2025-01-02"]
        uo = ds["uo"].values
        assert int(np.isnan(uo).sum()) == 63708  # cells == 9.96921e36 in the file
        assert np.nanmax(np.abs(uo)) < 1.0
        # -1 .. 10 E wraps to 0 .. 10 and 359 .. 359.92: the 133 longitudes stay distinct
        lon = ds["lon"].values
        assert lon.size == 133 and lon[0] == 0.0 and lon[-1] == pytest.approx(359.9166717529297)
        # 0.121841 at (2025-01-01, 0.494 m, 50 N, 1 W) in the file; 9.96921e36 at 52.5 N, 1 W
        assert float(ds["uo"].isel(time=0, depth=0).sel(lat=50.0, lon=359.0)) == \
            pytest.approx(0.121841, rel=1e-6)
        assert np.isnan(float(ds["uo"].isel(time=0, depth=0).sel(lat=52.5, lon=359.0)))


def test_era5_new_cds_layout():
    with open_raw(ERA5_NEW, "era5") as ds:
        assert list(ds.data_vars) == ["u10", "v10"] and "number" not in ds.variables
        assert "expver" not in ds.variables
        assert ds["lat"].values[[0, -1]] == pytest.approx([19.0, 28.0])  # stored 28 .. 19
        # 16 six-hourly valid_times 2025-05-24 03:00 .. 05-27 21:00 -> their dates, 4 each
        days = pd.DatetimeIndex(ds["time"].values)
        assert days.value_counts().sort_index().to_dict() == {
            pd.Timestamp(f"2025-05-{d}"): 4 for d in (24, 25, 26, 27)}
        assert float(ds["u10"].isel(time=0).sel(lat=28.0, lon=86.0)) == pytest.approx(0.36535645)
        assert float(ds["v10"].isel(time=15).sel(lat=19.0, lon=93.0)) == pytest.approx(12.609421)


def test_era5_mixed_expver_is_dropped():
    with netCDF4.Dataset(ERA5_EXPVER) as nc:
        assert set(nc["expver"][:]) == {"0001", "0005"}
    with open_raw(ERA5_EXPVER, "era5") as ds:
        assert list(ds.data_vars) == ["t2m"]  # slt (soil type) dropped
        assert set(ds.variables) == {"t2m", "time", "lat", "lon"}
        assert ds.sizes["time"] == 132
        assert dates(ds)[0] == "2014-01-01" and dates(ds)[-1] == "2024-12-01"
        # the last month is ERA5T (expver 0005): 296.26428 K at 23 N, 75 E
        assert float(ds["t2m"].isel(time=-1).sel(lat=23.0, lon=75.0)) == pytest.approx(296.26428)


def test_era5_legacy_packed_layout():
    with open_raw(ERA5_LEGACY, "era5") as ds:
        assert list(ds.data_vars) == ["u10", "v10", "t2m", "msl"]  # d2m, sst, ssr, strd, tp dropped
        lon = ds["lon"].values
        assert lon.size == 321 and lon[0] == 0.0 and lon[-1] == 359.75
        assert lon[120] == 30.0 and lon[121] == 310.0  # 0 .. 30 E, then 50 W .. 0.25 W
        assert ds["lat"].values[[0, -1]] == pytest.approx([40.0, 80.0])
        assert (ds["time"].values == np.datetime64("2020-02-01", "ns")).all()  # 00:00 and 01:00
        msl = float(ds["msl"].isel(time=1).sel(lat=80.0, lon=310.0))
        assert msl == pytest.approx(98068.40733103933 + 8609 * 0.185337921352601, rel=1e-7)
        t2m = float(ds["t2m"].isel(time=0).sel(lat=40.0, lon=30.0))
        assert t2m == pytest.approx(255.4188258935514 + 14871 * 0.001306953131556811, rel=1e-7)


def test_select_depths_takes_a_non_contiguous_subset():
    with open_raw(GLORYS_ANFC, "glorys") as ds:
        wanted = [0.494025, 2.645669, 5.078224, 7.92956]  # levels 0, 2, 4, 6 of 7
        picked = select_depths(ds, wanted, GLORYS_ANFC)
        assert picked["depth"].values.tolist() == wanted
        np.testing.assert_array_equal(picked["uo"].values, ds["uo"].isel(depth=[0, 2, 4, 6]).values)
        with pytest.raises(DataError, match=r"3 m \(nearest level 2.64567 m\)") as err:
            select_depths(ds, [0.494025, 3.0], GLORYS_ANFC)
        assert str(GLORYS_ANFC) in str(err.value)
        off = 2.645669 + 2 * DEPTH_TOLERANCE_M
        with pytest.raises(DataError, match="match no level within 0.01 m"):
            select_depths(ds, [off], GLORYS_ANFC)


# --- validation of a whole month -----------------------------------------------------------

def write(ds: xr.Dataset, path: Path) -> Path:
    ds.to_netcdf(path)
    return path


@pytest.fixture
def era5_file(tmp_path):
    return write(era5_month(2020, 2), tmp_path / "era5.nc")


@pytest.mark.parametrize("packed", [True, False], ids=["int16", "float32"])
def test_valid_months_pass_and_keep_land_nan(tmp_path, packed):
    path = write(glorys_month(2020, 2, packed=packed), tmp_path / "glorys.nc")
    with open_month(path, "glorys", 2020, 2, DEMO_DEPTHS) as ds:
        assert ds.sizes == {"time": 29, "depth": 4, "lat": 9, "lon": 8}
        assert ds["depth"].values.tolist() == DEMO_DEPTHS
        thetao = ds["thetao"].values
        # the continent at 0..90 E (lon 0, 45) is land at every depth; 541 m is land everywhere
        assert np.isnan(thetao[:, :, :, :2]).all() and np.isnan(thetao[:, 3]).all()
        assert np.isfinite(thetao[:, 0, :, 2:]).all()
    with open_month(tmp_path / "glorys.nc", "glorys", 2020, 2) as ds:
        assert ds.sizes["depth"] == len(GLORYS_LEVELS)
    path = write(era5_month(2021, 2), tmp_path / "era5.nc")
    with open_month(path, "era5", 2021, 2) as ds:
        assert ds.sizes == {"time": 28, "lat": 7, "lon": 8}


def broken(tmp_path, source, change):
    ds = era5_month(2020, 2) if source == "era5" else glorys_month(2020, 2, packed=False)
    return write(change(ds), tmp_path / f"{source}_broken.nc")


def set_values(name, func):
    def change(ds):
        ds[name] = func(ds[name]).astype(np.float32)
        return ds
    return change


def drop_day(ds, index, dim):
    keep = np.arange(ds.sizes[dim]) != index
    return ds.isel({dim: keep})


def duplicate_day(ds):
    seconds = ds["valid_time"].values.copy()
    seconds[10] = seconds[9]
    return ds.assign_coords(valid_time=("valid_time", seconds, ds["valid_time"].attrs))


def nan_on_day(name, index):
    def change(ds):
        ds[name][{"time" if "time" in ds[name].dims else "valid_time": index}] = np.nan
        return ds
    return change


BAD_CASES = {
    "missing variable": ("era5", lambda ds: ds.drop_vars("msl"), r"variable msl is missing"),
    "missing dimension": ("glorys", lambda ds: ds.assign(thetao=ds["thetao"].isel(depth=0)),
                          r"variable thetao has dimensions \('time', 'lat', 'lon'\), expected"),
    "missing day": ("era5", lambda ds: drop_day(ds, 9, "valid_time"),
                    r"day\(s\) of 2020-02 missing: 2020-02-10"),
    "duplicated day": ("era5", duplicate_day,
                       r"missing: 2020-02-11; day\(s\) duplicated: 2020-02-10"),
    "day of another month": ("glorys", lambda ds: ds.assign_coords(
        time=ds["time"] + np.float32(24 * 29)), r"day\(s\) outside 2020-02: 2020-03-01"),
    "all-NaN variable": ("era5", set_values("t2m", lambda v: v * np.nan),
                         r"variable t2m is all NaN"),
    "all-NaN day": ("glorys", nan_on_day("zos", 27), r"variable zos is all NaN on 2020-02-28"),
    "t2m in Celsius": ("era5", set_values("t2m", lambda v: v - 273.15),
                       r"variable t2m has values -[\d.]+\.\.[\d.]+ K outside the plausible "
                       r"range 170\.\.340"),
    "msl in hPa": ("era5", set_values("msl", lambda v: v / 100), r"variable msl has values"),
    "wind in cm/s": ("era5", set_values("u10", lambda v: v * 100), r"variable u10 has values"),
    "thetao in Kelvin": ("glorys", set_values("thetao", lambda v: v + 273.15),
                         r"variable thetao has values .* outside the plausible range -3\.\.40"),
    "velocity in cm/s": ("glorys", set_values("vo", lambda v: v * 100), r"variable vo has"),
    "zos in cm": ("glorys", set_values("zos", lambda v: v * 100), r"variable zos has values"),
    "salinity as fraction": ("glorys", set_values("so", lambda v: v - 40), r"variable so has"),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_validate_raw_names_the_file_and_the_problem(tmp_path, case):
    source, change, message = BAD_CASES[case]
    path = broken(tmp_path, source, change)
    depths = DEMO_DEPTHS if source == "glorys" else None
    with open_raw(path, source) as ds, pytest.raises(DataError, match=message) as err:
        validate_raw(ds, source, path, 2020, 2, depths)
    assert str(err.value).startswith(f"raw {source} file {path}: ")


def test_every_range_is_documented_and_ordered():
    assert set(PLAUSIBLE_RANGES) == set(VARIABLES["era5"]) | set(VARIABLES["glorys"])
    assert all(lo < hi for lo, hi in PLAUSIBLE_RANGES.values())


def test_validate_raw_reports_every_problem_at_once(tmp_path):
    path = broken(tmp_path, "era5", lambda ds: drop_day(ds.drop_vars("v10"), 0, "valid_time"))
    with open_raw(path, "era5") as ds, pytest.raises(DataError) as err:
        validate_raw(ds, "era5", path, 2020, 2)
    assert "variable v10 is missing" in str(err.value)
    assert "missing: 2020-02-01" in str(err.value)


def test_configured_depth_without_a_level(tmp_path):
    path = write(glorys_month(2020, 2), tmp_path / "glorys.nc")
    with open_raw(path, "glorys") as ds, pytest.raises(DataError, match=r"5 m \(nearest level"):
        validate_raw(ds, "glorys", path, 2020, 2, [0.494025, 5.0])


def test_fixture_months_are_incomplete(tmp_path):
    """The fixtures are excerpts: validated as a month they report the days they lack."""
    with open_raw(GLORYS_MY, "glorys") as ds, pytest.raises(DataError) as err:
        validate_raw(ds, "glorys", GLORYS_MY, 1993, 1, [0.494025])
    assert "day(s) of 1993-01 missing: 1993-01-03" in str(err.value)
    assert "variable" not in str(err.value)  # all five variables present and plausible
    with open_raw(ERA5_NEW, "era5") as ds, pytest.raises(DataError) as err:
        validate_raw(ds, "era5", ERA5_NEW, 2025, 5)
    assert "variable t2m is missing; variable msl is missing" in str(err.value)
    assert "duplicated: 2025-05-24, 2025-05-25, 2025-05-26, 2025-05-27" in str(err.value)


@pytest.mark.parametrize("fraction", [0.0, 0.05, 0.5, 0.95])
def test_truncated_file_gives_data_error(tmp_path, fraction):
    data = GLORYS_MY.read_bytes()
    path = tmp_path / "truncated.nc"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(DataError, match=r"truncated.nc cannot be read as netCDF"):
        open_raw(path, "glorys")


@pytest.mark.parametrize("unlimited", [[], ["time"]], ids=["fixed-time", "record-time"])
def test_truncated_legacy_netcdf3_file_gives_data_error(tmp_path, unlimited):
    """Legacy CDS files are netCDF3, whose library reads the missing bytes of a truncated file
    as fill values (msl and t2m then decode to add_offset, times to 1900-01-01): the size the
    header implies must be checked."""
    path = tmp_path / "legacy.nc"
    with xr.open_dataset(ERA5_LEGACY, decode_cf=False) as ds:
        ds.to_netcdf(path, format="NETCDF3_64BIT", engine="netcdf4", unlimited_dims=unlimited)
    assert path.read_bytes()[:4] == b"CDF\x02"
    with open_raw(path, "era5") as copy, open_raw(ERA5_LEGACY, "era5") as real:
        xr.testing.assert_equal(copy.load(), real.load())
    data = path.read_bytes()
    for kept in (len(data) - 1000, len(data) // 2):
        path.write_bytes(data[:kept])
        with pytest.raises(DataError, match=rf"legacy.nc: truncated: its netCDF3 header expects "
                                            rf"{len(data)} bytes, the file has {kept}; the data "
                                            rf"of .*time.* are incomplete"):
            open_raw(path, "era5")
    path.write_bytes(data[:100])
    with pytest.raises(DataError, match="legacy.nc: truncated: its netCDF3 header is cut short"):
        open_raw(path, "era5")


def test_corrupt_compressed_chunk_gives_data_error(tmp_path):
    """Zeroed bytes inside a zlib-compressed chunk: the file opens, its data cannot be read."""
    data = bytearray(ERA5_NEW.read_bytes())
    middle = len(data) // 2
    data[middle: middle + 2000] = bytes(2000)
    path = tmp_path / "corrupt.nc"
    path.write_bytes(bytes(data))
    with open_raw(path, "era5") as ds, pytest.raises(DataError,
                                                     match=r"corrupt.nc: data cannot be read"):
        validate_raw(ds, "era5", path)


def test_not_netcdf_and_missing_files(tmp_path):
    text = tmp_path / "error.nc"
    text.write_text("<html>503 Service Unavailable</html>")
    with pytest.raises(DataError, match="error.nc cannot be read as netCDF"):
        open_raw(text, "era5")
    with pytest.raises(DataError, match=r"raw glorys file .*nowhere.nc does not exist"):
        open_raw(tmp_path / "nowhere.nc", "glorys")
    with pytest.raises(UserError, match="unknown raw data source 'oras5'"):
        open_raw(GLORYS_MY, "oras5")


def test_file_without_latitude(tmp_path):
    path = write(era5_month(2020, 2).rename(latitude="y"), tmp_path / "nolat.nc")
    with pytest.raises(DataError, match=r"nolat.nc has no lat dimension"):
        open_raw(path, "era5")


# --- layout variants without a fixture ----------------------------------------------------

def test_legacy_expver_dimension_is_merged(tmp_path):
    """Legacy CDS ERA5 + ERA5T: an expver dimension, each half NaN where the other has data."""
    ds = era5_month(2020, 2).drop_vars(["expver", "number"]).rename(valid_time="time")
    era5t = ds.copy(deep=True)
    late = ds["time"].values >= ds["time"].values[20]
    for name in VARIABLES["era5"]:
        ds[name][late] = np.nan
        era5t[name][~late] = np.nan
        era5t[name] = era5t[name] + np.float32(1.0)
    merged = xr.concat([ds, era5t], dim=xr.DataArray([1, 5], dims="expver", name="expver"))
    path = write(merged.transpose("time", "expver", ...), tmp_path / "legacy_expver.nc")
    with open_month(path, "era5", 2020, 2) as out:
        assert "expver" not in out.variables
        t2m = out["t2m"].values
        reference = era5_month(2020, 2)["t2m"].values[:, ::-1]
        np.testing.assert_allclose(t2m[:20], reference[:20])
        np.testing.assert_allclose(t2m[20:], reference[20:] + 1.0)


def test_unmarked_netcdf_default_fill_depth_positive_up_and_duplicate_meridian(tmp_path):
    ds = glorys_month(2020, 2, packed=False)
    ds = ds.assign_coords(depth=("depth", -ds["depth"].values, {"positive": "up", "units": "m"}))
    ds = ds.sortby("depth")  # stored from the deepest level up
    ds["uo"] = ds["uo"].fillna(np.float32(9.96921e36))
    ds["uo"].encoding = {"_FillValue": None}  # no _FillValue attribute at all
    east = ds.isel(longitude=[0]).assign_coords(longitude=[np.float32(180.0)])
    ds = xr.concat([ds, east], "longitude")  # -180 and 180: the same meridian twice
    path = write(ds, tmp_path / "variant.nc")
    with open_month(path, "glorys", 2020, 2, DEMO_DEPTHS) as out:
        assert out["depth"].values.tolist() == DEMO_DEPTHS
        assert out.sizes["lon"] == 8 and out["lon"].values[-1] == 315.0
        assert np.isnan(out["uo"].values).any() and np.nanmax(np.abs(out["uo"].values)) < 1
        expected = glorys_month(2020, 2, packed=False)["uo"].values
        np.testing.assert_array_equal(np.isnan(out["uo"].values[:, 0, :, 4]),
                                      np.isnan(expected[:, 0, :, 0]))


def test_lazy_chunks_are_whole_planes_within_the_chunk_size():
    with dask.config.set({"array.chunk-size": "100KiB"}):
        ds = open_raw(GLORYS_ANFC, "glorys")  # one level-day of uo: 61 x 133 float32 = 32 kB
    with ds:
        time_chunks, depth_chunks, lat_chunks, lon_chunks = ds["uo"].chunks
        assert lat_chunks == (61,) and lon_chunks == (133,)
        assert max(time_chunks) * max(depth_chunks) * 61 * 133 * 4 <= 100 * 1024
        assert len(time_chunks) * len(depth_chunks) > 1
        assert not isinstance(ds["uo"].variable._data, np.ndarray)  # lazy


def test_copied_fixtures_match_their_checksums(tmp_path):
    """tests/data/real holds the shared fixtures unchanged (SHA256SUMS from their source)."""
    import hashlib

    sums = dict(reversed(line.split()) for line in (REAL / "SHA256SUMS").read_text().splitlines())
    assert set(sums) == {p.name for p in FIXTURES}
    for path in FIXTURES:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sums[path.name]
    shutil.copy(GLORYS_MY, tmp_path / "copy.nc")  # the reader does not care about the name
    with open_raw(tmp_path / "copy.nc", "glorys") as ds:
        assert ds.attrs["raw_file"] == str(tmp_path / "copy.nc")
