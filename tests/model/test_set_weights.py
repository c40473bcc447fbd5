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


def _normalised(seed):
    from sega_core import BatchNormalization, Dense, Normalization

    return NeuralNetwork([Normalization(), Dense(8, activation="relu"), BatchNormalization(), Dense(2, activation="softmax")],
                         seed=seed, input_shape=(4,))


def test_the_statistics_travel_with_the_weights_as_in_keras():
    rng = np.random.default_rng(0)
    data, labels = rng.normal(size=(64, 4)) * 10 + 50, rng.integers(0, 2, 64)
    source = _normalised(0)
    source.train(data, labels, epochs=3, batch_size=16, progress=False)
    weights = source.get_weights()
    # Normalization: mean, variance; Dense: W, b; BatchNormalization: gamma, beta, moving mean and variance.
    assert [w.shape for w in weights] == [(4,), (4,), (4, 8), (8,), (8,), (8,), (8,), (8,), (8, 2), (2,)]
    target = _normalised(1)
    target.set_weights(weights)
    np.testing.assert_array_equal(target.predict_proba(data), source.predict_proba(data))
    # The copy keeps its given statistics when it trains on (differently scaled) data.
    target.train(data / 10, labels, epochs=1, progress=False)
    np.testing.assert_array_equal(target.get_weights()[:2], weights[:2])


def test_trainable_only_weights_leave_the_statistics_alone():
    source, target = _normalised(0), _normalised(1)
    source.train(np.random.default_rng(0).normal(size=(32, 4)) + 5, [0, 1] * 16, epochs=1, progress=False)
    trainable = source.get_weights(trainable_only=True)
    assert len(trainable) == 6
    statistics = target.params.state_copy()
    target.set_weights(trainable)
    np.testing.assert_array_equal(target.params.state_copy(), statistics)
    for a, b in zip(target.get_weights(trainable_only=True), trainable):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(InputError, match=r"^set_weights needs 10 arrays \(or 6 without the state\), as get_weights returns, got 7$"):
        target.set_weights(trainable + [trainable[0]])
