"""NeuralOGCM (paper Sections 2.2-2.5): a differentiable physics core plus a neural corrector.

One forward-Euler day in normalised space, X(t+1) = X(t) + F_phys + F_nn:

- F_phys: the state is de-normalised (the climatology of day t added back to S, T, SSH), stepped
  one day by the physics core in physical units and float32, and re-normalised with the same
  day's climatology: F_phys = core(phys) / std. The core has no seasonal forcing, so it is not
  asked to carry the climatological tendency: the physics-only model persists the anomaly and
  lets the physics act on it (re-normalising with day t + 1's climatology instead would persist
  the full field; on the demo data the physics-only normalised RMSE at 60 / 120 days is then
  1.55 / 2.47 against 1.14 / 1.59 in this frame).
- F_nn: the corrector's tendency from the normalised state, forcing and land-sea mask (under
  whatever autocast the caller chose, e.g. bf16 on GPUs). Its output layer starts at zero, so an
  untrained hybrid is exactly its physics core.
- With the physics core, the new state's temperature is held at or above the freezing point of
  sea water (physics.core.freezing_point): the model has no sea ice, which is what keeps polar
  water at freezing. Without it a cold anomaly persisted into the Arctic winter (the anomaly
  frame adds the climatology's seasonal change) reached -3.03 deg C at 81 N, below the
  evaluation's bound of -3 deg C, on day 82 of a demo rollout.

Land is 0 in every level's masked cells. Ablations through the options: ``corrector: false``
(physics only), ``physics: false`` (corrector only), ``learnable_physics: false`` (frozen
coefficients), ``coriolis`` / ``pressure_gradient`` (override the physics section's switch for
this model). The physics coefficients are trained end-to-end with the corrector.
"""

from __future__ import annotations

import torch

from neuralogcm.channels import variable_slice
from neuralogcm.model_options import NeuralOGCMOptions
from neuralogcm.models.base import ForecastModel, ModelContext
from neuralogcm.models.corrector import Corrector
from neuralogcm.physics.core import CoreSettings, PhysicsCore, freezing_point


class NeuralOGCM(ForecastModel):
    def __init__(self, ctx: ModelContext, options: NeuralOGCMOptions) -> None:
        super().__init__(ctx, options)
        self.core = self.corrector = None
        if options.physics:
            if ctx.normalizer is None or ctx.physics is None:
                raise ValueError("NeuralOGCM with physics needs ctx.normalizer and ctx.physics")
            self.normalizer = ctx.normalizer
            level_mask = ctx.mask[variable_slice("so", ctx.n_levels)]  # (L, H, W)
            terms = {"coriolis": options.coriolis, "pressure_gradient": options.pressure_gradient}
            settings = CoreSettings.of(ctx.physics,
                                       **{k: v for k, v in terms.items() if v is not None})
            self.core = PhysicsCore(ctx.grid, ctx.depths, level_mask, settings,
                                    learnable=options.learnable_physics)
            depths = torch.tensor(ctx.depths, dtype=torch.float32)[:, None, None]
            self.register_buffer("depths", depths, persistent=False)  # (L, 1, 1) m
        if options.corrector:
            self.corrector = Corrector(ctx.n_inputs, ctx.n_channels, ctx.grid.shape,
                                       options.width, options.depth, options.heads,
                                       options.attention_layers, options.mlp_ratio)

    def physics_step(self, state: torch.Tensor, doy: torch.Tensor) -> torch.Tensor:
        """The physics core's day in normalised space: X(t) + F_phys, (B, C, H, W), float32."""
        with torch.autocast(state.device.type, enabled=False):
            phys = self.normalizer.denormalize_state(state.float(), doy)
            return state.float() + self.normalizer.normalize_increment(self.core(phys))

    def forward(self, state, forcing, doy, doy_next, hidden=None):
        next_state = state.float()
        if self.core is not None:
            next_state = self.physics_step(state, doy)
        if self.corrector is not None:
            next_state = next_state + self.corrector(self.inputs(state, forcing)).float()
        if self.core is not None:
            next_state = self.above_freezing(next_state, doy_next)
        return self.apply_mask(next_state), None

    def above_freezing(self, state: torch.Tensor, doy: torch.Tensor) -> torch.Tensor:
        """state (B, C, H, W) normalised on days ``doy`` (B,) with T raised to the freezing
        point of its salinity and depth wherever it lies below (other ocean values untouched,
        land is left to ``apply_mask``; the normalisation is increasing, so the floor is
        compared in normalised units)."""
        n = self.ctx.n_levels
        salt, temp = variable_slice("so", n), variable_slice("thetao", n)
        with torch.autocast(state.device.type, enabled=False):
            state = state.float()
            salinity = self.normalizer.denormalize_state(state[:, salt], doy, salt)
            floor = self.normalizer.normalize_state(freezing_point(salinity, self.depths), doy,
                                                    temp)
            temperature = torch.maximum(state[:, temp], floor)
            return torch.cat([state[:, : temp.start], temperature, state[:, temp.stop :]], 1)

    def step_diagnostics(self) -> dict[str, int]:
        """The sub-steps the physics core took in its latest day."""
        return {} if self.core is None else {"physics_substeps": self.core.last_substeps}

    def physical_coefficients(self) -> dict[str, float]:
        """The core's coefficients in m^2/s: one value per name, or name_00.. per level."""
        if self.core is None:
            return {}
        values = {}
        for name, value in self.core.coefficients().items():
            flat = value.detach().float().flatten().cpu().tolist()
            if len(flat) == 1:
                values[name] = flat[0]
            else:
                values |= {f"{name}_{k:02d}": v for k, v in enumerate(flat)}
        return values
