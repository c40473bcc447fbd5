"""Every cupy kernel against the NumPy reference, on awkward shapes, in float32 and float64.

Runs twice through the ``impl`` fixture (conftest.py): on a CUDA GPU (skipped only when there
is no CUDA device) and on the CPU emulation of the backend's CUDA source. Checks values, dtype
preservation, 0-d losses, in-place overwriting of gradient views inside a flat buffer (never
accumulating, never touching neighbours), in-place optimizer updates, and that inputs are left
alone.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

DTYPES = [np.float32, np.float64]
TOL = {
    np.float32: {"rtol": 2e-4, "atol": 2e-5},
    np.float64: {"rtol": 1e-10, "atol": 1e-12},
}
SENTINEL = 7.5


# ---- helpers ---------------------------------------------------------------------------------


def rand(rng, shape, dtype, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def dev(impl, a):
    return impl.to_device(np.ascontiguousarray(a))


def host(impl, a):
    return np.asarray(impl.to_host(a))


def assert_close(impl, got, want, dtype, what):
    assert got is not None, f"{what}: got None"
    g = host(impl, got)
    assert g.dtype == np.dtype(dtype), f"{what}: dtype {g.dtype}, expected {np.dtype(dtype)}"
    assert g.shape == np.shape(want), f"{what}: shape {g.shape}, expected {np.shape(want)}"
    np.testing.assert_allclose(g, want, err_msg=what, **TOL[dtype])


def assert_loss(impl, loss, want, dtype, what):
    """The loss is a 0-d array of the logits' dtype (a device array on the GPU)."""
    assert isinstance(loss, impl.xp.ndarray), f"{what}: loss is {type(loss).__name__}, not an array of the backend"
    assert np.ndim(loss) == 0, f"{what}: loss has shape {np.shape(loss)}"
    assert loss.dtype == np.dtype(dtype), f"{what}: loss dtype {loss.dtype}"
    np.testing.assert_allclose(host(impl, loss), want, err_msg=what, **TOL[dtype])


class GradBuffer:
    """Gradient views into one flat buffer, as the core hands them to backward kernels."""

    def __init__(self, impl, dtype, *shapes):
        self.impl, self.shapes = impl, shapes
        self.sizes = [math.prod(s) for s in shapes]
        total = sum(self.sizes) + 3  # three trailing sentinels nobody may touch
        self.flat = dev(impl, np.full(total, SENTINEL, dtype=dtype))
        self.views, start = [], 0
        for shape, size in zip(shapes, self.sizes):
            self.views.append(self.flat[start : start + size].reshape(shape))
            start += size

    def check(self, expected, dtype, what):
        """Each view holds exactly ``expected`` (overwritten, not accumulated onto the
        sentinel), read back through the flat buffer; the tail is untouched."""
        flat = host(self.impl, self.flat)
        start = 0
        for want, shape, size, k in zip(expected, self.shapes, self.sizes, range(len(expected))):
            got = flat[start : start + size].reshape(shape)
            np.testing.assert_allclose(got, want, err_msg=f"{what}: gradient view {k}", **TOL[dtype])
            start += size
        assert np.all(flat[start:] == SENTINEL), f"{what}: wrote past its gradient views"


def unchanged(impl, arrays, copies, what):
    for k, (a, c) in enumerate(zip(arrays, copies)):
        assert np.array_equal(host(impl, a), c), f"{what}: input {k} was modified"


# ---- dense -------------------------------------------------------------------------------------

DENSE_SHAPES = [(1, 1, 1), (1, 3, 5), (7, 1, 4), (33, 17, 9), (2, 65, 3)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,fin,fout", DENSE_SHAPES)
def test_dense(impl, reference, host_rng, dtype, n, fin, fout):
    x, w, b = rand(host_rng, (n, fin), dtype), rand(host_rng, (fin, fout), dtype), rand(host_rng, (fout,), dtype)
    dy = rand(host_rng, (n, fout), dtype)
    xd, wd, bd = dev(impl, x), dev(impl, w), dev(impl, b)
    y = impl.kernels.dense_forward(xd, wd, bd)
    assert_close(impl, y, reference.dense_forward(x, w, b), dtype, "dense forward")
    unchanged(impl, (xd, wd, bd), (x, w, b), "dense forward")

    dw_ref, db_ref = np.empty_like(w), np.empty_like(b)
    dx_ref = reference.dense_backward(dy.copy(), x, w, dw_ref, db_ref, True)
    for need_dx in (True, False):
        grads = GradBuffer(impl, dtype, w.shape, b.shape)
        dx = impl.kernels.dense_backward(dev(impl, dy), xd, wd, *grads.views, need_dx)
        grads.check((dw_ref, db_ref), dtype, f"dense backward need_dx={need_dx}")
        if need_dx:
            assert_close(impl, dx, dx_ref, dtype, "dense dx")
        else:
            assert dx is None
    unchanged(impl, (xd, wd), (x, w), "dense backward")


# ---- conv2d ------------------------------------------------------------------------------------

# (N, C, H, W, F, K, stride, padding): batch 1, odd channels, stride 2, padding 0 and 2, 1x1
# kernels, even kernels, outputs that drop the last rows/columns, kernels larger than the input.
CONV_CASES = [
    (1, 1, 5, 5, 1, 1, 1, 0),
    (2, 3, 7, 6, 5, 3, 2, 0),
    (3, 2, 6, 7, 4, 3, 1, 2),
    (1, 3, 8, 8, 2, 5, 2, 2),
    (2, 1, 4, 5, 3, 4, 1, 1),
    (1, 5, 3, 3, 3, 3, 1, 2),
    (2, 2, 9, 4, 3, 2, 3, 1),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "N{}C{}H{}W{}F{}K{}s{}p{}".format(*c))
def test_conv2d(impl, reference, host_rng, dtype, case):
    n, c, h, w_, f, k, stride, padding = case
    x, w, b = rand(host_rng, (n, c, h, w_), dtype), rand(host_rng, (f, c, k, k), dtype), rand(host_rng, (f,), dtype)
    xd, wd, bd = dev(impl, x), dev(impl, w), dev(impl, b)
    y, ctx = impl.kernels.conv2d_forward(xd, wd, bd, stride, padding)
    y_ref, ctx_ref = reference.conv2d_forward(x, w, b, stride, padding)
    assert_close(impl, y, y_ref, dtype, "conv2d forward")
    unchanged(impl, (xd, wd, bd), (x, w, b), "conv2d forward")

    dy = rand(host_rng, y_ref.shape, dtype)
    dw_ref, db_ref = np.empty_like(w), np.empty_like(b)
    dx_ref = reference.conv2d_backward(dy.copy(), x, w, stride, padding, ctx_ref, dw_ref, db_ref, True)
    for need_dx, own_ctx in ((True, ctx), (False, ctx), (True, None)):
        grads = GradBuffer(impl, dtype, w.shape, b.shape)
        dx = impl.kernels.conv2d_backward(dev(impl, dy), xd, wd, stride, padding, own_ctx, *grads.views, need_dx)
        label = f"conv2d backward need_dx={need_dx} ctx={'own' if own_ctx is not None else 'None'}"
        grads.check((dw_ref, db_ref), dtype, label)
        if need_dx:
            assert_close(impl, dx, dx_ref, dtype, label + " dx")
        else:
            assert dx is None
    unchanged(impl, (xd, wd), (x, w), "conv2d backward")


# ---- rnn ---------------------------------------------------------------------------------------

RNN_CASES = [(1, 1, 3, 4), (4, 5, 2, 3), (3, 7, 5, 6), (2, 2, 1, 1), (1, 3, 4, 33)]
RNN_ACTIVATIONS = ["tanh", "relu", "sigmoid", "linear"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", RNN_ACTIVATIONS)
@pytest.mark.parametrize("case", RNN_CASES, ids=lambda c: "N{}T{}F{}H{}".format(*c))
def test_rnn(impl, reference, host_rng, dtype, activation, case):
    n, t, f, hidden = case
    x = rand(host_rng, (n, t, f), dtype)
    wx, wh = rand(host_rng, (f, hidden), dtype, 0.5), rand(host_rng, (hidden, hidden), dtype, 0.4)
    b = rand(host_rng, (hidden,), dtype, 0.3)
    xd, wxd, whd, bd = dev(impl, x), dev(impl, wx), dev(impl, wh), dev(impl, b)
    hs, ctx = impl.kernels.rnn_forward(xd, wxd, whd, bd, activation)
    hs_ref, ctx_ref = reference.rnn_forward(x, wx, wh, b, activation)
    assert_close(impl, hs, hs_ref, dtype, f"rnn forward {activation}")
    unchanged(impl, (xd, wxd, whd, bd), (x, wx, wh, b), "rnn forward")

    full = rand(host_rng, (n, t, hidden), dtype)
    last_only = np.zeros((n, t, hidden), dtype=dtype)
    last_only[:, -1] = rand(host_rng, (n, hidden), dtype)
    for label, dhs in (("all states", full), ("last state", last_only)):
        dwx_ref, dwh_ref, db_ref = np.empty_like(wx), np.empty_like(wh), np.empty_like(b)
        dx_ref = reference.rnn_backward(dhs.copy(), x, wx, wh, hs_ref, activation, ctx_ref, dwx_ref, dwh_ref, db_ref, True)
        for need_dx, own_ctx in ((True, ctx), (False, ctx), (True, None)):
            grads = GradBuffer(impl, dtype, wx.shape, wh.shape, b.shape)
            dx = impl.kernels.rnn_backward(dev(impl, dhs), xd, wxd, whd, hs, activation, own_ctx, *grads.views, need_dx)
            what = f"rnn backward {activation} {label} need_dx={need_dx} ctx={'own' if own_ctx is not None else 'None'}"
            grads.check((dwx_ref, dwh_ref, db_ref), dtype, what)
            if need_dx:
                assert_close(impl, dx, dx_ref, dtype, what + " dx")
            else:
                assert dx is None


def test_rnn_rejects_unknown_activation(impl, host_rng):
    x = dev(impl, rand(host_rng, (2, 3, 4), np.float32))
    wx, wh, b = (dev(impl, rand(host_rng, s, np.float32)) for s in ((4, 5), (5, 5), (5,)))
    with pytest.raises(ValueError, match="unknown recurrent activation"):
        impl.kernels.rnn_forward(x, wx, wh, b, "softplus")


# ---- activations -------------------------------------------------------------------------------

ACT_SHAPES = [(1, 1), (3, 7), (2, 3, 5), (4, 70)]


def activation_input(rng, shape, dtype):
    z = rand(rng, shape, dtype, 3.0)
    flat = z.reshape(-1)
    flat[:: max(1, flat.size // 3)] = 0.0  # exact zeros: the ReLU family's kink
    if flat.size > 4:
        flat[1], flat[-1] = 60.0, -60.0  # large |z|: sigmoid must not overflow
    return z


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", ACT_SHAPES)
@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu", "leaky_relu", "leaky_relu_0.2", "softmax", "linear"])
def test_activation(impl, reference, host_rng, dtype, shape, name):
    kernel_name, extra = name, ()
    if name.startswith("leaky_relu"):
        kernel_name, extra = "leaky_relu", (0.2 if name.endswith("0.2") else 0.01,)
    fwd, bwd = getattr(impl.kernels, f"{kernel_name}_forward"), getattr(impl.kernels, f"{kernel_name}_backward")
    fwd_ref, bwd_ref = getattr(reference, f"{kernel_name}_forward"), getattr(reference, f"{kernel_name}_backward")
    z, dy = activation_input(host_rng, shape, dtype), rand(host_rng, shape, dtype)
    zd = dev(impl, z)
    y = fwd(zd, *extra)
    y_ref = fwd_ref(z, *extra)
    assert_close(impl, y, y_ref, dtype, f"{name} forward")
    assert np.all(np.isfinite(host(impl, y)))
    dz = bwd(dev(impl, dy), zd, y, *extra)
    assert_close(impl, dz, bwd_ref(dy, z, y_ref, *extra), dtype, f"{name} backward")
    unchanged(impl, (zd,), (z,), name)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_is_stable_and_normalised(impl, reference, dtype):
    z = np.array([[1000.0, 1001.0, 999.0], [-1000.0, -1000.0, -1000.0], [0.0, 0.0, 88.0]], dtype=dtype)
    y = host(impl, impl.kernels.softmax_forward(dev(impl, z)))
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(y, reference.softmax_forward(z), **TOL[dtype])


# ---- losses ------------------------------------------------------------------------------------

SCE_SHAPES = [(1, 1), (1, 3), (5, 4), (9, 40), (3, 65)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SCE_SHAPES)
@pytest.mark.parametrize("target_kind", ["int64", "int32", "onehot", "probs"])
def test_softmax_cross_entropy(impl, reference, host_rng, dtype, shape, target_kind):
    n, c = shape
    logits = rand(host_rng, shape, dtype, 4.0)
    labels = host_rng.integers(0, c, size=n)
    if target_kind in ("int64", "int32"):
        target = labels.astype(target_kind)
    elif target_kind == "onehot":
        target = np.eye(c, dtype=dtype)[labels]
    else:
        target = host_rng.random(shape).astype(dtype) + 0.1
        target /= target.sum(axis=1, keepdims=True)
    weight = host_rng.uniform(0, 3, size=logits.shape[0]).astype(dtype)
    for w in (None, weight):
        loss, grad = impl.kernels.softmax_cross_entropy(dev(impl, logits), dev(impl, target), None if w is None else dev(impl, w))
        loss_ref, grad_ref = reference.softmax_cross_entropy(logits, target, w)
        what = f"cross-entropy {target_kind}{'' if w is None else ' weighted'}"
        assert_loss(impl, loss, loss_ref, dtype, what)
        assert_close(impl, grad, grad_ref, dtype, f"{what} grad")


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_cross_entropy_extreme_logits(impl, reference, dtype):
    logits = np.array([[500.0, -500.0, 0.0], [-80.0, -80.0, -80.0]], dtype=dtype)
    labels = np.array([1, 2], dtype=np.int64)
    loss, grad = impl.kernels.softmax_cross_entropy(dev(impl, logits), dev(impl, labels), None)
    loss_ref, grad_ref = reference.softmax_cross_entropy(logits, labels, None)
    assert np.isfinite(host(impl, loss))
    assert_loss(impl, loss, loss_ref, dtype, "cross-entropy extreme")
    assert_close(impl, grad, grad_ref, dtype, "cross-entropy extreme grad")


ELEMENTWISE_LOSS_SHAPES = [(1, 1), (7, 3), (33, 1), (4, 50)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", ELEMENTWISE_LOSS_SHAPES)
@pytest.mark.parametrize("target_kind", ["labels", "probs"])
def test_bce_with_logits(impl, reference, host_rng, dtype, shape, target_kind):
    logits = rand(host_rng, shape, dtype, 5.0)
    logits.reshape(-1)[0] = 80.0  # saturated logits stay finite
    if target_kind == "labels":
        target = host_rng.integers(0, 2, size=shape).astype(dtype)
    else:
        target = host_rng.random(shape).astype(dtype)
    loss, grad = impl.kernels.bce_with_logits(dev(impl, logits), dev(impl, target), None)
    loss_ref, grad_ref = reference.bce_with_logits(logits, target, None)
    assert_loss(impl, loss, loss_ref, dtype, "bce")
    assert_close(impl, grad, grad_ref, dtype, "bce grad")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", ELEMENTWISE_LOSS_SHAPES)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("name", ["mse", "mae", "huber_0.5", "huber_1", "huber_2.5", "bce_with_logits"])
def test_elementwise_losses(impl, reference, host_rng, dtype, shape, name, weighted):
    pred, target = rand(host_rng, shape, dtype, 2.0), rand(host_rng, shape, dtype, 2.0)
    target.reshape(-1)[0] = pred.reshape(-1)[0]  # one exact zero residual (mae's sign(0) = 0)
    extra = ()
    kernel_name = name
    if name.startswith("huber"):
        kernel_name, extra = "huber", (float(name.split("_")[1]),)
    if name == "bce_with_logits":
        target = np.abs(target) / np.abs(target).max()
    weight = host_rng.uniform(0, 3, size=pred.shape[0]).astype(dtype) if weighted else None
    loss, grad = getattr(impl.kernels, kernel_name)(
        dev(impl, pred), dev(impl, target), *extra, None if weight is None else dev(impl, weight)
    )
    loss_ref, grad_ref = getattr(reference, kernel_name)(pred, target, *extra, weight)
    assert_loss(impl, loss, loss_ref, dtype, name)
    assert_close(impl, grad, grad_ref, dtype, f"{name} grad")


# ---- dropout -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rate", [0.0, 0.3, 0.75])
def test_dropout(impl, host_rng, dtype, rate):
    x = rand(host_rng, (257, 129), dtype)
    xd = dev(impl, x)
    rng = impl.make_rng(123)
    y, mask = impl.kernels.dropout_forward(xd, rate, rng)
    yh, mh = host(impl, y), host(impl, mask)
    assert yh.dtype == mh.dtype == np.dtype(dtype) and yh.shape == mh.shape == x.shape
    scale = (np.ones(1, dtype=dtype) * (1.0 / (1.0 - rate)))[0]  # the reference's mask value
    assert set(np.unique(mh)) <= {dtype(0), scale}
    np.testing.assert_array_equal(yh, x * mh)
    kept = np.mean(mh != 0)
    assert abs(kept - (1 - rate)) < 0.02, f"kept {kept:.3f} of the elements at rate {rate}"
    dy = rand(host_rng, x.shape, dtype)
    dx = impl.kernels.dropout_backward(dev(impl, dy), mask)
    np.testing.assert_array_equal(host(impl, dx), dy * mh)
    assert host(impl, dx).dtype == np.dtype(dtype)
    unchanged(impl, (xd,), (x,), "dropout")


def test_dropout_rng_is_seeded_and_advances(impl, host_rng):
    x = dev(impl, rand(host_rng, (64, 33), np.float32))
    first = host(impl, impl.kernels.dropout_forward(x, 0.5, impl.make_rng(7))[1])
    again = host(impl, impl.kernels.dropout_forward(x, 0.5, impl.make_rng(7))[1])
    np.testing.assert_array_equal(first, again)
    rng = impl.make_rng(7)
    one = host(impl, impl.kernels.dropout_forward(x, 0.5, rng)[1])
    two = host(impl, impl.kernels.dropout_forward(x, 0.5, rng)[1])
    assert not np.array_equal(one, two), "the generator did not advance between calls"


# ---- optimizers --------------------------------------------------------------------------------


def _flat_views(impl, arrays, dtype):
    """Copies of ``arrays`` as consecutive views of one device buffer (like the core's)."""
    total = sum(a.size for a in arrays)
    flat = dev(impl, np.concatenate([a.ravel() for a in arrays] + [np.full(2, SENTINEL)]).astype(dtype))
    views, start = [], 0
    for a in arrays:
        views.append(flat[start : start + a.size])
        start += a.size
    return flat, views, total


OPTIMIZERS = [
    ("sgd", {"lr": 0.1, "momentum": 0.0, "nesterov": False}),
    ("sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": False}),
    ("sgd", {"lr": 0.05, "momentum": 0.8, "nesterov": True}),
    ("adam", {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}),
    ("adam", {"lr": 0.3, "beta1": 0.5, "beta2": 0.6, "eps": 1e-3}),
    ("adadelta", {"lr": 1.0, "rho": 0.9, "eps": 1e-6}),
    ("adadelta", {"lr": 0.5, "rho": 0.5, "eps": 1e-3}),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [1, 37, 1000])
@pytest.mark.parametrize("name,hyper", OPTIMIZERS, ids=lambda v: v if isinstance(v, str) else "-".join(f"{k}{w}" for k, w in v.items()))
def test_optimizer_updates_in_place(impl, reference, host_rng, dtype, size, name, hyper):
    param = rand(host_rng, (size,), dtype)
    states = [np.zeros(size, dtype=dtype) for _ in range(1 if name == "sgd" else 2)]
    flat, (param_d, *states_d), total = _flat_views(impl, [param] + states, dtype)
    ref_param, ref_states = param.copy(), [s.copy() for s in states]
    kernel, kernel_ref = getattr(impl.kernels, f"{name}_update"), getattr(reference, f"{name}_update")
    for step in range(1, 6):
        grad = rand(host_rng, (size,), dtype)
        if name == "adam":
            args = (hyper["lr"], hyper["beta1"], hyper["beta2"], hyper["eps"])
            out = kernel(param_d, dev(impl, grad), *states_d, step, *args)
            kernel_ref(ref_param, grad, *ref_states, step, *args)
        else:
            out = kernel(param_d, dev(impl, grad), *states_d, *hyper.values())
            kernel_ref(ref_param, grad, *ref_states, *hyper.values())
        assert out is None
    everything = host(impl, flat)
    expected = np.concatenate([ref_param] + ref_states)
    np.testing.assert_allclose(everything[:total], expected, err_msg=f"{name} {hyper}", **TOL[dtype])
    assert np.all(everything[total:] == SENTINEL), "the update wrote past its views"
    assert everything.dtype == np.dtype(dtype)


# ---- services ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES + [np.int64])
def test_device_round_trip(impl, host_rng, dtype):
    a = (host_rng.standard_normal((3, 4, 5)) * 10).astype(dtype)
    d = impl.to_device(a)
    if impl.is_gpu:
        assert isinstance(d, impl.xp.ndarray)
    back = impl.to_host(d)
    assert isinstance(back, np.ndarray) and back.dtype == a.dtype and back.shape == a.shape
    np.testing.assert_array_equal(back, a)


# ---- the whole model ---------------------------------------------------------------------------


def _models(backend, builder, dtype):
    import sega_core

    return builder(sega_core, "numpy", dtype), builder(sega_core, backend, dtype)


def _conv_model(sg, backend, dtype):
    layers = [sg.Conv2D(3, 3, stride=2, padding=1), sg.Flatten(), sg.Dense(5, activation="tanh"), sg.Dense(3)]
    return sg.NeuralNetwork(layers, backend=backend, dtype=dtype, seed=11, input_shape=(2, 7, 6))


def _rnn_model(sg, backend, dtype):
    layers = [sg.RNN(6, activation="tanh", return_sequences=True), sg.RNN(4, activation="relu"), sg.Dense(1)]
    return sg.NeuralNetwork(layers, backend=backend, dtype=dtype, seed=5, input_shape=(5, 3), regressor=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["conv", "rnn"])
def test_model_matches_numpy(backend, host_rng, dtype, kind):
    if kind == "conv":
        X, y = rand(host_rng, (40, 2, 7, 6), dtype), host_rng.integers(0, 3, size=40)
        ref, ours = _models(backend, _conv_model, dtype)
    else:
        X = rand(host_rng, (40, 5, 3), dtype)
        y = X.sum(axis=(1, 2))[:, None]
        ref, ours = _models(backend, _rnn_model, dtype)
    loss_ref, grad_ref = ref._loss_and_grad(X, y)
    loss, grad = ours._loss_and_grad(X, y)
    np.testing.assert_allclose(loss, loss_ref, **TOL[dtype])
    np.testing.assert_allclose(grad, grad_ref, **TOL[dtype])
    # Adam divides by sqrt(v): in float32 it turns the rounding noise of a gradient that cancels
    # to ~0 into a full-size step, so float32 training is compared under SGD (whose updates
    # stay proportional to the gradients); float64 has no such noise and runs Adam.
    if dtype == np.float64:
        tol, optimizer = TOL[dtype], "adam"
    else:
        tol, optimizer = {"rtol": 2e-3, "atol": 1e-4}, "sgd"
    h_ref = ref.train(X, y, epochs=3, batch_size=16, optimizer=optimizer, lr=0.01, progress=False)
    h = ours.train(X, y, epochs=3, batch_size=16, optimizer=optimizer, lr=0.01, progress=False)
    np.testing.assert_allclose(h["loss"], h_ref["loss"], **tol)
    np.testing.assert_allclose(ours.predict(X) if kind == "rnn" else ours.predict_proba(X),
                               ref.predict(X) if kind == "rnn" else ref.predict_proba(X), **tol)
