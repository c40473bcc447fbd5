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


class _CountingTeam:
    """A team whose ``run`` and ``run_jobs`` record how many parts each call had."""

    def __init__(self, team):
        self.team = team
        self.calls: list[int] = []

    def __getattr__(self, name):
        return getattr(self.team, name)

    def run(self, body, parts):
        self.calls.append(len(parts))
        return self.team.run(body, parts)

    def run_jobs(self, jobs, **options):
        self.calls.append(len(jobs))
        return self.team.run_jobs(jobs, **options)


@pytest.fixture
def split_everything(monkeypatch):
    """The backend's team replaced by a 3-thread one (whatever the machine's cores), with every
    work threshold at its lowest, so even tiny batches are split (raggedly) across threads.
    ``.calls`` lists the number of parts of each kernel's split."""
    from sega_backend_numba import _dense, _optimizers, _team

    crew = _CountingTeam(_team.Team(3, _team.BlasThreads()))
    monkeypatch.setattr(_team, "_team", crew)
    monkeypatch.setattr(_team, "MIN_MACS_PER_THREAD", 1)
    monkeypatch.setattr(_dense, "BLAS_SINGLE_THREADED_MACS", 0)
    monkeypatch.setattr(_optimizers, "MIN_ELEMENTS_PER_THREAD", 1)
    return crew


@pytest.fixture
def team_calls(monkeypatch):
    """The parts of every split made by the backend's own team during the test."""
    from sega_backend_numba import _team

    crew = _CountingTeam(_team.team())
    monkeypatch.setattr(_team, "_team", crew)
    return crew.calls
