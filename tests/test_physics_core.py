"""PhysicsCore: its contract, its time integration and its gradients (issue 3, test 6)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from physics_cases import balanced_state, land_mask, perturbed_state

from neuralogcm.config import PhysicsConfig
from neuralogcm.grid import Grid
from neuralogcm.physics.core import DAY, CoreSettings, PhysicsCore, SettingsError

torch.set_num_threads(1)

DEPTHS = [0.494025, 155.8507]
CHANNEL_LEVEL = [0, 1, 0, 1, 0, 1, 0, 1, 0]  # channel_level(2)


@pytest.fixture(scope="module")
def demo():
    grid = Grid(6.0)
    mask = land_mask(grid, DEPTHS)
    return grid, mask, perturbed_state(grid, DEPTHS, mask)


def test_forward_contract(demo):
    grid, mask, state = demo
    core = PhysicsCore(grid, DEPTHS, mask, CoreSettings.of(PhysicsConfig(substeps=6))).double()
    increment = core(state)
    assert increment.shape == state.shape and increment.dtype == torch.float64
    assert torch.all(increment[0][~mask[CHANNEL_LEVEL]] == 0)  # land stays 0
    assert torch.all(increment[:, -1] == 0)  # SSH is held by the core
    assert increment[:, :-1].abs().amax() > 1e-3  # every term acts
    coefficients = core.coefficients()
    assert set(coefficients) == {"kappa", "viscosity"}
    assert torch.allclose(coefficients["kappa"], torch.full((2,), 1e3).double())
    assert torch.allclose(coefficients["viscosity"], torch.full((2,), 1e4).double())
    # float32 (the default dtype) gives the same day to single precision
    single = PhysicsCore(grid, DEPTHS, mask, CoreSettings.of(PhysicsConfig(substeps=6)))
    increment32 = single(state.float())
    assert increment32.dtype == torch.float32
    # (to 1e-4 of the increment, or to the round-off of the float32 state, S ~ 35, over the
    # sub-steps' updates where the increment is small: a uniform tracer does not move)
    scale = increment.abs().amax(dim=(0, 2, 3), keepdim=True)
    round_off = 4 * 6 * torch.finfo(torch.float32).eps * state.abs().amax(dim=(0, 2, 3),
                                                                           keepdim=True)
    assert torch.all((increment32.double() - increment).abs() <= 1e-4 * scale + round_off)
    # a batch is a batch: each sample steps as if alone
    pair = core(torch.cat([state, 0.5 * state]))
    assert torch.allclose(pair[:1], increment, rtol=0, atol=1e-12)


def test_diffusion_takes_forward_steps(demo):
    """Diffusion and viscosity alone: the day is n forward (Euler) steps of the instantaneous
    tendency, y <- y + dt D(y) (the SSP-RK3 step of the previous core differs by 1.2e-3 here,
    1.3% of the largest increment), on a state with coasts and both poles."""
    grid, mask, state = demo
    n = 3
    settings = CoreSettings.of(PhysicsConfig(substeps=n, advection=False, coriolis=False,
                                             pressure_gradient=False))
    core = PhysicsCore(grid, DEPTHS, mask, settings).double()
    core.set_coefficients(kappa=2e4, viscosity=5e4)
    y = state.clone()
    for _ in range(n):
        y = y + DAY / n * core.tendency(y)
    increment = core(state)
    assert increment.abs().amax() > 1e-3
    torch.testing.assert_close(increment, y - state, rtol=0, atol=1e-12)


def test_bad_inputs_are_named(demo):
    grid, mask, state = demo
    with pytest.raises(ValueError, match="levels"):
        PhysicsCore(grid, DEPTHS[:1], mask, CoreSettings.of(PhysicsConfig()))
    with pytest.raises(SettingsError, match="physics.viscosity_init"):
        PhysicsCore(Grid(1.5), [1.0], torch.ones(1, 120, 240, dtype=torch.bool),
                    CoreSettings.of(PhysicsConfig(substeps=1, viscosity_init=9e4)))
    core = PhysicsCore(grid, DEPTHS, mask, CoreSettings.of(PhysicsConfig()))
    with pytest.raises(ValueError, match=r"\(B, 9, H, W\)"):
        core(state[:, :5].float())


def test_coriolis_is_an_exact_rotation_at_any_time_step():
    grid = Grid(15.0)
    mask = torch.ones(1, *grid.shape, dtype=torch.bool)
    cfg = CoreSettings.of(PhysicsConfig(substeps=1, advection=False, diffusion=False,
                                        pressure_gradient=False))
    core = PhysicsCore(grid, [1.0], mask, cfg).double()
    gen = torch.Generator().manual_seed(1)
    state = torch.randn(1, 5, *grid.shape, generator=gen, dtype=torch.float64)
    new = state + core(state)
    angle = torch.as_tensor(grid.coriolis)[:, None] * DAY  # up to 12 rad a day
    u, v = state[0, 1], state[0, 2]
    assert torch.allclose(new[0, 1], u * torch.cos(angle) + v * torch.sin(angle), atol=1e-12)
    assert torch.allclose(new[0, 2], v * torch.cos(angle) - u * torch.sin(angle), atol=1e-12)
    assert torch.equal(new[0, [0, 3, 4]], state[0, [0, 3, 4]])


def test_geostrophic_balance_is_kept_by_coriolis_and_pressure_gradient(demo):
    grid, mask, _ = demo
    state = balanced_state(grid, DEPTHS, mask)
    cfg = CoreSettings.of(PhysicsConfig(substeps=3, advection=False, diffusion=False))
    core = PhysicsCore(grid, DEPTHS, mask, cfg).double()
    assert state[:, 2:4].abs().amax() > 0.01  # there is a current
    assert core(state).abs().amax() < 1e-12
    # without the pressure gradient the same current turns inertially
    cfg = CoreSettings.of(PhysicsConfig(substeps=3, advection=False, diffusion=False,
                                        pressure_gradient=False))
    assert PhysicsCore(grid, DEPTHS, mask, cfg).double()(state).abs().amax() > 0.01


def test_baroclinic_pressure_gradient_pushes_dense_water_towards_light_water(demo):
    grid, mask, _ = demo
    state = balanced_state(grid, DEPTHS, mask)
    state[:, 2:6] = 0.0  # at rest
    state[:, 8] = 0.0  # flat sea surface; T falls towards the poles
    cfg = CoreSettings.of(PhysicsConfig(advection=False, diffusion=False, coriolis=False,
                                        baroclinic=True))
    tendency = PhysicsCore(grid, DEPTHS, mask, cfg).double().tendency(state)
    northern = torch.as_tensor((grid.lat > 20) & (grid.lat < 60))
    v_surface, v_deep = tendency[0, 4][northern], tendency[0, 5][northern]
    ocean = mask[1][northern]
    assert torch.all(v_deep[ocean] < 0)  # dense water in the north pushes southward at depth
    assert torch.all(v_deep[ocean].abs() > v_surface[ocean].abs())  # more so below
    barotropic = CoreSettings.of(PhysicsConfig(advection=False, diffusion=False, coriolis=False))
    assert PhysicsCore(grid, DEPTHS, mask, barotropic).double().tendency(state).abs().amax() == 0


def test_gradcheck_state_and_coefficients():
    grid = Grid(15.0)  # 12 x 24
    mask = land_mask(grid, DEPTHS)
    cfg = CoreSettings.of(PhysicsConfig(substeps=2, kappa_init=2e4, viscosity_init=5e4))
    core = PhysicsCore(grid, DEPTHS, mask, cfg).double()
    state = perturbed_state(grid, DEPTHS, mask, seed=3).requires_grad_()
    raw = core.raw.detach().clone().requires_grad_()

    def day(x, r):
        return torch.func.functional_call(core, {"raw": r}, (x,))

    assert torch.autograd.gradcheck(day, (state, raw), fast_mode=True)


def test_ten_day_gradient_matches_central_difference(demo):
    grid, mask, state = demo
    core = PhysicsCore(grid, DEPTHS, mask, CoreSettings.of(PhysicsConfig(substeps=12))).double()
    target = balanced_state(grid, DEPTHS, mask)

    def loss(raw):
        x = state
        for _ in range(10):
            x = x + torch.func.functional_call(core, {"raw": raw}, (x,))
        return ((x - target) ** 2).sum()

    raw = core.raw.detach().clone().requires_grad_()
    (grad,) = torch.autograd.grad(loss(raw), raw)
    for index in [(0, 0), (1, 1)]:  # kappa at the surface, viscosity at 155 m
        step = torch.zeros_like(raw)
        step[index] = 1e-4
        with torch.no_grad():
            numeric = (loss(raw + step) - loss(raw - step)) / 2e-4
        assert abs(grad[index].item()) > 1e-6
        assert math.isclose(grad[index].item(), numeric.item(), rel_tol=1e-4), index


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu(demo):
    grid, mask, state = demo
    core = PhysicsCore(grid, DEPTHS, mask, CoreSettings.of(PhysicsConfig(substeps=6)))
    cpu = core(state.float())
    gpu = core.cuda()(state.float().cuda()).cpu()
    assert np.allclose(gpu.numpy(), cpu.numpy(), rtol=1e-4, atol=1e-5)
