"""The target grid: regular latitude-longitude cell centres, no row on a pole.

All arrays are in degrees (coordinates) or SI units (lengths in m, areas in m^2).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

EARTH_RADIUS = 6.371e6  # m
OMEGA = 7.292115e-5  # Earth's rotation rate, rad/s
GRAVITY = 9.80665  # m/s^2


@dataclass(frozen=True)
class Grid:
    """Global grid of ``180/res x 360/res`` cell centres.

    Latitudes run from ``-90 + res/2`` to ``90 - res/2`` (ascending), longitudes from 0 to
    ``360 - res``. At 1.5 deg this is the paper's 120 x 240 grid (-89.25..89.25, 0..358.5).
    """

    resolution: float  # deg
    radius: float = EARTH_RADIUS  # m

    def __post_init__(self) -> None:
        n_lat = 180.0 / self.resolution
        if self.resolution <= 0 or abs(n_lat - round(n_lat)) > 1e-9:
            raise ValueError(
                f"grid.resolution={self.resolution} deg does not divide 180 deg into whole cells"
            )

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) = (n_lat, n_lon)."""
        return (round(180.0 / self.resolution), round(360.0 / self.resolution))

    @cached_property
    def lat(self) -> np.ndarray:
        """Cell-centre latitudes, shape (H,), deg, ascending."""
        h = self.shape[0]
        return -90.0 + self.resolution * (np.arange(h) + 0.5)

    @cached_property
    def lon(self) -> np.ndarray:
        """Cell-centre longitudes, shape (W,), deg, 0..360-res."""
        return self.resolution * np.arange(self.shape[1], dtype=float)

    @cached_property
    def lat_bounds(self) -> np.ndarray:
        """Cell edge latitudes, shape (H+1,), deg, -90..90."""
        return -90.0 + self.resolution * np.arange(self.shape[0] + 1)

    @cached_property
    def lon_bounds(self) -> np.ndarray:
        """Cell edge longitudes, shape (W+1,), deg, -res/2..360-res/2."""
        return self.resolution * (np.arange(self.shape[1] + 1) - 0.5)

    @cached_property
    def cell_area(self) -> np.ndarray:
        """Exact spherical cell areas, shape (H, W), m^2; they sum to 4 pi R^2."""
        sin_edges = np.sin(np.deg2rad(self.lat_bounds))
        band = self.radius**2 * np.deg2rad(self.resolution) * np.diff(sin_edges)
        return np.repeat(band[:, None], self.shape[1], axis=1)

    @cached_property
    def dx(self) -> np.ndarray:
        """Zonal cell width at the centres, shape (H,), m."""
        return self.radius * np.cos(np.deg2rad(self.lat)) * np.deg2rad(self.resolution)

    @property
    def dy(self) -> float:
        """Meridional cell height, m."""
        return self.radius * np.deg2rad(self.resolution)

    @cached_property
    def coriolis(self) -> np.ndarray:
        """Coriolis parameter f = 2 Omega sin(lat) at the centres, shape (H,), 1/s."""
        return 2.0 * OMEGA * np.sin(np.deg2rad(self.lat))

    def coords(self) -> dict[str, tuple[str, np.ndarray, dict]]:
        """CF coordinate variables for xarray: ``xr.Dataset(coords=grid.coords())``."""
        return {
            "lat": ("lat", self.lat, {"units": "degrees_north", "standard_name": "latitude",
                                      "long_name": "latitude of cell centre", "axis": "Y"}),
            "lon": ("lon", self.lon, {"units": "degrees_east", "standard_name": "longitude",
                                      "long_name": "longitude of cell centre", "axis": "X"}),
        }
