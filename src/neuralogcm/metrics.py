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

The scores are computed on named dimensions with xarray, the way WeatherBench2 does: a forecast
and its truth are DataArrays (lead, channel, lat, lon) of one start date (``day`` for the long
runs), the area weights (channel, lat, lon) (:func:`area_weights`); a spatial mean is
``weighted(weights).mean(("lat", "lon"), skipna=False)`` of a field set to 0 on land, the scores
of the start dates are stacked along ``start`` and averaged with ``mean("start", skipna=False)``
(skipna=False throughout: a NaN must make the score NaN, never be skipped). Arithmetic runs with
``arithmetic_join="exact"``: fields whose coordinates differ raise instead of being cut to their
common cells. The stores are read one start date (long runs: 32 days) at a time.
"""

from __future__ import annotations

import argparse
import functools
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
)
from neuralogcm.config import load
from neuralogcm.errors import DataError
from neuralogcm.stores import open_rollout, write_scores

log = logging.getLogger(__name__)

# The reference forecasts (reference.py), scored like the models: file name -> name in tables.
REFERENCES = {"persistence": "persistence", "damped_persistence": "damped persistence",
              "climatology": "climatology"}

SPACE = ("lat", "lon")


def _exact(func):
    """Run ``func`` with xarray arithmetic that raises where coordinates differ (instead of
    silently keeping the cells the operands have in common)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with xr.set_options(arithmetic_join="exact"):
            return func(*args, **kwargs)

    return wrapper


def ocean_weights(lat: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Area weights cos(lat) on ocean cells, 0 on land, as a plain array: lat (H,) deg, mask
    (..., H, W) bool. The named-dimension form is :func:`area_weights`."""
    return np.cos(np.deg2rad(lat))[:, None] * mask


def area_weights(mask: xr.DataArray) -> xr.DataArray:
    """Area weights cos(lat) on the ocean cells of ``mask`` (bool, dims (..., lat, lon) with a
    ``lat`` coordinate in degrees), 0 on land; dims and coordinates of ``mask``."""
    return (np.cos(np.deg2rad(mask["lat"])) * mask).transpose(*mask.dims)


def _weighted_mean(field: xr.DataArray, weights: xr.DataArray, dims) -> xr.DataArray:
    """Weighted mean over ``dims`` of a field that is 0 (not NaN) wherever the weight is 0;
    skipna=False: a NaN makes the mean NaN."""
    return field.weighted(weights).mean(dims, skipna=False)


@_exact
def area_mean(field: xr.DataArray, weights: xr.DataArray,
              dims: tuple[str, ...] = SPACE) -> xr.DataArray:
    """Area-weighted mean of ``field`` over ``dims`` (default lat, lon) with ``weights`` 0 on land
    (:func:`area_weights`): land values never enter (a NaN there is fine), a NaN on an ocean cell
    makes the mean NaN."""
    return _weighted_mean(field.where(weights > 0, 0.0), weights, dims)


@_exact
def spatial_scores(forecast: xr.DataArray, truth: xr.DataArray, weights: xr.DataArray,
                   clim: xr.DataArray | None = None) -> xr.Dataset:
    """Spatial scores of ``forecast`` vs ``truth`` (..., lat, lon), same units, per cell of their
    other dims: ``mse`` (area-weighted mean square error) and ``mean_error``; with a climatology
    ``clim`` also ``acc``, the uncentred anomaly correlation (0 for a forecast with no anomaly).
    """
    ocean = weights > 0
    forecast, truth = forecast.where(ocean, 0.0), truth.where(ocean, 0.0)

    def mean(x):
        return _weighted_mean(x, weights, SPACE)

    error = forecast - truth
    scores = xr.Dataset({"mse": mean(error * error), "mean_error": mean(error)})
    if clim is not None:
        clim = clim.where(ocean, 0.0)
        a, b = forecast - clim, truth - clim
        a2 = mean(a * a)
        with np.errstate(invalid="ignore", divide="ignore"):
            scores["acc"] = xr.where(a2 == 0, 0.0, mean(a * b) / np.sqrt(a2 * mean(b * b)))
    return scores


def area_weighted_rmse(forecast: xr.DataArray, truth: xr.DataArray, weights: xr.DataArray,
                       dim: str = "start") -> xr.DataArray:
    """RMSE over the samples ``dim`` (start dates): the area mean square error over space, then
    the mean over samples, then the square root."""
    return np.sqrt(spatial_scores(forecast, truth, weights)["mse"].mean(dim, skipna=False))


def bias(forecast: xr.DataArray, truth: xr.DataArray, weights: xr.DataArray,
         dim: str = "start") -> xr.DataArray:
    """Mean over the samples ``dim`` of the area-weighted mean of forecast - truth."""
    return spatial_scores(forecast, truth, weights)["mean_error"].mean(dim, skipna=False)


def acc(forecast: xr.DataArray, truth: xr.DataArray, clim: xr.DataArray, weights: xr.DataArray,
        dim: str = "start") -> xr.DataArray:
    """Anomaly correlation w.r.t. ``clim``, per sample over space, then the mean over the
    samples ``dim``."""
    return spatial_scores(forecast, truth, weights, clim)["acc"].mean(dim, skipna=False)


def global_mean(field: xr.DataArray, weights: xr.DataArray) -> xr.DataArray:
    """Area-weighted mean over all ocean cells of all levels: over channel, lat and lon."""
    return area_mean(field, weights, ("channel", *SPACE))


@_exact
def first_days_out(forecast: xr.DataArray, mask: xr.DataArray,
                   bounds: dict[str, tuple[float, float]], dim: str = "lead"
                   ) -> tuple[int | None, int | None]:
    """First day (the ``dim`` coordinate: lead day or day of a long run) on which any ocean value
    of any channel is non-finite or outside its variable's (min, max) ``bounds``, and the first
    on which one is non-finite; None where there is none: forecast (dim, channel, lat, lon) with
    a ``variable`` coordinate on channel, mask (channel, lat, lon) bool."""
    variables = [str(v) for v in forecast["variable"].values]
    low = xr.DataArray([bounds[v][0] for v in variables], dims="channel")
    high = xr.DataArray([bounds[v][1] for v in variables], dims="channel")
    with np.errstate(invalid="ignore"):
        inside = (forecast >= low) & (forecast <= high)  # False for NaN and inf
    cells = ("channel", *SPACE)
    out = (~inside & mask).any(cells)
    nonfinite = (~np.isfinite(forecast) & mask).any(cells)
    return tuple(int(bad[dim].values[int(bad.argmax(dim))]) if bool(bad.any()) else None
                 for bad in (out, nonfinite))


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


def _channel_table(values: xr.DataArray, metric: str, variables: list[str],
                   levels: np.ndarray, depths: np.ndarray, units: list[str]) -> pd.DataFrame:
    """Rows for (lead, channel) scores, lead-major."""
    leads = values["lead"].values
    n_lead, n_chan = len(leads), len(variables)
    return pd.DataFrame({
        "metric": metric,
        "variable": np.tile(variables, n_lead),
        "level": np.tile(levels, n_lead),
        "depth": np.tile(depths, n_lead),
        "lead": np.repeat(leads, n_chan),
        "value": values.transpose("lead", "channel").values.ravel(),
        "units": np.tile(units, n_lead),
    })


def _check_channels(rollout: xr.Dataset, n_levels: int) -> None:
    """The rollout's channels must be the data stores' (the truth is matched by position)."""
    stored = [str(v) for v in rollout["variable"].values]
    if stored != channel_variable(n_levels):
        raise DataError(f"the rollout's channels (variables {stored}) are not those of the data "
                        f"stores with {n_levels} levels ({channel_variable(n_levels)})")


def _like(field: xr.DataArray, values: np.ndarray) -> xr.DataArray:
    """``values`` with the dims and coordinates of ``field`` (the truth of a forecast)."""
    return field.copy(data=values)


def score_rollout(rollout: xr.Dataset, truth: Truth, std: xr.DataArray, mask: xr.DataArray,
                  bounds: dict[str, tuple[float, float]]) -> pd.DataFrame:
    """All scores of one model's rollout store as a tidy table (columns SCORE_COLUMNS[1:]).

    std (channel): per-channel standard deviation of the normalised space; mask (channel, lat,
    lon) bool with the rollout's coordinates (:func:`channel_mask`). The store is read one start
    date at a time.
    """
    n_levels = truth.n_levels
    _check_channels(rollout, n_levels)
    variables = channel_variable(n_levels)
    levels = channel_level(n_levels)
    depths = np.where(np.array(variables) == "zos", 0.0, np.asarray(truth.data.depths)[levels])
    units = [CF[v]["units"] for v in variables]
    weights = area_weights(mask)

    per_start = []
    start_days = []  # (first day out of bounds, first non-finite day) per start-date run
    for s in range(rollout.sizes["start"]):
        forecast = rollout["prediction"].isel(start=s).load()  # (lead, channel, lat, lon)
        dates = pd.DatetimeIndex(forecast["valid_time"].values)
        scores = spatial_scores(forecast, _like(forecast, truth.states(dates)), weights,
                                _like(forecast, truth.climatology(dates)))
        scores["mse_norm"] = (scores["mse"] / std**2).mean("channel", skipna=False)
        per_start.append(scores.drop_vars("valid_time"))
        start_days.append(first_days_out(forecast, mask, bounds, "lead"))
        log.info("scored start %s", pd.Timestamp(forecast["start"].values).date())
    mean = xr.concat(per_start, "start").mean("start", skipna=False)

    args = (variables, levels, depths, units)
    frames = [_channel_table(np.sqrt(mean["mse"]), "rmse", *args),
              _channel_table(mean["mean_error"], "bias", *args)]
    periodic = np.isin(variables, PERIODIC)
    acc_rows = _channel_table(mean["acc"], "acc", *args)
    frames.append(acc_rows[np.tile(periodic, mean.sizes["lead"])].assign(units="1"))
    frames.append(pd.DataFrame({"metric": "rmse_norm", "variable": "all", "level": -1,
                                "depth": np.nan, "lead": mean["lead"].values,
                                "value": np.sqrt(mean["mse_norm"].values), "units": "1"}))
    frames.append(stability_scores(rollout, truth, mask, bounds, start_days))
    return pd.concat(frames, ignore_index=True)


def stability_scores(rollout: xr.Dataset, truth: Truth, mask: xr.DataArray,
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
    weights = area_weights(mask)
    n_days = rollout.sizes["day"]
    long_days, drifts = [], {"thetao": [], "so": []}
    for s in range(rollout.sizes["long_start"]):
        run = rollout["long_prediction"].isel(long_start=s)  # (day, channel, lat, lon)
        days = [None, None]  # out of bounds, non-finite
        for first in range(0, n_days, block):
            found = first_days_out(run.isel(day=slice(first, first + block)).load(), mask,
                                   bounds, "day")
            days = [old if old is not None else new for old, new in zip(days, found, strict=True)]
            if days[1] is not None:
                break
        long_days.append(tuple(days))
        forecast = run.isel(day=-1).load()  # (channel, lat, lon)
        last_day = pd.DatetimeIndex([pd.Timestamp(forecast["long_start"].values)
                                     + pd.Timedelta(days=int(forecast["day"]))])
        true = _like(forecast, truth.states(last_day)[0])
        for var in drifts:
            channels = (forecast["variable"] == var).values
            w = weights.isel(channel=channels)
            drifts[var].append(float(global_mean(forecast.isel(channel=channels), w)
                                     - global_mean(true.isel(channel=channels), w)))

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


def channel_mask(rollout: xr.Dataset, mask: np.ndarray) -> xr.DataArray:
    """The land mask of each of the rollout's channels (its level's): (channel, lat, lon) bool
    with the rollout's coordinates, from ``mask`` (depth, lat, lon) of mask.nc."""
    template = rollout["prediction"].isel(start=0, lead=0, drop=True)
    per_channel = mask[channel_level(mask.shape[0])]
    if per_channel.shape != template.shape:
        raise DataError(f"mask.nc gives channel masks of shape {per_channel.shape}; the rollout "
                        f"has (channel, lat, lon) = {template.shape}")
    return template.copy(data=per_channel)


def cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--rollout", required=True, type=Path, help="rollouts/{model}.zarr")
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path, help="scores/{model}.csv")


def cli_main(args: argparse.Namespace) -> None:
    cfg = load(args.config)
    rollout = open_rollout(args.rollout)
    with xr.open_dataset(args.data_dir / "mask.nc") as ds:
        mask = channel_mask(rollout, ds["mask"].values.astype(bool))
    with xr.open_dataset(args.data_dir / "stats.nc") as stats:
        std = stats["std"].sel(channel=list(rollout["channel"].values)).values
    truth = Truth(args.data_dir)
    scores = score_rollout(rollout, truth, xr.DataArray(std.astype(np.float64), dims="channel"),
                           mask, dict(cfg.evaluate.bounds))
    scores.insert(0, "model", args.model)
    write_scores(args.out, scores)
    log.info("wrote %d scores of %s to %s", len(scores), args.model, args.out)
