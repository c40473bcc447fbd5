"""Checks on where a command will write, done before the long work whose result it writes.

A model file or plot that cannot be written after minutes of training loses that training, so
``sega train`` and ``sega predict`` check their output paths (and plotting's optional
dependency) first and stop with a one-line error.
"""

from __future__ import annotations

import os

from ..errors import OutputPathError, SegaError
from ..nn.atomic import check_output_path


def check_outputs(**paths: str | None) -> None:
    """Raise if any given path (by option name, e.g. ``save="m.npz"``) cannot become a file, or
    if two options name the same file."""
    seen: dict[str, str] = {}
    for option, path in paths.items():
        if path is None:
            continue
        check_output_path(path)
        key = os.path.realpath(path)
        if key in seen:
            raise OutputPathError(f"--{seen[key]} and --{option} both name {path!r}; give each its own file")
        seen[key] = option


def check_plotting() -> None:
    """Raise unless matplotlib can be imported (``--plot`` needs it)."""
    try:
        import matplotlib  # noqa: F401  (imported to find out now, not after training)
    except ImportError:
        raise SegaError('--plot needs matplotlib, which is not installed; install it with pip install "sega-core[plot]" '
                        "or leave out --plot") from None
