import copy
from pathlib import Path

import pytest
import yaml
from snakemake.utils import update_config

from neuralogcm.config import ConfigError, load

ROOT = Path(__file__).resolve().parents[1]
DEMO = yaml.safe_load((ROOT / "config/config.yaml").read_text())
PAPER = yaml.safe_load((ROOT / "config/paper.yaml").read_text())


def test_demo_config_is_valid_and_follows_the_split():
    cfg = load(DEMO)
    years = cfg.data.years
    assert years.split("test") == [2020]  # a leap year, like the paper's test year
    assert years.train[1] < years.valid[0]
    assert cfg.data.source == "synthetic"


def test_paper_config_stands_alone():
    """Snakemake deep-merges paper.yaml over config.yaml: nothing of the demo may leak in."""
    merged = copy.deepcopy(DEMO)
    update_config(merged, PAPER)
    assert load(merged) == load(PAPER)


def test_paper_config_is_the_paper():
    cfg = load(PAPER)
    assert cfg.data.years.train == (1993, 2017)
    assert cfg.data.years.valid == (2018, 2019)
    assert cfg.data.years.test == (2020, 2020)
    assert cfg.grid.resolution == 1.5
    assert len(cfg.data.depths) == 23
    assert cfg.data.depths[0] == pytest.approx(0.494, abs=1e-3)
    assert cfg.data.depths[-1] == pytest.approx(643.57, abs=1e-2)
    assert cfg.train.lr == 1e-4 and cfg.train.weight_decay == 1e-5 and cfg.train.batch_size == 2


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["grid"].update(resolutoin=2.0), "grid.resolutoin': unknown key"),
        (lambda c: c["grid"].update(resolution="fine"), "grid.resolution'"),
        (lambda c: c["data"].update(source="ftp"), "data.source'"),
        (lambda c: c["data"]["years"].update(valid=[2017, 2017]), "data.years'"),
        (lambda c: c["data"].update(depths=[5.0, 1.0]), "data.depths'"),
        (lambda c: c["grid"].update(resolution=7.0),
         "grid.resolution': Value error, grid.resolution=7.0 deg does not divide 180 deg"),
        (lambda c: c["data"].update(depths=[0.494025, 100.0, 155.8507, 600.0]),
         "data.depths': Value error, 100 m (nearest level 92.3261 m), 600 m (nearest level "
         "643.567 m): not a GLORYS12 model level"),
        (lambda c: c["data"]["years"].update(train=[2018, 2018]),
         "data.years': Value error, train: (2018, 2018) is one year; the day-of-year "
         "climatology needs at least two"),
        (lambda c: c["models"]["unet"].update(widht=3), "models.unet.widht': unknown option"),
        (lambda c: c["models"]["unet"].update(arch="resnet"), "models.unet.arch': must be one of"),
        (lambda c: c.pop("data"), "data': required key is missing"),
        (lambda c: c.update(run="a/b"), "run'"),
    ],
)
def test_bad_config_names_the_key(edit, message):
    cfg = copy.deepcopy(DEMO)
    edit(cfg)
    with pytest.raises(ConfigError) as err:
        load(cfg)
    assert message in str(err.value)


def test_local_source_needs_patterns():
    cfg = copy.deepcopy(DEMO)
    cfg["data"]["source"] = "local"
    with pytest.raises(ConfigError, match=r"local.era5 must be a path pattern"):
        load(cfg)


def test_load_from_file_and_missing_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(DEMO))
    assert load(path).run == "demo"
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "nope.yaml")


def test_snakemake_stops_on_a_bad_key(tmp_path):
    """The Snakefile validates at start and names the key (no job runs)."""
    import subprocess

    bad = tmp_path / "bad.yaml"
    bad.write_text("grid:\n  resolutoin: 3.0\n")
    out = subprocess.run(
        ["snakemake", "-n", "--cores", "1", "--configfile", str(bad)],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert out.returncode != 0
    assert "grid.resolutoin': unknown key" in out.stdout + out.stderr
