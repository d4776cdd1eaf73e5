"""Regrid one source-year of raw monthly files onto the target grid.

``neuralogcm regrid --config C --source {era5|glorys} --year Y --weights-dir D --out Y.zarr
[--threads N] FILES`` reads the 12 monthly raw files (in month order), regrids every day to
``Grid(grid.resolution)`` and writes interim/{source}/{year}.zarr atomically: the canonical
variables, float32, NaN on land, the configured depths only, one chunk per day.

Before any regridding, :func:`check_year_inputs` opens all 12 files and checks what their
headers say (the file opens and is not truncated, the variables and their dimensions, every day
of its month once, the configured depths, one global grid for the year), so that a bad December
file stops the job in seconds. The values (ranges, all-NaN days) are checked as they are read
for regridding (:func:`~neuralogcm.sources.read.validate_raw` on each piece of a month), so
every value is scanned once for validation, as before.

With ``--threads N`` (N > 1) the year's days are regridded by N worker processes: every month
is cut into N ranges of consecutive days, and each worker writes its days to their own chunks
of the store (one chunk per day, so no two workers share one). The result does not depend on N.

Methods (``grid.regrid_method``), with ``grid.na_thres`` = the valid fraction of a target cell
below which it is land:

- ``bilinear`` (the paper): xesmf/ESMF when esmpy is importable (``periodic=True``,
  ``unmapped_to_nan=True``, ``skipna=True``; weights cached in the weights folder), otherwise
  xarray's linear interpolation (the engine of xarray-regrid's ``linear``) of the land-filled
  field divided by the interpolated valid fraction, exactly ESMF's ``skipna`` renormalisation,
  so an ocean point next to the coast keeps a value. Longitude is periodic (the source is padded
  with a wrapped column on each side, so 358.5 E interpolates across 0); a cell-centred global
  source is padded with pole rows holding the zonal mean of its edge row (ESMF's pole
  averaging), so that no target row between its edge row and the pole is lost.
- ``conservative``: the area-weighted average of the source cells under each target cell, with
  xarray-regrid's factorised spherical weights and the same NaN threshold. It matters when the
  target is much coarser than the source: bilinear from 1/12 deg to 1.5 deg reads 4 of the 324
  source cells under each target cell, so small eddies alias into the coarse field.

Target rows outside the source domain (GLORYS starts at 80 S) are NaN, that is land.

Streaming: the source is read and regridded in blocks of at most :data:`BLOCK_BYTES` of float32
input (one level of one day at full GLORYS resolution, many days on small grids), and each block
of days is written to its region of the store, so memory stays bounded by about one day of input
whatever the length of the month (benchmarks/regrid_benchmark.py measures it).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import dask
import dask.array
import numpy as np
import pandas as pd
import scipy.sparse
import xarray as xr
from xarray_regrid.methods.conservative import get_weights
from xarray_regrid.utils import normalize_overlap

from neuralogcm import config as config_mod
from neuralogcm.channels import CF
from neuralogcm.errors import DataError, UserError
from neuralogcm.grid import Grid
from neuralogcm.io import atomic_path
from neuralogcm.prepare.store import DEPTH_ATTRS, write_store
from neuralogcm.sources.read import (
    VARIABLES,
    _calendar_problems,
    canonical_dims,
    open_raw,
    select_depths,
    validate_raw,
)

try:  # ESMF through xesmf: conda only (esmpy is not on PyPI)
    import xesmf
except ImportError:
    xesmf = None

log = logging.getLogger(__name__)

#: Most float32 source values (in bytes) loaded and regridded at once: one level of a
#: full-resolution GLORYS day (35 MB, one dask chunk of open_raw, so no concatenation copy),
#: many days of a small grid.
BLOCK_BYTES = 64 * 2**20

DESCRIPTION = {"glorys": "GLORYS12V1 global ocean physics reanalysis (Copernicus Marine)",
               "era5": "ERA5 hourly single-level reanalysis at 12 UTC (Copernicus C3S)"}


def valid_threshold(na_thres: float) -> float:
    """The valid fraction a target cell needs, kept inside (0, 1) as ESMF does."""
    return float(np.clip(na_thres, 1e-6, 1 - 1e-6))


class Regridder:
    """Maps fields (..., lat, lon) on one source grid to (..., H, W) float32 on the target grid.

    ``lat`` ascending and ``lon`` ascending in [0, 360) (deg) are the source coordinates.
    """

    method = ""

    def __init__(self, lat: np.ndarray, lon: np.ndarray, grid: Grid, na_thres: float):
        self.lat = np.asarray(lat, np.float64)
        self.lon = np.asarray(lon, np.float64)
        self.grid = grid
        self.na_thres = na_thres

    def regrid_block(self, block: np.ndarray) -> np.ndarray:
        """(N, Hs, Ws) source values (any float dtype), NaN on land -> (N, H, W)."""
        raise NotImplementedError

    def __call__(self, field: xr.DataArray) -> np.ndarray:
        """Regrid ``field`` (lazy or not), loading at most :data:`BLOCK_BYTES` of it at once."""
        lead = field.shape[:-2]
        flat = field.data.reshape(-1, *field.shape[-2:])
        per_block = max(1, BLOCK_BYTES // (4 * field.shape[-2] * field.shape[-1]))
        out = np.empty((flat.shape[0], *self.grid.shape), np.float32)
        for start in range(0, flat.shape[0], per_block):
            block = np.asarray(flat[start:start + per_block])
            out[start:start + per_block] = self.regrid_block(block)
        return out.reshape(*lead, *self.grid.shape)

    def same_grid(self, lat: np.ndarray, lon: np.ndarray) -> bool:
        return (lat.shape == self.lat.shape and lon.shape == self.lon.shape
                and np.allclose(lat, self.lat) and np.allclose(lon, self.lon))


def bracketing(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Indices of the ascending ``source`` points that linear interpolation to ``target`` uses
    (both neighbours of every target point, and the point itself where they coincide)."""
    i = np.searchsorted(source, target)
    return np.unique(np.clip(np.concatenate([i - 1, i, i + 1]), 0, source.size - 1))


class LinearRegridder(Regridder):
    """Bilinear with NaN skipping: interp(field with land 0) / interp(valid fraction).

    Only the source rows and columns next to a target point are read into the interpolation
    (bilinear uses no others), so a block costs little more than loading it.
    """

    method = "bilinear (xarray linear interpolation, valid-fraction renormalised)"

    def __init__(self, lat, lon, grid, na_thres):
        super().__init__(lat, lon, grid, na_thres)
        spacing = np.diff(self.lat)
        # pole rows (zonal means of the edge rows) where the source's edge cell reaches the pole
        # but no row lies on it (cell-centred global grids); GLORYS (80 S..90 N) gets none
        south = bool(-90.0 < self.lat[0] <= -90.0 + spacing[0] / 2 + 1e-9)
        north = bool(90.0 - spacing[-1] / 2 - 1e-9 <= self.lat[-1] < 90.0)
        padded_lat = np.concatenate([[-90.0] * south, self.lat, [90.0] * north])
        rows = bracketing(padded_lat, grid.lat)
        self._south = bool(south and rows[0] == 0)  # the south pole row is used
        self._north = bool(north and rows[-1] == padded_lat.size - 1)
        self._rows = rows[int(self._south): rows.size - int(self._north)] - int(south)
        # one wrapped column on each side, so that the target's 0 and 360 - res interpolate
        padded_lon = np.concatenate([[self.lon[-1] - 360.0], self.lon, [self.lon[0] + 360.0]])
        cols = bracketing(padded_lon, grid.lon)
        self._cols = (cols - 1) % self.lon.size  # source columns
        self._coords = {"lat": padded_lat[rows], "lon": padded_lon[cols]}

    def _subset(self, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(field with land 0, valid 0/1) on the rows and columns the interpolation uses,
        pole rows holding the zonal means of the edge rows; shapes (N, rows, cols)."""
        def filled_valid(x):
            valid = np.isfinite(x)
            return np.where(valid, x, 0.0).astype(np.float64), valid.astype(np.float64)

        def pole(edge_row):
            return [np.repeat(m.mean(-1, keepdims=True), self._cols.size, -1)
                    for m in filled_valid(block[:, [edge_row]])]

        parts = [filled_valid(block[:, self._rows][:, :, self._cols])]
        if self._south:
            parts.insert(0, pole(0))
        if self._north:
            parts.append(pole(-1))
        return tuple(np.concatenate([p[k] for p in parts], axis=1) for k in range(2))

    def regrid_block(self, block):
        filled, valid = self._subset(block)
        both = xr.DataArray(np.concatenate([filled, valid]), dims=("k", "lat", "lon"),
                            coords=self._coords)
        both = both.interp(lat=self.grid.lat, lon=self.grid.lon, method="linear").values
        total, fraction = both[: len(block)], both[len(block):]
        keep = fraction >= valid_threshold(self.na_thres)  # False where NaN (outside the source)
        return np.where(keep, total / np.where(keep, fraction, 1.0), np.nan)


class ConservativeRegridder(Regridder):
    """Area-weighted average of the source cells under each target cell, NaN-skipping.

    The weights are xarray-regrid's factorised conservative weights (interval overlaps in
    latitude weighted by the source cells' areas, and in longitude with the source wrapped around
    360 deg); they are applied as two sparse products, ``W_lat @ x @ W_lon``, to the land-filled
    field and to the valid mask, whose ratio is the mean over the ocean part of the cell.
    """

    method = "conservative (xarray-regrid weights, spherical, valid-fraction renormalised)"

    def __init__(self, lat, lon, grid, na_thres):
        super().__init__(lat, lon, grid, na_thres)
        # overlaps in latitude times the source cells' band areas (xarray-regrid's spherical
        # correction, with the cells clipped at the poles so that a pole row keeps its area)
        half = np.median(np.diff(self.lat)) / 2
        sin_edges = np.sin(np.deg2rad(np.clip([self.lat - half, self.lat + half], -90, 90)))
        band = sin_edges[1] - sin_edges[0]
        w_lat = normalize_overlap(get_weights(self.lat, grid.lat) * band[:, None])  # (Hs, H)
        n = self.lon.size
        pad = int(np.ceil(grid.resolution / 2 / np.diff(self.lon).min())) + 1
        wrapped = np.concatenate([self.lon[n - pad:] - 360.0, self.lon, self.lon[:pad] + 360.0])
        w_wrapped = get_weights(wrapped, grid.lon)  # (Ws + 2 pad, W)
        w_lon = np.zeros((n, grid.lon.size))
        np.add.at(w_lon, np.arange(-pad, n + pad) % n, w_wrapped)  # fold the wrap back
        self._w_lat = scipy.sparse.csr_array(w_lat.T)  # (H, Hs)
        self._w_lon = scipy.sparse.csc_array(w_lon)  # (Ws, W)
        # target rows whose centre lies outside the source's latitudes are unmapped (land)
        self._unmapped = (grid.lat < self.lat[0]) | (grid.lat > self.lat[-1])

    def _apply(self, x: np.ndarray) -> np.ndarray:
        return (self._w_lat @ x) @ self._w_lon

    def regrid_block(self, block):
        out = np.empty((len(block), *self.grid.shape))
        for k, level in enumerate(block):
            valid = np.isfinite(level)
            total = self._apply(np.where(valid, level, 0.0).astype(np.float64))
            fraction = self._apply(valid.astype(np.float64))
            keep = fraction >= valid_threshold(self.na_thres)
            keep[self._unmapped] = False
            out[k] = np.where(keep, total / np.where(keep, fraction, 1.0), np.nan)
        return out


class XesmfRegridder(Regridder):
    """ESMF bilinear through xesmf, its weights cached in a netCDF file."""

    method = "bilinear (xesmf/ESMF, periodic, skipna)"

    def __init__(self, lat, lon, grid, na_thres, weights_file: Path):
        super().__init__(lat, lon, grid, na_thres)
        source = xr.Dataset(coords={"lat": self.lat, "lon": self.lon})
        target = xr.Dataset(coords={"lat": grid.lat, "lon": grid.lon})
        options = {"periodic": True, "unmapped_to_nan": True}
        if weights_file.exists():
            self._esmf = xesmf.Regridder(source, target, "bilinear", reuse_weights=True,
                                         filename=str(weights_file), **options)
        else:
            self._esmf = xesmf.Regridder(source, target, "bilinear", **options)
            with atomic_path(weights_file, sweep=False) as tmp:  # regrid jobs share the cache
                self._esmf.to_netcdf(str(tmp))

    def regrid_block(self, block):
        # xesmf's na_thres is the largest NaN fraction kept: 1 - the valid fraction needed
        return self._esmf(block, skipna=True, na_thres=1.0 - self.na_thres)


def weights_file(weights_dir: Path, source: str, lat: np.ndarray, lon: np.ndarray,
                 grid: Grid) -> Path:
    """Cache file of the ESMF weights from this source grid to the target grid."""
    key = hashlib.sha256(np.concatenate([lat, lon]).astype(np.float64).tobytes()).hexdigest()
    return (Path(weights_dir) / f"bilinear_{source}_{lat.size}x{lon.size}_{key[:10]}"
            f"_to_{grid.shape[0]}x{grid.shape[1]}.nc")


def make_regridder(lat: np.ndarray, lon: np.ndarray, grid: Grid, method: str, na_thres: float,
                   weights: Path | None = None) -> Regridder:
    """The regridder of ``method`` (bilinear or conservative) from (lat, lon) to ``grid``.

    Bilinear uses ESMF when xesmf is importable and a ``weights`` file is given, else the
    xarray backend.
    """
    if method == "conservative":
        return ConservativeRegridder(lat, lon, grid, na_thres)
    if method != "bilinear":
        raise UserError(f"grid.regrid_method {method!r} is not bilinear or conservative")
    if xesmf is not None and weights is not None:
        return XesmfRegridder(lat, lon, grid, na_thres, weights)
    return LinearRegridder(lat, lon, grid, na_thres)


def provenance(cfg: config_mod.Config, source: str) -> dict[str, str]:
    """The ``source`` and ``dataset_id`` attributes of the interim (and final) stores."""
    if cfg.data.source == "synthetic":
        return {"source": f"synthetic {source}-format data from neuralogcm.sources.synthetic "
                          f"(seed {cfg.data.synthetic.seed})",
                "dataset_id": f"neuralogcm-synthetic-{source}"}
    dataset = {"glorys": cfg.data.download.glorys_dataset,
               "era5": cfg.data.download.era5_dataset}[source]
    return {"source": f"{DESCRIPTION[source]}, {cfg.data.source} files", "dataset_id": dataset}


def year_template(source: str, dates: pd.DatetimeIndex, depths: list[float],
                  grid: Grid) -> xr.Dataset:
    """The layout of a year store: the source's canonical variables, lazy (nothing computed)."""
    coords = {"time": ("time", dates.values.astype("datetime64[ns]")), **grid.coords()}
    if source == "glorys":
        coords["depth"] = ("depth", np.asarray(depths, np.float64), DEPTH_ATTRS)
    data = {}
    for name in VARIABLES[source]:
        dims = canonical_dims(name)
        shape = tuple(len(coords[d][1]) for d in dims)
        data[name] = (dims, dask.array.empty(shape, np.float32, chunks=(1, *shape[1:])),
                      dict(CF[name]))
    return xr.Dataset(data, coords=coords)


def regrid_days(ds: xr.Dataset, regridder: Regridder) -> xr.Dataset:
    """Every variable of ``ds`` (time, [depth,] lat, lon) on the target grid, float32."""
    data = {name: (ds[name].dims, regridder(ds[name])) for name in ds.data_vars}
    return xr.Dataset(data, coords={"time": ds.time.values})


def regrid_month(ds: xr.Dataset, regridder: Regridder) -> Iterator[xr.Dataset]:
    """Yield an opened month on the target grid, block of days after block of days, each
    block about :data:`BLOCK_BYTES` of input (at least one day)."""
    day_bytes = 4 * sum(ds[name][0].size for name in ds.data_vars)
    for block in day_blocks(ds.sizes["time"], day_bytes):
        yield regrid_days(ds.isel(time=block), regridder)


def day_blocks(n_days: int, day_bytes: int) -> list[slice]:
    """Consecutive day ranges of about :data:`BLOCK_BYTES` of input each (at least one day)."""
    per_block = max(1, BLOCK_BYTES // max(day_bytes, 1))
    return [slice(i, min(i + per_block, n_days)) for i in range(0, n_days, per_block)]


def synthetic_parameters(path: Path, source: str) -> dict[str, float]:
    """The synthetic source's process parameters (its ``synthetic_<name>`` global attributes,
    e.g. the true tracer diffusivity) recorded in a raw file; empty for real data."""
    ds = open_raw(path, source)
    try:
        return {k: v for k, v in ds.attrs.items() if k.startswith("synthetic_")}
    finally:
        ds.close()


def check_year_inputs(source: str, year: int, files: list[Path],
                      depths: list[float] | None) -> tuple[np.ndarray, np.ndarray]:
    """Check the 12 monthly ``files`` from their headers and coordinates only (no data values
    read): each opens (a truncated netCDF3 or HDF5 file does not), holds every canonical variable
    with its dimensions, every day of its month once and the configured ``depths``, and all
    share one grid that goes round the globe. Returns that grid's (lat, lon); raises
    :class:`DataError` naming the first bad file."""
    grid = None
    for month, path in enumerate(files, start=1):
        ds = open_raw(path, source)
        try:
            problems = []
            for name in VARIABLES[source]:
                if name not in ds.data_vars:
                    problems.append(f"variable {name} is missing")
                elif ds[name].dims != canonical_dims(name):
                    problems.append(f"variable {name} has dimensions {ds[name].dims}, "
                                    f"expected {canonical_dims(name)}")
            problems += _calendar_problems(ds["time"].values, year, month)
            if problems:
                raise DataError(f"raw {source} file {path}: " + "; ".join(problems))
            if depths:
                select_depths(ds, depths, path)
            lat, lon = ds.lat.values, ds.lon.values
        finally:
            ds.close()
        if grid is None:
            if lon.size < 2 or lon[-1] - lon[0] + np.diff(lon).max() < 360 - 1e-6:
                raise DataError(f"raw {source} file {path}: its longitudes "
                                f"{lon[0]:g}..{lon[-1]:g} E do not go round the globe, "
                                f"and the target grid is global")
            grid = lat, lon
        elif not (lat.shape == grid[0].shape and lon.shape == grid[1].shape
                  and np.allclose(lat, grid[0]) and np.allclose(lon, grid[1])):
            raise DataError(f"raw {source} file {path}: its grid ({lat.size} x {lon.size})"
                            f" differs from the grid of {files[0]}")
    return grid


def regrid_piece(regridder: Regridder, source: str, path: Path, days: slice,
                 depths: list[float] | None, dates: pd.DatetimeIndex, store: Path) -> None:
    """Regrid the ``days`` (positions in its month) of one raw file checked by
    :func:`check_year_inputs` into their region of the year ``store``, checking their values
    as they are read (:func:`~neuralogcm.sources.read.validate_raw`)."""
    ds = open_raw(path, source)
    try:
        ds = validate_raw(ds.isel(time=days), source, path, depths=depths)
        for block in regrid_month(ds, regridder):
            first = dates.get_loc(pd.Timestamp(block.time.values[0]))
            block.to_zarr(store, region={"time": slice(first, first + block.sizes["time"])})
    finally:
        ds.close()


_WORKER_REGRIDDER: Regridder | None = None


def _start_worker(*regridder_args) -> None:
    """Initializer of a worker process: its regridder (ESMF weights from the cache the main
    process wrote) and dask's synchronous scheduler (the worker processes are the parallelism)."""
    global _WORKER_REGRIDDER
    dask.config.set(scheduler="synchronous")
    _WORKER_REGRIDDER = make_regridder(*regridder_args)


def _worker_piece(*args) -> None:
    regrid_piece(_WORKER_REGRIDDER, *args)


def month_pieces(n_days: int, workers: int) -> list[slice]:
    """A month of ``n_days`` cut into ``workers`` ranges of consecutive days (one with one
    worker), so that the days of a year spread evenly over the workers."""
    edges = np.linspace(0, n_days, min(workers, n_days) + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def regrid_year(cfg: config_mod.Config, source: str, year: int, files: list[Path], out: Path,
                weights_dir: Path, workers: int = 1) -> None:
    """Regrid the 12 monthly raw ``files`` (January first) of ``source`` into the zarr ``out``,
    with ``workers`` processes (1: in this process)."""
    if source not in VARIABLES:
        raise UserError(f"unknown source {source!r}: expected one of {sorted(VARIABLES)}")
    if len(files) != 12:
        raise UserError(f"regrid {source} {year}: expected 12 monthly raw files (January first), "
                        f"got {len(files)}: {[str(f) for f in files]}")
    if workers < 1:
        raise UserError(f"regrid {source} {year}: --threads must be at least 1, got {workers}")
    grid = Grid(cfg.grid.resolution)
    depths = list(cfg.data.depths) if source == "glorys" else []
    dates = pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D")
    lat, lon = check_year_inputs(source, year, files, depths or None)
    log.info("%s %d: the 12 raw files checked (headers, days, depths, grid)", source, year)
    regridder_args = (lat, lon, grid, cfg.grid.regrid_method, cfg.grid.na_thres,
                      weights_file(weights_dir, source, lat, lon, grid))
    regridder = make_regridder(*regridder_args)  # writes the ESMF weights the workers read
    log.info("%s %d: %s from %d x %d to %d x %d, %d worker(s)", source, year, regridder.method,
             lat.size, lon.size, *grid.shape, workers)
    pieces = [(month, path, days) for month, path in enumerate(files, start=1)
              for days in month_pieces(int(dates.month.value_counts()[month]), workers)]
    with atomic_path(out) as tmp, dask.config.set(scheduler="synchronous"):
        template = year_template(source, dates, depths, grid)
        template.attrs = {**provenance(cfg, source), "regrid_method": regridder.method,
                          "na_thres": cfg.grid.na_thres, "first_raw_file": str(files[0]),
                          **synthetic_parameters(files[0], source)}
        write_store(template, tmp, compute=False)
        if workers == 1:
            for month, path, days in pieces:
                regrid_piece(regridder, source, path, days, depths or None, dates, tmp)
                log.info("%s %d-%02d regridded (%s)", source, year, month, path)
            return
        # spawn, not fork: a forked child would inherit the parent's HDF5 library state
        pool = ProcessPoolExecutor(min(workers, len(pieces)),
                                   mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_start_worker, initargs=regridder_args)
        try:
            futures = [pool.submit(_worker_piece, source, path, days, depths or None, dates, tmp)
                       for _, path, days in pieces]
            for (month, path, days), future in zip(pieces, futures, strict=True):
                future.result()  # in order: the first bad piece of the year raises
                if days.stop == dates.month.value_counts()[month]:
                    log.info("%s %d-%02d regridded (%s)", source, year, month, path)
        finally:  # on an error, no new pieces; the running ones end before tmp is removed
            pool.shutdown(wait=True, cancel_futures=True)


def cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="resolved config (YAML or JSON)")
    parser.add_argument("--source", required=True, choices=sorted(VARIABLES))
    parser.add_argument("--year", required=True, type=int)
    parser.add_argument("--weights-dir", required=True, type=Path,
                        help="folder for cached ESMF weights")
    parser.add_argument("--out", required=True, type=Path, help="interim {year}.zarr to write")
    parser.add_argument("--threads", type=int, default=1,
                        help="worker processes regridding the year's days in parallel")
    parser.add_argument("files", nargs="+", type=Path,
                        help="the 12 monthly raw files, January first")


def cli_main(args: argparse.Namespace) -> None:
    cfg = config_mod.load(args.config)
    regrid_year(cfg, args.source, args.year, args.files, args.out, args.weights_dir,
                args.threads)
    log.info("wrote %s", args.out)
