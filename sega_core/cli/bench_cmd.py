"""``sega bench``: a quick run of the repository's benchmark harness on the installed backends.

The harness (``benchmarks/run.py``) lives in the source repository, not in the installed
package, so this command only finds it and runs it; everything else is the harness's job.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from ..errors import SegaError

NAME = "bench"

HARNESS = Path("benchmarks") / "run.py"

EPILOG = """\
examples:
  sega bench                                  # every workload, tiny data, 1 epoch, sega backends only
  sega bench --workload mlp-small --backends numpy,numba
  sega bench --size full --epochs 3 --compare --json results.json

The harness is benchmarks/run.py in a checkout of the sega repository (it is not installed with
the package): run this from the checkout, or from anywhere when sega is installed from it in
editable mode. `python benchmarks/run.py --help` lists all of the harness's options.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``sega bench``."""
    p = subparsers.add_parser(
        NAME,
        help="run the benchmark harness quickly on the installed backends",
        description="Run benchmarks/run.py from the sega repository: by default a quick smoke run "
        "(tiny data, one epoch, no warm-up) of every workload on every usable backend.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--workload", default="all", help="mlp-small, mlp-large, cnn, rnn, all, or a comma list (default: all)")
    p.add_argument("--backends", help="comma list of sega backends (default: every installed backend that works here)")
    p.add_argument("--size", choices=("tiny", "full"), default="tiny", help="data size (default: tiny)")
    p.add_argument("--epochs", type=int, default=1, metavar="N", help="timed epochs (default: 1)")
    p.add_argument("--compare", action="store_true", help="also time PyTorch and scikit-learn when installed")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    return p


def find_harness() -> Path:
    """``benchmarks/run.py`` near the current directory or next to the sega_core package."""
    package_root = Path(__file__).resolve().parents[2]
    cwd = Path.cwd().resolve()
    places = [cwd, *cwd.parents, package_root]
    for place in dict.fromkeys(places):
        candidate = place / HARNESS
        if candidate.is_file():
            return candidate
    raise SegaError(
        f"the benchmark harness {HARNESS} was not found (looked in {cwd} and its parents, and in "
        f"{package_root}); it ships with the sega source repository, not the installed package: "
        "run `sega bench` inside a checkout"
    )


def harness_command(harness: Path, args) -> list[str]:
    """The harness's command line for these options."""
    command = [sys.executable, str(harness), "--workload", args.workload, "--size", args.size, "--epochs", str(args.epochs)]
    if args.size == "tiny":
        command += ["--warmup", "0"]  # a smoke run: nothing to warm up for
    if args.backends:
        command += ["--backends", args.backends]
    if not args.compare:
        command += ["--no-torch", "--no-sklearn"]
    if args.json:
        command += ["--json", args.json]
    return command


def run(args) -> int:
    """Run the harness in the foreground; its exit status is ours."""
    if args.epochs < 1:
        raise SegaError(f"--epochs must be >= 1, got {args.epochs}")
    harness = find_harness()
    command = harness_command(harness, args)
    print(f"running {' '.join(command[1:])}", file=sys.stderr, flush=True)
    return subprocess.call(command, cwd=harness.parent.parent)
