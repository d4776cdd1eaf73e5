"""Scores of test-year rollouts: area-weighted, land-masked RMSE, ACC, bias and stability.

Every spatial mean is weighted by cell area (proportional to cos(latitude) on the regular grid)
and taken over the ocean cells of each channel's depth level only: land never enters a mean, not
even as zeros, while a NaN on an ocean cell (a blown-up forecast) makes the score NaN.

RMSE per channel and lead = sqrt( mean over start dates of the area-weighted mean square error ),
in physical units. The single-number RMSE of the paper's Table 2 (``rmse_norm``) is the same with
every channel's error divided by its standard deviation in data/stats.nc (the normalised space of
training: climatology and mean cancel in a difference) and the mean square averaged equally over
all channels before the mean over start dates. ACC is the area-weighted, uncentred correlation of
forecast and true anomalies from the day-of-year climatology (S, T and SSH, the channels that have
one), per start date, then averaged over start dates. Bias is the area-weighted mean of forecast
minus truth, averaged over start dates. A forecast with no anomaly at all (the climatology
reference) has ACC 0.

A run has diverged on the first day an ocean value of any channel is non-finite or outside the
physical bounds ``evaluate.bounds``; the stability rows give that day and the first non-finite
day, for the long runs and for the start-date runs (the earliest over the runs).

The verb writes a tidy CSV: one row per (metric, channel, lead) with columns model, metric,
variable, level, depth, lead, value, units; stability rows have no channel or lead.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from neuralogcm.channels import (
    CF,
    OCEAN,
    PERIODIC,
    channel_level,
    channel_variable,
    variable_slice,
)
from neuralogcm.config import load
from neuralogcm.errors import DataError
from neuralogcm.stores import open_rollout, write_scores

log = logging.getLogger(__name__)

# The reference forecasts (reference.py), scored like the models: file name -> name in tables.
REFERENCES = {"persistence": "persistence", "damped_persistence": "damped persistence",
              "climatology": "climatology"}


def ocean_weights(lat: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Area weights cos(lat) on ocean cells, 0 on land: lat (H,) deg, mask (..., H, W) bool."""
    return np.cos(np.deg2rad(lat))[:, None] * mask


def area_mean(field: np.ndarray, weights: np.ndarray, axis=(-2, -1)) -> np.ndarray:
    """Weighted mean over ``axis`` (default lat, lon): field (..., H, W), weights broadcastable
    to it and 0 on land -> (...). Land values are dropped (NaN there is fine); a NaN on an ocean
    cell propagates."""
    ocean = np.where(weights > 0, field, 0.0)
    return (ocean * weights).sum(axis=axis) / np.sum(weights, axis=axis)


def spatial_scores(pred: np.ndarray, truth: np.ndarray, weights: np.ndarray,
                   clim: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-sample spatial scores of pred vs truth, both (..., H, W) in the same units.

    Returns ``mse`` and ``mean_error`` (...); with a climatology ``clim`` (..., H, W) also ``acc``
    (...), the uncentred anomaly correlation.
    """
    ocean = weights > 0
    normalised = weights / weights.sum(axis=(-2, -1), keepdims=True)

    def mean(x):  # x is 0 on land already
        return np.einsum("...hw,...hw->...", x, normalised)

    pred, truth = np.where(ocean, pred, 0.0), np.where(ocean, truth, 0.0)
    error = pred - truth
    scores = {"mse": mean(error * error), "mean_error": mean(error)}
    if clim is not None:
        clim = np.where(ocean, clim, 0.0)
        a, b = pred - clim, truth - clim
        a2 = mean(a * a)
        with np.errstate(invalid="ignore", divide="ignore"):
            scores["acc"] = np.where(a2 == 0, 0.0, mean(a * b) / np.sqrt(a2 * mean(b * b)))
    return scores


def area_weighted_rmse(pred: np.ndarray, truth: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """RMSE over samples (axis 0, start dates) of (S, ..., H, W) fields -> (...): the area mean
    square error over space, then the mean over samples, then the square root."""
    return np.sqrt(spatial_scores(pred, truth, weights)["mse"].mean(axis=0))


def bias(pred: np.ndarray, truth: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mean over samples (axis 0) of the area-weighted mean of pred - truth:
    (S, ..., H, W) -> (...)."""
    return spatial_scores(pred, truth, weights)["mean_error"].mean(axis=0)


def acc(pred: np.ndarray, truth: np.ndarray, clim: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Anomaly correlation w.r.t. ``clim``, per sample over space, then the mean over samples
    (axis 0): (S, ..., H, W) -> (...)."""
    return spatial_scores(pred, truth, weights, clim)["acc"].mean(axis=0)


def global_mean(field: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Area-weighted mean over all ocean cells of all levels: (..., L, H, W) -> (...)."""
    return area_mean(field, weights, axis=(-3, -2, -1))


def first_days_out(pred: np.ndarray, mask: np.ndarray, variables: list[str],
                   bounds: dict[str, tuple[float, float]]) -> tuple[int | None, int | None]:
    """First lead day (1-based) on which any ocean value of any channel is non-finite or outside
    its variable's (min, max) bounds, and the first on which one is non-finite; None where there
    is none: pred (days, C, H, W), mask (C, H, W) bool."""
    low = np.array([bounds[v][0] for v in variables])[:, None, None]
    high = np.array([bounds[v][1] for v in variables])[:, None, None]
    with np.errstate(invalid="ignore"):
        inside = (pred >= low) & (pred <= high)  # False for NaN and inf
    out = (~inside & mask).any(axis=(1, 2, 3))
    nonfinite = (~np.isfinite(pred) & mask).any(axis=(1, 2, 3))
    return tuple(int(np.argmax(bad)) + 1 if bad.any() else None for bad in (out, nonfinite))


# ----------------------------------------------------------------------------------------------
# The score verb: rollouts/{model}.zarr + the data stores -> scores/{model}.csv


def climatology_channels(clim: xr.Dataset, n_levels: int) -> np.ndarray:
    """The day-of-year climatology in ocean-channel layout (365, C, H, W); NaN for U and V,
    which have none."""
    h, w = clim.sizes["lat"], clim.sizes["lon"]
    parts = []
    for var in OCEAN:
        if var in PERIODIC:
            a = clim[var].transpose("dayofyear", ..., "lat", "lon").values.reshape(365, -1, h, w)
        else:
            a = np.full((365, n_levels, h, w), np.nan, dtype=np.float32)
        parts.append(a)
    return np.concatenate(parts, axis=1)


class Truth:
    """True ocean states (``data``, an OceanData) and the climatology ``clim`` (365, C, H, W)
    (:func:`climatology_channels`) of the data stores, by date."""

    def __init__(self, data_dir: Path) -> None:
        from neuralogcm.data import OceanData

        self.data = OceanData(data_dir)
        self.n_levels = self.data.n_levels
        self.index = pd.Series(np.arange(len(self.data.dates)), index=self.data.dates)
        with xr.open_zarr(data_dir / "climatology.zarr") as clim:
            self.clim = climatology_channels(clim, self.n_levels)

    def states(self, dates: pd.DatetimeIndex) -> np.ndarray:
        """True states (days, C, H, W) of consecutive ``dates``, physical units, NaN on land."""
        missing = dates.difference(self.index.index)
        if len(missing):
            raise DataError(f"{self.data.data_dir} has no truth for {missing[0].date()} "
                            f"(rollout dates {dates[0].date()}..{dates[-1].date()})")
        first = int(self.index[dates[0]])
        return self.data.states(slice(first, first + len(dates)))

    def climatology(self, dates: pd.DatetimeIndex) -> np.ndarray:
        from neuralogcm.dates import day_index

        return self.clim[day_index(dates)]


def _channel_table(values: np.ndarray, metric: str, leads: np.ndarray, variables: list[str],
                   levels: np.ndarray, depths: np.ndarray, units: list[str]) -> pd.DataFrame:
    """Rows for a (lead, C) array of scores."""
    n_lead, n_chan = values.shape
    return pd.DataFrame({
        "metric": metric,
        "variable": np.tile(variables, n_lead),
        "level": np.tile(levels, n_lead),
        "depth": np.tile(depths, n_lead),
        "lead": np.repeat(leads, n_chan),
        "value": values.ravel(),
        "units": np.tile(units, n_lead),
    })


def score_rollout(rollout: xr.Dataset, truth: Truth, std: np.ndarray, lat: np.ndarray,
                  mask: np.ndarray, bounds: dict[str, tuple[float, float]]) -> pd.DataFrame:
    """All scores of one model's rollout store as a tidy table (columns SCORE_COLUMNS[1:]).

    std (C,) per-channel standard deviation of the normalised space; mask (C, H, W) bool.
    """
    n_levels = truth.n_levels
    variables = channel_variable(n_levels)
    levels = channel_level(n_levels)
    depths = np.where(np.array(variables) == "zos", 0.0, np.asarray(truth.data.depths)[levels])
    units = [CF[v]["units"] for v in variables]
    weights = ocean_weights(lat, mask)
    periodic = np.isin(variables, PERIODIC)
    leads = rollout["lead"].values

    per_start = {"mse": [], "mean_error": [], "acc": [], "mse_norm": []}
    start_days = []  # (first day out of bounds, first non-finite day) per start-date run
    for s, start in enumerate(pd.DatetimeIndex(rollout["start"].values)):
        dates = start + pd.to_timedelta(leads, unit="D")
        pred = rollout["prediction"].isel(start=s).values
        true = truth.states(dates)
        scores = spatial_scores(pred, true, weights, truth.climatology(dates))
        per_start["mse"].append(scores["mse"])
        per_start["mean_error"].append(scores["mean_error"])
        per_start["acc"].append(scores["acc"])
        per_start["mse_norm"].append((scores["mse"] / std**2).mean(axis=-1))
        start_days.append(first_days_out(pred, mask, variables, bounds))
        log.info("scored start %s", start.date())
    mean = {k: np.mean(v, axis=0) for k, v in per_start.items()}

    args = (leads, variables, levels, depths, units)
    frames = [_channel_table(np.sqrt(mean["mse"]), "rmse", *args),
              _channel_table(mean["mean_error"], "bias", *args)]
    acc_rows = _channel_table(mean["acc"], "acc", *args)
    frames.append(acc_rows[np.tile(periodic, len(leads))].assign(units="1"))
    frames.append(pd.DataFrame({"metric": "rmse_norm", "variable": "all", "level": -1,
                                "depth": np.nan, "lead": leads,
                                "value": np.sqrt(mean["mse_norm"]), "units": "1"}))
    frames.append(stability_scores(rollout, truth, mask, weights, bounds, start_days))
    return pd.concat(frames, ignore_index=True)


def stability_scores(rollout: xr.Dataset, truth: Truth, mask: np.ndarray, weights: np.ndarray,
                     bounds: dict[str, tuple[float, float]],
                     start_days: list[tuple[int | None, int | None]],
                     block: int = 32) -> pd.DataFrame:
    """Stability of the long runs (read ``block`` days at a time) as tidy rows.

    ``stable_fraction``: fraction of long runs whose every ocean value stays finite and within
    ``bounds`` on every day; ``first_day_out_of_bounds`` / ``first_day_nonfinite``: the earliest
    day over the long runs on which one leaves the bounds / becomes non-finite (NaN if none);
    ``drift_thetao`` / ``drift_so``: forecast minus true global mean (area-weighted over the
    ocean cells of all levels) on the last day, mean over long runs; ``stable_fraction_starts``,
    ``first_day_out_of_bounds_starts``, ``first_day_nonfinite_starts``: the same for the
    start-date runs, from their :func:`first_days_out` ``start_days``.
    """
    n_levels = truth.n_levels
    variables = channel_variable(n_levels)
    n_days = rollout.sizes["day"]
    long_days, drifts = [], {"thetao": [], "so": []}
    for s, start in enumerate(pd.DatetimeIndex(rollout["long_start"].values)):
        run = rollout["long_prediction"].isel(long_start=s)
        days = [None, None]  # out of bounds, non-finite
        for first in range(0, n_days, block):
            found = first_days_out(run.isel(day=slice(first, first + block)).values, mask,
                                   variables, bounds)
            for k, day in enumerate(found):
                if days[k] is None and day is not None:
                    days[k] = first + day
            if days[1] is not None:
                break
        long_days.append(tuple(days))
        last_day = pd.DatetimeIndex([start + pd.Timedelta(days=int(run["day"].values[-1]))])
        true, pred = truth.states(last_day)[0], run.isel(day=-1).values
        for var in drifts:
            sl = variable_slice(var, n_levels)
            drifts[var].append(global_mean(pred[sl], weights[sl])
                               - global_mean(true[sl], weights[sl]))

    def earliest(runs, k):
        days = [d[k] for d in runs if d[k] is not None]
        return min(days) if days else np.nan

    rows = [
        ("stable_fraction", "all", np.mean([d[0] is None for d in long_days]), "1"),
        ("first_day_out_of_bounds", "all", earliest(long_days, 0), "day"),
        ("first_day_nonfinite", "all", earliest(long_days, 1), "day"),
        ("drift_thetao", "thetao", np.mean(drifts["thetao"]), CF["thetao"]["units"]),
        ("drift_so", "so", np.mean(drifts["so"]), CF["so"]["units"]),
        ("stable_fraction_starts", "all", np.mean([d[0] is None for d in start_days]), "1"),
        ("first_day_out_of_bounds_starts", "all", earliest(start_days, 0), "day"),
        ("first_day_nonfinite_starts", "all", earliest(start_days, 1), "day"),
    ]
    return pd.DataFrame([{"metric": m, "variable": v, "level": -1, "depth": np.nan,
                          "lead": np.nan, "value": x, "units": u} for m, v, x, u in rows])


def cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--rollout", required=True, type=Path, help="rollouts/{model}.zarr")
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path, help="scores/{model}.csv")


def cli_main(args: argparse.Namespace) -> None:
    cfg = load(args.config)
    rollout = open_rollout(args.rollout)
    mask = xr.open_dataset(args.data_dir / "mask.nc")["mask"].values.astype(bool)
    n_levels = mask.shape[0]
    stats = xr.open_dataset(args.data_dir / "stats.nc")
    channels = list(rollout["channel"].values)
    std = stats["std"].sel(channel=channels).values.astype(np.float64)
    truth = Truth(args.data_dir)
    scores = score_rollout(rollout, truth, std, rollout["lat"].values,
                           mask[channel_level(n_levels)], dict(cfg.evaluate.bounds))
    scores.insert(0, "model", args.model)
    write_scores(args.out, scores)
    log.info("wrote %d scores of %s to %s", len(scores), args.model, args.out)
