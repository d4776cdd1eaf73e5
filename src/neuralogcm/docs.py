"""`neuralogcm docs`: copy a run's generated tables and figures into the README and docs/RUN/.

The README shows the results of several runs (the demo, a study ...) between
``<!-- generated:RUN/PATH -->`` and ``<!-- /generated:RUN/PATH -->`` markers, where RUN is the
name of a run folder (``results/demo`` -> ``demo``) and PATH a markdown file in it, for example
``<!-- generated:demo/tables/table2.md -->``. ``neuralogcm docs --run-dir results/RUN
[FIGURE ...]`` replaces what stands between each pair of RUN's markers with that file of the run
(the blocks of other runs are left as they are), copies the figures it names (paths relative to
the run folder) into ``docs/RUN/figures/`` and every ``tables/*.md`` and ``tables/*.csv`` of the
run into ``docs/RUN/tables/``, so that nothing in the README's results is typed by hand and a
run's generated tables are kept in the repository under ``docs/RUN/``. A missing file is an
error that names it (and the block that needs it), and nothing is written then.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from neuralogcm.errors import UserError
from neuralogcm.io import atomic_path

MARKER = re.compile(
    r"(?P<open><!-- generated:(?P<name>(?P<run>[\w.-]+)/(?P<path>[\w./-]+)) -->\n)(?P<body>.*?)"
    r"(?P<close><!-- /generated:(?P=name) -->)",
    re.DOTALL,
)
RUN_FOLDERS = ("tables", "figures")  # a marker starting with one of these lacks its RUN
TABLE_SUFFIXES = (".md", ".csv")


def run_name(run_dir: Path) -> str:
    """RUN of ``results/RUN``: the name of the run folder."""
    return Path(run_dir).resolve().name


def update_readme(readme: Path, run_dir: Path, figures: list[str],
                  docs_dir: Path = Path("docs")) -> list[str]:
    """Fill the generated blocks of ``readme`` whose RUN is ``run_dir``'s name from the files of
    ``run_dir``; copy ``figures`` (paths relative to run_dir) into ``docs_dir/RUN/figures/`` and
    the run's tables (``tables/*.md``, ``tables/*.csv``) into ``docs_dir/RUN/tables/``. Returns
    the names (``RUN/PATH``) of the blocks filled. Everything is checked before anything is
    written."""
    run = run_name(run_dir)
    text = readme.read_text()
    filled: list[str] = []

    def fill(match: re.Match) -> str:
        if match["run"] in RUN_FOLDERS:
            raise UserError(f"{readme}: generated block {match['name']!r} names no run: write "
                            f"<!-- generated:RUN/{match['name']} --> (e.g. RUN = {run})")
        if match["run"] != run:
            return match[0]
        source = run_dir / match["path"]
        if not source.is_file():
            raise UserError(f"{readme}: generated block {match['name']!r} needs {source}, "
                            "which does not exist (run the workflow first)")
        filled.append(match["name"])
        return f"{match['open']}{source.read_text().rstrip()}\n{match['close']}"

    new = MARKER.sub(fill, text)
    copies = []
    for rel in figures:
        src = run_dir / rel
        if not src.is_file():
            raise UserError(f"figure {src} does not exist (run the workflow first)")
        copies.append((src, docs_dir / run / "figures" / src.name))
    tables = sorted(p for p in (run_dir / "tables").glob("*") if p.suffix in TABLE_SUFFIXES)
    if not tables:
        raise UserError(f"{run_dir / 'tables'} holds no tables (*.md, *.csv): run the workflow "
                        "first")
    copies += [(src, docs_dir / run / "tables" / src.name) for src in tables]
    for src, dst in copies:
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)
    with atomic_path(readme) as tmp:
        tmp.write_text(new)
    return filled


def cli_arguments(parser) -> None:
    parser.add_argument("--run-dir", type=Path, required=True,
                        help="results/RUN: fills the README blocks <!-- generated:RUN/... -->")
    parser.add_argument("--readme", type=Path, default=Path("README.md"))
    parser.add_argument("--docs-dir", type=Path, default=Path("docs"),
                        help="copies go to DOCS_DIR/RUN/figures and DOCS_DIR/RUN/tables")
    parser.add_argument("figures", nargs="*", help="figures to copy, relative to --run-dir")


def cli_main(args) -> None:
    filled = update_readme(args.readme, args.run_dir, args.figures, args.docs_dir)
    target = args.docs_dir / run_name(args.run_dir)
    print(f"filled {len(filled)} generated blocks of {args.readme}: {', '.join(filled) or '-'}; "
          f"copied the figures and tables to {target}/")
