"""The training loop: outputs, exact resume, stop signals, the NaN guard, DDP, config checks."""

import json
import logging
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch

from neuralogcm import train as train_module
from neuralogcm.checkpoint import load_checkpoint, read
from neuralogcm.config import ConfigError, load
from neuralogcm.data import Normalizer, OceanData, WindowDataset
from neuralogcm.models.base import ForecastModel, ModelContext
from neuralogcm.runtime import TrainingInterrupted
from neuralogcm.train import TrainingDiverged, WindowLoss, adamw, masked_mse, train

torch.set_num_threads(1)
COEFFICIENTS = ["kappa_00", "kappa_01", "viscosity_00", "viscosity_01"]


def recorder(monkeypatch, losses, at=None, action=None):
    """Record every training step's loss (in order); run ``action(loss)`` at step ``at``."""

    def recording(pred, target, mask):
        loss = masked_mse(pred, target, mask)
        if torch.is_grad_enabled():  # training, not validation
            losses.append(loss.item())
            if len(losses) == at:
                return action(loss)
        return loss

    monkeypatch.setattr(train_module, "masked_mse", recording)


def interrupt(loss):
    os.kill(os.getpid(), signal.SIGUSR1)  # as Slurm would, from outside
    return loss


@pytest.fixture(scope="module")
def reference(tiny_data_dir, tmp_path_factory):
    """An uninterrupted run of the hybrid: 2 epochs of 3 steps; its out dir and step losses."""
    from conftest import TINY_CONFIG

    out = tmp_path_factory.mktemp("reference")
    losses = []
    with pytest.MonkeyPatch.context() as mp:
        recorder(mp, losses)
        history = train(load(TINY_CONFIG), "neuralogcm", tiny_data_dir, out)
    return out, losses, history


def _state(path):
    return read(path)["state_dict"]


def test_adamw_is_fused_and_steps_like_plain_adamw():
    """train.adamw on the CPU is the fused AdamW (one kernel, not a Python loop over the
    parameters) and takes the same steps as PyTorch's default AdamW, to float32 round-off."""
    torch.manual_seed(0)
    nets = [torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.GELU(),
                                torch.nn.Conv2d(8, 2, 3)) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    initial = [p.detach().clone() for p in nets[0].parameters()]
    fused = adamw(nets[0], 1e-2, 1e-5)
    plain = torch.optim.AdamW(nets[1].parameters(), lr=1e-2, weight_decay=1e-5)
    assert fused.defaults["fused"] and not plain.defaults["fused"]
    x = torch.randn(4, 3, 12, 12)
    for _ in range(10):
        for net, optimizer in zip(nets, (fused, plain), strict=True):
            optimizer.zero_grad()
            net(x).square().mean().backward()
            optimizer.step()
    for a, b, a0 in zip(nets[0].parameters(), nets[1].parameters(), initial, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        assert (a - a0).abs().amax() > 1e-3  # ten steps of lr 1e-2 moved every parameter


def test_history_and_best_checkpoint(reference, tiny_data_dir):
    out, losses, history = reference
    assert len(losses) == 6
    table = pd.read_csv(out / "history.csv")
    assert list(table.columns) == ["epoch", "train_loss", "valid_loss", "seconds", "machine",
                                   "window_days", "steps", "lr", *COEFFICIENTS,
                                   "physics_substeps"]
    assert (table["window_days"] == 1).all() and (table["lr"] == 1e-3).all()  # constant lr
    assert (table["steps"] == 3).all()
    assert (table["physics_substeps"] == 2).all()  # the tiny config fixes physics.substeps
    assert table.machine.str.endswith("x 1 processes").all()
    pd.testing.assert_frame_equal(table, history)
    assert table["epoch"].tolist() == [1, 2]
    np.testing.assert_allclose(table["train_loss"], [np.mean(losses[:3]), np.mean(losses[3:])])
    coefficients = table[COEFFICIENTS].to_numpy()
    assert (coefficients > 0).all() and not np.allclose(coefficients, [1e3, 1e3, 1e4, 1e4])

    # checkpoint.pt is the best epoch; its validation loss, recomputed by hand, is in the history
    model, normalizer, cfg = load_checkpoint(out / "checkpoint.pt", tiny_data_dir)
    best = int(table["valid_loss"].idxmin())
    assert read(out / "checkpoint.pt")["epoch"] == best + 1
    valid = WindowDataset(OceanData(tiny_data_dir), [2019])
    errors = []
    with torch.no_grad():
        for k in range(0, len(valid), cfg.train.valid_stride_days):
            item = valid[k]
            doy = item["doy"][:, None]
            x = normalizer.normalize_state(item["state"][:1], doy[0])
            f = normalizer.normalize_forcing(item["forcing"][:1])
            pred, _ = model(x, f, doy[0], doy[1])
            target = normalizer.normalize_state(item["state"][1:], doy[1])
            ocean = normalizer.state_mask
            errors.append(((pred - target)[0][ocean] ** 2).mean().item())
    assert np.mean(errors) == pytest.approx(table["valid_loss"][best], rel=1e-5)


def test_resume_continues_exactly(reference, tiny_data_dir, tmp_path, monkeypatch, tiny_config):
    """Stopped by SIGUSR1 after step 4 (epoch 2, step 1) and resumed, the run takes the same
    steps with the same losses and ends with the same weights as the uninterrupted one."""
    ref_out, ref_losses, ref_history = reference
    cfg = load(tiny_config)
    first = []
    recorder(monkeypatch, first, at=4, action=interrupt)
    with pytest.raises(TrainingInterrupted, match="SIGUSR1 received; saved .* epoch 2, step 1"):
        train(cfg, "neuralogcm", tiny_data_dir, tmp_path)
    assert (read(tmp_path / "last.pt")["epoch"], read(tmp_path / "last.pt")["step"]) == (1, 1)
    assert len(pd.read_csv(tmp_path / "history.csv")) == 1

    second = []
    recorder(monkeypatch, second)
    history = train(cfg, "neuralogcm", tiny_data_dir, tmp_path, resume=True)
    assert first + second == ref_losses  # bit for bit, the next step's loss included
    pd.testing.assert_frame_equal(history.drop(columns="seconds"),
                                  ref_history.drop(columns="seconds"))
    for name, weights in _state(ref_out / "last.pt").items():
        torch.testing.assert_close(_state(tmp_path / "last.pt")[name], weights, rtol=0, atol=0)


def test_a_finished_run_is_not_resumed(reference, tiny_data_dir, tmp_path, monkeypatch,
                                       tiny_config, caplog):
    """A rerun that Snakemake decides on (-f, changed settings) finds the last.pt of a finished
    run: --resume retrains from scratch, step by step as the first run did."""
    ref_out, ref_losses, ref_history = reference
    (tmp_path / "last.pt").write_bytes((ref_out / "last.pt").read_bytes())
    losses = []
    recorder(monkeypatch, losses)
    with caplog.at_level(logging.INFO, logger="neuralogcm.checkpoint"):
        history = train(load(tiny_config), "neuralogcm", tiny_data_dir, tmp_path, resume=True)
    assert "its run finished (2 epochs); starting from scratch" in caplog.text
    assert losses == ref_losses
    pd.testing.assert_frame_equal(history.drop(columns="seconds"),
                                  ref_history.drop(columns="seconds"))


def test_a_stale_last_pt_is_not_resumed(reference, tiny_data_dir, tmp_path, tiny_config, caplog):
    (tmp_path / "last.pt").write_bytes((reference[0] / "last.pt").read_bytes())
    tiny_config["models"]["neuralogcm"]["width"] = 4  # another model: the weights do not fit
    tiny_config["train"].update(epochs=1, max_steps_per_epoch=1)
    with caplog.at_level(logging.WARNING, logger="neuralogcm.checkpoint"):
        history = train(load(tiny_config), "neuralogcm", tiny_data_dir, tmp_path, resume=True)
    assert "not resuming from" in caplog.text and "different configuration" in caplog.text
    assert history["epoch"].tolist() == [1]
    assert read(tmp_path / "last.pt")["state_dict"]["corrector.head.weight"].shape[1] == 4


def test_nan_loss_stops_and_keeps_the_last_good_state(tiny_data_dir, tmp_path, monkeypatch,
                                                      tiny_config):
    losses = []
    recorder(monkeypatch, losses, at=5, action=lambda loss: loss * float("nan"))
    with pytest.raises(TrainingDiverged, match="loss is nan at epoch 2, step 2"):
        train(load(tiny_config), "corrector_only", tiny_data_dir, tmp_path)
    last = read(tmp_path / "last.pt")
    assert (last["epoch"], last["step"]) == (1, 0)  # saved after epoch 1, not after the NaN
    assert all(torch.isfinite(w).all() for w in last["state_dict"].values())
    assert not (tmp_path / "checkpoint.pt").exists()  # written only when training finishes


def test_model_and_data_disagreeing_name_the_config_key(tiny_data_dir, tmp_path, tiny_config):
    for section, key, value in [("data", "depths", [0.494025, 40.34405, 155.8507]),
                                ("grid", "resolution", 10.0)]:
        cfg = json.loads(json.dumps(tiny_config))
        cfg[section][key] = value
        with pytest.raises(ConfigError, match=f"'{section}.{key}'"):
            train(load(cfg), "neuralogcm", tiny_data_dir, tmp_path)
    with pytest.raises(ConfigError, match="'models.unet' does not exist"):
        train(load(tiny_config), "unet", tiny_data_dir, tmp_path)
    assert list(tmp_path.iterdir()) == []


def _cli(config, out, data_dir, model="neuralogcm", nproc=None):
    launcher = [sys.executable, "-m", "neuralogcm.cli"]
    if nproc:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                    f"--nproc-per-node={nproc}", "-m", "neuralogcm.cli"]
    config_file = out.parent / f"{out.name}.json"
    config_file.write_text(json.dumps(config))
    return launcher + ["train", "--config", str(config_file), "--model", model, "--data-dir",
                       str(data_dir), "--out-dir", str(out), "--threads", "1"]


def test_ddp_on_two_processes_matches_one_process(tiny_data_dir, tmp_path, tiny_config):
    """torchrun with 2 gloo processes of batch 2 = one process of batch 4 (same global batch)."""
    tiny_config["train"].update(epochs=1, batch_size=4)
    single = train(load(tiny_config), "neuralogcm", tiny_data_dir, tmp_path / "single")
    tiny_config["train"]["batch_size"] = 2
    env = dict(os.environ, OMP_NUM_THREADS="1")
    run = subprocess.run(_cli(tiny_config, tmp_path / "ddp", tiny_data_dir, nproc=2), env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "2 process(es)" in run.stderr
    ddp = pd.read_csv(tmp_path / "ddp" / "history.csv")
    for column in ["train_loss", "valid_loss", *COEFFICIENTS]:
        np.testing.assert_allclose(ddp[column], single[column], rtol=1e-5, err_msg=column)
    # the weights agree to a small fraction of one AdamW step (lr 1e-3)
    for name, weights in _state(tmp_path / "single" / "checkpoint.pt").items():
        torch.testing.assert_close(_state(tmp_path / "ddp" / "checkpoint.pt")[name], weights,
                                   rtol=0, atol=1e-4)


def test_sigterm_saves_last_pt_and_exits_for_a_requeue(tiny_data_dir, tmp_path, tiny_config):
    tiny_config["train"].update(epochs=1, batch_size=1, max_steps_per_epoch=None)
    out = tmp_path / "out"
    log = (tmp_path / "stderr.txt").open("w")
    proc = subprocess.Popen(_cli(tiny_config, out, tiny_data_dir, model="corrector_only"),
                            stderr=log, stdout=log)
    try:
        deadline = time.time() + 120
        while "epoch 1/1" not in (tmp_path / "stderr.txt").read_text():  # training has begun
            assert proc.poll() is None and time.time() < deadline
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 128 + signal.SIGTERM
    finally:
        proc.kill()
    stderr = (tmp_path / "stderr.txt").read_text()
    assert "SIGTERM received; saved" in stderr and "--resume" in stderr
    assert "Traceback" not in stderr
    last = read(out / "last.pt")
    assert last["epoch"] == 0 and 0 <= last["step"] < 364  # the 364 steps were not all done
    assert not (out / "checkpoint.pt").exists()


class Scaling(ForecastModel):
    """A stateful toy: next = 0.9 * state; hidden counts the days it has stepped."""

    stateful = True

    def __init__(self, ctx, seen):
        super().__init__(ctx, None)
        self.seen = seen

    def forward(self, state, forcing, doy, doy_next, hidden=None):
        self.seen.append(hidden)
        return self.apply_mask(0.9 * state), (hidden or 0) + 1


def test_unrolled_loss_feeds_forecasts_back_and_carries_the_hidden_state(tiny_data_dir):
    data = OceanData(tiny_data_dir)
    normalizer = Normalizer.from_data_dir(tiny_data_dir)
    seen = []
    ctx = ModelContext(data.grid, data.depths, normalizer.state_mask, normalizer)
    window = WindowDataset(data, [2018], steps=3)[100]
    batch = {k: v[None] for k, v in window.items()}
    loss = WindowLoss(Scaling(ctx, seen), normalizer, amp=False, channels_last=False)(
        batch["state"], batch["forcing"], batch["doy"])
    assert seen == [None, 1, 2]  # empty at the start of the window, then carried
    x = normalizer.normalize_state(batch["state"][:, 0], batch["doy"][:, 0])
    ocean = normalizer.state_mask
    expected = np.mean([
        ((0.9 ** k * x - normalizer.normalize_state(batch["state"][:, k], batch["doy"][:, k]))[0]
         [ocean] ** 2).mean().item() for k in (1, 2, 3)])
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_a_window_recomputes_its_days_in_backward_with_the_same_gradients(tiny_data_dir,
                                                                          monkeypatch):
    """The hybrid (physics core and corrector) on a 3-day window: each day is recomputed in
    backward, and loss and gradients equal those of the stored graph."""
    from conftest import TINY_CONFIG

    from neuralogcm.checkpoint import build

    model, normalizer, data = build(load(TINY_CONFIG), "neuralogcm", tiny_data_dir, "cpu")
    with torch.no_grad():  # a corrector that acts (its output layer starts at zero)
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    window = WindowDataset(data, [2018], steps=3)[40]
    batch = {k: v[None].repeat(2, *[1] * v.ndim) for k, v in window.items()}

    def run(store_graph):
        if store_graph:
            monkeypatch.setattr(train_module, "recompute",
                                lambda f, *a, use_reentrant: f(*a))
        model.zero_grad()
        loss = WindowLoss(model, normalizer, amp=False, channels_last=False)(
            batch["state"], batch["forcing"], batch["doy"])
        loss.backward()
        return loss.item(), [p.grad.clone() for p in model.parameters()]

    counted = []
    original = train_module.recompute
    monkeypatch.setattr(train_module, "recompute",
                        lambda *a, **k: counted.append(1) or original(*a, **k))
    loss, grads = run(store_graph=False)
    assert len(counted) == 3
    reference, expected = run(store_graph=True)
    assert loss == pytest.approx(reference, rel=1e-6)
    assert any(g.abs().max() > 0 for g in expected)
    for g, e in zip(grads, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-9)


def test_multistep_fine_tuning_of_a_stateful_baseline(tiny_data_dir, tmp_path, monkeypatch,
                                                     tiny_config):
    tiny_config["models"]["convlstm"] = {"arch": "convlstm", "hidden": 4, "layers": 1}
    tiny_config["train"].update(epochs=1, max_steps_per_epoch=2,
                                multistep={"steps": 3, "epochs": 1})
    losses = []
    recorder(monkeypatch, losses)
    history = train(load(tiny_config), "convlstm", tiny_data_dir, tmp_path)
    assert len(losses) == 2 + 2 * 3  # one day per step, then three
    np.testing.assert_allclose(history["train_loss"], [np.mean(losses[:2]), np.mean(losses[2:])])
    assert list(history.columns) == ["epoch", "train_loss", "valid_loss", "seconds", "machine",
                                     "window_days", "steps", "lr"]
    assert history["window_days"].tolist() == [1, 3] and history["steps"].tolist() == [2, 2]


def test_a_finished_run_extended_by_a_fine_tuning_stage_continues(tiny_data_dir, tmp_path,
                                                                  monkeypatch, tiny_config):
    """A list of fine-tuning stages whose first is a finished run's: that run's last.pt goes on
    with the new stage alone, exactly as a run of the whole list from scratch; a list whose first
    stage differs starts from scratch."""
    tiny_config["models"]["unet"] = {"arch": "unet", "width": 4, "depth": 1}
    first = {"steps": 2, "epochs": 1, "lr": 2e-3}
    tiny_config["train"].update(epochs=1, max_steps_per_epoch=2, multistep=first)
    train(load(tiny_config), "unet", tiny_data_dir, tmp_path / "run")
    (tmp_path / "run" / "history.csv").write_text(  # as written before the steps column
        pd.read_csv(tmp_path / "run" / "history.csv").drop(columns="steps").to_csv(index=False))
    tiny_config["train"]["multistep"] = [first, {"steps": 3, "epochs": 1, "lr": 5e-4,
                                                 "max_steps_per_epoch": 1}]
    runs = {}
    for name, resume in (("run", True), ("scratch", False)):
        losses = []
        with monkeypatch.context() as mp:
            recorder(mp, losses)
            history = train(load(tiny_config), "unet", tiny_data_dir, tmp_path / name, resume)
        runs[name] = losses, history
    losses, history = runs["run"]
    assert len(losses) == 3  # one step of a 3-day window: the finished stages are not redone
    assert runs["scratch"][0][-3:] == losses
    pd.testing.assert_frame_equal(history.drop(columns=["seconds", "machine"]),
                                  runs["scratch"][1].drop(columns=["seconds", "machine"]))
    assert history["window_days"].tolist() == [1, 2, 3] and history["steps"].tolist() == [2, 2, 1]
    np.testing.assert_allclose(history["lr"], [1e-3, 2e-3, 5e-4])
    tiny_config["train"]["multistep"][0]["steps"] = 4  # not the finished run's first stage
    losses = []
    recorder(monkeypatch, losses)
    train(load(tiny_config), "unet", tiny_data_dir, tmp_path / "run", resume=True)
    assert len(losses) == 2 + 2 * 4 + 3


@pytest.mark.parametrize("multistep, message", [
    ([], "an empty list"), ([{"steps": 1, "epochs": 2}], "steps >= 2 and epochs >= 1"),
    ([{"steps": 3, "epochs": 0}], "steps >= 2 and epochs >= 1")])
def test_a_bad_list_of_fine_tuning_stages_names_the_key(tiny_config, multistep, message):
    tiny_config["train"]["multistep"] = multistep
    with pytest.raises(ConfigError, match=f"train.multistep.*{message}"):
        load(tiny_config)


def test_early_stopping_cosine_lr_and_the_last_stage_best(tiny_data_dir, tmp_path, monkeypatch,
                                                         tiny_config):
    """patience 2: the one-day stage ends two epochs after its best; the fine-tuning stage keeps
    its own best (validated on 2-day windows), which is the checkpoint even though a one-day
    epoch had a lower loss; the learning rate follows the cosine of each stage."""
    tiny_config["models"]["unet"] = {"arch": "unet", "width": 4, "depth": 1}
    tiny_config["train"].update(epochs=6, max_steps_per_epoch=1, lr=0.01, patience=2,
                                lr_schedule="cosine",
                                multistep={"steps": 2, "epochs": 3, "lr": 0.001})
    scripted = iter([3.0, 2.0, 2.5, 2.6, 9.0, 7.0, 8.0])
    windows = []

    def validate(self, steps):
        windows.append(steps)
        return next(scripted)

    monkeypatch.setattr(train_module.Trainer, "validate", validate)
    history = train(load(tiny_config), "unet", tiny_data_dir, tmp_path)
    assert history["epoch"].tolist() == [1, 2, 3, 4, 7, 8, 9]  # 5 and 6 skipped
    assert windows == [1, 1, 1, 1, 2, 2, 2]
    cosine = [0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * k / 5)) for k in range(4)]
    np.testing.assert_allclose(history["lr"][:4], 0.01 * np.array(cosine))
    np.testing.assert_allclose(history["lr"][4:], [1e-3, 1e-3 * 0.525, 5e-5])
    checkpoint = read(tmp_path / "checkpoint.pt")
    assert checkpoint["epoch"] == 8 and checkpoint["valid_loss"] == 7.0


def test_dataloader_workers_give_the_same_run(reference, tiny_data_dir, tmp_path, monkeypatch,
                                              tiny_config):
    """Two worker processes read the stores (reopened after the fork): the same losses."""
    tiny_config["train"]["num_workers"] = 2
    losses = []
    recorder(monkeypatch, losses)
    history = train(load(tiny_config), "neuralogcm", tiny_data_dir, tmp_path)
    assert losses == reference[1]
    np.testing.assert_array_equal(history["valid_loss"], reference[2]["valid_loss"])
