"""Benchmark of the regrid step on full-resolution GLORYS12-format days.

Writes ``--days`` days of a GLORYS12-sized file (2041 x 4320 cells, 1/12 deg, 80 S..90 N, the
paper's 23 levels, so/uo/vo/thetao + zos, int16 packed with _FillValue -32767 and zlib as the
copernicusmarine toolbox writes them, a depth-dependent land mask), then regrids it in a fresh
child process exactly as ``neuralogcm regrid`` does (open_raw, validate_raw, regrid_month to the
1.5 deg grid, region writes to zarr) and prints the seconds per day of the validation pass and of
the regrid pass, and the child's peak RSS (goal: at most 6 GB, whatever the number of days).

    python benchmarks/regrid_benchmark.py [--days 2] [--method bilinear] [--dir /tmp/...]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd

from neuralogcm.channels import PAPER_DEPTHS

N_LAT, N_LON = 2041, 4320  # GLORYS12: 80 S..90 N and 180 W..180 E at 1/12 deg
PACKING = {"thetao": (0.0007324442267417908, 21.0, "degrees_C"),
           "so": (0.0015259254723787308, -0.0015259254723787308, "1e-3"),
           "uo": (0.0006103701889514923, 0.0, "m s-1"),
           "vo": (0.0006103701889514923, 0.0, "m s-1"),
           "zos": (0.00030518509447574615, 0.0, "m")}


def write_glorys_day_file(path: Path, days: int) -> None:
    """A GLORYS12-format file of ``days`` days at full resolution, written level by level."""
    lat = np.linspace(-80.0, 90.0, N_LAT)
    lon = -180.0 + np.arange(N_LON) / 12.0
    la, lo = np.meshgrid(np.deg2rad(lat), np.deg2rad(lon), indexing="ij")
    coast = 0.5 * np.cos(3 * lo) * np.cos(la) + 0.3 * np.sin(2 * la + lo)
    start = pd.Timestamp("2020-01-01")
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("time", days)
        nc.createDimension("depth", len(PAPER_DEPTHS))
        nc.createDimension("latitude", N_LAT)
        nc.createDimension("longitude", N_LON)
        for name, values, attrs in (
                ("time", (np.arange(days) * 24 + (start - pd.Timestamp("1950-01-01")) /
                          pd.Timedelta(hours=1)).astype(np.float32),
                 {"units": "hours since 1950-01-01", "calendar": "gregorian"}),
                ("depth", np.asarray(PAPER_DEPTHS, np.float32),
                 {"units": "m", "positive": "down"}),
                ("latitude", lat.astype(np.float32), {"units": "degrees_north"}),
                ("longitude", lon.astype(np.float32), {"units": "degrees_east"})):
            var = nc.createVariable(name, values.dtype, (name,))
            var.setncatts(attrs)
            var[:] = values
        variables = {}
        for name, (scale, offset, units) in PACKING.items():
            dims = ("time", "latitude", "longitude") if name == "zos" else (
                "time", "depth", "latitude", "longitude")
            chunks = (1, N_LAT, N_LON) if name == "zos" else (1, 1, N_LAT, N_LON)
            var = nc.createVariable(name, "i2", dims, zlib=True, complevel=1, shuffle=True,
                                    chunksizes=chunks, fill_value=np.int16(-32767))
            var.setncatts({"scale_factor": scale, "add_offset": offset, "units": units})
            variables[name] = var
        for t in range(days):
            for k, z in enumerate(PAPER_DEPTHS):
                land = coast > 0.6 - z / 2000.0  # more land at depth
                season = 2.0 * np.sin(2 * np.pi * t / 365) * np.sin(la)
                fields = {"thetao": 2 + 25 * np.cos(la) ** 2 * np.exp(-z / 300) + season,
                          "so": 34.5 + np.cos(2 * la) + 0.001 * z + 0 * lo,
                          "uo": 0.4 * np.cos(3 * la) * np.exp(-z / 200) + 0.1 * np.sin(lo),
                          "vo": 0.2 * np.sin(2 * la) * np.cos(lo)}
                for name, values in fields.items():
                    variables[name][t, k] = np.ma.masked_where(land, values)
                if k == 0:
                    variables["zos"][t] = np.ma.masked_where(land, 0.8 * np.cos(la) - 0.3)


def measure(path: Path, out: Path, method: str, resolution: float) -> dict:
    """Validate and regrid ``path`` as the regrid step does; timings in s, peak RSS in GB."""
    import dask
    import xarray as xr

    from neuralogcm.grid import Grid
    from neuralogcm.prepare.regrid import make_regridder, regrid_month
    from neuralogcm.sources.read import open_raw, validate_raw

    grid = Grid(resolution)
    with dask.config.set(scheduler="synchronous"):
        ds = open_raw(path, "glorys")
        days = ds.sizes["time"]
        t0 = time.perf_counter()
        ds = validate_raw(ds, "glorys", path, depths=PAPER_DEPTHS)
        t1 = time.perf_counter()
        regridder = make_regridder(ds.lat.values, ds.lon.values, grid, method, 0.5,
                                   out.parent / "weights.nc")
        blocks = []
        for block in regrid_month(ds, regridder):
            block.to_zarr(out, mode="w" if not blocks else "a",
                          **({} if not blocks else {"append_dim": "time"}))
            blocks.append(block.sizes["time"])
        t2 = time.perf_counter()
    result = xr.open_zarr(out)
    finite = float(np.isfinite(result.thetao.isel(time=0, depth=0)).mean())
    return {"days": days, "blocks": blocks, "method": regridder.method,
            "validate_s_per_day": (t1 - t0) / days, "regrid_s_per_day": (t2 - t1) / days,
            "ocean_fraction_of_target_surface": round(finite, 3),
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--method", default="bilinear", choices=["bilinear", "conservative"])
    parser.add_argument("--resolution", type=float, default=1.5)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/neuralogcm-regrid-benchmark"))
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.measure:
        out = args.dir / f"regridded_{args.method}.zarr"
        print(json.dumps(measure(args.measure, out, args.method, args.resolution)))
        return

    args.dir.mkdir(parents=True, exist_ok=True)
    path = args.dir / f"glorys_full_resolution_{args.days}days.nc"
    if not path.exists():
        t = time.perf_counter()
        write_glorys_day_file(path, args.days)
        print(f"wrote {path} ({path.stat().st_size / 2**30:.2f} GiB) in "
              f"{time.perf_counter() - t:.0f} s")
    child = subprocess.run([sys.executable, __file__, "--measure", str(path), "--dir",
                            str(args.dir), "--method", args.method, "--resolution",
                            str(args.resolution)], check=True, capture_output=True, text=True)
    result = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"{result['days']} day(s) of {N_LAT} x {N_LON} x {len(PAPER_DEPTHS)} levels, "
          f"4 variables + zos -> {args.resolution} deg, {result['method']}")
    print(f"  validate (read all once): {result['validate_s_per_day']:.1f} s/day")
    print(f"  regrid (read + regrid + write): {result['regrid_s_per_day']:.1f} s/day "
          f"(blocks of days: {result['blocks']})")
    print(f"  peak RSS of the regridding process: {result['peak_rss_gb']:.2f} GB (goal <= 6 GB)")
    print(f"  ocean fraction of the target surface level: "
          f"{result['ocean_fraction_of_target_surface']}")


if __name__ == "__main__":
    main()
