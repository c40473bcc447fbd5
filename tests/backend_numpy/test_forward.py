"""Forward values of the NumPy backend against straightforward reference formulas.

The references are written the slow, obvious way (Python loops over output pixels and time
steps, ``math.exp`` row by row) so that they share no code, and no vectorisation trick, with the
kernels they check.
"""

from __future__ import annotations

import math

import numpy as np
import pytest


def naive_conv2d(x, w, b, stride, padding):
    """Cross-correlation, one output element at a time."""
    n, c, h, w_in = x.shape
    f, _, k, _ = w.shape
    xp = np.zeros((n, c, h + 2 * padding, w_in + 2 * padding))
    xp[:, :, padding : padding + h, padding : padding + w_in] = x
    ho = (h + 2 * padding - k) // stride + 1
    wo = (w_in + 2 * padding - k) // stride + 1
    y = np.zeros((n, f, ho, wo))
    for i in range(n):
        for o in range(f):
            for r in range(ho):
                for s in range(wo):
                    window = xp[i, :, r * stride : r * stride + k, s * stride : s * stride + k]
                    y[i, o, r, s] = float((window * w[o]).sum()) + b[o]
    return y


ACT = {
    "tanh": math.tanh,
    "relu": lambda a: max(a, 0.0),
    "sigmoid": lambda a: 1.0 / (1.0 + math.exp(-a)),
    "linear": lambda a: a,
}


def naive_rnn(x, wx, wh, b, activation):
    """The Elman recurrence, one sample, one step and one unit at a time."""
    n, t, f = x.shape
    hidden = wh.shape[0]
    hs = np.zeros((n, t, hidden))
    for i in range(n):
        h = [0.0] * hidden
        for step in range(t):
            new = []
            for j in range(hidden):
                a = b[j]
                a += sum(x[i, step, q] * wx[q, j] for q in range(f))
                a += sum(h[q] * wh[q, j] for q in range(hidden))
                new.append(ACT[activation](a))
            h = new
            hs[i, step] = h
    return hs


def test_dense_forward(kernels, rng):
    x, w, b = rng.normal(size=(3, 4)), rng.normal(size=(4, 2)), rng.normal(size=2)
    expected = np.array([[sum(x[i, k] * w[k, j] for k in range(4)) + b[j] for j in range(2)] for i in range(3)])
    np.testing.assert_allclose(kernels.dense_forward(x, w, b), expected, rtol=1e-12)


@pytest.mark.parametrize(
    "shape, filters, k, stride, padding",
    [
        ((2, 3, 5, 7), 5, 3, 1, 0),
        ((2, 3, 5, 7), 5, 3, 2, 1),
        ((1, 1, 6, 4), 3, 3, 2, 2),
        ((2, 2, 7, 7), 1, 1, 1, 0),
        ((1, 3, 8, 5), 2, 2, 2, 0),
        ((1, 3, 9, 9), 4, 3, 3, 1),
        ((3, 1, 4, 4), 2, 4, 1, 0),  # kernel as large as the image: a 1x1 output
    ],
)
def test_conv2d_forward_matches_a_naive_loop(kernels, rng, shape, filters, k, stride, padding):
    x = rng.normal(size=shape)
    w = rng.normal(size=(filters, shape[1], k, k))
    b = rng.normal(size=filters)
    y, _ = kernels.conv2d_forward(x, w, b, stride, padding)
    expected = naive_conv2d(x, w, b, stride, padding)
    assert y.shape == expected.shape
    assert y.flags.c_contiguous
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("steps", [1, 5])
@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid", "linear"])
def test_rnn_forward_matches_a_naive_loop(kernels, rng, activation, steps):
    x = rng.normal(size=(2, steps, 3))
    wx, wh, b = rng.normal(size=(3, 4)), rng.normal(scale=0.5, size=(4, 4)), rng.normal(size=4)
    hs, _ = kernels.rnn_forward(x, wx, wh, b, activation)
    assert hs.shape == (2, steps, 4) and hs.flags.c_contiguous
    np.testing.assert_allclose(hs, naive_rnn(x, wx, wh, b, activation), rtol=1e-10, atol=1e-12)


def test_rnn_forward_rejects_an_unknown_activation(kernels, rng):
    x = rng.normal(size=(1, 2, 3))
    with pytest.raises(ValueError, match="softsign"):
        kernels.rnn_forward(x, np.ones((3, 2)), np.ones((2, 2)), np.zeros(2), "softsign")


# ---- activations ----------------------------------------------------------------------------


def test_activation_forwards_match_their_formulas(kernels, rng):
    z = rng.normal(scale=3.0, size=(4, 5))
    expected_sigmoid = np.vectorize(lambda a: 1.0 / (1.0 + math.exp(-a)))(z)
    np.testing.assert_allclose(kernels.sigmoid_forward(z), expected_sigmoid, rtol=1e-13)
    np.testing.assert_allclose(kernels.tanh_forward(z), np.vectorize(math.tanh)(z), rtol=1e-13)
    np.testing.assert_array_equal(kernels.relu_forward(z), np.where(z > 0, z, 0.0))
    np.testing.assert_allclose(kernels.leaky_relu_forward(z, 0.2), np.where(z > 0, z, 0.2 * z))
    np.testing.assert_array_equal(kernels.linear_forward(z), z)
    rows = [[math.exp(v) for v in row] for row in z]
    expected_softmax = np.array([[e / sum(row) for e in row] for row in rows])
    np.testing.assert_allclose(kernels.softmax_forward(z), expected_softmax, rtol=1e-12)


def test_activation_backwards_match_their_formulas(kernels, rng):
    z = rng.normal(size=(3, 4))
    dy = rng.normal(size=(3, 4))
    y = kernels.sigmoid_forward(z)
    np.testing.assert_allclose(kernels.sigmoid_backward(dy, z, y), dy * y * (1 - y))
    y = np.tanh(z)
    np.testing.assert_allclose(kernels.tanh_backward(dy, z, y), dy * (1 - y**2))
    np.testing.assert_array_equal(kernels.relu_backward(dy, z, np.maximum(z, 0)), np.where(z > 0, dy, 0.0))
    np.testing.assert_allclose(kernels.leaky_relu_backward(dy, z, None, 0.3), np.where(z > 0, dy, 0.3 * dy))
    np.testing.assert_array_equal(kernels.linear_backward(dy, z, z), dy)


def test_relu_derivative_at_zero_is_zero(kernels):
    z = np.zeros(3)
    np.testing.assert_array_equal(kernels.relu_backward(np.ones(3), z, z), np.zeros(3))


def test_extreme_inputs_neither_overflow_nor_warn(kernels):
    z = np.array([[-1000.0, -50.0, 0.0, 50.0, 1000.0]])
    # Underflow to 0 is the right answer far out in the tails; anything else is a bug.
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        s = kernels.sigmoid_forward(z)
        p = kernels.softmax_forward(z)
        loss, grad = kernels.softmax_cross_entropy(z, np.array([0]), None)
        bce, bgrad = kernels.bce_with_logits(z, np.array([[1.0, 0.0, 1.0, 0.0, 1.0]]), None)
    np.testing.assert_allclose(s, [[0.0, math.exp(-50) / (1 + math.exp(-50)), 0.5, 1 / (1 + math.exp(-50)), 1.0]])
    np.testing.assert_allclose(p.sum(axis=-1), 1.0)
    assert p[0, -1] == pytest.approx(1.0)
    assert float(loss) == pytest.approx(2000.0)  # -log_softmax(z)[0] = 1000 - (-1000)
    assert np.isfinite(grad).all() and np.isfinite(bgrad).all()
    # Only the wrongly classified extremes cost anything: l=-1000 with t=1 (1000), l=50 with t=0 (50).
    assert float(bce) == pytest.approx((1000.0 + 50.0 + math.log(2)) / 5, rel=1e-12)


# ---- losses ---------------------------------------------------------------------------------


def _softmax_rows(logits):
    out = []
    for row in logits:
        e = [math.exp(v) for v in row]
        out.append([v / sum(e) for v in e])
    return np.array(out)


def test_softmax_cross_entropy_value(kernels, rng):
    logits = rng.normal(size=(6, 4))
    target = rng.integers(0, 4, size=6)
    p = _softmax_rows(logits)
    expected = -sum(math.log(p[i, target[i]]) for i in range(6)) / 6
    loss, grad = kernels.softmax_cross_entropy(logits, target, None)
    assert isinstance(loss, np.ndarray) and loss.ndim == 0
    assert float(loss) == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(grad, (p - np.eye(4)[target]) / 6, atol=1e-15)
    # One-hot rows are the same loss; int32 labels too.
    loss_oh, grad_oh = kernels.softmax_cross_entropy(logits, np.eye(4)[target], None)
    assert float(loss_oh) == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(grad_oh, grad, atol=1e-15)
    loss32, _ = kernels.softmax_cross_entropy(logits, target.astype(np.int32), None)
    assert float(loss32) == pytest.approx(expected, rel=1e-12)


def test_bce_with_logits_value(kernels, rng):
    logits = rng.normal(scale=2.0, size=(5, 2))
    target = rng.uniform(size=(5, 2))
    sig = 1.0 / (1.0 + np.exp(-logits))
    expected = float(np.mean(-(target * np.log(sig) + (1 - target) * np.log(1 - sig))))
    loss, grad = kernels.bce_with_logits(logits, target, None)
    assert loss.ndim == 0
    assert float(loss) == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(grad, (sig - target) / 10, rtol=1e-12)


def test_regression_loss_values(kernels, rng):
    pred, target = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    r = (pred - target).ravel()
    loss, _ = kernels.mse(pred, target, None)
    assert float(loss) == pytest.approx(sum(v * v for v in r) / 12, rel=1e-12)
    loss, grad = kernels.mae(pred, target, None)
    assert float(loss) == pytest.approx(sum(abs(v) for v in r) / 12, rel=1e-12)
    np.testing.assert_array_equal(grad, np.sign(pred - target) / 12)
    delta = 0.5

    def huber(v):
        return 0.5 * v * v if abs(v) <= delta else delta * (abs(v) - 0.5 * delta)

    loss, grad = kernels.huber(pred, target, delta, None)
    assert float(loss) == pytest.approx(sum(huber(v) for v in r) / 12, rel=1e-12)
    np.testing.assert_allclose(grad, np.clip(pred - target, -delta, delta) / 12)


def test_mae_gradient_is_zero_where_the_residual_is(kernels):
    pred = np.array([[1.0, 2.0, 3.0]])
    _, grad = kernels.mae(pred, pred.copy(), None)
    np.testing.assert_array_equal(grad, 0.0)


# ---- dropout --------------------------------------------------------------------------------


def test_dropout_forward(kernels, backend, rng):
    x = rng.normal(size=(200, 50))
    rate = 0.3
    y, mask = kernels.dropout_forward(x, rate, backend.make_rng(7))
    assert mask.shape == x.shape and mask.dtype == x.dtype
    np.testing.assert_array_equal(y, x * mask)
    assert set(np.unique(mask)) <= {0.0, 1.0 / (1.0 - rate)}
    assert abs((mask == 0).mean() - rate) < 0.02  # 10,000 draws: about 5 standard deviations
    # The same seed gives the same mask; a different one does not.
    _, again = kernels.dropout_forward(x, rate, backend.make_rng(7))
    np.testing.assert_array_equal(mask, again)
    _, other = kernels.dropout_forward(x, rate, backend.make_rng(8))
    assert not np.array_equal(mask, other)


def test_dropout_rate_zero_keeps_everything(kernels, backend, rng):
    x = rng.normal(size=(5, 5))
    y, mask = kernels.dropout_forward(x, 0.0, backend.make_rng(0))
    np.testing.assert_array_equal(mask, 1.0)
    np.testing.assert_array_equal(y, x)
