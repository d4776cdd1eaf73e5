"""Twin experiment: the core's coefficients are recovered from data it made (issue 3, test 7).

Data: one-day increments of two perturbed states on the demo grid (6 deg, two levels, the demo's
12 sub-steps) made with known coefficients; training: L-BFGS on the coefficients alone, from 0.2x
and from 5x the truth, for one global coefficient per group and for one per group and level.
"""

from __future__ import annotations

import pytest
import torch
from physics_cases import land_mask, perturbed_state

from neuralogcm.config import PhysicsConfig
from neuralogcm.grid import Grid
from neuralogcm.physics.core import CoreSettings, PhysicsCore

torch.set_num_threads(1)

DEPTHS = [0.494025, 155.8507]
TRUTH = {  # m^2/s; 5x the truth stays below the 1e5 m^2/s bound
    "global": {"kappa": torch.tensor(2500.0), "viscosity": torch.tensor(1.5e4)},
    "per_level": {"kappa": torch.tensor([3000.0, 2000.0]),
                  "viscosity": torch.tensor([1.5e4, 1.0e4])},
}
AFFECTS = {"kappa": ("so", "thetao"), "viscosity": ("uo", "vo")}
VARIABLE = {"so": 0, "uo": 1, "vo": 2, "thetao": 3}


def _core(grid, mask, per_level: bool, **coefficients) -> PhysicsCore:
    cfg = CoreSettings.of(PhysicsConfig(substeps=12, per_level=per_level, checkpoint=False))
    core = PhysicsCore(grid, DEPTHS, mask, cfg).double()
    core.set_coefficients(**{k: v.double() for k, v in coefficients.items()})
    return core


def _channels(names: tuple[str, ...], level: int | None) -> list[int]:
    n = len(DEPTHS)
    levels = range(n) if level is None else [level]
    return [VARIABLE[name] * n + k for name in names for k in levels]


@pytest.mark.parametrize("case", ["global", "per_level"])
def test_coefficients_are_recovered_from_their_own_data(case):
    grid = Grid(6.0)
    mask = land_mask(grid, DEPTHS)
    per_level = case == "per_level"
    truth = TRUTH[case]
    states = perturbed_state(grid, DEPTHS, mask, batch=2)
    with torch.no_grad():
        data = _core(grid, mask, per_level, **truth)(states)
        # Identifiable: a fifth of any one coefficient changes the day's increment of the
        # fields it acts on by more than 1 % (of one level's, for a per-level coefficient).
        for name, value in truth.items():
            for level in range(len(DEPTHS)) if per_level else [None]:
                changed = value.clone()
                if level is None:
                    changed = 0.2 * changed
                else:
                    changed[level] *= 0.2
                other = _core(grid, mask, per_level, **(truth | {name: changed}))(states)
                channels = _channels(AFFECTS[name], level)
                difference = (other - data)[:, channels].norm() / data[:, channels].norm()
                assert difference > 0.01, (name, level, difference)
    scale = data.std(dim=(0, 2, 3), keepdim=True).clamp(min=1e-12)
    for factor in (0.2, 5.0):
        core = _core(grid, mask, per_level, **{k: factor * v for k, v in truth.items()})
        optimizer = torch.optim.LBFGS([core.raw], max_iter=60, tolerance_grad=1e-12,
                                      tolerance_change=1e-14, line_search_fn="strong_wolfe")

        def closure(core=core, optimizer=optimizer):
            optimizer.zero_grad()
            loss = (((core(states) - data) / scale) ** 2).mean()
            loss.backward()
            return loss

        optimizer.step(closure)
        learned = core.coefficients()
        for name, value in truth.items():
            error = (learned[name].detach() / value.double() - 1).abs().amax()
            assert error < 0.01, (factor, name, learned[name], value)
