"""The package's import graph: no cycles, and no layer imports a higher one (DESIGN.md section 6).

Every module of src/neuralogcm is parsed with ``ast`` (nothing is imported): each ``import`` and
``from ... import`` statement counts, at module level and inside functions alike, relative ones
resolved. ``from neuralogcm.x import y`` is an edge to ``neuralogcm.x.y`` when that is a module,
else to ``neuralogcm.x``. Imports by string through importlib (``cli.VERBS``, the architecture
table of ``models/registry.py``) are not seen.

Known exceptions go in ``ALLOWED``, each with its reason (none is left: what both sides needed
moved down, to the foundation or the config layer); an entry that no longer matches an import
fails :func:`test_allow_list_is_current`, so the list only shrinks.
"""

from __future__ import annotations

import ast
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "neuralogcm"

# Lowest first. A module may import modules of its own layer or of lower ones. Patterns are
# fnmatch patterns of module names without the "neuralogcm." prefix ("" is the package itself).
LAYERS: list[tuple[str, list[str]]] = [
    ("foundation", ["", "errors", "channels", "grid", "levels", "dates", "io"]),
    ("physics", ["physics", "physics.*"]),
    ("config", ["config", "model_options"]),
    ("stores", ["stores"]),
    ("sources", ["sources", "sources.*"]),
    ("prepare", ["prepare", "prepare.*"]),
    ("models", ["models", "models.*"]),
    ("data", ["data"]),
    ("build and run", ["checkpoint", "runtime"]),
    ("train and rollout", ["train", "rollout"]),
    ("evaluation", ["metrics", "reference"]),
    ("report", ["tables", "plots", "docs", "config_docs"]),
    ("cli", ["cli"]),
]

# Pairs that must not import each other although the layer order would allow one direction.
SEPARATE: list[tuple[str, str, str]] = [
    ("data", "prepare.*", "the training-time reader of the stores must not need the offline "
                          "pipeline (dask, ESMF); what both use belongs below both"),
]

# Known violations: (importer, imported, why it is tolerated for now). Empty: keep it so.
ALLOWED: list[tuple[str, str, str]] = []


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


@cache
def graph() -> dict[str, set[str]]:
    """Short module name -> the short names of the package modules it imports."""
    modules = _modules()
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here[: len(here) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    targets.add(sub if sub in modules else source)
        edges[_short(name)] = {_short(t) for t in targets
                               if t.split(".")[0] == PACKAGE and t != name}
    return edges


def _short(name: str) -> str:
    return name.removeprefix(PACKAGE).removeprefix(".")


def _matches(name: str, pattern: str) -> bool:
    return fnmatchcase(name, pattern)


def layer_of(name: str) -> int:
    found = [i for i, (_, patterns) in enumerate(LAYERS)
             if any(_matches(name, p) for p in patterns)]
    assert len(found) == 1, f"module {name!r} is in {len(found)} layers; add it to one"
    return found[0]


def _allowed(importer: str, imported: str) -> bool:
    return any(_matches(importer, a) and _matches(imported, b) for a, b, _ in ALLOWED)


def _label(name: str) -> str:
    return f"{PACKAGE}.{name}" if name else PACKAGE


def violations() -> list[tuple[str, str, str]]:
    """(importer, imported, message) of every import against the layer order or a SEPARATE
    rule, allowed ones included."""
    found = []
    for importer, targets in sorted(graph().items()):
        for imported in sorted(targets):
            low, high = layer_of(importer), layer_of(imported)
            if high > low:
                found.append((importer, imported, f"{_label(importer)} ({LAYERS[low][0]}) imports "
                              f"{_label(imported)} ({LAYERS[high][0]}, a higher layer)"))
            for a, b, why in SEPARATE:
                if _matches(importer, a) and _matches(imported, b) or (
                        _matches(importer, b) and _matches(imported, a)):
                    found.append((importer, imported,
                                  f"{_label(importer)} imports {_label(imported)}: {why}"))
    return found


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(set(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return [_one_cycle(edges, c) for c in components]


def _one_cycle(edges: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle through the first module of a strongly connected component."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w in sorted(edges.get(v, set()) & component):
                if w == start:
                    return paths[v] + [start]
                if w not in paths:
                    paths[w] = paths[v] + [w]
                    following.append(w)
        frontier = following
    raise AssertionError("not a cycle")  # pragma: no cover


def test_every_module_is_in_one_layer():
    for name in graph():
        layer_of(name)


def test_no_import_cycle():
    edges = {m: {t for t in ts if not _allowed(m, t)} for m, ts in graph().items()}
    found = [" -> ".join(_label(m) for m in cycle) for cycle in cycles(edges)]
    assert not found, "import cycles:\n" + "\n".join(found)


def test_no_layer_imports_a_higher_one():
    every = violations()
    print("\n".join(["imports against the layering (allowed ones included):",
                      *(message for *_, message in every)]))
    found = [message for importer, imported, message in every if not _allowed(importer, imported)]
    assert not found, "imports against DESIGN.md section 6 layering:\n" + "\n".join(found)


def test_allow_list_is_current():
    edges = graph()
    for importer, imported, _ in ALLOWED:
        assert any(_matches(m, importer) and any(_matches(t, imported) for t in ts)
                   for m, ts in edges.items()), (
            f"ALLOWED entry {importer} -> {imported} matches no import: remove it")


@pytest.mark.parametrize("package,forbidden", [
    ("physics.*", ["config", "models.*", "data", "checkpoint", "train", "rollout"]),
    ("sources.*", ["models.*", "train", "rollout", "metrics", "tables", "plots"]),
    ("prepare.*", ["models.*", "train", "rollout", "metrics", "tables", "plots"]),
])
def test_low_packages_stay_low(package, forbidden):
    """Spelled out, although the layers imply it: what the lower packages never import."""
    found = [f"{m} -> {t}" for m, ts in graph().items() if _matches(m, package)
             for t in ts if any(_matches(t, f) for f in forbidden)]
    assert not found


def test_the_store_formats_need_no_torch():
    """stores.py holds what the score, table and plot steps read: it must not import torch, not
    even inside a function, nor a package module that does."""
    path = SRC / PACKAGE / "stores.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module.split(".")[0])
    assert "torch" not in found
    assert graph()["stores"] <= {"", "errors", "channels", "io", "config"}


def test_the_cycle_finder_names_a_cycle():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(edges) == [["a", "b", "c", "a"]]


def test_the_physics_settings_mirror_the_physics_section():
    """physics.core reads its settings from a CoreSettings, not from the config layer: each of
    its fields must stay a key of the ``physics`` section (CoreSettings.of copies them)."""
    from dataclasses import fields

    from neuralogcm.config import PhysicsConfig
    from neuralogcm.physics.core import CoreSettings

    assert {f.name for f in fields(CoreSettings)} <= set(PhysicsConfig.model_fields)
    settings = CoreSettings.of(PhysicsConfig(substeps=3), coriolis=False)
    assert (settings.substeps, settings.coriolis, settings.advection) == (3, False, True)
