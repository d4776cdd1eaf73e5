"""Training step and rollout day of U-Net, corrector only, physics only and hybrid (NeuralOGCM),
timed side by side; the ratios hybrid / U-Net and the physics core's share of the hybrid's step.

    python benchmarks/speed_benchmark.py                     # demo size (config/config.yaml)
    python benchmarks/speed_benchmark.py --size paper [--resolution 1.5]  # paper.yaml's widths
                                      # on 60 x 120 (3 deg), or the paper's 120 x 240 grid
    python benchmarks/speed_benchmark.py --size paper --device cuda --amp [--compile]
    python benchmarks/speed_benchmark.py --physics-compile     # physics.compile: true

Step: train.WindowLoss as `neuralogcm train` runs it, backward, AdamW. Day: the second day of a
fresh two-day rollout.Rollout of --batch runs (day one's reads untimed); --amp: bf16 autocast.
States: the stores in --data-dir (default results/<run>/data) when they fit the grid, else
synthetic days in physical ranges (physics_benchmark.physical_state: currents of 0.1 m/s rms, up
to 0.5 m/s) with a normaliser of their own statistics. Printed: the core's sub-steps (step/day)
and its zonal steps of the polar rows a day (subcycled, physics/core.py).

Method: each variant has its own spawned process, built and warmed up (a step and a day,
compilation included) one after another and held warm; R rounds then ask every variant in turn
(rotated start) for a step and a day, one process computing at a time, so a shared machine's
drifts hit all variants alike and the ratios are taken per round. Own processes keep allocators,
caches and compiled graphs apart and give each variant its own peak memory (resident set VmHWM,
reset after the warm-up; cuda: max_memory_allocated); all stay resident: --variants runs fewer.
--mmap-threshold: every process fixes glibc's mmap threshold first (runtime.fix_mmap_threshold),
which bounds the CPU peak memory of large runs but makes every freshly mapped tensor page-fault
(training and rollouts do not apply it, so the default times what they run).
CPU time (all the process's threads) is the better measure on a loaded machine. SYPD: one run.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from physics_benchmark import land_mask, physical_state
from torch.utils.data import default_collate

from neuralogcm.channels import channel_level, variable_slice
from neuralogcm.checkpoint import build
from neuralogcm.config import ConfigError, load
from neuralogcm.data import Normalizer, WindowDataset
from neuralogcm.grid import Grid
from neuralogcm.models.base import ModelContext
from neuralogcm.models.registry import build_model
from neuralogcm.physics.core import SettingsError
from neuralogcm.rollout import DAYS_PER_YEAR, Rollout
from neuralogcm.runtime import fix_mmap_threshold, machine_label
from neuralogcm.train import WindowLoss, adamw

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {"U-Net": ("unet", {}), "corrector only": ("neuralogcm", {"physics": False}),
            "physics only": ("neuralogcm", {"corrector": False}), "hybrid": ("neuralogcm", {})}
FORCING_MEAN, FORCING_STD = np.array(  # u10, v10, t2m, msl
    [[0.0, 0.0, 285.0, 101325.0], [5.0, 3.0, 10.0, 800.0]])[:, :, None, None]


class SyntheticData:
    """What WindowDataset and Rollout read of an OceanData: ``days`` synthetic days in memory."""

    def __init__(self, grid: Grid, depths: list[float], days: int) -> None:
        self.grid, self.depths, self.n_levels, self.data_dir = grid, depths, len(depths), "-"
        mask = land_mask(grid, depths)
        self.mask, self._states = mask.numpy(), physical_state(grid, depths, mask, days).numpy()
        noise = np.random.default_rng(0).standard_normal((days, 4, *grid.shape))
        self._forcings = (FORCING_MEAN + FORCING_STD * noise).astype(np.float32)
        self.day_indices, self.forcings = 100 + np.arange(days), self._forcings.__getitem__
        self.states = self.state = self._states.__getitem__
        self.window_starts = lambda years, steps: np.arange(days - steps)

    def normalizer(self) -> Normalizer:
        ocean = np.where(self.mask[channel_level(self.n_levels)], self._states, np.nan)
        mean, std = np.nanmean(ocean, (0, 2, 3)), np.nanstd(ocean, (0, 2, 3))
        clim = np.zeros((365, 2 * self.n_levels + 1, *self.grid.shape), np.float32)
        return Normalizer(np.r_[mean, FORCING_MEAN.ravel()], np.r_[std, FORCING_STD.ravel()],
                          clim, self.mask)


def configure(args: argparse.Namespace):
    cfg = load(ROOT / "config" / ("paper.yaml" if args.size == "paper" else "config.yaml"))
    resolution = args.resolution or (3.0 if args.size == "paper" else cfg.grid.resolution)
    update = {"grid": cfg.grid.model_copy(update={"resolution": resolution})}
    physics = {"compile": True} if args.physics_compile else {}
    if args.substeps:
        physics["substeps"] = None if args.substeps == "auto" else int(args.substeps)
    if physics:
        update["physics"] = cfg.physics.model_copy(update=physics)
    return cfg.model_copy(update=update)


def setup(cfg, spec: dict, device: torch.device, days: int, data_dir: Path):
    """(model, normaliser, data, where the states come from) for one variant."""
    cfg = cfg.model_copy(update={"models": {"bench": spec}})
    if data_dir.is_dir():
        try:
            return (*build(cfg, "bench", data_dir, device), f"the stores in {data_dir}")
        except (ConfigError, SettingsError) as err:
            why = f" ({data_dir} does not fit: {err})"
    else:
        why = f" (no {data_dir})"
    data = SyntheticData(Grid(cfg.grid.resolution), cfg.data.depths, days)
    normalizer = data.normalizer().to(device)
    mask = torch.from_numpy(data.mask[channel_level(data.n_levels)])
    ctx = ModelContext(data.grid, data.depths, mask, normalizer, cfg.physics)
    torch.manual_seed(cfg.train.seed)
    return build_model(spec, ctx).to(device), normalizer, data, "synthetic states" + why


def memory(device: torch.device, peak: bool) -> float:
    """GiB now or at the peak since the last reset (CPU: resident set from /proc, Linux)."""
    if device.type == "cuda":
        return (torch.cuda.max_memory_allocated if peak else torch.cuda.memory_allocated)() / 2**30
    status = Path("/proc/self/status").read_text().split()
    return int(status[status.index("VmHWM:" if peak else "VmRSS:") + 1]) / 2**20


def worker(conn, name: str, args: argparse.Namespace) -> None:
    """One variant, built and warmed up, then a step or a day (timed) per request."""
    if args.mmap_threshold:
        fix_mmap_threshold()
    torch.set_num_threads(args.threads or torch.get_num_threads())
    cfg, device, (arch, override) = configure(args), torch.device(args.device), VARIANTS[name]
    batch = args.batch or cfg.train.batch_size
    model, normalizer, data, source = setup(
        cfg, dict(cfg.models[arch], **override), device, batch + 2,
        args.data_dir or ROOT / "results" / cfg.run / "data")
    core = getattr(model, "core", None)
    windows = WindowDataset(data, cfg.data.years.split("train"), 1)
    picks = [k * len(windows) // batch for k in range(batch)]
    sample = default_collate([windows[k] for k in picks])
    state, forcing, doy = (sample[k].to(device) for k in ("state", "forcing", "doy"))
    starts = [int(windows.starts[k]) for k in picks]
    speed = torch.hypot(*(state[:, 0, variable_slice(v, data.n_levels)] for v in ("uo", "vo")))
    if args.compile:
        model = torch.compile(model)
    amp = args.amp and device.type == "cuda"
    loss_fn = WindowLoss(model, normalizer, amp=amp, channels_last=False)
    optimizer = adamw(model, cfg.train.lr, cfg.train.weight_decay)
    rollout = Rollout(model, normalizer, data, device)

    def train_step() -> None:
        loss = loss_fn(state, forcing, doy)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def run(what: str) -> tuple[float, float, int | None, int | None]:
        model.train(what == "step")
        days = rollout.days(starts, [2] * batch)  # a generator: nothing runs before next()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and what == "day"):
            if what == "day":
                next(days)  # day one: reads and normalises the start states (not timed)
            wall, cpu = time.perf_counter(), time.process_time()
            train_step() if what == "step" else next(days)
            if device.type == "cuda":
                torch.cuda.synchronize()
        return (time.perf_counter() - wall, time.process_time() - cpu,
                *((core.last_substeps, core.last_polar_steps) if core else (None, None)))

    built, tic = memory(device, peak=False), time.perf_counter()
    run("step")
    run("day")
    warm_up = time.perf_counter() - tic
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    else:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM
    conn.send({"params": sum(p.numel() for p in model.parameters()), "source": source,
               "built": built, "warm_up": warm_up, "speed": float(speed.nan_to_num().amax()),
               "batch": batch,
               "grid": f"{len(data.depths)} levels, {data.grid.shape[0]} x {data.grid.shape[1]}",
               "machine": machine_label(device)})
    while (what := conn.recv()) != "stop":
        conn.send(run(what))
    conn.send(memory(device, peak=True))


def span(values) -> str:
    """Median [min-max]."""
    return f"{statistics.median(values):.3g} [{min(values):.3g}-{max(values):.3g}]"


def counts(values) -> str:
    """The sub-step counts of a variant's steps or days: N or min-max ('-': no physics core)."""
    v = sorted({x for x in values if x is not None}) or ["-"]
    return str(v[0]) if len(v) == 1 else f"{v[0]}-{v[-1]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=("demo", "paper"), default="demo")
    parser.add_argument("--resolution", type=float, help="deg (default: demo 6, paper 3)")
    parser.add_argument("--data-dir", type=Path, help="default: results/<run>/data")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=int, help="torch CPU threads per process")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, help="default: the config's train.batch_size")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast (cuda)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--physics-compile", action="store_true",
                        help="physics.compile: true (the core compiles its sub-step)")
    parser.add_argument("--substeps", help="'auto' or N (default: the config's physics.substeps)")
    parser.add_argument("--mmap-threshold", action="store_true",
                        help="fix glibc's mmap threshold in every process (peak memory)")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    args = parser.parse_args()
    spawn, names, workers, info = mp.get_context("spawn"), args.variants, {}, {}
    for name in names:  # one after another: builds and warm-ups do not overlap
        conn, child = spawn.Pipe()
        workers[name] = spawn.Process(target=worker, args=(child, name, args), daemon=True), conn
        workers[name][0].start()
        info[name] = conn.recv()
    times = {(name, what): [] for name in names for what in ("step", "day")}
    for r in range(args.rounds):  # round-robin, each round starting from the next variant
        for name in names[r % len(names):] + names[: r % len(names)]:
            for what in ("step", "day"):
                workers[name][1].send(what)
                times[name, what].append(workers[name][1].recv())
    for name, (process, conn) in workers.items():
        conn.send("stop")
        info[name]["peak"] = conn.recv()
        process.join()
    first = info[names[0]]
    print(f"{args.size} size: {first['grid']}, batch {first['batch']}, {first['source']}, max "
          f"current {first['speed']:.2f} m/s\n{first['machine']['hostname']}: "
          f"{first['machine']['device_name']}"
          f", amp {args.amp}, compile {args.compile}, physics.compile {args.physics_compile}, "
          f"{args.rounds} rounds")
    print(f"{'':15} {'parameters':>11}  {'step s, median [range]':>24}  {'CPU s':>7}  "
          f"{'day s, median [range]':>24}  {'CPU s':>7}  {'SYPD':>7}  sub-steps  polar steps  "
          "GiB built/peak  warm-up s")
    for name in names:
        step, day, i = times[name, "step"], times[name, "day"], info[name]
        sypd = 86400 / (statistics.median(t[0] for t in day) / i["batch"]) / DAYS_PER_YEAR
        print(f"{name:15} {i['params']:>11,}  {span([t[0] for t in step]):>24}  "
              f"{statistics.median(t[1] for t in step):7.3g}  {span([t[0] for t in day]):>24}  "
              f"{statistics.median(t[1] for t in day):7.3g}  {sypd:7.3g}  "
              f"{counts(t[2] for t in step):>4}/{counts(t[2] for t in day):<4}  "
              f"{counts(t[3] for t in step):>5}/{counts(t[3] for t in day):<5}  "
              f"{i['built']:6.2f}/{i['peak']:<6.2f}  {i['warm_up']:9.2f}")

    def ratio(a: str, b: str, what: str) -> list[list[float]]:  # per round; wall, CPU time
        return [[x[c] / y[c] for x, y in zip(times[a, what], times[b, what], strict=True)]
                for c in (0, 1)]

    print(f"per round, median [range], wall | CPU time (load average {os.getloadavg()[0]:.1f}):")
    rows = {}
    if {"hybrid", "U-Net"} <= set(names):
        rows["hybrid / U-Net, training step"] = ratio("hybrid", "U-Net", "step")
        rows["hybrid / U-Net, rollout day"] = ratio("hybrid", "U-Net", "day")
    if {"hybrid", "corrector only"} <= set(names):
        rows["physics share of the hybrid's step, 1 - t(corrector only) / t(hybrid)"] = [
            [1 - x for x in r] for r in ratio("corrector only", "hybrid", "step")]
    for label, (wall, cpu) in rows.items():
        print(f"  {label}: {span(wall)} | {span(cpu)}")

if __name__ == "__main__":
    main()
