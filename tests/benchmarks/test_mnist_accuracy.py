"""The MNIST accuracy benchmark compares like with like: its PyTorch models, given sega's initial
weights, compute the same probabilities as the sega models before any training."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from benchmarks import mnist_accuracy  # noqa: E402


@pytest.mark.parametrize("name", sorted(mnist_accuracy.MODELS))
def test_the_pytorch_twin_starts_from_the_sega_models_weights(name):
    import sega_core

    layers, shape = mnist_accuracy.MODELS[name][:2]
    model = sega_core.NeuralNetwork(layers(), backend="numpy", seed=0, input_shape=shape)
    net, forward = mnist_accuracy.TORCH[name](mnist_accuracy._initial_weights(name))
    net.eval()
    X = np.random.default_rng(1).random((5, 1, 28, 28), dtype=np.float32)
    with torch.no_grad():
        expected = torch.softmax(forward(torch.from_numpy(X)), dim=1).numpy()
    got = model.predict_proba(X.reshape((5, *shape)))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
