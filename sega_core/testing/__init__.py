"""A conformance suite for sega backends, to run in a backend's own test suite.

Two ways to run it. From the command line, on any installed backend::

    SEGA_TEST_BACKEND=mybackend pytest --pyargs sega_core.testing

Or from a test module of your own, with the checks you know to fail marked::

    from sega_core.testing import parametrize_with_backend_checks

    @parametrize_with_backend_checks("mybackend", expected_failures={"rnn_backward": "BPTT not done yet"})
    def test_sega_conformance(check_id, check):
        check()

Every kernel hook is compared with the NumPy reference on random inputs of awkward shapes in
float32 and float64 (results of the input dtype, inputs left alone, gradient buffers overwritten
in place, optimizer state updated in place); backward kernels are checked against finite
differences of the backend's own forward kernels; small models must learn; a float64 training
run must follow the reference's; saved models must round trip between the backend and NumPy.
The checks themselves are plain functions in :mod:`sega_core.testing.checks` and need no pytest.

This package needs pytest, which is not a dependency of sega-core: ``pip install pytest``.
"""

from __future__ import annotations

try:
    import pytest
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "sega_core.testing is the backend conformance suite and needs pytest, which sega-core does "
        "not install; install it with: pip install pytest"
    ) from exc

from typing import Iterable, Mapping

from .checks import (
    DTYPES,
    HOOK_NAMES,
    TOLERANCES,
    BackendCheck,
    BoundCheck,
    backend_checks,
    checks_by_hook,
    describe_checks,
)

__all__ = [
    "BACKEND_ENV",
    "DTYPES",
    "EXPECTED_FAILURES_ENV",
    "HOOK_NAMES",
    "TOLERANCES",
    "BackendCheck",
    "BoundCheck",
    "backend_checks",
    "checks_by_hook",
    "describe_checks",
    "expected_failures_from_env",
    "parametrize_with_backend_checks",
    "resolve_expected_failures",
]

#: Environment variables read by the suite's own test module (``pytest --pyargs sega_core.testing``).
BACKEND_ENV = "SEGA_TEST_BACKEND"
EXPECTED_FAILURES_ENV = "SEGA_TEST_EXPECTED_FAILURES"


def resolve_expected_failures(
    expected_failures: Mapping[str, str] | Iterable[str] | None,
) -> dict[str, str]:
    """Map each check id to the reason it is expected to fail.

    Keys may be a check id (``"conv2d_backward-float32"``), a check name covering all its
    variants (``"conv2d_backward"``), or a hook name (``"sega_conv2d_backward"``: every check
    exercising that hook). A plain list of keys gets a generic reason. An unknown key raises
    ``ValueError``, so a typo cannot silently un-mark a failure.
    """
    if not expected_failures:
        return {}
    if not isinstance(expected_failures, Mapping):
        expected_failures = {key: "expected failure" for key in expected_failures}
    checks = backend_checks()
    out: dict[str, str] = {}
    for key, reason in expected_failures.items():
        matched = [c.id for c in checks if key in (c.id, c.name) or key in c.hooks]
        if not matched:
            raise ValueError(
                f"expected_failures names {key!r}, which is neither a check id, a check name nor a hook "
                f"name; check ids are: {', '.join(c.id for c in checks)}"
            )
        for check_id in matched:
            out.setdefault(check_id, str(reason))
    return out


def parametrize_with_backend_checks(
    backend_name: str,
    expected_failures: Mapping[str, str] | Iterable[str] | None = None,
    *,
    strict: bool = False,
):
    """A ``pytest.mark.parametrize`` over every conformance check for ``backend_name``.

    The decorated test takes ``check_id`` (a str) and ``check`` (call it with no arguments; it
    resolves the backend when run, so an unusable backend fails the checks rather than the
    collection). Checks named in ``expected_failures`` (see :func:`resolve_expected_failures`)
    are marked ``xfail`` with the reason given; ``strict=True`` makes one that passes an error,
    so a fixed kernel is noticed.
    """
    marked = resolve_expected_failures(expected_failures)
    params = []
    for check in backend_checks():
        marks = ()
        if check.id in marked:
            marks = (pytest.mark.xfail(reason=marked[check.id], strict=strict),)
        params.append(pytest.param(check.id, check.bind(backend_name), id=check.id, marks=marks))
    return pytest.mark.parametrize(("check_id", "check"), params)


def expected_failures_from_env(value: str | None) -> dict[str, str]:
    """Parse ``SEGA_TEST_EXPECTED_FAILURES``: comma-separated check ids, names or hook names."""
    keys = [k.strip() for k in (value or "").split(",") if k.strip()]
    return {k: f"listed in {EXPECTED_FAILURES_ENV}" for k in keys}
