"""A sigmoid head followed by pooling is applied once: the maxima and means of sigmoid outputs
are the model's probabilities, not logits for a second sigmoid (which kept such a model's
probabilities within [0.5, 0.73] and its accuracy at chance)."""

from __future__ import annotations

import numpy as np
import pytest

from sega_core import NeuralNetwork
from sega_core.nn.layers import AvgPool2D, Conv2D, Flatten, GlobalAvgPool2D, MaxPool2D


def _separable_images(n=200, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 1, 4, 4)) * 0.3
    X[:, 0, 1:3, 1:3] += np.where(y == 1, 1.5, -1.5)[:, None, None]
    return X, y


POOLED = {
    "max": lambda: [Conv2D(1, 3, activation="sigmoid"), MaxPool2D(2), Flatten()],
    "average": lambda: [Conv2D(1, 3, activation="sigmoid"), AvgPool2D(2), Flatten()],
    "global-average": lambda: [Conv2D(1, 3, activation="sigmoid"), GlobalAvgPool2D()],
}


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("pooling", sorted(POOLED))
def test_pooled_sigmoid_outputs_learn_separable_data(pooling, backend, require_backend):
    require_backend(backend)
    X, y = _separable_images()
    model = NeuralNetwork(POOLED[pooling](), backend=backend, seed=0, dtype="float64")
    model.train(X, y, epochs=60, batch_size=16, lr=0.05, verbose=0)
    assert model.evaluate(X, y)["accuracy"] >= 0.95


@pytest.mark.parametrize("pooling", sorted(POOLED))
def test_pooled_sigmoid_outputs_are_the_probabilities_and_the_loss_is_theirs(pooling):
    X, y = _separable_images(30)
    model = NeuralNetwork(POOLED[pooling](), backend="numpy", seed=1, dtype="float64")
    model.train(X, y, epochs=1, verbose=0)
    w, b = model.get_weights()
    windows = np.lib.stride_tricks.sliding_window_view(X[:, 0], (3, 3), axis=(1, 2))  # (N, 2, 2, 3, 3)
    sigmoids = 1 / (1 + np.exp(-(np.einsum("nijhw,hw->nij", windows, w[0, 0]) + b[0])))
    p = sigmoids.max(axis=(1, 2)) if pooling == "max" else sigmoids.mean(axis=(1, 2))
    np.testing.assert_allclose(model.predict_proba(X)[:, 1], p, rtol=1e-12)
    expected = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert model.evaluate(X, y)["loss"] == pytest.approx(expected, rel=1e-9)
