"""Rollouts and their scores on the tiny data stores, with models whose forecasts are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from neuralogcm.channels import channel_level, ocean_channel_names
from neuralogcm.cli import main as cli
from neuralogcm.config import ConfigError, load
from neuralogcm.data import Normalizer, OceanData
from neuralogcm.models.base import ForecastModel, ModelContext
from neuralogcm.rollout import Rollout, write_rollouts
from neuralogcm.stores import (
    SCORE_COLUMNS,
    long_start_indices,
    open_rollout,
    read_scores,
    start_indices,
)
from neuralogcm.tables import stability_table, table2

STEP = 0.01  # normalised units per day
OUT_DAY, NAN_DAY = 4, 9  # Blowup leaves the physical bounds, then becomes non-finite


class Drift(ForecastModel):
    """Adds STEP on ocean cells each day (in normalised space); with ``stateful`` the n-th step
    adds n * STEP, counting n in the hidden state that the rollout must carry."""

    def __init__(self, ctx: ModelContext, stateful: bool) -> None:
        super().__init__(ctx, None)
        self.stateful = stateful

    def forward(self, state, forcing, doy, doy_next, hidden=None):
        n = (hidden if hidden is not None else torch.zeros(state.shape[0])) + 1
        step = n[:, None, None, None] if self.stateful else 1.0
        return self.apply_mask(state + STEP * step), n


class Blowup(ForecastModel):
    """Jumps by 1e4 (normalised units, far outside every bound) each day from day OUT_DAY of a
    run and is NaN on the ocean from day NAN_DAY (days counted in the hidden state)."""

    def forward(self, state, forcing, doy, doy_next, hidden=None):
        n = (hidden if hidden is not None else torch.zeros(state.shape[0])) + 1
        jump = torch.where(n >= OUT_DAY, 1e4, 0.0) + torch.where(n >= NAN_DAY, torch.nan, 0.0)
        return self.apply_mask(state + jump[:, None, None, None]), n


@pytest.fixture(scope="module")
def data(tiny_data_dir):
    return OceanData(tiny_data_dir)


def _config(tiny_config, **evaluate):
    tiny_config["models"] = {"drift": {"arch": "unet", "width": 4, "depth": 1}}
    tiny_config["evaluate"] = {"start_every_days": 100, "leads": [5, 20], "max_lead": 20,
                               "long_rollout_days": 365, "fig4_day": 90} | evaluate
    return load(tiny_config)


def _context(data):
    return ModelContext(grid=data.grid, depths=data.depths,
                        mask=torch.as_tensor(data.mask[channel_level(data.n_levels)]))


def _rollout(tmp_path, cfg, data, stateful, name="drift", model=None):
    """Roll ``model`` (default: the Drift model) out as ``models.<name>`` of ``cfg``; return the
    store's path."""
    torch.set_num_threads(1)
    normalizer = Normalizer.from_data_dir(data.data_dir)
    model = Drift(_context(data), stateful) if model is None else model
    path = tmp_path / f"{name}.zarr"
    write_rollouts(path, cfg, name, model, normalizer, data, torch.device("cpu"))
    return path


def _score(tmp_path, cfg, store, data):
    """`neuralogcm score` on a rollout store -> the scores table."""
    config_file = tmp_path / "config.json"
    config_file.write_text(cfg.model_dump_json())
    out = tmp_path / "scores" / "drift.csv"
    assert cli(["score", "--config", str(config_file), "--model", "drift", "--rollout",
                str(store), "--data-dir", str(data.data_dir), "--out", str(out)]) == 0
    return read_scores([out])


def test_start_dates_fit_the_test_year(data):
    starts = start_indices(data.dates, [2020], every=100, max_lead=20)
    assert [str(data.dates[i].date()) for i in starts] == [
        "2020-01-01", "2020-04-10", "2020-07-19", "2020-10-27"]  # 2020-10-27 + 20 d in 2020
    assert long_start_indices(data.dates, [2020], 365) == [starts[0]]
    with pytest.raises(ConfigError, match="max_lead=400"):
        start_indices(data.dates, [2020], every=100, max_lead=400)
    with pytest.raises(ConfigError, match="long_rollout_days=366"):
        long_start_indices(data.dates, [2020], 366)


@pytest.mark.parametrize("stateful", [False, True])
def test_rollout_matches_the_analytic_forecast(tmp_path, tiny_config, data, stateful):
    """Adding k STEP in normalised space is, in physical units, the initial anomaly persisted on
    the climatology of each lead's own date plus k STEP std; land is NaN."""
    cfg = _config(tiny_config)
    ds = open_rollout(_rollout(tmp_path, cfg, data, stateful))
    assert ds["prediction"].dims == ("start", "lead", "channel", "lat", "lon")
    assert ds["prediction"].shape == (4, 20, 9, 12, 24)
    assert ds["long_prediction"].shape == (1, 365, 9, 12, 24)
    assert list(ds["channel"].values) == ocean_channel_names(2)
    assert ds["units"].sel(channel="thetao_00").item() == "degrees_C"
    assert ds.attrs["seconds_per_simulated_day"] > 0 and ds.attrs["model"] == "drift"

    stats = xr.open_dataset(data.data_dir / "stats.nc")
    std = stats["std"].values[:9, None, None]
    clim = xr.open_zarr(data.data_dir / "climatology.zarr")
    periodic = np.isin(np.arange(9), [0, 1, 6, 7, 8])  # S(2), T(2), SSH

    def clim_of(i):
        d = data.day_index(i)
        full = np.zeros((9, 12, 24))
        full[periodic] = np.concatenate([clim["so"][d].values, clim["thetao"][d].values,
                                         clim["zos"][d].values[None]])
        return full

    start = start_indices(data.dates, [2020], 100, 20)[1]  # 2020-04-10
    for lead in (1, 7, 20):
        k = lead * (lead + 1) / 2 if stateful else lead
        expected = (data.state(start) - clim_of(start) + clim_of(start + lead) + k * STEP * std)
        got = ds["prediction"].isel(start=1).sel(lead=lead).values
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)
    land = ~data.mask[channel_level(2)]
    assert np.isnan(ds["prediction"].values[:, :, land]).all()
    assert np.isfinite(ds["prediction"].values[:, :, ~land]).all()
    # The long run crosses 29 February 2020 (climatology day 58, as 28 February).
    jan1 = long_start_indices(data.dates, [2020], 365)[0]
    k = 365 * 366 / 2 if stateful else 365
    expected = data.state(jan1) - clim_of(jan1) + clim_of(jan1 + 365) + k * STEP * std
    np.testing.assert_allclose(ds["long_prediction"].isel(long_start=0).sel(day=365).values,
                               expected, rtol=1e-4, atol=1e-3)


def test_scores_match_an_independent_computation(tmp_path, tiny_config, data):
    cfg = _config(tiny_config)
    store = _rollout(tmp_path, cfg, data, stateful=False)
    scores = _score(tmp_path, cfg, store, data)
    assert list(scores.columns) == SCORE_COLUMNS

    # Independent: xarray's weighted mean over the stores, land NaN dropped by xarray.
    ds = xr.open_zarr(store)
    ocean = xr.open_zarr(data.data_dir / "ocean.zarr")
    cos = np.cos(np.deg2rad(ds["lat"]))
    for var, level, lead in (("thetao", 0, 20), ("so", 1, 5), ("zos", 0, 20)):
        channel = f"{var}_{level:02d}" if var != "zos" else "zos"
        pred = ds["prediction"].sel(channel=channel, lead=lead)
        truth = ocean[var] if var == "zos" else ocean[var].isel(depth=level)
        truth = truth.sel(time=ds["valid_time"].sel(lead=lead)).drop_vars("time")
        mse = ((pred - truth) ** 2).weighted(cos).mean(("lat", "lon"))
        rmse = float(np.sqrt(mse.mean("start")))
        row = scores[(scores.metric == "rmse") & (scores.variable == var)
                     & (scores.level == level) & (scores.lead == lead)]
        assert row.value.item() == pytest.approx(rmse, rel=1e-5)
        assert rmse > 0

    # Normalised RMSE: mean over channels of mse / std^2, then over starts, then sqrt.
    std = xr.open_dataset(data.data_dir / "stats.nc")["std"].values[:9]
    assert len(scores[(scores.metric == "rmse") & (scores.lead == 20)]) == 9
    per_start = []
    for s in range(ds.sizes["start"]):
        mses = []
        for c, channel in enumerate(ocean_channel_names(2)):
            var, level = (channel, 0) if channel == "zos" else (channel[:-3], int(channel[-2:]))
            truth = ocean[var] if var == "zos" else ocean[var].isel(depth=level)
            valid = ds["valid_time"].isel(start=s).sel(lead=20).values
            err = ds["prediction"].isel(start=s).sel(lead=20, channel=channel) - truth.sel(
                time=valid).drop_vars("time")
            mses.append(float((err**2).weighted(cos).mean(("lat", "lon"))) / std[c] ** 2)
        per_start.append(np.mean(mses))
    norm = scores[(scores.metric == "rmse_norm") & (scores.lead == 20)].value.item()
    assert norm == pytest.approx(np.sqrt(np.mean(per_start)), rel=1e-5)

    stability = scores[scores.lead.isna()].set_index("metric").value
    assert stability["stable_fraction"] == 1.0  # 365 * 0.01 std stays inside the bounds
    assert np.isnan(stability["first_day_out_of_bounds"])
    assert stability["drift_thetao"] > 0  # the drift model warms: + 3.65 std of T anomalies
    acc = scores[(scores.metric == "acc")]
    assert set(acc.variable) == {"so", "thetao", "zos"}
    assert ((acc.value > -1) & (acc.value <= 1)).all()
    assert len(pd.unique(acc.lead)) == 20


def test_unstable_runs_are_caught(tmp_path, tiny_config, data):
    """Bounds so tight that the drifting SSH leaves them: the first day out is when it does."""
    cfg = _config(tiny_config, bounds={"so": [0, 45], "uo": [-5, 5], "vo": [-5, 5],
                                       "thetao": [-3, 40], "zos": [-1.2, 1.2]})
    store = _rollout(tmp_path, cfg, data, stateful=True)
    ds = open_rollout(store)
    long = ds["long_prediction"].isel(long_start=0).sel(channel="zos").values
    out_days = np.flatnonzero((np.abs(np.nan_to_num(long)) > 1.2).any(axis=(1, 2))) + 1
    assert out_days[0] > 32  # leaves the bounds after the first block of days the scorer reads
    scores = _score(tmp_path, cfg, store, data)
    stability = scores[scores.lead.isna()].set_index("metric").value
    assert stability["stable_fraction"] == 0.0
    assert stability["first_day_out_of_bounds"] == out_days[0]


def test_score_names_a_missing_rollout_store(tmp_path, tiny_config, data, capsys):
    cfg = _config(tiny_config)
    config_file = tmp_path / "config.json"
    config_file.write_text(cfg.model_dump_json())
    out = tmp_path / "scores" / "drift.csv"
    assert cli(["score", "--config", str(config_file), "--model", "drift", "--rollout",
                str(tmp_path / "nowhere.zarr"), "--data-dir", str(data.data_dir),
                "--out", str(out)]) == 1
    assert "nowhere.zarr" in capsys.readouterr().err
    assert not out.exists()


def test_the_guard_stops_a_non_finite_run_and_the_tables_give_its_days(tmp_path, tiny_config,
                                                                       data):
    """A model that leaves the bounds on day OUT_DAY and is non-finite from day NAN_DAY: its
    runs stop there (the rest NaN, the day recorded), and every table says both days."""
    cfg = _config(tiny_config, leads=[2, 5, 20])
    first = start_indices(data.dates, [2020], 100, 20)[0]
    rollout = Rollout(Blowup(_context(data), None), Normalizer.from_data_dir(data.data_dir), data,
                      torch.device("cpu"))
    assert [t for t, _, _ in rollout.days([first, first + 1], [365, 20])] == list(range(NAN_DAY))
    assert rollout.nonfinite == {0: NAN_DAY, 1: NAN_DAY}

    store = _rollout(tmp_path, cfg, data, False, model=Blowup(_context(data), None))
    ds = open_rollout(store)
    starts = [str(d)[:10] for d in ds["start"].values]
    assert ds.attrs["first_nonfinite_day"] == dict.fromkeys(starts, NAN_DAY)
    ocean = data.mask[channel_level(2)]
    for var in ("prediction", "long_prediction"):
        fields = ds[var].values[:, :, ocean]  # (runs, days, ocean cells)
        assert np.isfinite(fields[:, : NAN_DAY - 1]).all()
        assert np.isnan(fields[:, NAN_DAY - 1 :]).all()

    scores = _score(tmp_path, cfg, store, data)
    stability = scores[scores.lead.isna()].set_index("metric").value
    assert stability["stable_fraction"] == 0.0 and stability["stable_fraction_starts"] == 0.0
    for runs in ("", "_starts"):
        assert stability[f"first_day_out_of_bounds{runs}"] == OUT_DAY
        assert stability[f"first_day_nonfinite{runs}"] == NAN_DAY
    assert np.isnan(stability["drift_thetao"])

    wide, markdown = table2(scores, cfg)
    assert np.isfinite(wide.loc["drift", "day 5"])  # the CSV keeps the number
    last_row = [cell.strip() for cell in markdown.splitlines()[-1].split("|")[1:-1]]
    assert last_row == ["drift", f"{wide.loc['drift', 'day 2']:.4g}",
                        f"out of bounds (d{OUT_DAY})", f"non-finite (d{NAN_DAY})"]
    wide, markdown = stability_table(scores, cfg)
    row = [cell.strip() for cell in markdown.splitlines()[-1].split("|")[1:-1]]
    assert row == ["drift", "0", str(OUT_DAY), str(NAN_DAY), f"non-finite (d{NAN_DAY})",
                   f"non-finite (d{NAN_DAY})", "0", str(OUT_DAY)]
    assert "diverged" not in markdown
