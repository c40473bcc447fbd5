"""The one place numba is imported: cache directory first, then the decorator every kernel uses.

Every kernel module imports :func:`jit` from here, so the cache directory is settled before
numba reads its configuration, and all kernels share the same compilation options:

* ``cache=True`` (unless no cache directory is writable, see :mod:`._cachedir`), so a new
  process loads machine code instead of compiling it;
* ``nogil=True``, so kernels run in parallel with other Python threads;
* ``error_model="numpy"``: division by zero gives inf/nan like NumPy, and the compiler need not
  guard every division (which would stop it vectorising loops);
* no ``fastmath``: results must match the NumPy reference, and fast-math integer powers once
  crashed LLVM (``__powidf2``).

Kernels are compiled lazily, on the first call with a given type signature. Callers pass
C-contiguous arrays of a fixed number of dimensions and plain Python ``int``/``float``/``bool``
scalars, so each kernel is compiled once per dtype and never again for another layout.

Why no ``parallel=True``: a compiled ``prange`` loop cannot call NumPy's BLAS, the matrix
products are most of each layer's work, and numba's thread pool would be a second pool competing
with OpenBLAS's for the same cores (measured on a 64x16x28x28 batch, 3x3 kernel to 32 channels:
im2col/col2im threaded with ``prange`` took 270 ms instead of 18.5 ms with the spinning OpenMP
layer). Kernels are parallel one level up instead: :mod:`._team` splits each batch across
``NUMBA_NUM_THREADS`` Python threads, which ``nogil=True`` lets run these kernels at once, with
BLAS single-threaded inside them.
"""

from __future__ import annotations

from ._cachedir import configure_cache

CACHE = configure_cache()

import numba  # noqa: E402  (must come after configure_cache)


def jit():
    """``numba.njit`` with sega's options (cached, nogil, NumPy error model, no fastmath)."""
    return numba.njit(cache=CACHE.enabled, nogil=True, error_model="numpy")


def scalar(function):
    """A scalar helper shared by several kernels; LLVM inlines it into each caller's loop."""
    return numba.njit(cache=CACHE.enabled, nogil=True, error_model="numpy")(function)
