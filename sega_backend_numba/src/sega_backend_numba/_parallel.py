"""Sharing a kernel's batch out between threads, with numba's own machinery.

A kernel that is worth running on several cores is one compiled function whose outer loop is a
``numba.prange`` over *shares* of the batch, decorated with :func:`kernel`::

    @kernel
    def _thing(x, out, scratch, parts):
        for k in numba.prange(parts):             # one share per thread
            share = np.int64(k)                   # prange counts in uint64; int64 keeps indices exact
            lo, hi = span(share, x.shape[0], parts)
            ...                                   # compiled loops; np.dot(a, b, out) for products

    def thing(x):                                 # the hook implementation
        parts = shares(x.shape[0], work_per_sample)
        ...                                       # check every shape; allocate out and the scratch
        run(_thing, parts, x, out, scratch)

That is all a new kernel needs: no runner, no thread of its own. Each share works on its own
samples, writes only its own part of the outputs and its own scratch (``scratch[share]``,
allocated by the caller per calling thread, :mod:`._workspace`), and calls BLAS through numba's
``np.dot(a, b, out)`` on C- or Fortran-ordered arrays (numba copies any other layout). BLAS runs
one thread per call meanwhile (:mod:`._blas`), so there are never more busy threads than cores.

Rules a share must keep, because of how numba runs a ``prange`` loop:

* **It must not raise.** An exception raised in one of numba's worker threads is lost (the call
  returns as if nothing happened: a silent wrong result), and one raised in the calling thread
  comes back as a ``SystemError`` (measured with numba 0.68). So the Python wrapper checks every
  shape and index before the call, and the caller allocates the scratch. ``KeyboardInterrupt``
  is not an issue: Python raises it in the main thread when the compiled call returns.
* It must not launch another parallel region.

:func:`run` calls the kernel's parallel version, or its serial version (the same function
compiled without ``parallel=True``, so the loop runs its shares in turn on the calling thread,
compiled only if ever needed) where a parallel launch is unsafe:

* in a child process forked after the parent used GNU OpenMP (numba's ``omp`` threading layer
  on Linux): numba terminates such a child at its first parallel launch;
* with numba's ``workqueue`` layer (chosen when neither TBB nor OpenMP can be loaded), which
  aborts the process when two threads launch at once: one launch at a time, and a kernel that
  finds the layer busy runs its shares in turn instead of waiting.

Why one function rather than a compiled share called from a small parallel driver: numba builds
each compiled function's machine code together with that of every function it calls, so a
driver compiled its share's code over again; as one function a kernel is written once and
compiles a little faster (``benchmarks/README.md`` has the compile times).
"""

from __future__ import annotations

import os
import threading

import numba

from ._blas import BLAS
from ._jit import jit, parallel, serial

#: Work (multiply-adds, or element updates) a share must get for a split to pay: a parallel
#: launch costs some microseconds, and each share must be several times that.
MIN_WORK_PER_SHARE = 1 << 22

#: The threads a parallel region may use: numba's setting for the calling thread.
thread_count = numba.get_num_threads


@jit()
def span(k, n, parts):
    """``[lo, hi)``: share ``k`` of ``range(n)`` cut into ``parts`` near-equal contiguous ranges."""
    return k * n // parts, (k + 1) * n // parts


def shares(items: int, work_per_item: float, blas: bool = True, min_work: float | None = None) -> int:
    """How many shares to cut ``items`` into: one per thread of numba's (``NUMBA_NUM_THREADS``,
    or ``numba.set_num_threads``), each with at least :data:`MIN_WORK_PER_SHARE` of work, at
    most one per item. A kernel that calls BLAS (``blas``) is split only inside a compute
    context, where BLAS is held to one thread; outside, it runs on the calling thread."""
    if items < 2 or (blas and not BLAS.held):
        return 1
    least = MIN_WORK_PER_SHARE if min_work is None else min_work
    most = min(items, int(items * work_per_item // max(least, 1)))
    # Asked only when there is enough work to split: numba.get_num_threads() takes microseconds.
    return 1 if most < 2 else max(1, min(thread_count(), most))


_lock = threading.Lock()
_layer: str | None = None  # numba's threading layer, known after the first launch
_fork_unsafe = False


def _after_fork_in_child() -> None:
    global _fork_unsafe
    try:
        layer = numba.threading_layer()  # raises until some code of the parent's launched
    except ValueError:
        return
    if layer == "omp" and _omp_vendor() == "GNU":
        _fork_unsafe = True


def _omp_vendor() -> str:
    try:
        from numba.np.ufunc import omppool

        return omppool.openmp_vendor
    except (ImportError, AttributeError):  # pragma: no cover - depends on numba's build
        return "GNU"


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class Kernel:
    """A function whose ``numba.prange`` loop runs one share per thread (see the module's
    docstring): :attr:`parallel` is it compiled with ``parallel=True``; :attr:`serial` without,
    made on first use."""

    def __init__(self, function):
        self.function = function
        self.parallel = parallel()(function)
        self._serial = None

    @property
    def serial(self):
        """The kernel compiled without ``parallel=True``: its shares run in turn on the calling thread."""
        if self._serial is None:
            self._serial = serial()(self.function)
        return self._serial


def kernel(function) -> Kernel:
    """Decorate a kernel written as a ``numba.prange`` loop over shares (see the module's docstring)."""
    return Kernel(function)


def run(task: Kernel, parts: int, *args) -> None:
    """``task(*args, parts)``: its parallel version, or its serial one where a parallel launch is
    unsafe (see the module's docstring)."""
    global _layer
    if not _fork_unsafe:
        if _layer in ("omp", "tbb"):
            task.parallel(*args, parts)
            return
        # The layer is chosen at the first launch, and workqueue takes one launch at a time.
        if _lock.acquire(blocking=False):
            try:
                task.parallel(*args, parts)
                _layer = numba.threading_layer()
            finally:
                _lock.release()
            return
    task.serial(*args, parts)
