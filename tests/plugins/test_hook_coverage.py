"""Meta-tests: every hook of the contract is exercised by the conformance suite, and the suite
passes on every backend this repository ships (where it can run)."""

from __future__ import annotations

import pytest

from sega_core import hookspecs, list_backends
from sega_core.backends import KERNEL_HOOKS
from sega_core.testing import backend_checks, checks_by_hook, parametrize_with_backend_checks
from sega_core.testing.checks import HOOK_NAMES

#: Every hook specification, found independently of the suite's own list.
SPECS = sorted(
    name for name, obj in vars(hookspecs).items() if hasattr(obj, hookspecs.PROJECT_NAME + "_spec")
)

#: Checks known to fail on the in-repo backends (check id, name or hook -> reason). Keep empty:
#: a backend that fails its conformance checks is a bug to fix, not to list here.
EXPECTED_FAILURES: dict[str, dict[str, str]] = {"numpy": {}, "numba": {}, "cupy": {}}


def _status(name: str) -> tuple[str, str | None]:
    entry = next((b for b in list_backends() if b["name"] == name), None)
    if entry is None:
        return "missing", f"backend {name!r} is not installed"
    return entry["status"], entry["reason"]


def _skip_unless_available(name: str):
    status, reason = _status(name)
    return pytest.mark.skipif(status != "ok", reason=f"backend {name!r} is {status} here: {reason}")


def test_the_suite_knows_every_hook():
    assert sorted(HOOK_NAMES) == SPECS


@pytest.mark.parametrize("hook", SPECS)
def test_every_hook_has_a_check(hook):
    assert checks_by_hook()[hook], f"no conformance check exercises {hook}; add one to sega_core/testing/checks.py"


@pytest.mark.parametrize("hook", KERNEL_HOOKS)
def test_every_kernel_hook_has_its_own_check(hook):
    """Besides appearing in model-level checks, each kernel is compared on its own."""
    names = {c.name for c in backend_checks()}
    assert hook[len("sega_"):] in names


@parametrize_with_backend_checks("numpy", EXPECTED_FAILURES["numpy"], strict=True)
def test_conformance_numpy(check_id, check):
    check()


@_skip_unless_available("numba")
@parametrize_with_backend_checks("numba", EXPECTED_FAILURES["numba"], strict=True)
def test_conformance_numba(check_id, check):
    check()


@_skip_unless_available("cupy")
@parametrize_with_backend_checks("cupy", EXPECTED_FAILURES["cupy"], strict=True)
def test_conformance_cupy(check_id, check):
    check()
