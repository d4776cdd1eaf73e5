"""The interface every forecast model implements, so training, rollouts and scoring treat all alike.

Shapes: B batch, C = 4 L + 1 ocean channels, F = 4 forcing channels, H x W the target grid.
All tensors a model sees and returns are in normalised space with land set to 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from neuralogcm.channels import n_ocean_channels
from neuralogcm.grid import Grid


@dataclass
class ModelContext:
    """What a model needs to know about the data; built once from the data stores."""

    grid: Grid
    depths: list[float]  # m, the L levels
    mask: torch.Tensor  # (C, H, W) bool, True on ocean, per ocean channel
    normalizer: nn.Module | None = None  # data.Normalizer: phys <-> normalised (hybrid models)
    physics: Any = None  # the physics config section (physics.core.CoreSettings.of), hybrids
    n_forcing: int = 4

    @property
    def n_levels(self) -> int:
        return len(self.depths)

    @property
    def n_channels(self) -> int:
        return n_ocean_channels(self.n_levels)

    @property
    def n_inputs(self) -> int:
        """State + forcing + the static surface land-sea mask."""
        return self.n_channels + self.n_forcing + 1


class ForecastModel(nn.Module):
    """Steps a normalised ocean state one day forward.

    ``forward(state, forcing, doy, doy_next, hidden)`` takes state (B, C, H, W), forcing
    (B, F, H, W) at day t, the climatology day index of t and of t + 1 (B,) long in 0..364,
    and an optional recurrent hidden state; it returns (next state (B, C, H, W) with land 0,
    next hidden or None).
    """

    stateful = False  # True when the hidden state must be carried through a rollout

    def __init__(self, ctx: ModelContext, options: Any) -> None:
        super().__init__()
        self.ctx = ctx
        self.options = options
        self.register_buffer("ocean_mask", ctx.mask.clone(), persistent=False)

    def inputs(self, state: torch.Tensor, forcing: torch.Tensor) -> torch.Tensor:
        """Concatenate state, forcing and the surface land-sea mask: (B, C + F + 1, H, W)."""
        lsm = self.ocean_mask[-1:].to(state.dtype).expand(state.shape[0], 1, *state.shape[-2:])
        return torch.cat([state, forcing, lsm], dim=1)

    def apply_mask(self, x: torch.Tensor) -> torch.Tensor:
        """Zero every land cell of every channel: x (B, C, H, W)."""
        return x * self.ocean_mask.to(x.dtype)

    def physical_coefficients(self) -> dict[str, float]:
        """Learned physical coefficients to log (m^2/s); none for pure neural models."""
        return {}

    def step_diagnostics(self) -> dict[str, int]:
        """Numbers of the latest step to log (e.g. the physics core's sub-steps); none here."""
        return {}

    def forward(self, state, forcing, doy, doy_next, hidden=None):  # pragma: no cover - abstract
        raise NotImplementedError
