"""Time per simulated day of the physics core alone, forward and forward + backward.

    python benchmarks/physics_benchmark.py                     # CPU, the paper's size
    python benchmarks/physics_benchmark.py --device cuda       # and on a GPU
    python benchmarks/physics_benchmark.py --compile           # physics.compile: true

The paper's size: batch 2, 23 levels, 120 x 240 (1.5 deg), float32, the paper's physics config
(config/paper.yaml: sub-steps as stability needs, advection, Coriolis, barotropic pressure
gradient, diffusion). --mmap-threshold fixes glibc's mmap threshold first
(runtime.fix_mmap_threshold; training and rollouts do not, so the default measures what they run).
The state is in physical ranges with a land mask (continents, an Antarctic cap, shelves at
depth). forward: one call (one day) without autograd; forward + backward: one call and the
gradient of a scalar loss with respect to the state and the learnable coefficients (sub-steps
checkpointed, as in training). Prints one line per measurement and the peak memory.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from neuralogcm.channels import channel_level
from neuralogcm.config import load
from neuralogcm.grid import Grid
from neuralogcm.physics.core import CoreSettings, PhysicsCore
from neuralogcm.runtime import fix_mmap_threshold

ROOT = Path(__file__).resolve().parents[1]


def land_mask(grid: Grid, depths: list[float]) -> torch.Tensor:
    """(L, H, W) bool, True on ocean: two continents, an Antarctic cap, shelves below 200 m."""
    lat, lon = np.meshgrid(grid.lat, grid.lon, indexing="ij")
    land = (lat < -70) | ((lon > 280) & (lon < 320) & (lat > -55) & (lat < 70))
    land |= (lon > 10) & (lon < 60) & (lat > -35) & (lat < 75)
    shelf = (lon > 275) & (lon < 325) & (lat > -58) & (lat < 72)
    return torch.as_tensor(np.stack([~(land | (shelf & (z > 200))) for z in depths]))


def physical_state(grid: Grid, depths: list[float], mask: torch.Tensor, batch: int,
                   seed: int = 0) -> torch.Tensor:
    """(batch, 4 L + 1, H, W) float32: S, U, V, T, SSH in physical ranges, land 0."""
    gen = torch.Generator().manual_seed(seed)
    n = len(depths)
    lat = torch.as_tensor(np.deg2rad(grid.lat), dtype=torch.float32)[:, None]
    z = torch.as_tensor(depths, dtype=torch.float32)[:, None, None]
    shape = (batch, n, *grid.shape)
    temp = 2 + 24 * torch.cos(lat) ** 2 * torch.exp(-z / 300) + torch.randn(shape, generator=gen)
    salt = 34.5 + 0.5 * torch.cos(2 * lat) + 0.1 * torch.randn(shape, generator=gen)
    u = 0.1 * torch.randn(shape, generator=gen)
    v = 0.1 * torch.randn(shape, generator=gen)
    eta = 0.5 * torch.sin(lat).expand(batch, 1, *grid.shape) ** 2
    state = torch.cat([salt, u, v, temp, eta], 1)
    return state * mask[torch.as_tensor(channel_level(n))]


def timed(fn, device: torch.device, repeats: int) -> list[float]:
    """Wall seconds of each of ``repeats`` calls of fn (after a warm-up call on a GPU)."""
    if device.type == "cuda":
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "config" / "paper.yaml"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--levels", type=int, default=None, help="default: the config's depths")
    parser.add_argument("--substeps", type=int, default=None, help="default: the config's")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--compile", action="store_true", help="physics.compile: true")
    parser.add_argument("--mmap-threshold", action="store_true",
                        help="fix glibc's mmap threshold (freed temporaries go back at once)")
    args = parser.parse_args()
    if args.mmap_threshold:
        fix_mmap_threshold()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load(args.config)
    physics = cfg.physics
    if args.substeps:
        physics = physics.model_copy(update={"substeps": args.substeps})
    if args.compile:
        physics = physics.model_copy(update={"compile": True})
    depths = cfg.data.depths[: args.levels]
    grid = Grid(cfg.grid.resolution)
    device = torch.device(args.device)
    mask = land_mask(grid, depths)
    core = PhysicsCore(grid, depths, mask, CoreSettings.of(physics)).to(device)
    state = physical_state(grid, depths, mask, args.batch).to(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def forward():
        with torch.no_grad():
            return core(state)

    def forward_backward():
        x = state.clone().requires_grad_()
        loss = core(x).square().mean()
        loss.backward()
        return loss

    size = (f"batch {args.batch}, {len(depths)} levels, {grid.shape[0]} x {grid.shape[1]}, "
            f"physics.substeps {physics.substeps}, compile {physics.compile}, {device}, "
            f"torch threads {torch.get_num_threads()}")
    print(f"physics core, {size}")
    for name, fn in (("forward", forward), ("forward+backward", forward_backward)):
        times = timed(fn, device, args.repeats)
        print(f"  {name:>17}: {statistics.median(times):8.3f} s per simulated day "
              f"(median of {len(times)}, min {min(times):.3f} s)")
    if device.type == "cuda":
        print(f"  peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"  peak RSS: {peak:.2f} GiB")
    print(f"  sub-steps {core.last_substeps} a day, zonal steps of the polar rows "
          f"{core.last_polar_steps} a day")
    print(f"  coefficient bound {core.bound:.4g} m^2/s; "
          + ", ".join(f"{k} {v.mean().item():.4g} m^2/s" for k, v in core.coefficients().items()))


if __name__ == "__main__":
    main()
