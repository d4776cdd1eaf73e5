"""The data stores as torch inputs: daily windows of ocean state and forcing, and the normaliser.

Reads results/{run}/data/: ocean.zarr, forcing.zarr (one chunk per day), mask.nc,
climatology.zarr and stats.nc. Samples stay in physical units with NaN on land until they reach
the device, where :class:`Normalizer` turns them into normalised anomalies (land 0), so the
DataLoader only copies float32 days and the climatology lookup runs on the GPU.

Shapes: C = 4 L + 1 ocean channels (S, U, V, T per level, SSH), F = 4 forcing channels, H x W grid.
"""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import xarray as xr
import zarr
from torch import nn
from torch.utils.data import Dataset, DistributedSampler, Sampler

from neuralogcm.channels import (
    FORCING,
    OCEAN,
    OCEAN_3D,
    PERIODIC,
    channel_level,
    n_ocean_channels,
    ocean_channel_names,
    periodic_channel_index,
)
from neuralogcm.dates import day_index, format_dates
from neuralogcm.errors import DataError
from neuralogcm.grid import Grid

log = logging.getLogger(__name__)

STORES = ("ocean.zarr", "forcing.zarr", "mask.nc", "climatology.zarr", "stats.nc")
ALL = slice(None)  # every channel of the state


def _require(path: Path) -> Path:
    if not path.exists():
        raise DataError(f"{path} is missing: build the data stores first "
                        "(snakemake --cores all, or the assemble/climatology/stats rules)")
    return path


def _open_zarr(path: Path, variables: tuple[str, ...]) -> xr.Dataset:
    with warnings.catch_warnings():  # stores without consolidated metadata open all the same
        warnings.simplefilter("ignore", RuntimeWarning)
        ds = xr.open_zarr(_require(path), consolidated=None)
    missing = [v for v in variables if v not in ds]
    if missing:
        raise DataError(f"{path} lacks the variable(s) {missing}")
    packed = [v for v in variables if ds[v].dtype != np.float32
              or {"scale_factor", "add_offset"} & set(ds[v].encoding)]
    if packed:  # samples are read from the zarr arrays as they are stored
        raise DataError(f"{path}: {packed} must be stored as plain float32 (NaN on land)")
    return ds


def _grid_of(ds: xr.Dataset, path: Path) -> Grid:
    """The :class:`Grid` whose cell centres are the store's lat/lon; DataError if none is."""
    lat, lon = ds["lat"].values, ds["lon"].values
    try:
        grid = Grid(float(lat[1] - lat[0]))
        if grid.shape != (lat.size, lon.size) or not (
            np.allclose(grid.lat, lat, atol=1e-6) and np.allclose(grid.lon, lon, atol=1e-6)
        ):
            raise ValueError
    except (ValueError, IndexError):
        raise DataError(f"{path}: lat/lon are not the cell centres of a global regular grid "
                        f"(lat {lat[:2]}..., lon {lon[:2]}...)") from None
    return grid


class OceanData:
    """The daily ocean states and atmospheric forcing of a data directory, read one day at a time.

    ``dates`` (pd.DatetimeIndex), ``depths`` (m), ``n_levels`` L, ``grid``, ``mask`` (L, H, W)
    bool (True on ocean). ``state(i)`` -> (C, H, W) float32 in physical units with NaN on land,
    ``forcing(i)`` -> (F, H, W), ``day_index(i)`` -> climatology day 0..364.
    """

    def __init__(self, data_dir: str | Path) -> None:
        self.data_dir = Path(data_dir)
        ocean = _open_zarr(self.data_dir / "ocean.zarr", OCEAN)
        forcing = _open_zarr(self.data_dir / "forcing.zarr", FORCING)
        self.dates = pd.DatetimeIndex(ocean["time"].values)
        if not self.dates.equals(pd.DatetimeIndex(forcing["time"].values)):
            raise DataError(f"{self.data_dir}: ocean.zarr and forcing.zarr hold different days")
        self.depths = [float(d) for d in ocean["depth"].values]
        self.grid = _grid_of(ocean, self.data_dir / "ocean.zarr")
        with xr.open_dataset(_require(self.data_dir / "mask.nc")) as ds:
            mask = ds["mask"].values.astype(bool)
        if mask.shape != (self.n_levels, *self.grid.shape):
            raise DataError(f"{self.data_dir / 'mask.nc'}: mask has shape {mask.shape}, "
                            f"expected (depth, lat, lon) = {(self.n_levels, *self.grid.shape)}")
        self.mask = mask
        self.day_indices = day_index(self.dates)  # (days,) climatology day 0..364
        self._arrays: dict[str, zarr.Array] | None = None  # opened lazily, once per process
        self._memory: dict[tuple[str, ...], tuple[int, np.ndarray]] = {}  # see preload()

    @property
    def n_levels(self) -> int:
        return len(self.depths)

    def __len__(self) -> int:
        return len(self.dates)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_arrays": None}  # DataLoader workers reopen the stores

    def _array(self, name: str) -> zarr.Array:
        if self._arrays is None:
            groups = {store: zarr.open_group(self.data_dir / store, mode="r")
                      for store in ("ocean.zarr", "forcing.zarr")}
            self._arrays = {v: groups["ocean.zarr"][v] for v in OCEAN}
            self._arrays |= {v: groups["forcing.zarr"][v] for v in FORCING}
        return self._arrays[name]

    def _read(self, names: tuple[str, ...], days: slice) -> np.ndarray:
        """(days, channels, H, W) float32: the variables stacked in channel order.

        DataError naming the store, variable and days where a chunk cannot be read or a day has
        no finite value: zarr reads a missing chunk (one per day) as NaN, its fill value.
        """
        parts = []
        for name in names:
            store = self.data_dir / ("ocean.zarr" if name in OCEAN else "forcing.zarr")
            try:
                block = np.asarray(self._array(name)[days], dtype=np.float32)
            except Exception as err:  # noqa: BLE001 - zarr and its codecs raise many kinds
                raise DataError(f"{store}: variable {name} cannot be read on "
                                f"{format_dates(self.dates[days])}: {err}") from None
            empty = np.isnan(block).reshape(len(block), -1).all(axis=1)
            if empty.any():
                raise DataError(f"{store}: variable {name} has no data on "
                                f"{format_dates(self.dates[days][empty])} (a missing chunk, "
                                "which zarr reads as NaN): rebuild the data stores")
            parts.append(block if name in OCEAN_3D else block[:, None])
        return np.concatenate(parts, axis=1)

    def _cached(self, names: tuple[str, ...], days: slice) -> np.ndarray:
        held = self._memory.get(names)
        if held is not None:
            first, block = held
            if first <= days.start and days.stop <= first + len(block):
                return block[days.start - first : days.stop - first]
        return self._read(names, days)

    def states(self, days: slice) -> np.ndarray:
        """Ocean states of consecutive days: (days, C, H, W) float32, physical, NaN on land."""
        return self._cached(OCEAN, days)

    def forcings(self, days: slice) -> np.ndarray:
        """Forcing of consecutive days: (days, F, H, W) float32, physical units."""
        return self._cached(FORCING, days)

    def days_of(self, years: list[int]) -> slice:
        """The days from the first to the last day of ``years`` (a contiguous range)."""
        held = np.flatnonzero(np.isin(self.dates.year, years))
        if len(held) == 0:
            raise DataError(f"{self.data_dir}: no day of the years {years}")
        return slice(int(held[0]), int(held[-1]) + 1)

    def nbytes(self, days: slice) -> int:
        """Bytes of the states and forcing of ``days`` in memory."""
        channels = n_ocean_channels(self.n_levels) + len(FORCING)
        return (days.stop - days.start) * channels * math.prod(self.grid.shape) * 4

    def preload(self, days: slice) -> None:
        """Keep the states and forcing of ``days`` in memory (read in one pass per variable);
        reads inside them no longer touch the stores."""
        self._memory = {names: (days.start, self._read(names, days)) for names in (OCEAN, FORCING)}

    def hold(self, years: list[int], limit_gb: float) -> None:
        """:meth:`preload` the days of ``years`` when they fit into ``limit_gb``."""
        days = self.days_of(years)
        if self.nbytes(days) <= limit_gb * 1e9:
            self.preload(days)
            log.info("holding the %.2f GB of %d days in memory", self.nbytes(days) / 1e9,
                     days.stop - days.start)

    def state(self, i: int) -> np.ndarray:
        return self.states(slice(i, i + 1))[0]

    def forcing(self, i: int) -> np.ndarray:
        return self.forcings(slice(i, i + 1))[0]

    def day_index(self, i: int) -> int:
        return int(self.day_indices[i])

    def window_starts(self, years: list[int], steps: int) -> np.ndarray:
        """Indices i whose days i..i+steps are consecutive and all fall in ``years``."""
        in_years = np.isin(self.dates.year, years)
        consecutive = np.zeros(len(self), bool)
        if len(self) > steps:
            gap = (self.dates[steps:] - self.dates[:-steps]).days == steps
            inside = in_years[steps:] & in_years[:-steps]
            consecutive[:-steps] = gap & inside
        return np.flatnonzero(in_years & consecutive)


class WindowDataset(Dataset):
    """Windows of ``steps`` + 1 consecutive days that start and end in ``years``.

    Item: dict(state (steps+1, C, H, W) float32 physical with NaN on land, forcing (steps, F, H, W)
    of the days a step starts from, doy (steps+1,) long climatology days).
    """

    def __init__(self, data: OceanData, years: list[int], steps: int = 1) -> None:
        self.data = data
        self.steps = steps
        self.starts = data.window_starts(years, steps)
        if len(self.starts) == 0:
            raise DataError(f"{data.data_dir}: no window of {steps + 1} consecutive days in the "
                            f"years {years} (the data hold {data.dates[0]:%Y-%m-%d}.."
                            f"{data.dates[-1]:%Y-%m-%d})")

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        i = int(self.starts[k])
        days = slice(i, i + self.steps + 1)
        return {
            "state": torch.from_numpy(self.data.states(days)),
            "forcing": torch.from_numpy(self.data.forcings(slice(i, i + self.steps))),
            "doy": torch.from_numpy(self.data.day_indices[days].astype(np.int64)),
        }


class EpochSampler(Sampler[int]):
    """This process's share of the epoch's seeded shuffle (DistributedSampler, full batches only),
    cut to ``max_steps`` batches and started at batch ``start``, so a resumed epoch continues
    with the very batch an uninterrupted one would see next."""

    def __init__(self, dataset: WindowDataset, world: int, rank: int, seed: int,
                 batch_size: int, max_steps: int | None) -> None:
        self.shuffle = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True,
                                          seed=seed, drop_last=True)
        self.batch_size = batch_size
        self.steps = len(self.shuffle) // batch_size
        if max_steps is not None:
            self.steps = min(self.steps, max_steps)
        self.start = 0

    def set_position(self, epoch: int, start: int) -> None:
        self.shuffle.set_epoch(epoch)
        self.start = start

    def __iter__(self):
        indices = list(self.shuffle)
        return iter(indices[self.start * self.batch_size : self.steps * self.batch_size])

    def __len__(self) -> int:
        return (self.steps - self.start) * self.batch_size


class Normalizer(nn.Module):
    """Physical <-> normalised state on the device; land is 0 in every normalised tensor.

    Periodic channels (S, T, SSH) become anomalies with respect to the day-of-year climatology
    before the per-channel (x - mean) / std of data/stats.nc. Buffers are not persistent: they
    come from the data directory, not from checkpoints.
    """

    def __init__(self, mean: np.ndarray, std: np.ndarray, climatology: np.ndarray,
                 mask: np.ndarray) -> None:
        """mean, std: (C + F,); climatology: (365, P, H, W) of the P = 2 L + 1 periodic channels
        (NaN or anything on land); mask: (L, H, W) bool, True on ocean."""
        super().__init__()
        n_levels = mask.shape[0]
        c = n_ocean_channels(n_levels)
        # Every channel points at a climatology slot; non-periodic ones at a slot of zeros.
        slot = np.full(c, climatology.shape[1])
        slot[periodic_channel_index(n_levels)] = np.arange(climatology.shape[1])
        zeros = np.zeros((365, 1, *climatology.shape[2:]), np.float32)
        clim = np.concatenate([np.nan_to_num(climatology.astype(np.float32)), zeros], axis=1)

        def buffer(name, array):
            self.register_buffer(name, torch.as_tensor(array), persistent=False)

        buffer("climatology", clim)  # (365, P + 1, H, W)
        buffer("slot", torch.as_tensor(slot, dtype=torch.long))  # (C,)
        buffer("state_mean", torch.as_tensor(mean[:c], dtype=torch.float32)[:, None, None])
        buffer("state_std", torch.as_tensor(std[:c], dtype=torch.float32)[:, None, None])
        buffer("forcing_mean", torch.as_tensor(mean[c:], dtype=torch.float32)[:, None, None])
        buffer("forcing_std", torch.as_tensor(std[c:], dtype=torch.float32)[:, None, None])
        buffer("state_mask", torch.as_tensor(mask[channel_level(n_levels)]))  # (C, H, W)
        buffer("surface_mask", torch.as_tensor(mask[0]))  # (H, W)

    @classmethod
    def from_data_dir(cls, data_dir: str | Path) -> Normalizer:
        data_dir = Path(data_dir)
        with xr.open_dataset(_require(data_dir / "mask.nc")) as ds:
            mask = ds["mask"].values.astype(bool)
        n_levels = mask.shape[0]
        path = _require(data_dir / "stats.nc")
        with xr.open_dataset(path) as stats:
            names = [str(c) for c in stats["channel"].values]
            expected = ocean_channel_names(n_levels) + list(FORCING)
            if names != expected:
                raise DataError(f"{path}: channel {names} does not match the {n_levels} levels "
                                f"of mask.nc, expected {expected}")
            mean, std = stats["mean"].values, stats["std"].values
        bad = [n for n, s in zip(names, std, strict=True) if not (np.isfinite(s) and s > 0)]
        if bad or not np.isfinite(mean).all():
            raise DataError(f"{path}: mean/std are not finite and positive for {bad or names}")
        clim = _open_zarr(data_dir / "climatology.zarr", PERIODIC)
        if clim.sizes.get("dayofyear") != 365:
            raise DataError(f"{data_dir / 'climatology.zarr'}: needs dayofyear 0..364")
        parts = []
        for v in PERIODIC:
            values = clim[v].values
            empty = np.flatnonzero(np.isnan(values).reshape(365, -1).all(axis=1))
            if empty.size:  # a missing chunk (one per day) reads as NaN
                raise DataError(f"{data_dir / 'climatology.zarr'}: variable {v} has no data on "
                                f"day(s) of year {empty.tolist()[:10]} (a missing chunk?): "
                                "rebuild the climatology")
            parts.append(values if v in OCEAN_3D else values[:, None])
        stacked = np.concatenate(parts, 1)
        return cls(mean, std, stacked, mask)

    def _offset(self, doy: torch.Tensor, channels: slice) -> torch.Tensor:
        """Climatology of the state's ``channels`` on days ``doy`` (B,): (B, C', H, W), 0 for
        non-periodic channels."""
        return self.climatology.index_select(0, doy).index_select(1, self.slot[channels])

    def normalize_state(self, x: torch.Tensor, doy: torch.Tensor,
                        channels: slice = ALL) -> torch.Tensor:
        """Physical (B, C, H, W) (NaN allowed on land) on days ``doy`` (B,) -> normalised; with
        ``channels``, x holds only those channels of the state."""
        z = (x - self._offset(doy, channels) - self.state_mean[channels]) / self.state_std[channels]
        return torch.where(self.state_mask[channels], z, 0.0)

    def denormalize_state(self, x: torch.Tensor, doy: torch.Tensor,
                          channels: slice = ALL) -> torch.Tensor:
        """Normalised (B, C, H, W) on days ``doy`` (B,) -> physical units, land 0; ``channels``
        as in ``normalize_state``."""
        offset = self._offset(doy, channels)
        phys = x * self.state_std[channels] + self.state_mean[channels] + offset
        return torch.where(self.state_mask[channels], phys, 0.0)

    def normalize_increment(self, dx: torch.Tensor) -> torch.Tensor:
        """A physical increment (B, C, H, W) between two states of the same day -> normalised:
        dx / std (the climatology and the mean cancel)."""
        return dx / self.state_std

    def normalize_forcing(self, f: torch.Tensor) -> torch.Tensor:
        """Physical forcing (B, F, H, W) -> normalised, 0 on land (where the ocean sees none)."""
        z = (f - self.forcing_mean) / self.forcing_std
        return torch.where(self.surface_mask, z, 0.0)
