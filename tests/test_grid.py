import numpy as np
import pytest

from neuralogcm.grid import EARTH_RADIUS, OMEGA, Grid


def test_paper_grid_matches_design():
    g = Grid(1.5)
    assert g.shape == (120, 240)
    assert g.lat[0] == pytest.approx(-89.25) and g.lat[-1] == pytest.approx(89.25)
    assert g.lon[0] == 0.0 and g.lon[-1] == pytest.approx(358.5)
    assert np.all(np.diff(g.lat) > 0)
    # no row on a pole: every metric factor is positive
    assert g.dx.min() > 0


def test_cell_areas_sum_to_sphere_and_polar_row_width():
    g = Grid(1.5)
    assert g.cell_area.sum() == pytest.approx(4 * np.pi * EARTH_RADIUS**2, rel=1e-12)
    # the 89.25 deg row is about 2.2 km wide (issue 3)
    assert g.dx[-1] == pytest.approx(2183.0, rel=1e-3)
    assert g.dy == pytest.approx(166_789.0, rel=1e-4)


def test_demo_grid_and_coriolis():
    g = Grid(6.0)
    assert g.shape == (30, 60)
    np.testing.assert_allclose(g.coriolis, 2 * OMEGA * np.sin(np.deg2rad(g.lat)))
    assert g.lat_bounds[0] == -90 and g.lat_bounds[-1] == 90


def test_resolution_must_divide_180():
    with pytest.raises(ValueError, match="grid.resolution"):
        Grid(7.0)
