"""The ERA5 and GLORYS12 monthly files, in the on-disk layouts the real services deliver.

- ERA5, new CDS: dims valid_time (int64 s since 1970, 12:00 UTC daily), latitude (90..-90,
  descending), longitude (0..360-res); scalar ``number``, string ``expver`` ("0001"); u10, v10,
  t2m, msl float32 with NaN _FillValue, the cfgrib GRIB_* attributes, zlib level 1 + shuffle; the
  values rounded as 16-bit GRIB simple packing rounds them.
- GLORYS12V1 as the copernicusmarine toolbox (1.3.5 layout) writes it: dims depth (positive down,
  real GLORYS levels: the configured ones plus the unselected level just below the first and the
  last, so depths must be selected), latitude (-80..90), longitude (-180..180-res), time (float32
  hours since 1950-01-01, 00:00 daily means); so, thetao, uo, vo, zos int16 with the real
  scale_factor/add_offset, _FillValue -32767 on land, valid_min/valid_max; zlib level 1 (the
  toolbox's --netcdf-compression-level 1).

The GLORYS files' global attributes record every parameter of
:class:`~neuralogcm.sources.synthetic.parameters.Processes` (``synthetic_<name>``).
"""

from __future__ import annotations

from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd

from neuralogcm import __version__
from neuralogcm.config import Config
from neuralogcm.io import atomic_path
from neuralogcm.levels import GLORYS_LEVELS, level_index
from neuralogcm.sources.synthetic.parameters import Processes

_ERA5_VARIABLES = {  # name: paramId, GRIB name, shortName, units, cfName, standard_name
    "u10": (165, "10 metre U wind component", "10u", "m s**-1", "unknown", "unknown"),
    "v10": (166, "10 metre V wind component", "10v", "m s**-1", "unknown", "unknown"),
    "t2m": (167, "2 metre temperature", "2t", "K", "unknown", "unknown"),
    "msl": (151, "Mean sea level pressure", "msl", "Pa", "air_pressure_at_mean_sea_level",
            "air_pressure_at_mean_sea_level"),
}

# GLORYS12V1 variables: long_name, standard_name, unit_long, units, add_offset, scale_factor
_GLORYS_VARIABLES = {
    "so": ("Salinity", "sea_water_salinity", "Practical Salinity Unit", "1e-3",
           -0.0015259254723787308, 0.0015259254723787308),
    "thetao": ("Temperature", "sea_water_potential_temperature", "Degrees Celsius", "degrees_C",
               21.0, 0.0007324442267417908),
    "uo": ("Eastward velocity", "eastward_sea_water_velocity", "Meters per second", "m s-1",
           0.0, 0.0006103701889514923),
    "vo": ("Northward velocity", "northward_sea_water_velocity", "Meters per second", "m s-1",
           0.0, 0.0006103701889514923),
    "zos": ("Sea surface height", "sea_surface_height_above_geoid", "Meters", "m",
            0.0, 0.00030518509447574615),
}
GLORYS_FILL = np.int16(-32767)
COMPRESSION = {"compression": "zlib", "complevel": 1, "shuffle": True}


def grib_quantise(field: np.ndarray, bits: int = 16) -> np.ndarray:
    """Round a 2-D field as GRIB simple packing does: min + k 2^E, k < 2^bits (float32)."""
    lo, hi = float(field.min()), float(field.max())
    span = hi - lo
    if span == 0:
        return field.astype(np.float32)
    step = 2.0 ** np.ceil(np.log2(span / (2**bits - 1)))
    return (lo + np.round((field - lo) / step) * step).astype(np.float32)


def write_era5_month(path: Path, dates: pd.DatetimeIndex, lat: np.ndarray, lon: np.ndarray,
                     fields: dict[str, np.ndarray], history: str) -> None:
    """One month of (T, H, W) fields at 12:00 UTC in the new-CDS ERA5 netCDF layout.

    lat descending 90..-90, lon 0..360-res (deg); the file appears atomically.
    """
    valid_time = ((dates + pd.Timedelta(hours=12) - pd.Timestamp("1970-01-01"))
                  // pd.Timedelta(seconds=1)).to_numpy(np.int64)
    res = float(abs(lat[1] - lat[0]))
    with atomic_path(path) as tmp, netCDF4.Dataset(tmp, "w", format="NETCDF4") as nc:
        nc.setncatts({
            "GRIB_centre": "ecmf",
            "GRIB_centreDescription": "European Centre for Medium-Range Weather Forecasts",
            "GRIB_subCentre": np.int64(0),
            "Conventions": "CF-1.7",
            "institution": "European Centre for Medium-Range Weather Forecasts",
            "history": history,
        })
        nc.createDimension("valid_time", len(dates))
        nc.createDimension("latitude", len(lat))
        nc.createDimension("longitude", len(lon))
        number = nc.createVariable("number", "i8", ())
        number.setncatts({"long_name": "ensemble member numerical id", "units": "1",
                          "standard_name": "realization"})
        number.assignValue(0)
        time = nc.createVariable("valid_time", "i8", ("valid_time",))
        time.setncatts({"long_name": "time", "standard_name": "time",
                        "units": "seconds since 1970-01-01", "calendar": "proleptic_gregorian"})
        time[:] = valid_time
        for name, values, extra in (("latitude", lat, {"stored_direction": "decreasing"}),
                                    ("longitude", lon, {})):
            var = nc.createVariable(name, "f8", (name,), fill_value=np.nan)
            var.setncatts({"units": "degrees_north" if name == "latitude" else "degrees_east",
                           "standard_name": name, "long_name": name, **extra})
            var[:] = values
        expver = nc.createVariable("expver", str, ("valid_time",))
        expver[:] = np.array(["0001"] * len(dates), dtype=object)
        for name, (param, grib_name, short, units, cf_name, standard) in _ERA5_VARIABLES.items():
            var = nc.createVariable(name, "f4", ("valid_time", "latitude", "longitude"),
                                    fill_value=np.float32(np.nan), **COMPRESSION)
            var.setncatts({
                "GRIB_paramId": np.int64(param), "GRIB_dataType": "an",
                "GRIB_numberOfPoints": np.int64(len(lat) * len(lon)),
                "GRIB_typeOfLevel": "surface", "GRIB_stepUnits": np.int64(1),
                "GRIB_stepType": "instant", "GRIB_gridType": "regular_ll",
                "GRIB_uvRelativeToGrid": np.int64(0), "GRIB_NV": np.int64(0),
                "GRIB_Nx": np.int64(len(lon)), "GRIB_Ny": np.int64(len(lat)),
                "GRIB_cfName": cf_name, "GRIB_cfVarName": name,
                "GRIB_gridDefinitionDescription": "Latitude/Longitude Grid",
                "GRIB_iDirectionIncrementInDegrees": res, "GRIB_iScansNegatively": np.int64(0),
                "GRIB_jDirectionIncrementInDegrees": res,
                "GRIB_jPointsAreConsecutive": np.int64(0), "GRIB_jScansPositively": np.int64(0),
                "GRIB_latitudeOfFirstGridPointInDegrees": float(lat[0]),
                "GRIB_latitudeOfLastGridPointInDegrees": float(lat[-1]),
                "GRIB_longitudeOfFirstGridPointInDegrees": float(lon[0]),
                "GRIB_longitudeOfLastGridPointInDegrees": float(lon[-1]),
                "GRIB_missingValue": 3.4028234663852886e38, "GRIB_name": grib_name,
                "GRIB_shortName": short, "GRIB_totalNumber": np.int64(0), "GRIB_units": units,
                "long_name": grib_name, "units": units, "standard_name": standard,
                "GRIB_surface": 0.0, "coordinates": "number valid_time latitude longitude expver",
            })
            var[:] = np.stack([grib_quantise(day) for day in fields[name]])


def pack_int16(values: np.ndarray, add_offset: float, scale_factor: float) -> np.ndarray:
    """Pack floats as int16 (value = add_offset + scale_factor * k), NaN -> _FillValue."""
    k = np.clip(np.rint((values - add_offset) / scale_factor), -32766, 32767)
    k[np.isnan(k)] = GLORYS_FILL
    return k.astype(np.int16)


def write_glorys_month(path: Path, dates: pd.DatetimeIndex, depths: np.ndarray, lat: np.ndarray,
                       lon: np.ndarray, fields: dict[str, np.ndarray], attrs: dict) -> None:
    """One month of daily means in the copernicusmarine toolbox's GLORYS12 layout (int16).

    ``fields``: so, thetao, uo, vo (T, L, H, W) and zos (T, H, W), NaN on land; lat ascending
    -80..90, lon -180..180-res (deg), depths positive down (m). The file appears atomically.
    """
    hours = ((dates - pd.Timestamp("1950-01-01")) // pd.Timedelta(hours=1)).to_numpy(np.int64)
    with atomic_path(path) as tmp, netCDF4.Dataset(tmp, "w", format="NETCDF4") as nc:
        nc.setncatts(attrs)
        for name, size in (("depth", len(depths)), ("latitude", len(lat)),
                           ("longitude", len(lon)), ("time", len(dates))):
            nc.createDimension(name, size)
        depth = nc.createVariable("depth", "f4", ("depth",))
        depth.setncatts({"axis": "Z", "long_name": "Depth", "positive": "down",
                         "standard_name": "depth", "unit_long": "Meters", "units": "m",
                         "valid_max": np.float32(depths.max()),
                         "valid_min": np.float32(depths.min())})
        depth[:] = depths
        for name, values, axis, unit_long, units in (
                ("latitude", lat, "Y", "Degrees North", "degrees_north"),
                ("longitude", lon, "X", "Degrees East", "degrees_east")):
            var = nc.createVariable(name, "f4", (name,))
            var.setncatts({"axis": axis, "long_name": name.capitalize(), "standard_name": name,
                           "step": float(np.float32(values[1]) - np.float32(values[0])),
                           "unit_long": unit_long, "units": units,
                           "valid_max": np.float32(values.max()),
                           "valid_min": np.float32(values.min())})
            var[:] = values
        time = nc.createVariable("time", "f4", ("time",))
        time.setncatts({"valid_min": np.int64(hours.min()), "valid_max": np.int64(hours.max()),
                        "units": "hours since 1950-01-01", "calendar": "gregorian"})
        time[:] = hours.astype(np.float32)
        for name, (long_name, standard, unit_long, units, offset, scale) in sorted(
                _GLORYS_VARIABLES.items()):
            dims = ("time", "latitude", "longitude") if name == "zos" else (
                "time", "depth", "latitude", "longitude")
            packed = pack_int16(fields[name], offset, scale)
            valid = packed[packed != GLORYS_FILL]
            var = nc.createVariable(name, "i2", dims, fill_value=GLORYS_FILL, **COMPRESSION)
            var.set_auto_maskandscale(False)
            var.setncatts({"cell_methods": "area: mean", "long_name": long_name,
                           "standard_name": standard, "unit_long": unit_long, "units": units,
                           "valid_max": np.int64(valid.max()), "valid_min": np.int64(valid.min()),
                           "add_offset": offset, "scale_factor": scale})
            var[:] = packed


def _glorys_attributes(cfg: Config, processes: Processes, res: float, lon: np.ndarray,
                       depths: np.ndarray, dates: pd.DatetimeIndex) -> dict:
    """Global attributes in the order of the toolbox's files, then the synthetic parameters."""
    last = dates[-1].strftime("%Y-%m-%d 00:00:00")
    return {
        "Conventions": "CF-1.4",
        "bulletin_date": last,
        "bulletin_type": "synthetic",
        "comment": "Synthetic ocean in the GLORYS12V1 daily-mean layout; not a CMEMS product",
        "domain_name": "GL12",
        "easting": "longitude",
        "field_date": last,
        "field_julian_date": float((dates[-1] - pd.Timestamp("1950-01-01")).days),
        "field_type": "mean",
        "forecast_range": "",
        "forecast_type": "",
        "history": f"neuralogcm {__version__} sources/synthetic",
        "institution": "neuralogcm",
        "julian_day_unit": "days since 1950-01-01 00:00:00",
        "latitude_max": 90.0,
        "latitude_min": -80.0,
        "longitude_max": float(lon.max()),
        "longitude_min": -180.0,
        "northing": "latitude",
        "references": "src/neuralogcm/sources/synthetic/",
        "source": "neuralogcm synthetic ocean (layout of MERCATOR GLORYS12V1)",
        "title": "daily mean fields of the neuralogcm synthetic ocean",
        "z_max": float(depths.max()),
        "z_min": float(depths.min()),
        "copernicusmarine_version": "1.3.5",
        "synthetic_seed": np.int64(cfg.data.synthetic.seed),
        "synthetic_native_resolution_deg": float(res),
        **processes.attributes(),
    }


def file_levels(depths) -> np.ndarray:
    """The GLORYS levels a synthetic file holds: the configured ``depths`` (m, GLORYS12 levels
    as the config validation ensures) plus the unselected level just below the first and just
    below the last one, so that readers must select depths."""
    chosen = [level_index(d) for d in depths]
    extra = {i + 1 for i in (chosen[0], chosen[-1]) if i + 1 < len(GLORYS_LEVELS)} - set(chosen)
    return np.asarray(GLORYS_LEVELS)[sorted(set(chosen) | extra)]
