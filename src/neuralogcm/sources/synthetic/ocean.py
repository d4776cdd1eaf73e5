"""The ocean, on the native grid; every parameter below is a field of :class:`Processes`.

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
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
import scipy.sparse.linalg
from scipy import ndimage

from neuralogcm.grid import EARTH_RADIUS, GRAVITY, OMEGA
from neuralogcm.sources.synthetic.atmosphere import Atmosphere, _ornstein_uhlenbeck
from neuralogcm.sources.synthetic.parameters import DAY, KM, YEAR, Processes
from neuralogcm.sources.synthetic.planet import (
    _ddx_ddy,
    _gauss,
    _regularised_inverse,
    _smoothstep,
    bathymetry,
    itcz_latitude,
    marginal_seas,
    reference_sss,
    reference_sst,
)

EDDY_MODES = 48


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
