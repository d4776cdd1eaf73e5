"""Metrics against independent computations (xarray's NaN-skipping weighted mean, plain numpy) and
hand-computed values."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from neuralogcm.channels import PERIODIC, channel_level, channel_variable
from neuralogcm.dates import day_index
from neuralogcm.grid import Grid
from neuralogcm.metrics import (
    acc,
    area_mean,
    area_weighted_rmse,
    area_weights,
    bias,
    channel_mask,
    first_days_out,
    global_mean,
    ocean_weights,
    score_rollout,
)

SPACE = ("lat", "lon")
SAMPLES = ("start", "lat", "lon")  # start dates of one lead and channel


def named(a, lat, dims=SPACE):
    """``a`` as a DataArray on ``dims``, with a lat coordinate."""
    return xr.DataArray(np.asarray(a), dims=dims, coords={"lat": np.asarray(lat, float)})


def weights_of(lat, mask, dims=SPACE):
    """:func:`area_weights` of a bool mask (..., lat, lon), checked against ocean_weights."""
    weights = area_weights(named(mask, lat, dims))
    np.testing.assert_array_equal(weights.values, ocean_weights(np.asarray(lat), mask))
    return weights


@pytest.fixture
def fields():
    """Random forecast, truth and climatology (start 4, lead 3, H, W) on a 10-degree grid with land
    NaN (truth, climatology) or garbage (forecast: land must never enter a mean)."""
    rng = np.random.default_rng(1)
    grid = Grid(10.0)
    shape = (4, 3, *grid.shape)
    mask = rng.random(grid.shape) > 0.3
    truth = np.where(mask, rng.normal(15, 5, shape), np.nan)
    clim = np.where(mask, truth.mean(axis=(0, 1)) + rng.normal(0, 1, grid.shape), np.nan)
    pred = np.where(mask, truth + rng.normal(0.3, 2, shape), 1e6)
    return grid, mask, pred, truth, clim


def _xr(a, grid):
    return xr.DataArray(a, dims=("start", "lead", "lat", "lon"),
                        coords={"lat": grid.lat, "lon": grid.lon})


def test_rmse_bias_acc_match_xarray_weighted_mean(fields):
    grid, mask, pred, truth, clim = fields
    weights = weights_of(grid.lat, mask)
    # Independent: xarray drops NaN (land) from the weighted mean and its sum of weights.
    p = _xr(np.where(mask, pred, np.nan), grid)
    t, c = _xr(truth, grid), _xr(np.broadcast_to(clim, truth.shape), grid)
    cos = xr.DataArray(np.cos(np.deg2rad(grid.lat)), dims="lat", coords={"lat": grid.lat})

    def wmean(x):
        return x.weighted(cos).mean(("lat", "lon"))

    rmse_xr = np.sqrt(wmean((p - t) ** 2).mean("start"))
    bias_xr = wmean(p - t).mean("start")
    a, b = p - c, t - c
    acc_xr = (wmean(a * b) / np.sqrt(wmean(a * a) * wmean(b * b))).mean("start")

    p_, t_ = (named(a, grid.lat, ("start", "lead", *SPACE)) for a in (pred, truth))
    c_ = named(clim, grid.lat)
    np.testing.assert_allclose(area_weighted_rmse(p_, t_, weights), rmse_xr, rtol=1e-12)
    np.testing.assert_allclose(bias(p_, t_, weights), bias_xr, rtol=1e-12)
    np.testing.assert_allclose(acc(p_, t_, c_, weights), acc_xr, rtol=1e-12)
    assert area_weighted_rmse(p_, t_, weights).dims == ("lead",)
    # The numbers are not trivially equal to an unweighted or land-including computation.
    unweighted = np.sqrt(np.nanmean(np.where(mask, (pred - truth) ** 2, np.nan), (2, 3)).mean(0))
    assert not np.allclose(unweighted, rmse_xr, rtol=1e-3)


def test_hand_computed_values_on_a_two_by_two_grid():
    lat = np.array([0.0, 60.0])  # weights cos(lat) = 1 and 0.5
    mask = np.array([[True, False], [True, True]])
    weights = weights_of(lat, mask)
    truth = named(np.zeros((2, 2, 2)), lat, SAMPLES)  # two start dates
    pred = named([[[1.0, 99.0], [2.0, 4.0]],  # land cell (0, 1) holds garbage
                  [[0.0, np.nan], [0.0, 0.0]]], lat, SAMPLES)
    # start 1: (1 * 1 + 0.5 * 4 + 0.5 * 16) / (1 + 0.5 + 0.5) = 5.5; start 2: 0
    np.testing.assert_allclose(area_mean(pred**2, weights), [5.5, 0.0])
    np.testing.assert_allclose(area_weighted_rmse(pred, truth, weights), np.sqrt(2.75))
    # bias: start 1 (1 + 0.5 * 2 + 0.5 * 4) / 2 = 2, start 2: 0
    np.testing.assert_allclose(bias(pred, truth, weights), 1.0)


def test_acc_is_plus_or_minus_one_for_scaled_anomalies():
    rng = np.random.default_rng(0)
    lat = np.linspace(-60, 60, 5)
    mask = np.ones((5, 8), bool)
    mask[2, :3] = False
    clim = rng.normal(size=(5, 8))
    anomaly = rng.normal(size=(3, 5, 8))
    truth = clim + anomaly
    weights = weights_of(lat, mask)
    t, c = named(truth, lat, SAMPLES), named(clim, lat)
    np.testing.assert_allclose(acc(named(clim + 3 * anomaly, lat, SAMPLES), t, c, weights), 1.0)
    np.testing.assert_allclose(acc(named(clim - anomaly, lat, SAMPLES), t, c, weights), -1.0)


def test_nan_on_an_ocean_cell_propagates_but_nan_on_land_does_not():
    lat = np.array([-30.0, 30.0])
    mask = np.array([[True, True], [True, False]])
    weights = weights_of(lat, mask)
    truth = named(np.zeros((1, 2, 2)), lat, SAMPLES)
    on_land = named([[[1.0, 1.0], [1.0, np.nan]]], lat, SAMPLES)
    on_ocean = named([[[1.0, np.nan], [1.0, 0.0]]], lat, SAMPLES)
    assert area_weighted_rmse(on_land, truth, weights) == pytest.approx(1.0)
    assert np.isnan(area_weighted_rmse(on_ocean, truth, weights))


def test_global_mean_weights_levels_by_their_ocean_area():
    lat = np.array([0.0, 60.0])
    mask = np.array([[[True, True], [True, True]], [[True, False], [False, False]]])
    weights = weights_of(lat, mask, ("channel", *SPACE))  # level 0: 1, 1, .5, .5; level 1: 1
    field = named(np.stack([np.full((2, 2), 10.0), np.where(mask[1], 4.0, np.nan)]), lat,
                  ("channel", *SPACE))
    assert global_mean(field, weights) == pytest.approx((10.0 * 3 + 4.0 * 1) / 4)


def test_first_days_out():
    variables = ["thetao", "zos"]
    bounds = {"thetao": (-3.0, 40.0), "zos": (-5.0, 5.0)}
    mask = np.ones((2, 3, 3), bool)
    mask[:, 0, 0] = False
    pred = np.zeros((6, 2, 3, 3))
    pred[:, :, 0, 0] = 1e9  # land: ignored
    pred[1:, 1, 0, 0] = np.nan

    def days_out():
        forecast = xr.DataArray(pred, dims=("day", "channel", "lat", "lon"),
                                coords={"day": np.arange(1, 7),
                                        "variable": ("channel", variables)})
        return first_days_out(forecast, xr.DataArray(mask, dims=("channel", *SPACE)), bounds,
                              "day")

    assert days_out() == (None, None)
    pred[4, 1, 2, 2] = 6.0  # zos out of bounds on day 5
    assert days_out() == (5, None)
    pred[5, 0, 1, 1] = np.inf  # non-finite ocean value on day 6
    assert days_out() == (5, 6)
    pred[2, 0, 1, 1] = np.nan  # non-finite ocean value on day 3: out of bounds too
    assert days_out() == (3, 3)


def test_acc_of_a_forecast_without_anomaly_is_zero_and_nan_still_propagates():
    lat = np.array([-30.0, 30.0])
    weights = weights_of(lat, np.ones((2, 2), bool))
    clim = np.array([[1.0, 2.0], [3.0, 4.0]])
    truth = named(clim + np.array([[[0.5, -0.2], [0.1, 0.3]]]), lat, SAMPLES)
    c = named(clim, lat)
    no_anomaly = named(clim[None], lat, SAMPLES)  # the climatology forecast
    assert acc(no_anomaly, truth, c, weights) == 0.0
    blown = clim[None].copy()
    blown[0, 1, 1] = np.nan
    assert np.isnan(acc(named(blown, lat, SAMPLES), truth, c, weights))


class _Truth:
    """A stand-in for metrics.Truth: true states by date and a day-of-year climatology."""

    def __init__(self, dates, states, clim, depths):
        self.n_levels = len(depths)
        self.data = SimpleNamespace(depths=depths)
        self.index = pd.Series(np.arange(len(dates)), index=dates)
        self._states, self.clim = states, clim

    def states(self, dates):
        return self._states[self.index[dates].to_numpy()]

    def climatology(self, dates):
        return self.clim[day_index(dates)]


def _numpy_scores(pred, true, clim, mask, lat, std, low, high):
    """The definitions of the module doc in plain numpy, each mean over the ocean cells picked by
    boolean indexing: pred, true, clim (S, L, C, H, W), mask (C, H, W)."""
    n_start, n_lead, n_chan = pred.shape[:3]
    cos = np.broadcast_to(np.cos(np.deg2rad(lat))[:, None], mask.shape[1:])
    mse, error, corr = (np.full((n_start, n_lead, n_chan), np.nan) for _ in range(3))
    for s, k, c in np.ndindex(n_start, n_lead, n_chan):
        w = cos[mask[c]]
        p, t, m = pred[s, k, c][mask[c]], true[s, k, c][mask[c]], clim[s, k, c][mask[c]]
        mse[s, k, c] = np.sum(w * (p - t) ** 2) / np.sum(w)
        error[s, k, c] = np.sum(w * (p - t)) / np.sum(w)
        a, b = p - m, t - m
        corr[s, k, c] = np.sum(w * a * b) / np.sqrt(np.sum(w * a * a) * np.sum(w * b * b))
    days = []  # per start: first lead out of bounds, first non-finite
    for s in range(n_start):
        ocean = [np.concatenate([pred[s, k, c][mask[c]] for c in range(n_chan)])
                 for k in range(n_lead)]
        lows = [np.concatenate([np.full(mask[c].sum(), low[c]) for c in range(n_chan)])]
        highs = [np.concatenate([np.full(mask[c].sum(), high[c]) for c in range(n_chan)])]
        out = [k + 1 for k in range(n_lead)
               if not np.all((ocean[k] >= lows[0]) & (ocean[k] <= highs[0]))]
        bad = [k + 1 for k in range(n_lead) if not np.all(np.isfinite(ocean[k]))]
        days.append((out[0] if out else None, bad[0] if bad else None))
    return {"rmse": np.sqrt(mse.mean(0)), "bias": error.mean(0), "acc": corr.mean(0),
            "rmse_norm": np.sqrt((mse / std**2).mean(2).mean(0))}, days


def test_score_rollout_matches_plain_numpy_with_land_nan_and_out_of_bounds():
    rng = np.random.default_rng(7)
    n_levels, lat, lon = 2, np.array([-60.0, -20.0, 20.0, 60.0]), np.arange(0.0, 360.0, 60.0)
    variables = channel_variable(n_levels)
    n_chan, shape = len(variables), (len(lat), len(lon))
    levels = rng.random((n_levels, *shape)) > 0.25
    levels[1] &= levels[0]
    mask = levels[channel_level(n_levels)]
    bounds = {"so": (-10.0, 10.0), "uo": (-10.0, 10.0), "vo": (-10.0, 10.0),
              "thetao": (-10.0, 10.0), "zos": (-5.0, 5.0)}
    dates = pd.date_range("2019-12-20", "2020-03-10")
    states = np.where(mask, rng.normal(0, 1, (len(dates), n_chan, *shape)), np.nan)
    periodic = np.isin(variables, PERIODIC)
    clim = np.where(mask & periodic[:, None, None], rng.normal(0, 0.5, (365, n_chan, *shape)),
                    np.nan)
    truth = _Truth(dates, states, clim, [5.0, 50.0])

    starts, leads = pd.DatetimeIndex(["2020-01-01", "2020-02-01", "2020-03-01"]), np.arange(1, 5)
    valid = starts.values[:, None] + leads.astype("timedelta64[D]")
    true = np.stack([truth.states(pd.DatetimeIndex(v)) for v in valid])
    pred = np.where(mask, true + rng.normal(0.2, 0.5, true.shape), 1e6)  # garbage on land
    ocean = np.argwhere(mask[-1])[0]
    pred[1, 1, -1, ocean[0], ocean[1]] = 6.0  # start 2: SSH out of bounds at lead 2
    thetao = variables.index("thetao")
    ocean = np.argwhere(mask[thetao])[1]
    pred[2, 2, thetao, ocean[0], ocean[1]] = np.nan  # start 3: NaN on the ocean at lead 3
    long_true = truth.states(pd.date_range("2020-01-02", periods=5))
    long = np.where(mask, long_true + rng.normal(0, 0.1, long_true.shape), np.nan)
    long[3, 1, ocean[0], ocean[1]] = 50.0  # long run: S out of bounds on day 4
    rollout = xr.Dataset(
        {"prediction": (("start", "lead", "channel", *SPACE), pred),
         "long_prediction": (("long_start", "day", "channel", *SPACE), long[None])},
        coords={"start": starts, "lead": leads, "valid_time": (("start", "lead"), valid),
                "long_start": pd.DatetimeIndex(["2020-01-01"]), "day": np.arange(1, 6),
                "channel": [f"c{i}" for i in range(n_chan)], "variable": ("channel", variables),
                "lat": lat, "lon": lon})
    std = rng.uniform(0.5, 2.0, n_chan)

    scores = score_rollout(rollout, truth, xr.DataArray(std, dims="channel"),
                           channel_mask(rollout, levels), bounds)
    clims = np.stack([truth.climatology(pd.DatetimeIndex(v)) for v in valid])
    low, high = (np.array([bounds[v][i] for v in variables]) for i in (0, 1))
    expected, days = _numpy_scores(pred, true, clims, mask, lat, std, low, high)

    def values(metric):
        return scores[scores.metric == metric].value.to_numpy()

    for metric in ("rmse", "bias"):
        np.testing.assert_allclose(values(metric).reshape(4, n_chan), expected[metric],
                                   rtol=1e-12)
    np.testing.assert_allclose(values("acc").reshape(4, -1), expected["acc"][:, periodic],
                               rtol=1e-12)
    np.testing.assert_allclose(values("rmse_norm"), expected["rmse_norm"], rtol=1e-12)
    # the NaN on one ocean cell makes exactly that lead's thetao scores (and rmse_norm) NaN
    nan = np.isnan(values("rmse").reshape(4, n_chan))
    assert nan[2, thetao] and nan.sum() == 1 and np.isnan(values("rmse_norm")).tolist() == [
        False, False, True, False]
    assert days == [(None, None), (2, None), (3, 3)]
    stability = scores[scores.lead.isna()].set_index("metric").value
    assert stability["stable_fraction_starts"] == pytest.approx(1 / 3)
    assert stability["first_day_out_of_bounds_starts"] == 2
    assert stability["first_day_nonfinite_starts"] == 3
    assert stability["stable_fraction"] == 0 and stability["first_day_out_of_bounds"] == 4
    assert np.isnan(stability["first_day_nonfinite"])
    for var in ("thetao", "so"):  # last day: area-weighted over the ocean cells of both levels
        c = np.isin(variables, var)
        w = np.cos(np.deg2rad(lat))[:, None] * mask[c]
        drift = (np.sum(w * np.nan_to_num(long[-1, c] - long_true[-1, c])) / np.sum(w))
        assert stability[f"drift_{var}"] == pytest.approx(drift, rel=1e-12)


def test_area_mean_refuses_misaligned_coordinates():
    field = named(np.ones((2, 3)), [0.0, 10.0])
    weights = named(np.ones((2, 3)), [0.0, 20.0])
    with pytest.raises(ValueError, match="exact"):
        area_mean(field, weights)
