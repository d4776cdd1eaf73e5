"""Autoregressive rollouts of a trained model over the test years, driven by the true forcing.

Two kinds of run, both written to one zarr store in physical units with NaN on land:

- ``prediction`` (start, lead, channel, lat, lon): from start dates every
  ``evaluate.start_every_days`` days from 1 January of the first test year, as long as
  ``evaluate.max_lead`` days fit before the end of the test years; lead 1..max_lead days.
- ``long_prediction`` (long_start, day, channel, lat, lon): one run of
  ``evaluate.long_rollout_days`` days from 1 January of each test year (stability, Figure 4).

Each forecast is denormalised with the climatology of its own date (``day_index``). Stateful
models carry their hidden state through the run. A run stops on the first day an ocean value of
its forecast is non-finite (its later days stay NaN); the store's attribute
``first_nonfinite_day`` records that day per run. The store's format, its writer
:func:`neuralogcm.stores.write_forecasts` (which also writes the reference forecasts of
reference.py) and its reader live in stores.py. The store's attributes record the speed of the
long runs (seconds per simulated day, simulated years per day) and the machine that ran them; for
hybrid models also the physics core alone, stepped in physical units, as the numerical reference.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from neuralogcm import __version__
from neuralogcm.channels import channel_level
from neuralogcm.config import Config, ConfigError, load, uses_physics
from neuralogcm.model_options import model_options
from neuralogcm.runtime import machine_label
from neuralogcm.stores import write_forecasts

log = logging.getLogger(__name__)

DAYS_PER_YEAR = 365.0


def _take(hidden, rows: torch.Tensor):
    """The recurrent state of the batch rows ``rows`` (tensors, tuples, lists, None)."""
    if isinstance(hidden, torch.Tensor):
        return hidden[rows.to(hidden.device)]
    if isinstance(hidden, tuple | list):
        return type(hidden)(_take(h, rows) for h in hidden)
    return hidden


class Rollout:
    """Steps a batch of runs forward, one day at a time, with the true forcing.

    ``days(starts, lengths)`` runs from the data days ``starts`` for ``lengths`` days each (in
    decreasing order) and yields, for lead day t + 1 = 1, 2, ..., (t, runs, forecasts): ``runs``
    (k,) the positions in ``starts`` of the k runs still going, forecasts (k, C, H, W) float32
    physical units with NaN on land. A run leaves the batch when it is done, or after the first
    day on which an ocean value of its forecast is non-finite: ``nonfinite`` maps its position to
    that lead day (its later days are never computed). ``timing`` maps a batch size to (seconds,
    steps) spent computing forecasts.
    """

    def __init__(self, model, normalizer, data, device: torch.device) -> None:
        self.model = model.eval()
        self.normalizer = normalizer
        self.data = data
        self.device = device
        self.ocean = data.mask[channel_level(data.n_levels)]  # (C, H, W) bool
        self.land = ~torch.as_tensor(self.ocean, device=device)
        self.timing: dict[int, tuple[float, int]] = {}
        self.nonfinite: dict[int, int] = {}

    def _doy(self, indices: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(self.data.day_indices[indices], device=self.device)

    @torch.inference_mode()
    def days(self, starts: list[int], lengths: list[int]
             ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        starts, lengths = np.asarray(starts), np.asarray(lengths)
        if (np.diff(lengths) > 0).any():
            raise ValueError("runs must come in decreasing order of length")
        first = int(starts.min())
        forcing_days = torch.from_numpy(  # every forcing day the runs need, read once
            self.data.forcings(slice(first, int((starts + lengths).max())))).to(self.device)
        state = torch.from_numpy(np.stack([self.data.state(int(i)) for i in starts]))
        state = self.normalizer.normalize_state(state.to(self.device), self._doy(starts))
        hidden, runs, finite = None, np.arange(len(starts)), np.ones(len(starts), bool)
        for t in range(int(lengths[0])):
            keep = finite & (lengths[runs] > t)
            if not keep.all():  # drop the runs that are done or non-finite
                rows = torch.as_tensor(np.flatnonzero(keep), device=self.device)
                state, hidden, runs = state[rows], _take(hidden, rows), runs[keep]
            if len(runs) == 0:
                return
            tic = time.perf_counter()
            days = starts[runs] + t
            forcing = self.normalizer.normalize_forcing(forcing_days[days - first])
            doy_next = self._doy(days + 1)
            state, hidden = self.model(state, forcing, self._doy(days), doy_next, hidden)
            phys = self.normalizer.denormalize_state(state, doy_next).masked_fill(self.land, np.nan)
            out = phys.float().cpu().numpy()  # synchronises the device
            seconds, steps = self.timing.get(len(runs), (0.0, 0))
            self.timing[len(runs)] = (seconds + time.perf_counter() - tic, steps + 1)
            finite = np.isfinite(np.where(self.ocean, out, 0.0)).all(axis=(1, 2, 3))
            self.nonfinite |= {int(r): t + 1 for r in runs[~finite]}
            yield t, runs, out

    def seconds_per_simulated_day(self) -> tuple[float, int]:
        """Wall seconds per simulated day of one run, from the steps with the smallest batch
        (one run when a long run outlasts the others), and that batch size."""
        batch = min(self.timing)
        seconds, steps = self.timing[batch]
        return seconds / (steps * batch), batch


def physics_core_speed(cfg: Config, data, device: torch.device) -> tuple[float, list[int]]:
    """Wall seconds per simulated day of the physics core alone (fixed coefficients), stepping
    the first test day's state in physical units for ``evaluate.speed_days`` days, and the
    sub-steps it took each day."""
    from neuralogcm.physics.core import CoreSettings, PhysicsCore

    mask = torch.as_tensor(data.mask, device=device)
    core = PhysicsCore(data.grid, list(data.depths), mask, CoreSettings.of(cfg.physics),
                       learnable=False).to(device)
    first = np.flatnonzero(data.dates.year.isin(cfg.data.years.split("test")))[0]
    state = torch.nan_to_num(torch.from_numpy(data.state(int(first)))[None].to(device))
    counts = []
    with torch.inference_mode():
        state = state + core(state)  # warm-up (allocations, kernel selection)
        _synchronize(device)
        tic = time.perf_counter()
        for _ in range(cfg.evaluate.speed_days):
            state = state + core(state)
            counts.append(core.last_substeps)
        _synchronize(device)
    return (time.perf_counter() - tic) / cfg.evaluate.speed_days, counts


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def write_rollouts(path: Path, cfg: Config, model_name: str, model, normalizer, data,
                   device: torch.device) -> dict:
    """Run every rollout of one model and write the store at ``path`` atomically
    (:func:`neuralogcm.stores.write_forecasts`); return its attributes (speed and machine among
    them)."""
    rollout = Rollout(model, normalizer, data, device)
    options = model_options(cfg.models[model_name])

    def describe() -> dict:
        seconds_per_day, batch = rollout.seconds_per_simulated_day()
        attrs = {
            "model": model_name,
            "arch": options.arch,
            "source": f"neuralogcm {__version__} rollout",
            **machine_label(device),
            "seconds_per_simulated_day": seconds_per_day,
            "simulated_years_per_day": 86400.0 / seconds_per_day / DAYS_PER_YEAR,
            "speed_batch_size": batch,
        }
        if uses_physics(options):
            core, counts = physics_core_speed(cfg, data, device)
            attrs["physics_core_seconds_per_simulated_day"] = core
            attrs["physics_core_simulated_years_per_day"] = 86400.0 / core / DAYS_PER_YEAR
            attrs["physics_core_substeps"] = f"{min(counts)}-{max(counts)}"
        return attrs

    return write_forecasts(path, cfg, model_name, rollout, data, describe)


def cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path, help="rollouts/{model}.zarr")
    parser.add_argument("--threads", type=int, default=1)


def cli_main(args: argparse.Namespace) -> None:
    cfg = load(args.config)
    if args.model not in cfg.models:
        raise ConfigError(f"model {args.model!r} is not in the config's models: {list(cfg.models)}")
    torch.set_num_threads(args.threads)
    from neuralogcm.checkpoint import load_checkpoint
    from neuralogcm.data import OceanData

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, normalizer, _ = load_checkpoint(args.checkpoint, args.data_dir, device)
    attrs = write_rollouts(args.out, cfg, args.model, model, normalizer, OceanData(args.data_dir),
                           device)
    log.info("%s: %.4f s per simulated day (%.1f SYPD) on %s", args.model,
             attrs["seconds_per_simulated_day"], attrs["simulated_years_per_day"],
             attrs["device_name"])
