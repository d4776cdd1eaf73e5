"""The differentiable physics core: one day of advection, Coriolis, pressure gradient and
horizontal diffusion on the sphere, with learnable diffusion and viscosity coefficients.

Equations, per depth level, on the sphere of radius a (lat phi, lon lambda, x east, y north):

    dq/dt = -div(u q) + q div(u) + div(kappa grad q)            q = T, S
    du/dt = -(u.grad) u + (f + u tan(phi)/a) v - dP/dx + nu (grad div - curl curl)_x u
    dv/dt = -(u.grad) v - (f + u tan(phi)/a) u - dP/dy + nu (grad div - curl curl)_y u
    P = g eta [+ g int_0^z rho'/rho0 dz  with rho'/rho0 = -alpha (T - T0) + beta (S - S0)]

Tracer advection is the flux form plus q div(u), with div(u) from the same face velocities: the
advective form -u.grad q, so a uniform tracer stays exactly uniform even though each level's
horizontal flow is divergent (the real ocean balances that divergence by vertical motion, which
the core does not have). For a discretely non-divergent flow the extra term vanishes and the
core conserves the tracers' area integral exactly (to round-off); diffusion always does.

SSH is held: the core has no continuity equation (a free surface would add gravity waves of
200 m/s that no affordable sub-step resolves), so eta only enters the pressure gradient and its
increment is 0; the neural corrector supplies SSH's change. The barotropic pressure gradient
g grad(eta) acts at every level (plus the baroclinic one when ``physics.baroclinic``).

Time integration over the day in n sub-steps of dt = 86400 s / n, each Strang split: half a step
of the fast rotation, an SSP-RK3 step of advection, a forward (Euler) step of diffusion and
viscosity, half a step of rotation. Diffusion steps forward, as NEMO steps lateral diffusion,
for two reasons: its stencils cost as much as the advection's, so held out of the three stages
they are computed once a step, not three times; and with the advection first, a training day
whose input needs no gradient (one-day windows) back-propagates through the diffusion alone,
because only the coefficients need gradients (a demo-size day, forward and backward: 0.42x the
SSP-RK3 step of both). A wave of wavenumber k is damped by 1 - c a step instead of exp(-c),
c = kappa k^2 dt: 7.5e-5 of its amplitude off for a wave of ten cells at 1.5 deg with
nu = 1e4 m^2/s and one sub-step a day; grid-scale waves a little more (by 0.70 for 0.74 at
c = 0.3); the stability limit is that of the forward step (operators.diffusion_bound). The
rotation (Coriolis + metric term + pressure gradient, with the rate f + u tan(phi)/a and P frozen
over the half step) is integrated exactly,
``w <- w exp(-i F tau) + P (1 - exp(-i F tau)) / (i F)`` for w = u + i v, so it is stable at any
f dt and keeps a geostrophic state steady. n is ``physics.substeps`` when set, else chosen per
call (``plan``): the fewest that keep the advective Courant number of the day's initial
velocities below COURANT and the current coefficients below the diffusive stability limit,
where the Courant number of the polar rows (poleward of ``physics.polar_latitude``) counts
without their zonal advection. Where the polar rows' zonal Courant number needs more, their
zonal advection leaves the SSP-RK3 step and is subcycled, Strang split around the sub-step:
m zonal SSP-RK3 steps of dt / (2 m) on each polar row before and after it (m per row from the
same Courant limit: zonal advection couples no rows), so advection stays bounded there too and
the cells of 9 km (3 deg) or 2 km (1.5 deg) at the poles do not set the sub-steps of the grid.
Spatial operators: see physics/operators.py.

Coefficients: kappa (T, S) and nu (u, v), one per depth level (or one per group with
``per_level: false``), ``c = c_max tanh(c_init softplus(p) / c_max)``: positive, smooth, below
c_max = min(physics.kappa_max, SAFETY x the explicit-diffusion stability bound of the shortest
sub-step allowed: ``physics.substeps``, else ``physics.max_substeps``), and c = c_init at p's
initial value. With ``learnable=False`` they are buffers (frozen).
With ``physics.checkpoint`` the sub-steps of a day of more than one are recomputed in backward
(torch.utils.checkpoint), so training memory is one sub-step's graph, not a day's.
With ``physics.compile`` the sub-step (rotation, advection, diffusion) and the polar subcycle are
torch.compile'd once per core (forward and backward; a new batch shape or dtype compiles
again); eager is the fallback and the reference (they agree to round-off).

The settings come as a :class:`CoreSettings`, the fields of the ``physics`` config section this
module reads (``physics.<field>`` above); the package does not import the config layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import numpy as np
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from neuralogcm.channels import n_ocean_channels
from neuralogcm.errors import UserError
from neuralogcm.grid import GRAVITY, Grid
from neuralogcm.physics.operators import COURANT, GeometryModule, SphereOperators
from neuralogcm.physics.stencils import pad

DAY = 86400.0  # s, the model step
SAFETY = 0.9  # fraction of the diffusive stability limit (forward step) the coefficients may use
THERMAL_EXPANSION = 2.0e-4  # 1/K, linear equation of state
HALINE_CONTRACTION = 7.6e-4  # 1/(1e-3), linear equation of state
T_REF, S_REF = 10.0, 35.0  # deg C, 1e-3: reference of the linear equation of state
GROUPS = ("kappa", "viscosity")  # coefficient groups: tracer diffusivity, momentum viscosity


@dataclass(frozen=True)
class CoreSettings:
    """What the core is told: the fields of the ``physics`` config section that it reads (their
    meaning and defaults are there, in config.PhysicsConfig)."""

    substeps: int | None  # sub-steps a day; None: as stability needs, up to max_substeps
    max_substeps: int
    advection: bool
    coriolis: bool
    pressure_gradient: bool
    baroclinic: bool
    diffusion: bool
    kappa_init: float  # m^2/s
    viscosity_init: float  # m^2/s
    kappa_max: float  # m^2/s
    per_level: bool
    polar_latitude: float  # deg
    checkpoint: bool
    compile: bool  # torch.compile the sub-step (eager when False)

    @classmethod
    def of(cls, section, **changes) -> CoreSettings:
        """The settings held by ``section`` (any object with these fields as attributes, such as
        the ``physics`` config section), with ``changes`` applied."""
        return replace(cls(**{f.name: getattr(section, f.name) for f in fields(cls)}), **changes)


class SettingsError(UserError, ValueError):
    """A setting does not fit the grid; the message names the ``physics`` key."""


class PhysicsCore(GeometryModule):
    """One day of the physics on states (B, 4 L + 1, H, W) in physical units (see module doc).

    grid: the target grid; depths: the L level depths (m); mask: (L, H, W) bool, True on ocean;
    settings: see :class:`CoreSettings`; learnable: coefficients are parameters (else buffers).
    """

    def __init__(
        self,
        grid: Grid,
        depths: list[float],
        mask: torch.Tensor,
        settings: CoreSettings,
        learnable: bool = True,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.n_levels = len(depths)
        if mask.shape[0] != self.n_levels:
            raise ValueError(f"mask has {mask.shape[0]} levels but {self.n_levels} depths given")
        self.ops = SphereOperators(grid, mask.bool(), settings.polar_latitude)
        self.diffusion_limit = self.ops.diffusion_bound(DAY)  # m^2/s, for one sub-step a day
        most = settings.max_substeps if settings.substeps is None else settings.substeps
        self.bound = min(settings.kappa_max, SAFETY * most * self.diffusion_limit)
        for key in ("kappa_init", "viscosity_init"):
            if getattr(settings, key) >= self.bound:
                raise SettingsError(
                    f"physics.{key}={getattr(settings, key):g} m^2/s is not below the coefficient "
                    f"bound {self.bound:.4g} m^2/s (physics.kappa_max, or the stability limit of "
                    f"{settings.substeps} sub-steps a day on this grid: raise physics.substeps)"
                )
        self.last_substeps = 0  # sub-steps of the latest call (logged by training and rollouts)
        self.last_polar_steps = 0  # zonal steps a day of the polar row next to the pole
        self._compiled: dict = {}  # torch.compile'd sub-step parts, built on first use
        self.register_geometry("init", torch.tensor([settings.kappa_init, settings.viscosity_init]))
        n = self.n_levels if settings.per_level else 1
        raw = self._raw(self._masters["init"][:, None].expand(2, n)).to(torch.get_default_dtype())
        if learnable:
            self.raw = nn.Parameter(raw)
        else:
            self.register_buffer("raw", raw)
        self.register_geometry("coriolis", torch.as_tensor(grid.coriolis[:, None]))
        signs = torch.tensor([1.0, 1.0, -1.0, -1.0])  # S, T, u, v: vectors turn over the poles
        self.register_geometry("pole_signs", signs[:, None, None, None])
        self.register_geometry("pressure_weights", torch.as_tensor(_depth_integral(depths)))

    # ----------------------------------------------------------------------------- coefficients
    def _raw(self, value: torch.Tensor) -> torch.Tensor:
        """Inverse of the coefficient map, for value (2, n) m^2/s (value = bound gives +inf)."""
        init = self._masters["init"][:, None]
        scaled = torch.atanh(value / self.bound) * self.bound / init
        return torch.where(scaled > 30.0, scaled, torch.log(torch.expm1(scaled)))

    def _coefficients(self) -> torch.Tensor:
        """(2, n) m^2/s: kappa and nu, per level (n = L) or global (n = 1)."""
        init = self.init.to(self.raw)[:, None]
        return self.bound * torch.tanh(init * nn.functional.softplus(self.raw) / self.bound)

    def coefficients(self) -> dict[str, torch.Tensor]:
        """{'kappa': (n,), 'viscosity': (n,)} in m^2/s, differentiable; n = L per level (the
        default), n = 1 with ``physics.per_level: false``."""
        c = self._coefficients()
        return {name: c[i] for i, name in enumerate(GROUPS)}

    @torch.no_grad()
    def set_coefficients(self, **values: float | torch.Tensor) -> None:
        """Set groups ('kappa', 'viscosity') to a value in m^2/s (scalar or per level, up to and
        including ``self.bound``)."""
        for name, value in values.items():
            i = GROUPS.index(name)
            target = torch.as_tensor(value, dtype=torch.float64).expand(self.raw.shape[1:])
            full = self._masters["init"][:, None].expand_as(self.raw).clone()
            full[i] = target
            self.raw[i] = self._raw(full)[i].to(self.raw)

    # ----------------------------------------------------------------------------- terms
    def pressure_force(self, eta: torch.Tensor, tracers: torch.Tensor) -> tuple | None:
        """-grad(P) per level, ((B, L, H, W), (B, L, H, W)) m/s^2, or None when switched off.

        eta (B, 1, H, W) m; tracers (B, 2, L, H, W): S, T (used when ``physics.baroclinic``).
        """
        if not self.settings.pressure_gradient:
            return None
        potential = GRAVITY * eta
        if self.settings.baroclinic:
            s, t = tracers[:, 0], tracers[:, 1]
            buoyancy = HALINE_CONTRACTION * (s - S_REF) - THERMAL_EXPANSION * (t - T_REF)
            buoyancy = buoyancy * self.ops.mask
            potential = potential + GRAVITY * torch.einsum(
                "km,bmhw->bkhw", self.pressure_weights, buoyancy
            )
        gx, gy = self.ops.gradient(potential.expand(-1, self.n_levels, -1, -1))
        return -gx, -gy

    def _rotation_rate(self, u: torch.Tensor) -> torch.Tensor | float:
        """F = f + u tan(phi)/a (1/s): Coriolis and the metric term, each when switched on."""
        rate = self.coriolis if self.settings.coriolis else 0.0
        if self.settings.advection:
            rate = rate + u * self.ops.tan_over_a
        return rate

    def _rotate(self, y: torch.Tensor, force, tau) -> torch.Tensor:
        """Exact solution over tau of du/dt = F v + Px, dv/dt = -F u + Py (F, P frozen) for the
        velocities of y (B, 4, L, H, W) = S, T, u, v; tau (s) a float or a 0-dim tensor."""
        u, v = y[:, 2], y[:, 3]
        rate = self._rotation_rate(u)
        if not torch.is_tensor(rate):
            if force is None:
                return y
            u_new, v_new = u + tau * force[0], v + tau * force[1]
        else:
            angle = rate * tau
            cos, sin = torch.cos(angle), torch.sin(angle)
            u_new, v_new = u * cos + v * sin, v * cos - u * sin
            if force is not None:
                a = tau * torch.sinc(angle / math.pi)  # sin(F tau) / F
                b = tau * 0.5 * angle * torch.sinc(angle / (2.0 * math.pi)) ** 2  # (1 - cos) / F
                u_new = u_new + a * force[0] + b * force[1]
                v_new = v_new + a * force[1] - b * force[0]
        velocity = torch.stack([u_new, v_new], 1) * self.ops.mask
        return torch.cat([y[:, :2], velocity], 1)

    def _advective_tendency(self, y: torch.Tensor, polar_zonal: bool = True) -> torch.Tensor:
        """Advection of y (B, 4, L, H, W) = S, T, u, v: dy/dt per second.

        polar_zonal=False leaves out the zonal advection of the polar rows (subcycled by
        ``_polar_advection``). Every field is advected by the same limited scheme
        (operators.py), the velocity components as scalars; their metric term u tan(phi)/a is
        part of the rotation.
        """
        ops = self.ops
        east, north = ops.face_stencils(pad(y, self.pole_signs))
        flux_e, flux_n, vol_e, vol_n = ops.advective_transports(
            east, north, [e[:, 2:3] for e in east], [n[:, 3:4] for n in north],
            polar_zonal=polar_zonal)
        tendency = y * ops.divergence(vol_e, vol_n) - ops.divergence(flux_e, flux_n)
        return tendency * ops.mask  # the advective form (operators.py)

    def _diffusive_tendency(self, y: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
        """Diffusion and viscosity of y (B, 4, L, H, W) = S, T, u, v: dy/dt per second.

        coef (4, L, 1, 1): kappa, kappa, nu, nu in m^2/s. The component Laplacians of all four
        fields, plus the vector metric terms of the velocities'.
        """
        ops = self.ops
        yp = pad(y, self.pole_signs)
        trans_e, trans_n = ops.diffusive_transports(*ops.face_stencils(yp), coef * ops.scale_x,
                                                    coef)
        metric = ops.viscous_metric(y[:, 2:], ops.zonal_derivative(yp[:, 2:]), coef[2:])
        tendency = torch.cat([torch.zeros_like(metric), metric], 1) - ops.divergence(trans_e,
                                                                                   trans_n)
        return tendency * ops.mask

    def substeps(self, y: torch.Tensor, coef: torch.Tensor) -> int:
        """Sub-steps for one day from y (B, 4, L, H, W) and coef (4, L, 1, 1) m^2/s (see
        ``plan``)."""
        return self.plan(y, coef)[0]

    def plan(self, y: torch.Tensor, coef: torch.Tensor) -> tuple[int, tuple[int, ...], bool]:
        """(n, cycles, capped) for one day from y (B, 4, L, H, W) and coef (4, L, 1, 1) m^2/s.

        n sub-steps: ``physics.substeps`` when set, else the fewest that keep the advective
        Courant number (operators.courant_rate without the polar rows' zonal term) below
        COURANT and the coefficients below SAFETY x the diffusive stability limit, at most
        ``physics.max_substeps``. cycles: () when the whole grid, polar rows included, is within
        the Courant limit at n sub-steps; else, per polar row from the pole (both hemispheres
        alike), the zonal steps in each half sub-step that its zonal Courant number needs
        (operators.polar_zonal_rate), never fewer than a row further from the pole, at most
        ``physics.max_substeps`` a day; capped: some row needs more than that (the polar filter
        carries its zonal velocity beyond the limit).
        """
        settings, ops = self.settings, self.ops
        need, full, polar = 1.0, 0.0, [0.0]
        with torch.no_grad():
            if settings.diffusion:
                need = max(need, float(coef.detach().amax()) / (SAFETY * self.diffusion_limit))
            if settings.advection:
                u, v = y[:, 2].detach(), y[:, 3].detach()
                full = DAY * float(ops.courant_rate(u, v)) / COURANT
                need = max(need, DAY * float(ops.courant_rate(u, v, polar_zonal=False)) / COURANT)
                if ops.n_south:
                    polar = (ops.polar_zonal_rate(u).double() * (DAY / COURANT)).tolist()
        if not all(map(math.isfinite, (need, full, *polar))):
            raise FloatingPointError("the physics core was given a non-finite state")
        n = settings.substeps or min(math.ceil(need), settings.max_substeps)
        if full <= n or ops.n_south == 0:
            return n, (), False
        most = max(1, settings.max_substeps // (2 * n))
        cycles, fewest = [], 1
        for rate in reversed(polar):  # from polar_latitude towards the pole
            fewest = max(fewest, math.ceil(rate / (2 * n)))
            cycles.append(fewest)
        return n, tuple(min(m, most) for m in reversed(cycles)), fewest > most

    def _strang(self, y, eta, coef, force, dt, polar_zonal: bool = True):
        """Rotation dt/2, SSP-RK3 advection dt (without the polar rows' zonal advection when
        polar_zonal is False), a forward step of diffusion dt, rotation dt/2; dt (s) a float or
        a 0-dim tensor."""
        if self.settings.baroclinic:
            force = self.pressure_force(eta, y[:, :2])
        y = self._rotate(y, force, 0.5 * dt)
        if self.settings.advection:
            (y,) = ssp_rk3(lambda z: (self._advective_tendency(z, polar_zonal),), (y,), dt)
        if self.settings.diffusion:
            y = y + dt * self._diffusive_tendency(y, coef)
        return self._rotate(y, force, 0.5 * dt)

    def _polar_cycle(self, band: torch.Tensor, dt, geometry: tuple, capped: bool,
                     active: torch.Tensor | None = None) -> torch.Tensor:
        """One SSP-RK3 step of the zonal advection of the first K rows from the poles of the
        polar band (B, 4, L, 2, K, W) (operators.zonal_advective_tendency with geometry =
        operators.band_geometry(K), advected by the band's own u); dt (K, 1) s, per row;
        active (K, 1) bool: only these rows step (the others are returned as they are)."""
        ops = self.ops

        def tendency(z):
            return (ops.zonal_advective_tendency(z, z[:, 2:3], geometry, dt if capped else None),)

        stepped = ssp_rk3(tendency, (band,), dt)[0]
        return stepped if active is None else torch.where(active, stepped, band)

    def _polar_advection(self, y, tau, cycles: tuple[int, ...], capped: bool):
        """The polar rows' zonal advection over tau (s): cycles[j] steps of tau / cycles[j] for
        row j from the poles (non-increasing in j). Eager: step k on the first K rows that take
        k steps or more; compiled: on all rows, those with fewer steps held (one shape, so one
        graph)."""
        ops, cycle = self.ops, self._part("cycle")
        band = ops.polar_band(y)
        steps = torch.tensor(cycles, dtype=y.dtype, device=y.device)[:, None]
        dt = tau / steps
        for k in range(1, cycles[0] + 1):
            rows = sum(m >= k for m in cycles)
            if rows == len(cycles):
                band = cycle(band, dt, ops.band_geometry(rows), capped)
            elif self.settings.compile:
                active = steps >= k
                band = cycle(band, torch.where(active, dt, 0.0), ops.band_geometry(len(cycles)),
                             capped, active)
            else:
                part = cycle(band[..., :rows, :], dt[:rows], ops.band_geometry(rows), capped)
                band = torch.cat([part, band[..., rows:, :]], -2)
        return ops.with_polar_band(y, band)

    def _part(self, name: str):
        """A sub-step part ('strang' or 'cycle'): torch.compile'd once per core with
        ``physics.compile``, else the eager method."""
        method = {"strang": self._strang, "cycle": self._polar_cycle}[name]
        if not self.settings.compile:
            return method
        if name not in self._compiled:
            self._compiled[name] = torch.compile(method, dynamic=False)
        return self._compiled[name]

    def _substep(self, y, eta, coef, force, dt: float, cycles: tuple[int, ...] = (),
                 capped: bool = False):
        """One sub-step of dt seconds: rotation dt/2, SSP-RK3 advection and forward diffusion
        dt, rotation dt/2; with polar cycles (``plan``) the polar rows' zonal advection over
        dt/2 before and after, in their cycles."""
        if cycles:
            y = self._polar_advection(y, 0.5 * dt, cycles, capped)
        if self.settings.compile:  # a tensor, so that a new n does not compile again
            dt = torch.tensor(dt, dtype=y.dtype, device=y.device)
        y = self._part("strang")(y, eta, coef, force, dt, not cycles)
        if cycles:
            y = self._polar_advection(y, 0.5 * float(dt), cycles, capped)
        return y

    # ----------------------------------------------------------------------------- public
    def _split(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """state (B, 4 L + 1, H, W) -> y (B, 4, L, H, W) = S, T, u, v and eta (B, 1, H, W)."""
        n = self.n_levels
        if state.ndim != 4 or state.shape[1] != n_ocean_channels(n):
            raise ValueError(f"state must be (B, {n_ocean_channels(n)}, H, W) for {n} levels, "
                             f"got {tuple(state.shape)}")
        s, u, v, t = (state[:, i * n : (i + 1) * n] for i in range(4))
        return torch.stack([s, t, u, v], 1), state[:, 4 * n :]

    @staticmethod
    def _join(dy: torch.Tensor, d_eta: torch.Tensor) -> torch.Tensor:
        """Inverse of _split for increments: (B, 4, L, H, W), (B, 1, H, W) -> (B, 4 L + 1, H, W)."""
        return torch.cat([dy[:, 0], dy[:, 2], dy[:, 3], dy[:, 1], d_eta], 1)

    def _coefficients4(self) -> torch.Tensor:
        """(4, L, 1, 1): kappa (S), kappa (T), nu (u), nu (v) in m^2/s."""
        c = self._coefficients()[[0, 0, 1, 1]]
        return c.expand(4, self.n_levels)[..., None, None]

    def tendency(self, state: torch.Tensor) -> torch.Tensor:
        """Instantaneous tendency of every enabled term, (B, C, H, W) per second, land and SSH 0."""
        y, eta = self._split(state.to(self.raw.dtype))
        dy = torch.zeros_like(y)
        if self.settings.advection:
            dy = dy + self._advective_tendency(y)
        if self.settings.diffusion:
            dy = dy + self._diffusive_tendency(y, self._coefficients4())
        u, v = y[:, 2], y[:, 3]
        rate = self._rotation_rate(u)
        du, dv = rate * v * self.ops.mask, -rate * u * self.ops.mask
        force = self.pressure_force(eta, y[:, :2])
        if force is not None:
            du, dv = du + force[0], dv + force[1]
        dy = dy + torch.cat([torch.zeros_like(y[:, :2]), torch.stack([du, dv], 1)], 1)
        return self._join(dy, torch.zeros_like(eta)).to(state.dtype)

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        """Increment over one day: state (B, C, H, W) physical units, land 0 -> (B, C, H, W)."""
        with torch.autocast(device_type=state.device.type, enabled=False):
            y0, eta = self._split(state.to(self.raw.dtype))
            coef = self._coefficients4()
            force = self.pressure_force(eta, y0[:, :2])
            n, cycles, capped = self.plan(y0, coef)
            self.last_substeps = n
            self.last_polar_steps = 2 * n * max(cycles, default=0)
            dt = DAY / n
            y = y0
            for _ in range(n):
                if self.settings.checkpoint and n > 1 and torch.is_grad_enabled():
                    y = checkpoint(self._substep, y, eta, coef, force, dt, cycles, capped,
                                   use_reentrant=False)
                else:
                    y = self._substep(y, eta, coef, force, dt, cycles, capped)
            out = self._join(y - y0, torch.zeros_like(eta))
        return out.to(state.dtype)


def freezing_point(salinity: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
    """Freezing point of sea water (deg C) at salinity (1e-3) and depth (m, about dbar):
    -0.0575 S - 7.53e-4 p, the linear terms of the UNESCO (1983) formula (-1.95 at S = 34 at the
    surface). Shapes broadcast."""
    return -0.0575 * salinity - 7.53e-4 * depth


def ssp_rk3(tendency, y: tuple, dt: float) -> tuple:
    """One step of the three-stage strong-stability-preserving Runge-Kutta scheme (Shu and
    Osher 1988) for a tuple of tensors y, with tendency(*y) -> tuple like y (per second)."""
    k = tendency(*y)
    y1 = tuple(a + dt * b for a, b in zip(y, k, strict=True))
    k = tendency(*y1)
    y2 = tuple(0.75 * a + 0.25 * (b + dt * c) for a, b, c in zip(y, y1, k, strict=True))
    k = tendency(*y2)
    return tuple(a / 3.0 + 2.0 / 3.0 * (b + dt * c) for a, b, c in zip(y, y2, k, strict=True))


def _depth_integral(depths: list[float]) -> np.ndarray:
    """(L, L) weights W with sum_m W[k, m] b[m] = int_0^depth_k b dz (m): b constant above the
    first level, trapezoidal between levels."""
    z = np.asarray(depths, dtype=float)
    n = len(z)
    weights = np.zeros((n, n))
    weights[:, 0] = z[0]
    for k in range(1, n):
        weights[k:, k - 1] += 0.5 * (z[k] - z[k - 1])
        weights[k:, k] += 0.5 * (z[k] - z[k - 1])
    return weights
