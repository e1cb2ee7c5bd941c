"""``molpred`` command line: thin subcommands over the library.

Exit codes: 0 success; 2 unusable input (missing file or column, no valid molecules, bad model
file) or an output that cannot be written, with a one-line reason on stderr; 1 when a worker
process died mid-run (what was written stays). The parser
(``parser.py``) imports no torch, so ``--help`` is instant; each command (``commands.py``)
imports what it uses.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from molpred.cli import commands
from molpred.cli.parser import build_parser
from molpred.cli.suggest import suggest
from molpred.parallel import WorkerDied

__all__ = ["main", "build_parser"]

COMMANDS = {
    "train": commands.train,
    "predict": commands.predict,
    "evaluate": commands.evaluate,
    "suggest": suggest,
    "tune": commands.tune,
    "report": commands.report,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = None if argv is None else list(argv)  # --config parses again
    try:
        return COMMANDS[args.command](args)
    except (ValueError, FileNotFoundError) as exc:  # DataError, ModelFileError, bad options
        print(f"molpred {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # an output that cannot be written: a full disk, a directory
        where = f": {exc.filename}" if exc.filename else ""
        print(f"molpred {args.command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except WorkerDied as exc:  # what was written stays; predict --resume goes on from there
        hint = "; --resume goes on from the last chunk written" * (args.command == "predict")
        print(f"molpred {args.command}: error: {exc}{hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
