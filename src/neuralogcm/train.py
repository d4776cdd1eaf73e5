"""`neuralogcm train`: fit one model of the config to the train years, validate every epoch.

    neuralogcm train --config C --model NAME --data-dir DATA --out-dir models/NAME --threads N
    torchrun --standalone --nproc-per-node=G -m neuralogcm.cli train ...        (DDP over G GPUs)

Loss: the one-day MSE in normalised space over ocean cells only (paper Eq. 10), averaged over the
days of an unrolled window (one day by default; ``train.multistep`` adds fine-tuning epochs with a
k-day window, the model's own forecast fed back). AdamW with ``train.lr`` and
``train.weight_decay``; ``train.batch_size`` samples per process. Every model of the registry is
trained alike through the :class:`~neuralogcm.models.base.ForecastModel` interface; a stateful
model's hidden state starts empty in each window and is carried across its days.

Outputs in --out-dir (rank 0 alone writes): history.csv (epoch, train_loss, valid_loss, seconds,
the model's learned coefficients in m^2/s and the physics core's sub-steps), updated every
epoch; last.pt (everything needed to continue), every epoch; checkpoint.pt (the weights of the
best validation epoch) once training has finished, so an interrupted job leaves none and
Snakemake runs it again. All three are written atomically.

Resuming: with ``--resume`` the last.pt of an unfinished run with the same settings and the same
input data (:func:`fingerprint`; ``train.epochs`` may differ) continues exactly where it stopped:
the next step sees the same batch and gives the same loss as an uninterrupted run. Any other
last.pt (a finished run, other settings, rebuilt stores) is ignored and training starts from
scratch, so a rerun that Snakemake decides on (-f, changed settings or inputs) really retrains.
SIGTERM and SIGUSR1 (what Slurm sends before a time limit or preemption) save last.pt after the
current step and end the process with status 128 + signal, so the job is requeued or rerun with
--resume.
A NaN or Inf loss stops training with a message naming the step; last.pt stays the last good one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Sampler
from tqdm import tqdm

from neuralogcm import __version__
from neuralogcm.channels import channel_level
from neuralogcm.config import Config, ConfigError, load, uses_physics, validate
from neuralogcm.data import Normalizer, OceanData, WindowDataset
from neuralogcm.errors import DataError, UserError
from neuralogcm.io import atomic_path
from neuralogcm.models.base import ForecastModel, ModelContext
from neuralogcm.models.registry import build_model
from neuralogcm.rollout import machine_label

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
RESUMABLE_CHANGES = ("epochs", "num_workers", "cache_gb", "compile", "channels_last")
DATA_STORES = ("ocean.zarr", "forcing.zarr", "mask.nc", "climatology.zarr", "stats.nc")
ZARR_METADATA = ("zarr.json", ".zmetadata", ".zattrs", ".zgroup")


class TrainingDiverged(UserError):
    """The loss became NaN or Inf."""


class TrainingInterrupted(Exception):
    """A stop signal arrived; last.pt holds the state to resume from."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum


# ---------------------------------------------------------------------------------------------
# Model and data


def check_data(cfg: Config, data: OceanData) -> None:
    """ConfigError naming the key where the config and the data stores disagree."""
    where = data.data_dir / "ocean.zarr"
    if len(cfg.data.depths) != data.n_levels or not np.allclose(cfg.data.depths, data.depths,
                                                                 rtol=1e-4):
        raise ConfigError(
            f"config key 'data.depths' = {cfg.data.depths} ({len(cfg.data.depths)} levels, "
            f"{4 * len(cfg.data.depths) + 1} ocean channels) disagrees with the depths of {where}: "
            f"{data.depths} ({4 * data.n_levels + 1} channels)")
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


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the ocean cells: pred, target (B, C, H, W), mask (C, H, W) bool."""
    error = torch.where(mask, pred.float() - target.float(), 0.0)
    return error.square().sum() / (mask.sum() * pred.shape[0])


class WindowLoss(nn.Module):
    """The mean one-day loss over an unrolled window of a batch: what DDP wraps and AdamW
    minimises. Normalisation runs here, on the device; bf16 autocast covers the model only (the
    loss and a hybrid's physics core stay float32)."""

    def __init__(self, model: ForecastModel, normalizer: Normalizer, amp: bool,
                 channels_last: bool) -> None:
        super().__init__()
        self.model = model
        self.normalizer = normalizer
        self.amp = amp
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def forward(self, state: torch.Tensor, forcing: torch.Tensor,
                doy: torch.Tensor) -> torch.Tensor:
        """state (B, k+1, C, H, W) physical, NaN on land; forcing (B, k, F, H, W); doy (B, k+1)."""
        norm = self.normalizer
        x = norm.normalize_state(state[:, 0], doy[:, 0])
        hidden, loss = None, 0.0
        for k in range(forcing.shape[1]):
            f = norm.normalize_forcing(forcing[:, k]).contiguous(memory_format=self.memory_format)
            x = x.contiguous(memory_format=self.memory_format)
            with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.amp):
                x, hidden = self.model(x, f, doy[:, k], doy[:, k + 1], hidden)
            target = norm.normalize_state(state[:, k + 1], doy[:, k + 1])
            loss = loss + masked_mse(x, target, norm.state_mask)
        return loss / forcing.shape[1]


class EpochSampler(Sampler[int]):
    """This process's share of the epoch's seeded shuffle (DistributedSampler, full batches only),
    cut to ``max_steps`` batches and started at batch ``start``, so a resumed epoch continues
    with the very batch an uninterrupted one would see next."""

    def __init__(self, dataset: WindowDataset, world: int, rank: int, seed: int,
                 batch_size: int, max_steps: int | None) -> None:
        self.shuffle = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True,
                                          seed=seed, drop_last=True)
        self.batch_size = batch_size
        self.steps = len(self.shuffle) // batch_size
        if max_steps is not None:
            self.steps = min(self.steps, max_steps)
        self.start = 0

    def set_position(self, epoch: int, start: int) -> None:
        self.shuffle.set_epoch(epoch)
        self.start = start

    def __iter__(self):
        indices = list(self.shuffle)
        return iter(indices[self.start * self.batch_size : self.steps * self.batch_size])

    def __len__(self) -> int:
        return (self.steps - self.start) * self.batch_size


# ---------------------------------------------------------------------------------------------
# Distributed runs


@dataclass
class Processes:
    """This process's place in a torchrun job (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @classmethod
    def start(cls) -> Processes:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        cuda = torch.cuda.is_available()
        if world == 1:
            return cls(0, 1, torch.device("cuda" if cuda else "cpu"))
        device = torch.device(f"cuda:{int(os.environ['LOCAL_RANK'])}" if cuda else "cpu")
        if cuda:
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if cuda else "gloo")
        return cls(dist.get_rank(), world, device)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over all processes."""
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        if self.world > 1:
            dist.all_reduce(t)
        return t.tolist()

    def close(self) -> None:
        if self.world > 1:
            dist.destroy_process_group()


class StopSignals:
    """Records SIGTERM / SIGUSR1 instead of dying, so the loop can save and stop cleanly."""

    def __enter__(self) -> StopSignals:
        self.received = 0
        self.previous = {s: signal.signal(s, self._handle) for s in STOP_SIGNALS}
        return self

    def _handle(self, signum, frame) -> None:
        self.received = signum

    def __exit__(self, *exc) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)


# ---------------------------------------------------------------------------------------------
# Checkpoints


def inputs_digest(data_dir: str | Path) -> str:
    """Digest of the data stores training reads: the bytes of mask.nc and stats.nc and each zarr
    store's root metadata (provenance attributes with the config digest, variables, shapes)."""
    data_dir = Path(data_dir)
    digest = hashlib.sha256()
    for name in DATA_STORES:
        path = data_dir / name
        for file in [path / m for m in ZARR_METADATA] if path.is_dir() else [path]:
            if file.is_file():
                digest.update(f"{file.relative_to(data_dir)}\0".encode() + file.read_bytes())
    return digest.hexdigest()


def fingerprint(cfg: Config, model_name: str, data_dir: str | Path) -> str:
    """Digest of what a resumed run must share with the run that wrote last.pt: the settings
    that shape the weights (not the epoch counts nor how fast it runs; `physics` only for a
    model with the physics core) and the input data (:func:`inputs_digest`)."""
    dump = cfg.model_dump(mode="json")
    train = {k: v for k, v in dump["train"].items() if k not in RESUMABLE_CHANGES}
    train["multistep"] = dict(train["multistep"], epochs=None)
    model = dump["models"][model_name]
    keep = {"data": dump["data"], "grid": dump["grid"], "train": train, "model": model,
            "name": model_name, "physics": dump["physics"] if uses_physics(model) else None,
            "inputs": inputs_digest(data_dir)}
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


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


@dataclass
class Progress:
    """Where training stands; with the weights and optimiser it is all that last.pt holds."""

    epoch: int = 0  # epochs completed
    step: int = 0  # steps completed in the current epoch
    loss_sum: float = 0.0  # sum of the current epoch's step losses
    seconds: float = 0.0  # time spent in the current epoch
    history: list[dict] = field(default_factory=list)
    best_valid: float = math.inf
    best_state: dict | None = None


# ---------------------------------------------------------------------------------------------
# The loop


class Trainer:
    def __init__(self, cfg: Config, model_name: str, data_dir: str | Path, out_dir: str | Path,
                 procs: Processes) -> None:
        self.cfg, self.model_name, self.procs = cfg, model_name, procs
        self.out_dir = Path(out_dir)
        self.last_path = self.out_dir / "last.pt"
        tc = cfg.train
        self.model, self.normalizer, data = build(cfg, model_name, data_dir, procs.device)
        self.fingerprint = fingerprint(cfg, model_name, data_dir)
        if tc.channels_last:
            self.model.to(memory_format=torch.channels_last)
        amp = tc.amp and procs.device.type == "cuda"
        self.loss = WindowLoss(self.model, self.normalizer, amp, tc.channels_last)
        net = self.loss
        if procs.world > 1:
            net = DistributedDataParallel(net, broadcast_buffers=False)
        self.net = torch.compile(net) if tc.compile else net
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=tc.lr,
                                           weight_decay=tc.weight_decay)
        self.epochs = tc.epochs + tc.multistep.epochs
        self.loaders: dict[int, DataLoader] = {}
        self.data = data
        self.valid_set = WindowDataset(data, cfg.data.years.split("valid"), steps=1)
        self.progress = Progress()

    def steps_of(self, epoch: int) -> int:
        """Days in the loss window of an epoch: 1, then multistep.steps when fine-tuning."""
        return 1 if epoch < self.cfg.train.epochs else self.cfg.train.multistep.steps

    def loader(self, steps: int) -> DataLoader:
        if steps not in self.loaders:
            tc = self.cfg.train
            dataset = WindowDataset(self.data, self.cfg.data.years.split("train"), steps)
            sampler = EpochSampler(dataset, self.procs.world, self.procs.rank, tc.seed,
                                   tc.batch_size, tc.max_steps_per_epoch)
            if sampler.steps == 0:
                raise ConfigError(f"config key 'train.batch_size' = {tc.batch_size}: the "
                                  f"{len(dataset)} training windows give no full batch on "
                                  f"{self.procs.world} process(es)")
            self.loaders[steps] = DataLoader(
                dataset, batch_size=tc.batch_size, sampler=sampler, num_workers=tc.num_workers,
                pin_memory=self.procs.device.type == "cuda", drop_last=True,
                persistent_workers=tc.num_workers > 0)
        return self.loaders[steps]

    def to_device(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        return tuple(batch[k].to(self.procs.device, non_blocking=True)
                     for k in ("state", "forcing", "doy"))

    # -- checkpoints ------------------------------------------------------------------------

    def state_payload(self) -> dict:
        p = self.progress
        return {
            "fingerprint": self.fingerprint, "model": self.model_name, "world": self.procs.world,
            "config": self.cfg.model_dump(mode="json"), "version": __version__,
            "state_dict": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "epoch": p.epoch, "step": p.step, "loss_sum": p.loss_sum, "seconds": p.seconds,
            "history": p.history, "best_valid": p.best_valid, "best_state": p.best_state,
            "rng": torch.get_rng_state(),
        }

    def save_last(self) -> None:
        if self.procs.main:
            save(self.state_payload(), self.last_path)

    def resume(self) -> None:
        """Continue from last.pt if it is of an unfinished run with this configuration and
        these input data; otherwise start from scratch."""
        if not self.last_path.exists():
            log.info("no %s: starting from scratch", self.last_path)
            return
        payload = read(self.last_path, self.procs.device)
        if payload.get("fingerprint") != self.fingerprint:
            log.warning("not resuming from %s: it was written for a different configuration or "
                        "input data (data, grid, physics, train, models.%s or the stores in the "
                        "data dir changed); starting from scratch", self.last_path,
                        self.model_name)
            return
        train_cfg = payload["config"]["train"]
        planned = train_cfg["epochs"] + train_cfg["multistep"]["epochs"]
        if payload["step"] == 0 and payload["epoch"] >= min(planned, self.epochs):
            log.info("not resuming from %s: its run finished (%d epochs); starting from scratch",
                     self.last_path, payload["epoch"])
            return
        self.model.load_state_dict(payload["state_dict"])
        self.optimizer.load_state_dict(payload["optimizer"])
        torch.set_rng_state(payload["rng"].cpu())
        self.progress = Progress(payload["epoch"], payload["step"], payload["loss_sum"],
                                 payload["seconds"], payload["history"], payload["best_valid"],
                                 payload["best_state"])
        if payload["world"] != self.procs.world and self.progress.step:
            log.warning("last.pt was written by %d process(es), this run has %d: epoch %d "
                        "restarts from its first batch", payload["world"], self.procs.world,
                        self.progress.epoch + 1)
            self.progress.step, self.progress.loss_sum, self.progress.seconds = 0, 0.0, 0.0
        log.info("resuming from %s at epoch %d, step %d", self.last_path,
                 self.progress.epoch + 1, self.progress.step)

    def write_outputs(self, final: bool) -> None:
        """history.csv, and at the end of training checkpoint.pt (the best epoch's weights): a
        run that is stopped early leaves no checkpoint.pt, so Snakemake sees the job as not
        done and runs it again (resuming from last.pt)."""
        if not self.procs.main:
            return
        p = self.progress
        if final:
            row = min(p.history, key=lambda r: r["valid_loss"])
            save({"model": self.model_name, "config": self.cfg.model_dump(mode="json"),
                  "state_dict": p.best_state, "epoch": row["epoch"],
                  "valid_loss": row["valid_loss"], "version": __version__},
                 self.out_dir / "checkpoint.pt")
        with atomic_path(self.out_dir / "history.csv") as tmp:
            pd.DataFrame(p.history).to_csv(tmp, index=False)

    # -- epochs -----------------------------------------------------------------------------

    @torch.no_grad()
    def validate(self) -> float:
        """Mean one-day loss over the validation windows (each process a share, no padding)."""
        self.model.eval()
        days = range(0, len(self.valid_set), self.cfg.train.valid_stride_days)
        mine = list(days[self.procs.rank :: self.procs.world])
        loader = DataLoader(self.valid_set, batch_size=self.cfg.train.batch_size, sampler=mine,
                            num_workers=self.cfg.train.num_workers,
                            pin_memory=self.procs.device.type == "cuda")
        total = 0.0
        for batch in loader:
            state = batch["state"]
            total += float(self.loss(*self.to_device(batch))) * state.shape[0]
        total, count = self.procs.sum([total, len(mine)])
        self.model.train()
        return total / count

    @property
    def machine(self) -> str:
        """Where the epoch ran, for the speed table: host, processor, processes."""
        label = machine_label(self.procs.device)
        return f"{label['hostname']}: {label['device_name']} x {self.procs.world} processes"

    def run_epoch(self, stop: StopSignals) -> None:
        """The rest of the current epoch's steps, validation, outputs and last.pt."""
        p = self.progress
        started = time.perf_counter() - p.seconds
        self.train_steps(stop, started)
        valid = self.validate()
        if not math.isfinite(valid):
            raise TrainingDiverged(
                f"{self.model_name}: the validation loss is {valid} after epoch {p.epoch + 1}; "
                f"stopped without saving, {self.last_path} keeps the last good state")
        row = {"epoch": p.epoch + 1, "train_loss": p.loss_sum / max(p.step, 1),
               "valid_loss": valid, "seconds": time.perf_counter() - started,
               "machine": self.machine, **self.model.physical_coefficients(),
               **self.model.step_diagnostics()}
        improved = valid < p.best_valid
        if improved:
            p.best_valid = valid
            p.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        p.history.append(row)
        p.epoch, p.step, p.loss_sum, p.seconds = p.epoch + 1, 0, 0.0, 0.0
        self.write_outputs(final=False)
        self.save_last()
        log.info("%s epoch %d/%d: train loss %.5g, valid loss %.5g, %.1f s%s", self.model_name,
                 row["epoch"], self.epochs, row["train_loss"], valid, row["seconds"],
                 "".join(f", {k} {v:.4g}" for k, v in row.items() if k not in ROW_KEYS))
        if self.procs.sum([float(stop.received)])[0]:
            self.stop(stop.received)

    def train_steps(self, stop: StopSignals, started: float) -> None:
        p = self.progress
        loader = self.loader(self.steps_of(p.epoch))
        loader.sampler.set_position(p.epoch, p.step)
        self.model.train()
        with tqdm(total=loader.sampler.steps, initial=p.step, unit="step", mininterval=2.0,
                  desc=f"{self.model_name} epoch {p.epoch + 1}/{self.epochs}",
                  disable=not self.procs.main) as bar:
            for batch in loader:
                loss = self.net(*self.to_device(batch))
                loss_sum, stops = self.procs.sum([loss.item(), float(stop.received)])
                value = loss_sum / self.procs.world
                if not math.isfinite(value):
                    raise TrainingDiverged(
                        f"{self.model_name}: the training loss is {value} at epoch "
                        f"{p.epoch + 1}, step {p.step + 1}; stopped without saving, "
                        f"{self.last_path} keeps the last good state (a smaller train.lr may "
                        "help)")
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                p.step += 1
                p.loss_sum += value
                bar.set_postfix(loss=f"{value:.4g}", refresh=False)
                bar.update()
                if stops:
                    p.seconds = time.perf_counter() - started
                    self.stop(stop.received)

    def stop(self, signum: int) -> None:
        """Save last.pt and end the run (``signum`` 0: another process got the signal)."""
        signum = signum or signal.SIGTERM
        self.save_last()
        p = self.progress
        raise TrainingInterrupted(
            signum, f"{self.model_name}: {signal.Signals(signum).name} received; saved "
            f"{self.last_path} at epoch {p.epoch + 1}, step {p.step}; rerun with --resume")

    def hold_in_memory(self) -> None:
        """Preload the train and valid days when they fit into ``train.cache_gb``."""
        years = self.cfg.data.years
        days = self.data.days_of(years.split("train") + years.split("valid"))
        if self.data.nbytes(days) <= self.cfg.train.cache_gb * 1e9:
            self.data.preload(days)
            log.info("holding the %.2f GB of the train and valid days in memory",
                     self.data.nbytes(days) / 1e9)

    def fit(self, stop: StopSignals) -> pd.DataFrame:
        if self.progress.epoch < self.epochs:
            self.hold_in_memory()
        while self.progress.epoch < self.epochs:
            self.run_epoch(stop)
        if self.progress.history:
            self.write_outputs(final=True)
        return pd.DataFrame(self.progress.history)


ROW_KEYS = ("epoch", "train_loss", "valid_loss", "seconds", "machine")


def train(cfg: Config, model_name: str, data_dir: str | Path, out_dir: str | Path,
          resume: bool = False) -> pd.DataFrame:
    """Train ``models.<model_name>`` on the stores in ``data_dir``; return the history.

    Under torchrun each process trains on its share of every batch (DDP); rank 0 writes.
    """
    procs = Processes.start()
    try:
        with StopSignals() as stop:
            trainer = Trainer(cfg, model_name, data_dir, out_dir, procs)
            if resume:
                trainer.resume()
            if procs.main:
                log.info("%s: %s parameters, %d process(es) on %s, %d epochs", model_name,
                         f"{sum(p.numel() for p in trainer.model.parameters()):,}", procs.world,
                         procs.device, trainer.epochs)
            return trainer.fit(stop)
    finally:
        procs.close()


def cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="config file (YAML or JSON)")
    parser.add_argument("--model", required=True, help="a name under the config's models:")
    parser.add_argument("--data-dir", required=True, type=Path, help="results/{run}/data")
    parser.add_argument("--out-dir", required=True, type=Path, help="results/{run}/models/NAME")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--resume", action="store_true",
                        help="continue from OUT_DIR/last.pt when it is of an unfinished run with "
                             "the same settings and input data")


def cli_main(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        train(load(args.config), args.model, args.data_dir, args.out_dir, resume=args.resume)
    except TrainingInterrupted as stop:
        log.warning("%s", stop)
        raise SystemExit(128 + stop.signum) from None
