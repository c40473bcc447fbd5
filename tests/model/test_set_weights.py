"""``set_weights`` takes what ``get_weights`` gives (and the same arrays from other frameworks), and
refuses anything else in one line before writing a value."""

from __future__ import annotations

import numpy as np
import pytest

from sega_core import InputError, NeuralNetwork

X = np.random.default_rng(0).normal(size=(6, 3))


def _model(seed, dtype="float32"):
    return NeuralNetwork([3, 4, 2], seed=seed, dtype=dtype)


def test_weights_carry_a_model_over():
    source, target = _model(0), _model(1)
    target.set_weights(source.get_weights())
    np.testing.assert_array_equal(target.predict_proba(X), source.predict_proba(X))


def test_tensors_and_lists_are_weights_too():
    torch = pytest.importorskip("torch")
    source = _model(0)
    for convert in (torch.from_numpy, np.ndarray.tolist):
        target = _model(1)
        target.set_weights([convert(w) for w in source.get_weights()])
        np.testing.assert_array_equal(target.predict_proba(X), source.predict_proba(X))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda w: 3, "a list of arrays (as get_weights returns), got int"),
        (lambda w: w[:-1], "needs 4 arrays"),
        (lambda w: [w[0].T] + w[1:], "weight 0 (W of layer 0) must have shape (3, 4), got (4, 3)"),
        (lambda w: w[:3] + [np.array([np.nan, 0.0])], "weight 3 (b of layer 1) must hold finite numbers"),
        (lambda w: [np.full((3, 4), 1e300)] + w[1:], "beyond float32's range"),
    ],
    ids=["not-a-list", "count", "shape", "nan", "beyond-float32"],
)
def test_bad_weights_are_refused_and_change_nothing(change, message):
    model = _model(0)
    before = model.get_weights()
    with pytest.raises(InputError) as info:
        model.set_weights(change(model.get_weights()))
    assert message in str(info.value) and "\n" not in str(info.value)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_float64_model_takes_what_float32_cannot_hold():
    model = _model(0, dtype="float64")
    weights = model.get_weights()
    weights[0] = np.full((3, 4), 1e300)
    model.set_weights(weights)
    assert model.get_weights()[0][0, 0] == 1e300
