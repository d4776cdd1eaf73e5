"""Resume happens only for an interrupted run of the same settings and input data: a rerun that
Snakemake decides on (-f, changed settings, rebuilt stores) retrains; a killed run resumes, and
the log of every attempt is kept (issue 13)."""

import copy
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch
import xarray as xr
from conftest import DAG_CONFIG, snakemake, write_config

from neuralogcm import train as train_module
from neuralogcm.checkpoint import fingerprint, read
from neuralogcm.config import load
from neuralogcm.runtime import TrainingInterrupted
from neuralogcm.train import masked_mse, train

torch.set_num_threads(1)
CHECKPOINT = "results/dagtest/models/unet/checkpoint.pt"
RESUMED = re.compile(r"resuming from \S+last\.pt at epoch (\d+)")


def change_stats(data_dir):
    """Rebuilt statistics: every standard deviation 1% larger."""
    stats = xr.load_dataset(data_dir / "stats.nc")
    stats["std"] = stats["std"] * 1.01
    stats.to_netcdf(data_dir / "stats.nc")


def test_fingerprint_covers_the_input_data_and_the_physics_of_physics_models(
        tiny_data_dir, tmp_path, tiny_config):
    data = shutil.copytree(tiny_data_dir, tmp_path / "data")
    cfg = load(tiny_config)
    tiny_config["physics"]["substeps"] = 3
    other_physics = load(tiny_config)
    hybrid = fingerprint(cfg, "neuralogcm", data)
    assert fingerprint(cfg, "neuralogcm", tiny_data_dir) == hybrid  # the same stores elsewhere
    assert fingerprint(other_physics, "neuralogcm", data) != hybrid
    assert (fingerprint(other_physics, "corrector_only", data)
            == fingerprint(cfg, "corrector_only", data))  # no physics core
    tiny_config["physics"].update(substeps=cfg.physics.substeps, compile=True)
    assert fingerprint(load(tiny_config), "neuralogcm", data) == hybrid  # speed, not weights
    change_stats(data)
    assert fingerprint(cfg, "neuralogcm", data) != hybrid


def test_an_interrupted_run_on_rebuilt_stores_starts_from_scratch(tiny_data_dir, tmp_path,
                                                                  tiny_config, monkeypatch,
                                                                  caplog):
    data = shutil.copytree(tiny_data_dir, tmp_path / "data")
    cfg = load(tiny_config)
    steps = []

    def counting(interrupt_at=None):
        def loss(pred, target, mask):
            if torch.is_grad_enabled():
                steps.append(1)
                if len(steps) == interrupt_at:  # as Slurm would, from outside
                    os.kill(os.getpid(), signal.SIGUSR1)
            return masked_mse(pred, target, mask)
        return loss

    monkeypatch.setattr(train_module, "masked_mse", counting(interrupt_at=4))
    with pytest.raises(TrainingInterrupted):
        train(cfg, "corrector_only", data, tmp_path / "out")
    assert (read(tmp_path / "out/last.pt")["epoch"], read(tmp_path / "out/last.pt")["step"]) == (
        1, 1)  # epoch 2, step 1
    change_stats(data)
    steps.clear()
    monkeypatch.setattr(train_module, "masked_mse", counting())
    with caplog.at_level(logging.INFO, logger="neuralogcm.checkpoint"):
        history = train(cfg, "corrector_only", data, tmp_path / "out", resume=True)
    assert "not resuming from" in caplog.text and "input data" in caplog.text
    assert len(steps) == 6 and history["epoch"].tolist() == [1, 2]  # all of both epochs


def attempts(workdir):
    """The training log of the U-Net, one entry per attempt."""
    text = (workdir / "results/dagtest/logs/train/unet.log").read_text()
    return re.split(r"^=== attempt started .*\n", text, flags=re.M)[1:]


def test_a_forced_retrain_retrains_and_a_killed_one_resumes(dag_workdir, tmp_path):
    workdir = shutil.copytree(dag_workdir, tmp_path / "copy", symlinks=True)
    snakemake(workdir, CHECKPOINT, "-f", "--configfile", "dag.yaml")
    log = attempts(workdir)
    assert len(log) == 2  # the first run's log is kept
    assert "starting from scratch" in log[-1] and not RESUMED.search(log[-1])

    # killed (SIGTERM to Snakemake and its jobs) after two epochs, then run again
    longer = copy.deepcopy(DAG_CONFIG)
    longer["train"].update(epochs=30, max_steps_per_epoch=1)
    config = write_config(tmp_path / "longer.yaml", longer)
    history = workdir / "results/dagtest/models/unet/history.csv"
    with (tmp_path / "killed.log").open("w") as out:
        killed = subprocess.Popen(
            [sys.executable, "-m", "snakemake", "--cores", "2", CHECKPOINT, "--configfile",
             config], cwd=workdir, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    # the old history.csv has one epoch: wait for two of the new run
    while not (history.is_file() and len(history.read_text().splitlines()) > 2):
        assert killed.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
        time.sleep(0.2)
    os.killpg(killed.pid, signal.SIGTERM)
    assert killed.wait() != 0
    assert "SIGTERM received; saved" in attempts(workdir)[-1]

    snakemake(workdir, CHECKPOINT, "--configfile", config)
    log = attempts(workdir)
    assert len(log) == 4
    resumed = RESUMED.search(log[-1])
    assert resumed and int(resumed.group(1)) >= 2, log[-1]
    assert pd.read_csv(history)["epoch"].tolist() == list(range(1, 31))
