"""The reference forecasts against an independent computation: numpy by hand on the tiny data
stores (read with xarray, not through the package) and on synthetic AR(1) series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from test_rollout import _config

from neuralogcm.channels import ocean_channel_names
from neuralogcm.cli import main as cli
from neuralogcm.metrics import REFERENCES
from neuralogcm.model_options import UNetOptions
from neuralogcm.reference import lag1_autocorrelation
from neuralogcm.stores import open_rollout, read_scores

CHANNELS = ocean_channel_names(2)  # so 0,1; uo 0,1; vo 0,1; thetao 0,1; zos


@pytest.fixture(scope="module")
def referenced(tmp_path_factory, tiny_data_dir):
    """The three reference stores and their scores, through the verbs."""
    from conftest import TINY_CONFIG

    root = tmp_path_factory.mktemp("references")
    config = root / "config.json"
    config.write_text(_config(dict(TINY_CONFIG)).model_dump_json())
    out = {}
    for kind in REFERENCES:
        store, scores = root / f"{kind}.zarr", root / f"{kind}.csv"
        assert cli(["reference", "--kind", kind, "--config", str(config), "--data-dir",
                    str(tiny_data_dir), "--out", str(store)]) == 0
        assert cli(["score", "--config", str(config), "--model", kind, "--rollout", str(store),
                    "--data-dir", str(tiny_data_dir), "--out", str(scores)]) == 0
        out[kind] = (open_rollout(store), read_scores([scores]))
    return out


@pytest.fixture(scope="module")
def hand(tiny_data_dir):
    """By hand from the stores: truth (days, C, H, W) of 2018-2020, its dates, the no-anomaly
    state per date (the climatology of S, T, SSH; the training mean of U, V), std (C,), and
    area weights (C, H, W) (cos(lat) on ocean, 0 on land)."""
    ocean = xr.open_zarr(tiny_data_dir / "ocean.zarr")
    clim = xr.open_zarr(tiny_data_dir / "climatology.zarr")
    stats = xr.open_dataset(tiny_data_dir / "stats.nc")
    mask = xr.open_dataset(tiny_data_dir / "mask.nc")["mask"].values.astype(bool)
    dates = pd.DatetimeIndex(ocean["time"].values)

    def channels(ds, var):
        return ds[var].values[:, None] if var == "zos" else ds[var].values

    variables = ("so", "uo", "vo", "thetao", "zos")
    truth = np.concatenate([channels(ocean, v) for v in variables], axis=1).astype(np.float64)
    day = dates.day_of_year.to_numpy() - 1
    day = np.where(dates.is_leap_year & (day >= 59), day - 1, day)  # 29 Feb as 28 Feb
    uv = np.zeros((365, 2, *mask.shape[1:]))
    normal = np.concatenate([channels(clim, v) if v in ("so", "thetao", "zos") else uv
                             for v in variables], axis=1)
    normal[:, 2:6] = stats["mean"].values[2:6, None, None]  # uo, vo: their training mean
    zero = normal[day]
    ocean_mask = np.concatenate([mask, mask, mask, mask, mask[:1]])  # channel order
    weights = np.cos(np.deg2rad(ocean["lat"].values))[:, None] * ocean_mask
    return {"truth": truth, "dates": dates, "zero": zero, "std": stats["std"].values[:9],
            "weights": weights, "ocean": ocean_mask}


def _rmse(pairs, weights):
    """sqrt(mean over pairs of the area-weighted mean square of a - b over ocean cells)."""
    mse = [np.sum(weights * np.where(weights > 0, a - b, 0.0) ** 2, axis=(-2, -1))
           / weights.sum(axis=(-2, -1)) for a, b in pairs]
    return np.sqrt(np.mean(mse, axis=0))


def _score(scores, metric, lead, channel=None):
    """The score of ``metric`` at ``lead`` of ``channel`` (e.g. 'so_01'; None: all channels)."""
    rows = scores[(scores.metric == metric) & (scores.lead == lead)]
    if channel is not None:
        var, level = ("zos", 0) if channel == "zos" else (channel[:-3], int(channel[-2:]))
        rows = rows[(rows.variable == var) & (rows.level == level)]
    return rows.value.item()


START_DATES = pd.date_range("2020-01-01", periods=4, freq="100D")  # every 100 days, 20-day runs


def test_the_stores_have_the_rollouts_layout(referenced):
    for kind, (ds, _) in referenced.items():
        assert ds["prediction"].shape == (4, 20, 9, 12, 24)
        assert ds["long_prediction"].shape == (1, 365, 9, 12, 24)
        assert ds["prediction"].dtype == np.float32
        assert ds.attrs["model"] == kind and ds.attrs["arch"] == "reference"
        assert pd.DatetimeIndex(ds["start"].values).equals(START_DATES)


def test_persistence_is_scored_as_truth_t0_against_truth_t0_plus_lead(referenced, hand):
    ds, scores = referenced["persistence"]
    index = {d: i for i, d in enumerate(hand["dates"])}
    truth, weights = hand["truth"], hand["weights"]
    first = [index[d] for d in START_DATES]
    # the store holds the initial state (float32), NaN on land
    held = ds["prediction"].values
    for lead in (1, 20):
        np.testing.assert_allclose(held[:, lead - 1][:, hand["ocean"]],
                                   truth[first][:, hand["ocean"]], rtol=1e-6)
    assert np.isnan(held[:, :, ~hand["ocean"]]).all()
    for lead in (1, 5, 20):
        pairs = [(truth[i], truth[i + lead]) for i in first]
        rmse = _rmse(pairs, weights)
        for c, channel in enumerate(CHANNELS):
            assert _score(scores, "rmse", lead, channel) == pytest.approx(rmse[c], rel=1e-5)
        norm = np.sqrt(np.mean([np.mean(_rmse([p], weights) ** 2 / hand["std"] ** 2)
                                for p in pairs]))
        assert _score(scores, "rmse_norm", lead) == pytest.approx(norm, rel=1e-5)
    jan1 = index[pd.Timestamp("2020-01-01")]
    stability = scores[scores.lead.isna()].set_index("metric").value
    assert stability["stable_fraction"] == 1.0
    t, s = np.s_[6:8], np.s_[0:2]  # the two levels of T and S
    for var, sl in (("thetao", t), ("so", s)):
        w = weights[sl]
        drift = np.sum(w * np.nan_to_num(truth[jan1][sl] - truth[jan1 + 365][sl])) / w.sum()
        assert stability[f"drift_{var}"] == pytest.approx(drift, rel=1e-4)


def test_climatology_is_scored_as_the_anomaly(referenced, hand):
    """RMSE of the climatology forecast = RMSE of the truth's anomaly (from the climatology of
    S, T, SSH; from the training mean of U, V); ACC 0."""
    ds, scores = referenced["climatology"]
    index = {d: i for i, d in enumerate(hand["dates"])}
    truth, zero, weights = hand["truth"], hand["zero"], hand["weights"]
    for lead in (1, 20):
        valid = [index[d] + lead for d in START_DATES]
        np.testing.assert_allclose(ds["prediction"].values[:, lead - 1][:, hand["ocean"]],
                                   zero[valid][:, hand["ocean"]], rtol=1e-5, atol=1e-6)
        rmse = _rmse([(truth[i], zero[i]) for i in valid], weights)
        for c, channel in enumerate(CHANNELS):
            assert _score(scores, "rmse", lead, channel) == pytest.approx(rmse[c], rel=1e-4)
    acc = scores[scores.metric == "acc"]
    assert (acc.value == 0).all() and len(acc) == 5 * 20


def test_damped_persistence_decay_and_forecast_by_hand(referenced, hand):
    ds, _ = referenced["damped_persistence"]
    from conftest import TINY_CONFIG

    first, last = TINY_CONFIG["data"]["years"]["train"]
    train = np.flatnonzero((hand["dates"].year >= first) & (hand["dates"].year <= last))
    z = (hand["truth"][train] - hand["zero"][train]) / hand["std"][:, None, None]
    z = np.where(hand["ocean"], z, 0.0)
    w = hand["weights"]
    lagged = np.sum(w * z[:-1] * z[1:], axis=(0, 2, 3))
    r1 = lagged / np.sqrt(np.sum(w * z[:-1] ** 2, axis=(0, 2, 3))
                          * np.sum(w * z[1:] ** 2, axis=(0, 2, 3)))
    np.testing.assert_allclose(ds.attrs["decay_per_day"], np.clip(r1, 0, 1), rtol=1e-5)
    assert 0 < min(ds.attrs["decay_per_day"]) < max(ds.attrs["decay_per_day"]) < 1
    index = {d: i for i, d in enumerate(hand["dates"])}
    start = index[START_DATES[1]]
    anomaly = hand["truth"][start] - hand["zero"][start]
    for lead in (1, 20):
        expected = hand["zero"][start + lead] + r1[:, None, None] ** lead * anomaly
        got = ds["prediction"].isel(start=1).sel(lead=lead).values
        np.testing.assert_allclose(got[hand["ocean"]], expected[hand["ocean"]], rtol=1e-5,
                                   atol=1e-5)


def test_lag1_autocorrelation_of_synthetic_ar1_series():
    """AR(1) anomalies a_t = phi a_t-1 + sqrt(1 - phi^2) e_t per channel: the estimate, fed in
    blocks, equals the hand formula over the whole series and is phi; the lag-tau
    autocorrelation of the series is phi^tau, the damping of the reference."""
    rng = np.random.default_rng(3)
    phi = np.array([0.95, 0.6, 0.0])
    days, shape = 3000, (3, 4, 6)
    a = np.empty((days, *shape))
    a[0] = rng.standard_normal(shape)
    for t in range(1, days):
        a[t] = phi[:, None, None] * a[t - 1] + np.sqrt(1 - phi[:, None, None] ** 2) * (
            rng.standard_normal(shape))
    lat = np.array([-60.0, -20.0, 20.0, 60.0])
    weights = np.cos(np.deg2rad(lat))[:, None] * (rng.random(shape) > 0.2)
    a[:, weights == 0] = np.nan  # land

    blocks = [a[i: i + 7] for i in range(0, days, 7)]
    estimate = lag1_autocorrelation(blocks, weights)
    x = np.nan_to_num(a)
    by_hand = [np.sum(weights[c] * x[:-1, c] * x[1:, c])
               / np.sqrt(np.sum(weights[c] * x[:-1, c] ** 2) * np.sum(weights[c] * x[1:, c] ** 2))
               for c in range(3)]
    np.testing.assert_allclose(estimate, by_hand, rtol=1e-12)
    np.testing.assert_allclose(estimate, phi, atol=0.02)
    for tau in (2, 5):
        lag = [np.sum(weights[c] * x[:-tau, c] * x[tau:, c]) / np.sum(weights[c] * x[:, c] ** 2)
               for c in range(3)]
        np.testing.assert_allclose(lag, phi**tau, atol=0.03)


def test_a_model_may_not_take_a_reference_name(tmp_path, tiny_config, tiny_data_dir, capsys):
    cfg = _config(tiny_config)
    cfg = cfg.model_copy(update={"models": {"climatology": UNetOptions(arch="unet")}})
    config = tmp_path / "config.json"
    config.write_text(cfg.model_dump_json())
    assert cli(["reference", "--kind", "climatology", "--config", str(config), "--data-dir",
                str(tiny_data_dir), "--out", str(tmp_path / "c.zarr")]) == 1
    assert "taken by a reference forecast" in capsys.readouterr().err
