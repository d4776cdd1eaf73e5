"""Training step time and peak memory of the paper-size NeuralOGCM, and the physics core's share.

    python benchmarks/train_benchmark.py                      # CPU, config/paper.yaml, batch 2
    python benchmarks/train_benchmark.py --device cuda        # a GPU (bf16 autocast, as trained)
    python benchmarks/train_benchmark.py --resolution 3       # 60 x 120 cells: 1/4 of the work
    python benchmarks/train_benchmark.py --variants "corrector only"

One training step = normalisation on the device, the model's forward, the masked MSE, backward
and an AdamW update (train.WindowLoss, exactly what `neuralogcm train` runs), on random states in
physical ranges on the paper's grid (120 x 240, 23 levels: 93 ocean + 4 forcing + 1 mask inputs).
Three variants, each in a fresh process so that peak memory is its own: the hybrid, the corrector
alone and the physics core alone; the physics share of the hybrid's step is
1 - t(corrector only) / t(hybrid). CPU time is printed beside the wall time: on a shared machine
it is the better measure of what the step costs. Peak memory: the process's peak RSS on CPU
(it includes the 2 GB day-of-year climatology the normaliser holds at this size),
max_memory_allocated on a GPU.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from neuralogcm.channels import FORCING, PERIODIC, channel_level
from neuralogcm.config import load
from neuralogcm.data import Normalizer
from neuralogcm.grid import Grid
from neuralogcm.models.base import ModelContext
from neuralogcm.models.registry import build_model
from neuralogcm.train import WindowLoss

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {"hybrid": {}, "corrector only": {"physics": False},
            "physics only": {"corrector": False}}


def synthetic_normalizer(grid: Grid, n_levels: int, mask: np.ndarray) -> Normalizer:
    """Per-channel statistics and a seasonal climatology in physical ranges."""
    c = 4 * n_levels + 1
    std = np.concatenate([np.full(n_levels, 0.2), np.full(2 * n_levels, 0.1),
                          np.full(n_levels, 1.0), [0.1], [5.0, 3.0, 10.0, 800.0]])
    mean = np.zeros(c + len(FORCING))
    mean[c:] = [0.0, 0.0, 285.0, 101325.0]
    lat = np.deg2rad(grid.lat)[:, None] * np.ones(grid.shape)
    day = np.arange(365)[:, None, None]
    season = np.sin(2 * np.pi * day / 365) * np.sign(lat)
    fields = {"so": np.broadcast_to(35.0 + 0.5 * np.cos(2 * lat), season.shape),
              "thetao": 2.0 + 25.0 * np.cos(lat) ** 2 + 2.0 * season,
              "zos": 0.5 * np.cos(lat) - 0.3 + 0.05 * season}
    clim = np.concatenate([np.repeat(fields[v][:, None], n_levels if v != "zos" else 1, 1)
                           for v in PERIODIC], 1).astype(np.float32)
    return Normalizer(mean, std, clim, mask)


def paper_mask(grid: Grid, n_levels: int) -> np.ndarray:
    """(L, H, W) bool: an Antarctic cap and two continents, shelves that are land at depth."""
    lat, lon = np.meshgrid(grid.lat, grid.lon, indexing="ij")
    land = (lat < -75) | ((lon > 250) & (lon < 300) & (np.abs(lat) < 50))
    land |= (lon > 0) & (lon < 40) & (lat > -35) & (lat < 60)
    return np.stack([~land & ~((np.abs(lat) > 65) & (k > n_levels // 2)) for k in range(n_levels)])


def run_variant(name: str, config: Path, device: str, batch: int, steps: int,
                resolution: float | None) -> dict:
    cfg = load(config)
    torch.manual_seed(0)
    grid, depths = Grid(resolution or cfg.grid.resolution), cfg.data.depths
    n_levels = len(depths)
    mask = paper_mask(grid, n_levels)
    dev = torch.device(device)
    normalizer = synthetic_normalizer(grid, n_levels, mask).to(dev)
    ctx = ModelContext(grid, depths, torch.from_numpy(mask[channel_level(n_levels)]), normalizer,
                       cfg.physics)
    spec = dict(cfg.models["neuralogcm"], **VARIANTS[name])
    model = build_model(spec, ctx).to(dev)
    loss_fn = WindowLoss(model, normalizer, amp=cfg.train.amp and dev.type == "cuda",
                         channels_last=False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr)
    c, h, w = 4 * n_levels + 1, *grid.shape
    doy = torch.randint(0, 364, (batch, 1), device=dev) + torch.arange(2, device=dev)
    state = normalizer.denormalize_state(0.5 * torch.randn(batch * 2, c, h, w, device=dev),
                                         doy.flatten()).reshape(batch, 2, c, h, w)
    forcing = normalizer.forcing_mean + normalizer.forcing_std * torch.randn(
        batch, 1, len(FORCING), h, w, device=dev)

    def step() -> None:
        loss = loss_fn(state, forcing, doy)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()

    step()  # warm-up (allocations, optimiser state)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times, cpu_times = [], []
    for _ in range(steps):
        start, cpu_start = time.perf_counter(), time.process_time()
        step()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    peak = (torch.cuda.max_memory_allocated() if dev.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"variant": name, "step_s": float(np.median(times)),
            "cpu_s": float(np.median(cpu_times)), "peak_gb": peak / 1e9,
            "parameters": sum(p.numel() for p in model.parameters()),
            "inputs": ctx.n_inputs, "grid": f"{h} x {w}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=ROOT / "config/paper.yaml")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3, help="timed steps (median reported)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--resolution", type=float, default=None,
                        help="grid spacing in degrees instead of the config's (a smaller run)")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--variant", choices=list(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.variant:  # a child process: one variant, its result as JSON on the last line
        print(json.dumps(run_variant(args.variant, args.config, args.device, args.batch,
                                     args.steps, args.resolution)))
        return
    print(f"device {args.device}, {torch.get_num_threads()} threads, batch {args.batch}, "
          f"config {args.config.name}")
    results = {}
    for name in args.variants:
        command = [sys.executable, __file__, "--variant", name, *sys.argv[1:]]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        results[name] = json.loads(out.strip().splitlines()[-1])
        r = results[name]
        print(f"  {name:<15} step {r['step_s']:8.3f} s (CPU time {r['cpu_s']:8.3f} s)   "
              f"peak memory {r['peak_gb']:6.2f} GB   {r['parameters']:>11,} parameters   "
              f"{r['inputs']} inputs on {r['grid']}")
    if {"hybrid", "corrector only"} <= set(results):
        share = 1.0 - results["corrector only"]["step_s"] / results["hybrid"]["step_s"]
        print(f"physics core share of the hybrid's training step: {100 * share:.0f}%")


if __name__ == "__main__":
    main()
