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

Schemes: tracer face values third-order upwind biased (flux form; the physics core adds
q div(u) from the same face velocities, so a uniform tracer stays uniform); momentum advection in
advective form with third-order upwind-biased derivatives; diffusion in flux form with
fourth-order face gradients and a fourth-order divergence correction (faded out towards the
poles, so the Laplacian is second order overall with a small error constant); a masked centred
gradient (one-sided next to land) for pressure. Each falls back to a second-order stencil where
its wider stencil would touch land.

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


def pad(x: torch.Tensor, sign: float | torch.Tensor = 1.0) -> torch.Tensor:
    """Add a HALO-cell halo to (..., H, W): periodic in longitude, across the poles in latitude.

    Ghost row H + k is row H - 1 - k shifted by 180 deg of longitude (likewise at the south
    pole); ``sign = -1`` for the components of a vector, which reverse direction over the pole
    (a tensor of signs broadcastable to x's leading dimensions for a stack of fields).
    Returns (..., H + 2 HALO, W + 2 HALO).
    """
    w = x.shape[-1]
    north = x[..., -HALO:, :].flip(-2).roll(w // 2, -1)
    south = x[..., :HALO, :].flip(-2).roll(w // 2, -1)
    if torch.is_tensor(sign) or sign != 1.0:
        north, south = sign * north, sign * south
    x = torch.cat([south, x, north], dim=-2)
    return torch.cat([x[..., -HALO:], x, x[..., :HALO]], dim=-1)


def _shift_x(xp: torch.Tensor, offset: int, w: int) -> torch.Tensor:
    """Cells i + offset of every cell i, from a padded field, on the unpadded rows."""
    return xp[..., HALO:-HALO, HALO + offset : HALO + offset + w]


def _shift_y(xp: torch.Tensor, offset: int, h: int) -> torch.Tensor:
    """Cells j + offset of every cell j, from a padded field, on the unpadded columns."""
    return xp[..., HALO + offset : HALO + offset + h, HALO:-HALO]


class GeometryModule(nn.Module):
    """A module whose constant buffers are kept in float64 and converted from that master copy
    on every ``.to()``/``.double()``/``.float()``, so a float64 core built while the default
    dtype is float32 has exact float64 geometry (conservation to round-off needs it)."""

    def __init__(self) -> None:
        super().__init__()
        self._masters: dict[str, torch.Tensor] = {}

    def register_geometry(self, name: str, value: torch.Tensor) -> None:
        """A non-persistent buffer in the default dtype, with a float64 master copy."""
        master = value.detach().to(torch.float64)
        self._masters[name] = master
        self.register_buffer(name, master.to(torch.get_default_dtype()), persistent=False)

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        for name, master in self._masters.items():
            current = self._buffers[name]
            self._buffers[name] = fn(master).to(dtype=current.dtype)
        return self


class SphereOperators(GeometryModule):
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
        correct_n = torch.zeros_like(open_n)
        # Towards the poles the transports vary like the distance from the pole squared and the
        # correction no longer improves on second order: it fades out with cos(lat)^2.
        correct_n[..., 1:-1, :] = open_n[..., :-2, :] * open_n[..., 1:-1, :] * open_n[..., 2:, :]
        correct_n = correct_n * torch.as_tensor(np.cos(lat_faces)[:, None] ** 2)
        correct_e = open_e * open_e.roll(1, -1) * open_e.roll(-1, -1)
        buffers |= {"mask": m, "open_e": open_e, "open_n": open_n}
        # Masked centred gradient: the mean of the one-sided differences over the open faces.
        # Across a pole the neighbour on the far side counts (stencils, not fluxes).
        east, west = open_e, open_e.roll(1, -1)
        north, south = cross_n[..., 1:, :], cross_n[..., :-1, :]
        nx = (east + west).clamp(min=1.0)
        ny = (north + south).clamp(min=1.0)
        buffers |= {"gx_e": east / nx, "gx_w": west / nx, "gy_n": north / ny, "gy_s": south / ny}
        # Four-cell face stencils and five-cell centre stencils where every cell is ocean.
        prod = torch.ones_like(m)
        for k in range(-1, 3):
            prod = prod * _shift_x(mp, k, w)
        stencil_e = prod
        prod = torch.ones(m.shape[0], h + 1, w, dtype=torch.float64)
        for k in range(-2, 2):
            prod = prod * mp[..., HALO + k : HALO + k + h + 1, HALO:-HALO]
        stencil_n = prod
        # Stencil weights with the face lengths and closed faces folded in. Diffusion: the
        # fourth-order face difference (27 (q2 - q1) - (q3 - q0)) / 24 = (1 + 1/8) (q2 - q1)
        # - (q3 - q0) / 24, and the correction T - c (T[f+1] - 2 T[f] + T[f-1]) / 24 =
        # (1 + c/12) T - c/24 (T[f+1] + T[f-1]). Advection: the face value is
        # (7 (q1 + q2) - (q0 + q3)) / 12 plus the upwind part, or (q1 + q2) / 2.
        len_e = self.dy * open_e
        len_open_n = torch.as_tensor(len_n)[:, None] * open_n
        buffers |= {
            "diff_e": (1.0 + stencil_e / 8.0) * len_e / buffers["dx"],
            "diff4_e": stencil_e / 24.0 * len_e / buffers["dx"],
            "diff_n": (1.0 + stencil_n / 8.0) * len_open_n / self.dy,
            "diff4_n": stencil_n / 24.0 * len_open_n / self.dy,
            "keep_e": 1.0 + correct_e / 12.0, "corr_e": correct_e / 24.0,
            "keep_n": 1.0 + correct_n / 12.0, "corr_n": correct_n / 24.0,
            "len_e": len_e, "half_open_e": 0.5 * open_e, "half_len_n": 0.5 * len_open_n,
            "centred_e": 0.5 + stencil_e / 12.0, "upwind_e": stencil_e / 12.0,
            "centred_n": 0.5 + stencil_n / 12.0, "upwind_n": stencil_n / 12.0,
        }
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
            self.register_geometry(name, value)

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

    # ----------------------------------------------------------------------------- stencils
    def face_stencils(self, xp: torch.Tensor) -> tuple[list, list]:
        """From a padded field (..., H + 4, W + 4): the four cells i-1..i+2 around every east
        face, (..., H, W) each, and the four cells j-2..j+1 around every north face,
        (..., H + 1, W) each."""
        east = [_shift_x(xp, k, self.w) for k in (-1, 0, 1, 2)]
        north = [xp[..., HALO + k : HALO + k + self.h + 1, HALO:-HALO] for k in (-2, -1, 0, 1)]
        return east, north

    def centre_stencils(self, xp: torch.Tensor) -> tuple[list, list]:
        """From a padded field: the cells i-2..i+2 and j-2..j+2 of every cell, (..., H, W)."""
        return ([_shift_x(xp, k, self.w) for k in range(-2, 3)],
                [_shift_y(xp, k, self.h) for k in range(-2, 3)])

    # ----------------------------------------------------------------------------- flux form
    def divergence(self, trans_e: torch.Tensor, trans_n: torch.Tensor) -> torch.Tensor:
        """Finite-volume divergence of face transports (flux times face length).

        trans_e (..., L, H, W) through east faces, trans_n (..., L, H + 1, W) through north
        faces, in [q] m^2/s; closed faces must already be zero. Returns (..., L, H, W) in [q]/s.
        """
        return (trans_e - trans_e.roll(1, -1) + trans_n[..., 1:, :] - trans_n[..., :-1, :]) \
            * self.inv_area

    def diffusive_transports(self, east: list, north: list, kappa_x, kappa_y):
        """Transports -kappa grad(q) times face length through the open faces, [q] m^2/s.

        east, north: face stencils of q; kappa_x (east faces), kappa_y (north faces) m^2/s,
        broadcastable to (..., L, H, 1). Fourth-order face gradients where the four-cell stencil
        is ocean and the fourth-order divergence correction T - (T[f+1] - 2 T[f] + T[f-1]) / 24
        where the neighbouring faces are open (faded out towards the poles); second order
        otherwise.
        """
        trans_e = -kappa_x * ((east[2] - east[1]) * self.diff_e
                              - (east[3] - east[0]) * self.diff4_e)
        trans_e = trans_e * self.keep_e - (trans_e.roll(-1, -1) + trans_e.roll(1, -1)) * self.corr_e
        trans_n = -kappa_y * ((north[2] - north[1]) * self.diff_n
                              - (north[3] - north[0]) * self.diff4_n)
        edge = torch.zeros_like(trans_n[..., :1, :])
        neighbours = torch.cat([edge, trans_n[..., 2:, :] + trans_n[..., :-2, :], edge], -2)
        trans_n = trans_n * self.keep_n - neighbours * self.corr_n
        return trans_e, trans_n

    def advective_transports(self, east: list, north: list, east_u: list, north_v: list,
                             volume: bool = False):
        """Transports u q times face length through the open faces, [q] m^2/s.

        east, north: face stencils of q; east_u, north_v: face stencils of u and v (m/s; the
        face velocity is the mean of the two adjacent centres). Face values are third-order
        upwind biased where the four-cell stencil is ocean, centred second order otherwise; the
        zonal fluxes pass the polar filter. With ``volume`` also the volume transports u times
        face length (m^3/s per m of depth, polar-filtered alike), the transports of q = 1: the
        scheme is exact for a uniform q, so ``q div(volume)`` cancels the flux divergence of a
        uniform field exactly.
        """
        u_face = (east_u[1] + east_u[2]) * self.half_open_e
        v_face = (north_v[1] + north_v[2]) * self.half_len_n
        flux_e = _upwind3_flux(u_face, *east, self.centred_e, self.upwind_e)
        trans_e = self.polar_filter(flux_e) * self.len_e
        trans_n = _upwind3_flux(v_face, *north, self.centred_n, self.upwind_n)
        if volume:
            return trans_e, trans_n, self.polar_filter(u_face) * self.len_e, v_face
        return trans_e, trans_n

    def tracer_transports(
        self,
        q: torch.Tensor,
        u: torch.Tensor | None = None,
        v: torch.Tensor | None = None,
        kappa: torch.Tensor | float | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Advective (when u, v m/s are given) plus diffusive (when kappa m^2/s is given, scaled
        towards the poles on the east faces) transports of q (..., L, H, W), [q] m^2/s."""
        east, north = self.face_stencils(pad(q))
        trans_e = torch.zeros_like(q)
        trans_n = torch.zeros_like(north[0])
        if u is not None and v is not None:
            east_u = self.face_stencils(pad(u, -1.0))[0]
            north_v = self.face_stencils(pad(v, -1.0))[1]
            trans_e, trans_n = self.advective_transports(east, north, east_u, north_v)
        if kappa is not None:
            diff_e, diff_n = self.diffusive_transports(east, north, kappa * self.scale_x, kappa)
            trans_e, trans_n = trans_e + diff_e, trans_n + diff_n
        return trans_e, trans_n

    def laplacian(self, q: torch.Tensor) -> torch.Tensor:
        """Flux-form Laplacian of (..., L, H, W) with no flux through land faces, [q]/m^2.

        The operator diffusion uses, without the polar coefficient scaling.
        """
        return -self.divergence(*self.diffusive_transports(*self.face_stencils(pad(q)), 1.0, 1.0))

    # ----------------------------------------------------------------------------- centred
    def centred_gradient(self, zonal: list, merid: list) -> tuple[torch.Tensor, torch.Tensor]:
        """Masked centred gradient (d/dx, d/dy) from centre stencils, [q]/m, zero on land.

        Uses the open faces only: centred where both neighbours are ocean, one-sided next to
        land, zero for a cell without ocean neighbours.
        """
        gx = (self.gx_e * (zonal[3] - zonal[2]) + self.gx_w * (zonal[2] - zonal[1])) / self.dx
        gy = (self.gy_n * (merid[3] - merid[2]) + self.gy_s * (merid[2] - merid[1])) / self.dy
        return gx * self.mask, gy * self.mask

    def gradient(self, q: torch.Tensor, sign: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Masked centred gradient of q (..., L, H, W); ``sign = -1`` for a vector component."""
        return self.centred_gradient(*self.centre_stencils(pad(q, sign)))

    def momentum_advection(self, zonal: list, merid: list, gradient: tuple, u, v) -> torch.Tensor:
        """-(u d/dx + v d/dy) q, [q]/s (advective form, no metric terms).

        zonal, merid: centre stencils of q; gradient: its centred gradient; u, v m/s. Derivatives
        are third-order upwind biased where the five-cell stencil is ocean and the masked centred
        gradient otherwise; the zonal part passes the polar filter.
        """
        along_x = _upwind3_derivative(u, zonal, self.ub3_cx, gradient[0] * self.dx) / self.dx
        along_y = _upwind3_derivative(v, merid, self.ub3_cy, gradient[1] * self.dy) / self.dy
        return -(self.polar_filter(along_x) + along_y) * self.mask

    def viscous_metric(self, vel: torch.Tensor, d_dx: torch.Tensor, nu) -> torch.Tensor:
        """Metric terms of the vector Laplacian nu (grad div - curl curl) on the sphere, m/s^2.

        vel (..., 2, L, H, W): u, v; d_dx: their zonal derivatives (1/s); nu m^2/s. Returns
        -nu (u + 2 sin(lat) dv/dlon) / (a cos lat)^2 and -nu (v - 2 sin(lat) du/dlon) / (a cos
        lat)^2, with the polar coefficient scaling of the zonal terms; adding the component
        Laplacians gives the vector Laplacian.
        """
        swap = torch.stack([d_dx[..., 1, :, :, :], -d_dx[..., 0, :, :, :]], -4)
        return -nu * self.scale_x * (vel * self.inv_acos2 + 2.0 * self.tan_over_a * swap)

    def diffusion_bound(self, dt: float, stability_limit: float = 2.5127) -> float:
        """Largest coefficient (m^2/s) for which explicit diffusion/viscosity with time step dt is
        stable, from a Gershgorin bound on the operators above; stability_limit is the extent of
        the time integrator's stability region on the negative real axis (2.51 for SSP-RK3)."""
        dx = self.dx.double()[:, 0]
        s = self.scale_x.double()[:, 0]
        len_n = self.len_n.double()[:, 0]
        inv_area = self.inv_area.double()[:, 0]
        fourth_order = (7.0 / 6.0) ** 2  # the fourth-order terms widen the spectrum by this
        zonal = fourth_order * 4.0 * s * self.dy / dx * inv_area
        merid = fourth_order * 2.0 * (len_n[1:] + len_n[:-1]) / self.dy * inv_area
        metric = 2.0 * s * (self.inv_acos2.double()[:, 0] + self.tan_over_a.double()[:, 0].abs()
                            / dx)
        return float(stability_limit / (dt * (zonal + merid + metric).max()))


def _upwind3_flux(vel, q0, q1, q2, q3, centred, upwind):
    """Face flux vel * q between cells q1 | q2 (neighbours q0, q3): third-order upwind biased
    where ``upwind`` is 1/12 (``centred`` 7/12), centred second order where they are 0 (1/2)."""
    average = centred * (q1 + q2) - upwind * (q0 + q3)
    dissipation = upwind * ((q3 - q0) - 3.0 * (q2 - q1))
    return vel * average + vel.abs() * dissipation


def _upwind3_derivative(vel, stencil, ub3, fallback):
    """vel * dq (per grid step) at the centres from the five values q(-2..2): third-order upwind
    biased where ``ub3`` is 1, vel * fallback (a difference per grid step) where it is 0."""
    qm2, qm1, q0, qp1, qp2 = stencil
    centred4 = (qm2 - qp2 + 8.0 * (qp1 - qm1)) / 12.0
    hyper = (qm2 + qp2 - 4.0 * (qm1 + qp1) + 6.0 * q0) / 12.0
    upwind3 = vel * centred4 + vel.abs() * hyper
    return vel * fallback + ub3 * (upwind3 - vel * fallback)
