"""A fresh clone anywhere must pass: no file of the repository names a path of one machine."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Folders that are not the repository's sources (outputs, caches, copied binary fixtures).
SKIP = {".git", "results", ".snakemake", "__pycache__", ".pytest_cache", ".ruff_cache", "data"}
MACHINE_PATH = re.compile(r"(?<![\w.~])/(?:work|home|Users|root|mnt|scratch)/")


def _text_files():
    for path in ROOT.rglob("*"):
        parts = path.relative_to(ROOT).parts
        if path.is_file() and not SKIP & set(parts) and not parts[0].endswith(".egg-info"):
            data = path.read_bytes()
            if b"\0" not in data:
                yield path, data.decode("utf8", "replace")


def test_no_absolute_path_of_a_machine():
    found = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
             for path, text in _text_files()
             for n, line in enumerate(text.splitlines(), 1) if MACHINE_PATH.search(line)]
    assert found == []
