"""Shared fixtures for the model tests (the NumPy reference backend unless a test says otherwise)."""

from __future__ import annotations

import importlib.util

import pytest

import sega_core
from sega_core.errors import BackendError

#: The array library each optional backend needs.
BACKEND_MODULES = {"numpy": "numpy", "numba": "numba", "cupy": "cupy"}


def _require_backend(name: str) -> None:
    """Skip when the backend's array library is not installed; otherwise the backend must work.

    (An installed library with a backend that refuses to run is a failure, not a skip: that is
    what these tests are for.)
    """
    module = BACKEND_MODULES[name]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed, so the {name} backend cannot run here")
    try:
        sega_core.get_backend(name)
    except BackendError as exc:
        pytest.fail(f"{module} is installed but the {name} backend cannot be used: {exc}")


@pytest.fixture
def require_backend():
    """``require_backend("numba")`` inside a test: skip or fail as described above."""
    return _require_backend
