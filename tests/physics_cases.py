"""Shared cases for the physics-core tests: an irregular land mask and a balanced ocean state.

The mask has continents that reach to 34 S (so a land-free Southern Ocean band stays open at
every level), an Antarctic cap, islands, a closed inland sea and shelves that are land at depth
only. The state is realistic in range (T, S varying with latitude, longitude and depth) and in
balance: SSH varies only across the land-free band, where the zonal current is geostrophic with
the core's own discrete gradient, so the core alone should keep it (nearly) steady.
"""

from __future__ import annotations

import numpy as np
import torch

from neuralogcm.grid import GRAVITY, Grid
from neuralogcm.physics.operators import SphereOperators

BAND = (-66.0, -48.0)  # deg: latitudes of the land-free circumpolar band (jet and SSH slope)


def land_mask(grid: Grid, depths: list[float]) -> torch.Tensor:
    """(L, H, W) bool, True on ocean: continents, islands, a closed sea, shelves at depth."""
    lat, lon = np.meshgrid(grid.lat, grid.lon, indexing="ij")
    land = lat < -70.0  # Antarctica
    land |= (lon >= 280) & (lon < 310) & (lat > -34) & (lat < 70)  # an American continent
    land |= (lon >= 10) & (lon < 50) & (lat > -34) & (lat < 72)  # an African-European one
    land |= (lon >= 90) & (lon < 140) & (lat > 20) & (lat < 60)  # an Asian one, holding ...
    sea = (lon >= 102) & (lon < 128) & (lat > 30) & (lat < 50)  # ... a closed inland sea
    land &= ~sea
    land |= (lon >= 170) & (lon < 180) & (lat > 6) & (lat < 18)  # an island
    land |= (lon >= 220) & (lon < 226) & (lat > -30) & (lat < -20)  # a small island
    levels = []
    for depth in depths:
        shelf = land.copy()
        if depth > 100.0:  # shelves: one more column of land west of the Americas at depth
            shelf |= (lon >= 280 - grid.resolution) & (lon < 280) & (lat > -34) & (lat < 70)
        levels.append(~shelf)
    return torch.as_tensor(np.stack(levels))


def closed_sea(grid: Grid) -> torch.Tensor:
    """(H, W) bool: the cells of the closed inland sea."""
    lat, lon = np.meshgrid(grid.lat, grid.lon, indexing="ij")
    return torch.as_tensor((lon >= 102) & (lon < 128) & (lat > 30) & (lat < 50))


def balanced_state(grid: Grid, depths: list[float], mask: torch.Tensor) -> torch.Tensor:
    """(1, 4 L + 1, H, W) float64 state S, U, V, T, SSH in physical units, land 0.

    T and S vary with latitude, depth and (as waves) longitude; SSH drops by 1 m across the
    circumpolar band and is flat elsewhere; u is in geostrophic balance with the core's masked
    centred gradient of SSH, v = 0.
    """
    lat = torch.as_tensor(np.deg2rad(grid.lat))[:, None]
    lon = torch.as_tensor(np.deg2rad(grid.lon))[None, :]
    z = torch.as_tensor(np.asarray(depths, dtype=float))[:, None, None]
    wave = torch.sin(3 * lon + 2 * lat) * torch.cos(lat) + 0.5 * torch.cos(5 * lon - lat)
    temp = 2.0 + 24.0 * torch.cos(lat) ** 2 * torch.exp(-z / 300.0) + 1.5 * wave
    salt = 34.6 + 0.8 * torch.cos(2 * lat) * torch.exp(-z / 500.0) + 0.2 * wave
    south, north = np.deg2rad(BAND[0]), np.deg2rad(BAND[1])
    ramp = ((lat - south) / (north - south)).clamp(0.0, 1.0)
    eta = 0.5 * (1.0 - torch.cos(np.pi * ramp)) - 0.5  # -0.5 m south of the band, 0.5 m north
    eta = eta.expand(grid.shape)[None]
    ops = SphereOperators(grid, mask).double()
    _, deta_dy = ops.gradient(eta.expand(len(depths), -1, -1))
    f = torch.as_tensor(grid.coriolis)[:, None]
    u = -GRAVITY * deta_dy / f
    m = mask.double()
    state = torch.cat([salt * m, u * m, torch.zeros_like(u), temp * m, eta * m[:1]])
    return state[None]


def perturbed_state(
    grid: Grid, depths: list[float], mask: torch.Tensor, batch: int = 1, seed: int = 0
) -> torch.Tensor:
    """(batch, 4 L + 1, H, W): the balanced state plus grid-scale noise in S (0.1), u, v
    (0.05 m/s) and T (0.5 K), land 0; SSH unchanged."""
    state = balanced_state(grid, depths, mask)
    n = len(depths)
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn((batch, *state.shape[1:]), generator=gen, dtype=torch.float64)
    scale = torch.tensor([0.1] * n + [0.05] * 2 * n + [0.5] * n + [0.0], dtype=torch.float64)
    levels = list(range(n)) * 4 + [0]
    return (state + scale[:, None, None] * noise) * mask[levels]


def kinetic_energy(state: torch.Tensor, grid: Grid, n_levels: int) -> torch.Tensor:
    """Area-integrated kinetic energy per unit mass and depth, summed over levels, m^4/s^2."""
    area = torch.as_tensor(grid.cell_area)
    u = state[:, n_levels : 2 * n_levels]
    v = state[:, 2 * n_levels : 3 * n_levels]
    return 0.5 * (area * (u**2 + v**2)).sum()


def tracer_variance(q: torch.Tensor, mask: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Area-integrated variance about the area mean over the ocean cells of q (B, L, H, W)."""
    area = torch.as_tensor(grid.cell_area) * mask
    mean = (area * q).sum() / (area.sum() * q.shape[0])
    return (area * (q - mean) ** 2).sum()
