"""Finite-difference gradient checks (float64, central differences, L2 on).

Every layer type x every activation x every loss: the analytic gradient returned by
``model._loss_and_grad`` (eval mode, L2 included) is compared with central differences of the
loss it returns, perturbing entries of the flat parameter buffer ``model.params.param``.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from sega_core import RNN, Conv2D, Dense, Dropout, Flatten, Huber, NeuralNetwork

EPS = 1e-6
REG = 0.1
N = 4  # samples per check
MAX_INDICES = 60  # parameters checked per model (all of them when the model is smaller)

ACTIVATIONS = ["sigmoid", "tanh", "relu", "leaky_relu", "softmax", "linear"]
RNN_ACTIVATIONS = ["tanh", "relu", "sigmoid", "linear"]

# loss id -> (loss_function, regressor, n_outputs, default output activation)
LOSSES = {
    "ce_int": ("cross_entropy", False, 3, "softmax"),
    "ce_onehot": ("cross_entropy", False, 3, "softmax"),
    "bce": ("bce_with_logits", False, 1, "sigmoid"),
    "mse": ("mse", True, 2, "linear"),
    "mae": ("mae", True, 2, "linear"),
    "huber": (Huber(0.3), True, 2, "linear"),  # residuals mostly in the linear part
    "huber_wide": (Huber(10.0), True, 2, "linear"),  # all residuals in the quadratic part
}


def _targets(loss_id: str, n_out: int, rng: np.random.Generator):
    if loss_id == "ce_int":
        return np.arange(N) % n_out
    if loss_id == "ce_onehot":
        return np.eye(n_out)[np.arange(N) % n_out]
    if loss_id == "bce":
        t = np.arange(N) % 2
        return t if n_out == 1 else rng.integers(0, 2, size=(N, n_out)).astype(float)
    # Regression targets far enough from the outputs that MAE's and Huber's kinks are not hit.
    return rng.normal(scale=2.0, size=(N, n_out))


def _hidden(kind: str, act: str) -> tuple[list, tuple]:
    """A tiny stack of hidden layers of ``kind`` using ``act``, and its per-sample input shape."""
    if kind == "dense":
        return [Dense(4, activation=act, alpha=0.2)], (3,)
    if kind == "conv":
        # Stride 2 and zero padding; two conv layers so the input gradient of a conv is exercised.
        return [
            Conv2D(2, kernel_size=3, stride=2, padding=1, activation=act, alpha=0.2),
            Conv2D(2, kernel_size=2, stride=1, padding=0, activation="tanh"),
            Flatten(),
        ], (2, 5, 5)
    if kind == "rnn_last":
        return [RNN(3, activation=act)], (4, 2)
    if kind == "rnn_seq":
        # return_sequences feeding a second RNN, then a sequence output flattened into Dense.
        return [RNN(3, activation=act, return_sequences=True), RNN(2, activation="tanh", return_sequences=True), Flatten()], (4, 2)
    if kind == "dropout_eval":
        return [Dense(4, activation=act, alpha=0.2), Dropout(0.5)], (3,)
    if kind == "flatten":
        return [Flatten(), Dense(4, activation=act, alpha=0.2)], (2, 3)
    raise AssertionError(kind)


def _model(hidden, input_shape, loss_id, out_act=None, n_out=None, seed=0):
    loss, regressor, default_out, default_act = LOSSES[loss_id]
    n_out = default_out if n_out is None else n_out
    layers = hidden + [Dense(n_out, activation=out_act or default_act, alpha=0.2)]
    return NeuralNetwork(
        layers,
        loss_function=loss,
        regressor=regressor,
        reg_lambda=REG,
        dtype="float64",
        seed=seed,
        input_shape=input_shape,
        backend="numpy",
    )


def check_gradient(model, X, y, rng, max_indices=MAX_INDICES):
    """Compare the analytic gradient with central differences; return the relative error."""
    assert model.params.param.dtype == np.float64
    loss, grad = model._loss_and_grad(X, y)
    assert np.isfinite(loss) and grad.shape == (model.params.size,)
    size = model.params.size
    if size <= max_indices:
        indices = np.arange(size)
    else:
        # A few from every parameter array (weights of each layer, then biases), rest at random.
        indices = np.unique(
            np.concatenate(
                [[o, o + n - 1] for _, _, o, n in model.params._layout] + [rng.choice(size, max_indices, replace=False)]
            )
        )
    param = model.params.param
    numeric = np.empty(len(indices))
    for j, i in enumerate(indices):
        old = param[i]
        param[i] = old + EPS
        plus, _ = model._loss_and_grad(X, y)
        param[i] = old - EPS
        minus, _ = model._loss_and_grad(X, y)
        param[i] = old
        numeric[j] = (plus - minus) / (2 * EPS)
    analytic = grad[indices]
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-8)
    rel = np.linalg.norm(analytic - numeric) / max(np.linalg.norm(analytic) + np.linalg.norm(numeric), 1e-12)
    assert rel < 1e-6, f"relative error {rel:.3g}"
    return rel


CASES = [
    (kind, act, loss_id)
    for kind in ("dense", "conv", "rnn_last", "rnn_seq", "dropout_eval", "flatten")
    for act in (RNN_ACTIVATIONS if kind.startswith("rnn") else ACTIVATIONS)
    for loss_id in LOSSES
]


@pytest.mark.parametrize(("kind", "act", "loss_id"), CASES, ids=["-".join(c) for c in CASES])
def test_gradient_layer_activation_loss(kind, act, loss_id):
    rng = np.random.default_rng(zlib.crc32(f"{kind}/{act}/{loss_id}".encode()))
    hidden, shape = _hidden(kind, act)
    model = _model(hidden, shape, loss_id)
    X = rng.normal(size=(N,) + shape)
    y = _targets(loss_id, model.n_outputs, rng)
    check_gradient(model, X, y, rng)


# Output activations other than the loss's default: the unfused and the logits paths.
HEADS = [
    ("mse", "softmax", 3),  # softmax output, MSE: softmax's own backward (unfused)
    ("huber", "sigmoid", 2),
    ("mae", "tanh", 2),
    ("mse", "relu", 2),
    ("mse", "leaky_relu", 2),
    ("ce_int", "linear", 3),  # linear output + CE: the loss sees logits
    ("ce_onehot", "linear", 3),
    ("ce_int", "tanh", 3),  # tanh outputs fed to the fused softmax
    ("bce", "linear", 1),  # linear output + BCE with logits
    ("bce", "sigmoid", 3),  # several independent sigmoid outputs (multi-label)
    ("bce", "relu", 1),
]


@pytest.mark.parametrize(("loss_id", "out_act", "n_out"), HEADS, ids=[f"{a}-{b}-{c}" for a, b, c in HEADS])
@pytest.mark.parametrize("kind", ["dense", "conv", "rnn_last"])
def test_gradient_output_heads(kind, loss_id, out_act, n_out):
    rng = np.random.default_rng(7)
    hidden, shape = _hidden(kind, "tanh")
    model = _model(hidden, shape, loss_id, out_act=out_act, n_out=n_out)
    X = rng.normal(size=(N,) + shape)
    y = _targets(loss_id, n_out, rng)
    check_gradient(model, X, y, rng)


def test_gradient_deeper_mixed_network():
    """Conv -> Flatten -> Dropout(eval) -> Dense -> Dense, all parameters checked."""
    rng = np.random.default_rng(3)
    model = NeuralNetwork(
        [
            Conv2D(3, kernel_size=3, stride=2, padding=1, activation="leaky_relu", alpha=0.05),
            Flatten(),
            Dropout(0.3),
            Dense(5, activation="sigmoid"),
            Dense(4, activation="softmax"),
        ],
        reg_lambda=0.05,
        dtype="float64",
        seed=1,
        input_shape=(1, 6, 6),
        backend="numpy",
    )
    X = rng.normal(size=(5, 1, 6, 6))
    y = np.array([0, 1, 2, 3, 1])
    check_gradient(model, X, y, rng, max_indices=10_000)


def test_gradient_from_sizes_list_with_dropout_and_l2():
    """The sizes-list constructor (ReLU hidden layers, Dropout between them) in eval mode."""
    rng = np.random.default_rng(4)
    model = NeuralNetwork([5, 6, 4, 3], dropout_rate=0.4, reg_lambda=0.2, dtype="float64", seed=2, backend="numpy")
    assert any(isinstance(layer, Dropout) for layer in model.layers)
    X = rng.normal(size=(6, 5))
    y = rng.integers(0, 3, size=6)
    check_gradient(model, X, y, rng, max_indices=10_000)


def test_l2_term_in_loss_and_gradient():
    """Loss and gradient with L2 equal those without plus 0.5*lam*|W|^2 and lam*W (weights only)."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(6, 3))
    y = rng.integers(0, 3, size=6)
    plain = NeuralNetwork([3, 4, 3], dtype="float64", seed=9, backend="numpy")
    reg = NeuralNetwork([3, 4, 3], dtype="float64", seed=9, reg_lambda=0.3, backend="numpy")
    l0, g0 = plain._loss_and_grad(X, y)
    l1, g1 = reg._loss_and_grad(X, y)
    flat = reg.params.param
    nw = reg.params.n_weights
    weights = np.concatenate([w.ravel() for w in reg.get_weights() if w.ndim == 2])
    assert nw == weights.size  # biases are not regularised
    assert l1 == pytest.approx(l0 + 0.5 * 0.3 * float(weights @ weights), rel=1e-12)
    np.testing.assert_allclose(g1[:nw], g0[:nw] + 0.3 * flat[:nw], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(g1[nw:], g0[nw:], rtol=1e-12, atol=1e-15)


def test_gradient_is_a_copy_and_repeatable():
    rng = np.random.default_rng(6)
    model = NeuralNetwork([3, 4, 2], dtype="float64", seed=0, reg_lambda=0.1, backend="numpy")
    X, y = rng.normal(size=(5, 3)), np.array([0, 1, 0, 1, 1])
    l1, g1 = model._loss_and_grad(X, y)
    saved = g1.copy()
    l2, g2 = model._loss_and_grad(X, y)
    assert l1 == l2
    np.testing.assert_array_equal(g1, saved)
    np.testing.assert_array_equal(g1, g2)
