"""The numba backward kernels against central finite differences of their forward kernels (float64)."""

from __future__ import annotations

import numpy as np
import pytest

EPS = 1e-6


def numerical_gradient(loss, array):
    """d loss / d array by central differences, perturbing ``array`` in place."""
    grad = np.zeros_like(array)
    flat, gflat = array.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        keep = flat[i]
        flat[i] = keep + EPS
        up = loss()
        flat[i] = keep - EPS
        down = loss()
        flat[i] = keep
        gflat[i] = (up - down) / (2 * EPS)
    return grad


@pytest.mark.parametrize("case", [(2, 3, 5, 6, 2, 3, 2, 1), (1, 2, 4, 4, 3, 3, 1, 2), (2, 1, 5, 3, 2, 1, 1, 0)])
def test_conv2d_backward_matches_finite_differences(nb, case):
    n, c, h, w, f, k, s, p = case
    rng = np.random.default_rng(10)
    x = rng.standard_normal((n, c, h, w))
    wt = rng.standard_normal((f, c, k, k))
    b = rng.standard_normal(f)
    y, ctx = nb.conv2d_forward(x, wt, b, s, p)
    r = rng.standard_normal(y.shape)

    def loss():
        """sum(y * r): its gradient with respect to y is r."""
        return float((nb.conv2d_forward(x, wt, b, s, p)[0] * r).sum())

    dw, db = np.empty_like(wt), np.empty_like(b)
    dx = nb.conv2d_backward(r.copy(), x, wt, s, p, ctx, dw, db, True)
    np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dw, numerical_gradient(loss, wt), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(db, numerical_gradient(loss, b), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu", "linear"])
@pytest.mark.parametrize("shape", [(2, 4, 3, 5), (1, 1, 2, 3)])
def test_rnn_backward_matches_finite_differences(nb, activation, shape):
    n, t, f, h = shape
    rng = np.random.default_rng(11)
    x = rng.standard_normal((n, t, f))
    wx = rng.standard_normal((f, h)) * 0.6
    wh = rng.standard_normal((h, h)) * 0.4
    b = rng.standard_normal(h) * 0.3
    hs, ctx = nb.rnn_forward(x, wx, wh, b, activation)
    r = rng.standard_normal(hs.shape)

    def loss():
        """sum(hs * r): its gradient with respect to hs is r."""
        return float((nb.rnn_forward(x, wx, wh, b, activation)[0] * r).sum())

    dwx, dwh, db = np.empty_like(wx), np.empty_like(wh), np.empty_like(b)
    dx = nb.rnn_backward(r.copy(), x, wx, wh, hs, activation, ctx, dwx, dwh, db, True)
    for analytic, array in ((dx, x), (dwx, wx), (dwh, wh), (db, b)):
        np.testing.assert_allclose(analytic, numerical_gradient(loss, array), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("op", ["maxpool2d", "avgpool2d"])
@pytest.mark.parametrize("case", [((2, 2, 7, 6), (3, 3), (2, 2), ((1, 1), (1, 1))),
                                  ((1, 2, 5, 7), (2, 3), (1, 2), ((0, 1), (1, 1)))])
def test_pooling_backward_matches_finite_differences(nb, op, case):
    shape, pool, stride, padding = case
    rng = np.random.default_rng(3)
    x = rng.permutation(np.arange(np.prod(shape), dtype=np.float64)).reshape(shape) / 10  # no ties
    forward = getattr(nb, f"{op}_forward")
    y, ctx = forward(x, pool, stride, padding)
    r = rng.standard_normal(y.shape)
    dx = getattr(nb, f"{op}_backward")(r, x, pool, stride, padding, ctx)
    expected = numerical_gradient(lambda: float((forward(x, pool, stride, padding)[0] * r).sum()), x)
    np.testing.assert_allclose(dx, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name, gates, extra", [("lstm", 4, ()), ("gru", 3, (True,)), ("gru", 3, (False,))])
@pytest.mark.parametrize("shape", [(2, 4, 3, 5), (1, 1, 2, 3)])
def test_gated_backward_matches_finite_differences(nb, name, gates, extra, shape):
    n, t, f, h = shape
    rng = np.random.default_rng(12)
    x = rng.standard_normal((n, t, f))
    params = [rng.standard_normal((f, gates * h)) * 0.6, rng.standard_normal((h, gates * h)) * 0.4]
    params += [rng.standard_normal(gates * h) * 0.3 for _ in range(1 if name == "lstm" else 2)]
    forward, backward = getattr(nb, f"{name}_forward"), getattr(nb, f"{name}_backward")
    hs, ctx = forward(x, *params, *extra)
    r = rng.standard_normal(hs.shape)

    def loss():
        """sum(hs * r): its gradient with respect to hs is r."""
        return float((forward(x, *params, *extra)[0] * r).sum())

    grads = [np.empty_like(p) for p in params]
    if name == "lstm":
        dx = backward(r.copy(), x, *params[:2], hs, ctx, *grads, True)
    else:
        dx = backward(r.copy(), x, *params, *extra, hs, ctx, *grads, True)
    for analytic, array in zip([dx, *grads], [x, *params]):
        np.testing.assert_allclose(analytic, numerical_gradient(loss, array), rtol=1e-5, atol=1e-7)
