"""Metrics against an independent computation (xarray's weighted mean) and hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from neuralogcm.grid import Grid
from neuralogcm.metrics import (
    acc,
    area_mean,
    area_weighted_rmse,
    bias,
    first_days_out,
    global_mean,
    ocean_weights,
)


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
    weights = ocean_weights(grid.lat, mask)
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

    np.testing.assert_allclose(area_weighted_rmse(pred, truth, weights), rmse_xr, rtol=1e-12)
    np.testing.assert_allclose(bias(pred, truth, weights), bias_xr, rtol=1e-12)
    np.testing.assert_allclose(acc(pred, truth, clim, weights), acc_xr, rtol=1e-12)
    assert area_weighted_rmse(pred, truth, weights).shape == (3,)
    # The numbers are not trivially equal to an unweighted or land-including computation.
    unweighted = np.sqrt(np.nanmean(np.where(mask, (pred - truth) ** 2, np.nan), (2, 3)).mean(0))
    assert not np.allclose(unweighted, rmse_xr, rtol=1e-3)


def test_hand_computed_values_on_a_two_by_two_grid():
    lat = np.array([0.0, 60.0])  # weights cos(lat) = 1 and 0.5
    mask = np.array([[True, False], [True, True]])
    weights = ocean_weights(lat, mask)
    truth = np.zeros((2, 2, 2))  # two start dates
    pred = np.array([[[1.0, 99.0], [2.0, 4.0]],  # land cell (0, 1) holds garbage
                     [[0.0, np.nan], [0.0, 0.0]]])
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
    weights = ocean_weights(lat, mask)
    np.testing.assert_allclose(acc(clim + 3 * anomaly, truth, clim, weights), 1.0)
    np.testing.assert_allclose(acc(clim - anomaly, truth, clim, weights), -1.0)


def test_nan_on_an_ocean_cell_propagates_but_nan_on_land_does_not():
    lat = np.array([-30.0, 30.0])
    mask = np.array([[True, True], [True, False]])
    weights = ocean_weights(lat, mask)
    truth = np.zeros((1, 2, 2))
    on_land = np.array([[[1.0, 1.0], [1.0, np.nan]]])
    on_ocean = np.array([[[1.0, np.nan], [1.0, 0.0]]])
    assert area_weighted_rmse(on_land, truth, weights) == pytest.approx(1.0)
    assert np.isnan(area_weighted_rmse(on_ocean, truth, weights))


def test_global_mean_weights_levels_by_their_ocean_area():
    lat = np.array([0.0, 60.0])
    mask = np.array([[[True, True], [True, True]], [[True, False], [False, False]]])
    weights = ocean_weights(lat, mask)  # level 0: weights 1, 1, .5, .5; level 1: 1
    field = np.stack([np.full((2, 2), 10.0), np.where(mask[1], 4.0, np.nan)])
    assert global_mean(field, weights) == pytest.approx((10.0 * 3 + 4.0 * 1) / 4)


def test_first_days_out():
    variables = ["thetao", "zos"]
    bounds = {"thetao": (-3.0, 40.0), "zos": (-5.0, 5.0)}
    mask = np.ones((2, 3, 3), bool)
    mask[:, 0, 0] = False
    pred = np.zeros((6, 2, 3, 3))
    pred[:, :, 0, 0] = 1e9  # land: ignored
    pred[1:, 1, 0, 0] = np.nan
    assert first_days_out(pred, mask, variables, bounds) == (None, None)
    pred[4, 1, 2, 2] = 6.0  # zos out of bounds on day 5
    assert first_days_out(pred, mask, variables, bounds) == (5, None)
    pred[5, 0, 1, 1] = np.inf  # non-finite ocean value on day 6
    assert first_days_out(pred, mask, variables, bounds) == (5, 6)
    pred[2, 0, 1, 1] = np.nan  # non-finite ocean value on day 3: out of bounds too
    assert first_days_out(pred, mask, variables, bounds) == (3, 3)


def test_acc_of_a_forecast_without_anomaly_is_zero_and_nan_still_propagates():
    lat = np.array([-30.0, 30.0])
    weights = ocean_weights(lat, np.ones((2, 2), bool))
    clim = np.array([[1.0, 2.0], [3.0, 4.0]])
    truth = clim + np.array([[[0.5, -0.2], [0.1, 0.3]]])
    assert acc(clim[None], truth, clim, weights) == 0.0  # the climatology forecast
    blown = clim[None].copy()
    blown[0, 1, 1] = np.nan
    assert np.isnan(acc(blown, truth, clim, weights))
