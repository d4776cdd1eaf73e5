"""Open a raw monthly file of ERA5 or GLORYS12 into the canonical layout, and check it.

Every raw file, whether downloaded, synthesised or found on disk, goes through :func:`open_raw`
and :func:`validate_raw` before anything downstream uses it.

The canonical layout: variables ``u10 v10 t2m msl`` (ERA5) or ``so uo vo thetao zos`` (GLORYS),
dims ``(time, depth, lat, lon)`` or ``(time, lat, lon)``, float32 in the sources' units with NaN
wherever the file marks a missing value (land), ``lat`` ascending, ``lon`` in [0, 360) ascending,
``depth`` positive down in m, ``time`` the date at 00:00 (datetime64[ns]). The data stay lazy
(dask chunks of whole lat-lon planes, at most dask's array.chunk-size each), so a 50 GB
GLORYS month is never loaded at once.

Layouts handled (see tests/data/real/README.md):

- ERA5, new CDS (2024+): dim ``valid_time`` (int64 s since 1970), scalar coordinate ``number``,
  string ``expver`` along ``valid_time``, latitude descending, NaN ``_FillValue`` on coordinates.
- ERA5, legacy CDS (grib_to_netcdf): dim ``time`` (hours since 1900), int16 with
  scale_factor/add_offset, longitude possibly -180..180, for recent months an ``expver``
  dimension (ERA5 and ERA5T halves, each NaN where the other holds data), which is merged.
- GLORYS12, copernicusmarine toolbox 1.x/2.x and the original daily-mean files: ``time`` in hours
  since 1950 (float32 or float64, 00:00 or 12:00), int16 packed with ``_FillValue`` -32767, or
  float32 with ``_FillValue`` 9.96921e36 (netCDF's default float fill), longitude -180..180.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import xarray as xr

from neuralogcm.errors import DataError, UserError
from neuralogcm.levels import DEPTH_TOLERANCE_M

#: The canonical variables each source must provide, in the order they are stored.
VARIABLES = {"era5": ("u10", "v10", "t2m", "msl"), "glorys": ("so", "uo", "vo", "thetao", "zos")}

#: Variables that have a depth dimension.
DEPTH_VARIABLES = frozenset({"so", "uo", "vo", "thetao"})

#: Plausible physical ranges (inclusive, in the sources' units): a value outside marks a file
#: that is wrong (bad decoding, wrong variable, corrupt data), not an extreme ocean or atmosphere.
#: thetao deg C (sea water freezes near -2, the warmest surface water is about 35), so 1e-3
#: (practical salinity; river plumes reach 0, the Red Sea about 41), uo/vo m/s (the fastest
#: currents are about 2.5), zos m above the geoid (about +-2), t2m K (record lows 184, highs 330),
#: msl Pa (record lows about 87000, highs about 108400), u10/v10 m/s.
PLAUSIBLE_RANGES = {
    "thetao": (-3.0, 40.0),
    "so": (0.0, 45.0),
    "uo": (-5.0, 5.0),
    "vo": (-5.0, 5.0),
    "zos": (-5.0, 5.0),
    "t2m": (170.0, 340.0),
    "msl": (85000.0, 110000.0),
    "u10": (-100.0, 100.0),
    "v10": (-100.0, 100.0),
}

# netCDF's default fill for float (9.96921e36): a float value at or above this magnitude is a
# missing value even where the file does not declare it as _FillValue.
_DEFAULT_FLOAT_FILL = 9.9e36

# Dask chunks: whole lat-lon planes, as many days and levels as fit in dask's array.chunk-size
# (128 MiB by default): one level-day at full GLORYS resolution (70 MB decoded), a whole tiny file.
_CHUNKS = {"time": "auto", "valid_time": "auto", "depth": "auto", "lat": -1, "latitude": -1,
           "lon": -1, "longitude": -1}

_COORD_NAMES = {"valid_time": "time", "latitude": "lat", "longitude": "lon"}

# Errors the netCDF/HDF5 libraries raise for a truncated, corrupt or non-netCDF file.
# (netCDF4 raises AttributeError for a damaged attribute.)
_READ_ERRORS = (OSError, RuntimeError, ValueError, KeyError, IndexError, TypeError, AttributeError)


# netCDF3 (classic, 64-bit offset, CDF-5) header: list tags and the bytes of each nc_type.
_NC_DIMENSION, _NC_VARIABLE, _NC_ATTRIBUTE = 10, 11, 12
_NC_TYPE_BYTES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 4, 6: 8, 7: 1, 8: 2, 9: 4, 10: 8, 11: 8}
_STREAMING = (2**32 - 1, 2**64 - 1)  # numrecs of a file still being written


class _Header:
    """A big-endian reader of a netCDF3 header (the netCDF classic format specification)."""

    def __init__(self, file, version: int) -> None:
        self.file = file
        self.count_bytes = 8 if version == 5 else 4  # nelems, dim lengths, numrecs, vsize
        self.offset_bytes = 4 if version == 1 else 8  # begin

    def read(self, size: int) -> bytes:
        data = self.file.read(size)
        if len(data) < size:
            raise EOFError
        return data

    def uint(self, size: int) -> int:
        return int.from_bytes(self.read(size), "big")

    def count(self) -> int:
        return self.uint(self.count_bytes)

    def name(self) -> str:
        n = self.count()
        return self.read(-(-n // 4) * 4)[:n].decode("utf8", "replace")

    def tagged(self) -> int:
        """The number of elements of a dimension, attribute or variable list."""
        self.uint(4)  # the tag, or 0 for an absent list
        return self.count()

    def skip_attributes(self) -> None:
        for _ in range(self.tagged()):
            self.name()
            nc_type = self.uint(4)
            self.read(-(-self.count() * _NC_TYPE_BYTES.get(nc_type, 1) // 4) * 4)


def netcdf3_size_problem(path: str | os.PathLike) -> str:
    """For a netCDF3 file, what its header says is missing from it (a truncated download):
    empty when the file holds every variable's data, or is not netCDF3 (netCDF4/HDF5 files are
    checked by the HDF5 library). Sizes in bytes."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        magic = f.read(4)
        if magic[:3] != b"CDF" or magic[3:] not in (b"\x01", b"\x02", b"\x05"):
            return ""
        header = _Header(f, magic[3])
        try:
            numrecs = header.count()
            dims = [(header.name(), header.count()) for _ in range(header.tagged())]
            header.skip_attributes()
            variables = []
            for _ in range(header.tagged()):
                name = header.name()
                dimids = [header.count() for _ in range(header.count())]
                header.skip_attributes()
                nc_type, vsize = header.uint(4), header.count()
                begin = header.uint(header.offset_bytes)
                record = bool(dimids) and dims[dimids[0]][1] == 0
                nbytes = math.prod(dims[i][1] for i in dimids[record:])
                variables.append((name, record, begin, vsize,
                                  nbytes * _NC_TYPE_BYTES.get(nc_type, 1)))
        except (EOFError, IndexError):
            return f"truncated: its netCDF3 header is cut short (the file has {size} bytes)"
    records = [v for v in variables if v[1]]
    record_bytes = records[0][4] if len(records) == 1 else sum(v[3] for v in records)
    ends = {name: begin + nbytes for name, record, begin, _, nbytes in variables if not record}
    if numrecs not in _STREAMING:
        ends |= {name: begin + max(numrecs - 1, 0) * record_bytes + nbytes * (numrecs > 0)
                 for name, record, begin, _, nbytes in records}
    cut = [name for name, end in ends.items() if end > size]
    if not cut:
        return ""
    return (f"truncated: its netCDF3 header expects {max(ends.values())} bytes, the file has "
            f"{size}; the data of {', '.join(cut)} are incomplete")


def canonical_dims(name: str) -> tuple[str, ...]:
    """The dimensions of canonical variable ``name`` in a raw file opened by :func:`open_raw`."""
    return ("time", "depth", "lat", "lon") if name in DEPTH_VARIABLES else ("time", "lat", "lon")


def _check_source(source: str) -> None:
    if source not in VARIABLES:
        raise UserError(f"unknown raw data source {source!r}: expected one of {sorted(VARIABLES)}")


def open_raw(path: str | os.PathLike, source: str) -> xr.Dataset:
    """Open one raw file of ``source`` ("era5" or "glorys") lazily in the canonical layout.

    Variables of the file that are not canonical (d2m, sst, slt ...) are dropped; canonical ones
    that are missing are left for :func:`validate_raw` to report. Raises :class:`DataError`
    naming the file when it does not exist, cannot be read or lacks a time, lat or lon axis.
    """
    _check_source(source)
    path = Path(path)
    if not path.is_file():
        raise DataError(f"raw {source} file {path} does not exist")
    if problem := netcdf3_size_problem(path):
        raise DataError(f"raw {source} file {path}: {problem}")
    try:
        with warnings.catch_warnings():
            # the chunk size bounds the memory even where the file stores a month per chunk
            warnings.filterwarnings("ignore", "The specified chunks separate the stored chunks")
            ds = xr.open_dataset(path, engine="netcdf4", chunks=_CHUNKS, cache=False)
    except _READ_ERRORS as err:
        raise DataError(f"raw {source} file {path} cannot be read as netCDF "
                        f"(truncated or corrupt?): {err}") from None
    try:
        return _canonical(ds, source, path)
    except BaseException:
        ds.close()
        raise


def _canonical(ds: xr.Dataset, source: str, path: Path) -> xr.Dataset:
    ds = ds.rename({old: new for old, new in _COORD_NAMES.items() if old in ds.variables})
    missing = [dim for dim in ("time", "lat", "lon") if dim not in ds.dims]
    if missing:
        raise DataError(f"raw {source} file {path} has no {', '.join(missing)} dimension "
                        f"(dimensions: {', '.join(map(str, ds.dims)) or 'none'})")
    if "expver" in ds.dims:  # legacy CDS: ERA5 and ERA5T halves, each NaN where the other is set
        ds = _merge_expver(ds)
    ds = ds.drop_vars(["expver", "number"], errors="ignore")
    ds = ds[[name for name in VARIABLES[source] if name in ds.data_vars]]
    ds = ds.drop_vars([c for c in ds.coords if c not in ("time", "depth", "lat", "lon")])

    if not np.issubdtype(ds["time"].dtype, np.datetime64):
        raise DataError(f"raw {source} file {path}: time could not be decoded "
                        f"(units {ds['time'].attrs.get('units')!r})")
    days = pd.DatetimeIndex(ds["time"].values).floor("D").as_unit("ns")
    ds = ds.assign_coords(time=("time", days.values, {"long_name": "date"}))

    lon = np.mod(ds["lon"].values.astype(np.float64), 360.0)
    lon_values, lon_index = np.unique(lon, return_index=True)  # sorted; -180 and 180 kept once
    lat_values, lat_index = np.unique(ds["lat"].values.astype(np.float64), return_index=True)
    ds = ds.isel(lon=lon_index, lat=lat_index).assign_coords(
        lon=("lon", lon_values, {"units": "degrees_east", "standard_name": "longitude"}),
        lat=("lat", lat_values, {"units": "degrees_north", "standard_name": "latitude"}),
    )
    if "depth" in ds.dims:
        depth = ds["depth"].values.astype(np.float64)
        if ds["depth"].attrs.get("positive") == "up" or (depth.max() <= 0 and depth.min() < 0):
            depth = -depth
        order = np.argsort(depth)
        ds = ds.isel(depth=order).assign_coords(
            depth=("depth", depth[order], {"units": "m", "positive": "down",
                                           "standard_name": "depth"}))

    for name in list(ds.data_vars):
        var = ds[name].astype(np.float32)
        ds[name] = var.where(np.abs(var) < _DEFAULT_FLOAT_FILL).assign_attrs(ds[name].attrs)
    for var in ds.variables.values():
        var.encoding = {}
    ds = ds.transpose("time", "depth", "lat", "lon", missing_dims="ignore")
    return ds.assign_attrs(raw_source=source, raw_file=str(path))


def _merge_expver(ds: xr.Dataset) -> xr.Dataset:
    merged = ds.isel(expver=0, drop=True)
    for i in range(1, ds.sizes["expver"]):
        merged = merged.fillna(ds.isel(expver=i, drop=True))
    return merged


def select_depths(ds: xr.Dataset, depths, path: str | os.PathLike) -> xr.Dataset:
    """The configured ``depths`` (m) of ``ds``, each matched to the file's nearest level.

    The configured depths may be any subset of the file's levels (the paper's 23 are a
    non-contiguous subset of GLORYS12's 50). Each must lie within :data:`DEPTH_TOLERANCE_M` of a
    level; the result's ``depth`` coordinate holds the configured values.
    """
    if "depth" not in ds.dims:
        raise DataError(f"raw file {path} has no depth dimension to select depths from")
    levels = ds["depth"].values
    wanted = np.asarray(depths, dtype=np.float64)
    nearest = np.abs(levels[None, :] - wanted[:, None]).argmin(axis=1)
    off = np.abs(levels[nearest] - wanted) > DEPTH_TOLERANCE_M
    if off.any():
        bad = ", ".join(f"{d:g} m (nearest level {levels[i]:g} m)"
                        for d, i in zip(wanted[off], nearest[off], strict=True))
        raise DataError(f"raw file {path}: configured depth(s) {bad} match no level within "
                        f"{DEPTH_TOLERANCE_M} m; the file's levels are "
                        f"{', '.join(f'{v:g}' for v in levels)}")
    return ds.isel(depth=nearest).assign_coords(
        depth=("depth", wanted, ds["depth"].attrs))


def validate_raw(ds: xr.Dataset, source: str, path: str | os.PathLike, year: int | None = None,
                 month: int | None = None, depths=None) -> xr.Dataset:
    """Check a dataset from :func:`open_raw`; return it (restricted to ``depths`` if given).

    Checks: every canonical variable present with its dimensions; if ``year`` and ``month`` are
    given, every day of that month present exactly once and no other day; the configured
    ``depths`` (GLORYS) each within :data:`DEPTH_TOLERANCE_M` of a level; no variable all-NaN or
    all-NaN on any day; every finite value within :data:`PLAUSIBLE_RANGES`. Reads all the data
    once (streaming, one chunk at a time). Raises :class:`DataError` naming the file and every
    problem found.
    """
    _check_source(source)
    problems = []
    present = []
    for name in VARIABLES[source]:
        if name not in ds.data_vars:
            problems.append(f"variable {name} is missing")
            continue
        dims = canonical_dims(name)
        if ds[name].dims != dims:
            problems.append(f"variable {name} has dimensions {ds[name].dims}, expected {dims}")
            continue
        present.append(name)
    if year is not None and month is not None:
        problems += _calendar_problems(ds["time"].values, year, month)
    if depths is not None and "depth" in ds.dims:
        ds = select_depths(ds, depths, path)
    problems += _value_problems(ds, present, f"raw {source} file {path}")
    if problems:
        raise DataError(f"raw {source} file {path}: " + "; ".join(problems))
    return ds


def _calendar_problems(times: np.ndarray, year: int, month: int) -> list[str]:
    days = pd.DatetimeIndex(times).floor("D")
    expected = pd.date_range(f"{year:04d}-{month:02d}-01", periods=1, freq="MS")
    expected = pd.date_range(expected[0], expected[0] + pd.offsets.MonthEnd(0), freq="D")
    counts = days.value_counts()
    problems = []
    missing = expected.difference(days)
    if len(missing):
        problems.append(f"day(s) of {year:04d}-{month:02d} missing: "
                        + _list_days(missing))
    duplicated = counts.index[counts > 1].sort_values()
    if len(duplicated):
        problems.append("day(s) duplicated: " + _list_days(duplicated))
    extra = days.difference(expected)
    if len(extra):
        problems.append(f"day(s) outside {year:04d}-{month:02d}: " + _list_days(extra))
    return problems


def _list_days(days: pd.DatetimeIndex, shown: int = 5) -> str:
    text = ", ".join(d.strftime("%Y-%m-%d") for d in days[:shown])
    return text + (f" ... ({len(days)} in all)" if len(days) > shown else "")


def _value_problems(ds: xr.Dataset, names: list[str], what: str) -> list[str]:
    reductions = {}
    for name in names:
        var = ds[name]
        space = [d for d in var.dims if d != "time"]
        reductions[name] = (var.min(), var.max(), var.notnull().any(space))
    try:
        (computed,) = dask.compute(reductions)
    except _READ_ERRORS as err:
        raise DataError(f"{what}: data cannot be read (truncated or corrupt?): {err}") from None
    problems = []
    for name, (vmin, vmax, finite_by_day) in computed.items():
        if not bool(finite_by_day.any()):
            problems.append(f"variable {name} is all NaN")
            continue
        empty = pd.DatetimeIndex(finite_by_day["time"].values[~finite_by_day.values])
        if len(empty):
            problems.append(f"variable {name} is all NaN on " + _list_days(empty))
        lo, hi = PLAUSIBLE_RANGES[name]
        vmin, vmax = float(vmin), float(vmax)
        if vmin < lo or vmax > hi:
            units = ds[name].attrs.get("units", "")
            problems.append(f"variable {name} has values {vmin:g}..{vmax:g} {units} outside "
                            f"the plausible range {lo:g}..{hi:g}")
    return problems


def open_month(path: str | os.PathLike, source: str, year: int, month: int,
               depths=None) -> xr.Dataset:
    """:func:`open_raw` + :func:`validate_raw`: one month's raw file, checked, lazily opened.

    The way every raw file (downloaded, synthesised or local) is read; the dataset holds only
    the configured ``depths`` when given. Raises :class:`DataError` naming the file.
    """
    ds = open_raw(path, source)
    try:
        return validate_raw(ds, source, path, year, month, depths)
    except BaseException:
        ds.close()
        raise
