"""`neuralogcm models`: parameter count and FLOPs per step of every model in the config.

    neuralogcm models --config C --out tables/models.csv     (also writes tables/models.md)

Each model is built on the config's grid and levels and stepped once (batch 1) under
``torch.utils.flop_counter.FlopCounterMode``: matrix products and convolutions count 2 FLOPs per
multiply-add; FFTs count 2.5 N log2 N for a real transform of N points (5 N log2 N complex);
elementwise operations are not counted. Neither count depends on the data, so no data are read:
the land mask is all ocean and the normaliser is a stand-in with unit statistics.
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

import pandas as pd
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from neuralogcm import config as config_module
from neuralogcm.channels import n_ocean_channels
from neuralogcm.grid import Grid
from neuralogcm.io import atomic_path
from neuralogcm.models.base import ForecastModel, ModelContext
from neuralogcm.models.registry import build_model

log = logging.getLogger(__name__)


class UnitNormalizer(nn.Module):
    """The ``data.Normalizer`` interface with mean 0 and std 1 everywhere (for counting only)."""

    def normalize_state(self, x: torch.Tensor, doy: torch.Tensor, channels=None) -> torch.Tensor:
        return x

    def denormalize_state(self, x: torch.Tensor, doy: torch.Tensor,
                          channels=None) -> torch.Tensor:
        return x

    def normalize_increment(self, dx: torch.Tensor) -> torch.Tensor:
        return dx

    def normalize_forcing(self, f: torch.Tensor) -> torch.Tensor:
        return f


def _fft_flops(transformed: list[int], total: int, complex_input: bool) -> int:
    """FLOPs of FFTs over the ``transformed`` dims of a tensor of ``total`` points."""
    n = math.prod(transformed)
    per_point = 5.0 if complex_input else 2.5
    return int(per_point * total * math.log2(n)) if n > 1 else 0


def _r2c(x_shape, dim, *args, out_shape=None, **kwargs) -> int:
    return _fft_flops([x_shape[d] for d in dim], math.prod(x_shape), complex_input=False)


def _c2r(x_shape, dim, *args, out_shape=None, **kwargs) -> int:
    return _fft_flops([out_shape[d] for d in dim], math.prod(out_shape), complex_input=False)


def _c2c(x_shape, dim, *args, out_shape=None, **kwargs) -> int:
    return _fft_flops([x_shape[d] for d in dim], math.prod(x_shape), complex_input=True)


FFT_FLOPS = {
    torch.ops.aten._fft_r2c: _r2c,
    torch.ops.aten._fft_c2r: _c2r,
    torch.ops.aten._fft_c2c: _c2c,
}


def model_context(cfg: config_module.Config) -> ModelContext:
    """A context with the config's grid, levels and physics, all ocean, unit statistics."""
    grid = Grid(cfg.grid.resolution)
    n_channels = n_ocean_channels(len(cfg.data.depths))
    mask = torch.ones(n_channels, *grid.shape, dtype=torch.bool)
    return ModelContext(grid=grid, depths=list(cfg.data.depths), mask=mask,
                        normalizer=UnitNormalizer(), physics=cfg.physics)


def flops_per_step(model: ForecastModel) -> int:
    """FLOPs of one forward step of ``model`` for a batch of one (from a zero state)."""
    ctx = model.ctx
    device = model.ocean_mask.device
    grid_shape = ctx.mask.shape[-2:]
    state = torch.zeros(1, ctx.n_channels, *grid_shape, device=device)
    forcing = torch.zeros(1, ctx.n_forcing, *grid_shape, device=device)
    doy = torch.zeros(1, dtype=torch.long, device=device)
    counter = FlopCounterMode(display=False, custom_mapping=FFT_FLOPS)
    with torch.no_grad(), counter:
        model(state, forcing, doy, doy + 1)
    return counter.get_total_flops()


def summarize(cfg: config_module.Config, device: torch.device | str = "cpu") -> pd.DataFrame:
    """One row per configured model: arch, grid, parameters, GFLOPs per step, options. The
    counts are the same on any device; a GPU only gets them sooner (a hybrid's physics core at
    the paper's size takes minutes per step on a CPU)."""
    ctx = model_context(cfg)
    height, width = ctx.grid.shape
    rows = []
    for name, spec in cfg.models.items():
        model = build_model(spec, ctx).to(device).eval()
        options = ", ".join(f"{k}={v}" for k, v in spec.items() if k != "arch")
        rows.append({
            "model": name,
            "arch": spec["arch"],
            "grid": f"{height}x{width}x{ctx.n_levels}",
            "parameters": sum(p.numel() for p in model.parameters()),
            "gflops_per_step": flops_per_step(model) / 1e9,
            "options": options,
        })
        log.info("%s: %d parameters, %.3f GFLOPs per step", name, rows[-1]["parameters"],
                 rows[-1]["gflops_per_step"])
    return pd.DataFrame(rows)


def write_table(table: pd.DataFrame, out: Path) -> None:
    """Write ``out`` (CSV) and the same table as markdown next to it (.md)."""
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(out.with_suffix(".md")) as tmp:
        tmp.write_text(table.to_markdown(index=False, floatfmt=".4g") + "\n")


def cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="config file (YAML or JSON)")
    parser.add_argument("--out", required=True, type=Path,
                        help="CSV table to write; a markdown copy goes next to it (.md)")


def cli_main(args: argparse.Namespace) -> None:
    cfg = config_module.load(args.config)
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    write_table(summarize(cfg, device), args.out)
