"""Per-architecture options of the ``models:`` config section, validated without importing torch.

Each entry of ``models:`` is ``name: {arch: <registry name>, <option>: <value>, ...}``; the name is
free (``neuralogcm``, ``physics_only``, ``unet_wide`` ...), the arch picks the class in
``models/registry.py`` and the options class below.
"""

from __future__ import annotations

from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)


class ArchOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    arch: str


class NeuralOGCMOptions(ArchOptions):
    """Hybrid model: physics core + encoder-decoder corrector with an attention bottleneck."""

    physics: bool = True  # False: corrector only (ablation)
    corrector: bool = True  # False: physics only (ablation)
    learnable_physics: bool = True  # False: frozen coefficients (ablation)
    coriolis: bool | None = None  # None: physics.coriolis; a bool overrides it (ablation)
    pressure_gradient: bool | None = None  # None: physics.pressure_gradient; a bool overrides it
    width: int = Field(32, ge=1)  # channels after the stem; doubled at each downsampling
    depth: int = Field(2, ge=1)  # number of downsamplings
    heads: int = Field(4, ge=1)
    attention_layers: int = Field(2, ge=1)
    mlp_ratio: float = Field(4.0, gt=0)

    @model_validator(mode="after")
    def _buildable(self) -> NeuralOGCMOptions:
        if not (self.physics or self.corrector):
            raise ValueError("physics and corrector are both false: nothing would step the ocean")
        if self.corrector and (self.width * 2**self.depth) % self.heads:
            raise ValueError(f"heads={self.heads} must divide the bottleneck width "
                             f"width * 2**depth = {self.width * 2**self.depth}")
        return self


class UNetOptions(ArchOptions):
    """U-Net: ``width`` channels at full resolution, doubled at each of ``depth`` halvings."""

    width: int = Field(32, ge=1)
    depth: int = Field(3, ge=1)


class ConvLSTMOptions(ArchOptions):
    """ConvLSTM: ``layers`` stacked cells of ``hidden`` channels, ``kernel`` x ``kernel`` gates."""

    hidden: int = Field(32, ge=1)
    layers: int = Field(2, ge=1)
    kernel: int = Field(3, ge=1)

    @field_validator("kernel")
    @classmethod
    def _odd(cls, kernel: int) -> int:
        if kernel % 2 == 0:
            raise ValueError(f"must be odd (a centred stencil), got {kernel}")
        return kernel


class SimVPOptions(ArchOptions):
    """SimVP v2 (gSTA): encoder and decoder of ``spatial_blocks`` convs of ``hidden_spatial``
    channels (every second one halves the grid); ``temporal_blocks`` gSTA translator blocks of
    ``hidden_temporal`` channels."""

    hidden_spatial: int = Field(32, ge=2, multiple_of=2)  # GroupNorm with 2 groups
    hidden_temporal: int = Field(128, ge=1)
    spatial_blocks: int = Field(2, ge=1)
    temporal_blocks: int = Field(4, ge=2)  # the first maps to hidden_temporal, the last back
    mlp_ratio: float = Field(8.0, gt=0)  # gSTA MLP width / block width (OpenSTL: 8)


class FourCastNetOptions(ArchOptions):
    """FourCastNet (AFNO): ``patch`` x ``patch`` tokens of ``embed_dim``, ``depth`` AFNO blocks."""

    patch: int = Field(4, ge=1)
    embed_dim: int = Field(256, ge=1)
    depth: int = Field(8, ge=1)
    blocks: int = Field(8, ge=1)  # block-diagonal blocks of the AFNO weights
    sparsity: float = Field(0.01, ge=0)  # soft-threshold lambda
    mlp_ratio: float = Field(4.0, gt=0)

    @field_validator("blocks")
    @classmethod
    def _divides_embed_dim(cls, blocks: int, info: ValidationInfo) -> int:
        embed_dim = info.data.get("embed_dim")
        if embed_dim is not None and embed_dim % blocks:
            raise ValueError(f"must divide embed_dim ({embed_dim}), got {blocks}")
        return blocks


ARCH_OPTIONS: dict[str, type[ArchOptions]] = {
    "neuralogcm": NeuralOGCMOptions,
    "unet": UNetOptions,
    "convlstm": ConvLSTMOptions,
    "simvp": SimVPOptions,
    "fourcastnet": FourCastNetOptions,
}


def validate_model_options(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Check one ``models.<name>`` entry; return it with defaults filled in."""
    arch = spec.get("arch") if isinstance(spec, dict) else None
    if arch not in ARCH_OPTIONS:
        raise ValueError(
            f"models.{name}.arch must be one of {sorted(ARCH_OPTIONS)}, got {arch!r}"
        )
    try:
        return ARCH_OPTIONS[arch].model_validate(spec).model_dump()
    except ValidationError as err:
        bad = "; ".join(
            f"models.{name}.{'.'.join(map(str, e['loc']))}: "
            + ("unknown option" if e["type"] == "extra_forbidden" else e["msg"])
            for e in err.errors()
        )
        raise ValueError(bad) from None


def model_options(spec: dict[str, Any]) -> ArchOptions:
    """The typed options of a validated ``models.<name>`` entry."""
    return ARCH_OPTIONS[spec["arch"]].model_validate(spec)
