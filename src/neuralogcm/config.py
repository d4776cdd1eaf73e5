"""The workflow's configuration: typed sections, validated once, with messages that name the key.

The Snakefile validates the merged Snakemake config with :func:`validate` at start; every CLI
verb validates again what it is handed (``--config-json``), so the package is usable without
Snakemake. Unknown keys are errors everywhere (``extra="forbid"``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from neuralogcm.channels import OCEAN, PAPER_DEPTHS
from neuralogcm.errors import UserError
from neuralogcm.grid import Grid
from neuralogcm.levels import off_levels
from neuralogcm.model_options import (
    ArchOptions,
    ModelOptions,
    NeuralOGCMOptions,
    entry_error,
    model_options,
)


class ConfigError(UserError, ValueError):
    """A configuration value is missing, unknown or wrong; the message names the key."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Years(Section):
    """Inclusive [first, last] year ranges of the chronological split."""

    train: tuple[int, int]
    valid: tuple[int, int]
    test: tuple[int, int]

    @model_validator(mode="after")
    def _ordered(self) -> Years:
        for name in ("train", "valid", "test"):
            a, b = getattr(self, name)
            if a > b:
                raise ValueError(f"{name}: first year {a} is after last year {b}")
        if not (self.train[1] < self.valid[0] and self.valid[1] < self.test[0]):
            raise ValueError("train, valid and test years must follow each other without overlap")
        if self.train[0] == self.train[1]:
            raise ValueError(f"train: {self.train} is one year; the day-of-year climatology needs "
                             "at least two (of one year, the anomalies from it are all zero)")
        return self

    def all(self) -> list[int]:
        return list(range(self.train[0], self.test[1] + 1))

    def split(self, name: Literal["train", "valid", "test"]) -> list[int]:
        a, b = getattr(self, name)
        return list(range(a, b + 1))


class SyntheticSource(Section):
    """The embedded synthetic ocean and atmosphere (sources/synthetic/)."""

    seed: int = 0
    ocean_resolution: float = 2.0  # deg, native GLORYS-format grid (finer than the target)
    atmosphere_resolution: float = 2.0  # deg, native ERA5-format grid
    spinup_days: int = Field(365, ge=0)
    diffusivity: float = Field(2000.0, gt=0)  # m^2/s, the known tracer diffusivity


class DownloadSource(Section):
    """ERA5 through cdsapi and GLORYS12 through the copernicusmarine toolbox."""

    era5_dataset: str = "reanalysis-era5-single-levels"
    glorys_dataset: str = "cmems_mod_glo_phy_my_0.083deg_P1D-m"
    retries: int = Field(4, ge=0)
    backoff_s: float = Field(30.0, ge=0)
    local_rules: bool = True  # run downloads on the login node (compute nodes often lack internet)


class LocalSource(Section):
    """Files already on disk, in either real format: patterns with {year} and {month} (01..12)."""

    era5: str = ""
    glorys: str = ""


class DataConfig(Section):
    source: Literal["synthetic", "download", "local"] = "synthetic"
    years: Years
    depths: list[float] = Field(default_factory=lambda: list(PAPER_DEPTHS), min_length=1)
    keep_raw: bool = False  # keep full-resolution monthly downloads after regridding
    synthetic: SyntheticSource = SyntheticSource()
    download: DownloadSource = DownloadSource()
    local: LocalSource = LocalSource()

    @field_validator("depths")
    @classmethod
    def _depths_increase(cls, v: list[float]) -> list[float]:
        if any(b <= a for a, b in zip(v, v[1:], strict=False)) or v[0] < 0:
            raise ValueError("depths must be positive-down and strictly increasing (m)")
        if off := off_levels(v):
            raise ValueError(f"{off}: not a GLORYS12 model level (data.depths are a subset of "
                             "the 50 levels; levels.py lists them)")
        return v

    @model_validator(mode="after")
    def _local_patterns(self) -> DataConfig:
        if self.source == "local":
            for name in ("era5", "glorys"):
                pattern = getattr(self.local, name)
                if "{year}" not in pattern or "{month}" not in pattern:
                    raise ValueError(
                        f"local.{name} must be a path pattern with {{year}} and {{month}}, "
                        f"got {pattern!r}"
                    )
        return self


class GridConfig(Section):
    resolution: float = Field(1.5, gt=0)  # deg
    regrid_method: Literal["bilinear", "conservative"] = "bilinear"
    na_thres: float = Field(0.5, ge=0, le=1)  # valid fraction below which a target cell is land

    @field_validator("resolution")
    @classmethod
    def _divides_180(cls, v: float) -> float:
        Grid(v)  # ValueError unless 180 / v cells
        return v


class PhysicsConfig(Section):
    """The differentiable physics core (physics/core.py): which terms, how many sub-steps."""

    substeps: int | None = Field(None, ge=1)  # sub-steps a day; None: as stability needs
    max_substeps: int = Field(96, ge=1)  # cap of the automatic count (each call's is logged)
    advection: bool = True  # T, S, u, v (limited, advective form), with the metric terms
    coriolis: bool = True  # exact rotation
    pressure_gradient: bool = True  # barotropic, g grad(SSH), at every level
    baroclinic: bool = False  # adds the baroclinic one from T, S (linear equation of state)
    diffusion: bool = True  # Laplacian diffusion of T, S and viscosity of u, v (learnable)
    kappa_init: float = Field(1.0e3, gt=0)  # m^2/s, tracer diffusivity at initialisation
    viscosity_init: float = Field(1.0e4, gt=0)  # m^2/s, momentum viscosity at initialisation
    kappa_max: float = Field(1.0e5, gt=0)  # m^2/s, differentiable upper bound of all coefficients
    per_level: bool = True  # one coefficient per group and depth level (False: one per group)
    polar_latitude: float = Field(60.0, gt=0, lt=90)  # deg, zonal diffusion scaling starts
    checkpoint: bool = True  # recompute sub-steps in backward (memory ~ 1 sub-step, not a day)
    compile: bool = False  # torch.compile the sub-step (cold: minutes of compiling per process
    # and batch shape on a CPU; cached in the inductor cache after that); False: eager


class MultistepConfig(Section):
    steps: int = Field(1, ge=1)  # unrolled days in the loss; 1 = the paper's one-step training
    epochs: int = Field(0, ge=0)  # extra fine-tuning epochs with the unrolled loss
    lr: float | None = Field(None, gt=0)  # learning rate of the fine-tuning; None: train.lr
    max_steps_per_epoch: int | None = Field(None, ge=1)  # None: train.max_steps_per_epoch


@dataclass(frozen=True)
class Stage:
    """One training stage: ``epochs`` epochs on ``steps``-day windows at base rate ``lr``, at most
    ``max_steps`` optimiser steps an epoch (None: all windows)."""

    steps: int
    epochs: int
    lr: float
    max_steps: int | None


class TrainConfig(Section):
    epochs: int = Field(50, ge=1)
    batch_size: int = Field(2, ge=1)  # per GPU (per process)
    lr: float = Field(1e-4, gt=0)
    lr_schedule: Literal["constant", "cosine"] = "constant"  # cosine: lr to lr/20 in each stage
    patience: int | None = Field(None, ge=1)  # end a stage after this many epochs without a
    # lower validation loss (None: run all its epochs); the checkpoint is the last stage's best
    weight_decay: float = Field(1e-5, ge=0)
    max_steps_per_epoch: int | None = Field(None, ge=1)
    num_workers: int = Field(4, ge=0)
    cache_gb: float = Field(2.0, ge=0)  # keep the train+valid days in memory when they fit
    valid_stride_days: int = Field(1, ge=1)  # validate on every k-th day of the valid years
    amp: bool = True  # bf16 autocast for the neural parts on CUDA
    compile: bool = False
    channels_last: bool = False
    seed: int = 0
    # fine-tuning after the one-day stage: one stage, or a list run in order (e.g. 5 then 15 days)
    multistep: MultistepConfig | list[MultistepConfig] = MultistepConfig()

    @field_validator("multistep")
    @classmethod
    def _fine_tuning_stages(cls, value):
        if isinstance(value, list):
            if not value:
                raise ValueError("an empty list: leave the key out for no fine-tuning")
            for stage in value:
                if stage.steps < 2 or stage.epochs < 1:
                    raise ValueError(f"each listed stage needs steps >= 2 and epochs >= 1, got "
                                     f"steps={stage.steps}, epochs={stage.epochs}")
        return value

    def stages(self) -> list[Stage]:
        """The one-day stage, then the fine-tuning stages that have epochs."""
        tuning = self.multistep if isinstance(self.multistep, list) else [self.multistep]
        return [Stage(1, self.epochs, self.lr, self.max_steps_per_epoch)] + [
            Stage(m.steps, m.epochs, m.lr or self.lr,
                  m.max_steps_per_epoch or self.max_steps_per_epoch)
            for m in tuning if m.epochs]


class EvaluateConfig(Section):
    """Rollouts on the test years, their scores, tables and figures (rollout.py, metrics.py)."""

    start_every_days: int = Field(7, ge=1)  # days between rollout start dates in the test years
    leads: list[int] = Field(default_factory=lambda: [10, 30, 60, 120], min_length=1)  # tables
    max_lead: int = Field(120, ge=1)  # days simulated from every start date
    long_rollout_days: int = Field(365, ge=1)  # stability run from 1 January of each test year
    fig4_day: int = Field(90, ge=1)  # day of the long run shown in Figure 4
    fig4_models: list[str] = Field(  # the models shown beside the truth, e.g. hybrid + baseline
        default_factory=lambda: ["neuralogcm", "unet"], min_length=1)
    table_depths: list[float] = Field(default_factory=lambda: [0.0, 150.0, 500.0])  # m, nearest
    # Physical bounds (min, max) per variable for the stability test, in the variable's units.
    bounds: dict[str, tuple[float, float]] = Field(default_factory=lambda: {
        "so": (0.0, 45.0), "uo": (-5.0, 5.0), "vo": (-5.0, 5.0), "thetao": (-3.0, 40.0),
        "zos": (-5.0, 5.0)})
    speed_days: int = Field(30, ge=1)  # days the physics core alone is timed for tables/speed.csv

    @model_validator(mode="after")
    def _consistent(self) -> EvaluateConfig:
        if max(self.leads) > self.max_lead:
            raise ValueError(f"leads {self.leads} go beyond max_lead={self.max_lead}")
        if self.fig4_day > self.long_rollout_days:
            raise ValueError(
                f"fig4_day={self.fig4_day} is after long_rollout_days={self.long_rollout_days}")
        missing = set(OCEAN) - set(self.bounds)
        if missing:
            raise ValueError(f"bounds needs (min, max) for {sorted(missing)}")
        return self


class ResourceSpec(Section):
    """What one Slurm job of a rule group asks for, on one node (several: slurm/README.md).
    Empty site values leave the choice to the cluster (default partition, any GPU, any node)."""

    gpu: int = Field(0, ge=0)  # GPUs of the job; 0: a CPU job
    cpus_per_gpu: int = Field(8, ge=1)  # CPUs per GPU of a GPU job
    cpus: int = Field(2, ge=1)  # CPUs of a CPU job
    mem_mb: int = Field(8000, ge=1)
    runtime: int = Field(60, ge=1)  # minutes
    slurm_partition: str = ""
    gpu_model: str = ""  # GPU type as the cluster names it (a100, h100, ...): --gpus=MODEL:N
    constraint: str = ""  # node features: sbatch --constraint


class ResourcesConfig(Section):
    """Slurm resources per rule group; `default` covers every rule without a group of its own."""

    slurm_account: str = ""  # sbatch --account of every job; "": the user's default account
    default: ResourceSpec = ResourceSpec()
    prepare: ResourceSpec = ResourceSpec()
    train: ResourceSpec = ResourceSpec()
    rollout: ResourceSpec = ResourceSpec()

    def rule_resources(self, group: str) -> dict[str, int | str]:
        """A rule's Snakemake `resources:` for snakemake-executor-plugin-slurm (names as the
        plugin reads them); mem_mb in MB, runtime in minutes. A GPU job is one task, whose
        torchrun starts one process per GPU; a CPU job is one task with `cpus` CPUs."""
        spec: ResourceSpec = getattr(self, group)
        resources: dict[str, int | str] = {"mem_mb": spec.mem_mb, "runtime": spec.runtime,
                                           "gpu": spec.gpu}
        if spec.gpu:
            resources |= {"cpus_per_gpu": spec.cpus_per_gpu, "tasks_per_gpu": 0}
        else:
            resources["cpus_per_task"] = spec.cpus
        site = {"slurm_account": self.slurm_account, "slurm_partition": spec.slurm_partition,
                "gpu_model": spec.gpu_model, "constraint": spec.constraint}
        return resources | {name: value for name, value in site.items() if value}


class Config(Section):
    run: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    data: DataConfig
    grid: GridConfig = GridConfig()
    physics: PhysicsConfig = PhysicsConfig()
    models: dict[str, ModelOptions] = Field(min_length=1)
    train: TrainConfig = TrainConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    resources: ResourcesConfig = ResourcesConfig()

    def digest(self) -> str:
        """Short hash of the whole configuration, for provenance attributes."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _format(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "<top level>"
        msg = e["msg"]
        if e["loc"][:1] == ("models",) and len(e["loc"]) > 1:
            key, msg = entry_error(e)  # models.<name>.<option>, without pydantic's arch part
        elif e["type"] == "extra_forbidden":
            msg = "unknown key (check its spelling and DESIGN.md)"
        elif e["type"] == "missing":
            msg = "required key is missing"
        lines.append(f"  config key '{key}': {msg}")
    return "invalid configuration:\n" + "\n".join(lines)


def validate(raw: dict[str, Any]) -> Config:
    """Validate a config mapping; raise :class:`ConfigError` naming every bad key."""
    try:
        return Config.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format(err)) from None


def load(source: str | Path | dict[str, Any]) -> Config:
    """Load and validate a config from a YAML/JSON file, a JSON string or a mapping."""
    if isinstance(source, dict):
        return validate(source)
    text = str(source)
    if text.lstrip().startswith("{"):
        return validate(json.loads(text))
    path = Path(text)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    return validate(yaml.safe_load(path.read_text()) or {})


def uses_physics(model: ArchOptions | dict[str, Any]) -> bool:
    """Whether a `models:` entry steps the physics core, i.e. reads the `physics:` section."""
    options = model_options(model)
    return isinstance(options, NeuralOGCMOptions) and options.physics
