"""physics.compile: the torch.compile'd sub-step agrees with eager (the reference) to round-off.

A small grid with land, the paper's switches, two sub-steps with the polar rows subcycled:
the day's increment and the gradients of the loss with respect to the coefficients and the state,
with checkpointed sub-steps as in training. Compiling takes minutes on a CPU; not time-bound.
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


def _compile_available() -> bool:
    try:
        import torch._dynamo  # noqa: F401
        import torch._inductor  # noqa: F401
    except ImportError:
        return False
    return hasattr(torch, "compile") and torch._dynamo.is_dynamo_supported()


@pytest.mark.skipif(not _compile_available(), reason="torch.compile is not available")
def test_compiled_substep_matches_eager_with_gradients():
    grid = Grid(7.5)  # 24 x 48
    mask = land_mask(grid, DEPTHS)
    state = perturbed_state(grid, DEPTHS, mask, seed=2).float()
    state[:, 2:6] *= 12.0  # currents up to 2 m/s: the polar rows are subcycled, unevenly
    cores = {}
    for name in ("eager", "compiled"):
        settings = CoreSettings.of(PhysicsConfig(substeps=2, compile=name == "compiled"))
        torch.manual_seed(0)
        cores[name] = PhysicsCore(grid, DEPTHS, mask, settings)
    results = {}
    for name, core in cores.items():
        x = state.clone().requires_grad_()
        _, cycles, _ = core.plan(*core._split(x)[:1], core._coefficients4())
        assert len(set(cycles)) > 1  # some polar rows take more zonal steps than others
        increment = core(x)
        increment.square().mean().backward()
        with torch.no_grad():
            rollout_day = core(state)  # the no-grad graph too
        results[name] = increment.detach(), core.raw.grad, x.grad, rollout_day
    for eager, compiled in zip(results["eager"], results["compiled"], strict=True):
        scale = eager.abs().amax()
        assert scale > 0
        assert torch.allclose(compiled, eager, rtol=0, atol=1e-5 * scale), (
            float((compiled - eager).abs().amax() / scale))
