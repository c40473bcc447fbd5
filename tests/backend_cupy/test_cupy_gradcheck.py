"""Finite-difference gradient checks of the cupy backward kernels (float64, ``impl`` fixture).

The agreement tests compare with the NumPy reference; these check the backward kernels against
the forward kernels themselves, so a mistake shared by both backends would still be caught.
For an objective ``L = sum(forward(...) * G)`` with random ``G``, the analytic gradients from
the backward kernel (called with ``dy = G``) must match central differences of ``L`` at a few
random coordinates of every input.
"""

from __future__ import annotations

import numpy as np
import pytest

EPS = 1e-6
PROBES = 6  # coordinates checked per array


def _objective(impl, forward, arrays, weight):
    out = forward(*[impl.to_device(a) for a in arrays])
    return float(np.sum(np.asarray(impl.to_host(out)) * weight))


def _check(impl, forward, arrays, analytic, weight, rng, what):
    for k, (array, grad) in enumerate(zip(arrays, analytic)):
        if grad is None:
            continue
        flat = array.reshape(-1)
        for index in rng.choice(flat.size, size=min(PROBES, flat.size), replace=False):
            saved = flat[index]
            flat[index] = saved + EPS
            up = _objective(impl, forward, arrays, weight)
            flat[index] = saved - EPS
            down = _objective(impl, forward, arrays, weight)
            flat[index] = saved
            numeric = (up - down) / (2 * EPS)
            assert np.isclose(grad.reshape(-1)[index], numeric, rtol=1e-5, atol=1e-7), (
                f"{what}: d/d(input {k})[{index}] analytic {grad.reshape(-1)[index]!r} vs numeric {numeric!r}"
            )


def _host(impl, a):
    return None if a is None else np.asarray(impl.to_host(a))


def test_dense_gradients(impl, host_rng):
    x, w, b = host_rng.standard_normal((3, 4)), host_rng.standard_normal((4, 5)), host_rng.standard_normal(5)
    g = host_rng.standard_normal((3, 5))
    dw, db = impl.to_device(np.empty_like(w)), impl.to_device(np.empty_like(b))
    dev = impl.to_device
    dx = impl.kernels.dense_backward(dev(g), dev(x), dev(w), dw, db, True)
    _check(impl, impl.kernels.dense_forward, [x, w, b], [_host(impl, dx), _host(impl, dw), _host(impl, db)], g, host_rng, "dense")


@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 1), (2, 2)])
def test_conv2d_gradients(impl, host_rng, stride, padding):
    x, w, b = host_rng.standard_normal((2, 3, 6, 5)), host_rng.standard_normal((4, 3, 3, 3)), host_rng.standard_normal(4)
    dev = impl.to_device

    def forward(x_, w_, b_):
        return impl.kernels.conv2d_forward(x_, w_, b_, stride, padding)[0]

    y, ctx = impl.kernels.conv2d_forward(dev(x), dev(w), dev(b), stride, padding)
    g = host_rng.standard_normal(np.shape(impl.to_host(y)))
    dw, db = dev(np.empty_like(w)), dev(np.empty_like(b))
    dx = impl.kernels.conv2d_backward(dev(g), dev(x), dev(w), stride, padding, ctx, dw, db, True)
    _check(impl, forward, [x, w, b], [_host(impl, dx), _host(impl, dw), _host(impl, db)], g, host_rng, "conv2d")


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu", "linear"])
def test_rnn_gradients(impl, host_rng, activation):
    n, t, f, h = 2, 4, 3, 5
    x = host_rng.standard_normal((n, t, f))
    wx, wh, b = host_rng.standard_normal((f, h)) * 0.5, host_rng.standard_normal((h, h)) * 0.4, host_rng.standard_normal(h) * 0.3
    dev = impl.to_device

    def forward(x_, wx_, wh_, b_):
        return impl.kernels.rnn_forward(x_, wx_, wh_, b_, activation)[0]

    hs, ctx = impl.kernels.rnn_forward(dev(x), dev(wx), dev(wh), dev(b), activation)
    g = host_rng.standard_normal((n, t, h))
    dwx, dwh, db = dev(np.empty_like(wx)), dev(np.empty_like(wh)), dev(np.empty_like(b))
    dx = impl.kernels.rnn_backward(dev(g), dev(x), dev(wx), dev(wh), hs, activation, ctx, dwx, dwh, db, True)
    grads = [_host(impl, a) for a in (dx, dwx, dwh, db)]
    _check(impl, forward, [x, wx, wh, b], grads, g, host_rng, f"rnn {activation}")


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "leaky_relu", "softmax"])
def test_activation_gradients(impl, host_rng, name):
    z = host_rng.standard_normal((3, 7)) * 2
    extra = (0.1,) if name == "leaky_relu" else ()
    fwd, bwd = getattr(impl.kernels, f"{name}_forward"), getattr(impl.kernels, f"{name}_backward")
    g = host_rng.standard_normal(z.shape)
    zd = impl.to_device(z)
    dz = bwd(impl.to_device(g), zd, fwd(zd, *extra), *extra)
    _check(impl, lambda z_: fwd(z_, *extra), [z], [_host(impl, dz)], g, host_rng, name)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("name", ["softmax_cross_entropy", "softmax_cross_entropy_probs", "bce_with_logits", "mse", "huber"])
def test_loss_gradients(impl, host_rng, name, weighted):
    pred = host_rng.standard_normal((4, 3)) * 2
    if name == "softmax_cross_entropy":
        target = host_rng.integers(0, 3, size=4)
    elif name == "softmax_cross_entropy_probs":
        target = host_rng.dirichlet(np.ones(3), size=4)
    elif name == "bce_with_logits":
        target = host_rng.random((4, 3))
    else:
        target = host_rng.standard_normal((4, 3))
    kernel = getattr(impl.kernels, name.replace("_probs", ""))
    extra = (0.7,) if name == "huber" else ()
    extra += (impl.to_device(host_rng.uniform(0.1, 3, size=4)) if weighted else None,)
    td = impl.to_device(target)
    _, grad = kernel(impl.to_device(pred), td, *extra)

    def loss_only(p):
        return kernel(p, td, *extra)[0]

    _check(impl, loss_only, [pred], [_host(impl, grad)], np.ones(()), host_rng, name)
