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

Schemes: advection of every field (T, S and the velocity components alike) in the advective
form -u.grad q = -div(u q) + q div(u), built from face transports, so a uniform field stays
uniform in the divergent flow of a level and a non-divergent flow conserves the area integral.
Face values are the upwind cell plus a superbee-limited slope (as Veros' tracer advection):
per face the tendency is U_f (q_i - q_face) / area with a non-negative weight on a
neighbour's difference, so advection is bounded by the neighbouring values (no new extrema) for
sub-steps within ``courant_rate``'s limit. Next to land the slope that would reach behind a
closed face is dropped (first-order upwind); closed faces carry nothing, which for the
velocities is a free-slip wall. Diffusion in flux form with fourth-order face gradients and a
fourth-order divergence correction (faded out towards the poles, so the Laplacian is second
order overall with a small error constant), second order where the wider stencil touches land;
a masked centred gradient (one-sided next to land) for pressure.

The stencil primitives (the halo, shifted windows, the limited face value) are in stencils.py,
written for the cost of their backward passes.

Polar treatment: the physics core takes as many sub-steps as the rows equatorward of
``polar_latitude`` need (``courant_rate(..., polar_zonal=False)``; the meridional Courant
number of the polar rows counts too) and subcycles the zonal advection of the polar rows
(``polar_band``, ``zonal_advective_tendency``) as their zonal Courant number needs
(``polar_zonal_rate``), so advection stays bounded there too. Where a time step is given that
is too long for a polar row (the core's polar subcycles at their cap, or ``dt`` given to
``advective_transports``), the zonal velocity beyond the limit is carried by a Fourier filter
poleward of ``polar_latitude`` that damps zonal wavenumber k by
``min(1, cos(lat) / (cos(polar_latitude) |sin(k dlon / 2)|))``, so its Courant number never
exceeds that of a cell at ``polar_latitude``: stable, but not bounded (filtering the whole flux
drove S to -28 at 87 N in a year of flow over the pole). Zonal diffusion coefficients are
scaled by ``min(1, cos(lat)^2 / cos(polar_latitude)^2)`` poleward of ``polar_latitude``, which
bounds the zonal diffusive time step there.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from neuralogcm.grid import Grid
from neuralogcm.physics.stencils import (
    HALO,
    limited_face_value,
    pad,
    windows,
    x_window,
    y_window,
)

COURANT = 0.4  # largest advective Courant number (dt courant_rate) the limited scheme is run at


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
    polar filter and the zonal coefficient scaling start. Buffers follow ``.to(dtype/device)``.
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
        # Masked centred gradient: the mean of the one-sided differences over the open faces
        # (weights in 1/m, 0 on land). Across a pole the neighbour on the far side counts
        # (stencils, not fluxes).
        east, west = open_e, open_e.roll(1, -1)
        north, south = cross_n[..., 1:, :], cross_n[..., :-1, :]
        nx = (east + west).clamp(min=1.0)
        ny = (north + south).clamp(min=1.0)
        buffers |= {"gx_e": east / nx / buffers["dx"], "gx_w": west / nx / buffers["dx"],
                    "gy_n": north / ny / self.dy, "gy_s": south / ny / self.dy}
        # Four-cell face stencils where every cell is ocean.
        prod = torch.ones_like(m)
        for k in range(-1, 3):
            prod = prod * mp[x_window(k, w)]
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
            "half_len_e": 0.5 * len_e,
        }
        # Limited advection: is the face upstream of the upwind cell open (flow towards +x/+y
        # through face f has its upwind cell behind face f - 1, towards -x/-y behind f + 1)?
        # Across a pole the stencil continues (cross_n); the pole faces have no neighbours.
        edge = torch.zeros_like(cross_n[..., :1, :])
        buffers |= {
            "up_east_pos": open_e.roll(1, -1), "up_east_neg": open_e.roll(-1, -1),
            "up_north_pos": torch.cat([edge, cross_n[..., :-1, :]], -2),
            "up_north_neg": torch.cat([cross_n[..., 1:, :], edge], -2),
        }
        buffers["inv_dx"] = col(1.0 / dx)  # 1/m, for Courant numbers
        # Polar filter: rows poleward of polar_latitude, response (rows, W // 2 + 1).
        k = np.arange(w // 2 + 1)
        sin_k = np.abs(np.sin(k * dlon / 2.0))
        polar = np.cos(lat) < cos_c
        self.n_south = self.n_north = int(polar[: h // 2].sum())  # contiguous from each pole
        with np.errstate(divide="ignore"):
            response = np.minimum(1.0, np.cos(lat)[:, None] / (cos_c * sin_k[None, :]))
        buffers["filter_south"] = torch.as_tensor(response[: self.n_south])
        buffers["filter_north"] = torch.as_tensor(response[h - self.n_north :])
        buffers["polar_dx"] = col(np.where(polar, dx, np.inf))  # m, inf outside the polar rows
        buffers["zonal_keep"] = col(np.where(polar, 0.0, 1.0))  # 0 on the polar rows
        buffers["half_len_e_inner"] = buffers["half_len_e"] * buffers["zonal_keep"]
        # The polar band (``polar_band``) of the buffers, for the polar rows' own zonal
        # advection (``zonal_advective_tendency``).
        for name in ("half_open_e", "len_e", "up_east_pos", "up_east_neg", "mask", "inv_area",
                     "polar_dx"):
            buffers["band_" + name] = self.polar_band(buffers[name])
        buffers["band_filter"] = torch.stack(
            [buffers["filter_south"], buffers["filter_north"].flip(0)])
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
        cells = windows(xp, [x_window(k, self.w) for k in (-1, 0, 1, 2)]
                        + [y_window(k, self.h + 1) for k in (-2, -1, 0, 1)])
        return cells[:4], cells[4:]

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
                             dt: float | None = None, polar_zonal: bool = True):
        """Transports u q and u (m^2/s, times face length) through the open faces.

        east, north: face stencils of q; east_u, north_v: face stencils of u and v (m/s; the
        face velocity is the mean of the two adjacent centres). Face values are the upwind cell
        plus a superbee-limited slope (second order where the field is smooth, first order at
        extrema and where the face behind the upwind cell is land), so
        ``advective_tendency`` of them is bounded by the neighbouring values while dt times
        ``courant_rate`` stays below COURANT. With a time step dt (s), any zonal velocity of a
        polar row beyond that limit is carried by the polar filter instead (stable, no longer
        bounded); within it (the core's automatic sub-steps) nothing is filtered. With
        ``polar_zonal=False`` the east faces of the polar rows carry nothing (their zonal
        advection is ``zonal_advective_tendency``'s, subcycled by the core). Returns (q
        transports east, north, volume transports east, north): the volume transports are
        those of q = 1.
        """
        v_face = (north_v[1] + north_v[2]) * self.half_len_n  # times the face length, m^2/s
        q_n = limited_face_value(v_face, *north, self.up_north_pos, self.up_north_neg)
        if dt is None or not polar_zonal or not self.n_south:  # nothing for the filter
            length = self.half_len_e if polar_zonal else self.half_len_e_inner
            u_face = (east_u[1] + east_u[2]) * length  # times the face length, m^2/s
            q_e = limited_face_value(u_face, *east, self.up_east_pos, self.up_east_neg)
            return u_face * q_e, v_face * q_n, u_face, v_face
        u_face = (east_u[1] + east_u[2]) * self.half_open_e
        q_e = limited_face_value(u_face, *east, self.up_east_pos, self.up_east_neg)
        limit = COURANT * self.polar_dx / dt
        bounded = torch.maximum(torch.minimum(u_face, limit), -limit)
        excess = u_face - bounded
        trans_e = bounded * q_e + self.polar_filter(excess * q_e)
        vol_e = bounded + self.polar_filter(excess)
        return trans_e * self.len_e, v_face * q_n, vol_e * self.len_e, v_face

    def advective_tendency(self, q: torch.Tensor, transports: tuple) -> torch.Tensor:
        """-u.grad q = -div(u q) + q div(u), [q]/s, from ``advective_transports``' four outputs.

        Per face this is U_f (q_i - q_face) / area: a uniform q stays uniform in any flow, and a
        non-divergent flow conserves the area integral of q exactly.
        """
        trans_e, trans_n, vol_e, vol_n = transports
        return q * self.divergence(vol_e, vol_n) - self.divergence(trans_e, trans_n)

    def courant_rate(self, u: torch.Tensor, v: torch.Tensor,
                     polar_zonal: bool = True) -> torch.Tensor:
        """Largest |u|/dx + |v|/dy over the ocean cells, polar rows included (1/s): a sub-step
        dt keeps the limited advection bounded when dt times this is below COURANT (the scheme's
        limit is 1/2). ``polar_zonal=False``: without |u|/dx on the polar rows (the rate of
        ``advective_transports(..., polar_zonal=False)``)."""
        zonal = u.abs() * self.inv_dx
        if not polar_zonal:
            zonal = zonal * self.zonal_keep
        return ((zonal + v.abs() / self.dy) * self.mask).amax()

    def polar_zonal_rate(self, u: torch.Tensor) -> torch.Tensor:
        """Largest |u|/dx over the ocean cells of each polar row, both hemispheres together, in
        ``polar_band``'s order from the pole (n_south,) (1/s): the rate of
        ``zonal_advective_tendency``."""
        rate = self.polar_band(u).abs() / self.band_polar_dx * self.band_mask
        return rate.movedim(-2, 0).reshape(self.n_south, -1).amax(1)

    def tracer_tendency(
        self,
        q: torch.Tensor,
        u: torch.Tensor | None = None,
        v: torch.Tensor | None = None,
        kappa: torch.Tensor | float | None = None,
        dt: float | None = None,
    ) -> torch.Tensor:
        """dq/dt of q (..., L, H, W), [q]/s: limited advection -u.grad q (when u, v m/s are
        given; dt s as in ``advective_transports``) plus flux-form diffusion div(kappa grad q)
        (when kappa m^2/s is given, scaled towards the poles on the east faces)."""
        east, north = self.face_stencils(pad(q))
        tendency = torch.zeros_like(q)
        if u is not None and v is not None:
            east_u = self.face_stencils(pad(u, -1.0))[0]
            north_v = self.face_stencils(pad(v, -1.0))[1]
            tendency = self.advective_tendency(
                q, self.advective_transports(east, north, east_u, north_v, dt))
        if kappa is not None:
            diffusive = self.diffusive_transports(east, north, kappa * self.scale_x, kappa)
            tendency = tendency - self.divergence(*diffusive)
        return tendency * self.mask

    def laplacian(self, q: torch.Tensor) -> torch.Tensor:
        """Flux-form Laplacian of (..., L, H, W) with no flux through land faces, [q]/m^2.

        The operator diffusion uses, without the polar coefficient scaling.
        """
        return -self.divergence(*self.diffusive_transports(*self.face_stencils(pad(q)), 1.0, 1.0))

    # ----------------------------------------------------------------------------- polar band
    def polar_band(self, x: torch.Tensor) -> torch.Tensor:
        """The polar rows of (..., H, W): (..., 2, n_south, W), southern then northern
        hemisphere, each from the row next to its pole towards polar_latitude."""
        s, n = self.n_south, self.n_north
        return torch.stack([x[..., :s, :], x[..., self.h - n :, :].flip(-2)], dim=-3)

    def with_polar_band(self, x: torch.Tensor, band: torch.Tensor) -> torch.Tensor:
        """x (..., H, W) with its polar rows replaced by band (..., 2, n_south, W)."""
        s, n = self.n_south, self.n_north
        return torch.cat([band[..., 0, :, :], x[..., s : self.h - n, :],
                          band[..., 1, :, :].flip(-2)], dim=-2)

    def band_geometry(self, k: int) -> tuple[torch.Tensor, ...]:
        """The buffers ``zonal_advective_tendency`` needs on the first k rows from each pole of
        the polar band (sliced here, so that a compiled caller sees plain inputs)."""
        names = ("half_open_e", "up_east_pos", "up_east_neg", "len_e", "inv_area", "mask",
                 "polar_dx", "filter")
        return tuple(getattr(self, "band_" + name)[..., :k, :] for name in names)

    def zonal_advective_tendency(self, q: torch.Tensor, u: torch.Tensor, geometry: tuple,
                                 dt=None) -> torch.Tensor:
        """-u dq/dx on the first K rows from each pole of the polar band (the zonal part of
        ``advective_tendency``), [q]/s.

        q (..., L, 2, K, W) and u (m/s, broadcastable to q): ``polar_band(...)[..., :K, :]``;
        geometry: ``band_geometry(K)``. The same limited face values, closed faces and
        advective form as ``advective_transports``: bounded by the neighbouring values of the
        row while dt times ``polar_zonal_rate`` stays below COURANT. With dt (s, a float or per
        row (K, 1)), the zonal velocity beyond that limit is carried by the polar filter (the
        core's fallback when its subcycles are capped).
        """
        half_open, up_pos, up_neg, length, inv_area, mask, polar_dx, response = geometry
        east = [q.roll(-i, -1) for i in (-1, 0, 1, 2)]
        u_face = (u + u.roll(-1, -1)) * half_open
        q_e = limited_face_value(u_face, *east, up_pos, up_neg)
        trans, vol = u_face * q_e, u_face
        if dt is not None:
            limit = COURANT * polar_dx / dt
            bounded = torch.maximum(torch.minimum(u_face, limit), -limit)
            excess = u_face - bounded

            def smooth(x: torch.Tensor) -> torch.Tensor:
                spectrum = torch.fft.rfft(x, dim=-1) * response
                return torch.fft.irfft(spectrum, n=self.w, dim=-1)

            trans, vol = bounded * q_e + smooth(excess * q_e), bounded + smooth(excess)
        trans, vol = trans * length, vol * length
        div_vol, div_trans = vol - vol.roll(1, -1), trans - trans.roll(1, -1)
        return (q * div_vol - div_trans) * inv_area * mask

    # ----------------------------------------------------------------------------- centred
    def zonal_derivative(self, xp: torch.Tensor) -> torch.Tensor:
        """Masked centred d/dx of a padded field (..., H + 4, W + 4): (..., H, W) [q]/m, zero on
        land; centred where both neighbours are ocean, one-sided next to land, zero for a cell
        without ocean neighbours (only the open faces count)."""
        west, centre, east = windows(xp, [x_window(k, self.w) for k in (-1, 0, 1)])
        return self.gx_e * (east - centre) + self.gx_w * (centre - west)

    def meridional_derivative(self, xp: torch.Tensor) -> torch.Tensor:
        """Masked centred d/dy of a padded field, as ``zonal_derivative`` (across a pole the
        neighbour on the far side counts)."""
        south, centre, north = windows(xp, [y_window(k, self.h) for k in (-1, 0, 1)])
        return self.gy_n * (north - centre) + self.gy_s * (centre - south)

    def gradient(self, q: torch.Tensor, sign: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Masked centred gradient (d/dx, d/dy) of q (..., L, H, W), [q]/m, zero on land;
        ``sign = -1`` for a vector component."""
        qp = pad(q, sign)
        return self.zonal_derivative(qp), self.meridional_derivative(qp)

    def viscous_metric(self, vel: torch.Tensor, d_dx: torch.Tensor, nu) -> torch.Tensor:
        """Metric terms of the vector Laplacian nu (grad div - curl curl) on the sphere, m/s^2.

        vel (..., 2, L, H, W): u, v; d_dx: their zonal derivatives (1/s); nu m^2/s. Returns
        -nu (u + 2 sin(lat) dv/dlon) / (a cos lat)^2 and -nu (v - 2 sin(lat) du/dlon) / (a cos
        lat)^2, with the polar coefficient scaling of the zonal terms; adding the component
        Laplacians gives the vector Laplacian.
        """
        swap = torch.stack([d_dx[..., 1, :, :, :], -d_dx[..., 0, :, :, :]], -4)
        return -nu * self.scale_x * (vel * self.inv_acos2 + 2.0 * self.tan_over_a * swap)

    def diffusion_bound(self, dt: float, stability_limit: float = 2.0) -> float:
        """Largest coefficient (m^2/s) for which explicit diffusion/viscosity with time step dt is
        stable, from a Gershgorin bound on the operators above; stability_limit is the extent of
        the time integrator's stability region on the negative real axis (2 for the forward step
        the core takes, 2.51 for SSP-RK3)."""
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
