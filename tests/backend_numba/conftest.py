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
