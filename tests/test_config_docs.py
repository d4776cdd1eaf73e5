"""config/README.md and config/schema.json: generated from the config models, never stale.

After a change to src/neuralogcm/config.py or src/neuralogcm/model_options.py, regenerate them
with ``neuralogcm config-docs --out-dir config``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from neuralogcm import cli, config_docs
from neuralogcm.config import Config

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"
EXAMPLES = ("config.yaml", "paper.yaml")
REGENERATE = "run `neuralogcm config-docs --out-dir config` and commit the result"


@pytest.fixture(scope="module")
def readme() -> str:
    return (CONFIG_DIR / config_docs.README).read_text(encoding="utf-8")


@pytest.mark.parametrize("name", [config_docs.README, config_docs.SCHEMA])
def test_committed_files_are_what_the_generator_writes(name):
    committed = (CONFIG_DIR / name).read_text(encoding="utf-8")
    assert committed == config_docs.generate()[name], f"config/{name} is stale: {REGENERATE}"


def _keys(raw: dict, model: type[BaseModel], prefix: str = ""):
    """Dotted keys of a config mapping, down to the fields that are not sections; the
    ``models:`` entries as (name, arch, option)."""
    for name, value in raw.items():
        info = model.model_fields[name]
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _keys(value, annotation, f"{prefix}{name}.")
        elif model is Config and name == "models":
            for entry, spec in value.items():
                for option in spec:
                    yield entry, spec["arch"], option
        else:
            yield f"{prefix}{name}"


def _arch_section(readme: str, arch: str) -> str:
    start = readme.index(f"### arch `{arch}`")
    end = readme.find("\n##", start + 1)
    return readme[start:end if end >= 0 else None]


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_key_of_the_shipped_configs_is_documented(example, readme):
    raw = yaml.safe_load((CONFIG_DIR / example).read_text())
    keys = list(_keys(raw, Config))
    assert any(isinstance(key, tuple) for key in keys) and len(keys) > 20
    for key in keys:
        if isinstance(key, tuple):
            entry, arch, option = key
            assert f"| `models.<name>.{option}` |" in _arch_section(readme, arch), \
                f"models.{entry}.{option} (arch {arch}) of config/{example} is not in README.md"
        else:
            assert f"| `{key}` |" in readme, f"{key} of config/{example} is not in README.md"


def test_descriptions_come_from_the_field_comments(readme):
    # a trailing comment continued on the next line, a comment line above a field, a comment
    # inside a multi-line Field(...), a constraint, an arch option's comment
    assert ("end a stage after this many epochs without a lower validation loss (None: run all "
            "its epochs); the checkpoint is the last stage's best") in readme
    assert "Physical bounds (min, max) per variable for the stability test" in readme
    assert "the models shown beside the truth" in readme
    assert "| `grid.na_thres` | `float` | `0.5` | >= 0, <= 1 |" in readme
    assert "gSTA MLP width / block width (OpenSTL: 8)" in _arch_section(readme, "simvp")
    schema = json.loads(config_docs.generate()[config_docs.SCHEMA])
    assert schema["$defs"]["GridConfig"]["properties"]["resolution"]["description"] == "deg"


@pytest.mark.parametrize("example", EXAMPLES)
def test_shipped_configs_validate_against_the_schema(example):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((CONFIG_DIR / config_docs.SCHEMA).read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    raw = yaml.safe_load((CONFIG_DIR / example).read_text())
    assert not [error.message for error in validator.iter_errors(raw)]

    for path, value in ((("grid", "typo"), 1), (("models", "unet", "hidden"), 3),
                        (("grid", "na_thres"), 2.0), (("data", "source"), "ftp")):
        bad = yaml.safe_load((CONFIG_DIR / example).read_text())
        node = bad
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value
        assert not validator.is_valid(bad), f"{'.'.join(path)} = {value!r} passed the schema"


def test_verb_writes_and_checks(tmp_path, capsys):
    out = tmp_path / "docs"
    assert cli.main(["config-docs", "--out-dir", str(out), "--check"]) == 1
    assert cli.main(["config-docs", "--out-dir", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(config_docs.generate())
    assert cli.main(["config-docs", "--out-dir", str(out), "--check"]) == 0
    (out / config_docs.README).write_text("stale\n")
    assert cli.main(["config-docs", "--out-dir", str(out), "--check"]) == 1
    assert "README.md" in capsys.readouterr().err
