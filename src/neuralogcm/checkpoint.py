"""Models from the config and the data stores, and the checkpoints training writes.

:func:`build` makes ``models.<name>`` for the stores of a data directory (after
:func:`check_data`: the config's depths, grid and years must be those of the stores).

Two checkpoint files, torch dicts written atomically (:func:`save`) and read with
``weights_only=True`` (:func:`read`): checkpoint.pt (:func:`final_payload`, the weights of the
best validation epoch, turned back into the trained model by :func:`load_checkpoint`) and last.pt
(:func:`last_payload`: weights, optimiser, RNG and :class:`Progress`, everything a resumed run
needs). :func:`resumable` decides whether a last.pt may be continued: only one of an unfinished
run with the same :func:`fingerprint`, the settings that shape the weights and the input data
(:func:`inputs_digest`); :func:`restore` loads it into a model and its optimiser.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from neuralogcm import __version__
from neuralogcm.channels import channel_level, n_ocean_channels
from neuralogcm.config import Config, ConfigError, uses_physics, validate
from neuralogcm.data import STORES, Normalizer, OceanData
from neuralogcm.errors import DataError
from neuralogcm.io import atomic_path
from neuralogcm.models.base import ForecastModel, ModelContext
from neuralogcm.models.registry import build_model

log = logging.getLogger(__name__)

RESUMABLE_CHANGES = ("epochs", "num_workers", "cache_gb", "compile", "channels_last")
PHYSICS_SPEED = ("compile",)  # physics settings that change the speed, not the weights
ZARR_METADATA = ("zarr.json", ".zmetadata", ".zattrs", ".zgroup")


# ---------------------------------------------------------------------------------------------
# Models


def check_data(cfg: Config, data: OceanData) -> None:
    """ConfigError naming the key where the config and the data stores disagree."""
    where = data.data_dir / "ocean.zarr"
    if len(cfg.data.depths) != data.n_levels or not np.allclose(cfg.data.depths, data.depths,
                                                                 rtol=1e-4):
        raise ConfigError(
            f"config key 'data.depths' = {cfg.data.depths} ({len(cfg.data.depths)} levels, "
            f"{n_ocean_channels(len(cfg.data.depths))} ocean channels) disagrees with the depths "
            f"of {where}: {data.depths} ({n_ocean_channels(data.n_levels)} channels)")
    if not math.isclose(cfg.grid.resolution, data.grid.resolution, rel_tol=1e-6):
        raise ConfigError(
            f"config key 'grid.resolution' = {cfg.grid.resolution} deg disagrees with the "
            f"{data.grid.resolution} deg grid {data.grid.shape} of {where}")
    held = set(data.dates.year)
    for split in ("train", "valid"):
        missing = sorted(set(cfg.data.years.split(split)) - held)
        if missing:
            raise ConfigError(f"config key 'data.years.{split}': the years {missing} are not in "
                              f"{where} ({data.dates[0]:%Y-%m-%d}..{data.dates[-1]:%Y-%m-%d})")


def build(cfg: Config, model_name: str, data_dir: str | Path,
          device: torch.device) -> tuple[ForecastModel, Normalizer, OceanData]:
    """Model ``models.<model_name>`` of ``cfg`` for the stores in ``data_dir``, on ``device``."""
    if model_name not in cfg.models:
        raise ConfigError(f"config key 'models.{model_name}' does not exist "
                          f"(models: {', '.join(cfg.models)})")
    data = OceanData(data_dir)
    check_data(cfg, data)
    normalizer = Normalizer.from_data_dir(data_dir).to(device)
    mask = torch.from_numpy(data.mask[channel_level(data.n_levels)])
    ctx = ModelContext(grid=data.grid, depths=data.depths, mask=mask, normalizer=normalizer,
                       physics=cfg.physics)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.models[model_name], ctx).to(device)
    return model, normalizer, data


# ---------------------------------------------------------------------------------------------
# Checkpoints


def inputs_digest(data_dir: str | Path) -> str:
    """Digest of the data stores training reads: the bytes of mask.nc and stats.nc and each zarr
    store's root metadata (provenance attributes with the config digest, variables, shapes)."""
    data_dir = Path(data_dir)
    digest = hashlib.sha256()
    for name in STORES:
        path = data_dir / name
        for file in [path / m for m in ZARR_METADATA] if path.is_dir() else [path]:
            if file.is_file():
                digest.update(f"{file.relative_to(data_dir)}\0".encode() + file.read_bytes())
    return digest.hexdigest()


def fingerprint(cfg: Config, model_name: str, data_dir: str | Path,
                stages: int | None = None) -> str:
    """Digest of what a resumed run must share with the run that wrote last.pt: the settings
    that shape the weights (not the epoch counts nor how fast it runs; `physics` only for a
    model with the physics core) and the input data (:func:`inputs_digest`). ``stages``: of
    ``train.multistep``'s fine-tuning stages only the first that many (a shorter run)."""
    dump = cfg.model_dump(mode="json")
    train = {k: v for k, v in dump["train"].items() if k not in RESUMABLE_CHANGES}
    tuning = train["multistep"] if isinstance(train["multistep"], list) else [train["multistep"]]
    # a setting added later enters only when set, so an older run's last.pt stays resumable
    tuning = [{k: v for k, v in dict(m, epochs=None).items()
               if v is not None or k != "max_steps_per_epoch"} for m in tuning[:stages]]
    train["multistep"] = tuning[0] if len(tuning) == 1 else tuning
    model = dump["models"][model_name]
    physics = {k: v for k, v in dump["physics"].items() if k not in PHYSICS_SPEED}
    keep = {"data": dump["data"], "grid": dump["grid"], "train": train, "model": model,
            "name": model_name, "physics": physics if uses_physics(model) else None,
            "inputs": inputs_digest(data_dir)}
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


def shorter_runs(cfg: Config, model_name: str, data_dir: str | Path) -> dict[str, int]:
    """{fingerprint: epochs} of the runs this one extends: the same settings with only the
    first k of its fine-tuning stages (k >= 1), finished after that many epochs. Their last.pt
    continues with the later stages (say 15-day windows after a finished 5-day stage)."""
    tuning = cfg.train.multistep
    if not isinstance(tuning, list):
        return {}
    ends = cfg.train.epochs + np.cumsum([m.epochs for m in tuning])
    return {fingerprint(cfg, model_name, data_dir, k): int(ends[k - 1])
            for k in range(1, len(tuning))}


def save(payload: dict, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def read(path: str | Path, device: torch.device | str = "cpu") -> dict:
    """A checkpoint's payload, loaded with weights_only=True; DataError naming the file if it is
    missing, damaged or holds objects other than tensors and plain values (torch's advice to
    load those otherwise, which can run arbitrary code, is not passed on)."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise DataError(f"checkpoint {path} does not exist") from None
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a bad file
        reason = ("it holds objects other than tensors and plain values"
                  if "weights_only" in str(err) else str(err).split(". ")[0])
        raise DataError(f"checkpoint {path} cannot be read ({reason}): it is damaged or was not "
                        "written by neuralogcm train; delete it and train again") from None


def load_checkpoint(path: str | Path, data_dir: str | Path,
                    device: torch.device | str = "cpu") -> tuple[ForecastModel, Normalizer, Config]:
    """The trained model (eval mode) of a checkpoint.pt, its normaliser for ``data_dir``, and the
    config it was trained with; ConfigError naming the key if the data do not fit the model."""
    device = torch.device(device)
    payload = read(path, device)
    try:
        cfg = validate(payload["config"])
        model, normalizer, _ = build(cfg, payload["model"], data_dir, device)
        model.load_state_dict(payload["state_dict"])
    except KeyError as err:
        raise DataError(f"checkpoint {path} lacks {err}: not written by neuralogcm train") from None
    return model.eval(), normalizer, cfg


# ---------------------------------------------------------------------------------------------
# What training writes


@dataclass
class Progress:
    """Where training stands; with the weights, optimiser and RNG it is all that last.pt holds."""

    epoch: int = 0  # epochs completed
    step: int = 0  # steps completed in the current epoch
    loss_sum: float = 0.0  # sum of the current epoch's step losses
    seconds: float = 0.0  # time spent in the current epoch
    history: list[dict] = field(default_factory=list)
    best_valid: float = math.inf  # of the current stage
    best_state: dict | None = None
    best_epoch: int = 0


def last_payload(cfg: Config, model_name: str, fingerprint: str, world: int, model: torch.nn.Module,
                 optimizer: torch.optim.Optimizer, progress: Progress) -> dict:
    """last.pt: everything a resumed run needs, with this process's RNG state."""
    return {
        "fingerprint": fingerprint, "model": model_name, "world": world,
        "config": cfg.model_dump(mode="json"), "version": __version__,
        "state_dict": model.state_dict(), "optimizer": optimizer.state_dict(),
        **{f.name: getattr(progress, f.name) for f in fields(Progress)},
        "rng": torch.get_rng_state(),
    }


def final_payload(cfg: Config, model_name: str, progress: Progress) -> dict:
    """checkpoint.pt: the weights of the best validation epoch (``progress.best_epoch``)."""
    row = next(r for r in progress.history if r["epoch"] == progress.best_epoch)
    return {"model": model_name, "config": cfg.model_dump(mode="json"),
            "state_dict": progress.best_state, "epoch": row["epoch"],
            "valid_loss": row["valid_loss"], "version": __version__}


def resumable(path: Path, fingerprint: str, model_name: str, epochs: int,
              device: torch.device, shorter: dict[str, int] | None = None) -> dict | None:
    """The payload of the last.pt at ``path`` if it is of an unfinished run (``epochs``: this
    run's) with this fingerprint, or of a finished run that this one extends (``shorter``:
    :func:`shorter_runs`); None, with the reason logged, otherwise."""
    if not path.exists():
        log.info("no %s: starting from scratch", path)
        return None
    payload = read(path, device)
    ends = (shorter or {}).get(payload.get("fingerprint"))
    if ends is not None and payload["step"] == 0 and payload["epoch"] == ends:
        log.info("%s: continuing the finished run of %s (%d epochs) with the later fine-tuning "
                 "stages", model_name, path, ends)
        return payload
    if payload.get("fingerprint") != fingerprint:
        log.warning("not resuming from %s: it was written for a different configuration or "
                    "input data (data, grid, physics, train, models.%s or the stores in the "
                    "data dir changed); starting from scratch", path, model_name)
        return None
    planned = sum(stage.epochs for stage in validate(payload["config"]).train.stages())
    if payload["step"] == 0 and payload["epoch"] >= min(planned, epochs):
        log.info("not resuming from %s: its run finished (%d epochs); starting from scratch",
                 path, payload["epoch"])
        return None
    return payload


def restore(payload: dict, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
            world: int) -> Progress:
    """Load a last.pt payload's weights, optimiser state and RNG state; its progress for a run
    of ``world`` processes: another world size shards the epoch otherwise, so a started epoch
    restarts from its first batch."""
    model.load_state_dict(payload["state_dict"])
    optimizer.load_state_dict(payload["optimizer"])
    torch.set_rng_state(payload["rng"].cpu())
    progress = Progress(**{f.name: payload[f.name] for f in fields(Progress)})
    if payload["world"] != world and progress.step:
        log.warning("last.pt was written by %d process(es), this run has %d: epoch %d "
                    "restarts from its first batch", payload["world"], world, progress.epoch + 1)
        progress.step, progress.loss_sum, progress.seconds = 0, 0.0, 0.0
    return progress
