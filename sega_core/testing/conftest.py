"""pytest hooks for the conformance suite's own test module (``pytest --pyargs sega_core.testing``)."""

from __future__ import annotations

import os

from sega_core.testing import BACKEND_ENV, EXPECTED_FAILURES_ENV


def pytest_report_header(config):
    """Say which backend the suite is checking, so a green run cannot be mistaken for another's."""
    backend = os.environ.get(BACKEND_ENV, "").strip() or "numpy"
    line = f"sega conformance suite: backend {backend!r} (set {BACKEND_ENV} to choose)"
    failures = os.environ.get(EXPECTED_FAILURES_ENV, "").strip()
    return [line] + ([f"expected failures: {failures}"] if failures else [])
