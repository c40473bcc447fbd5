"""Shared fixtures for the numba backend's tests: both kernel tables and a tolerance helper."""

from __future__ import annotations

import numpy as np
import pytest

import sega_core

@pytest.fixture(scope="session")
def nb():
    """The numba backend's kernel table, resolved through the real entry point."""
    return sega_core.get_backend("numba").kernels


@pytest.fixture(scope="session")
def ref():
    """The NumPy reference's kernel table."""
    return sega_core.get_backend("numpy").kernels


def tolerance(dtype) -> float:
    """Relative tolerance for comparing two implementations' results in ``dtype``."""
    return 2e-5 if np.dtype(dtype) == np.float32 else 1e-11


def _assert_close(got, want, dtype, scale_tol=1.0):
    """``got`` has ``dtype`` and agrees with ``want`` relative to its magnitude."""
    assert got.dtype == np.dtype(dtype), f"result dtype {got.dtype} != input dtype {np.dtype(dtype)}"
    assert got.shape == want.shape
    tol = tolerance(dtype) * scale_tol
    scale = max(1.0, float(np.abs(want).max())) if want.size else 1.0
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale)


@pytest.fixture(scope="session")
def close():
    """``close(got, want, dtype, scale_tol=1)``: assert dtype, shape and closeness."""
    return _assert_close


def _kernel_modules():
    import importlib
    import pkgutil

    import sega_backend_numba

    for info in pkgutil.iter_modules(sega_backend_numba.__path__):
        if info.name != "_parallel":
            yield importlib.import_module(f"sega_backend_numba.{info.name}")


@pytest.fixture
def parallel_calls(monkeypatch):
    """The number of shares of every kernel call that went through ``_parallel.run`` during the
    test (calls that stayed on the calling thread without it are not listed)."""
    from sega_backend_numba import _parallel

    calls: list[int] = []
    real = _parallel.run

    def counting(task, parts, *args):
        calls.append(parts)
        return real(task, parts, *args)

    for module in _kernel_modules():
        if getattr(module, "run", None) is real:
            monkeypatch.setattr(module, "run", counting)
    return calls


@pytest.fixture
def split_everything(monkeypatch, parallel_calls):
    """Every kernel shared out three ways (more shares than this machine may have cores, so the
    ranges are ragged), every work threshold at its lowest, inside a compute context (BLAS held
    to one thread). Returns the list of every call's number of shares."""
    import sega_core
    from sega_backend_numba import _dense, _optimizers, _parallel

    monkeypatch.setattr(_parallel, "MIN_WORK_PER_SHARE", 1)
    monkeypatch.setattr(_parallel, "thread_count", lambda: 3)
    monkeypatch.setattr(_dense, "BLAS_SINGLE_THREADED_MACS", 0)
    monkeypatch.setattr(_optimizers, "MIN_ELEMENTS_PER_THREAD", 1)
    with sega_core.get_backend("numba").compute_context():
        yield parallel_calls
