"""Channel order and variable metadata: the one place that defines them.

Ocean state: S(L), U(L), V(L), T(L), SSH -> 4 L + 1 channels (93 for the paper's 23 levels).
Forcing: U10M, V10M, T2M, MSLP -> 4 channels. Periodic channels (turned into anomalies with the
day-of-year climatology): S(L), T(L), SSH -> 2 L + 1 channels (47 for L = 23), in that order.
"""

from __future__ import annotations

import numpy as np

OCEAN_3D = ("so", "uo", "vo", "thetao")  # stacking order of the depth-resolved variables
OCEAN_2D = ("zos",)
OCEAN = OCEAN_3D + OCEAN_2D
FORCING = ("u10", "v10", "t2m", "msl")
PERIODIC = ("so", "thetao", "zos")  # climatology order

# The 23 GLORYS12 levels of the paper (m, exact model-level values, positive down).
PAPER_DEPTHS = (
    0.494025, 2.645669, 5.078224, 7.92956, 11.405, 15.81007, 21.59882, 29.44473, 40.34405,
    55.76429, 77.85385, 92.32607, 109.7293, 130.666, 155.8507, 186.1256, 222.4752, 266.0403,
    318.1274, 380.213, 453.9377, 541.0889, 643.5668,
)

# CF metadata of every canonical variable (units as the sources give them).
CF = {
    "so": {"units": "1e-3", "standard_name": "sea_water_salinity", "long_name": "Salinity"},
    "uo": {"units": "m s-1", "standard_name": "eastward_sea_water_velocity",
           "long_name": "Eastward velocity"},
    "vo": {"units": "m s-1", "standard_name": "northward_sea_water_velocity",
           "long_name": "Northward velocity"},
    "thetao": {"units": "degrees_C", "standard_name": "sea_water_potential_temperature",
               "long_name": "Temperature"},
    "zos": {"units": "m", "standard_name": "sea_surface_height_above_geoid",
            "long_name": "Sea surface height"},
    "u10": {"units": "m s-1", "standard_name": "eastward_wind",
            "long_name": "10 metre U wind component"},
    "v10": {"units": "m s-1", "standard_name": "northward_wind",
            "long_name": "10 metre V wind component"},
    "t2m": {"units": "K", "standard_name": "air_temperature", "long_name": "2 metre temperature"},
    "msl": {"units": "Pa", "standard_name": "air_pressure_at_mean_sea_level",
            "long_name": "Mean sea level pressure"},
}


def ocean_channel_names(n_levels: int) -> list[str]:
    """Names of the ocean channels in order: so_00.., uo_00.., vo_00.., thetao_00.., zos."""
    return [f"{v}_{k:02d}" for v in OCEAN_3D for k in range(n_levels)] + list(OCEAN_2D)


def n_ocean_channels(n_levels: int) -> int:
    return len(OCEAN_3D) * n_levels + len(OCEAN_2D)


def channel_variable(n_levels: int) -> list[str]:
    """Canonical variable of each ocean channel, length 4 L + 1."""
    return [v for v in OCEAN_3D for _ in range(n_levels)] + list(OCEAN_2D)


def channel_level(n_levels: int) -> np.ndarray:
    """Depth-level index of each ocean channel (0 for SSH), shape (4 L + 1,).

    Use it to pick each channel's land mask: ``mask[channel_level(L)]`` -> (4 L + 1, H, W).
    """
    return np.array(list(range(n_levels)) * len(OCEAN_3D) + [0] * len(OCEAN_2D))


def periodic_channel_index(n_levels: int) -> np.ndarray:
    """Positions of the periodic channels (S, T, SSH) in the ocean channels, shape (2 L + 1,)."""
    names = channel_variable(n_levels)
    return np.array([i for v in PERIODIC for i, n in enumerate(names) if n == v])


def variable_slice(var: str, n_levels: int) -> slice:
    """Slice of the ocean channels that hold ``var``."""
    if var in OCEAN_2D:
        start = len(OCEAN_3D) * n_levels + OCEAN_2D.index(var)
        return slice(start, start + 1)
    i = OCEAN_3D.index(var)
    return slice(i * n_levels, (i + 1) * n_levels)
