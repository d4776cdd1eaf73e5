"""config/README.md and config/schema.json, generated from the config's pydantic models.

``neuralogcm config-docs --out-dir config`` writes a markdown table per config section (key,
type, default, constraints, description) and the JSON Schema of :class:`~neuralogcm.config.Config`.
The fields carry their descriptions as trailing ``# comments`` in config.py (and
model_options.py), so those are read from the source with :mod:`tokenize`: a field's comment is
the comment on its line(s), continued by the comment-only lines right below it that do not start
with a capital letter; a comment-only block directly above a field (starting with a capital)
describes the field below it. The ``models:`` entries are documented per architecture
(:data:`~neuralogcm.model_options.ARCH_OPTIONS`), and the schema checks them too.

tests/test_config_docs.py fails when the committed files differ from what this writes: after a
change to the config models, run the verb again.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import io
import json
import logging
import textwrap
import tokenize
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from neuralogcm import model_options as options_module
from neuralogcm.config import Config
from neuralogcm.errors import UserError
from neuralogcm.io import atomic_path
from neuralogcm.model_options import ARCH_OPTIONS

log = logging.getLogger(__name__)

README = "README.md"
SCHEMA = "schema.json"
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

# --- comments from the source ----------------------------------------------------------------


def _class_field_comments(cls: type) -> dict[str, str]:
    """The comments of the fields that ``cls``'s own body defines (see the module docstring)."""
    source = textwrap.dedent(inspect.getsource(cls))
    lines = source.splitlines()
    comments: dict[int, tuple[str, bool]] = {}  # line -> (text, comment-only line)
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            row, col = token.start
            comments[row] = (token.string.lstrip("#").strip(), not lines[row - 1][:col].strip())
    body = ast.parse(source).body[0].body
    fields = [(node.target.id, node.lineno, node.end_lineno) for node in body
              if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)]
    trailing: dict[str, list[str]] = {}
    claimed: set[int] = set()
    for name, start, end in fields:
        parts = [comments[row][0] for row in range(start, end + 1) if row in comments]
        row = end + 1
        while parts and row in comments and comments[row][1] and comments[row][0] \
                and not comments[row][0][0].isupper():
            parts.append(comments[row][0])
            claimed.add(row)
            row += 1
        trailing[name] = parts
    result = {}
    for name, start, _ in fields:
        leading = []
        row = start - 1
        while row in comments and comments[row][1] and row not in claimed:
            leading.insert(0, comments[row][0])
            row -= 1
        text = " ".join(part for part in leading + trailing[name] if part)
        if text:
            result[name] = text
    return result


def field_comments(model: type[BaseModel]) -> dict[str, str]:
    """The comment of every field of ``model`` that has one, inherited fields included."""
    result: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if isinstance(cls, type) and issubclass(cls, BaseModel) and cls is not BaseModel \
                and cls.__module__.startswith("neuralogcm"):
            result.update(_class_field_comments(cls))
    return result


# --- types, defaults, constraints ------------------------------------------------------------


def type_name(annotation: Any) -> str:
    """A short, readable name of a field's type: ``int | None``, ``list[float]``, ``"a" | "b"``."""
    if annotation is type(None):
        return "None"
    if annotation is Any:
        return "Any"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin is typing.Literal:
        return " | ".join(json.dumps(arg) for arg in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(arg) for arg in args)
    if origin is not None:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(map(type_name, args))}]"
    return getattr(annotation, "__name__", str(annotation))


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def default_text(info: FieldInfo) -> str:
    """The default as JSON (valid YAML), or ``required``."""
    if info.default_factory is not None:
        value = info.default_factory()
    elif info.default is PydanticUndefined:
        return "required"
    else:
        value = info.default
    return f"`{json.dumps(_jsonable(value))}`"


_BOUNDS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}


def constraints_text(info: FieldInfo) -> str:
    """The Field(...) constraints: ``>= 0``, ``< 90``, ``at least 1 item``, ``multiple of 2``."""
    parts = []
    for meta in info.metadata:
        for attr, symbol in _BOUNDS.items():
            if getattr(meta, attr, None) is not None:
                parts.append(f"{symbol} {getattr(meta, attr)}")
        if getattr(meta, "min_length", None) is not None:
            parts.append(f"at least {meta.min_length} item{'s' * (meta.min_length != 1)}")
        if getattr(meta, "max_length", None) is not None:
            parts.append(f"at most {meta.max_length} items")
        if getattr(meta, "multiple_of", None) is not None:
            parts.append(f"multiple of {meta.multiple_of}")
        if getattr(meta, "pattern", None) is not None:
            parts.append(f"pattern `{meta.pattern}`")
    return ", ".join(parts)


def _section_class(info: FieldInfo) -> type[BaseModel] | None:
    annotation = info.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


# --- markdown ----------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _doc(cls: type) -> str:
    """The class's own docstring as one paragraph ('' if it has none)."""
    doc = cls.__dict__.get("__doc__")
    return " ".join(inspect.cleandoc(doc).split()) if doc else ""


_HEADER = ("| key | type | default | constraints | description |",
           "|---|---|---|---|---|")


def _rows(model: type[BaseModel], prefix: str, defaults: dict[str, str] | None = None
          ) -> list[str]:
    """One table row per field; ``defaults`` replaces the default column of some fields."""
    comments = field_comments(model)
    rows = []
    for name, info in model.model_fields.items():
        section = _section_class(info)
        if section is not None:
            kind = "section"
            default = "required" if info.is_required() else "see below"
            description = f"section `{prefix}{name}` below"
        elif prefix == "" and name == "models":
            kind, default = type_name(info.annotation), "required"
            description = "named models, one entry each: section `models` below"
        else:
            kind, default, description = type_name(info.annotation), default_text(info), ""
        description = " ".join(part for part in (comments.get(name, ""), description) if part)
        default = (defaults or {}).get(name, default)
        rows.append(f"| `{prefix}{name}` | `{_cell(kind)}` | {_cell(default)} | "
                    f"{_cell(constraints_text(info))} | {_cell(description)} |")
    return rows


def _sections(model: type[BaseModel], key: str) -> list[str]:
    """This section's table, then those of its subsections, depth first."""
    prefix = f"{key}." if key else ""
    title = f"`{key}`" if key else "Top level"
    out = [f"## {title} ({model.__name__})", ""]
    if doc := _doc(model):
        out += [doc, ""]
    out += [*_HEADER, *_rows(model, prefix), ""]
    for name, info in model.model_fields.items():
        if (section := _section_class(info)) is not None:
            out += _sections(section, f"{prefix}{name}")
        if not key and name == "models":
            out += _models_sections()
    return out


def _models_sections() -> list[str]:
    out = ["## `models`", "", " ".join(inspect.cleandoc(options_module.__doc__ or "").split()),
           "", "Options of each arch (`<name>`: the entry's name):", ""]
    for arch, model in ARCH_OPTIONS.items():
        out += [f"### arch `{arch}` ({model.__name__})", ""]
        if doc := _doc(model):
            out += [doc, ""]
        rows = _rows(model, "models.<name>.", {"arch": f'required: `"{arch}"`'})
        out += [*_HEADER, *rows, ""]
    return out


def render_markdown() -> str:
    """config/README.md: every config key of every section, and every model arch's options."""
    lines = [
        "# Configuration reference",
        "",
        "Generated from the pydantic models in `src/neuralogcm/config.py` and "
        "`src/neuralogcm/model_options.py` by `neuralogcm config-docs --out-dir config`: do "
        "not edit by hand (tests/test_config_docs.py fails when this file or `schema.json` is "
        "stale). The descriptions are the fields' comments in those files.",
        "",
        "`config.yaml` is the demo, `paper.yaml` the paper. Every key is validated when a run "
        "starts and unknown keys are errors; checks that involve several keys (the models' "
        "validators) are not listed here. `schema.json` is the JSON Schema of the same models "
        "(with each `models:` entry checked against its arch's options), for editors and "
        "external tools.",
        "",
        "Defaults are written as JSON (which YAML reads as well): `null` for None.",
        "",
    ]
    lines += _sections(Config, "")
    return "\n".join(lines).rstrip("\n") + "\n"


# --- JSON Schema ---------------------------------------------------------------------------------


def _describe(schema: dict, model: type[BaseModel]) -> None:
    """Put the fields' comments into the schema's properties as descriptions."""
    for name, text in field_comments(model).items():
        prop = schema.get("properties", {}).get(name)
        if prop is not None and "description" not in prop:
            prop["description"] = text


def _all_sections(model: type[BaseModel]) -> dict[str, type[BaseModel]]:
    found = {model.__name__: model}
    for info in model.model_fields.values():
        if (section := _section_class(info)) is not None:
            found |= _all_sections(section)
    return found


def render_schema() -> str:
    """config/schema.json: ``Config.model_json_schema()``, with the fields' comments as
    descriptions and each ``models:`` entry checked against the options of its arch."""
    schema = Config.model_json_schema()
    defs = schema.setdefault("$defs", {})
    for name, model in _all_sections(Config).items():
        _describe(schema if model is Config else defs[name], model)
    choices = []
    for arch, model in ARCH_OPTIONS.items():
        sub = model.model_json_schema()
        sub["properties"]["arch"] = {"const": arch, "title": "Arch",
                                     "description": "the model's architecture"}
        _describe(sub, model)
        defs.pop(model.__name__, None)  # pydantic's own, sorted among the sections
        defs[model.__name__] = sub
        choices.append({"$ref": f"#/$defs/{model.__name__}"})
    schema["properties"]["models"]["additionalProperties"] = {"oneOf": choices}
    schema = {"$schema": SCHEMA_DIALECT, **schema}
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def generate() -> dict[str, str]:
    """The files' names and contents."""
    return {README: render_markdown(), SCHEMA: render_schema()}


def write(out_dir: str | Path) -> list[Path]:
    """Write config/README.md and config/schema.json under ``out_dir``; return their paths."""
    paths = []
    for name, text in generate().items():
        path = Path(out_dir) / name
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def stale(out_dir: str | Path) -> list[Path]:
    """The generated files under ``out_dir`` that are missing or differ from :func:`generate`."""
    out_dir = Path(out_dir)
    return [out_dir / name for name, text in generate().items()
            if not (out_dir / name).is_file()
            or (out_dir / name).read_text(encoding="utf-8") != text]


def cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out-dir", default="config",
                        help="folder that receives README.md and schema.json (default: config)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; fail if the files there are missing or stale")


def cli_main(args: argparse.Namespace) -> None:
    if args.check:
        if bad := stale(args.out_dir):
            raise UserError(f"stale or missing: {', '.join(map(str, bad))}; run "
                            f"`neuralogcm config-docs --out-dir {args.out_dir}`")
        log.info("%s is up to date", args.out_dir)
        return
    for path in write(args.out_dir):
        log.info("wrote %s", path)
