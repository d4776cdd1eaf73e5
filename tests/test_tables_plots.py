"""The table and plot verbs on known scores, histories and rollouts of the tiny data stores."""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from matplotlib.image import imread
from test_rollout import _config, _rollout

from neuralogcm.channels import channel_level, channel_variable
from neuralogcm.cli import main as cli
from neuralogcm.config import load
from neuralogcm.data import OceanData
from neuralogcm.errors import DataError
from neuralogcm.metrics import REFERENCES
from neuralogcm.model_options import UNetOptions
from neuralogcm.stores import SCORE_COLUMNS
from neuralogcm.tables import (
    ablation_table,
    speed_table,
    stability_table,
    table2,
    variable_rows,
    variables_table,
)

LEADS = np.arange(1, 21)
MODELS = ["neuralogcm", "unet"]
REFERENCE_ROWS = ["persistence", "damped persistence", "climatology"]  # after the models


def _fake_scores(model: str, offset: float, depths=(0.494025, 40.34405), out=np.nan,
                 nonfinite=np.nan) -> pd.DataFrame:
    """Scores whose value encodes what they are: rmse = offset + lead / 100 + channel / 1000;
    ``out`` / ``nonfinite``: the first day a start-date run leaves the bounds / is non-finite."""
    n_levels = len(depths)
    variables = channel_variable(n_levels)
    levels = channel_level(n_levels)
    rows = []
    for lead in LEADS:
        rows.append((model, "rmse_norm", "all", -1, np.nan, lead, offset + lead / 100, "1"))
        for c, (var, level) in enumerate(zip(variables, levels, strict=True)):
            depth = 0.0 if var == "zos" else depths[level]
            value = offset + lead / 100 + c / 1000
            rows.append((model, "rmse", var, level, depth, lead, value, "x"))
            if var in ("so", "thetao", "zos"):
                rows.append((model, "acc", var, level, depth, lead, 1 - value / 10, "1"))
    rows.append((model, "stable_fraction", "all", -1, np.nan, np.nan, float(offset < 1), "1"))
    rows.append((model, "first_day_out_of_bounds", "all", -1, np.nan, np.nan,
                 np.nan if offset < 1 else 42, "day"))
    rows.append((model, "first_day_nonfinite", "all", -1, np.nan, np.nan,
                 np.nan if offset < 1 else 50, "day"))
    rows.append((model, "first_day_out_of_bounds_starts", "all", -1, np.nan, np.nan, out, "day"))
    rows.append((model, "first_day_nonfinite_starts", "all", -1, np.nan, np.nan, nonfinite,
                 "day"))
    for metric in ("drift_thetao", "drift_so", "stable_fraction_starts"):
        rows.append((model, metric, "all", -1, np.nan, np.nan, offset, "1"))
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


@pytest.fixture
def scores():
    """Two models and two references; unet is worse than climatology, neuralogcm better."""
    return pd.concat([_fake_scores("climatology", 1.0), _fake_scores("unet", 2.0),
                      _fake_scores("persistence", 0.5), _fake_scores("neuralogcm", 0.0)])


def _rows(markdown: str) -> dict[str, list[str]]:
    """The body rows of the first markdown table in ``markdown``: first cell -> the others."""
    table = [line for line in markdown.split("\n\n") if line.startswith("|")][0].splitlines()
    cells = [[c.strip() for c in line.split("|")[1:-1]] for line in table[2:]]
    return {row[0]: row[1:] for row in cells}


def test_table2_picks_the_normalised_rmse_at_the_configured_leads(tiny_config, scores):
    cfg = _config(tiny_config)  # leads 5 and 20
    cfg = cfg.model_copy(update={"models": {m: {"arch": "unet"} for m in MODELS}})
    wide, markdown = table2(scores, cfg)
    # config order, not score order; the references after the models, by their table names
    assert list(wide.index) == MODELS + ["persistence", "climatology"]
    assert list(wide.columns) == ["day 5", "day 20"]
    np.testing.assert_allclose(wide.values, [[0.05, 0.20], [2.05, 2.20], [0.55, 0.7],
                                             [1.05, 1.2]])
    assert "normalised space" in markdown and "every 100 days" in markdown
    assert "'†': a model worse than the climatology reference" in markdown
    assert _rows(markdown) == {"neuralogcm": ["0.05", "0.2"], "unet": ["2.05 †", "2.2 †"],
                               "persistence": ["0.55", "0.7"], "climatology": ["1.05", "1.2"]}


def test_leads_after_a_run_leaves_the_bounds_say_so_with_the_day(tiny_config, scores):
    cfg = _config(tiny_config)  # leads 5 and 20
    cfg = cfg.model_copy(update={"models": {m: {"arch": "unet"} for m in MODELS}})
    blown = pd.concat([_fake_scores("climatology", 1.0),
                       _fake_scores("unet", 2.0, out=3, nonfinite=17),
                       _fake_scores("neuralogcm", 0.0, out=20)])
    blown.loc[(blown.model == "unet") & (blown.lead == 20), "value"] = np.nan
    wide, markdown = table2(blown, cfg)
    assert np.isnan(wide.loc["unet", "day 20"]) and wide.loc["unet", "day 5"] == 2.05
    rows = _rows(markdown)
    assert rows["unet"] == ["out of bounds (d3)", "non-finite (d17)"]
    assert rows["neuralogcm"] == ["0.05", "out of bounds (d20)"]
    assert "diverged" not in markdown
    frame, markdown = variables_table(blown, cfg)
    ssh_acc = _rows(markdown.split("### SSH: ACC (1)")[1])
    assert ssh_acc["unet"] == ["out of bounds (d3)", "non-finite (d17)"]
    sst = frame.loc["SST"].set_index(["metric", "model"])
    assert sst.loc[("RMSE", "neuralogcm"), "day 20"] == pytest.approx(0.206)  # the CSV keeps it


ABLATION = {  # the hybrid family's switches, and a baseline between them
    "full": {"arch": "neuralogcm"},
    "unet": {"arch": "unet"},
    "physics_only": {"arch": "neuralogcm", "corrector": False},
    "frozen": {"arch": "neuralogcm", "corrector": False, "learnable_physics": False,
               "coriolis": True},
    "corrector_only": {"arch": "neuralogcm", "physics": False},
    "no_dynamics": {"arch": "neuralogcm", "coriolis": False, "pressure_gradient": False},
    "pressure_only": {"arch": "neuralogcm", "coriolis": False, "pressure_gradient": True},
}


def test_ablation_table_gives_the_switches_beside_table2s_cells(tiny_config):
    tiny_config["physics"] = {"coriolis": True, "pressure_gradient": False}
    cfg = _config(tiny_config)  # leads 5 and 20
    cfg = cfg.model_copy(update={"models": ABLATION})
    scores = pd.concat([_fake_scores(name, 0.1 * k, out=20 if name == "frozen" else np.nan)
                        for k, name in enumerate(ABLATION)]
                       + [_fake_scores("climatology", 0.45), _fake_scores("persistence", 0.5)])
    frame, markdown = ablation_table(scores, cfg)
    hybrids = ["full", "physics_only", "frozen", "corrector_only", "no_dynamics", "pressure_only"]
    assert list(frame.index) == hybrids + ["persistence", "climatology"]  # no baseline
    switches = ["physics", "corrector", "coefficients", "Coriolis + pressure gradient"]
    assert list(frame.columns) == switches + ["day 5", "day 20"]
    rows = _rows(markdown)
    assert {name: cells[:4] for name, cells in rows.items()} == {
        # physics.coriolis on, physics.pressure_gradient off unless a model sets its own
        "full": ["yes", "yes", "learnable", "Coriolis only"],
        "physics_only": ["yes", "no", "learnable", "Coriolis only"],
        "frozen": ["yes", "no", "frozen", "Coriolis only"],
        "corrector_only": ["no", "yes", "—", "—"],
        "no_dynamics": ["yes", "yes", "learnable", "off"],
        "pressure_only": ["yes", "yes", "learnable", "pressure gradient only"],
        "persistence": ["", "", "", ""],
        "climatology": ["", "", "", ""],
    }
    # the RMSE cells, numbers and marks, are Table 2's for the same rows
    wide, table2_markdown = table2(scores, cfg)
    table2_rows = _rows(table2_markdown)
    assert {name: cells[4:] for name, cells in rows.items()} == {
        name: table2_rows[name] for name in frame.index}
    assert rows["frozen"][4:] == ["0.35", "out of bounds (d20)"]
    assert rows["pressure_only"][4:] == ["0.65 †", "0.8 †"]
    pd.testing.assert_frame_equal(frame[["day 5", "day 20"]], wide.loc[frame.index])
    assert "'on' when both are on" in markdown and "'Coriolis only'" in markdown

    tiny_config["physics"] = {"coriolis": True, "pressure_gradient": True}
    both = _config(tiny_config).model_copy(update={"models": ABLATION})
    assert ablation_table(scores, both)[0].loc["full", "Coriolis + pressure gradient"] == "on"
    with pytest.raises(DataError, match="no rows of the hybrid models \\['full'\\]"):
        ablation_table(scores[scores.model != "full"], cfg)


def test_variable_tables(tiny_config, scores):
    cfg = _config(tiny_config, table_depths=[0, 40])
    cfg = cfg.model_copy(update={"models": {m: {"arch": "unet"} for m in MODELS}})
    tables = {(q, m): w for q, m, _, w in variable_rows(scores, cfg)}
    assert list(tables["SST", "ACC"].index) == MODELS + ["persistence", "climatology"]
    assert list(tables) == [("SST", "RMSE"), ("SSS", "RMSE"), ("surface current (vector)", "RMSE"),
                            ("SSH", "RMSE"), ("T at 40 m", "RMSE"), ("S at 40 m", "RMSE"),
                            ("SST", "ACC"), ("SSS", "ACC"), ("SSH", "ACC")]
    # channels: so 0,1; uo 2,3; vo 4,5; thetao 6,7; zos 8
    assert tables["SST", "RMSE"].loc["unet", "day 5"] == pytest.approx(2.05 + 0.006)
    assert tables["T at 40 m", "RMSE"].loc["neuralogcm", "day 20"] == pytest.approx(0.2 + 0.007)
    u, v = 0.05 + 0.002, 0.05 + 0.004
    assert tables["surface current (vector)", "RMSE"].loc["neuralogcm", "day 5"] == (
        pytest.approx(np.hypot(u, v)))
    assert tables["SSH", "ACC"].loc["neuralogcm", "day 20"] == pytest.approx(1 - 0.208 / 10)
    _, markdown = variables_table(scores, cfg)
    sst_acc = _rows(markdown.split("### SST: ACC (1)")[1])
    assert sst_acc["unet"] == ["0.7944 †", "0.7794 †"]  # ACC below climatology's: worse
    assert sst_acc["neuralogcm"] == ["0.9944", "0.9794"] and sst_acc["climatology"][0] == "0.8944"


def test_stability_table_gives_the_days(tiny_config, scores):
    cfg = _config(tiny_config)
    cfg = cfg.model_copy(update={"models": {m: {"arch": "unet"} for m in MODELS}})
    blown = scores.copy()
    blown.loc[(blown.model == "unet") & (blown.metric == "drift_so"), "value"] = np.nan
    wide, markdown = stability_table(blown, cfg)
    assert list(wide.index) == MODELS + ["persistence", "climatology"]
    rows = _rows(markdown)
    # stable fraction, first day out, first day non-finite, T drift, S drift, start-date runs
    assert rows["unet"] == ["0", "42", "50", "2", "non-finite (d50)", "2", "never"]
    assert rows["neuralogcm"] == ["1", "never", "never", "0", "0", "0", "never"]


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, tiny_data_dir):
    """Rollouts, scores and histories of two drifting 'models', and the scores of the reference
    forecasts, through the verbs."""
    from conftest import TINY_CONFIG

    root = tmp_path_factory.mktemp("evaluated")
    data = OceanData(tiny_data_dir)
    config = dict(TINY_CONFIG)
    cfg = _config(config)
    cfg = cfg.model_copy(update={"models": {"neuralogcm": UNetOptions(arch="unet"),
                                            "unet": UNetOptions(arch="unet")}})
    config_file = root / "config.json"
    config_file.write_text(cfg.model_dump_json())
    paths = {}
    for name, stateful in (("neuralogcm", False), ("unet", True)):
        store = _rollout(root, cfg, data, stateful, name)
        out = root / "scores" / f"{name}.csv"
        assert cli(["score", "--config", str(config_file), "--model", name, "--rollout",
                    str(store), "--data-dir", str(tiny_data_dir), "--out", str(out)]) == 0
        history = root / "models" / name / "history.csv"
        history.parent.mkdir(parents=True)
        pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [1.0, 0.5, 0.4],
                      "valid_loss": [0.9, 0.6, 0.5] if stateful else [0.8, 0.3, 0.2],
                      "seconds": [6.0, 9.0, 12.0],
                      # the unet's history is an old run's, without the steps column
                      **({} if stateful else {"steps": [3, 2, 5], "kappa": [1e3, 1.5e3, 2e3],
                                              "viscosity": [1e4, 9e3, 8e3]})}).to_csv(
            history, index=False)
        paths[name] = {"rollout": store, "scores": out, "history": history}
    references = []
    for kind in REFERENCES:
        store, out = root / f"{kind}.zarr", root / "scores" / f"{kind}.csv"
        _run("reference", "--kind", kind, "--config", config_file, "--data-dir", tiny_data_dir,
             "--out", store)
        _run("score", "--config", config_file, "--model", kind, "--rollout", store,
             "--data-dir", tiny_data_dir, "--out", out)
        references.append(out)
    return root, config_file, paths, cfg, references


def _run(*args):
    assert cli([str(a) for a in args]) == 0


def test_table_verbs_write_csv_and_captioned_markdown(evaluated, tiny_data_dir):
    root, config, paths, cfg, references = evaluated
    scores = [p["scores"] for p in paths.values()] + references
    for name in ("table2", "ablation", "variables", "stability"):
        _run("table", name, "--config", config, "--scores", *scores, "--out",
             root / "tables" / f"{name}.csv")
    t2 = pd.read_csv(root / "tables" / "table2.csv", index_col=0)
    assert list(t2.index) == MODELS + REFERENCE_ROWS and list(t2.columns) == ["day 5", "day 20"]
    assert (t2["day 20"] > t2["day 5"])[MODELS].all()  # drifting forecasts get worse with lead
    # on these smooth fields the AR(1) anomaly forecast beats persistence at every lead and the
    # climatology at short leads (it tends to the climatology as its decay reaches zero)
    assert (t2.loc["damped persistence"] < t2.loc["persistence"]).all()
    assert t2.loc["damped persistence", "day 5"] < t2.loc["climatology", "day 5"]
    assert t2.loc["unet", "day 20"] > t2.loc["neuralogcm", "day 20"]  # n(n+1)/2 drift is worse
    table2_md = (root / "tables" / "table2.md").read_text()
    assert table2_md.startswith("Table 2: RMSE over all")
    assert list(_rows(table2_md)) == MODELS + REFERENCE_ROWS
    ablation = pd.read_csv(root / "tables" / "ablation.csv", index_col=0)  # no hybrid here
    assert list(ablation.index) == REFERENCE_ROWS
    pd.testing.assert_frame_equal(ablation[t2.columns], t2.loc[REFERENCE_ROWS])
    variables = (root / "tables" / "variables.md").read_text()
    assert "### SST: RMSE (degrees_C)" in variables and "### SSH: ACC (1)" in variables
    stability = pd.read_csv(root / "tables" / "stability.csv", index_col=0)
    # the stateful drift adds n (n + 1) / 2 STEP std: its year-long run leaves the bounds
    assert stability.iloc[:, 0].tolist() == [1.0, 0.0, 1.0, 1.0, 1.0]  # references: stable
    assert np.isnan(stability.iloc[0, 1]) and 20 < stability.iloc[1, 1] < 365
    assert " never |" in (root / "tables" / "stability.md").read_text()


def test_speed_table(evaluated, caplog):
    root, config, paths, cfg, _ = evaluated
    with caplog.at_level(logging.WARNING, logger="neuralogcm.tables"):
        frame, markdown = speed_table([p["rollout"] for p in paths.values()],
                                     [p["history"] for p in paths.values()], cfg)
    # history.csv: seconds 6, 9 over steps 3, 2 in the one-day-window epochs (train.epochs = 2:
    # the third epoch, 12 s over 5 steps, would be multistep fine-tuning)
    assert frame.loc["neuralogcm", "train_seconds_per_step"] == pytest.approx((6 + 9) / (3 + 2))
    # a history without a steps column (an older run): an empty cell and a warning naming it
    assert np.isnan(frame.loc["unet", "train_seconds_per_step"])
    assert str(paths["unet"]["history"]) in caplog.text and "steps" in caplog.text
    row = next(line for line in markdown.splitlines() if line.startswith("| unet"))
    assert row.split("|")[2].strip() == ""
    sec = frame.loc["unet", "rollout_seconds_per_simulated_day"]
    assert frame.loc["unet", "simulated_years_per_day"] == pytest.approx(86400 / sec / 365)
    assert "optimiser steps of those epochs, batch 4 per process" in markdown


def test_speed_verb_reads_files_only(evaluated, tmp_path):
    """The speed verb needs no data stores: it never imports neuralogcm.data."""
    root, config, paths, cfg, _ = evaluated
    out = tmp_path / "speed.csv"
    args = ["table", "speed", "--config", str(config), "--rollouts",
            str(paths["neuralogcm"]["rollout"]), "--histories",
            str(paths["neuralogcm"]["history"]), "--out", str(out)]
    code = ("import sys; from neuralogcm.cli import main; rc = main(sys.argv[1:]); "
            "assert 'neuralogcm.data' not in sys.modules; sys.exit(rc)")
    subprocess.run([sys.executable, "-c", code, *args], check=True)
    assert pd.read_csv(out, index_col=0).loc["neuralogcm", "train_seconds_per_step"] == 3.0


def test_figures(evaluated, tiny_data_dir):
    root, config, paths, cfg, references = evaluated
    figures = root / "figures"
    histories = [p["history"] for p in paths.values()]
    _run("plot", "fig3", "--config", config, "--histories", *histories,
         "--out", figures / "fig3.png")
    _run("plot", "coefficients", "--config", config, "--histories", *histories,
         "--out", figures / "coefficients.png")
    _run("plot", "rmse_vs_lead", "--config", config, "--scores",
         *[p["scores"] for p in paths.values()], *references, "--out", figures)
    _run("plot", "fig4", "--config", config, "--rollouts",
         *[p["rollout"] for p in paths.values()], "--data-dir", tiny_data_dir,
         "--out", figures / "fig4.png")
    names = sorted(p.name for p in figures.iterdir())
    assert names == sorted(["fig3.png", "coefficients.png", "fig4.png"]
                           + [f"rmse_vs_lead_{v}.png"
                              for v in ("so", "uo", "vo", "thetao", "zos", "all")])
    fig4 = imread(figures / "fig4.png")
    assert fig4.shape[1] > 1.5 * fig4.shape[0]  # three panels side by side, two rows


@pytest.mark.parametrize("truth", [2000.0, None])
def test_coefficients_figure_draws_the_synthetic_truth_when_the_store_has_it(
        tiny_config, tmp_path, truth):
    from neuralogcm.plots import SYNTHETIC_DIFFUSIVITY, coefficients_figure, synthetic_diffusivity

    ocean = tmp_path / "ocean.zarr"
    attrs = {} if truth is None else {SYNTHETIC_DIFFUSIVITY: truth}
    xr.Dataset({"zos": ("time", np.zeros(2))}, attrs=attrs).to_zarr(ocean, consolidated=False)
    value = synthetic_diffusivity(ocean)
    assert value == truth
    cfg = _config(tiny_config)  # two levels
    history = pd.DataFrame({"epoch": [1, 2], "valid_loss": [0.2, 0.1], "seconds": [1.0, 1.0],
                            "kappa_00": [1e3, 1.1e3], "kappa_01": [1e3, 1.2e3],
                            "viscosity_00": [1e4, 9e3], "viscosity_01": [1e4, 8e3]})
    fig = coefficients_figure({"hybrid": history, "unet": history[["epoch", "valid_loss",
                                                                   "seconds"]]},
                              cfg, tmp_path / "c.png", value)
    assert (tmp_path / "c.png").is_file()
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    assert set(panels) == {"kappa", "viscosity"}

    def truth_lines(ax):
        return [line for line in ax.get_lines() if line.get_label().startswith("true ")]

    assert truth_lines(panels["viscosity"]) == []
    if truth is None:
        assert truth_lines(panels["kappa"]) == []
        return
    (line,) = truth_lines(panels["kappa"])
    assert list(line.get_ydata()) == [2000.0, 2000.0]
    assert line.get_label() == "true tracer diffusivity (synthetic data), 2000 m$^2$ s$^{-1}$"
    legend = [t.get_text() for t in panels["kappa"].get_legend().get_texts()]
    assert legend == ["hybrid", line.get_label()]  # the model's line style, then the truth
    assert panels["kappa"].get_ylim()[1] >= 2000  # the axis reaches the truth


def test_fig4_refuses_a_day_the_long_run_lacks(evaluated, tmp_path, tiny_data_dir, capsys):
    root, config, paths, cfg, _ = evaluated
    evaluate = cfg.evaluate.model_dump() | {"fig4_day": 400, "long_rollout_days": 400}
    bad_file = tmp_path / "bad.json"
    bad_file.write_text(load(cfg.model_dump() | {"evaluate": evaluate}).model_dump_json())
    assert cli(["plot", "fig4", "--config", str(bad_file), "--rollouts",
                str(paths["unet"]["rollout"]), "--data-dir", str(tiny_data_dir),
                "--out", str(tmp_path / "f.png")]) == 1
    assert "no day 400 (evaluate.fig4_day)" in capsys.readouterr().err
    assert not (tmp_path / "f.png").exists()
