"""Tiny monthly files in the real services' on-disk layouts (tests/data/real/README.md), to
build valid and deliberately broken raw files for the reader and the download tests.

- :func:`era5_month`: new-CDS ERA5 (``valid_time`` int64 s since 1970 at 12:00, descending
  ``latitude``, scalar ``number``, string ``expver``, float32 with NaN _FillValue).
- :func:`glorys_month`: GLORYS12 as the copernicusmarine toolbox writes it (``time`` float32
  hours since 1950 at 00:00, ``depth`` positive down, latitude -80..90 ascending, longitude
  -180..180), int16 packed with _FillValue -32767 (toolbox 1.x, ``packed=True``) or float32 with
  _FillValue 9.96921e36 (toolbox 2.x), NaN (land) deeper than a depth-dependent coast.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

#: Model levels of the tiny GLORYS files: the demo config's four depths and levels in between.
GLORYS_LEVELS = (0.494025, 1.541375, 40.34405, 47.37369, 155.8507, 541.0889, 643.5668)
NETCDF_FLOAT_FILL = np.float32(9.96921e36)


def _days(year: int, month: int) -> pd.DatetimeIndex:
    first = pd.Timestamp(year=year, month=month, day=1)
    return pd.date_range(first, first + pd.offsets.MonthEnd(0), freq="D")


def era5_month(year: int, month: int) -> xr.Dataset:
    """One month of u10, v10, t2m, msl on a 30 x 45 deg grid, as the new CDS delivers it."""
    times = _days(year, month) + pd.Timedelta(hours=12)
    lat = np.arange(90.0, -90.1, -30.0)
    lon = np.arange(0.0, 360.0, 45.0)
    day = np.arange(len(times), dtype=np.float32)[:, None, None]
    la = np.deg2rad(lat)[None, :, None]
    lo = np.deg2rad(lon)[None, None, :]
    fields = {
        "u10": 8.0 * np.cos(2 * la) + np.sin(lo + day / 5),
        "v10": 3.0 * np.sin(lo) * np.cos(la) + 0 * day,
        "t2m": 288.0 - 40.0 * np.sin(la) ** 2 + 0.1 * day + 0 * lo,
        "msl": 101325.0 + 900.0 * np.cos(3 * la) * np.cos(lo) + day,
    }
    units = {"u10": "m s**-1", "v10": "m s**-1", "t2m": "K", "msl": "Pa"}
    seconds = ((times - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1)).to_numpy(np.int64)
    ds = xr.Dataset(
        {name: (("valid_time", "latitude", "longitude"), values.astype(np.float32),
                {"units": units[name]}) for name, values in fields.items()},
        coords={
            "number": ((), np.int64(0), {"standard_name": "realization"}),
            "valid_time": ("valid_time", seconds, {"units": "seconds since 1970-01-01",
                                                   "calendar": "proleptic_gregorian",
                                                   "standard_name": "time"}),
            "latitude": ("latitude", lat, {"units": "degrees_north"}),
            "longitude": ("longitude", lon, {"units": "degrees_east"}),
            "expver": ("valid_time", np.full(len(times), "0001")),
        },
        attrs={"Conventions": "CF-1.7", "institution": "ECMWF (test)"},
    )
    for name in [*fields, "latitude", "longitude"]:
        ds[name].encoding["_FillValue"] = np.float32(np.nan) if name in fields else np.nan
    return ds


def glorys_month(year: int, month: int, levels=GLORYS_LEVELS, packed: bool = True) -> xr.Dataset:
    """One month of so, uo, vo, thetao, zos on a 20 x 45 deg grid with land, as the toolbox
    writes it (``packed``: int16 as toolbox 1.x; else float32 as toolbox 2.x)."""
    days = _days(year, month)
    hours = ((days - pd.Timestamp("1950-01-01")) / pd.Timedelta(hours=1)).to_numpy(np.float32)
    lat = np.arange(-80.0, 90.1, 20.0)
    lon = np.arange(-180.0, 180.0, 45.0)
    depth = np.asarray(levels, dtype=np.float32)
    day = np.arange(len(days), dtype=np.float64)[:, None, None, None]
    z = depth.astype(np.float64)[None, :, None, None]
    la = np.deg2rad(lat)[None, None, :, None]
    lo = np.deg2rad(lon)[None, None, None, :]
    # land: a continent at 0..45 E, and every cell deeper than a shelf that deepens eastwards
    land = ((lon[None, None, None, :] >= 0) & (lon[None, None, None, :] < 90)) | (
        z > 100.0 + 300.0 * (lon[None, None, None, :] + 180) / 360)
    land = np.broadcast_to(land, (len(days), len(depth), len(lat), len(lon)))
    fields = {
        "thetao": 2.0 + 25.0 * np.cos(la) ** 2 * np.exp(-z / 300) + 0.05 * day + 0 * lo,
        "so": 34.5 + np.cos(2 * la) + 0.001 * z + 0 * lo + 0 * day,
        "uo": 0.4 * np.cos(3 * la) * np.exp(-z / 200) + 0.01 * np.sin(lo + day),
        "vo": 0.2 * np.sin(2 * la) * np.cos(lo) + 0 * z + 0 * day,
    }
    data = {name: (("time", "depth", "latitude", "longitude"),
                   np.where(land, np.nan, values).astype(np.float32)) for name, values in
            fields.items()}
    zos = 0.8 * np.cos(la[:, 0]) - 0.3 + 0.01 * day[:, 0] + 0 * lo[:, 0]
    data["zos"] = (("time", "latitude", "longitude"),
                   np.where(land[:, 0], np.nan, zos).astype(np.float32))
    ds = xr.Dataset(
        data,
        coords={
            "time": ("time", hours, {"units": "hours since 1950-01-01", "calendar": "gregorian"}),
            "depth": ("depth", depth, {"units": "m", "positive": "down", "axis": "Z"}),
            "latitude": ("latitude", lat.astype(np.float32), {"units": "degrees_north"}),
            "longitude": ("longitude", lon.astype(np.float32), {"units": "degrees_east"}),
        },
        attrs={"title": "GLORYS12 format (test)", "copernicusmarine_version": "2.2.2"},
    )
    units = {"thetao": "degrees_C", "so": "1e-3", "uo": "m s-1", "vo": "m s-1", "zos": "m"}
    # the toolbox's packing: scale_factor and add_offset as in the GLORYS12 files
    so_scale = 0.0015259254723787308
    packing = {"thetao": (0.0007324442267417908, 21.0), "so": (so_scale, -so_scale),
               "uo": (0.0006103701889514923, 0.0), "vo": (0.0006103701889514923, 0.0),
               "zos": (0.00030518509447574615, 0.0)}
    for name, (scale, offset) in packing.items():
        ds[name].attrs["units"] = units[name]
        ds[name].encoding = ({"dtype": "int16", "scale_factor": scale, "add_offset": offset,
                              "_FillValue": np.int16(-32767)} if packed
                             else {"_FillValue": NETCDF_FLOAT_FILL})
    return ds
