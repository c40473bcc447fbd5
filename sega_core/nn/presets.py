"""The fixed-backend model classes: the one model with its backend fixed, kept for code written
against the original three-class API."""

from __future__ import annotations

import importlib
import sys

from .model import NeuralNetwork


class _FixedBackend(NeuralNetwork):
    backend_name = ""

    def __init__(self, layers, **kwargs) -> None:
        given = kwargs.pop("backend", None)
        if given not in (None, self.backend_name):
            raise TypeError(f"{type(self).__name__} always runs on backend {self.backend_name!r}; use NeuralNetwork(backend=...)")
        super().__init__(layers, backend=self.backend_name, **kwargs)


class BaseBackendNeuralNetwork(_FixedBackend):
    """A :class:`NeuralNetwork` on the NumPy reference backend."""

    backend_name = "numpy"


class CuPyBackendNeuralNetwork(_FixedBackend):
    """A :class:`NeuralNetwork` on the CuPy (GPU) backend."""

    backend_name = "cupy"


class NumbaBackendNeuralNetwork(_FixedBackend):
    """A :class:`NeuralNetwork` on the Numba backend.

    ``compile_numba=True`` compiles the kernels this model's layers call now (showing progress on
    stderr), on every CPU the process may use, instead of at their first use, one at a time;
    compiled code is cached on disk, so later processes start fast either way.
    ``sega_backend_numba.compile.compile_all`` compiles every kernel.
    """

    backend_name = "numba"

    def __init__(self, layers, compile_numba: bool = False, **kwargs) -> None:
        super().__init__(layers, **kwargs)
        if compile_numba:
            compile_kernels(self.dtype.name, self.layers)


def compile_kernels(dtype: str, layers=None) -> None:
    """Compile the Numba backend's kernels for ``dtype`` eagerly, on every CPU the process may
    use, with a progress line: those ``layers`` call, or every kernel when ``layers`` is None."""
    compiler = importlib.import_module("sega_backend_numba.compile")
    groups = None if layers is None else compiler.groups_for(layers)
    interactive = sys.stderr.isatty()

    def progress(done, total, name):
        if interactive:
            end = "\n" if done == total else ""
            print(f"\rcompiling numba kernels {done}/{total} ({name})".ljust(70), end=end, file=sys.stderr, flush=True)

    compiler.compile_all(dtypes=(dtype,), progress=progress, groups=groups, jobs=None)
