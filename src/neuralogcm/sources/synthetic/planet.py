"""The planet: fixed geometry, seasons and reference states (numpy only).

The planet is fixed; the seed drives the weather and the eddies.
    Analytic continents (two Americas joined by an isthmus, Eurasia with Europe, Africa,
    Australia, an Antarctic cap south of about 70 S and a north polar cap north of about 81 N, so
    no ocean touches a pole); shelves 150-500 km wide deepening from 10 m at the coast to 130 m,
    slopes down to a 4000 m abyss; three seamount islands; a bank 70 m deep (land below 70 m
    only); a closed sea 900 m deep inside Eurasia; a Mediterranean-like sea 2500 m deep joined to
    the ocean by a strait with a 120 m sill (open at the surface, closed at depth). A cell is
    ocean at a level of depth z where the sea floor is deeper than z, so the land mask grows with
    depth.

Also here: the seasonal cycle and the ITCZ's latitude, the reference sea surface temperature and
salinity, and centred derivatives on a lat-lon grid, shared by the atmosphere and the ocean.
"""

from __future__ import annotations

import numpy as np

from neuralogcm.grid import EARTH_RADIUS
from neuralogcm.sources.synthetic.parameters import KM, YEAR


def _gauss(x, width):
    return np.exp(-((x / width) ** 2))


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _wrap180(dlon):
    return (np.asarray(dlon) + 180.0) % 360.0 - 180.0


def seasonal_phase(t_days):
    """Annual cycle cos(omega (t - t_peak)), peaking on 20 July (t: days since 1970-01-01)."""
    return np.cos(2 * np.pi * (np.asarray(t_days) - 200.0) / YEAR)


def itcz_latitude(t_days):
    """Latitude of the ITCZ, deg: 5 N on average, 4 deg further into the summer hemisphere."""
    return 5.0 + 4.0 * seasonal_phase(np.asarray(t_days) - 20.0)


def reference_sst(lat):
    """Annual-mean reference sea surface temperature, deg C, of latitude (deg)."""
    return -1.8 + 29.8 * np.cos(np.deg2rad(lat)) ** 1.6


def reference_sss(lat):
    """Reference sea surface salinity, 1e-3: fresh tropics and high latitudes, salty subtropics."""
    alat = np.abs(lat)
    return (34.0 + 1.9 * _gauss(alat - 24.0, 18.0) - 0.4 * _gauss(lat - 6.0, 7.0)
            - 0.6 * _smoothstep((alat - 45.0) / 15.0))


# Continents: centre lat, lon (deg), half-axes north-south, east-west (km).
_CONTINENTS = (
    (48.0, -100.0, 2600.0, 3000.0),  # North America
    (14.0, -86.0, 1300.0, 650.0),  # isthmus
    (-14.0, -60.0, 3900.0, 2200.0),  # South America
    (52.0, 85.0, 2400.0, 5000.0),  # Eurasia
    (50.0, 15.0, 1500.0, 2000.0),  # Europe
    (36.0, 12.0, 900.0, 2000.0),  # land around the Mediterranean-like sea
    (3.0, 20.0, 3600.0, 2800.0),  # Africa
    (-25.0, 135.0, 1400.0, 2000.0),  # Australia
)
# Seas carved into the land: centre lat, lon, half-axes (km), depth (m).
_SEAS = (
    (45.0, 55.0, 500.0, 700.0, 900.0),  # closed sea
    (38.5, 16.0, 450.0, 1300.0, 2500.0),  # Mediterranean-like sea
    (36.5, -4.5, 260.0, 650.0, 120.0),  # its strait to the ocean (sill 120 m)
)
# Seamounts: centre lat, lon, e-folding radius (km), height above the 4000 m abyss (m).
_SEAMOUNTS = (
    (20.0, -160.0, 900.0, 4150.0),  # island
    (-20.0, 75.0, 800.0, 4100.0),  # island
    (8.0, -30.0, 700.0, 4090.0),  # island
    (45.0, -38.0, 600.0, 3930.0),  # bank 70 m deep: land below 70 m only
)
_ABYSS_M = 4000.0
_DEG_KM = np.pi * EARTH_RADIUS / 180.0 / KM  # km per degree of latitude


def _ellipse(lat, lon, clat, clon, ay, ax):
    """(1 - normalised radius) * min half-axis (km): a signed distance, positive inside."""
    dy = (lat - clat) * _DEG_KM
    dx = _wrap180(lon - clon) * _DEG_KM * np.cos(np.deg2rad(0.5 * (lat + clat)))
    return (1.0 - np.hypot(dx / ax, dy / ay)) * min(ax, ay)


def coast_distance(lat, lon):
    """Signed distance to the continents' coast, km (positive on land), before seas/islands."""
    lat, lon = np.broadcast_arrays(np.asarray(lat, float), np.asarray(lon, float))
    s = np.max([_ellipse(lat, lon, *c) for c in _CONTINENTS], axis=0)
    lam, phi = np.deg2rad(lon), np.deg2rad(lat)
    s = s + 150.0 * np.sin(4 * lam + 1.3) * np.cos(3 * phi + 0.4)  # bays and peninsulas
    antarctic = (-70.0 + 2.0 * np.sin(2 * lam + 0.5) - lat) * _DEG_KM
    arctic = (lat - 81.0 - 1.5 * np.sin(3 * lam)) * _DEG_KM
    return np.maximum(s, np.maximum(antarctic, arctic))


def bathymetry(lat, lon):
    """Sea floor depth, m (positive down; <= 0 on land), on arrays of lat, lon (deg)."""
    lat, lon = np.broadcast_arrays(np.asarray(lat, float), np.asarray(lon, float))
    s = coast_distance(lat, lon)
    lam = np.deg2rad(lon)
    shelf = 150.0 + 350.0 * (0.5 + 0.5 * np.sin(2 * lam + 1.0) * np.cos(np.deg2rad(lat)))  # km
    off = -s  # km offshore
    depth = np.where(
        s > 0, -100.0 - s,
        np.where(off < shelf, 10.0 + 120.0 * off / shelf,
                 130.0 + (_ABYSS_M - 130.0) * _smoothstep((off - shelf) / 400.0)))
    for clat, clon, r, height in _SEAMOUNTS:
        d2 = ((lat - clat) * _DEG_KM) ** 2 + (
            _wrap180(lon - clon) * _DEG_KM * np.cos(np.deg2rad(clat))) ** 2
        depth = depth - height * np.exp(-d2 / r**2) * (depth > 0)
    for clat, clon, ay, ax, sea_depth in _SEAS:
        inside = _smoothstep(2.0 * _ellipse(lat, lon, clat, clon, ay, ax) / min(ax, ay))
        depth = np.where(inside > 0, np.maximum(depth, sea_depth * inside), depth)
    return depth


def marginal_seas(lat, lon):
    """1 inside the carved (closed and semi-enclosed) seas, 0 elsewhere."""
    lat, lon = np.broadcast_arrays(np.asarray(lat, float), np.asarray(lon, float))
    return np.max([_ellipse(lat, lon, *sea[:4]) > 0 for sea in _SEAS], axis=0).astype(float)


def continentality(lat, lon):
    """Smooth land fraction 0..1 (0.5 at the coast, 1 from 300 km inland), for the atmosphere."""
    return _smoothstep(0.5 + coast_distance(lat, lon) / 600.0)


# Calculus on a lat-lon grid, shared by the atmosphere and the ocean


def _regularised_inverse(f, f_eq):
    """f / (f^2 + f_eq^2), s: 1/f away from the equator, 0 on it."""
    return f / (f * f + f_eq * f_eq)


def _ddx_ddy(field, lat, dlon_rad):
    """Centred derivatives (d/dx, d/dy) of (..., H, W) fields on a periodic lat-lon grid, 1/m.

    d/dy is one-sided on the first and last rows; cos(lat) is bounded away from 0 at a pole.
    """
    phi = np.deg2rad(lat)
    cos = np.maximum(np.cos(phi), np.cos(np.deg2rad(89.5)))[:, None]
    ddx = (np.roll(field, -1, -1) - np.roll(field, 1, -1)) / (2 * dlon_rad * EARTH_RADIUS * cos)
    ddy = np.gradient(field, phi * EARTH_RADIUS, axis=-2)
    return ddx, ddy
