"""The embedded synthetic ocean and atmosphere, written as ERA5 and GLORYS12 monthly files.

``neuralogcm synthesize --config C --out-dir results/{run}/raw`` writes
``{out-dir}/era5/{YYYY}/{MM}.nc`` and ``{out-dir}/glorys/{YYYY}/{MM}.nc`` for every month of the
configured years, in the on-disk layouts the real services deliver
(tests/data/real/README.md), so that everything downstream runs through the same code
as a real download:

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

The generator shares no code with the model's physics (numpy and scipy only), is deterministic
from ``data.synthetic.seed`` and runs ``data.synthetic.spinup_days`` before the first year. The
demo (5 years, 2-degree native grids, 6 file levels) takes about 40 s on one core.

The planet (fixed; the seed drives the weather and the eddies)
    Analytic continents (two Americas joined by an isthmus, Eurasia with Europe, Africa,
    Australia, an Antarctic cap south of about 70 S and a north polar cap north of about 81 N, so
    no ocean touches a pole); shelves 150-500 km wide deepening from 10 m at the coast to 130 m,
    slopes down to a 4000 m abyss; three seamount islands; a bank 70 m deep (land below 70 m
    only); a closed sea 900 m deep inside Eurasia; a Mediterranean-like sea 2500 m deep joined to
    the ocean by a strait with a 120 m sill (open at the surface, closed at depth). A cell is
    ocean at a level of depth z where the sea floor is deeper than z, so the land mask grows with
    depth.

The atmosphere, analytic on any grid (ERA5 files, and the ocean's forcing on its own grid)
    - msl: zonal belts that shift 4 deg with the seasons (a trough of 600 Pa at the ITCZ, 5 N
      +- 4 deg; subtropical highs of 1100/1300 Pa; subpolar lows of 1700/2600 Pa, the northern
      one 30 % deeper in winter; polar highs), a monsoon term of -40 Pa per K of seasonal land
      warming, and ``WEATHER_MODES`` travelling waves (zonal wavenumbers 4-9 at 35-65 deg, moving
      east at 7-12 m/s) whose amplitudes are Ornstein-Uhlenbeck processes (750/900 Pa N/S,
      3-day memory).
    - u10, v10: geostrophic wind of that msl (1/f regularised as f / (f^2 + f(10 deg)^2)),
      reduced to 0.7 and turned 20 deg towards low pressure, plus 3 m/s of trade-wind convergence
      into the ITCZ.
    - t2m: 0.8 K below the reference SST over the sea, polar land up to 25 K colder, a seasonal
      cycle of (6 + 14 c) sin(lat) |sin(lat)|^0.3 K peaking on 20 July (c: continentality 0..1),
      and warm/cold sectors a quarter wave ahead of/behind each travelling low (3 K per 1000 Pa).

The ocean, on the native grid; every parameter below is a field of :class:`Processes`
    - zos = gyres + ACC + taper * (eddies + steric height) - its static ocean mean, where
      gyres: the Stommel model r lap(psi) + beta dpsi/dx = curl(tau) / rho0 with psi = 0 on land
      and on 52 S (``stommel_south_wall_deg``), boundary-layer width r / beta(30 deg) = 250 km
      (``stommel_width_m``), solved once for the mean and the annual harmonics of the synthetic
      atmosphere's climatological wind stress rho_air C_d |U| U (C_d = 1.3e-3), as
      eta = f psi / (g 150 m) (``gyre_equivalent_depth_m``);
      ACC: a 1.0 m drop across 64-54 S (``acc_drop_m``), the band that is ocean all round;
      eddies: ``EDDY_MODES`` Rossby waves at 12-60 deg, wavelengths 1500-3000 km, drifting west at
      the long-wave speed beta c1^2 / f^2 (c1 = 2.8 m/s), Ornstein-Uhlenbeck amplitudes of 0.15 m
      with a 90-day memory (``eddy_amplitude_m``, ``eddy_time_s``);
      steric height: sum over levels of dz (2e-4 dT - 7.6e-4 dS) about the reference state;
      taper: 0 at the coast, 1 some 300 km offshore, so no geostrophic flow runs into a coast.
    - currents: geostrophic from zos by centred differences, u = -g/f deta/dy, v = g/f deta/dx,
      with 1/f regularised as f / (f^2 + f(3 deg)^2), decaying with depth as exp(-z / 400 m);
      plus the Ekman drift tau x k / (rho0 f h_E), h_E = 100 m, 1/f regularised at 8 deg,
      decaying as exp(-z / h_E): the only non-geostrophic part away from the equator (its RMS is
      about a quarter of the geostrophic part's on the demo grid); plus the South Equatorial
      Current (0.6 m/s westward at the surface, within 4 deg) and the Equatorial Undercurrent
      (1.0 m/s eastward at 110 m, within 2.5 deg).
    - temperature and salinity, prognostic, one day per step (the state written for a day is the
      one before that day's step, which uses that day's forcing):
      advection by those currents with QUICKEST (Leonard 1979; third order in space and time,
      dimensionally split, alternating order) in advective form, the stencil cut at land by a
      zero-gradient extension; Laplacian diffusion with the KNOWN diffusivity
      ``data.synthetic.diffusivity`` (default 2000 m^2/s) and no flux through land faces, which
      the advection scheme does not add to (its own dissipation is biharmonic); sub-steps keep
      Courant and diffusion numbers below 0.9;
      air-sea heat flux 35 W m^-2 K^-1 (t2m - SST) into a mixed layer 20-160 m deep (deepest in
      late winter poleward of 60 deg); freshwater flux S (E - P) / h from an ITCZ rain band
      (1.5 m/yr), rain under travelling lows (1.2 m/yr per kPa of low) and evaporation of 1 m/yr
      over the marginal seas; surface salinity restored to a reference over 180 days; levels
      inside the mixed layer mixed towards the surface over 3 days; every level restored to the
      reference state over 365 days; freezing at -1.9 deg C.
    The air-sea fluxes, the mixed layer, the restoring, the Ekman drift, the eddies and the
    equatorial currents are processes the model's physics core does not have: the neural
    corrector has them to learn.

The GLORYS files' global attributes record every parameter (``synthetic_<name>``, SI units in
the name), the diffusivity as ``synthetic_tracer_diffusivity_m2_s``.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import scipy.sparse
import scipy.sparse.linalg
from scipy import ndimage

from neuralogcm import __version__
from neuralogcm.config import Config, ConfigError, load
from neuralogcm.grid import EARTH_RADIUS, GRAVITY, OMEGA
from neuralogcm.io import atomic_path
from neuralogcm.sources.glorys import GLORYS_LEVELS, level_index

log = logging.getLogger(__name__)

DAY = 86400.0  # s
YEAR = 365.2425  # days
KM = 1.0e3  # m

WEATHER_MODES = 24
EDDY_MODES = 48


@dataclass(frozen=True)
class Processes:
    """Parameters of the synthetic ocean's processes (SI units; see the module docstring)."""

    tracer_diffusivity_m2_s: float = 2000.0
    rho0_kg_m3: float = 1025.0
    heat_capacity_j_kg_k: float = 3990.0
    air_sea_heat_exchange_w_m2_k: float = 35.0
    mixed_layer_min_m: float = 20.0
    mixed_layer_max_m: float = 160.0
    mixed_layer_mixing_time_s: float = 3 * DAY
    surface_salinity_restoring_time_s: float = 180 * DAY
    restoring_time_s: float = 365 * DAY
    freezing_point_c: float = -1.9
    itcz_rain_m_s: float = 1.5 / (YEAR * DAY)
    storm_rain_m_s_per_kpa: float = 1.2 / (YEAR * DAY)
    marginal_sea_evaporation_m_s: float = 1.0 / (YEAR * DAY)
    thermal_expansion_1_k: float = 2.0e-4
    haline_contraction_1_psu: float = 7.6e-4
    geostrophic_depth_m: float = 400.0
    geostrophic_equatorial_latitude_deg: float = 3.0
    ekman_depth_m: float = 100.0
    ekman_equatorial_latitude_deg: float = 8.0
    air_density_kg_m3: float = 1.22
    drag_coefficient: float = 1.3e-3
    stommel_width_m: float = 250.0 * KM
    gyre_equivalent_depth_m: float = 150.0
    stommel_south_wall_deg: float = -52.0
    acc_drop_m: float = 1.0
    eddy_amplitude_m: float = 0.15
    eddy_time_s: float = 90 * DAY
    first_baroclinic_wave_speed_m_s: float = 2.8
    equatorial_current_m_s: float = 0.6
    undercurrent_m_s: float = 1.0
    coastal_taper_m: float = 300.0 * KM
    max_courant: float = 0.9

    def attributes(self) -> dict[str, float]:
        """The parameters as netCDF global attributes ``synthetic_<name>``."""
        return {f"synthetic_{k}": float(v) for k, v in asdict(self).items()}


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


# --------------------------------------------------------------------------------------------
# The planet
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# The atmosphere
# --------------------------------------------------------------------------------------------


def _ornstein_uhlenbeck(amplitude, rho, std, rng: np.random.Generator):
    """One step of Ornstein-Uhlenbeck amplitudes with lag-one correlation rho, stationary std."""
    return rho * amplitude + np.sqrt(1 - rho**2) * std * rng.standard_normal(amplitude.shape)


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


class Atmosphere:
    """Analytic surface atmosphere with travelling weather; deterministic from ``rng``."""

    def __init__(self, rng: np.random.Generator):
        k = WEATHER_MODES
        hemisphere = np.where(np.arange(k) < k // 2, 1.0, -1.0)
        self.mode_lat = hemisphere * rng.uniform(35.0, 65.0, k)
        self.mode_m = rng.integers(4, 10, k)
        speed = rng.uniform(7.0, 12.0, k)  # m/s eastward
        self.mode_omega = (self.mode_m * speed * DAY
                           / (EARTH_RADIUS * np.cos(np.deg2rad(self.mode_lat))))  # rad/day
        self.mode_phase = rng.uniform(0, 2 * np.pi, k)
        self.mode_std = np.where(hemisphere > 0, 750.0, 900.0)  # Pa
        self.mode_rho = np.exp(-1.0 / 3.0)  # 3-day correlation
        self.amplitude = self.mode_std * rng.standard_normal(k)

    def advance(self, rng: np.random.Generator) -> None:
        """One day of the weather modes' Ornstein-Uhlenbeck amplitudes."""
        self.amplitude = _ornstein_uhlenbeck(self.amplitude, self.mode_rho, self.mode_std, rng)

    def on(self, lat: np.ndarray, lon: np.ndarray) -> AtmosphereGrid:
        return AtmosphereGrid(self, lat, lon)


class AtmosphereGrid:
    """The atmosphere evaluated on one lat (H,) x lon (W,) grid (deg)."""

    def __init__(self, atmosphere: Atmosphere, lat: np.ndarray, lon: np.ndarray):
        self.atm = atmosphere
        self.lat = np.asarray(lat, float)
        self.lon = np.asarray(lon, float)
        self.dlon = np.deg2rad(abs(self.lon[1] - self.lon[0]))
        lat2, lon2 = np.meshgrid(self.lat, self.lon, indexing="ij")
        self.c = continentality(lat2, lon2)
        phi = np.deg2rad(self.lat)[:, None]
        self.envelope = _gauss(self.lat[:, None] - atmosphere.mode_lat[None], 9.0) * np.cos(phi)
        mlam = atmosphere.mode_m[:, None] * np.deg2rad(self.lon)[None]
        self.cos_m, self.sin_m = np.cos(mlam), np.sin(mlam)  # (K, W)
        sinphi = np.sin(phi)
        self.season_amp = sinphi * np.abs(sinphi) ** 0.3 * (6.0 + 14.0 * self.c)  # K
        self.t_mean = (273.15 + reference_sst(self.lat)[:, None] - 0.8
                       - 25.0 * sinphi**4 * self.c)
        self.f = 2 * OMEGA * np.sin(phi)

    def pressure_zonal(self, t):
        lat, s = self.lat, 4.0 * seasonal_phase(t)
        nh_winter = 1.0 - 0.3 * seasonal_phase(t)
        return (101325.0 - 600.0 * _gauss(lat - itcz_latitude(t), 10.0)
                + 1100.0 * _gauss(lat - 32.0 - s, 11.0) + 1300.0 * _gauss(lat + 32.0 - s, 11.0)
                - 1700.0 * nh_winter * _gauss(lat - 62.0 - s, 11.0)
                - 2600.0 * _gauss(lat + 63.0 - s, 9.0)
                + 900.0 * _gauss(lat - 90.0, 15.0) + 600.0 * _gauss(lat + 90.0, 15.0))

    def fields(self, t: float, weather: bool = True) -> dict[str, np.ndarray]:
        """u10, v10 (m/s), t2m (K), msl (Pa) and the weather part of msl ``msl_anomaly``, (H, W)
        float64, at time ``t`` (days since 1970-01-01)."""
        atm = self.atm
        season = seasonal_phase(t) * self.season_amp  # K
        arg = atm.mode_omega * t - atm.mode_phase
        amp = atm.amplitude if weather else np.zeros_like(atm.amplitude)
        a = self.envelope * amp[None]  # (H, K)
        cos_arg, sin_arg = np.cos(arg), np.sin(arg)
        p_anom = (a * cos_arg) @ self.cos_m + (a * sin_arg) @ self.sin_m
        t_anom = -(3.0 / 1000.0) * ((a * cos_arg) @ self.sin_m - (a * sin_arg) @ self.cos_m)
        msl = self.pressure_zonal(t)[:, None] - 40.0 * season * self.c + p_anom
        t2m = self.t_mean + season + t_anom * (0.5 + 0.5 * self.c)
        dpdx, dpdy = _ddx_ddy(msl, self.lat, self.dlon)
        inv_f = _regularised_inverse(self.f, 2 * OMEGA * np.sin(np.deg2rad(10.0)))
        ug = -inv_f * dpdy / 1.2
        vg = inv_f * dpdx / 1.2
        turn = np.deg2rad(20.0) * np.sign(self.lat)[:, None]
        dist = self.lat - itcz_latitude(t)
        u10 = 0.7 * (ug * np.cos(turn) - vg * np.sin(turn))
        v10 = (0.7 * (ug * np.sin(turn) + vg * np.cos(turn))
               - 3.0 * (np.tanh(dist / 6.0) * _gauss(dist, 25.0))[:, None])
        return {"u10": u10, "v10": v10, "t2m": t2m, "msl": msl, "msl_anomaly": p_anom}


# --------------------------------------------------------------------------------------------
# The ocean
# --------------------------------------------------------------------------------------------


def wind_stress(u10, v10, p: Processes):
    """Bulk wind stress (N/m^2) from 10 m winds (m/s)."""
    speed = np.hypot(u10, v10)
    k = p.air_density_kg_m3 * p.drag_coefficient * speed
    return k * u10, k * v10


def _stommel(ocean: np.ndarray, lat: np.ndarray, dlon: float, rhs: np.ndarray,
             width: float) -> np.ndarray:
    """Solve r lap(psi) + beta dpsi/dx = rhs on the sphere, psi = 0 on land.

    ocean (H, W) bool; rhs (N, H, W) in m/s^2 (curl tau / rho0); r = beta(30 deg) * width.
    Returns psi (N, H, W), m^3/s.
    """
    h, w = ocean.shape
    phi = np.deg2rad(lat)
    dphi = phi[1] - phi[0]
    r = 2 * OMEGA * np.cos(np.deg2rad(30.0)) / EARTH_RADIUS * width
    index = -np.ones((h, w), dtype=np.int64)
    index[ocean] = np.arange(ocean.sum())
    ii, jj = np.nonzero(ocean)
    cos_c = np.cos(phi[ii])
    cos_n = np.cos(phi[ii] + dphi / 2)
    cos_s = np.cos(phi[ii] - dphi / 2)
    a2 = EARTH_RADIUS**2
    coef_n = r * cos_n / (a2 * cos_c * dphi**2)
    coef_s = r * cos_s / (a2 * cos_c * dphi**2)
    coef_x = r / (a2 * cos_c**2 * dlon**2)
    beta_x = 2 * OMEGA / a2 / (2 * dlon)
    rows = [index[ii, jj]]
    cols = [index[ii, jj]]
    vals = [-(coef_n + coef_s + 2 * coef_x)]
    for di, dj, coef in ((1, 0, coef_n), (-1, 0, coef_s), (0, 1, coef_x + beta_x),
                         (0, -1, coef_x - beta_x)):
        ni, nj = ii + di, (jj + dj) % w
        valid = (ni >= 0) & (ni < h)
        neighbour = np.full(ii.shape, -1)
        neighbour[valid] = index[ni[valid], nj[valid]]
        keep = neighbour >= 0
        rows.append(index[ii, jj][keep])
        cols.append(neighbour[keep])
        vals.append(coef[keep])
    n = int(ocean.sum())
    matrix = scipy.sparse.csc_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    solution = scipy.sparse.linalg.splu(matrix).solve(rhs[:, ocean].T.copy())
    psi = np.zeros(rhs.shape)
    psi[:, ocean] = solution.T
    return psi


class Ocean:
    """The synthetic ocean on its native grid: state T, S at every file level, daily steps.

    lat (H,) ascending, lon (W,) in deg; depths (L,) m. Arrays are (L, H, W), float32 for the
    tracers; land cells hold finite values that are never written.
    """

    def __init__(self, lat, lon, depths, atmosphere: Atmosphere, processes: Processes,
                 rng: np.random.Generator):
        self.p = p = processes
        self.lat = np.asarray(lat, float)
        self.lon = np.asarray(lon, float)
        self.depths = np.asarray(depths, float)
        lat2, lon2 = np.meshgrid(self.lat, self.lon, indexing="ij")
        self.bathymetry = bathymetry(lat2, lon2)
        self.mask = self.bathymetry[None] > self.depths[:, None, None]  # (L, H, W) ocean
        if self.mask[0, :2].any() or self.mask[0, -2:].any():
            raise ValueError("the synthetic planet needs land on the two rows at each edge")
        self.dlon = np.deg2rad(abs(self.lon[1] - self.lon[0]))
        phi = np.deg2rad(self.lat)
        self.dy = EARTH_RADIUS * (phi[1] - phi[0])
        self.dx = EARTH_RADIUS * np.maximum(np.cos(phi), 1e-6) * self.dlon  # (H,)
        self.f = 2 * OMEGA * np.sin(phi)
        self.atm = atmosphere.on(self.lat, self.lon)
        self.marginal = marginal_seas(lat2, lon2)
        self.ml_weight = np.minimum(np.abs(self.lat) / 60.0, 1.0) ** 1.5  # mixed-layer deepening
        self.hemisphere = np.sign(self.lat)

        # layer thicknesses for the steric height: interfaces half-way between levels
        edges = np.concatenate([[0.0], 0.5 * (self.depths[1:] + self.depths[:-1]),
                                [self.depths[-1] + 0.5 * (self.depths[-1] - self.depths[-2])
                                 if len(self.depths) > 1 else 2 * self.depths[-1]]])
        self.thickness = np.diff(edges)

        self.t_ref = (2.0 + (reference_sst(lat2)[None] - 2.0)
                      * np.exp(-self.depths[:, None, None] / 350.0)).astype(np.float32)
        self.s_ref = (34.7 + (reference_sss(lat2)[None] - 34.7)
                      * np.exp(-self.depths[:, None, None] / 300.0)).astype(np.float32)
        self.sss_ref = reference_sss(lat2)
        self.tracers = np.stack([self.t_ref, self.s_ref])  # (2, L, H, W)

        self._stencil_open = {-1: self._open_neighbours(-1), -2: self._open_neighbours(-2)}
        self._diffusion_setup(p.tracer_diffusivity_m2_s)
        surface = self.mask[0].astype(float)
        sigma = (p.coastal_taper_m / self.dy, p.coastal_taper_m / self.dx.mean())
        smooth = ndimage.gaussian_filter(surface, sigma, mode=("nearest", "wrap"))
        self.taper = np.clip(2.0 * smooth - 1.0, 0.0, 1.0) * surface
        self._gyres_setup()
        self._acc = self._acc_ssh()
        self._eddies_setup(rng)
        static = self.gyre_mean + self._acc
        area = np.cos(phi)[:, None] * surface
        self._ssh_offset = float((static * area).sum() / area.sum())

    # --- setup -----------------------------------------------------------------------------

    def _open_neighbours(self, axis: int) -> tuple[np.ndarray, ...]:
        """Whether the 1st and 2nd neighbours back and ahead along ``axis`` are reachable by
        water, (L, H, W) bool each: (back1, back2, ahead1, ahead2). Rows do not wrap."""
        m = self.mask

        def shifted(k):
            out = np.roll(m, -k, axis)
            if axis == -2:  # no neighbours beyond the first and last rows
                if k > 0:
                    out[:, -k:] = False
                else:
                    out[:, :-k] = False
            return out

        back1, ahead1 = shifted(-1), shifted(1)
        return back1, back1 & shifted(-2), ahead1, ahead1 & shifted(2)

    def _diffusion_setup(self, kappa: float) -> None:
        """Face coefficients kappa * 1 day / dx^2 (zero on faces that touch land)."""
        m = self.mask
        phi = np.deg2rad(self.lat)
        dphi = phi[1] - phi[0]
        cos = np.maximum(np.cos(phi), 1e-6)
        open_e = m & np.roll(m, -1, -1)
        open_n = m.copy()
        open_n[:, :-1] &= m[:, 1:]
        open_n[:, -1] = False
        open_s = np.roll(open_n, 1, -2)
        open_s[:, 0] = False
        kx = (kappa * DAY / self.dx**2)[:, None]
        ky = kappa * DAY / self.dy**2
        self.k_east = (kx * open_e).astype(np.float32)
        self.k_west = np.roll(self.k_east, 1, -1)
        self.k_north = (ky * (np.cos(phi + dphi / 2) / cos)[:, None] * open_n).astype(np.float32)
        self.k_south = (ky * (np.cos(phi - dphi / 2) / cos)[:, None] * open_s).astype(np.float32)
        self.diffusion_number = float(
            (self.k_east + self.k_west + self.k_north + self.k_south).max())

    def _gyres_setup(self) -> None:
        """Stommel gyres for the mean and annual harmonics of the climatological wind stress."""
        times = np.arange(24) * YEAR / 24 + 0.5
        stress = []
        for t in times:
            fields = self.atm.fields(t, weather=False)
            stress.append(wind_stress(fields["u10"], fields["v10"], self.p))
        stress = np.array(stress)  # (24, 2, H, W)
        phase = 2 * np.pi * times / YEAR
        basis = np.stack([np.ones_like(phase), 2 * np.cos(phase), 2 * np.sin(phase)])
        harmonics = np.einsum("nt,tchw->nchw", basis, stress) / len(times)  # (3, 2, H, W)
        cos = np.cos(np.deg2rad(self.lat))[:, None]
        dtydx, _ = _ddx_ddy(harmonics[:, 1], self.lat, self.dlon)
        _, dtxcos_dy = _ddx_ddy(harmonics[:, 0] * cos, self.lat, self.dlon)
        curl = dtydx - dtxcos_dy / np.maximum(cos, 1e-6)
        basins = self.mask[0] & (self.lat > self.p.stommel_south_wall_deg)[:, None]
        psi = _stommel(basins, self.lat, self.dlon, curl / self.p.rho0_kg_m3,
                       self.p.stommel_width_m)
        eta = self.f[:, None] * psi / (GRAVITY * self.p.gyre_equivalent_depth_m)
        self.gyre_mean, self._gyre_cos, self._gyre_sin = eta

    def _gyre_ssh(self, t: float) -> np.ndarray:
        phase = 2 * np.pi * t / YEAR
        return self.gyre_mean + self._gyre_cos * np.cos(phase) + self._gyre_sin * np.sin(phase)

    def _acc_ssh(self) -> np.ndarray:
        """A zonal SSH drop across 54-64 S (the band that is ocean all round), (H, 1), m."""
        ramp = _smoothstep((self.lat + 64.0) / 10.0)
        return (self.p.acc_drop_m * (ramp - 0.5))[:, None]

    def _eddies_setup(self, rng: np.random.Generator) -> None:
        k = EDDY_MODES
        hemisphere = np.where(np.arange(k) < k // 2, 1.0, -1.0)
        lat0 = hemisphere * rng.uniform(12.0, 60.0, k)
        wavelength = rng.uniform(1500.0, 3000.0, k) * KM
        circumference = 2 * np.pi * EARTH_RADIUS * np.cos(np.deg2rad(lat0))
        m = np.maximum(np.round(circumference / wavelength), 2)
        f0 = 2 * OMEGA * np.sin(np.deg2rad(lat0))
        beta0 = 2 * OMEGA * np.cos(np.deg2rad(lat0)) / EARTH_RADIUS
        speed = np.clip(beta0 * self.p.first_baroclinic_wave_speed_m_s**2 / f0**2, 0.01, 0.2)
        self.eddy_omega = -m * speed * DAY / (EARTH_RADIUS * np.cos(np.deg2rad(lat0)))
        self.eddy_phase = rng.uniform(0, 2 * np.pi, k)
        self.eddy_envelope = _gauss(self.lat[:, None] - lat0[None], 5.0)  # (H, K)
        mlam = m[:, None] * np.deg2rad(self.lon)[None]
        self.eddy_cos, self.eddy_sin = np.cos(mlam), np.sin(mlam)  # (K, W)
        self.eddy_rho = np.exp(-DAY / self.p.eddy_time_s)
        self.eddy_amplitude = self.p.eddy_amplitude_m * rng.standard_normal(k)

    def advance_eddies(self, rng: np.random.Generator) -> None:
        """One day of the eddy modes' Ornstein-Uhlenbeck amplitudes."""
        self.eddy_amplitude = _ornstein_uhlenbeck(self.eddy_amplitude, self.eddy_rho,
                                                  self.p.eddy_amplitude_m, rng)

    # --- diagnostics -----------------------------------------------------------------------

    def ssh(self, t: float) -> np.ndarray:
        """Sea surface height (H, W), m, at time t (days since 1970-01-01)."""
        p = self.p
        arg = self.eddy_omega * t - self.eddy_phase
        a = self.eddy_envelope * self.eddy_amplitude[None]
        eddies = (a * np.cos(arg)) @ self.eddy_cos + (a * np.sin(arg)) @ self.eddy_sin
        temp, salt = self.tracers
        density = (p.thermal_expansion_1_k * (temp - self.t_ref)
                   - p.haline_contraction_1_psu * (salt - self.s_ref))
        steric = np.einsum("l,lhw->hw", self.thickness, density * self.mask)
        return (self._gyre_ssh(t) + self._acc + self.taper * (eddies + steric)
                - self._ssh_offset)

    def currents(self, ssh: np.ndarray, taux: np.ndarray, tauy: np.ndarray):
        """Velocities u, v (L, H, W), m/s, zero on land: geostrophic + Ekman + equatorial."""
        p = self.p
        detadx, detady = _ddx_ddy(ssh, self.lat, self.dlon)
        detady[[0, -1]] = 0.0
        inv_f = _regularised_inverse(
            self.f, 2 * OMEGA * np.sin(np.deg2rad(p.geostrophic_equatorial_latitude_deg)))[:, None]
        ug, vg = -GRAVITY * inv_f * detady, GRAVITY * inv_f * detadx
        inv_fe = _regularised_inverse(
            self.f, 2 * OMEGA * np.sin(np.deg2rad(p.ekman_equatorial_latitude_deg)))[:, None]
        ue = inv_fe * tauy / (p.rho0_kg_m3 * p.ekman_depth_m)
        ve = -inv_fe * taux / (p.rho0_kg_m3 * p.ekman_depth_m)
        z = self.depths[:, None, None]
        geo = np.exp(-z / p.geostrophic_depth_m)
        ekman = np.exp(-z / p.ekman_depth_m)
        lat = self.lat[:, None]
        equatorial = self.taper * (
            -p.equatorial_current_m_s * _gauss(lat, 4.0) * np.exp(-z / 60.0)
            + p.undercurrent_m_s * _gauss(lat, 2.5) * _gauss(z - 110.0, 60.0))
        u = (geo * ug + ekman * ue + equatorial) * self.mask
        v = (geo * vg + ekman * ve) * self.mask
        return u.astype(np.float32), v.astype(np.float32)

    def diffusion_tendency(self, x: np.ndarray) -> np.ndarray:
        """kappa * laplacian(x) per day for (..., L, H, W) fields, no flux through land faces."""
        return (self.k_east * (np.roll(x, -1, -1) - x) + self.k_west * (np.roll(x, 1, -1) - x)
                + self.k_north * (np.roll(x, -1, -2) - x) + self.k_south * (np.roll(x, 1, -2) - x))

    # --- time stepping ---------------------------------------------------------------------

    @staticmethod
    def quickest_weights(courant: np.ndarray) -> tuple[np.ndarray, ...]:
        """Weights (w0, w_a1, w_s1, w_a2, w_s2) of QUICKEST (Leonard 1979) in advective form:
        x_new = w0 x + w_a1 (x[i+1] - x[i-1]) + w_s1 (x[i+1] + x[i-1]) + w_a2 (x[i+2] - x[i-2])
        + w_s2 (x[i+2] + x[i-2]), third order in space and time for Courant numbers |C| <= 1."""
        c = courant
        a = np.abs(c)
        r = (1 - c * c) / 12
        return (1 - c * c - 6 * a * r, -0.5 * c - 2 * c * r, 0.5 * c * c + 4 * a * r, c * r,
                -a * r)

    def _quickest(self, x: np.ndarray, weights: tuple[np.ndarray, ...], axis: int) -> np.ndarray:
        """One QUICKEST step along ``axis`` with :meth:`quickest_weights`.

        The stencil stops at land: a neighbour behind a land cell is replaced by the last
        value on the water side (zero-gradient), so no value leaks across a land barrier.
        The result is limited to the range of the cell and its two neighbours (a 1-D
        universal limiter): QUICKEST alone overshoots where a divergent current runs into a
        dead-end coastal cell, and years of such overshoots drove S there past 45.
        """
        back1, back2, ahead1, ahead2 = self._stencil_open[axis]
        m1 = np.where(back1, np.roll(x, 1, axis), x)
        m2 = np.where(back2, np.roll(x, 2, axis), m1)
        p1 = np.where(ahead1, np.roll(x, -1, axis), x)
        p2 = np.where(ahead2, np.roll(x, -2, axis), p1)
        w0, w_a1, w_s1, w_a2, w_s2 = weights
        new = w0 * x + w_a1 * (p1 - m1) + w_s1 * (p1 + m1) + w_a2 * (p2 - m2) + w_s2 * (p2 + m2)
        return np.clip(new, np.minimum(np.minimum(m1, x), p1), np.maximum(np.maximum(m1, x), p1))

    def step(self, u: np.ndarray, v: np.ndarray, forcing: dict[str, np.ndarray], t: float,
             order: int = 0) -> None:
        """Advance T, S by one day under currents u, v (L, H, W) and the atmosphere ``forcing``
        (t2m K, u10/v10 m/s, msl_anomaly Pa on the ocean grid) at time t (days)."""
        p = self.p
        courant_x = u * (DAY / self.dx[:, None]).astype(np.float32)
        courant_y = v * np.float32(DAY / self.dy)
        largest = max(np.abs(courant_x).max(), np.abs(courant_y).max(), self.diffusion_number)
        if not largest < 100 * p.max_courant:  # also catches NaN
            raise RuntimeError(f"synthetic ocean diverged on day {t:.1f} (Courant {largest})")
        n_sub = max(1, int(np.ceil(largest / p.max_courant)))
        sweeps = ((self.quickest_weights(courant_x / n_sub), -1),
                  (self.quickest_weights(courant_y / n_sub), -2))
        x = self.tracers
        for _ in range(n_sub):
            for weights, axis in sweeps if order % 2 == 0 else sweeps[::-1]:
                x = self._quickest(x, weights, axis)
            x = x + self.diffusion_tendency(x) / n_sub
        temp, salt = x

        # air-sea fluxes into the mixed layer, mixed-layer homogenisation
        winter = 0.5 + 0.5 * self.hemisphere * np.cos(2 * np.pi * (t - 59.0) / YEAR)
        h_ml = (p.mixed_layer_min_m
                + (p.mixed_layer_max_m - p.mixed_layer_min_m) * self.ml_weight * winter)[:, None]
        in_ml = self.depths[:, None, None] < h_ml[None]
        sst, sss = temp[0], salt[0]
        heating = (p.air_sea_heat_exchange_w_m2_k * (forcing["t2m"] - 273.15 - sst) * DAY
                   / (p.rho0_kg_m3 * p.heat_capacity_j_kg_k * h_ml)).astype(np.float32)
        rain = (p.itcz_rain_m_s * _gauss(self.lat - itcz_latitude(t), 6.0)[:, None]
                + p.storm_rain_m_s_per_kpa * np.maximum(-forcing["msl_anomaly"] / 1000.0, 0.0))
        evaporation_minus_rain = p.marginal_sea_evaporation_m_s * self.marginal - rain
        freshening = (sss * evaporation_minus_rain * DAY / h_ml
                      + (self.sss_ref - sss) * DAY / p.surface_salinity_restoring_time_s
                      ).astype(np.float32)
        mixing = np.float32(min(1.0, DAY / p.mixed_layer_mixing_time_s))
        temp = temp + in_ml * (heating + mixing * (sst + heating - temp))
        salt = salt + in_ml * (freshening + mixing * (sss + freshening - salt))

        # restoring to the reference state, freezing
        relax = np.float32(DAY / p.restoring_time_s)
        temp = np.maximum(temp + relax * (self.t_ref - temp), np.float32(p.freezing_point_c))
        salt = salt + relax * (self.s_ref - salt)
        self.tracers = np.stack([temp, salt])


# --------------------------------------------------------------------------------------------
# File layouts
# --------------------------------------------------------------------------------------------

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
        "history": f"neuralogcm {__version__} sources/synthetic.py",
        "institution": "neuralogcm",
        "julian_day_unit": "days since 1950-01-01 00:00:00",
        "latitude_max": 90.0,
        "latitude_min": -80.0,
        "longitude_max": float(lon.max()),
        "longitude_min": -180.0,
        "northing": "latitude",
        "references": "src/neuralogcm/sources/synthetic.py",
        "source": "neuralogcm synthetic ocean (layout of MERCATOR GLORYS12V1)",
        "title": "daily mean fields of the neuralogcm synthetic ocean",
        "z_max": float(depths.max()),
        "z_min": float(depths.min()),
        "copernicusmarine_version": "1.3.5",
        "synthetic_seed": np.int64(cfg.data.synthetic.seed),
        "synthetic_native_resolution_deg": float(res),
        **processes.attributes(),
    }


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def _check_resolution(res: float, spans: tuple[float, ...], key: str, target: float) -> None:
    for span in spans:
        if res <= 0 or abs(span / res - round(span / res)) > 1e-9:
            raise ConfigError(f"config key '{key}': {res} deg does not divide {span:g} deg "
                              "into whole cells")
    if res >= target:
        raise ConfigError(f"config key '{key}': the native grid ({res} deg) must be finer than "
                          f"the target grid (grid.resolution = {target} deg)")


def file_levels(depths) -> np.ndarray:
    """The GLORYS levels a synthetic file holds: the configured ``depths`` (m, GLORYS12 levels
    as the config validation ensures) plus the unselected level just below the first and just
    below the last one, so that readers must select depths."""
    chosen = [level_index(d) for d in depths]
    extra = {i + 1 for i in (chosen[0], chosen[-1]) if i + 1 < len(GLORYS_LEVELS)} - set(chosen)
    return np.asarray(GLORYS_LEVELS)[sorted(set(chosen) | extra)]


def synthesize(cfg: Config, out_dir: str | Path) -> list[Path]:
    """Write every month of ``cfg.data.years`` as era5/{YYYY}/{MM}.nc and glorys/{YYYY}/{MM}.nc
    under ``out_dir``, after ``data.synthetic.spinup_days`` of spin-up; return the paths."""
    syn = cfg.data.synthetic
    _check_resolution(syn.ocean_resolution, (170.0, 360.0), "data.synthetic.ocean_resolution",
                      cfg.grid.resolution)
    _check_resolution(syn.atmosphere_resolution, (180.0, 360.0),
                      "data.synthetic.atmosphere_resolution", cfg.grid.resolution)
    out_dir = Path(out_dir)
    processes = Processes(tracer_diffusivity_m2_s=syn.diffusivity)
    depths = file_levels(cfg.data.depths)
    ores, ares = syn.ocean_resolution, syn.atmosphere_resolution
    olat = -80.0 + ores * np.arange(round(170.0 / ores) + 1)
    olon = -180.0 + ores * np.arange(round(360.0 / ores))
    alat = 90.0 - ares * np.arange(round(180.0 / ares) + 1)
    alon = ares * np.arange(round(360.0 / ares))

    rng = np.random.default_rng(syn.seed)
    atmosphere = Atmosphere(rng)
    ocean = Ocean(olat, olon, depths, atmosphere, processes, rng)
    era5_grid = atmosphere.on(alat, alon)
    era5_history = (f"neuralogcm {__version__} synthetic atmosphere (seed {syn.seed}) in the "
                    "new-CDS layout of GRIB to CDM+CF via cfgrib")
    years = cfg.data.years.all()
    first = pd.Timestamp(f"{years[0]}-01-01")
    log.info("synthesizing %d-%d after %d spin-up days on a %g deg ocean / %g deg atmosphere "
             "grid, levels %s m", years[0], years[-1], syn.spinup_days, ores, ares,
             ", ".join(f"{d:g}" for d in depths))

    def simulate_day(date: pd.Timestamp) -> tuple[float, tuple[np.ndarray, ...]]:
        """Time (days since 1970), ocean state (T, S, u, v, ssh) of ``date``; steps a day."""
        t = (date - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1) + 0.5
        forcing = ocean.atm.fields(t)
        ssh = ocean.ssh(t)
        u, v = ocean.currents(ssh, *wind_stress(forcing["u10"], forcing["v10"], processes))
        state = (*ocean.tracers, u, v, ssh)
        ocean.step(u, v, forcing, t, order=date.day_of_year)
        atmosphere.advance(rng)
        ocean.advance_eddies(rng)
        return t, state

    for date in pd.date_range(end=first - pd.Timedelta(days=1), periods=syn.spinup_days):
        simulate_day(date)
    land = ~ocean.mask
    written: list[Path] = []
    for month in pd.date_range(first, f"{years[-1]}-12-01", freq="MS"):
        days = pd.date_range(month, month + pd.offsets.MonthEnd(0))
        n = len(days)
        sea = {name: np.empty((n, *ocean.mask.shape), np.float32)
               for name in ("thetao", "so", "uo", "vo")}
        sea["zos"] = np.empty((n, *ocean.mask.shape[1:]), np.float32)
        air = {name: np.empty((n, len(alat), len(alon)), np.float32) for name in _ERA5_VARIABLES}
        for d, date in enumerate(days):
            t, state = simulate_day(date)
            for name, values in zip(("thetao", "so", "uo", "vo", "zos"), state, strict=True):
                sea[name][d] = values
            fields = era5_grid.fields(t)
            for name in air:
                air[name][d] = fields[name]
        for name in ("thetao", "so", "uo", "vo"):
            sea[name][:, land] = np.nan
        sea["zos"][:, land[0]] = np.nan
        stem = f"{month.year:04d}/{month.month:02d}.nc"
        write_era5_month(out_dir / "era5" / stem, days, alat, alon, air, era5_history)
        write_glorys_month(out_dir / "glorys" / stem, days, depths, olat, olon, sea,
                           _glorys_attributes(cfg, processes, ores, olon, depths, days))
        written += [out_dir / "era5" / stem, out_dir / "glorys" / stem]
        if month.month == 12:
            log.info("year %d written", month.year)
    return written


def cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="config file (YAML or JSON)")
    parser.add_argument("--out-dir", required=True,
                        help="folder that receives era5/{YYYY}/{MM}.nc and glorys/{YYYY}/{MM}.nc")


def cli_main(args: argparse.Namespace) -> None:
    cfg = load(args.config)
    paths = synthesize(cfg, args.out_dir)
    log.info("wrote %d files under %s", len(paths), args.out_dir)
