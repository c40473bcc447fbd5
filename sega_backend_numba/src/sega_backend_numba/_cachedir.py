"""Where compiled kernels are cached on disk, decided before numba is imported.

Numba's default places its cache next to the source file (``__pycache__``), which is often
read-only for an installed package (site-packages owned by root, a zipped wheel, a container
image). So unless the user chose a directory with ``NUMBA_CACHE_DIR``, the kernels are cached in
a per-user cache directory; if no usable directory exists, caching is turned off with a warning
that says why (every new process then compiles again, but nothing fails).

Numba checks a cached function against its own source file only, but a compiled function holds
the code of the compiled functions it calls, which may live in other files (a job runner calls
the recurrent layer's kernels): after an upgrade or an edit that changes only the callee, numba
would load the caller's stale machine code. So the default directory has one subdirectory per
version of this package's sources (a digest of their contents), and a changed source file means
a fresh cache. Old subdirectories are never used again and may be deleted. A ``NUMBA_CACHE_DIR``
chosen by the user is used as it is: clear it after upgrading sega.

This module must not import numba: numba reads ``NUMBA_CACHE_DIR`` once, when it is imported.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass

ENV = "NUMBA_CACHE_DIR"


@dataclass(frozen=True)
class CacheSetting:
    """The outcome of :func:`configure_cache`: whether kernels are cached, where, and why not."""

    enabled: bool
    directory: str | None
    reason: str | None = None
    user_provided: bool = False


def default_cache_dir() -> str:
    """The per-user cache directory for sega's compiled numba kernels.

    ``$XDG_CACHE_HOME/sega/numba`` (``~/.cache/sega/numba``) on Linux and other Unixes,
    ``~/Library/Caches/sega/numba`` on macOS, ``%LOCALAPPDATA%\\sega\\Cache\\numba`` on Windows.
    """
    home = os.path.expanduser("~")
    if os.name == "nt":
        base = os.environ.get("LOCALAPPDATA") or os.path.join(home, "AppData", "Local")
        return os.path.join(base, "sega", "Cache", "numba")
    if sys.platform == "darwin":
        return os.path.join(home, "Library", "Caches", "sega", "numba")
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says relative paths are invalid and must be ignored.
    base = xdg if os.path.isabs(xdg) else os.path.join(home, ".cache")
    return os.path.join(base, "sega", "numba")


def source_fingerprint(package_dir: str | None = None) -> str:
    """A digest of the contents of the ``.py`` files in ``package_dir`` (this package's by default)."""
    package_dir = package_dir or os.path.dirname(os.path.abspath(__file__))
    digest = hashlib.sha256()
    for name in sorted(os.listdir(package_dir)):
        if name.endswith(".py"):
            with open(os.path.join(package_dir, name), "rb") as source:
                digest.update(name.encode() + b"\0" + source.read() + b"\0")
    return digest.hexdigest()[:16]


def _writable(directory: str) -> str | None:
    """``None`` if ``directory`` exists (or can be made) and takes a new file, else why not."""
    try:
        os.makedirs(directory, exist_ok=True)
        # The same probe numba runs before it trusts a cache directory.
        tempfile.TemporaryFile(dir=directory).close()
    except OSError as exc:
        return f"{type(exc).__name__}: {exc.strerror or exc}"
    return None


_setting: CacheSetting | None = None


def configure_cache() -> CacheSetting:
    """Choose the kernel cache directory once per process and tell numba about it.

    A ``NUMBA_CACHE_DIR`` set by the user is kept as it is. Otherwise it is set to the
    subdirectory of :func:`default_cache_dir` for :func:`source_fingerprint` (in ``os.environ``
    so numba picks it up on import, and in numba's config if numba was imported already). When
    the chosen directory cannot be written, a ``RuntimeWarning`` explains why and the kernels
    are compiled without caching.
    """
    global _setting
    if _setting is not None:
        return _setting
    user_dir = os.environ.get(ENV, "").strip()
    if user_dir:
        directory = os.path.abspath(os.path.expanduser(user_dir))
    else:
        directory = os.path.join(os.path.abspath(default_cache_dir()), source_fingerprint())
    problem = _writable(directory)
    if problem is not None:
        origin = f"{ENV}={user_dir!r}" if user_dir else "the default cache directory"
        reason = f"{origin} ({directory}) is not writable: {problem}"
        warnings.warn(
            f"sega's numba kernels will not be cached on disk, so every new process compiles them "
            f"again: {reason}. Set {ENV} to a writable directory to turn caching on.",
            RuntimeWarning,
            stacklevel=2,
        )
        _setting = CacheSetting(False, None, reason, bool(user_dir))
        return _setting
    if not user_dir:
        os.environ[ENV] = directory
        numba_module = sys.modules.get("numba")
        if numba_module is not None:
            # numba was imported before us and read an empty NUMBA_CACHE_DIR; its locator reads
            # the config value at decoration time, so updating it is enough.
            numba_module.config.CACHE_DIR = directory
    _setting = CacheSetting(True, directory, None, bool(user_dir))
    return _setting
