"""The driver: :func:`synthesize` and the ``neuralogcm synthesize`` verb.

Deterministic from ``data.synthetic.seed``: one random generator drives the atmosphere's
weather and the ocean's eddies. ``data.synthetic.spinup_days`` are run before the first year;
then every day the ocean state is recorded, stepped under that day's forcing, and the weather
and eddy amplitudes advance; each month is written as one ERA5 and one GLORYS file.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from neuralogcm import __version__
from neuralogcm.config import Config, ConfigError, load
from neuralogcm.sources.synthetic.atmosphere import Atmosphere
from neuralogcm.sources.synthetic.files import (
    _ERA5_VARIABLES,
    _glorys_attributes,
    file_levels,
    write_era5_month,
    write_glorys_month,
)
from neuralogcm.sources.synthetic.ocean import Ocean, wind_stress
from neuralogcm.sources.synthetic.parameters import Processes

log = logging.getLogger(__name__)


def _check_resolution(res: float, spans: tuple[float, ...], key: str, target: float) -> None:
    for span in spans:
        if res <= 0 or abs(span / res - round(span / res)) > 1e-9:
            raise ConfigError(f"config key '{key}': {res} deg does not divide {span:g} deg "
                              "into whole cells")
    if res >= target:
        raise ConfigError(f"config key '{key}': the native grid ({res} deg) must be finer than "
                          f"the target grid (grid.resolution = {target} deg)")


def synthesize(cfg: Config, out_dir: str | Path) -> list[Path]:
    """Write every month of ``cfg.data.years`` as era5/{YYYY}/{MM}.nc and glorys/{YYYY}/{MM}.nc
    under ``out_dir``, after ``data.synthetic.spinup_days`` of spin-up; return the paths."""
    syn = cfg.data.synthetic
    _check_resolution(syn.ocean_resolution, (170.0, 360.0), "data.synthetic.ocean_resolution",
                      cfg.grid.resolution)
    _check_resolution(syn.atmosphere_resolution, (180.0, 360.0),
                      "data.synthetic.atmosphere_resolution", cfg.grid.resolution)
    out_dir = Path(out_dir)
    processes = Processes(tracer_diffusivity_m2_s=syn.diffusivity)
    depths = file_levels(cfg.data.depths)
    ores, ares = syn.ocean_resolution, syn.atmosphere_resolution
    olat = -80.0 + ores * np.arange(round(170.0 / ores) + 1)
    olon = -180.0 + ores * np.arange(round(360.0 / ores))
    alat = 90.0 - ares * np.arange(round(180.0 / ares) + 1)
    alon = ares * np.arange(round(360.0 / ares))

    rng = np.random.default_rng(syn.seed)
    atmosphere = Atmosphere(rng)
    ocean = Ocean(olat, olon, depths, atmosphere, processes, rng)
    era5_grid = atmosphere.on(alat, alon)
    era5_history = (f"neuralogcm {__version__} synthetic atmosphere (seed {syn.seed}) in the "
                    "new-CDS layout of GRIB to CDM+CF via cfgrib")
    years = cfg.data.years.all()
    first = pd.Timestamp(f"{years[0]}-01-01")
    log.info("synthesizing %d-%d after %d spin-up days on a %g deg ocean / %g deg atmosphere "
             "grid, levels %s m", years[0], years[-1], syn.spinup_days, ores, ares,
             ", ".join(f"{d:g}" for d in depths))

    def simulate_day(date: pd.Timestamp) -> tuple[float, tuple[np.ndarray, ...]]:
        """Time (days since 1970), ocean state (T, S, u, v, ssh) of ``date``; steps a day."""
        t = (date - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1) + 0.5
        forcing = ocean.atm.fields(t)
        ssh = ocean.ssh(t)
        u, v = ocean.currents(ssh, *wind_stress(forcing["u10"], forcing["v10"], processes))
        state = (*ocean.tracers, u, v, ssh)
        ocean.step(u, v, forcing, t, order=date.day_of_year)
        atmosphere.advance(rng)
        ocean.advance_eddies(rng)
        return t, state

    for date in pd.date_range(end=first - pd.Timedelta(days=1), periods=syn.spinup_days):
        simulate_day(date)
    land = ~ocean.mask
    written: list[Path] = []
    for month in pd.date_range(first, f"{years[-1]}-12-01", freq="MS"):
        days = pd.date_range(month, month + pd.offsets.MonthEnd(0))
        n = len(days)
        sea = {name: np.empty((n, *ocean.mask.shape), np.float32)
               for name in ("thetao", "so", "uo", "vo")}
        sea["zos"] = np.empty((n, *ocean.mask.shape[1:]), np.float32)
        air = {name: np.empty((n, len(alat), len(alon)), np.float32) for name in _ERA5_VARIABLES}
        for d, date in enumerate(days):
            t, state = simulate_day(date)
            for name, values in zip(("thetao", "so", "uo", "vo", "zos"), state, strict=True):
                sea[name][d] = values
            fields = era5_grid.fields(t)
            for name in air:
                air[name][d] = fields[name]
        for name in ("thetao", "so", "uo", "vo"):
            sea[name][:, land] = np.nan
        sea["zos"][:, land[0]] = np.nan
        stem = f"{month.year:04d}/{month.month:02d}.nc"
        write_era5_month(out_dir / "era5" / stem, days, alat, alon, air, era5_history)
        write_glorys_month(out_dir / "glorys" / stem, days, depths, olat, olon, sea,
                           _glorys_attributes(cfg, processes, ores, olon, depths, days))
        written += [out_dir / "era5" / stem, out_dir / "glorys" / stem]
        if month.month == 12:
            log.info("year %d written", month.year)
    return written


def cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="config file (YAML or JSON)")
    parser.add_argument("--out-dir", required=True,
                        help="folder that receives era5/{YYYY}/{MM}.nc and glorys/{YYYY}/{MM}.nc")


def cli_main(args: argparse.Namespace) -> None:
    cfg = load(args.config)
    paths = synthesize(cfg, args.out_dir)
    log.info("wrote %d files under %s", len(paths), args.out_dir)
