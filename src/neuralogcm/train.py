"""`neuralogcm train`: fit one model of the config to the train years, validate every epoch.

    neuralogcm train --config C --model NAME --data-dir DATA --out-dir models/NAME --threads N
    torchrun --standalone --nproc-per-node=G -m neuralogcm.cli train ...        (DDP over G GPUs)

Loss: the one-day MSE in normalised space over ocean cells only (paper Eq. 10), averaged over the
days of an unrolled window. Stages (``train.stages()``): one-day windows, then each fine-tuning
stage of ``train.multistep`` (one or a list: k-day windows, the model's own forecast fed back,
validated on k-day windows too). AdamW at each stage's rate and ``train.weight_decay``, constant
or cosine-decayed to 1/20 over each stage (``train.lr_schedule``); ``train.patience`` ends a stage
after that many epochs without a lower validation loss, and the checkpoint keeps the best epoch
of the last stage. ``train.batch_size`` samples per process. Every model of the registry trains
alike through :class:`~neuralogcm.models.base.ForecastModel`; a stateful model's hidden state
starts empty in each window and is carried across its days.

Outputs in --out-dir (rank 0 alone writes): history.csv (epoch, train_loss, valid_loss, seconds,
the model's learned coefficients in m^2/s and the physics core's sub-steps), updated every
epoch; last.pt (everything needed to continue), every epoch; checkpoint.pt (the weights of the
best validation epoch) once training has finished, so an interrupted job leaves none and
Snakemake runs it again. All three are written atomically.

Resuming: with ``--resume`` the last.pt of an unfinished run with the same settings and the same
input data (``checkpoint.fingerprint``; ``train.epochs`` may differ) continues exactly where it
stopped: the next step sees the same batch and gives the same loss as an uninterrupted run; so
does a finished run that this one extends by fine-tuning stages (``checkpoint.shorter_runs``).
Any other last.pt (a finished run, other settings, rebuilt stores) is ignored and training
starts from scratch, so a rerun that Snakemake decides on (-f, changed settings or inputs)
really retrains. SIGTERM and SIGUSR1 (what Slurm sends before a time limit or preemption)
save last.pt after the current step and end the process with status 128 + signal, so the job
is requeued or rerun with --resume.
A NaN or Inf loss stops training with a message naming the step; last.pt stays the last good one.
"""

from __future__ import annotations

import argparse
import logging
import math
import signal
import time
from functools import partial
from pathlib import Path

import pandas as pd
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.checkpoint import checkpoint as recompute
from torch.utils.data import DataLoader
from tqdm import tqdm

from neuralogcm import checkpoint
from neuralogcm.config import Config, ConfigError, Stage, load
from neuralogcm.data import EpochSampler, Normalizer, WindowDataset
from neuralogcm.errors import UserError
from neuralogcm.io import atomic_path
from neuralogcm.models.base import ForecastModel
from neuralogcm.runtime import Ranks, StopSignals, TrainingInterrupted

log = logging.getLogger(__name__)


class TrainingDiverged(UserError):
    """The loss became NaN or Inf."""


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the ocean cells: pred, target (B, C, H, W), mask (C, H, W) bool."""
    error = torch.where(mask, pred.float() - target.float(), 0.0)
    return error.square().sum() / (mask.sum() * pred.shape[0])


def adamw(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW over the model's parameters, fused (one kernel for all of them) on CPU and CUDA:
    PyTorch's CPU default is a Python loop over the parameters, 5.6 ms a step for the demo's
    hybrid against 0.8 ms fused (equal to round-off)."""
    fused = all(p.device.type in ("cpu", "cuda") for p in model.parameters())
    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay,
                             fused=fused or None)


class WindowLoss(nn.Module):
    """The mean one-day loss over an unrolled window of a batch: what DDP wraps and AdamW
    minimises. Normalisation runs here, on the device; bf16 autocast covers the model only (the
    loss and a hybrid's physics core stay float32). A k-day window recomputes each day in backward:
    memory of one day's graph, not k (the study's hybrid, 30 days of batch 8: 9.5 GB without)."""

    def __init__(self, model: ForecastModel, normalizer: Normalizer, amp: bool,
                 channels_last: bool) -> None:
        super().__init__()
        self.model, self.normalizer, self.amp = model, normalizer, amp
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def forward(self, state: torch.Tensor, forcing: torch.Tensor,
                doy: torch.Tensor) -> torch.Tensor:
        """state (B, k+1, C, H, W) physical, NaN on land; forcing (B, k, F, H, W); doy (B, k+1)."""
        norm = self.normalizer
        x = norm.normalize_state(state[:, 0], doy[:, 0])
        hidden, loss, step = None, 0.0, self.model
        if forcing.shape[1] > 1 and torch.is_grad_enabled():
            step = partial(recompute, self.model, use_reentrant=False)
        for k in range(forcing.shape[1]):
            f = norm.normalize_forcing(forcing[:, k]).contiguous(memory_format=self.memory_format)
            x = x.contiguous(memory_format=self.memory_format)
            with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.amp):
                x, hidden = step(x, f, doy[:, k], doy[:, k + 1], hidden)
            target = norm.normalize_state(state[:, k + 1], doy[:, k + 1])
            loss = loss + masked_mse(x, target, norm.state_mask)
        return loss / forcing.shape[1]


class Trainer:
    """The training loop of one model on this process (see the module doc)."""

    def __init__(self, cfg: Config, model_name: str, data_dir: str | Path, out_dir: str | Path,
                 ranks: Ranks) -> None:
        self.cfg, self.model_name, self.ranks, self.out_dir = cfg, model_name, ranks, Path(out_dir)
        self.last_path = self.out_dir / "last.pt"
        tc = cfg.train
        self.model, self.normalizer, self.data = checkpoint.build(cfg, model_name, data_dir,
                                                                  ranks.device)
        self.fingerprint = checkpoint.fingerprint(cfg, model_name, data_dir)
        if tc.channels_last:
            self.model.to(memory_format=torch.channels_last)
        amp = tc.amp and ranks.device.type == "cuda"
        self.loss = net = WindowLoss(self.model, self.normalizer, amp, tc.channels_last)
        if ranks.world > 1:
            net = DistributedDataParallel(net, broadcast_buffers=False)
        self.net = torch.compile(net) if tc.compile else net
        self.optimizer = adamw(self.model, tc.lr, tc.weight_decay)
        self.stages = tc.stages()  # one-day training, then fine-tuning
        self.epochs = sum(stage.epochs for stage in self.stages)
        self.loaders: dict[tuple, DataLoader] = {}
        self.valid_sets: dict[int, WindowDataset] = {}
        self.progress = checkpoint.Progress()

    def stage_of(self, epoch: int) -> tuple[Stage, range]:
        """The stage (of train.stages()) that ``epoch`` belongs to, and that stage's epochs."""
        start = 0
        for stage in self.stages:
            if epoch < start + stage.epochs:
                break
            start += stage.epochs
        return stage, range(start, start + stage.epochs)

    def lr_of(self, epoch: int) -> float:
        """The stage's rate, cosine-decayed to 1/20 over its epochs when train.lr_schedule."""
        stage, epochs = self.stage_of(epoch)
        if self.cfg.train.lr_schedule == "constant" or len(epochs) == 1:
            return stage.lr
        done = (epoch - epochs.start) / (len(epochs) - 1)
        return stage.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * done)))

    def loader(self, stage: Stage) -> DataLoader:
        key = (stage.steps, stage.max_steps)
        if key not in self.loaders:
            tc, steps = self.cfg.train, stage.steps
            dataset = WindowDataset(self.data, self.cfg.data.years.split("train"), steps)
            sampler = EpochSampler(dataset, self.ranks.world, self.ranks.rank, tc.seed,
                                   tc.batch_size, stage.max_steps)
            if sampler.steps == 0:
                raise ConfigError(f"config key 'train.batch_size' = {tc.batch_size}: the "
                                  f"{len(dataset)} training windows give no full batch on "
                                  f"{self.ranks.world} process(es)")
            self.loaders[key] = DataLoader(
                dataset, batch_size=tc.batch_size, sampler=sampler, num_workers=tc.num_workers,
                pin_memory=self.ranks.device.type == "cuda", drop_last=True,
                persistent_workers=tc.num_workers > 0)
        return self.loaders[key]

    def to_device(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        return tuple(batch[k].to(self.ranks.device, non_blocking=True)
                     for k in ("state", "forcing", "doy"))

    # -- checkpoints ------------------------------------------------------------------------

    def save_last(self) -> None:
        if self.ranks.main:
            checkpoint.save(checkpoint.last_payload(
                self.cfg, self.model_name, self.fingerprint, self.ranks.world, self.model,
                self.optimizer, self.progress), self.last_path)

    def resume(self) -> None:
        """Continue from last.pt if :func:`~neuralogcm.checkpoint.resumable` says so."""
        shorter = checkpoint.shorter_runs(self.cfg, self.model_name, self.data.data_dir)
        payload = checkpoint.resumable(self.last_path, self.fingerprint, self.model_name,
                                       self.epochs, self.ranks.device, shorter)
        if payload is not None:
            p = self.progress = checkpoint.restore(payload, self.model, self.optimizer,
                                                   self.ranks.world)
            for row in p.history:  # written before histories had a steps column
                stage = self.stage_of(row["epoch"] - 1)[0]
                row.setdefault("steps", self.loader(stage).sampler.steps)
            log.info("resuming from %s at epoch %d, step %d", self.last_path, p.epoch + 1, p.step)

    def write_outputs(self, final: bool) -> None:
        """history.csv, and at the end checkpoint.pt (the last stage's best epoch): a run
        stopped early leaves none, so Snakemake runs the job again (resuming from last.pt)."""
        if not self.ranks.main:
            return
        if final:
            checkpoint.save(checkpoint.final_payload(self.cfg, self.model_name, self.progress),
                            self.out_dir / "checkpoint.pt")
        with atomic_path(self.out_dir / "history.csv") as tmp:
            pd.DataFrame(self.progress.history).to_csv(tmp, index=False)

    # -- epochs -----------------------------------------------------------------------------

    @torch.no_grad()
    def validate(self, steps: int) -> float:
        """Mean loss over the validation windows of ``steps`` days, one starting every
        train.valid_stride_days (each process a share, no padding)."""
        self.model.eval()
        valid_set = self.valid_sets.setdefault(steps, WindowDataset(
            self.data, self.cfg.data.years.split("valid"), steps))
        days = range(0, len(valid_set), self.cfg.train.valid_stride_days)
        mine = list(days[self.ranks.rank :: self.ranks.world])
        loader = DataLoader(valid_set, batch_size=self.cfg.train.batch_size, sampler=mine,
                            num_workers=self.cfg.train.num_workers,
                            pin_memory=self.ranks.device.type == "cuda")
        total = 0.0
        for batch in loader:
            total += float(self.loss(*self.to_device(batch))) * batch["state"].shape[0]
        total, count = self.ranks.sum([total, len(mine)])
        self.model.train()
        return total / count

    def run_epoch(self, stop: StopSignals) -> None:
        """The rest of the current epoch's steps, validation, outputs and last.pt."""
        p = self.progress
        started = time.perf_counter() - p.seconds
        self.train_steps(stop, started)
        stage, epochs = self.stage_of(p.epoch)
        valid = self.validate(steps := stage.steps)
        if not math.isfinite(valid):
            raise TrainingDiverged(
                f"{self.model_name}: the validation loss is {valid} after epoch {p.epoch + 1}; "
                f"stopped without saving, {self.last_path} keeps the last good state")
        row = {"epoch": p.epoch + 1, "train_loss": p.loss_sum / max(p.step, 1),
               "valid_loss": valid, "seconds": time.perf_counter() - started,
               "machine": self.ranks.describe(), "window_days": steps, "steps": p.step,
               "lr": self.lr_of(p.epoch), **self.model.physical_coefficients(),
               **self.model.step_diagnostics()}
        if valid < p.best_valid or p.epoch == epochs.start:  # a new stage starts its own best
            p.best_valid, p.best_epoch = valid, p.epoch + 1
            p.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        p.history.append(row)
        p.epoch, p.step, p.loss_sum, p.seconds = p.epoch + 1, 0, 0.0, 0.0
        patience = self.cfg.train.patience
        if patience and p.epoch < epochs.stop and p.epoch - p.best_epoch >= patience:
            log.info("%s: no lower validation loss in %d epochs since epoch %d: the stage ends "
                     "at epoch %d of %d", self.model_name, patience, p.best_epoch, p.epoch,
                     epochs.stop)
            p.epoch = epochs.stop
        self.write_outputs(final=False)
        self.save_last()
        log.info("%s epoch %d/%d: train loss %.5g, valid loss %.5g, %.1f s%s", self.model_name,
                 row["epoch"], self.epochs, row["train_loss"], valid, row["seconds"],
                 "".join(f", {k} {v:.4g}" for k, v in row.items() if k not in ROW_KEYS))
        if self.ranks.sum([float(stop.received)])[0]:
            self.stop(stop.received)

    def train_steps(self, stop: StopSignals, started: float) -> None:
        p = self.progress
        loader = self.loader(self.stage_of(p.epoch)[0])
        loader.sampler.set_position(p.epoch, p.step)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_of(p.epoch)
        self.model.train()
        with tqdm(total=loader.sampler.steps, initial=p.step, unit="step", mininterval=2.0,
                  desc=f"{self.model_name} epoch {p.epoch + 1}/{self.epochs}",
                  disable=not self.ranks.main) as bar:
            for batch in loader:
                loss = self.net(*self.to_device(batch))
                loss_sum, stops = self.ranks.sum([loss.item(), float(stop.received)])
                value = loss_sum / self.ranks.world
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

    def fit(self, stop: StopSignals) -> pd.DataFrame:
        if self.progress.epoch < self.epochs:  # train and valid days in memory if they fit
            years = self.cfg.data.years
            self.data.hold(years.split("train") + years.split("valid"), self.cfg.train.cache_gb)
        while self.progress.epoch < self.epochs:
            self.run_epoch(stop)
        if self.progress.history:
            self.write_outputs(final=True)
        return pd.DataFrame(self.progress.history)


ROW_KEYS = ("epoch", "train_loss", "valid_loss", "seconds", "machine", "window_days", "steps", "lr")


def train(cfg: Config, model_name: str, data_dir: str | Path, out_dir: str | Path,
          resume: bool = False) -> pd.DataFrame:
    """Train ``models.<model_name>`` on the stores in ``data_dir``; return the history.

    Under torchrun each process trains on its share of every batch (DDP); rank 0 writes.
    """
    ranks = Ranks.start()
    try:
        with StopSignals() as stop:
            trainer = Trainer(cfg, model_name, data_dir, out_dir, ranks)
            if resume:
                trainer.resume()
            if ranks.main:
                log.info("%s: %s parameters, %d process(es) on %s, %d epochs", model_name,
                         f"{sum(p.numel() for p in trainer.model.parameters()):,}", ranks.world,
                         ranks.device, trainer.epochs)
            return trainer.fit(stop)
    finally:
        ranks.close()


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
