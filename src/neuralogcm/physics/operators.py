"""Finite-volume operators on the regular latitude-longitude grid, with land masks.

Every variable sits at the cell centres (an A-grid). Shapes: fields are (..., L, H, W) with the
mask (L, H, W) broadcast over the leading dimensions (batch, variable); faces are east faces
(..., L, H, W) (face i + 1/2 of cell i, periodic) and north faces (..., L, H + 1, W) (face j - 1/2
of cell j; faces 0 and H lie on the poles and have zero length). Distances in m, areas in m^2.

Boundaries: periodic in longitude. Across a pole a stencil continues on the opposite meridian
(longitude + 180 deg, vector components change sign), which keeps gradients and upwind stencils
accurate in the polar rows; fluxes through the pole itself vanish because the face has zero
length. A face is open when the cells on both sides are ocean at that level: land faces carry
no flux, so the flux-form operators conserve the area integral exactly.

Polar treatment: poleward of ``polar_latitude`` the zonal advective fluxes (and the zonal
momentum advection) pass a Fourier filter that damps zonal wavenumber k by
``min(1, cos(lat) / (cos(polar_latitude) |sin(k dlon / 2)|))``, so the zonal Courant number never
exceeds that of a cell at ``polar_latitude``; zonal diffusion coefficients are scaled by
``min(1, cos(lat)^2 / cos(polar_latitude)^2)``, which bounds the zonal diffusive time step there.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from neuralogcm.grid import Grid

HALO = 2  # cells of halo the widest stencil (third-order upwind) needs on each side


def pad(x: torch.Tensor, sign: float = 1.0) -> torch.Tensor:
    """Add a HALO-cell halo to (..., H, W): periodic in longitude, across the poles in latitude.

    Ghost row H + k is row H - 1 - k shifted by 180 deg of longitude (likewise at the south
    pole); ``sign = -1`` for the components of a vector, which reverse direction over the pole.
    Returns (..., H + 2 HALO, W + 2 HALO).
    """
    w = x.shape[-1]
    north = x[..., -HALO:, :].flip(-2).roll(w // 2, -1)
    south = x[..., :HALO, :].flip(-2).roll(w // 2, -1)
    if sign != 1.0:
        north, south = sign * north, sign * south
    x = torch.cat([south, x, north], dim=-2)
    return torch.cat([x[..., -HALO:], x, x[..., :HALO]], dim=-1)


def _shift_x(xp: torch.Tensor, offset: int, w: int) -> torch.Tensor:
    """Cells i + offset of every cell i, from a padded field, on the unpadded rows."""
    return xp[..., HALO:-HALO, HALO + offset : HALO + offset + w]


def _shift_y(xp: torch.Tensor, offset: int, h: int) -> torch.Tensor:
    """Cells j + offset of every cell j, from a padded field, on the unpadded columns."""
    return xp[..., HALO + offset : HALO + offset + h, HALO:-HALO]


class SphereOperators(nn.Module):
    """Masked finite-volume operators for one grid and one set of level masks.

    grid: the target grid; mask: (L, H, W) bool, True on ocean; polar_latitude (deg): where the
    polar filter and the coefficient scaling start. Buffers follow ``.to(dtype/device)``.
    """

    def __init__(self, grid: Grid, mask: torch.Tensor, polar_latitude: float = 60.0) -> None:
        super().__init__()
        h, w = grid.shape
        if mask.ndim != 3 or tuple(mask.shape[1:]) != (h, w):
            raise ValueError(f"mask must be (L, {h}, {w}) for this grid, got {tuple(mask.shape)}")
        if not 0.0 < polar_latitude < 90.0:
            raise ValueError(f"polar_latitude must lie in (0, 90) deg, got {polar_latitude}")
        self.grid, self.h, self.w = grid, h, w
        self.polar_latitude = polar_latitude
        a = grid.radius
        dlon = np.deg2rad(grid.resolution)
        lat = np.deg2rad(grid.lat)
        lat_faces = np.deg2rad(grid.lat_bounds)  # (H + 1,)
        cos_c = np.cos(np.deg2rad(polar_latitude))
        dx = a * np.cos(lat) * dlon
        len_n = a * np.cos(lat_faces) * dlon
        len_n[[0, -1]] = 0.0  # faces on the poles
        area = grid.cell_area[:, 0]
        self.dy = float(grid.dy)
        scale_x = np.minimum(1.0, (np.cos(lat) / cos_c) ** 2)

        def col(v: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.asarray(v, dtype=np.float64)[:, None])

        buffers = {
            "dx": col(dx),
            "len_n": col(len_n),
            "inv_area": col(1.0 / area),
            "tan_over_a": col(np.tan(lat) / a),
            "inv_acos2": col(1.0 / (a * np.cos(lat)) ** 2),
            "scale_x": col(scale_x),
        }
        m = mask.to(torch.float64)
        mp = pad(m)
        open_e = m * m.roll(-1, -1)
        cross_n = (mp[..., HALO - 1 : HALO + h, HALO:-HALO]
                   * mp[..., HALO : HALO + h + 1, HALO:-HALO])
        open_n = cross_n.clone()
        open_n[..., [0, -1], :] = 0.0
        buffers |= {"mask": m, "open_e": open_e, "open_n": open_n}
        # Masked centred gradient: the mean of the one-sided differences over the open faces.
        # Across a pole the neighbour on the far side counts (stencils, not fluxes).
        east, west = open_e, open_e.roll(1, -1)
        north, south = cross_n[..., 1:, :], cross_n[..., :-1, :]
        nx = (east + west).clamp(min=1.0)
        ny = (north + south).clamp(min=1.0)
        buffers |= {"gx_e": east / nx, "gx_w": west / nx, "gy_n": north / ny, "gy_s": south / ny}
        # Third-order upwind stencils are used where every cell they touch is ocean.
        prod = torch.ones_like(m)
        for k in range(-1, 3):
            prod = prod * _shift_x(mp, k, w)
        buffers["ub3_e"] = prod
        prod = torch.ones(m.shape[0], h + 1, w, dtype=torch.float64)
        for k in range(-2, 2):
            prod = prod * mp[..., HALO + k : HALO + k + h + 1, HALO:-HALO]
        buffers["ub3_n"] = prod
        for name, shift in (("ub3_cx", _shift_x), ("ub3_cy", _shift_y)):
            prod = m.clone()
            for k in (-2, -1, 1, 2):
                prod = prod * shift(mp, k, w if shift is _shift_x else h)
            buffers[name] = prod
        # Polar filter: rows poleward of polar_latitude, response (rows, W // 2 + 1).
        k = np.arange(w // 2 + 1)
        sin_k = np.abs(np.sin(k * dlon / 2.0))
        polar = np.cos(lat) < cos_c
        self.n_south = self.n_north = int(polar[: h // 2].sum())  # contiguous from each pole
        with np.errstate(divide="ignore"):
            response = np.minimum(1.0, np.cos(lat)[:, None] / (cos_c * sin_k[None, :]))
        buffers["filter_south"] = torch.as_tensor(response[: self.n_south])
        buffers["filter_north"] = torch.as_tensor(response[h - self.n_north :])
        for name, value in buffers.items():
            self.register_buffer(name, value.to(torch.get_default_dtype()), persistent=False)

    # ----------------------------------------------------------------------------- polar filter
    def polar_filter(self, x: torch.Tensor) -> torch.Tensor:
        """Damp high zonal wavenumbers of (..., H, W) in the polar rows (see module docstring)."""
        if self.n_south == 0:
            return x
        s, n = self.n_south, self.n_north

        def smooth(rows: torch.Tensor, response: torch.Tensor) -> torch.Tensor:
            spectrum = torch.fft.rfft(rows, dim=-1) * response
            return torch.fft.irfft(spectrum, n=self.w, dim=-1)

        return torch.cat(
            [smooth(x[..., :s, :], self.filter_south), x[..., s : self.h - n, :],
             smooth(x[..., self.h - n :, :], self.filter_north)],
            dim=-2,
        )

    # ----------------------------------------------------------------------------- flux form
    def divergence(self, flux_e: torch.Tensor, flux_n: torch.Tensor) -> torch.Tensor:
        """Finite-volume divergence of face fluxes per unit face length.

        flux_e (..., L, H, W) through east faces, flux_n (..., L, H + 1, W) through north faces,
        in [q] m/s; closed faces must already be zero. Returns (..., L, H, W) in [q]/s.
        """
        zonal = (flux_e - flux_e.roll(1, -1)) * self.dy
        fn = flux_n * self.len_n
        return (zonal + fn[..., 1:, :] - fn[..., :-1, :]) * self.inv_area

    def tracer_fluxes(
        self,
        q: torch.Tensor,
        u: torch.Tensor | None = None,
        v: torch.Tensor | None = None,
        kappa_x: torch.Tensor | float | None = None,
        kappa_y: torch.Tensor | float | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Advective plus diffusive face fluxes of a tracer, zero on closed faces.

        q (..., L, H, W); u, v (..., L, H, W) m/s at the centres (advection when given);
        kappa_x, kappa_y m^2/s broadcastable to (L, H, 1) (diffusion when given, kappa_x for the
        east faces, kappa_y for the north faces). Advective face values are third-order upwind
        biased where the four-cell stencil is ocean, centred second order otherwise.
        Returns (flux_e, flux_n) in [q] m/s.
        """
        h, w = self.h, self.w
        qp = pad(q)
        q_w, q_c, q_e, q_ee = (_shift_x(qp, k, w) for k in (-1, 0, 1, 2))
        rows = [qp[..., HALO + k : HALO + k + h + 1, HALO:-HALO] for k in (-2, -1, 0, 1)]
        flux_e = torch.zeros_like(q)
        flux_n = torch.zeros_like(rows[0])
        if u is not None and v is not None:
            u_face = 0.5 * (u + u.roll(-1, -1))
            vp = pad(v, -1.0)
            v_face = 0.5 * (vp[..., HALO - 1 : HALO + h, HALO:-HALO]
                            + vp[..., HALO : HALO + h + 1, HALO:-HALO])
            adv_e = _upwind3_flux(u_face, q_w, q_c, q_e, q_ee, self.ub3_e)
            flux_e = self.polar_filter(adv_e * self.open_e)
            flux_n = _upwind3_flux(v_face, *rows, self.ub3_n)
        if kappa_x is not None:
            flux_e = flux_e - kappa_x * self.scale_x * (q_e - q_c) / self.dx
        if kappa_y is not None:
            flux_n = flux_n - kappa_y * (rows[2] - rows[1]) / self.dy
        return flux_e * self.open_e, flux_n * self.open_n

    def laplacian(self, q: torch.Tensor) -> torch.Tensor:
        """Flux-form Laplacian of (..., L, H, W) with no flux through land faces, 1/m^2 [q].

        This is the unscaled operator (no polar coefficient scaling), for tests and analysis.
        """
        qp = pad(q)
        flux_e = (_shift_x(qp, 1, self.w) - q) / self.dx * self.open_e
        flux_n = (qp[..., HALO : HALO + self.h + 1, HALO:-HALO]
                  - qp[..., HALO - 1 : HALO + self.h, HALO:-HALO]) / self.dy * self.open_n
        return self.divergence(flux_e, flux_n)

    # ----------------------------------------------------------------------------- centred
    def gradient(self, q: torch.Tensor, sign: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Masked centred gradient (d/dx, d/dy) at the centres, [q]/m, zero on land.

        Uses the open faces only: centred where both neighbours are ocean, one-sided next to land.
        ``sign = -1`` for a vector component (see :func:`pad`).
        """
        qp = pad(q, sign)
        gx = (self.gx_e * (_shift_x(qp, 1, self.w) - q)
              + self.gx_w * (q - _shift_x(qp, -1, self.w))) / self.dx
        gy = (self.gy_n * (_shift_y(qp, 1, self.h) - q)
              + self.gy_s * (q - _shift_y(qp, -1, self.h))) / self.dy
        return gx * self.mask, gy * self.mask

    def momentum_advection(
        self, u: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """-(u d/dx + v d/dy) applied to u and v (advective form, no metric terms), m/s^2.

        Derivatives are third-order upwind biased where the five-cell stencil is ocean and the
        masked centred gradient otherwise; the zonal part passes the polar filter.
        """
        out = []
        for q in (u, v):
            qp = pad(q, -1.0)
            gx, gy = self.gradient(q, -1.0)
            zonal = _upwind3_derivative(u, [_shift_x(qp, k, self.w) for k in range(-2, 3)],
                                        self.ub3_cx, gx * self.dx) / self.dx
            merid = _upwind3_derivative(v, [_shift_y(qp, k, self.h) for k in range(-2, 3)],
                                        self.ub3_cy, gy * self.dy) / self.dy
            out.append(-(self.polar_filter(zonal) + merid) * self.mask)
        return out[0], out[1]

    def vector_laplacian(
        self, u: torch.Tensor, v: torch.Tensor, nu: torch.Tensor | float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Viscous acceleration nu (grad div - curl curl) of (u, v) on the sphere, m/s^2.

        Component Laplacians in flux form plus the spherical metric terms
        -nu (u + 2 sin(lat) dv/dlon) / (a cos(lat))^2 and -nu (v - 2 sin(lat) du/dlon) / (a cos
        lat)^2; the zonal parts carry the polar coefficient scaling. nu m^2/s, broadcastable to
        (L, 1, 1).
        """
        du_dx, _ = self.gradient(u, -1.0)
        dv_dx, _ = self.gradient(v, -1.0)
        nu_x = nu * self.scale_x
        out = []
        for q, other, sign in ((u, dv_dx, 1.0), (v, du_dx, -1.0)):
            flux_e, flux_n = self.tracer_fluxes(q, kappa_x=nu, kappa_y=nu)
            metric = nu_x * (q * self.inv_acos2 + sign * 2.0 * self.tan_over_a * other)
            out.append((self.divergence(flux_e, flux_n) - metric) * self.mask)
        return out[0], out[1]

    def diffusion_bound(self, dt: float, stability_limit: float = 2.5127) -> float:
        """Largest coefficient (m^2/s) for which explicit diffusion/viscosity with time step dt is
        stable, from a Gershgorin bound on the operators above; stability_limit is the extent of
        the time integrator's stability region on the negative real axis (2.51 for SSP-RK3)."""
        dx = self.dx.double()[:, 0]
        s = self.scale_x.double()[:, 0]
        len_n = self.len_n.double()[:, 0]
        inv_area = self.inv_area.double()[:, 0]
        zonal = 4.0 * s * self.dy / dx * inv_area
        merid = 2.0 * (len_n[1:] + len_n[:-1]) / self.dy * inv_area
        metric = 2.0 * s * (self.inv_acos2.double()[:, 0] + self.tan_over_a.double()[:, 0].abs()
                            / dx)
        return float(stability_limit / (dt * (zonal + merid + metric).max()))


def _upwind3_flux(vel, q0, q1, q2, q3, ub3):
    """Face flux vel * q between cells q1 | q2 (neighbours q0, q3): third-order upwind biased
    where ``ub3`` is 1, centred second order where it is 0."""
    centred4 = (7.0 * (q1 + q2) - (q0 + q3)) / 12.0
    dissipative = (q3 - q0 - 3.0 * (q2 - q1)) / 12.0
    upwind3 = vel * centred4 + vel.abs() * dissipative
    centred2 = vel * 0.5 * (q1 + q2)
    return centred2 + ub3 * (upwind3 - centred2)


def _upwind3_derivative(vel, stencil, ub3, fallback):
    """vel * dq (per grid step) at the centres from the five values q(-2..2): third-order upwind
    biased where ``ub3`` is 1, vel * fallback (a difference per grid step) where it is 0."""
    qm2, qm1, q0, qp1, qp2 = stencil
    centred4 = (qm2 - qp2 + 8.0 * (qp1 - qm1)) / 12.0
    hyper = (qm2 + qp2 - 4.0 * (qm1 + qp1) + 6.0 * q0) / 12.0
    upwind3 = vel * centred4 + vel.abs() * hyper
    return vel * fallback + ub3 * (upwind3 - vel * fallback)
