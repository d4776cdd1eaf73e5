"""Shared fixtures: a tiny set of data stores in exactly the format of results/{run}/data/.

``tiny_data_dir`` holds ocean.zarr, forcing.zarr, mask.nc, climatology.zarr and stats.nc for
2017-2020 (2020 is a leap year) on a 15-degree grid (12 x 24 cells) with 2 depth levels and land
(a continent, a shelf that is land at depth only, an Antarctic cap). The fields are smooth
functions of latitude and depth in physical ranges with a seasonal cycle, an eastward-travelling
wave and a little noise, so models have something to learn. ``tiny_config`` is a config mapping
for these stores (train 2017-2018, valid 2019, test 2020) with tiny models; change a copy
freely.

One deviation from the contract, on purpose: the climatology is the day-of-year mean over all
four years, not over the train years alone. Its format is exactly the contract's.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

from neuralogcm.channels import (
    CF,
    FORCING,
    OCEAN,
    OCEAN_3D,
    PERIODIC,
    ocean_channel_names,
    periodic_channel_index,
)
from neuralogcm.grid import Grid

TINY_YEARS = (2017, 2020)
TINY_RESOLUTION = 15.0  # deg: 12 x 24 cells
TINY_DEPTHS = [0.494025, 40.34405]  # m


def _tiny_mask(grid: Grid, depths: list[float]) -> np.ndarray:
    """(L, H, W) bool, True on ocean."""
    lat, lon = np.meshgrid(grid.lat, grid.lon, indexing="ij")
    land = (lat < -70) | ((lon >= 90) & (lon < 150) & (lat > -40) & (lat < 60))
    shelf = (lon >= 150) & (lon < 195) & (lat > 0) & (lat < 35)
    return np.stack([~land & ~(shelf & (z > 20)) for z in depths])


def _tiny_fields(grid: Grid, depths: list[float], dates: pd.DatetimeIndex, seed: int = 0):
    """Ocean (name -> (T, L, H, W), zos (T, H, W)) and forcing (name -> (T, H, W)), SI units."""
    rng = np.random.default_rng(seed)
    t = (dates - dates[0]).days.to_numpy(float)[:, None, None, None]  # (T, 1, 1, 1) days
    doy = dates.day_of_year.to_numpy(float)[:, None, None, None]
    season = np.sin(2 * np.pi * (doy - 80) / 365.25)
    lat = np.deg2rad(grid.lat)[None, None, :, None]
    lon = np.deg2rad(grid.lon)[None, None, None, :]
    z = np.asarray(depths, float)[None, :, None, None]
    hemi = np.sign(lat)
    wave = np.sin(2 * lon - 2 * np.pi * t / 30.0) * np.cos(lat)  # 30-day eastward wave
    shape = (len(dates), len(depths), *grid.shape)

    def field(mean, noise):
        return np.broadcast_to(mean, shape) + noise * rng.standard_normal(shape)

    ocean = {
        "so": field(34.5 + np.cos(2 * lat) + 0.2 * hemi * season * np.exp(-z / 50) + 0.05 * wave,
                    0.02),
        "uo": field(0.2 * np.cos(3 * lat) * np.exp(-z / 200) + 0.05 * wave, 0.01),
        "vo": field(0.05 * np.sin(2 * lat) * np.cos(lon) + 0.03 * wave * season, 0.01),
        "thetao": field(2.0 + 24.0 * np.cos(lat) ** 2 * np.exp(-z / 300)
                        + 3.0 * hemi * season * np.exp(-z / 50) * np.cos(lat) + 0.5 * wave, 0.05),
        "zos": field(0.6 * np.cos(lat) - 0.4 + 0.05 * hemi * season + 0.1 * wave, 0.01)[:, 0],
    }
    forcing = {
        "u10": field(6.0 * np.cos(2 * lat) + 2.0 * season * hemi + 2.0 * wave, 0.3),
        "v10": field(2.0 * np.sin(lat) * np.sin(lon) + wave, 0.3),
        "t2m": field(288.0 - 30.0 * np.sin(lat) ** 2 + 8.0 * hemi * season, 0.5),
        "msl": field(101325.0 + 800.0 * np.cos(3 * lat) + 300.0 * wave, 20.0),
    }
    return ocean, {k: v[:, 0] for k, v in forcing.items()}


def _day_of_year_index(dates: pd.DatetimeIndex) -> np.ndarray:
    """0..364: the calendar day of a non-leap year; 29 February -> 28 February (58)."""
    doy = dates.day_of_year.to_numpy() - 1
    return np.where(dates.is_leap_year & (doy >= 59), doy - 1, doy)


def write_tiny_data(data_dir, years=TINY_YEARS, resolution=TINY_RESOLUTION, depths=TINY_DEPTHS,
                    train_years=(2017, 2018)):
    """Write the five data stores of the contract into ``data_dir``; return it."""
    grid = Grid(resolution)
    dates = pd.date_range(f"{years[0]}-01-01", f"{years[1]}-12-31", freq="D")
    mask = _tiny_mask(grid, depths)
    ocean, forcing = _tiny_fields(grid, depths, dates)
    for name in OCEAN:
        ocean[name] = np.where(mask if name in OCEAN_3D else mask[0], ocean[name], np.nan)
    coords = {"time": dates.values.astype("datetime64[ns]"),
              "depth": ("depth", np.asarray(depths, float),
                        {"units": "m", "positive": "down", "standard_name": "depth"}),
              **grid.coords()}
    surface = {k: v for k, v in coords.items() if k != "depth"}
    provenance = {"source": "tests/conftest.py", "dataset_id": "tiny", "config_digest": "tiny",
                  "package_version": "test"}

    def dims(name):
        return ("time", "depth", "lat", "lon") if name in OCEAN_3D else ("time", "lat", "lon")

    ocean_ds = xr.Dataset({k: (dims(k), v.astype(np.float32), CF[k]) for k, v in ocean.items()},
                          coords=coords, attrs=provenance)
    forcing_ds = xr.Dataset({k: (dims(k), v.astype(np.float32), CF[k]) for k, v in forcing.items()},
                            coords=surface, attrs=provenance)
    for ds, store in ((ocean_ds, "ocean.zarr"), (forcing_ds, "forcing.zarr")):
        one_day = {k: {"chunks": (1, *v.shape[1:])} for k, v in ds.data_vars.items()}
        with warnings.catch_warnings():  # zarr 3: consolidated metadata is not in the v3 spec
            warnings.simplefilter("ignore")
            ds.to_zarr(data_dir / store, mode="w", encoding=one_day)
    xr.Dataset({"mask": (("depth", "lat", "lon"), mask.astype(np.int8),
                         {"long_name": "ocean mask (1 ocean, 0 land)"})},
               coords={k: v for k, v in coords.items() if k != "time"}).to_netcdf(
        data_dir / "mask.nc")

    day = _day_of_year_index(dates)
    clim = (ocean_ds[list(PERIODIC)].groupby(xr.DataArray(day, dims="time", name="dayofyear"))
            .mean("time"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clim.to_zarr(data_dir / "climatology.zarr", mode="w")

    L = len(depths)
    state = np.concatenate([ocean[v] if v in OCEAN_3D else ocean[v][:, None] for v in OCEAN], 1)
    clim_stack = np.concatenate([clim[v].values if v in OCEAN_3D else clim[v].values[:, None]
                                 for v in PERIODIC], 1)
    state[:, periodic_channel_index(L)] -= clim_stack[day]  # anomalies of S, T, SSH
    train = (dates.year >= train_years[0]) & (dates.year <= train_years[1])
    channels = np.concatenate([state, np.stack([forcing[k] for k in FORCING], 1)], 1)[train]
    periodic = np.isin(np.arange(channels.shape[1]), periodic_channel_index(L))
    xr.Dataset(
        {"mean": ("channel", np.nanmean(channels, (0, 2, 3))),
         "std": ("channel", np.nanstd(channels, (0, 2, 3)))},
        coords={"channel": ocean_channel_names(L) + list(FORCING),
                "periodic": ("channel", periodic)},
    ).to_netcdf(data_dir / "stats.nc")
    return data_dir


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory):
    """A data directory with the five stores (read-only: copy it before changing a file)."""
    return write_tiny_data(tmp_path_factory.mktemp("tiny_data"))


TINY_CONFIG = {
    "run": "tiny",
    "data": {"source": "synthetic", "depths": TINY_DEPTHS,
             "years": {"train": [2017, 2018], "valid": [2019, 2019], "test": [2020, 2020]}},
    "grid": {"resolution": TINY_RESOLUTION},
    "physics": {"substeps": 2},
    "models": {
        "neuralogcm": {"arch": "neuralogcm", "width": 8, "depth": 2, "heads": 2,
                       "attention_layers": 1},
        "physics_only": {"arch": "neuralogcm", "corrector": False},
        "corrector_only": {"arch": "neuralogcm", "physics": False, "width": 8, "depth": 2,
                           "heads": 2, "attention_layers": 1},
    },
    "train": {"epochs": 2, "batch_size": 4, "lr": 1e-3, "max_steps_per_epoch": 3,
              "num_workers": 0, "amp": False, "cache_gb": 0, "valid_stride_days": 14},
}


@pytest.fixture
def tiny_config():
    """A config mapping for ``tiny_data_dir`` (a fresh deep copy per test)."""
    return copy.deepcopy(TINY_CONFIG)


# ---------------------------------------------------------------------------------------------
# The workflow: the real `snakemake` command in a copy of the repository (test_data_dag.py,
# test_workflow*.py)

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = ("Snakefile", "workflow", "config", "envs")

# A tiny complete run: four synthetic years (two training years, which the climatology needs),
# a 12-degree grid, two levels, a baseline and the hybrid (the one with the physics core), one
# short epoch, short rollouts. The whole DAG, to Table 2 and the figures, in about a minute.
DAG_CONFIG = {
    "run": "dagtest",
    "data": {
        "source": "synthetic",
        "years": {"train": [2017, 2018], "valid": [2019, 2019], "test": [2020, 2020]},
        "depths": [0.494025, 155.8507],
        "keep_raw": True,
        "synthetic": {"seed": 0, "ocean_resolution": 5.0, "atmosphere_resolution": 5.0,
                      "spinup_days": 0},
    },
    "grid": {"resolution": 12.0, "regrid_method": "bilinear", "na_thres": 0.5},
    "physics": {"substeps": 2},
    "models": {"unet": {"arch": "unet", "width": 8, "depth": 2},
               "neuralogcm": {"arch": "neuralogcm", "width": 8, "depth": 1, "heads": 2,
                              "attention_layers": 1}},
    "train": {"epochs": 1, "batch_size": 4, "max_steps_per_epoch": 2, "valid_stride_days": 73,
              "num_workers": 0, "cache_gb": 0, "amp": False},
    "evaluate": {"start_every_days": 120, "leads": [1, 5], "max_lead": 5, "long_rollout_days": 10,
                 "fig4_day": 10, "speed_days": 2},
}


def copy_workflow(dest: Path) -> Path:
    """A copy of the repository's workflow (Snakefile, rules, configs, envs) in ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, dest / name)
        else:
            shutil.copy2(source, dest / name)
    return dest


def write_config(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg))
    return path


def snakemake(workdir: Path, *args, check: bool = True) -> subprocess.CompletedProcess:
    """`snakemake ARGS` run in ``workdir`` (2 cores); with ``check``, it must succeed."""
    run = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", *map(str, args)],
                         cwd=workdir, capture_output=True, text=True)
    if check and run.returncode != 0:
        logs = "\n".join(f"--- {p}\n{p.read_text()[-2000:]}"
                         for p in sorted(workdir.glob("results/*/logs/**/*.log")))
        pytest.fail(f"snakemake {' '.join(map(str, args))} failed:\n{run.stderr[-5000:]}\n{logs}")
    return run


@pytest.fixture(scope="session")
def dag_workdir(tmp_path_factory) -> Path:
    """A copy of the repository in which the whole DAG of DAG_CONFIG (dag.yaml) has run."""
    workdir = copy_workflow(tmp_path_factory.mktemp("workflow"))
    snakemake(workdir, "--configfile", write_config(workdir / "dag.yaml", DAG_CONFIG))
    return workdir
