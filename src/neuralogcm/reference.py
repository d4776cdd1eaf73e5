"""Reference forecasts, written as rollout stores and scored by the same code as the models.

Each reference is written by :func:`neuralogcm.stores.write_forecasts`, the writer of the
models' rollouts, so its store has exactly their format: the same start dates, leads and long
runs, float32, the same chunks. With x0 the true state on the first day of a run, N(d) the
no-anomaly state of day d (the day-of-year climatology of the training years,
data/climatology.zarr, for S, T and SSH; the training mean of data/stats.nc for U and V, which
have no climatology) and a0 = x0 - N(day 0) the initial anomaly, the forecast for lead day tau is

- ``persistence``: x0, the initial state held;
- ``climatology``: N(tau);
- ``damped_persistence``: N(tau) + r1**tau a0 per channel: an AR(1) model of the anomalies, whose
  lag-tau autocorrelation is r1**tau, with r1 the lag-1 autocorrelation of the channel's daily
  anomalies over the training years (area-weighted over its ocean cells, clipped to [0, 1]).

The forecasts are computed in physical units from the stores (no normalisation round trip), so
the climatology forecast is the climatology exactly and its ACC is 0.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import xarray as xr

from neuralogcm import __version__
from neuralogcm.channels import channel_level, n_ocean_channels, periodic_channel_index
from neuralogcm.config import ConfigError, load
from neuralogcm.metrics import REFERENCES, Truth, ocean_weights
from neuralogcm.stores import write_forecasts

log = logging.getLogger(__name__)


class ReferenceForecast:
    """A reference forecast with :class:`~neuralogcm.rollout.Rollout`'s ``days(starts,
    lengths)``: yields (t, runs, forecasts (k, C, H, W) float32 physical, NaN on land) for lead
    day t + 1 of the runs still going. Never non-finite (``nonfinite`` stays empty).

    ``truth``: the data stores; ``mean`` (C,): the training mean of each channel (stats.nc);
    ``decay`` (C,): r1 per channel, damped persistence only.
    """

    def __init__(self, kind: str, truth: Truth, mean: np.ndarray,
                 decay: np.ndarray | None = None) -> None:
        if kind not in REFERENCES:
            raise ValueError(f"unknown reference {kind!r}: one of {list(REFERENCES)}")
        if (kind == "damped_persistence") != (decay is not None):
            raise ValueError("damped persistence, and only it, needs a decay per channel")
        self.kind, self.truth, self.data = kind, truth, truth.data
        self.decay = None if decay is None else np.asarray(decay, np.float32)[:, None, None]
        ocean = self.data.mask[channel_level(self.data.n_levels)]
        self.steady = np.ones(len(mean), bool)  # channels without a climatology: U and V
        self.steady[periodic_channel_index(self.data.n_levels)] = False
        self.steady_state = np.where(ocean, np.asarray(mean, np.float32)[:, None, None],
                                     np.nan)[self.steady]
        self.nonfinite: dict[int, int] = {}

    def normal(self, days: np.ndarray) -> np.ndarray:
        """N of the data days ``days`` (k,): (k, C, H, W) float32, NaN on land."""
        out = self.truth.clim[self.data.day_indices[days]]
        out[:, self.steady] = self.steady_state
        return out

    def days(self, starts: list[int], lengths: list[int]
             ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        starts, lengths = np.asarray(starts), np.asarray(lengths)
        initial = np.stack([self.data.state(int(i)) for i in starts])
        anomaly = initial - self.normal(starts)
        for t in range(int(lengths.max())):
            runs = np.flatnonzero(lengths > t)
            if self.kind == "persistence":
                out = initial[runs]
            else:
                out = self.normal(starts[runs] + t + 1)
                if self.decay is not None:
                    out += self.decay ** (t + 1) * anomaly[runs]
            yield t, runs, out


def lag1_autocorrelation(blocks: Iterable[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """Lag-1 autocorrelation per channel of a daily anomaly series, given as consecutive blocks
    (days, C, H, W): sum(w a_t a_t+1) / sqrt(sum(w a_t^2) sum(w a_t+1^2)), the sums over every
    pair of consecutive days and the cells of weights (C, H, W) (area, 0 on land) -> (C,)."""
    ocean = weights > 0
    sums = np.zeros((3, weights.shape[0]))
    previous = None
    for block in blocks:
        block = np.where(ocean, block, 0.0)
        series = block if previous is None else np.concatenate([previous, block])
        a, b = series[:-1], series[1:]
        sums += [np.einsum("tchw,chw->c", x * y, weights) for x, y in ((a, b), (a, a), (b, b))]
        previous = series[-1:]
    return sums[0] / np.sqrt(sums[1] * sums[2])


def training_anomalies(reference: ReferenceForecast, years: list[int], block: int = 32
                       ) -> Iterator[np.ndarray]:
    """The anomalies x - N (days, C, H, W) of the days of ``years``, ``block`` days at a time."""
    days = reference.data.days_of(years)
    for first in range(days.start, days.stop, block):
        chunk = np.arange(first, min(first + block, days.stop))
        yield reference.data.states(slice(chunk[0], chunk[-1] + 1)) - reference.normal(chunk)


def damped_persistence_decay(reference: ReferenceForecast, years: list[int]) -> np.ndarray:
    """r1 (C,) in [0, 1]: the lag-1 autocorrelation of the anomalies of ``years``, area-weighted
    over each channel's ocean cells."""
    data = reference.data
    weights = ocean_weights(data.grid.lat, data.mask[channel_level(data.n_levels)])
    return np.clip(lag1_autocorrelation(training_anomalies(reference, years), weights), 0.0, 1.0)


def cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kind", required=True, choices=list(REFERENCES))
    parser.add_argument("--config", required=True)
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path, help="rollouts/{kind}.zarr")


def cli_main(args: argparse.Namespace) -> None:
    cfg = load(args.config)
    if args.kind in cfg.models:
        raise ConfigError(f"model name {args.kind!r} is taken by a reference forecast: "
                          "rename the model in the config's models")
    truth = Truth(args.data_dir)
    n_channels = n_ocean_channels(truth.n_levels)
    with xr.open_dataset(args.data_dir / "stats.nc") as stats:
        mean = stats["mean"].values[:n_channels]
    describe = {"model": args.kind, "arch": "reference", "reference": REFERENCES[args.kind],
                "source": f"neuralogcm {__version__} reference"}
    decay = None
    if args.kind == "damped_persistence":
        train_years = cfg.data.years.split("train")
        decay = damped_persistence_decay(ReferenceForecast("climatology", truth, mean),
                                         train_years)
        describe["decay_per_day"] = [float(r) for r in decay]
        log.info("lag-1 autocorrelation of the anomalies of %s: %s", train_years,
                 np.array2string(decay, precision=4))
    write_forecasts(args.out, cfg, args.kind, ReferenceForecast(args.kind, truth, mean, decay),
                    truth.data, lambda: describe)
