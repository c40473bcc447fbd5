"""Run every conformance check on one backend: ``SEGA_TEST_BACKEND=name pytest --pyargs sega_core.testing``.

``SEGA_TEST_BACKEND`` names the backend (default ``numpy``); ``SEGA_TEST_EXPECTED_FAILURES``
lists checks (ids, names or hook names, comma-separated) to mark as expected failures.
"""

from __future__ import annotations

import os

from sega_core.testing import (
    BACKEND_ENV,
    EXPECTED_FAILURES_ENV,
    expected_failures_from_env,
    parametrize_with_backend_checks,
)

BACKEND = os.environ.get(BACKEND_ENV, "").strip() or "numpy"


@parametrize_with_backend_checks(BACKEND, expected_failures_from_env(os.environ.get(EXPECTED_FAILURES_ENV)))
def test_backend_conformance(check_id, check):
    """One conformance check on the backend named by SEGA_TEST_BACKEND."""
    check()
