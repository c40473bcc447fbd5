"""sega's own backend conformance suite (``sega_core.testing``) run on the cupy backend.

Through the ``impl`` fixture: on a CUDA GPU (skipped only without a CUDA device) and on the CPU
emulation of the backend's CUDA source. The checks compare every hook with the NumPy reference,
finite-difference the backward kernels, train small models and round-trip saved models.
"""

from __future__ import annotations

import pytest

from sega_core.testing import backend_checks

# The emulated backend is handed to the checks as an object, not registered as a plugin, so
# the check that looks it up in list_backends() cannot apply to it.
_NOT_FOR_EMULATION = {"backend_available": "the emulated backend is not a registered plugin"}


@pytest.mark.parametrize("check", backend_checks(), ids=lambda c: c.id)
def test_conformance(impl, backend, check):
    if not impl.is_gpu and check.name in _NOT_FOR_EMULATION:
        pytest.skip(_NOT_FOR_EMULATION[check.name])
    check(backend)
