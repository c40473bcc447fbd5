"""The ``sega`` command line: a dispatcher over subcommands, one module each.

Adding a subcommand
-------------------
Write a module in this package with two functions and add its name to :data:`SUBCOMMANDS`::

    def add_parser(subparsers) -> argparse.ArgumentParser:
        parser = subparsers.add_parser("train", help="one line for `sega --help`", description="...")
        parser.add_argument(...)
        return parser

    def run(args: argparse.Namespace) -> int:
        ...          # the exit status; raise a SegaError for a user-facing failure
        return 0

The dispatcher does the rest for every subcommand alike: ``--debug`` (accepted before or after
the subcommand's name), one-line ``sega: error: ...`` reports with exit status 2 for any
:class:`~sega_core.errors.SegaError`, one-line ``sega: warning: ...`` for plugin warnings, and
status 130 on Ctrl-C. A subcommand module is imported each time the parser is built, i.e. on
every ``sega`` invocation, so it must stay light at import: import heavy things (scikit-learn,
matplotlib, a model) inside ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
import warnings
from typing import Iterable, Sequence

from .. import __version__
from ..errors import SegaError, SegaPluginWarning

PROG = "sega"

#: Subcommand modules of this package, in the order ``sega --help`` lists them.
SUBCOMMANDS: tuple[str, ...] = ("train_cmd", "predict_cmd", "evaluate_cmd", "export_cmd", "backends_cmd")

#: Exit status for a user-facing error (the same as argparse's for a usage error).
EXIT_ERROR = 2
#: Exit status after Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130
#: Exit status when the reader of our output went away (128 + SIGPIPE), e.g. ``sega ... | head``.
EXIT_BROKEN_PIPE = 141


def one_line(text: object) -> str:
    """``text`` with every run of whitespace (newlines included) collapsed to one space."""
    return " ".join(str(text).split())


def format_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Left-aligned columns separated by two spaces; ``None`` shows as ``-``.

    The last column is not padded, so a long last cell (a reason, a path) only makes its own
    line long.
    """
    cells = [[("-" if v is None or v == "" else str(v)) for v in row] for row in rows]
    table = [list(headers)] + cells
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    lines = []
    for row in table:
        padded = [cell.ljust(width) for cell, width in zip(row[:-1], widths[:-1])] + [row[-1]]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


EXAMPLES = """examples:
  sega train                                   train on the digits data set, print test accuracy
  sega train iris --backend numba --epochs 200 a built-in data set on another backend
  sega train data.csv --target label --save model.npz --plot metrics.png
  sega predict model.npz new.csv -o predictions.csv
  sega evaluate model.npz test.csv
  sega export model.npz model.onnx             the model as an ONNX graph, to run without sega
  sega backends --verbose                      installed backends and where each kernel comes from

'sega COMMAND --help' shows each command's options and examples."""


def build_parser() -> argparse.ArgumentParser:
    """The ``sega`` argument parser with every subcommand of :data:`SUBCOMMANDS` registered."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="sega: a small neural-network library with pluggable compute backends.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EXAMPLES,
    )
    parser.add_argument("--version", action="version", version=f"sega-core {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks and raw warnings")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    subparsers.required = True
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"{__name__}.{name}")
        sub = module.add_parser(subparsers)
        # SUPPRESS: given only before the subcommand, the top-level value must survive.
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                         help="show full tracebacks and raw warnings")
        sub.set_defaults(_run=module.run)
    return parser


def _exit_status(code: object) -> int:
    """The int a ``SystemExit`` code stands for (argparse exits with 0 or 2, or a message)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    return 1


def _show_plugin_warning(original):
    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, SegaPluginWarning):
            # The user needs what was skipped and why, not the registry's file and line.
            print(f"{PROG}: warning: {one_line(message)}", file=sys.stderr)
        else:
            original(message, category, filename, lineno, file, line)

    return show


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``sega`` command with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version or a usage error: argparse has printed it
        return _exit_status(exc.code)
    with warnings.catch_warnings():
        if not args.debug:
            warnings.showwarning = _show_plugin_warning(warnings.showwarning)
        try:
            return int(args._run(args) or 0)
        except SegaError as exc:
            if args.debug:
                traceback.print_exc()
            print(f"{PROG}: error: {one_line(exc)}", file=sys.stderr)
            return EXIT_ERROR
        except KeyboardInterrupt:
            if args.debug:
                traceback.print_exc()
            print(f"{PROG}: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            _silence_stdout()
            return EXIT_BROKEN_PIPE


def _silence_stdout() -> None:
    # Python flushes stdout again at exit and would report a second broken pipe; point the
    # descriptor at /dev/null so that flush succeeds quietly (the recipe of Python's docs).
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout replaced by something without a descriptor
        pass
