"""The workflow through the real `snakemake` command in a copy of the repository: the whole DAG of
a tiny config to Table 2 and the figures, the lint, and what a run config, a dry run and a
changed setting do (issue 13)."""

import copy
import json
import re
from pathlib import Path

import pandas as pd
import pytest
import xarray as xr
from conftest import DAG_CONFIG, REPO, copy_workflow, snakemake, write_config

from neuralogcm.config import load

pytestmark = pytest.mark.slow

RUN = Path("results/dagtest")
JOB = re.compile(r"^(?:local)?rule (\w+):\n((?:    .*\n)*)", re.M)
# a path placeholder of a shell command without :q (the launcher param is a command)
UNQUOTED = re.compile(r"\{(?:input|output|log|params\.(?!launcher\})\w+)(?:\.\w+)?\}")


def scheduled(run, rule: str) -> dict[str, str]:
    """The jobs of ``rule`` that a dry run lists: their wildcards -> the reason."""
    jobs = {}
    for name, block in JOB.findall(run.stdout + run.stderr):
        fields = dict(re.findall(r"^    (\w+): (.*)$", block, re.M))
        if name == rule:
            jobs[fields.get("wildcards", "")] = fields["reason"]
    return jobs


def test_whole_dag_makes_table2_and_the_figures(dag_workdir):
    run = dag_workdir / RUN
    for name in ("table2", "ablation", "variables", "stability", "speed", "models"):
        for ext in ("csv", "md"):
            assert (run / f"tables/{name}.{ext}").stat().st_size > 0
    for name in ("fig3_validation_loss", "fig4_anomalies_day10", "learned_coefficients",
                 "rmse_vs_lead_all", "rmse_vs_lead_thetao"):
        assert (run / f"figures/{name}.png").stat().st_size > 0
    table2 = (run / "tables/table2.md").read_text()
    assert "| unet " in table2 and "| neuralogcm " in table2
    for model in DAG_CONFIG["models"]:
        assert len(pd.read_csv(run / f"models/{model}/history.csv")) == 1
    # the settings the jobs read, named by the digest that the outputs record
    cfg = load(DAG_CONFIG)
    written = json.loads((run / f"config/{cfg.digest()}.json").read_text())
    assert written == cfg.model_dump(mode="json")
    assert xr.open_zarr(run / "rollouts/unet.zarr").attrs["config_digest"] == cfg.digest()
    # complete and stable: nothing left to do
    again = snakemake(dag_workdir, "-n", "--configfile", "dag.yaml")
    assert "Nothing to be done" in again.stdout + again.stderr


def test_lint_is_clean(tmp_path):
    lint = snakemake(copy_workflow(tmp_path), "--lint", check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "Congratulations, your workflow is in a good condition!" in lint.stdout + lint.stderr


def test_a_run_config_replaces_the_default_config(tmp_path):
    """--configfile is not merged over config/config.yaml: a model or section the run config
    leaves out is not taken from the demo; without --configfile the demo runs."""
    workdir = copy_workflow(tmp_path)
    unet_only = {k: v for k, v in DAG_CONFIG.items() if k != "train"}
    unet_only["models"] = {"unet": DAG_CONFIG["models"]["unet"]}
    run = snakemake(workdir, "-n", "-p", "--configfile", write_config(tmp_path / "u.yaml",
                                                                        unet_only))
    assert list(scheduled(run, "train")) == ["model=unet"]
    # the jobs read exactly this config: the train section is the code's default, not the demo's
    assert f"--config {RUN}/config/{load(unet_only).digest()}.json" in run.stdout + run.stderr
    demo = snakemake(workdir, "-n")
    assert sorted(scheduled(demo, "train")) == sorted(
        f"model={m}" for m in load(REPO / "config/config.yaml").models)
    assert not (workdir / "results").exists()  # a dry run writes nothing


def test_a_dry_run_with_other_settings_changes_no_config_file(dag_workdir, tmp_path):
    run = dag_workdir / RUN
    files = [run / "config.json", *sorted((run / "config").iterdir())]
    before = [(f.name, f.stat().st_mtime_ns, f.read_bytes()) for f in files]
    other = copy.deepcopy(DAG_CONFIG)
    other["evaluate"]["start_every_days"] = 60
    snakemake(dag_workdir, "-n", "--configfile", write_config(tmp_path / "other.yaml", other))
    after = [(f.name, f.stat().st_mtime_ns, f.read_bytes()) for f in files]
    assert after == before and sorted((run / "config").iterdir()) == files[1:]


def test_changing_the_physics_retrains_only_the_models_with_the_physics_core(dag_workdir,
                                                                              tmp_path):
    changed = copy.deepcopy(DAG_CONFIG)
    changed["physics"]["substeps"] = 3
    run = snakemake(dag_workdir, "-n", "--configfile", write_config(tmp_path / "p.yaml", changed))
    train = scheduled(run, "train")
    assert list(train) == ["model=neuralogcm"]  # not the U-Net
    assert train["model=neuralogcm"].startswith("Params have changed")
    assert list(scheduled(run, "rollout")) == ["model=neuralogcm"]


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "workflow/rules").glob("*.smk")))
def test_shell_commands_quote_every_path(name):
    """Every path reaches the shell quoted ({input:q}): a path with a space stays one word."""
    lines = (REPO / "workflow/rules" / name).read_text().splitlines()
    code = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    assert UNQUOTED.findall(code) == []
