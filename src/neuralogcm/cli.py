"""`neuralogcm <verb> ...`: the one door from Snakemake (and users) into the package.

Each verb lives in its own module, which defines ``cli_arguments(parser)`` and ``cli_main(args)``;
the module is imported only when its verb runs. A :class:`~neuralogcm.errors.UserError` (bad
config key, missing credentials, corrupt file ...) ends the run with one message and exit code 1.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from neuralogcm.errors import UserError

VERBS = {
    "synthesize": "neuralogcm.sources.synthetic",
    "download": "neuralogcm.sources.download",
    "regrid": "neuralogcm.prepare.regrid",
    "assemble": "neuralogcm.prepare.store",
    "climatology": "neuralogcm.prepare.climatology",
    "stats": "neuralogcm.prepare.stats",
    "train": "neuralogcm.train",
    "rollout": "neuralogcm.rollout",
    "reference": "neuralogcm.reference",
    "score": "neuralogcm.metrics",
    "table": "neuralogcm.tables",
    "plot": "neuralogcm.plots",
    "models": "neuralogcm.models.summary",
    "docs": "neuralogcm.docs",
    "config-docs": "neuralogcm.config_docs",
}


def _usage() -> str:
    lines = ["usage: neuralogcm <verb> [options]   (neuralogcm <verb> --help for details)", "",
             "verbs:"]
    lines += [f"  {verb:<12} {module}" for verb, module in VERBS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    verb = argv[0]
    if verb not in VERBS:
        print(f"neuralogcm: unknown verb {verb!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(VERBS[verb])
    parser = argparse.ArgumentParser(prog=f"neuralogcm {verb}", description=module.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    module.cli_arguments(parser)
    args = parser.parse_args(argv[1:])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        module.cli_main(args)
    except UserError as err:
        print(f"neuralogcm {verb}: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
