"""Every backward kernel of the NumPy backend against central finite differences, in float64.

Each layer is turned into a scalar ``L = sum(forward(...) * R)`` for a fixed random ``R``; the
backward kernel given ``dy = R`` must return dL/d(input) and write dL/d(parameter). Losses are
scalars already: their ``grad`` must be d(mean loss)/d(input). Inputs are kept away from the
kinks of ReLU, MAE and Huber, where a finite difference straddles two slopes.
"""

from __future__ import annotations

import numpy as np
import pytest

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "softmax", "linear")
RNN_ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")


def away_from_zero(rng, shape, low=0.1, high=2.0):
    """Random values with ``low <= |v| <= high``: no finite difference crosses the kink at 0."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(low, high, size=shape)


# ---- layers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("need_dx", [True, False])
def test_dense_backward_matches_finite_differences(kernels, rng, numgrad, check_grad, need_dx):
    x = rng.normal(size=(3, 4))
    w = rng.normal(size=(4, 5))
    b = rng.normal(size=5)
    r = rng.normal(size=(3, 5))

    def loss():
        return (kernels.dense_forward(x, w, b) * r).sum()

    dw = np.full_like(w, np.nan)
    db = np.full_like(b, np.nan)
    dx = kernels.dense_backward(r.copy(), x, w, dw, db, need_dx)
    check_grad(dw, numgrad(loss, w), "dw")
    check_grad(db, numgrad(loss, b), "db")
    if need_dx:
        check_grad(dx, numgrad(loss, x), "dx")
    else:
        assert dx is None


@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (1, 1, 6, 4)], ids=["N2C3-5x7", "N1C1-6x4"])
@pytest.mark.parametrize("padding", [0, 1, 2])
@pytest.mark.parametrize("stride", [1, 2])
def test_conv2d_backward_matches_finite_differences(kernels, rng, numgrad, check_grad, shape, stride, padding):
    n, c, h, w_ = shape
    filters, k = 5, 3  # odd channel counts on both sides
    x = rng.normal(size=shape)
    w = rng.normal(size=(filters, c, k, k))
    b = rng.normal(size=filters)
    y, ctx = kernels.conv2d_forward(x, w, b, stride, padding)
    r = rng.normal(size=y.shape)

    def loss():
        return (kernels.conv2d_forward(x, w, b, stride, padding)[0] * r).sum()

    dw = np.full_like(w, np.nan)
    db = np.full_like(b, np.nan)
    dx = kernels.conv2d_backward(r.copy(), x, w, stride, padding, ctx, dw, db, True)
    assert dx.shape == x.shape
    check_grad(dx, numgrad(loss, x), "dx")
    check_grad(dw, numgrad(loss, w), "dw")
    check_grad(db, numgrad(loss, b), "db")


def test_conv2d_backward_without_ctx_recomputes_it(kernels, rng):
    """``ctx`` is the backend's own business; the reference must cope with ``None`` too."""
    x = rng.normal(size=(2, 3, 6, 5))
    w = rng.normal(size=(4, 3, 3, 3))
    b = rng.normal(size=4)
    y, ctx = kernels.conv2d_forward(x, w, b, 2, 1)
    dy = rng.normal(size=y.shape)
    dw1, db1, dw2, db2 = (np.empty_like(a) for a in (w, b, w, b))
    dx1 = kernels.conv2d_backward(dy.copy(), x, w, 2, 1, ctx, dw1, db1, True)
    dx2 = kernels.conv2d_backward(dy.copy(), x, w, 2, 1, None, dw2, db2, True)
    np.testing.assert_allclose(dx1, dx2)
    np.testing.assert_allclose(dw1, dw2)
    np.testing.assert_allclose(db1, db2)


def test_conv2d_backward_need_dx_false_still_writes_parameter_gradients(kernels, rng):
    x = rng.normal(size=(2, 3, 5, 5))
    w = rng.normal(size=(2, 3, 3, 3))
    b = rng.normal(size=2)
    y, ctx = kernels.conv2d_forward(x, w, b, 1, 1)
    dw = np.full_like(w, np.nan)
    db = np.full_like(b, np.nan)
    assert kernels.conv2d_backward(np.ones_like(y), x, w, 1, 1, ctx, dw, db, False) is None
    assert np.isfinite(dw).all() and np.isfinite(db).all()
    np.testing.assert_allclose(db, y[0, 0].size * 2 * np.ones(2))


@pytest.mark.parametrize("steps", [1, 5])
@pytest.mark.parametrize("activation", RNN_ACTIVATIONS)
def test_rnn_backward_matches_finite_differences(kernels, rng, numgrad, check_grad, activation, steps):
    n, f, hidden = 2, 3, 4
    x = rng.normal(size=(n, steps, f))
    wx = rng.normal(scale=0.6, size=(f, hidden))
    wh = rng.normal(scale=0.6, size=(hidden, hidden))
    b = rng.normal(scale=0.3, size=hidden)
    r = rng.normal(size=(n, steps, hidden))

    def loss():
        return (kernels.rnn_forward(x, wx, wh, b, activation)[0] * r).sum()

    hs, ctx = kernels.rnn_forward(x, wx, wh, b, activation)
    dwx, dwh, db = np.full_like(wx, np.nan), np.full_like(wh, np.nan), np.full_like(b, np.nan)
    dx = kernels.rnn_backward(r.copy(), x, wx, wh, hs, activation, ctx, dwx, dwh, db, True)
    assert dx.shape == x.shape
    check_grad(dx, numgrad(loss, x), f"dx ({activation}, T={steps})")
    check_grad(dwx, numgrad(loss, wx), f"dwx ({activation}, T={steps})")
    check_grad(dwh, numgrad(loss, wh), f"dwh ({activation}, T={steps})")
    check_grad(db, numgrad(loss, b), f"db ({activation}, T={steps})")


def test_rnn_backward_last_state_only(kernels, rng, numgrad, check_grad):
    """The common case: only the last state feeds the next layer (``dhs`` zero elsewhere)."""
    x = rng.normal(size=(3, 4, 2))
    wx, wh, b = rng.normal(size=(2, 3)), rng.normal(scale=0.5, size=(3, 3)), rng.normal(size=3)
    r = np.zeros((3, 4, 3))
    r[:, -1] = rng.normal(size=(3, 3))

    def loss():
        return (kernels.rnn_forward(x, wx, wh, b, "tanh")[0] * r).sum()

    hs, ctx = kernels.rnn_forward(x, wx, wh, b, "tanh")
    dwx, dwh, db = np.empty_like(wx), np.empty_like(wh), np.empty_like(b)
    assert kernels.rnn_backward(r.copy(), x, wx, wh, hs, "tanh", ctx, dwx, dwh, db, False) is None
    check_grad(dwh, numgrad(loss, wh), "dwh")
    check_grad(dwx, numgrad(loss, wx), "dwx")


def test_dropout_backward_is_the_gradient_given_the_mask(kernels, rng, numgrad, check_grad):
    x = rng.normal(size=(4, 6))
    _, mask = kernels.dropout_forward(x, 0.4, np.random.default_rng(3))
    r = rng.normal(size=x.shape)

    def loss():
        # The mask is fixed once drawn: the forward is then the linear map x -> x * mask.
        return (x * mask * r).sum()

    check_grad(kernels.dropout_backward(r.copy(), mask), numgrad(loss, x), "dx")


# ---- activations ----------------------------------------------------------------------------


def _forward(kernels, name, z):
    if name == "leaky_relu":
        return kernels.leaky_relu_forward(z, 0.07)
    return getattr(kernels, f"{name}_forward")(z)


def _backward(kernels, name, dy, z, y):
    if name == "leaky_relu":
        return kernels.leaky_relu_backward(dy, z, y, 0.07)
    return getattr(kernels, f"{name}_backward")(dy, z, y)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_backward_matches_finite_differences(kernels, rng, numgrad, check_grad, name):
    z = away_from_zero(rng, (3, 6), high=3.0)
    r = rng.normal(size=z.shape)

    def loss():
        return (_forward(kernels, name, z) * r).sum()

    y = _forward(kernels, name, z).copy()
    check_grad(_backward(kernels, name, r.copy(), z, y), numgrad(loss, z), name)


def test_softmax_backward_on_3d_input_uses_the_last_axis(kernels, rng, numgrad, check_grad):
    z = rng.normal(size=(2, 3, 4))
    r = rng.normal(size=z.shape)

    def loss():
        return (kernels.softmax_forward(z) * r).sum()

    y = kernels.softmax_forward(z).copy()
    check_grad(kernels.softmax_backward(r.copy(), z, y), numgrad(loss, z))


# ---- losses ---------------------------------------------------------------------------------


def _loss_gradient_check(kernels, numgrad, check_grad, name, pred, *rest):
    """The gradient without and with sample weights (one of them 0)."""
    kernel = getattr(kernels, name)
    weight = np.random.default_rng(7).uniform(0.1, 3.0, size=len(pred))
    weight[0] = 0.0
    for w in (None, weight):

        def loss():
            return kernel(pred, *rest, w)[0]

        _, grad = kernel(pred.copy(), *rest, w)
        assert grad.shape == pred.shape
        check_grad(grad, numgrad(loss, pred), f"{name} {'weighted' if w is not None else ''}")


def test_softmax_cross_entropy_gradient_int_targets(kernels, rng, numgrad, check_grad):
    logits = rng.normal(scale=2.0, size=(5, 4))
    target = rng.integers(0, 4, size=5)
    _loss_gradient_check(kernels, numgrad, check_grad, "softmax_cross_entropy", logits, target)


def test_softmax_cross_entropy_gradient_one_hot_targets(kernels, rng, numgrad, check_grad):
    logits = rng.normal(scale=2.0, size=(5, 4))
    target = np.eye(4)[rng.integers(0, 4, size=5)]
    _loss_gradient_check(kernels, numgrad, check_grad, "softmax_cross_entropy", logits, target)


def test_softmax_cross_entropy_gradient_soft_targets(kernels, rng, numgrad, check_grad):
    logits = rng.normal(size=(3, 5))
    target = rng.dirichlet(np.ones(5), size=3)
    _loss_gradient_check(kernels, numgrad, check_grad, "softmax_cross_entropy", logits, target)


@pytest.mark.parametrize("soft", [False, True], ids=["binary-targets", "probability-targets"])
def test_bce_with_logits_gradient(kernels, rng, numgrad, check_grad, soft):
    logits = rng.normal(scale=3.0, size=(4, 3))
    target = rng.uniform(size=(4, 3)) if soft else rng.integers(0, 2, size=(4, 3)).astype(np.float64)
    _loss_gradient_check(kernels, numgrad, check_grad, "bce_with_logits", logits, target)


def test_mse_gradient(kernels, rng, numgrad, check_grad):
    pred, target = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    _loss_gradient_check(kernels, numgrad, check_grad, "mse", pred, target)


def test_mae_gradient_away_from_the_kink(kernels, rng, numgrad, check_grad):
    target = rng.normal(size=(4, 3))
    pred = target + away_from_zero(rng, (4, 3), low=0.01)
    _loss_gradient_check(kernels, numgrad, check_grad, "mae", pred, target)


def test_huber_gradient_on_both_sides_of_delta(kernels, rng, numgrad, check_grad):
    delta = 0.8
    target = rng.normal(size=(4, 4))
    # Residuals inside (|r| < delta) and outside (|r| > delta), on both signs, none at the seams.
    magnitudes = np.concatenate([rng.uniform(0.05, 0.7, size=8), rng.uniform(0.9, 3.0, size=8)])
    residual = (rng.permutation(magnitudes) * rng.choice([-1.0, 1.0], size=16)).reshape(4, 4)
    assert (np.abs(residual) < delta).sum() == 8 and (np.abs(residual) > delta).sum() == 8
    _loss_gradient_check(kernels, numgrad, check_grad, "huber", target + residual, target, delta)
