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
``first_nonfinite_day`` records that day per run. The reference forecasts (reference.py) are
written by the same :func:`write_forecasts`. The store's attributes record the speed of the
long runs (seconds per simulated day, simulated years per day) and the machine that ran them; for
hybrid models also the physics core alone, stepped in physical units, as the numerical reference.
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import xarray as xr
import zarr

from neuralogcm import __version__
from neuralogcm.channels import (
    CF,
    channel_level,
    channel_variable,
    n_ocean_channels,
    ocean_channel_names,
)
from neuralogcm.config import Config, ConfigError, load, uses_physics
from neuralogcm.errors import DataError
from neuralogcm.io import atomic_path
from neuralogcm.model_options import model_options
from neuralogcm.runtime import machine_label

log = logging.getLogger(__name__)

DAYS_PER_YEAR = 365.0
CHUNK_BYTES = 16e6  # target size of a stored chunk: one run, as many lead days as fit


def start_indices(dates: pd.DatetimeIndex, test_years: list[int], every: int,
                  max_lead: int) -> list[int]:
    """Indices into ``dates`` of the start dates: every ``every`` days from the first test day,
    each with ``max_lead`` days of the test years after it."""
    test = np.flatnonzero(dates.year.isin(test_years))
    if len(test) == 0:
        raise DataError(f"the data stores hold no day of the test years {test_years}")
    last = int(test[-1]) - max_lead
    starts = list(range(int(test[0]), last + 1, every))
    if not starts:
        raise ConfigError(f"evaluate.max_lead={max_lead} days do not fit into the {len(test)} "
                          f"days of the test years {test_years}")
    return starts


def long_start_indices(dates: pd.DatetimeIndex, test_years: list[int], days: int) -> list[int]:
    """Indices of 1 January of each test year, each with ``days`` days of data after it."""
    starts = []
    for year in test_years:
        first = np.flatnonzero((dates.year == year) & (dates.day_of_year == 1))
        if len(first) == 0:
            raise DataError(f"the data stores have no 1 January {year} (a test year)")
        if first[0] + days >= len(dates):
            raise ConfigError(f"evaluate.long_rollout_days={days} from 1 January {year} runs past "
                              f"the last day of the data ({dates[-1].date()})")
        starts.append(int(first[0]))
    return starts


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


def lead_block(data, n_days: int) -> int:
    """Lead days per stored chunk: about CHUNK_BYTES of one run's float32 states."""
    state_bytes = 4 * n_ocean_channels(data.n_levels) * data.grid.shape[0] * data.grid.shape[1]
    return int(np.clip(CHUNK_BYTES // state_bytes, 1, n_days))


class _LeadWriter:
    """Collects the forecasts of one stored variable (run, lead, C, H, W) lead day by lead day and
    writes them a block of chunks at a time (each chunk holds ``block`` lead days of one run)."""

    def __init__(self, array: zarr.Array, block: int) -> None:
        self.array, self.block, self.first = array, block, 0
        self.buffer = np.full((array.shape[0], block, *array.shape[2:]), np.nan, np.float32)

    def put(self, run: int, t: int, field: np.ndarray) -> None:
        if t >= self.first + self.block:
            self.flush()
        self.buffer[run, t - self.first] = field

    def flush(self) -> None:
        last = min(self.first + self.block, self.array.shape[1])
        if last > self.first:
            self.array[:, self.first:last] = self.buffer[:, : last - self.first]
        self.first = last
        self.buffer[:] = np.nan


def _strings(values: list[str]) -> np.ndarray:
    """Variable-length strings (zarr v3 has a specification for these, not for fixed-width)."""
    return np.array(values, dtype=object)


def _template(data, starts: list[int], long_starts: list[int], max_lead: int,
              long_days: int) -> xr.Dataset:
    """The store's layout: coordinates, CF attributes and lazy (unwritten) data variables."""
    import dask.array as da

    n_levels = data.n_levels
    names = ocean_channel_names(n_levels)
    variables = channel_variable(n_levels)
    levels = channel_level(n_levels)
    depth = np.where(np.array(variables) == "zos", 0.0, np.asarray(data.depths)[levels])
    h, w = data.grid.shape
    c = len(names)

    def lazy(n_runs: int, n_days: int):
        return da.full((n_runs, n_days, c, h, w), np.nan, dtype=np.float32,
                       chunks=(1, lead_block(data, n_days), c, h, w))

    start_dates = data.dates[starts]
    leads = np.arange(1, max_lead + 1)
    coords = {
        **data.grid.coords(),
        "start": ("start", start_dates.values, {"long_name": "first day of the run"}),
        "lead": ("lead", leads, {"units": "days", "long_name": "forecast lead time"}),
        "valid_time": (("start", "lead"),
                       (start_dates.values[:, None] + leads.astype("timedelta64[D]")),
                       {"standard_name": "time", "long_name": "date the forecast is valid for"}),
        "long_start": ("long_start", data.dates[long_starts].values,
                       {"long_name": "first day of the long run"}),
        "day": ("day", np.arange(1, long_days + 1), {"units": "days",
                                                     "long_name": "day of the long run"}),
        "channel": ("channel", _strings(names), {"long_name": "ocean channel (variable_level)"}),
        "variable": ("channel", _strings(variables),
                     {"long_name": "canonical variable of the channel"}),
        "depth": ("channel", depth, {"units": "m", "positive": "down",
                                     "long_name": "depth of the channel's level (0 for zos)"}),
        "units": ("channel", _strings([CF[v]["units"] for v in variables]),
                  {"long_name": "channel units"}),
        "standard_name": ("channel", _strings([CF[v]["standard_name"] for v in variables]),
                          {"long_name": "CF standard name of the channel"}),
    }
    note = "physical units given per channel by the 'units' coordinate; NaN on land"
    return xr.Dataset(
        {
            "prediction": (("start", "lead", "channel", "lat", "lon"),
                           lazy(len(starts), max_lead),
                           {"long_name": "forecast ocean state", "comment": note}),
            "long_prediction": (("long_start", "day", "channel", "lat", "lon"),
                                lazy(len(long_starts), long_days),
                                {"long_name": "long forecast ocean state (stability run)",
                                 "comment": note}),
        },
        coords=coords,
        attrs={"Conventions": "CF-1.10"},
    )


def write_forecasts(path: Path, cfg: Config, name: str, forecast, data,
                    describe: Callable[[], dict]) -> dict:
    """Run every run of ``forecast`` (a :class:`Rollout`, or anything with its ``days`` and
    ``nonfinite``) and write the store at ``path`` atomically; return its attributes:
    ``describe()`` (called after the runs), the config digest and ``first_nonfinite_day``
    (first day of a run -> the lead day it became non-finite and stopped, for the runs that
    did)."""
    ev = cfg.evaluate
    test_years = cfg.data.years.split("test")
    starts = start_indices(data.dates, test_years, ev.start_every_days, ev.max_lead)
    long_starts = long_start_indices(data.dates, test_years, ev.long_rollout_days)
    log.info("%s: %d start dates x %d days, %d long runs x %d days", name, len(starts),
             ev.max_lead, len(long_starts), ev.long_rollout_days)
    # One batch: a run from a date that is both a start date and a long-run start serves both.
    length = {i: ev.max_lead for i in starts}
    length |= {i: max(length.get(i, 0), ev.long_rollout_days) for i in long_starts}
    runs = sorted(length, key=lambda i: (-length[i], i))
    start_pos = {i: n for n, i in enumerate(starts)}
    long_pos = {i: n for n, i in enumerate(long_starts)}
    with atomic_path(path) as tmp:
        _template(data, starts, long_starts, ev.max_lead, ev.long_rollout_days).to_zarr(
            tmp, compute=False, consolidated=False)
        store = zarr.open_group(tmp, mode="r+")
        writers = {var: _LeadWriter(store[var], lead_block(data, n_days))
                   for var, n_days in (("prediction", ev.max_lead),
                                       ("long_prediction", ev.long_rollout_days))}
        for t, positions, fields in forecast.days(runs, [length[i] for i in runs]):
            for i, field in zip([runs[r] for r in positions], fields, strict=True):
                if i in start_pos and t < ev.max_lead:
                    writers["prediction"].put(start_pos[i], t, field)
                if i in long_pos:
                    writers["long_prediction"].put(long_pos[i], t, field)
        for writer in writers.values():
            writer.flush()
        stopped = {str(data.dates[runs[r]].date()): day for r, day in forecast.nonfinite.items()}
        for first_day, day in stopped.items():
            log.warning("%s: the run from %s became non-finite on day %d and was stopped there",
                        name, first_day, day)
        attrs = {**describe(), "config_digest": cfg.digest(), "first_nonfinite_day": stopped}
        store.attrs.update(attrs)
        with warnings.catch_warnings():  # consolidated metadata: not yet in the v3 spec
            warnings.simplefilter("ignore", zarr.errors.ZarrUserWarning)
            zarr.consolidate_metadata(tmp)
    return attrs


def write_rollouts(path: Path, cfg: Config, model_name: str, model, normalizer, data,
                   device: torch.device) -> dict:
    """Run every rollout of one model and write the store at ``path`` atomically
    (:func:`write_forecasts`); return its attributes (speed and machine among them)."""
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


def open_rollout(path: str | Path) -> xr.Dataset:
    """Open a rollout store written by :func:`write_rollouts`; the error names the store."""
    path = Path(path)
    try:
        ds = xr.open_zarr(path)
    except (OSError, ValueError, KeyError) as err:
        raise DataError(f"cannot open rollout store {path}: {err}") from None
    for var in ("prediction", "long_prediction"):
        if var not in ds:
            raise DataError(f"rollout store {path} has no variable {var!r}")
    return ds.assign_coords({k: c.compute() for k, c in ds.coords.items() if k not in ds.indexes})


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
