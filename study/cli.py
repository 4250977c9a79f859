"""``noisyseg COMMAND ...``: the console command of an installed noisyseg, one name for the three CLIs.

    noisyseg study ...    = python -m study.run ...          (a hyperparameter study, then its report)
    noisyseg trial ...    = python -m trainables.run ...     (one training run, without Ray)
    noisyseg export ...   = python -m trainables.export ...  (a run's corrected labels and suspects)

It lives in ``study`` (the top layer: it imports both packages; ``trainables`` never imports
``study``), and imports only the command it runs.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# command -> (module whose main(argv) it runs, one-line summary for --help)
COMMANDS = {
    "study": ("study.run", "a study: search, replication, report (= python -m study.run)"),
    "trial": ("trainables.run", "one training run, without Ray (= python -m trainables.run)"),
    "export": ("trainables.export", "a run's labels and suspects (= python -m trainables.export)"),
}


def parser() -> argparse.ArgumentParser:
    from trainables.catalog import version

    ap = argparse.ArgumentParser(
        prog="noisyseg", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Hyperparameter studies of segmentation training under noisy labels.",
        epilog="noisyseg COMMAND --help shows the command's own options, e.g. noisyseg study adele --smoke")
    ap.add_argument("--version", action="version", version=f"noisyseg {version()}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, (_, summary) in COMMANDS.items():
        sub.add_parser(name, help=summary, add_help=False)
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in COMMANDS:  # everything after the command is that command's own
        return importlib.import_module(COMMANDS[argv[0]][0]).main(argv[1:])
    ap = parser()
    ap.parse_args(argv)  # --help, --version, or a wrong command (argparse: one line, exit 2)
    ap.print_usage(sys.stderr)
    print("noisyseg: error: give a command: " + ", ".join(COMMANDS), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
