"""The decorators every kernel of this backend is compiled with.

All kernels share one set of options:

* cached on disk in this backend's own directory (:mod:`._cachedir`), so a new process loads
  machine code instead of compiling it;
* ``nogil=True``, so kernels run in parallel with other Python threads (a ``predict`` in one
  thread while another trains);
* ``error_model="numpy"``: division by zero gives inf/nan like NumPy, and the compiler need not
  guard every division (which would stop it vectorising loops);
* no ``fastmath``: results must match the NumPy reference, and fast-math integer powers once
  crashed LLVM (``__powidf2``).

Kernels are compiled lazily, on the first call with a given type signature. Callers pass
C-contiguous arrays of a fixed number of dimensions and plain Python ``int``/``float``/``bool``
scalars, so each kernel is compiled once per dtype and never again for another layout.

:func:`parallel` and :func:`serial` are for the kernels of :mod:`._parallel`, the only functions
here compiled with ``parallel=True``.
"""

from __future__ import annotations

import numba

from ._cachedir import CACHE, attach

_OPTIONS = {"nogil": True, "error_model": "numpy", "cache": False}


def jit():
    """``numba.njit`` with sega's options (cached, nogil, NumPy error model, no fastmath)."""
    return lambda function: attach(numba.njit(**_OPTIONS)(function))


def scalar(function):
    """A scalar helper shared by several kernels; LLVM inlines it into each caller's loop."""
    return attach(numba.njit(**_OPTIONS)(function))


def inline(function):
    """A helper that numba copies into each compiled caller (``inline="always"``), so that a
    constant argument there (an activation code) leaves only the branch it selects."""
    return numba.njit(inline="always", **_OPTIONS)(function)


def parallel():
    """:func:`jit` with ``parallel=True``: for a kernel whose ``numba.prange`` loop runs one share
    per thread (see :mod:`._parallel`)."""
    return lambda function: attach(numba.njit(parallel=True, **_OPTIONS)(function))


def serial():
    """:func:`jit` without the disk cache, for the serial version of a :func:`parallel` kernel:
    both would have the same cache key (same function, same signature), and the serial one is
    only needed in rare cases (see :mod:`._parallel`)."""
    return numba.njit(**_OPTIONS)


__all__ = ["CACHE", "inline", "jit", "parallel", "scalar", "serial"]
