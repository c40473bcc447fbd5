"""The conformance suite itself: its pytest API, and that it catches broken backends.

A suite that passes on the reference proves little; here deliberately broken backends (each
with one classic bug) must fail exactly the checks that should catch that bug.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from sega_core.testing import (
    backend_checks,
    parametrize_with_backend_checks,
    resolve_expected_failures,
)
from sega_core.testing.checks import HOOK_NAMES


def _run(name: str, backend: str):
    """Run every check called ``name`` (all dtypes) on ``backend``."""
    checks = [c for c in backend_checks() if c.name == name]
    assert checks, name
    for check in checks:
        check(backend)


def test_importing_sega_core_does_not_import_pytest_or_the_suite():
    code = "import sys, sega_core; print(sorted(m for m in ('pytest', 'sega_core.testing') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_suite_without_pytest_says_how_to_get_it():
    code = "import sys; sys.modules['pytest'] = None\nimport sega_core.testing"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "ImportError" in proc.stderr and "pip install pytest" in proc.stderr


def test_check_ids_are_unique_and_name_real_hooks():
    ids = [c.id for c in backend_checks()]
    assert len(ids) == len(set(ids))
    for check in backend_checks():
        assert check.hooks and set(check.hooks) <= set(HOOK_NAMES), check
        assert check.description, f"{check.id} has no description"


def test_expected_failures_by_id_name_or_hook():
    marked = resolve_expected_failures({"conv2d_backward": "not yet", "sega_rnn_backward": "nor this",
                                        "dense_forward-float32": "one dtype"})
    assert marked["conv2d_backward-float32"] == marked["conv2d_backward-float64"] == "not yet"
    assert marked["gradient_rnn"] == "nor this" and marked["rnn_backward-float64"] == "nor this"
    assert marked["dense_forward-float32"] == "one dtype" and "dense_forward-float64" not in marked
    assert set(resolve_expected_failures(["mse"])) == {"mse-float32", "mse-float64"}
    with pytest.raises(ValueError, match="conv2d_bakward"):
        resolve_expected_failures({"conv2d_bakward": "typo"})


def test_parametrize_marks_expected_failures():
    mark = parametrize_with_backend_checks("numpy", {"mse": "because"}, strict=True)
    assert mark.args[0] == ("check_id", "check")
    params = {p.id: p for p in mark.args[1]}
    assert set(params) == {c.id for c in backend_checks()}
    (xfail,) = params["mse-float32"].marks
    assert xfail.name == "xfail" and xfail.kwargs == {"reason": "because", "strict": True}
    assert params["mae-float32"].marks == ()
    check_id, bound = params["mae-float32"].values
    assert check_id == "mae-float32" and bound.backend_name == "numpy"
    bound()  # runs the check on numpy


def test_unusable_backend_fails_its_checks_not_collection():
    mark = parametrize_with_backend_checks("no-such-backend")
    _, bound = mark.args[1][0].values
    with pytest.raises(Exception, match="no-such-backend"):
        bound()


# ---- broken backends ---------------------------------------------------------------------------


def _relu_backward(dy, z, y):
    return dy * (z > 0)


BROKEN = {
    # name: (hooks, checks that must fail, a phrase the failure must contain)
    "promotes": (
        {"relu_forward": lambda z: np.maximum(z, 0).astype(np.float64), "relu_backward": _relu_backward},
        ["relu_forward"],
        "dtype",
    ),
    "mutates_input": (
        {"relu_forward": lambda z: np.maximum(z, 0, out=z), "relu_backward": _relu_backward},
        ["relu_forward"],
        "was modified",
    ),
    "sigmoid_on_output": (  # the original module's bug: derivative evaluated on z as if it were y
        {"sigmoid_forward": lambda z: 1 / (1 + np.exp(-z)), "sigmoid_backward": lambda dy, z, y: dy * z * (1 - z)},
        ["sigmoid_backward", "gradient_activations"],
        "",
    ),
    "naive_sigmoid": (  # overflows in exp for large negative z
        {"sigmoid_forward": lambda z: 1 / (1 + np.exp(-z)),
         "sigmoid_backward": lambda dy, z, y: dy * y * (1 - y)},
        ["sigmoid_forward"],
        "floating-point error",
    ),
    "accumulates": (
        {
            "dense_forward": lambda x, w, b: x @ w + b,
            "dense_backward": lambda dy, x, w, dw, db, need_dx: (
                dw.__iadd__(x.T @ dy), db.__iadd__(dy.sum(0)), dy @ w.T if need_dx else None)[2],
        },
        ["dense_backward"],
        "overwrite it instead",
    ),
    "rebinds": (
        {
            "dense_forward": lambda x, w, b: x @ w + b,
            "dense_backward": lambda dy, x, w, dw, db, need_dx: dy @ w.T,  # never writes dw/db
        },
        ["dense_backward", "gradient_dense"],
        "",  # dense_backward: "was not written"; gradient_dense: disagrees with finite differences
    ),
    "not_in_place": (
        {"sgd_update": lambda param, grad, velocity, lr, momentum, nesterov: param - lr * grad},
        ["sgd_update"],
        "in place",
    ),
    "float_loss": (
        {"mse": lambda pred, target: (float(((pred - target) ** 2).mean()), 2 * (pred - target) / pred.size)},
        ["mse"],
        "0-d array",
    ),
    "rnn_gradient_halved": (
        {
            "rnn_forward": lambda x, wx, wh, b, activation: __import__("sega_backend_numpy.rnn").rnn.sega_rnn_forward(
                x, wx, wh, b, activation),
            "rnn_backward": lambda dhs, x, wx, wh, hs, activation, ctx, dwx, dwh, db, need_dx: __import__(
                "sega_backend_numpy.rnn").rnn.sega_rnn_backward(dhs * 0.5, x, wx, wh, hs, activation, ctx, dwx, dwh, db,
                                                               need_dx),
        },
        ["rnn_backward", "gradient_rnn"],
        "",
    ),
    "rnn_scribbles_on_dhs": (  # the layer reuses dhs from batch to batch (hook API 1.1)
        {
            "rnn_forward": lambda x, wx, wh, b, activation: __import__("sega_backend_numpy.rnn").rnn.sega_rnn_forward(
                x, wx, wh, b, activation),
            "rnn_backward": lambda dhs, x, wx, wh, hs, activation, ctx, dwx, dwh, db, need_dx: (
                __import__("sega_backend_numpy.rnn").rnn.sega_rnn_backward(
                    dhs, x, wx, wh, hs, activation, ctx, dwx, dwh, db, need_dx), dhs.fill(7.0))[0],
        },
        ["rnn_backward"],
        "dhs (the layer reuses it) was modified",
    ),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_suite_catches_a_broken_backend(make_plugin, name, register_backend):
    hooks, failing, phrase = BROKEN[name]
    backend = f"broken_{name}"
    register_backend(make_plugin(backend, **hooks), backend)
    for check_name in failing:
        with pytest.raises(AssertionError) as info:
            _run(check_name, backend)
        assert phrase in str(info.value), str(info.value)
    # Checks of kernels it falls back on still pass.
    _run("tanh_forward", backend)
    _run("adam_update", backend)
