"""Williamson et al. (1992) test cases 1 and 2 for the physics core (issue 3, tests 3 and 4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuralogcm.config import PhysicsConfig
from neuralogcm.grid import GRAVITY, OMEGA, Grid
from neuralogcm.physics.core import DAY, CoreSettings, PhysicsCore, ssp_rk3
from neuralogcm.physics.operators import SphereOperators
from neuralogcm.physics.stencils import pad

torch.set_num_threads(1)

OVER_THE_POLES = np.pi / 2 - 0.05


def _coordinates(grid: Grid) -> tuple[torch.Tensor, torch.Tensor]:
    lat = torch.as_tensor(np.deg2rad(grid.lat))[:, None].expand(grid.shape)
    lon = torch.as_tensor(np.deg2rad(grid.lon))[None, :].expand(grid.shape)
    return lat, lon


def _solid_body(grid: Grid, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Williamson's wind: once round the sphere in 12 days, axis tilted by alpha, m/s."""
    lat, lon = _coordinates(grid)
    u0 = 2 * np.pi * grid.radius / (12 * DAY)
    u = u0 * (torch.cos(lat) * np.cos(alpha) + torch.sin(lat) * torch.cos(lon) * np.sin(alpha))
    v = -u0 * torch.sin(lon) * np.sin(alpha)
    return u, v


@pytest.mark.parametrize("alpha", [0.0, OVER_THE_POLES])
def test_case_1_cosine_bell_goes_once_round_the_sphere(alpha):
    grid = Grid(1.5)
    ops = SphereOperators(grid, torch.ones(1, *grid.shape, dtype=torch.bool)).double()
    lat, lon = _coordinates(grid)
    u, v = _solid_body(grid, alpha)
    centre_lon, radius = 1.5 * np.pi, 1.0 / 3.0
    distance = torch.arccos((torch.cos(lat) * torch.cos(lon - centre_lon)).clamp(-1, 1))
    bell = torch.where(distance < radius, 500 * (1 + torch.cos(np.pi * distance / radius)), 0.0)
    bell = bell[None]

    steps_per_day = 48  # 30 min: Courant number 0.42 for the 38.6 m/s wind
    east_u = ops.face_stencils(pad(u, -1.0))[0]
    north_v = ops.face_stencils(pad(v, -1.0))[1]

    def tendency(q):  # flux form: the solid-body wind is non-divergent
        east, north = ops.face_stencils(pad(q))
        trans_e, trans_n, _, _ = ops.advective_transports(east, north, east_u, north_v,
                                                          DAY / steps_per_day)
        return (-ops.divergence(trans_e, trans_n),)

    q = bell
    for _ in range(12 * steps_per_day):
        (q,) = ssp_rk3(tendency, (q,), DAY / steps_per_day)
    area = torch.as_tensor(grid.cell_area)
    assert torch.isfinite(q).all()
    l2 = torch.sqrt((area * (q - bell) ** 2).sum() / (area * bell**2).sum())
    assert l2 <= 0.1
    mass = (area * q).sum() / (area * bell).sum() - 1
    assert abs(mass) <= 1e-12
    assert q.max() > 900  # the bell comes back, not smeared out


def _case_2_residual(resolution: float, alpha: float) -> float:
    """Relative L2 residual of the momentum tendency for Williamson's steady geostrophic flow."""
    grid = Grid(resolution)
    cfg = CoreSettings.of(PhysicsConfig(diffusion=False))
    core = PhysicsCore(grid, [1.0], torch.ones(1, *grid.shape, dtype=torch.bool), cfg).double()
    lat, lon = _coordinates(grid)
    u, v = _solid_body(grid, alpha)
    u0 = 2 * np.pi * grid.radius / (12 * DAY)
    rotated = -torch.cos(lon) * torch.cos(lat) * np.sin(alpha) + torch.sin(lat) * np.cos(alpha)
    eta = -(grid.radius * OMEGA * u0 + u0**2 / 2) * rotated**2 / GRAVITY
    core.coriolis = 2 * OMEGA * rotated  # the Coriolis parameter of the tilted frame
    state = torch.stack([torch.full_like(u, 35.0), u, v, torch.full_like(u, 10.0), eta])[None]
    tendency = core.tendency(state)[0]
    assert torch.all(tendency[4] == 0)  # the core holds SSH
    gx, gy = core.ops.gradient(eta[None])
    area = torch.as_tensor(grid.cell_area)
    residual = (area * (tendency[1] ** 2 + tendency[2] ** 2)).sum()
    scale = (area * GRAVITY**2 * (gx**2 + gy**2)).sum()  # the pressure-gradient term
    return float(torch.sqrt(residual / scale))


@pytest.mark.parametrize("alpha", [0.0, np.pi / 4, OVER_THE_POLES])
def test_case_2_geostrophic_flow_is_steady_to_second_order(alpha):
    coarse, fine = _case_2_residual(3.0, alpha), _case_2_residual(1.5, alpha)
    assert fine <= 1e-3
    assert 3.5 < coarse / fine < 4.5  # second order
