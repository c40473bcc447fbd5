"""The compute context: the BLAS libraries held to one thread for a whole train/predict/evaluate
call (hook ``sega_compute_context``).

The kernels share each batch out between numba's threads (:mod:`._parallel`), and each share
makes its own matrix products; a BLAS that threads those products too would run several
threads per core. So while any compute context is open, the BLAS libraries are held to one
thread. Setting the count is cheap, but flipping it around every kernel raced any other thread of
the user's that uses BLAS meanwhile; it is set once, when the first context opens, and restored
when the last one closes (contexts nest, and several threads may hold one at once: a ``predict``
in one thread while another trains).

Which libraries: numba's ``np.dot`` does not call NumPy's OpenBLAS but the BLAS that SciPy
exports through ``scipy.linalg.cython_blas`` (SciPy's wheels bundle an OpenBLAS of their own),
which is loaded only when numba first needs it. threadpoolctl can only limit libraries that are
already loaded: a limit set before SciPy's BLAS is loaded does not reach it, and every share's
product then runs as many threads as there are cores, on top of the shares' own threads
(``benchmarks/README.md`` has what that cost). So the context loads ``scipy.linalg.cython_blas`` before it looks for the libraries,
and holds every BLAS threadpoolctl finds (NumPy's, which the kernels still use for a few small
products, and SciPy's).
"""

from __future__ import annotations

import threading


def _find_blas() -> list:
    """threadpoolctl's controllers of every BLAS loaded in this process, SciPy's included."""
    import scipy.linalg.cython_blas  # noqa: F401  (loads the BLAS numba's np.dot calls)
    from threadpoolctl import ThreadpoolController

    return list(ThreadpoolController().select(user_api="blas").lib_controllers)


class BlasHold:
    """A re-entrant, thread-safe context manager that holds the BLAS libraries to one thread.

    The first entry (from any thread) saves each library's thread count and sets it to one;
    the last exit restores what was saved. ``find`` returns the libraries' controllers (objects
    with ``get_num_threads``/``set_num_threads``); it is called once, at the first entry.
    """

    def __init__(self, find=_find_blas):
        self._find = find
        self._controllers: list | None = None
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: list[int] = []

    @property
    def controllers(self) -> list:
        """The controllers of the libraries held (found at the first entry)."""
        if self._controllers is None:
            found = self._find()
            with self._lock:
                if self._controllers is None:
                    self._controllers = found
        return self._controllers

    @property
    def held(self) -> bool:
        """Whether some context is open (in any thread), so BLAS runs one thread per call."""
        return self._depth > 0

    def __enter__(self):
        controllers = self.controllers
        with self._lock:
            if self._depth == 0:
                self._saved = [c.get_num_threads() for c in controllers]
                for c, n in zip(controllers, self._saved):
                    if n != 1:
                        c.set_num_threads(1)
            self._depth += 1
        return self

    def __exit__(self, *exc):
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                for c, n in zip(self._controllers, self._saved):
                    if n != 1:
                        c.set_num_threads(n)
        return False


#: The process's one hold, shared by every model of this backend.
BLAS = BlasHold()


def compute_context() -> BlasHold:
    """The hook ``sega_compute_context``: the core enters it around train/predict/evaluate."""
    return BLAS
