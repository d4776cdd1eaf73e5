"""The on-disk formats the evaluation steps share, with their writers and readers.

- Rollout stores (``rollouts/{model}.zarr``, ``rollouts/{kind}.zarr``): :func:`write_forecasts`
  runs a forecast (``rollout.Rollout``, ``reference.ReferenceForecast``: anything with
  ``days(starts, lengths)`` and ``nonfinite``) over the start dates (:func:`start_indices`) and the
  long runs (:func:`long_start_indices`) and writes ``prediction`` (start, lead, channel, lat,
  lon) and ``long_prediction`` (long_start, day, channel, lat, lon), float32 physical units, NaN
  on land, chunked ``lead_block`` lead days of one run; :func:`open_rollout` reads one.
- Score CSVs (``scores/{model}.csv``): one row per (metric, channel, lead) with the columns
  ``SCORE_COLUMNS``; :func:`write_scores`, :func:`read_scores`.
- Training histories (``models/{model}/history.csv``, written by train.py): :func:`read_history`.

Nothing here needs the deep-learning stack: the score, table and plot steps read these with
numpy, pandas, xarray and zarr alone.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
import zarr

from neuralogcm.channels import (
    CF,
    channel_level,
    channel_variable,
    n_ocean_channels,
    ocean_channel_names,
)
from neuralogcm.config import Config, ConfigError
from neuralogcm.errors import DataError
from neuralogcm.io import atomic_path

log = logging.getLogger(__name__)

CHUNK_BYTES = 16e6  # target size of a stored chunk: one run, as many lead days as fit
SCORE_COLUMNS = ["model", "metric", "variable", "level", "depth", "lead", "value", "units"]


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
    """Run every run of ``forecast`` (a ``rollout.Rollout``, or anything with its ``days`` and
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


def open_rollout(path: str | Path) -> xr.Dataset:
    """Open a rollout store written by :func:`write_forecasts`; the error names the store."""
    path = Path(path)
    try:
        ds = xr.open_zarr(path)
    except (OSError, ValueError, KeyError) as err:
        raise DataError(f"cannot open rollout store {path}: {err}") from None
    for var in ("prediction", "long_prediction"):
        if var not in ds:
            raise DataError(f"rollout store {path} has no variable {var!r}")
    return ds.assign_coords({k: c.compute() for k, c in ds.coords.items() if k not in ds.indexes})


def write_scores(path: Path, scores: pd.DataFrame) -> None:
    """Write a score table (the columns SCORE_COLUMNS, in that order) atomically."""
    with atomic_path(path) as tmp:
        scores[SCORE_COLUMNS].to_csv(tmp, index=False, float_format="%.6g")


def read_scores(paths: list[str | Path]) -> pd.DataFrame:
    """Concatenate score CSVs, checking their columns; the error names the bad file."""
    frames = []
    for path in paths:
        try:
            frame = pd.read_csv(path)
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            raise DataError(f"cannot read scores {path}: {err}") from None
        if list(frame.columns) != SCORE_COLUMNS:
            raise DataError(f"scores {path} has columns {list(frame.columns)}, "
                            f"expected {SCORE_COLUMNS}")
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def read_history(path: Path) -> pd.DataFrame:
    try:
        history = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise DataError(f"cannot read training history {path}: {err}") from None
    for column in ("epoch", "valid_loss", "seconds"):
        if column not in history:
            raise DataError(f"training history {path} has no column {column!r}")
    return history
