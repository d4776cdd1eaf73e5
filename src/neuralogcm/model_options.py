"""Per-architecture options of the ``models:`` config section, validated without importing torch.

Each entry of ``models:`` is ``name: {arch: <registry name>, <option>: <value>, ...}``; the name is
free (``neuralogcm``, ``physics_only``, ``unet_wide`` ...), the arch picks the class in
``models/registry.py`` and the options class below.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails


class ArchOptions(BaseModel):
    """The options of one ``models:`` entry. Besides attributes (``options.width``) they read
    like the mapping the entry is written as: ``options["arch"]``, ``options.get("physics")``,
    ``options.items()``, ``dict(options)``, ``**options``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    arch: str

    def __getitem__(self, key: str) -> Any:
        if key not in type(self).model_fields:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in type(self).model_fields else default

    def keys(self) -> Iterator[str]:
        return iter(type(self).model_fields)

    def items(self) -> Iterator[tuple[str, Any]]:
        return ((key, getattr(self, key)) for key in type(self).model_fields)


class NeuralOGCMOptions(ArchOptions):
    """Hybrid model: physics core + encoder-decoder corrector with an attention bottleneck."""

    arch: Literal["neuralogcm"]
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

    arch: Literal["unet"]
    width: int = Field(32, ge=1)
    depth: int = Field(3, ge=1)


class ConvLSTMOptions(ArchOptions):
    """ConvLSTM: ``layers`` stacked cells of ``hidden`` channels, ``kernel`` x ``kernel`` gates."""

    arch: Literal["convlstm"]
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

    arch: Literal["simvp"]
    hidden_spatial: int = Field(32, ge=2, multiple_of=2)  # GroupNorm with 2 groups
    hidden_temporal: int = Field(128, ge=1)
    spatial_blocks: int = Field(2, ge=1)
    temporal_blocks: int = Field(4, ge=2)  # the first maps to hidden_temporal, the last back
    mlp_ratio: float = Field(8.0, gt=0)  # gSTA MLP width / block width (OpenSTL: 8)


class FourCastNetOptions(ArchOptions):
    """FourCastNet (AFNO): ``patch`` x ``patch`` tokens of ``embed_dim``, ``depth`` AFNO blocks."""

    arch: Literal["fourcastnet"]
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


#: One ``models:`` entry: the options class its ``arch`` names.
ModelOptions = Annotated[
    NeuralOGCMOptions | UNetOptions | ConvLSTMOptions | SimVPOptions | FourCastNetOptions,
    Field(discriminator="arch"),
]

#: Arch name -> options class; the same names as ``models/registry.py``'s ARCHITECTURES.
ARCH_OPTIONS: dict[str, type[ArchOptions]] = {
    get_args(cls.model_fields["arch"].annotation)[0]: cls
    for cls in get_args(get_args(ModelOptions)[0])
}

_ADAPTER: TypeAdapter[ArchOptions] = TypeAdapter(ModelOptions)


def model_options(spec: ArchOptions | Mapping[str, Any]) -> ArchOptions:
    """The typed options of a ``models.<name>`` entry: ``spec`` itself when it is typed, else
    ``spec`` validated (pydantic's ValidationError, a ValueError, when it is wrong)."""
    return spec if isinstance(spec, ArchOptions) else _ADAPTER.validate_python(dict(spec))


def entry_error(error: ErrorDetails) -> tuple[str, str]:
    """(dotted key, message) of a validation error inside ``models.<name>`` (``error["loc"]``
    starts with ``("models", name)``; pydantic puts the arch between the name and the option)."""
    name = error["loc"][1]
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        given = error["input"].get("arch") if isinstance(error["input"], Mapping) else None
        return f"models.{name}.arch", f"must be one of {sorted(ARCH_OPTIONS)}, got {given!r}"
    key = ".".join(map(str, ("models", name, *error["loc"][3:])))
    if error["type"] == "extra_forbidden":
        return key, (f"unknown option of arch {error['loc'][2]!r} (config/README.md lists the "
                     "options of each arch)")
    return key, error["msg"]
