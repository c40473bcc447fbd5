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

Why no ``parallel=True``: every kernel here runs between BLAS calls, and numba's thread pool
and OpenBLAS's are two different pools. After each parallel region numba's OpenMP workers keep
spinning (measured: 3.5-8 ms of CPU burnt per region on the 2-core development machine) while
OpenBLAS's threads want the same cores. Measured on a 64x16x28x28 batch, 3x3 kernel to 32
channels (forward + backward): im2col/col2im threaded with ``prange`` took 270 ms instead of
18.5 ms single-threaded with the OpenMP layer, and 17.6 ms instead of 15.0 ms with the
(non-spinning) workqueue layer. The loops here are memory-bound or short; the multi-threaded
part of every layer is its matrix products, in BLAS. ``NUMBA_NUM_THREADS`` therefore has no
effect on this backend (``OPENBLAS_NUM_THREADS`` and friends do).
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
