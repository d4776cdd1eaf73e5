"""A year of the physics core alone stays finite and does not gain energy (issue 3, test 5).

The state is the balanced analytic one of physics_cases.py (the demo data's climatology has no
velocities, and a run without data must not depend on the workflow's outputs) on the demo grid
(6 deg, 30 x 60) with two of the demo's levels (the surface and 155 m, where a shelf is land) and
the demo's 12 sub-steps a day: 365 calls, once with the initial coefficients and once with every
coefficient at its upper bound.
"""

from __future__ import annotations

import pytest
import torch
from physics_cases import balanced_state, kinetic_energy, land_mask, tracer_variance

from neuralogcm.config import PhysicsConfig
from neuralogcm.grid import Grid
from neuralogcm.physics.core import PhysicsCore

torch.set_num_threads(1)

DEPTHS = [0.494025, 155.8507]


@pytest.mark.parametrize("at_bound", [False, True], ids=["initial", "upper_bound"])
def test_a_year_of_daily_calls_is_stable(at_bound):
    grid = Grid(6.0)
    n = len(DEPTHS)
    mask = land_mask(grid, DEPTHS)
    core = PhysicsCore(grid, DEPTHS, mask, PhysicsConfig(substeps=12)).double()
    if at_bound:
        core.set_coefficients(kappa=core.bound, viscosity=core.bound)
        assert torch.allclose(core.coefficients()["kappa"], torch.tensor(1e5).double())
    state = balanced_state(grid, DEPTHS, mask)

    def measures(x):
        return torch.stack([kinetic_energy(x, grid, n),
                            tracer_variance(x[:, :n], mask, grid),  # salinity
                            tracer_variance(x[:, 3 * n : 4 * n], mask, grid)])  # temperature

    start = measures(state)
    worst = torch.zeros(3, dtype=torch.float64)
    x = state
    with torch.no_grad():
        for _ in range(365):
            x = x + core(x)
            worst = torch.maximum(worst, measures(x) / start)
    assert torch.isfinite(x).all()
    assert torch.all(worst <= 1.01), worst
    land = ~mask[torch.tensor([0, 1, 0, 1, 0, 1, 0, 1, 0])]
    assert torch.all(x[0][land] == 0)
    assert torch.equal(x[:, -1], state[:, -1])  # SSH held
    # the currents survive the year (no spurious decay of the balanced jet)
    assert kinetic_energy(x, grid, n) >= 0.99 * start[0]
    if at_bound:  # strong diffusion does smooth the tracers
        assert measures(x)[1:].max() / start[1:].max() < 0.6
