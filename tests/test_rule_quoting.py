"""Paths reach the shell commands of the data rules quoted (issue 13, bug 9): a `local` pattern
with a space and a command substitution in it is a path like any other."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr
import yaml
from raw_formats import era5_month

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER = re.compile(r"\{(input|output|log|params)\b[^{}]*\}")


@pytest.mark.parametrize("rules", ["download.smk", "prepare.smk"])
def test_every_path_in_a_shell_command_is_quoted(rules):
    text = (ROOT / "workflow" / "rules" / rules).read_text()
    unquoted = [m.group(0) for m in PLACEHOLDER.finditer(text) if not m.group(0).endswith(":q}")]
    assert unquoted == []


def test_a_local_pattern_with_a_space_and_a_substitution_is_regridded(tmp_path):
    """The regrid rule through the real snakemake on 12 tiny ERA5 months in a folder named
    'pool dir $(touch INJECTED)': the store is written and nothing is executed."""
    pool = tmp_path / "pool dir $(touch INJECTED)"
    for source in ("era5", "glorys"):
        for year in range(2017, 2021):
            for month in range(1, 13):
                path = pool / source / f"{year}" / f"{month:02d}.nc"
                path.parent.mkdir(parents=True, exist_ok=True)
                if source == "era5" and year == 2020:
                    era5_month(year, month).to_netcdf(path)
                else:
                    path.touch()  # only needs to exist: the parse-time check of local files
    work = tmp_path / "work"
    work.mkdir()
    config = {"run": "quoting", "grid": {"resolution": 30.0},
              "data": {"source": "local", "depths": [0.494025],
                       "years": {"train": [2017, 2018], "valid": [2019, 2019],
                                 "test": [2020, 2020]},
                       "local": {s: str(pool / s / "{year}" / "{month}.nc")
                                 for s in ("era5", "glorys")}},
              "models": {"unet": {"arch": "unet", "width": 4, "depth": 1}}}
    (work / "run.yaml").write_text(yaml.safe_dump(config))
    target = "results/quoting/interim/era5/2020.zarr"
    done = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"),
                           "--configfile", "run.yaml", "--cores", "1", target],
                          cwd=work, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert list(tmp_path.rglob("INJECTED")) == []
    with xr.open_zarr(work / target) as ds:
        assert ds.sizes["time"] == 366
