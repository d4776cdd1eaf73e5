import shutil

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from neuralogcm.channels import (
    FORCING,
    OCEAN,
    OCEAN_3D,
    PERIODIC,
    channel_level,
    ocean_channel_names,
)
from neuralogcm.data import STORES, Normalizer, OceanData, WindowDataset
from neuralogcm.errors import DataError

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data(tiny_data_dir):
    return OceanData(tiny_data_dir)


@pytest.fixture(scope="module")
def normalizer(tiny_data_dir):
    return Normalizer.from_data_dir(tiny_data_dir)


def _xarray_state(data_dir, i):
    """Day i of ocean.zarr stacked in channel order, read through xarray (independent path)."""
    ds = xr.open_zarr(data_dir / "ocean.zarr").isel(time=i)
    return np.concatenate([ds[v].values if v in OCEAN_3D else ds[v].values[None] for v in OCEAN])


def test_ocean_data_reads_days_in_channel_order(data, tiny_data_dir):
    assert data.dates[0] == pd.Timestamp("2017-01-01") and len(data) == 3 * 365 + 366
    assert data.n_levels == 2 and data.grid.shape == (12, 24)
    state = data.state(400)
    assert state.shape == (9, 12, 24) and state.dtype == np.float32
    np.testing.assert_array_equal(state, _xarray_state(tiny_data_dir, 400))
    land = ~data.mask[channel_level(2)]
    assert np.isnan(state[land]).all() and np.isfinite(state[~land]).all()
    forcing = xr.open_zarr(tiny_data_dir / "forcing.zarr").isel(time=400)
    np.testing.assert_array_equal(data.forcing(400), np.stack([forcing[v].values for v in FORCING]))
    # 29 February shares day 58 with 28 February; 1 March 2020 is day 59 as in any year
    feb29 = data.dates.get_loc(pd.Timestamp("2020-02-29"))
    assert [data.day_index(feb29 + k) for k in (-1, 0, 1)] == [58, 58, 59]
    assert data.day_index(len(data) - 1) == 364


def test_window_dataset_stays_in_its_years(data):
    one_day = WindowDataset(data, [2019])
    assert len(one_day) == 364  # the last window starts on 30 December
    three_days = WindowDataset(data, [2019, 2020], steps=3)
    assert len(three_days) == 365 + 366 - 3
    starts = data.dates[three_days.starts]
    assert starts[0] == pd.Timestamp("2019-01-01") and starts[-1] == pd.Timestamp("2020-12-28")
    item = three_days[10]
    i = three_days.starts[10]
    assert item["state"].shape == (4, 9, 12, 24) and item["forcing"].shape == (3, 4, 12, 24)
    np.testing.assert_array_equal(item["state"][2].numpy(), data.state(i + 2))
    np.testing.assert_array_equal(item["forcing"][2].numpy(), data.forcing(i + 2))
    assert item["doy"].tolist() == [data.day_index(i + k) for k in range(4)]
    with pytest.raises(DataError, match="no window"):
        WindowDataset(data, [2021])


def test_preloaded_days_read_the_same(tiny_data_dir):
    data = OceanData(tiny_data_dir)
    days = data.days_of([2019])
    assert (days.start, days.stop) == (730, 1095)
    assert data.nbytes(days) == 365 * 13 * 12 * 24 * 4
    before = WindowDataset(data, [2019], steps=2)[5]
    data.preload(days)
    after = WindowDataset(data, [2019], steps=2)[5]
    for key in before:
        np.testing.assert_array_equal(before[key].numpy(), after[key].numpy())
    # a window reaching outside the held days is read from the stores
    np.testing.assert_array_equal(data.states(slice(729, 731))[1], data.state(730))


def test_normalizer_against_an_independent_computation(data, normalizer, tiny_data_dir):
    clim = xr.open_zarr(tiny_data_dir / "climatology.zarr")
    stats = xr.open_dataset(tiny_data_dir / "stats.nc")
    days = [31, 789, 1154]  # 1 Feb 2017, 1 Mar 2019, 29 Feb 2020
    phys = np.stack([data.state(i) for i in days])
    doy = np.array([data.day_index(i) for i in days])
    expected = phys.copy()
    for b, d in enumerate(doy):
        for c, name in enumerate(ocean_channel_names(2)):
            var, _, level = name.partition("_")  # so_01 -> so, 1; zos -> zos
            if var in PERIODIC:
                day = clim[var].isel(dayofyear=d).values
                expected[b, c] -= day[int(level)] if level else day
    mean, std = (stats[k].values[:9, None, None] for k in ("mean", "std"))
    expected = (expected - mean) / std
    expected = np.where(np.isnan(phys), 0.0, expected)
    got = normalizer.normalize_state(torch.from_numpy(phys), torch.from_numpy(doy))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-5)
    back = normalizer.denormalize_state(got, torch.from_numpy(doy)).numpy()
    np.testing.assert_allclose(back, np.nan_to_num(phys), rtol=1e-6, atol=1e-4)
    assert (back[np.isnan(phys)] == 0).all()


def test_channel_slices_and_increments_normalise_like_the_whole_state(data, normalizer):
    """normalize_state / denormalize_state on a slice of channels (the temperature levels, SSH)
    equal the whole state's call sliced; normalize_increment of a same-day physical increment is
    the difference of the normalised states (on the ocean, to float32 round-off)."""
    days = [31, 789]
    phys = torch.from_numpy(np.stack([data.state(i) for i in days]))
    doy = torch.tensor([data.day_index(i) for i in days])
    whole = normalizer.normalize_state(phys, doy)
    for channels in (slice(6, 8), slice(8, 9), slice(0, 2)):
        torch.testing.assert_close(normalizer.normalize_state(phys[:, channels], doy, channels),
                                   whole[:, channels], rtol=0, atol=0)
        torch.testing.assert_close(normalizer.denormalize_state(whole[:, channels], doy, channels),
                                   normalizer.denormalize_state(whole, doy)[:, channels],
                                   rtol=0, atol=0)
    step = torch.linspace(-1.0, 1.0, phys.shape[1])[None, :, None, None]  # per-channel change
    moved = normalizer.normalize_state(phys + step, doy)
    expected = torch.where(normalizer.state_mask, moved - whole, 0.0)
    got = torch.where(normalizer.state_mask, normalizer.normalize_increment(step.expand_as(phys)),
                      0.0)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-3)
    assert got.abs().amax() > 1.0  # the increments are not trivially small


def test_normalised_train_year_has_zero_mean_unit_std(data, normalizer):
    """stats.nc was computed over 2017-2018: normalised days of those years have mean 0 and std 1
    per channel."""
    days = data.days_of([2017, 2018])
    phys = torch.from_numpy(data.states(days))
    z = normalizer.normalize_state(phys, torch.from_numpy(data.day_indices[days]))
    ocean = normalizer.state_mask.expand_as(z)
    values = [z[:, c][ocean[:, c]] for c in range(z.shape[1])]
    np.testing.assert_allclose([v.mean() for v in values], 0.0, atol=1e-3)
    np.testing.assert_allclose([v.std(correction=0) for v in values], 1.0, rtol=1e-3)
    f = normalizer.normalize_forcing(torch.from_numpy(data.forcings(days)))
    surface = normalizer.surface_mask
    assert (f[:, :, ~surface] == 0).all()
    np.testing.assert_allclose(f[:, :, surface].std(dim=(0, 2)), 1.0, rtol=0.1)


def _linked_copy(data_dir, target, skip=()):
    """A data directory whose stores are links to those of ``data_dir`` (all but ``skip``)."""
    target.mkdir()
    for store in STORES:
        if store not in skip:
            (target / store).symlink_to(data_dir / store)
    return target


def test_missing_and_inconsistent_stores_are_named(tiny_data_dir, tmp_path):
    with pytest.raises(DataError, match="forcing.zarr is missing"):
        OceanData(_linked_copy(tiny_data_dir, tmp_path / "a", skip=["forcing.zarr"]))
    broken = _linked_copy(tiny_data_dir, tmp_path / "b", skip=["stats.nc"])
    stats = xr.open_dataset(tiny_data_dir / "stats.nc").load()
    stats.isel(channel=slice(1, None)).to_netcdf(broken / "stats.nc")
    with pytest.raises(DataError, match="stats.nc: channel"):
        Normalizer.from_data_dir(broken)
    stats["std"][3] = 0.0
    stats.to_netcdf(broken / "stats.nc")
    with pytest.raises(DataError, match=r"stats.nc: mean/std .* \['uo_01'\]"):
        Normalizer.from_data_dir(broken)
    packed = _linked_copy(tiny_data_dir, tmp_path / "c", skip=["ocean.zarr"])
    days = xr.open_zarr(tiny_data_dir / "ocean.zarr").isel(time=slice(0, 3)).load()
    days.astype("float64").to_zarr(packed / "ocean.zarr", consolidated=False)
    with pytest.raises(DataError, match=r"ocean.zarr: \['so', .* plain float32"):
        OceanData(packed)


def test_a_missing_chunk_is_an_error_naming_store_variable_and_day(tiny_data_dir, tmp_path):
    """zarr reads a deleted chunk as NaN, its fill value: no silent all-NaN day (day 5 is
    2017-01-06; one chunk per day)."""
    broken = _linked_copy(tiny_data_dir, tmp_path / "d", skip=["ocean.zarr", "forcing.zarr",
                                                               "climatology.zarr"])
    for store in ("ocean.zarr", "forcing.zarr", "climatology.zarr"):
        shutil.copytree(tiny_data_dir / store, broken / store)
    (broken / "ocean.zarr" / "thetao" / "c" / "5" / "0" / "0" / "0").unlink()
    data = OceanData(broken)
    np.testing.assert_array_equal(data.states(slice(0, 5)),
                                  OceanData(tiny_data_dir).states(slice(0, 5)))
    with pytest.raises(DataError, match=r"d/ocean.zarr: variable thetao has no data on "
                                        r"2017-01-06 \(a missing chunk"):
        data.states(slice(0, 10))
    with pytest.raises(DataError, match=r"ocean.zarr: variable thetao has no data on 2017-01-06"):
        data.preload(slice(0, 365))
    (broken / "forcing.zarr" / "msl" / "c" / "7" / "0" / "0").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"d/forcing.zarr: variable msl cannot be read on "
                                        r"2017-01-01\.\.2017-01-10 \(10 days\)"):
        data.forcings(slice(0, 10))
    clim = xr.open_zarr(tiny_data_dir / "climatology.zarr").load()
    clim.to_zarr(broken / "climatology.zarr", mode="w", consolidated=False,
                 encoding={v: {"chunks": (1, *clim[v].shape[1:])} for v in clim.data_vars})
    (broken / "climatology.zarr" / "zos" / "c" / "30" / "0" / "0").unlink()
    with pytest.raises(DataError, match=r"climatology.zarr: variable zos has no data on day\(s\) "
                                        r"of year \[30\]"):
        Normalizer.from_data_dir(broken)
