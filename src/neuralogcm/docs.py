"""`neuralogcm docs`: copy a run's generated tables and figures into the README.

The README shows the demo's results between ``<!-- generated:NAME -->`` and
``<!-- /generated:NAME -->`` markers; this verb replaces what stands between each pair with the
named markdown file of the run (for example ``tables/table2.md``) and copies the figures it names
into docs/figures/, so that nothing in the README's results is typed by hand.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from neuralogcm.errors import UserError
from neuralogcm.io import atomic_path

MARKER = re.compile(
    r"(<!-- generated:(?P<name>[\w./-]+) -->\n)(?P<body>.*?)(<!-- /generated:(?P=name) -->)",
    re.DOTALL,
)


def update_readme(readme: Path, run_dir: Path, figures: list[str], figure_dir: Path) -> list[str]:
    """Fill every generated block of ``readme`` from ``run_dir``; copy ``figures`` (paths relative
    to run_dir) into ``figure_dir``. Returns the names of the blocks filled."""
    text = readme.read_text()
    filled: list[str] = []

    def fill(match: re.Match) -> str:
        source = run_dir / match["name"]
        if not source.is_file():
            raise UserError(f"{readme}: generated block {match['name']!r} needs {source}, "
                            "which does not exist (run the workflow first)")
        filled.append(match["name"])
        return f"{match[1]}{source.read_text().rstrip()}\n{match[4]}"

    new = MARKER.sub(fill, text)
    for rel in figures:
        src = run_dir / rel
        if not src.is_file():
            raise UserError(f"figure {src} does not exist (run the workflow first)")
        with atomic_path(figure_dir / src.name) as tmp:
            shutil.copyfile(src, tmp)
    with atomic_path(readme) as tmp:
        tmp.write_text(new)
    return filled


def cli_arguments(parser) -> None:
    parser.add_argument("--run-dir", type=Path, required=True, help="results/{run}")
    parser.add_argument("--readme", type=Path, default=Path("README.md"))
    parser.add_argument("--figure-dir", type=Path, default=Path("docs/figures"))
    parser.add_argument("figures", nargs="*", help="figures to copy, relative to --run-dir")


def cli_main(args) -> None:
    filled = update_readme(args.readme, args.run_dir, args.figures, args.figure_dir)
    print(f"filled {len(filled)} generated blocks of {args.readme}: {', '.join(filled)}")
