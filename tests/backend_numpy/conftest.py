"""Helpers for the NumPy reference backend's own tests: finite differences and a dtype spy.

The kernels are tested as plain functions taken from the resolved dispatch table (the same
objects the training loop calls), not through pluggy. Helpers are handed out as fixtures because
``--import-mode=importlib`` gives test folders no importable package for a shared module.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pytest

from sega_core import get_backend

#: Central-difference step for float64 checks: small enough for the truncation error (~h**2) to
#: vanish, large enough for the rounding error (~1e-16 / h) to stay well below the tolerance.
FD_STEP = 1e-6


def numerical_gradient(f: Callable[[], float], array: np.ndarray, step: float = FD_STEP) -> np.ndarray:
    """d f() / d array by central differences, perturbing ``array`` in place and restoring it."""
    grad = np.zeros(array.shape, dtype=np.float64)
    flat = array.reshape(-1)  # a view: perturbations reach the array f() reads
    assert np.shares_memory(flat, array)
    g = grad.reshape(-1)
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + step
        up = float(f())
        flat[i] = saved - step
        down = float(f())
        flat[i] = saved
        g[i] = (up - down) / (2 * step)
    return grad


def assert_gradient(analytic, numeric, what: str = "", rtol: float = 1e-6, atol: float = 1e-8) -> None:
    """Compare an analytic gradient with a numerical one, scaled by the larger of the two."""
    analytic = np.asarray(analytic, dtype=np.float64)
    scale = max(1.0, float(np.max(np.abs(numeric))) if numeric.size else 1.0)
    np.testing.assert_allclose(analytic, numeric, rtol=rtol, atol=atol * scale, err_msg=what)


class Float64Spy(np.ndarray):
    """An ndarray that records the dtype of every ufunc result computed from it.

    Wrapping a float32 kernel's inputs in this class and looking for float64 in
    :attr:`seen` catches silent promotion *inside* a kernel (a ``np.float64`` scalar, a
    float64 temporary), which checking only the returned dtype would miss. Best effort: results
    of non-ufunc functions (``np.where``, ``np.pad``) drop back to plain arrays, so what is
    computed from those afterwards is not seen.
    """

    seen: list[tuple[str, np.dtype]] = []

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        """Run the ufunc on plain arrays, record its result dtypes, re-wrap the results."""
        plain = [a.view(np.ndarray) if isinstance(a, Float64Spy) else a for a in inputs]
        out = kwargs.get("out")
        if out:
            kwargs["out"] = tuple(o.view(np.ndarray) if isinstance(o, Float64Spy) else o for o in out)
        result = getattr(ufunc, method)(*plain, **kwargs)
        results = result if isinstance(result, tuple) else (result,)
        for r in results:
            dtype = getattr(r, "dtype", None)
            if dtype is not None:
                Float64Spy.seen.append((f"{ufunc.__name__}.{method}", dtype))
        if out:
            # Hand back the caller's own out arrays, as numpy does.
            return out if isinstance(result, tuple) else out[0]
        wrapped = tuple(r.view(Float64Spy) if isinstance(r, np.ndarray) else r for r in results)
        return wrapped if isinstance(result, tuple) else wrapped[0]


@pytest.fixture(scope="session")
def kernels():
    """The NumPy backend's dispatch table."""
    return get_backend("numpy").kernels


@pytest.fixture(scope="session")
def backend():
    """The resolved NumPy backend."""
    return get_backend("numpy")


@pytest.fixture
def rng():
    """A fresh, seeded generator per test, so tests do not depend on their order."""
    return np.random.default_rng(20240611)


@pytest.fixture(scope="session")
def numgrad():
    """:func:`numerical_gradient`."""
    return numerical_gradient


@pytest.fixture(scope="session")
def check_grad():
    """:func:`assert_gradient`."""
    return assert_gradient


@pytest.fixture
def float64_spy():
    """:class:`Float64Spy`, its record emptied before the test; ``spy.promoted()`` lists offenders."""
    Float64Spy.seen = []

    class Spy:
        cls = Float64Spy

        @staticmethod
        def wrap(array: np.ndarray) -> np.ndarray:
            """``array`` as a spy (a view: the kernel still writes to the caller's memory)."""
            return array.view(Float64Spy)

        @staticmethod
        def promoted() -> list[str]:
            """Names of the ufunc calls that produced float64 since the test began."""
            return sorted({name for name, dtype in Float64Spy.seen if dtype == np.float64})

    yield Spy
    Float64Spy.seen = []
