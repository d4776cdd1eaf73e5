"""Operators of the physics core against analytic results (issue 3, acceptance tests 1 and 2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from physics_cases import closed_sea, land_mask
from scipy.special import lpmv

from neuralogcm.config import PhysicsConfig
from neuralogcm.grid import Grid
from neuralogcm.physics.core import CoreSettings, PhysicsCore
from neuralogcm.physics.operators import SphereOperators
from neuralogcm.physics.stencils import pad

torch.set_num_threads(1)

HARMONICS = [(1, 0), (1, 1), (2, 1), (3, 2), (4, 0), (5, 0), (5, 3), (5, 5)]


def _ocean_everywhere(grid: Grid) -> SphereOperators:
    return SphereOperators(grid, torch.ones(1, *grid.shape, dtype=torch.bool)).double()


def _laplacian_error(grid: Grid, ops: SphereOperators, degree: int, m: int) -> float:
    """Area-weighted relative L2 error of the discrete Laplacian of Y_l^m (real part)."""
    lat = np.deg2rad(grid.lat)[:, None]
    lon = np.deg2rad(grid.lon)[None, :]
    y = lpmv(m, degree, np.sin(lat)) * np.cos(m * lon + 0.3)
    exact = -degree * (degree + 1) / grid.radius**2 * y
    numeric = ops.laplacian(torch.as_tensor(y)[None])[0].numpy()
    area = grid.cell_area
    return float(np.sqrt((area * (numeric - exact) ** 2).sum() / (area * exact**2).sum()))


def test_laplacian_matches_spherical_harmonics_and_converges_at_second_order():
    coarse, fine = Grid(1.5), Grid(0.75)
    ops_coarse, ops_fine = _ocean_everywhere(coarse), _ocean_everywhere(fine)
    for degree, m in HARMONICS:
        assert _laplacian_error(coarse, ops_coarse, degree, m) <= 1e-3, (degree, m)
    for m in (0, 5, 10):
        assert _laplacian_error(coarse, ops_coarse, 10, m) <= 5e-3, m
    # Halving the spacing cuts the error about fourfold (second order; the zonal modes, whose
    # error is smallest, converge faster).
    for degree, m in [(5, 0), (10, 0), (10, 5), (2, 1)]:
        ratio = (_laplacian_error(coarse, ops_coarse, degree, m)
                 / _laplacian_error(fine, ops_fine, degree, m))
        assert 3.5 < ratio < 4.5, (degree, m, ratio)


def test_pad_continues_across_the_poles_and_periodically():
    grid = Grid(30.0)  # 6 x 12
    x = torch.arange(72.0).reshape(6, 12)
    xp = pad(x, -1.0)
    assert xp.shape == (10, 16)
    # ghost row above the north pole row = that row on the opposite meridian, sign reversed
    assert torch.equal(xp[8, 2:-2], -x[5].roll(6))
    assert torch.equal(xp[9, 2:-2], -x[4].roll(6))
    assert torch.equal(xp[1, 2:-2], -x[0].roll(6))
    assert torch.equal(xp[2:-2, 0], x[:, 10]) and torch.equal(xp[2:-2, -1], x[:, 1])
    assert grid.shape == (6, 12)


def test_masked_gradient_is_exact_for_linear_fields_next_to_land():
    grid = Grid(6.0)
    mask = land_mask(grid, [0.5])
    ops = SphereOperators(grid, mask).double()
    lon = torch.as_tensor(np.deg2rad(grid.lon)).expand(grid.shape)
    lat = torch.as_tensor(np.deg2rad(grid.lat))[:, None].expand(grid.shape)
    gx, _ = ops.gradient((grid.radius * lon)[None])
    _, gy = ops.gradient((grid.radius * lat)[None])
    ocean = mask[0]
    # d/dx of a lon * a is 1 / cos(lat) on every ocean cell (also one-sided next to land and
    # across the date line), d/dy of a lat is 1 away from the poles; land stays 0
    west = torch.as_tensor(grid.lon >= 354.0).expand(grid.shape)  # the jump of lon at 360
    expected = 1.0 / torch.cos(lat)
    keep = ocean & ~west & ~west.roll(1, -1)
    assert torch.allclose(gx[0][keep], expected[keep], rtol=1e-9)
    rows = ocean.clone()
    rows[[0, -1]] = False
    assert torch.allclose(gy[0][rows], torch.ones_like(gy[0][rows]), rtol=1e-9)
    assert torch.all(gx[0][~ocean] == 0) and torch.all(gy[0][~ocean] == 0)


@pytest.fixture(scope="module")
def land_case():
    grid = Grid(1.5)
    depths = [5.0, 155.0]
    mask = land_mask(grid, depths)
    core = PhysicsCore(grid, depths, mask, CoreSettings.of(PhysicsConfig(kappa_init=3e3))).double()
    rng = np.random.default_rng(0)
    shape = (1, len(depths), *grid.shape)
    lat = torch.as_tensor(np.deg2rad(grid.lat))[:, None]
    tracer = 20 + 5 * torch.cos(lat) + torch.as_tensor(rng.standard_normal(shape))
    u = 0.3 * torch.as_tensor(rng.standard_normal(shape))
    v = 0.3 * torch.as_tensor(rng.standard_normal(shape))
    return grid, depths, mask.double(), core, tracer * mask, u * mask, v * mask


def _non_divergent_velocity(ops: SphereOperators, grid: Grid, rng) -> tuple:
    """Centre velocities u, v (1, L, H, W) m/s whose face velocities (the means of the adjacent
    centres, as the advection scheme takes them) have exactly zero discrete divergence, with no
    flow through land faces: the face transports come from a streamfunction on the cell corners
    that vanishes on every corner touching land (and poleward of the polar filter), and the
    centre values are solved for along rows and columns."""
    mask = ops.mask.numpy() > 0
    n, h, w = mask.shape
    lat = np.deg2rad(grid.lat_bounds)[:, None]  # corner j - 1/2 of row j
    lon = np.deg2rad(grid.lon + 0.5 * grid.resolution)[None, :]  # corner i + 1/2
    pad_mask = np.concatenate([np.zeros((n, 1, w), bool), mask, np.zeros((n, 1, w), bool)], 1)
    corner_open = (pad_mask[:, :-1] & pad_mask[:, 1:]
                   & np.roll(pad_mask[:, :-1], -1, -1) & np.roll(pad_mask[:, 1:], -1, -1))
    corner_open &= np.abs(lat) < np.deg2rad(ops.polar_latitude - 5.0)
    full_rows = mask.all(-1)  # periodic rows without land: no flow along them
    corner_open[:, :-1] &= ~full_rows[:, :, None]
    corner_open[:, 1:] &= ~full_rows[:, :, None]
    psi = np.stack([
        3e6 * (np.sin(2 * lat) * np.cos(3 * lon + rng.uniform(0, 6)) + np.cos(lat) ** 2
               * np.sin(5 * lon + 2 * lat + rng.uniform(0, 6))) for _ in range(n)])
    psi = psi * corner_open
    speed_e = (psi[:, 1:] - psi[:, :-1]) / ops.dy  # face i + 1/2 of cell (j, i)
    len_n = ops.len_n.numpy()[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        speed_n = np.nan_to_num(-(psi - np.roll(psi, 1, -1)) / len_n[:, None])  # face j - 1/2
    u, v = np.zeros(mask.shape), np.zeros(mask.shape)
    for level in range(n):
        for j in range(h):
            ocean = mask[level, j]
            if ocean.all():
                continue
            start = int(np.argmin(ocean))  # a land cell
            for k in range(1, w + 1):
                i, west = (start + k) % w, (start + k - 1) % w
                if ocean[i]:
                    u[level, j, i] = (speed_e[level, j, i] if not ocean[west]
                                      else 2 * speed_e[level, j, west] - u[level, j, west])
        for j in range(h):
            ocean, south = mask[level, j], mask[level, j - 1] if j > 0 else np.zeros(w, bool)
            v[level, j] = np.where(~ocean, 0.0, np.where(
                south, 2 * speed_n[level, j] - v[level, j - 1], speed_n[level, j + 1]))
    return torch.as_tensor(u)[None], torch.as_tensor(v)[None]


def test_advection_diffusion_conserves_tracers_with_land(land_case):
    grid, depths, mask, core, tracer, _, _ = land_case
    u, v = _non_divergent_velocity(core.ops, grid, np.random.default_rng(1))
    assert u.abs().amax() > 0.1 and v.abs().amax() > 0.1
    east_u = core.ops.face_stencils(pad(u, -1.0))[0]
    north_v = core.ops.face_stencils(pad(v, -1.0))[1]
    _, _, vol_e, vol_n = core.ops.advective_transports(east_u, north_v, east_u, north_v)
    divergence = core.ops.divergence(vol_e, vol_n)
    assert divergence.abs().amax() <= 1e-12 * (u.abs().amax() / core.ops.dy)
    state = torch.cat([tracer, u, v, 0.5 * tracer, torch.zeros_like(tracer[:, :1])], 1)
    tendency = core.tendency(state)
    area = torch.as_tensor(grid.cell_area)
    n = len(depths)
    for q in (tendency[:, :n], tendency[:, 3 * n : 4 * n]):
        assert q.abs().amax() > 1e-7  # advection and diffusion both act
        total = (area * q).sum(dim=(-1, -2))
        scale = (area * q.abs()).sum(dim=(-1, -2))
        assert torch.all(total.abs() <= 1e-12 * scale), total / scale
        assert torch.all(q[mask.expand_as(q) == 0] == 0)


def test_uniform_tracers_stay_uniform_in_divergent_flow_with_land(land_case):
    grid, depths, mask, core, _, u, v = land_case
    n = len(depths)
    salt, temp = 35.0 * mask[None], 10.0 * mask[None]
    state = torch.cat([salt, u, v, temp, torch.zeros_like(salt[:, :1])], 1)
    east_u = core.ops.face_stencils(pad(u, -1.0))[0]
    north_v = core.ops.face_stencils(pad(v, -1.0))[1]
    _, _, vol_e, vol_n = core.ops.advective_transports(east_u, north_v, east_u, north_v)
    assert core.ops.divergence(vol_e, vol_n).abs().amax() > 1e-7  # the flow is divergent
    tendency = core.tendency(state)
    rate = u.abs().amax() / core.ops.dy  # 1/s
    for q, value in ((tendency[:, :n], 35.0), (tendency[:, 3 * n : 4 * n], 10.0)):
        assert q.abs().amax() <= 1e-12 * value * rate
    increment = core(state)  # a day of every term: the tracers do not move
    assert increment[:, :n].abs().amax() <= 1e-9
    assert increment[:, 3 * n : 4 * n].abs().amax() <= 1e-9


def _transports(ops, q, u, v, kappa):
    """Advective plus diffusive transports of q through the east and north faces."""
    east, north = ops.face_stencils(pad(q))
    east_u = ops.face_stencils(pad(u, -1.0))[0]
    north_v = ops.face_stencils(pad(v, -1.0))[1]
    adv_e, adv_n, _, _ = ops.advective_transports(east, north, east_u, north_v)
    diff_e, diff_n = ops.diffusive_transports(east, north, kappa * ops.scale_x, kappa)
    return adv_e + diff_e, adv_n + diff_n


def test_no_flux_crosses_land_faces(land_case):
    grid, _, mask, core, tracer, u, v = land_case
    ops = core.ops
    sea = closed_sea(grid).double()
    inside = tracer * sea  # a tracer only in the closed sea
    kappa = torch.tensor([3e3, 3e4]).double()[:, None, None]
    tendency = -ops.divergence(*_transports(ops, inside, u, v, kappa))
    area = torch.as_tensor(grid.cell_area)
    assert tendency[..., sea == 1].abs().amax() > 1e-7
    assert torch.all(tendency[..., sea == 0] == 0)  # nothing leaves the closed sea
    total = (area * sea * tendency).sum(dim=(-1, -2))
    assert torch.all(total.abs() <= 1e-12 * (area * tendency.abs()).sum(dim=(-1, -2)))
    trans_e, trans_n = _transports(ops, tracer, u, v, kappa)
    assert torch.all(trans_e[..., ops.open_e.expand_as(trans_e) == 0] == 0)
    assert torch.all(trans_n[..., ops.open_n.expand_as(trans_n) == 0] == 0)
    # the shelf: land at depth only, so faces are open at the surface and closed below
    shelf = (mask[0] == 1) & (mask[1] == 0)
    faces = shelf.roll(-1, -1)  # east faces of the cells west of the shelf
    assert shelf.any()
    assert trans_e[0, 0][faces].abs().amin() > 0 and torch.all(trans_e[0, 1][faces] == 0)


def _superbee_by_min_max(behind: torch.Tensor, ahead: torch.Tensor) -> torch.Tensor:
    """The superbee slope as min/max (autograd differentiates it): the reference."""
    sign = torch.sign(ahead)
    b, a = behind * sign, ahead.abs()
    return sign * torch.maximum(torch.minimum(2 * b, a), torch.minimum(b, 2 * a)).clamp(min=0)


def test_limited_face_values_and_gradients_equal_the_two_sided_min_max_limiter():
    """The one-sided limiter with its hand-written backward (stencils.limited_face_value)
    against the plain two-sided formula, on every region of r = behind / ahead (including
    r = 1/2, 1, 2 exactly, zero differences and both flow directions), with land behind the
    upwind cell at some faces: equal values, and equal gradients with respect to every cell
    (away from the kinks, where either side's derivative is a valid one)."""
    from neuralogcm.physics.stencils import limited_face_value

    gen = torch.Generator().manual_seed(3)
    n = 4000
    q = [torch.randn(n, generator=gen, dtype=torch.float64) for _ in range(4)]
    # exact ratios and flat stretches: r = 1/2, 1, 2, 0 and 0/0 on the first faces
    for i, r in enumerate((0.5, 1.0, 2.0, 0.0)):
        q[0][i], q[1][i], q[2][i] = 1.0 - r, 1.0, 2.0
    q[0][4] = q[1][4] = q[2][4] = 0.3
    q = [x.requires_grad_() for x in q]
    vel = torch.randn(n, generator=gen, dtype=torch.float64)
    vel[:3] = 0.0  # towards +x at 0, as the reference's vel >= 0
    open_pos = (torch.rand(n, generator=gen) > 0.2).double()
    open_neg = (torch.rand(n, generator=gen) > 0.2).double()

    west = q[1] + 0.5 * open_pos * _superbee_by_min_max(q[1] - q[0], q[2] - q[1])
    east = q[2] + 0.5 * open_neg * _superbee_by_min_max(q[2] - q[3], q[1] - q[2])
    reference = torch.where(vel >= 0, west, east)
    value = limited_face_value(vel, *q, open_pos, open_neg)
    torch.testing.assert_close(value, reference, rtol=0, atol=1e-14)
    with torch.no_grad():  # the rollouts' path, without the custom Function
        assert torch.equal(limited_face_value(vel, *q, open_pos, open_neg), value.detach())
    weights = torch.randn(n, generator=gen, dtype=torch.float64)
    weights[:3] = 0.0  # at the kinks r = 1/2, 1, 2 min/max's backward splits, ours takes a side
    expected = torch.autograd.grad((reference * weights).sum(), q)
    got = torch.autograd.grad((value * weights).sum(), q)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=0, atol=1e-14)
    for outer in (got[0], got[3]):  # q0 and q3 enter through the slopes alone
        assert int((outer != 0).sum()) > n // 50


def test_face_stencil_gradients_equal_plain_slicing():
    """operators.windows (one gradient buffer for all stencils) against autograd's slicing."""
    from neuralogcm.physics.stencils import HALO

    ops = SphereOperators(Grid(30.0), torch.ones(2, 6, 12, dtype=torch.bool)).double()
    x = torch.randn(3, 2, 6 + 2 * HALO, 12 + 2 * HALO, dtype=torch.float64, requires_grad=True)
    east, north = ops.face_stencils(x)
    plain_e = [x[..., HALO:-HALO, HALO + k : HALO + k + 12] for k in (-1, 0, 1, 2)]
    plain_n = [x[..., HALO + k : HALO + k + 7, HALO:-HALO] for k in (-2, -1, 0, 1)]
    for a, b in zip(east + north, plain_e + plain_n, strict=True):
        assert torch.equal(a, b)
    weights = [torch.randn(s.shape, dtype=torch.float64) for s in plain_e + plain_n]
    # an unused stencil (no gradient) is allowed
    loss = sum((s * w).sum() for s, w in zip(east + north[:3], weights, strict=False))
    plain = sum((s * w).sum() for s, w in zip(plain_e + plain_n[:3], weights, strict=False))
    torch.testing.assert_close(torch.autograd.grad(loss, x)[0],
                               torch.autograd.grad(plain, x)[0], rtol=0, atol=1e-13)
