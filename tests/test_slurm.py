"""Slurm: the config's `resources:` as the executor plugin submits them, the profile slurm/, and a
tiny DAG (data preparation and a short training) through a real Slurm cluster, compared with the
same DAG run locally.

The cluster tests need the one-node cluster of tests/slurm/start-cluster.sh (partitions cpu and
gpu, two fake GPUs of type "fake", no accounting); without sbatch they are skipped.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pandas as pd
import pytest
import torch
import xarray as xr
import yaml
from snakemake_executor_plugin_slurm import ExecutorSettings
from snakemake_executor_plugin_slurm.submit_string import get_submit_command
from snakemake_executor_plugin_slurm.utils import set_gres_string

from neuralogcm.checkpoint import load_checkpoint
from neuralogcm.config import ResourcesConfig

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "slurm"
RUN = "slurmtest"
MODEL = {"arch": "unet", "width": 8, "depth": 1}
TINY = {
    "run": RUN,
    "data": {
        "source": "synthetic",
        "years": {"train": [2015, 2016], "valid": [2017, 2017], "test": [2018, 2018]},
        "depths": [0.494025, 40.34405],
        "keep_raw": True,
        "synthetic": {"seed": 0, "ocean_resolution": 5.0, "atmosphere_resolution": 5.0,
                      "spinup_days": 5},
    },
    "grid": {"resolution": 15.0},
    # the same model twice: "unet" through the train rule, "unet_sbatch" through
    # slurm/train-multinode.sbatch; the training seed does not depend on the name
    "models": {"unet": MODEL, "unet_sbatch": MODEL},
    "train": {"epochs": 2, "batch_size": 4, "max_steps_per_epoch": 3, "num_workers": 0,
              "amp": False},
    "resources": {  # default: the values of the profile's default-resources
        "default": {"cpus": 1, "mem_mb": 4000, "runtime": 60},
        "prepare": {"cpus": 1, "mem_mb": 1000, "runtime": 10},
        "train": {"gpu": 1, "cpus_per_gpu": 1, "mem_mb": 2000, "runtime": 15,
                  "slurm_partition": "gpu", "gpu_model": "fake"},
    },
}
MODELS_DIR = f"results/{RUN}/models"
TARGETS = [f"{MODELS_DIR}/unet/checkpoint.pt", f"{MODELS_DIR}/unet/history.csv"]
DATA_STORES = ["ocean.zarr", "forcing.zarr", "mask.nc", "climatology.zarr", "stats.nc"]


class _Job:
    """What the plugin's submit functions read of a Snakemake job."""

    def __init__(self, resources: dict, threads: int = 1):
        self.resources = _Resources(resources)
        self.threads = threads


class _Resources(dict):
    __getattr__ = dict.__getitem__


def _sbatch_options(resources: dict) -> list[str]:
    """The sbatch options the plugin derives from a rule's resources (account and partition,
    which the executor adds from slurm_account and slurm_partition, left out)."""
    params = {"run_uuid": "run", "slurm_logfile": "log", "comment_str": "rule", "account": "",
              "partition": "", "workdir": ""}
    job = _Job(resources)
    return (get_submit_command(job, params, ExecutorSettings()) + set_gres_string(job)).split()


def test_gpu_group_becomes_one_task_with_all_its_gpus():
    res = ResourcesConfig.model_validate({
        "slurm_account": "proj42",
        "train": {"gpu": 4, "cpus_per_gpu": 6, "mem_mb": 1000, "runtime": 90,
                  "slurm_partition": "gpu", "gpu_model": "a100", "constraint": "ib"},
    }).rule_resources("train")
    assert res == {"mem_mb": 1000, "runtime": 90, "gpu": 4, "cpus_per_gpu": 6,
                   "tasks_per_gpu": 0, "slurm_account": "proj42", "slurm_partition": "gpu",
                   "gpu_model": "a100", "constraint": "ib"}
    options = _sbatch_options(res)
    assert "--gpus=a100:4" in options and "--cpus-per-gpu=6" in options
    assert options[options.index("--mem") + 1] == "1000"
    assert options[options.index("-t") + 1] == "90"
    assert options[options.index("-C") + 1] == "ib"
    assert not any(o.startswith(("--ntasks", "--cpus-per-task")) for o in options)


def test_cpu_group_asks_for_its_cpus_and_no_gpu():
    res = ResourcesConfig.model_validate({"prepare": {"cpus": 8, "mem_mb": 32000}}
                                         ).rule_resources("prepare")
    assert res == {"mem_mb": 32000, "runtime": 60, "gpu": 0, "cpus_per_task": 8}
    options = _sbatch_options(res)
    assert "--ntasks=1" in options and "--cpus-per-task=8" in options
    assert not any(o.startswith(("--gpus", "--cpus-per-gpu", "-C")) for o in options)


def test_profile_uses_the_plugins_own_options():
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    settings = {f.name for f in dataclasses.fields(ExecutorSettings)}
    assert profile["executor"] == "slurm"
    assert isinstance(profile["jobs"], int) and profile["jobs"] > 1
    assert profile["slurm-requeue"] is True
    for key in (k for k in profile if k.startswith("slurm-")):
        assert key.removeprefix("slurm-").replace("-", "_") in settings, key
    # the README's advice for clusters without accounting names a real option
    assert "status_command" in settings


def _resources_of(dry_run: str, rule: str) -> dict[str, str]:
    """The resources Snakemake's dry run prints for the first job of ``rule``."""
    block = re.search(rf"^rule {rule}:\n(?:    .*\n)*?    resources: (.*)$", dry_run, re.M)
    assert block, f"no job of rule {rule} in the dry run"
    return dict(item.split("=", 1) for item in block.group(1).split(", "))


def test_paper_dry_run_shows_the_resources_jobs_ask_for(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--snakefile", REPO / "Snakefile",
         "--profile", PROFILE, "--configfile", REPO / "config/paper.yaml",
         "--config", "resources={slurm_account: proj42, train: {gpu_model: a100}}"],
        cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    train = _resources_of(out, "train")
    assert {k: train[k] for k in ("gpu", "cpus_per_gpu", "tasks_per_gpu", "mem_mb", "runtime",
                                  "slurm_account", "gpu_model")} == {
        "gpu": "8", "cpus_per_gpu": "8", "tasks_per_gpu": "0", "mem_mb": "256000",
        "runtime": "2880", "slurm_account": "proj42", "gpu_model": "a100"}
    regrid = _resources_of(out, "regrid")
    assert regrid["cpus_per_task"] == "8" and regrid["gpu"] == "0"
    assert regrid["mem_mb"] == "32000" and "gpu_model" not in regrid
    assert _resources_of(out, "rollout")["gpu"] == "1"
    assert len(re.findall(r"^rule train:", out, re.M)) == 6  # one job per model


def _require_test_cluster() -> None:
    if shutil.which("sbatch") is None:
        pytest.skip("sbatch not found: no Slurm here (start one: sudo bash "
                    "tests/slurm/start-cluster.sh)")
    sinfo = subprocess.run(["sinfo", "-h", "-o", "%P %t %G"], capture_output=True, text=True)
    if sinfo.returncode != 0 or not re.search(r"\b(idle|mix|alloc)\b", sinfo.stdout):
        pytest.fail(f"sbatch is installed but no Slurm node is up: "
                    f"{(sinfo.stdout + sinfo.stderr).strip()!r}; run tests/slurm/start-cluster.sh")
    if not re.search(r"^gpu .*gpu:fake:", sinfo.stdout, re.M):
        pytest.skip("this Slurm is not the test cluster of tests/slurm/start-cluster.sh "
                    "(partition gpu with fake GPUs)")


SLURM = ["--profile", PROFILE, "--slurm-status-command", "squeue",
         "--slurm-init-seconds-before-status-checks", "2", "--slurm-keep-successful-logs"]
LOCAL = ["--cores", "2"]


def _start_snakemake(workdir: Path, config: Path, targets: list[str], options: list,
                     log: Path) -> subprocess.Popen:
    """Start Snakemake on ``targets`` in ``workdir``, its output going to ``log``."""
    workdir.mkdir(exist_ok=True)
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "snakemake", "--snakefile", REPO / "Snakefile",
             "--configfile", config, *options, *targets],
            cwd=workdir, stdout=out, stderr=subprocess.STDOUT)


def _finish(run: subprocess.Popen, log: Path) -> str:
    """Wait for a run of :func:`_start_snakemake`; its output, which must show success."""
    returncode = run.wait(timeout=3600)  # a guard against a hang, not a benchmark
    text = log.read_text()
    assert returncode == 0, text[-5000:]
    return text


def _slurm_job(job_id: str) -> dict[str, str]:
    """`scontrol show job` as a mapping (the test cluster keeps finished jobs for an hour)."""
    out = subprocess.run(["scontrol", "-o", "show", "job", job_id], capture_output=True,
                         text=True, check=True).stdout
    return dict(item.split("=", 1) for item in out.split() if "=" in item)


def _assert_same_training(run_a: Path, run_b: Path, model_a: str, model_b: str,
                          epochs: int) -> None:
    """The two trainings logged the same losses and ended with the same weights."""
    history_a = pd.read_csv(run_a / MODELS_DIR / model_a / "history.csv")
    history_b = pd.read_csv(run_b / MODELS_DIR / model_b / "history.csv")
    assert len(history_a) == epochs
    pd.testing.assert_frame_equal(history_a.drop(columns="seconds"),
                                  history_b.drop(columns="seconds"))
    states = [load_checkpoint(run / MODELS_DIR / m / "checkpoint.pt",
                              run / "results" / RUN / "data")[0].state_dict()
              for run, m in ((run_a, model_a), (run_b, model_b))]
    assert states[0].keys() == states[1].keys()
    for name, tensor in states[0].items():
        torch.testing.assert_close(tensor, states[1][name], msg=name)


@pytest.fixture(scope="module")
def dag(tmp_path_factory) -> tuple[Path, str]:
    """The tiny DAG run through Slurm (root/slurm) and locally (root/local); the Slurm log."""
    _require_test_cluster()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("dag")
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    # both at once: the Slurm run spends much of its time waiting for job states
    slurm = _start_snakemake(root / "slurm", config, TARGETS, SLURM, root / "slurm.log")
    local = _start_snakemake(root / "local", config, TARGETS, LOCAL, root / "local.log")
    log = _finish(slurm, root / "slurm.log")
    _finish(local, root / "local.log")
    return root, log


@pytest.mark.slow
@pytest.mark.slurm
def test_tiny_dag_through_slurm_matches_a_local_run(dag):
    root, log = dag
    # every job went through sbatch, asked for what the config says and succeeded
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+) \(log: (\S+)\)", log)
    rules = [re.search(r"/rule_(\w+?)/", path).group(1) for _, path in submitted]
    years = TINY["data"]["years"]
    n_years = years["test"][1] - years["train"][0] + 1
    assert sorted(rules) == sorted(
        ["synthesize", "assemble", "climatology", "stats", "train"] + ["regrid"] * 2 * n_years)
    for (job_id, path), rule in zip(submitted, rules, strict=True):
        job = _slurm_job(job_id)
        assert job["JobState"] == "COMPLETED" and job["ExitCode"] == "0:0", (rule, job)
        assert Path(path).is_file()  # Slurm's own output of the job
        if rule == "train":
            assert (job["Partition"], job["TresPerJob"], job["MinMemoryNode"],
                    job["TimeLimit"]) == ("gpu", "gres:gpu:fake:1", "2000M", "00:15:00")
        elif rule == "synthesize":  # the default group, or the profile's default-resources
            assert (job["Partition"], job["MinMemoryNode"], job["TimeLimit"]) == (
                "cpu", "4000M", "01:00:00")
        else:
            assert (job["Partition"], job["MinMemoryNode"], job["TimeLimit"]) == (
                "cpu", "1000M", "00:10:00")

    # the cluster computed exactly what the local run did
    for store in DATA_STORES:
        opener = partial(xr.open_zarr, consolidated=False) if store.endswith(".zarr") \
            else xr.open_dataset
        with opener(root / "slurm/results" / RUN / "data" / store) as a, \
                opener(root / "local/results" / RUN / "data" / store) as b:
            xr.testing.assert_equal(a.load(), b.load())
    _assert_same_training(root / "slurm", root / "local", "unet", "unet",
                          TINY["train"]["epochs"])


@pytest.mark.slow
@pytest.mark.slurm
def test_multinode_script_on_one_node_trains_like_the_rule(dag):
    """slurm/train-multinode.sbatch: srun + torchrun rendezvous, here on the one node."""
    root, _ = dag
    log = root / "sbatch.log"
    sbatch = subprocess.run(
        ["sbatch", "--parsable", "--wait", "--partition=gpu", "--nodes=1",
         "--gpus-per-node=fake:1", "--cpus-per-gpu=1", "--mem=2000", "--time=15",
         f"--chdir={root / 'slurm'}", f"--output={log}",
         PROFILE / "train-multinode.sbatch", RUN, "unet_sbatch"],
        capture_output=True, text=True, timeout=3600)
    assert sbatch.returncode == 0, log.read_text()[-5000:]
    assert "unet_sbatch: 1 node(s) x 1 GPU(s), rendezvous on" in log.read_text()
    _assert_same_training(root / "slurm", root / "slurm", "unet", "unet_sbatch",
                          TINY["train"]["epochs"])


def _training_job(log: Path, history: Path) -> str:
    """The Slurm job id of the training ``log`` submitted, once ``history`` has an epoch."""
    for _ in range(2400):  # a guard against a hang (20 min), not a benchmark
        submitted = re.search(r"submitted with SLURM jobid (\d+)", log.read_text())
        if submitted and history.is_file() and len(history.read_text().splitlines()) > 1:
            return submitted.group(1)
        time.sleep(0.5)
    pytest.fail(f"no training epoch under Slurm: {log.read_text()[-3000:]}")


@pytest.mark.slow
@pytest.mark.slurm
def test_requeued_training_resumes_and_ends_as_an_uninterrupted_one(dag):
    """Preemption: Slurm sends SIGTERM and requeues the job (the profile's --requeue); the
    training saves last.pt, the requeued job resumes from it and ends with the same weights."""
    root, _ = dag
    epochs = 20
    config = root / "long.yaml"
    config.write_text(yaml.safe_dump(TINY | {
        "models": {"unet_long": MODEL},
        "train": TINY["train"] | {"epochs": epochs, "max_steps_per_epoch": 5}}))
    target = [f"{MODELS_DIR}/unet_long/checkpoint.pt"]
    slurm = _start_snakemake(root / "slurm", config, target, SLURM, root / "long-slurm.log")
    local = _start_snakemake(root / "local", config, target, LOCAL, root / "long-local.log")
    job_id = _training_job(root / "long-slurm.log",
                           root / "slurm" / MODELS_DIR / "unet_long/history.csv")
    subprocess.run(["scontrol", "requeue", job_id], check=True)
    _finish(slurm, root / "long-slurm.log")
    _finish(local, root / "long-local.log")

    job = _slurm_job(job_id)
    assert (job["JobState"], job["Restarts"]) == ("COMPLETED", "1")
    train_log = (root / "slurm/results" / RUN / "logs/train/unet_long.log").read_text()
    resumed = re.search(r"resuming from \S+last\.pt at epoch (\d+)", train_log)
    assert resumed and 1 < int(resumed.group(1)) <= epochs, train_log[-3000:]
    _assert_same_training(root / "slurm", root / "local", "unet_long", "unet_long", epochs)
