"""``sega backends``: which backends are installed, whether they can run here, and where each of
their kernels comes from (their own implementation, the NumPy reference, or nowhere)."""

from __future__ import annotations

import argparse
import json

from . import format_table

NAME = "backends"

#: Kernel source shown for a backend that failed to load (it has no table at all).
NOT_LOADED = "-"


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``sega backends`` and its options."""
    parser = subparsers.add_parser(
        NAME,
        help="list installed backends and their kernel coverage",
        description=(
            "List the installed sega backends (plugins of the 'sega.backends' entry-point group): "
            "their distribution, version, device and status, why a backend cannot run here, and "
            "how many of its kernels are its own, taken from the NumPy reference, or missing. "
            "SEGA_DISABLE_PLUGINS=name,... skips plugins; SEGA_STRICT_PLUGINS=1 makes a broken "
            "plugin an error."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print sega_core.list_backends() as JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="also show the source of every kernel")
    return parser


def coverage(backend: dict) -> tuple[int, int, int]:
    """``(own, from_numpy, missing)`` kernel counts of one :func:`~sega_core.list_backends` entry."""
    sources = backend["kernels"].values()
    own = sum(1 for s in sources if s == backend["name"])
    missing = sum(1 for s in sources if s == "missing")
    return own, len(backend["kernels"]) - own - missing, missing


def _coverage_text(backend: dict) -> str:
    if backend["status"] == "failed":
        return "not loaded"
    own, fallback, missing = coverage(backend)
    return f"{own} own, {fallback} from numpy, {missing} missing"


def render(backends: list[dict], verbose: bool = False) -> str:
    """The human-readable listing of ``backends`` (entries of :func:`~sega_core.list_backends`)."""
    rows = [(b["name"], b["distribution"], b["version"], b["device"], b["status"], b["reason"]) for b in backends]
    parts = [format_table(("name", "distribution", "version", "device", "status", "reason"), rows)]
    n_kernels = max((len(b["kernels"]) for b in backends), default=0)
    parts.append(f"\nkernel coverage ({n_kernels} kernels):")
    parts.append(format_table(("name", "kernels"), [(b["name"], _coverage_text(b)) for b in backends]))
    if verbose:
        kernels = list(dict.fromkeys(k for b in backends for k in b["kernels"]))
        headers = ("kernel", *(b["name"] for b in backends))
        rows = [(k, *(b["kernels"].get(k, NOT_LOADED) for b in backends)) for k in kernels]
        parts.append("\nsource of each kernel (a backend's own name: its own implementation):")
        parts.append(format_table(headers, rows))
    return "\n".join(parts)


def run(args: argparse.Namespace) -> int:
    """Print the listing (or JSON); with no backend installed, say how to install one."""
    from ..backends import list_backends
    from ..errors import NoBackendInstalledError

    backends = list_backends()
    if args.json:
        # Machine-readable as it is, even when empty: `[]` is an answer, not an error.
        print(json.dumps(backends))
        return 0
    if not backends:
        raise NoBackendInstalledError()
    print(render(backends, verbose=args.verbose))
    return 0
