"""Eager compilation (``compile_all``) and its progress callback."""

from __future__ import annotations

import pytest

from sega_backend_numba.compile import TASKS, compile_all


def test_compile_all_reports_progress():
    seen = []
    timings = compile_all(dtypes=("float32",), progress=lambda done, total, name: seen.append((done, total, name)))
    assert [s[0] for s in seen] == list(range(1, len(TASKS) + 1))
    assert {s[1] for s in seen} == {len(TASKS)}
    assert seen[0][2] == "conv2d float32"
    assert set(timings) == {name for _, _, name in seen}


def test_compile_all_refuses_other_dtypes():
    with pytest.raises(ValueError, match="float32 and float64"):
        compile_all(dtypes=("float16",))
