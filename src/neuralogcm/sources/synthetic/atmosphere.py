"""The atmosphere, analytic on any grid (ERA5 files, and the ocean's forcing on its own grid).

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
"""

from __future__ import annotations

import numpy as np

from neuralogcm.grid import EARTH_RADIUS, OMEGA
from neuralogcm.sources.synthetic.parameters import DAY
from neuralogcm.sources.synthetic.planet import (
    _ddx_ddy,
    _gauss,
    _regularised_inverse,
    continentality,
    itcz_latitude,
    reference_sst,
    seasonal_phase,
)

WEATHER_MODES = 24


def _ornstein_uhlenbeck(amplitude, rho, std, rng: np.random.Generator):
    """One step of Ornstein-Uhlenbeck amplitudes with lag-one correlation rho, stationary std."""
    return rho * amplitude + np.sqrt(1 - rho**2) * std * rng.standard_normal(amplitude.shape)


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
