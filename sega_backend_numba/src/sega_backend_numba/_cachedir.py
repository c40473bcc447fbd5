"""Where this backend's compiled kernels are cached on disk: a numba cache locator of its own.

Numba's default places its cache next to the source file (``__pycache__``), which is often
read-only for an installed package (site-packages owned by root, a zipped wheel, a container
image). So this backend's functions get their own locator (:class:`SourceTreeLocator`),
attached to each of them by :func:`attach` and to nothing else: the process environment and
numba's configuration are left alone, so other code's numba cache stays where its owner put it.

The directory is ``<base>/<digest of this package's sources>``, ``<base>`` being
``$NUMBA_CACHE_DIR/sega_backend_numba`` when the user set ``NUMBA_CACHE_DIR``, else a per-user
cache directory (:func:`default_cache_dir`). Numba checks a cached function against its own
source file only, but a compiled function holds the machine code of the compiled functions it
calls, which may live in other files (the RNN kernels hold _activations' sigmoid, for one):
after an upgrade or an edit that changes only the callee, numba would load the caller's stale
machine code (a real bug once). With one directory per version of the sources, a changed file
means a fresh cache. Old subdirectories are never used again and may be deleted.

If no usable directory exists, caching is turned off with a warning that says why (every new
process then compiles again, but nothing fails).
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass

from numba.core import caching

ENV = "NUMBA_CACHE_DIR"
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


@dataclass(frozen=True)
class CacheSetting:
    """Whether kernels are cached, where, and why not."""

    enabled: bool
    directory: str | None
    reason: str | None = None


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
    package_dir = package_dir or _PACKAGE_DIR
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


def _choose() -> CacheSetting:
    user_dir = os.environ.get(ENV, "").strip()
    if user_dir:
        base = os.path.join(os.path.abspath(os.path.expanduser(user_dir)), "sega_backend_numba")
    else:
        base = os.path.abspath(default_cache_dir())
    directory = os.path.join(base, source_fingerprint())
    problem = _writable(directory)
    if problem is None:
        return CacheSetting(True, directory)
    origin = f"{ENV}={user_dir!r}" if user_dir else "the default cache directory"
    reason = f"{origin} ({directory}) is not writable: {problem}"
    warnings.warn(
        f"sega's numba kernels will not be cached on disk, so every new process compiles them "
        f"again: {reason}. Set {ENV} to a writable directory to turn caching on.",
        RuntimeWarning,
        stacklevel=3,
    )
    return CacheSetting(False, None, reason)


#: Decided once, when the first kernel module is imported.
CACHE = _choose()


class SourceTreeLocator(caching._SourceFileBackedLocatorMixin, caching._CacheLocator):
    """Numba cache locator for this package's functions: :data:`CACHE`'s directory, and the
    digest of all of the package's sources as the freshness stamp."""

    def __init__(self, py_func, py_file):
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._cache_path = os.path.join(CACHE.directory, self.get_suitable_cache_subpath(py_file))

    def get_cache_path(self):
        return self._cache_path

    def get_source_stamp(self):
        return os.path.basename(CACHE.directory)


class _CacheImpl(caching.CompileResultCacheImpl):
    _locator_classes = [SourceTreeLocator]


class KeyedIndexFile(caching.IndexDataCacheFile):
    """numba's index and data files of one function, safe for processes that compile it at the
    same time with different signatures (:func:`sega_backend_numba.compile.compile_all` with
    ``jobs``).

    numba names a new data file after the first number its index does not use yet: two
    processes that read the same index would both pick number 1 for different signatures, and
    one signature's entry would then load the other's machine code. Here a data file is named
    after a digest of its key, written before the index refers to it, and the index entry is
    merged back in if another process's write replaced the index meanwhile.
    """

    _MERGE_ATTEMPTS = 8

    def save(self, key, data):
        number = int(hashlib.sha256(repr(key).encode()).hexdigest()[:15], 16)
        name = self._data_name(number)
        self._save_data(name, data)
        for _ in range(self._MERGE_ATTEMPTS):
            overloads = self._load_index()
            if overloads.get(key) == name:
                return
            overloads[key] = name
            self._save_index(overloads)


class _FunctionCache(caching.FunctionCache):
    _impl_class = _CacheImpl

    def __init__(self, py_func):
        super().__init__(py_func)
        self._cache_file = KeyedIndexFile(cache_path=self._cache_path, filename_base=self._impl.filename_base,
                                          source_stamp=self._impl.locator.get_source_stamp())


def attach(dispatcher):
    """Give a numba dispatcher (compiled with ``cache=False``) this package's disk cache, when
    there is one; returns the dispatcher."""
    if CACHE.enabled:
        # What Dispatcher.enable_caching() does, with this package's locator instead of numba's
        # default list (which would obey NUMBA_CACHE_DIR as it is, or write into site-packages).
        dispatcher._cache = _FunctionCache(dispatcher.py_func)
    return dispatcher
