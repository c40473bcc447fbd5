"""Every numba kernel against the NumPy reference, in float32 and float64, on awkward shapes."""

from __future__ import annotations

import numpy as np
import pytest

DTYPES = (np.float32, np.float64)

# (N, C, H, W, F, K, stride, padding): batch 1, odd channel counts, non-square images, kernels
# 1/3/5, stride 1 and 2, padding 0/1/2, a kernel as large as the padded image.
CONV_CASES = [
    (1, 1, 5, 5, 1, 3, 1, 0),
    (2, 3, 7, 9, 5, 3, 2, 1),
    (1, 1, 5, 4, 2, 5, 1, 2),
    (3, 2, 6, 6, 4, 1, 1, 0),
    (2, 3, 8, 7, 3, 3, 2, 2),
    (2, 5, 9, 6, 3, 5, 2, 0),
    (1, 3, 4, 11, 7, 1, 2, 1),
    (2, 1, 3, 3, 2, 5, 1, 1),
    (4, 7, 10, 5, 3, 3, 1, 1),
]


def _conv_pair(ref, nb, case, dtype, seed=0, need_dx=True):
    n, c, h, w, f, k, s, p = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((f, c, k, k)).astype(dtype)
    b = rng.standard_normal(f).astype(dtype)
    y0, ctx0 = ref.conv2d_forward(x, wt, b, s, p)
    y1, ctx1 = nb.conv2d_forward(x, wt, b, s, p)
    dy = rng.standard_normal(y0.shape).astype(dtype)
    dw0, db0 = np.empty_like(wt), np.empty_like(b)
    dw1, db1 = np.full_like(wt, np.nan), np.full_like(b, np.nan)
    dx0 = ref.conv2d_backward(dy, x, wt, s, p, ctx0, dw0, db0, need_dx)
    dy_copy = dy.copy()
    dx1 = nb.conv2d_backward(dy, x, wt, s, p, ctx1, dw1, db1, need_dx)
    assert np.array_equal(dy, dy_copy)
    return (y0, dw0, db0, dx0), (y1, dw1, db1, dx1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_matches_reference(ref, nb, close, case, dtype):
    want, got = _conv_pair(ref, nb, case, dtype)
    for g, w in zip(got, want):
        close(g, w, dtype)
    assert got[0].flags.c_contiguous and got[3].flags.c_contiguous


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_without_input_gradient(ref, nb, close, dtype):
    want, got = _conv_pair(ref, nb, (2, 3, 7, 9, 5, 3, 2, 1), dtype, need_dx=False)
    assert got[3] is None
    for g, w in zip(got[:3], want[:3]):
        close(g, w, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("chunk_bytes", [1, 3000])
def test_conv2d_many_chunks(ref, nb, close, dtype, stride, chunk_bytes, monkeypatch):
    """A batch split into several chunks: one sample each, or two with a ragged last chunk."""
    import sega_backend_numba._conv as conv

    monkeypatch.setattr(conv, "CHUNK_BYTES", chunk_bytes * np.dtype(dtype).itemsize)
    want, got = _conv_pair(ref, nb, (7, 3, 6, 6, 4, 3, stride, 1), dtype)
    for g, w in zip(got, want):
        close(g, w, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_large_batch(ref, nb, close, dtype):
    """A batch of several default-sized chunks."""
    want, got = _conv_pair(ref, nb, (40, 8, 20, 20, 4, 3, 1, 1), dtype)
    for g, w in zip(got, want):
        close(g, w, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [(5, 3, 6, 7, 4, 3, 1, 1), (4, 2, 7, 5, 3, 3, 2, 0), (2, 1, 5, 5, 2, 5, 1, 2)])
def test_conv2d_split_across_threads_matches_reference(ref, nb, close, split_everything, case, dtype):
    """Each thread takes a ragged share of the batch; the weight gradients are summed."""
    want, got = _conv_pair(ref, nb, case, dtype)
    for g, w in zip(got, want):
        close(g, w, dtype)
    assert split_everything == [min(3, case[0])] * 2


RNN_CASES = [(1, 1, 1, 1), (2, 1, 3, 4), (3, 5, 2, 7), (4, 6, 5, 3), (1, 9, 3, 16)]


def _rnn_pair(ref, nb, case, activation, dtype, need_dx=True, last_only=False):
    n, t, f, h = case
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, t, f)).astype(dtype)
    wx = (rng.standard_normal((f, h)) * 0.5).astype(dtype)
    wh = (rng.standard_normal((h, h)) * 0.5).astype(dtype)
    b = rng.standard_normal(h).astype(dtype)
    hs0, ctx0 = ref.rnn_forward(x, wx, wh, b, activation)
    hs1, ctx1 = nb.rnn_forward(x, wx, wh, b, activation)
    dhs = rng.standard_normal(hs0.shape).astype(dtype)
    if last_only:
        dhs[:, :-1] = 0
    grads0 = [np.empty_like(wx), np.empty_like(wh), np.empty_like(b)]
    grads1 = [np.full_like(a, np.nan) for a in grads0]
    dx0 = ref.rnn_backward(dhs.copy(), x, wx, wh, hs0, activation, ctx0, *grads0, need_dx)
    dhs_copy = dhs.copy()
    dx1 = nb.rnn_backward(dhs, x, wx, wh, hs1, activation, ctx1, *grads1, need_dx)
    assert np.array_equal(dhs, dhs_copy)
    return (hs0, *grads0, dx0), (hs1, *grads1, dx1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid", "linear"])
@pytest.mark.parametrize("case", RNN_CASES)
def test_rnn_matches_reference(ref, nb, close, case, activation, dtype):
    want, got = _rnn_pair(ref, nb, case, activation, dtype)
    for g, w in zip(got, want):
        close(g, w, dtype, scale_tol=5)
    assert got[0].flags.c_contiguous and got[4].flags.c_contiguous


@pytest.mark.parametrize("dtype", DTYPES)
def test_rnn_last_state_only_without_input_gradient(ref, nb, close, dtype):
    want, got = _rnn_pair(ref, nb, (3, 4, 2, 5), "tanh", dtype, need_dx=False, last_only=True)
    assert got[4] is None
    for g, w in zip(got[:4], want[:4]):
        close(g, w, dtype, scale_tol=5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid", "linear"])
@pytest.mark.parametrize("case", [(5, 4, 3, 6), (2, 1, 2, 3), (7, 6, 5, 4)])
def test_rnn_split_across_threads_matches_reference(ref, nb, close, split_everything, case, activation, dtype):
    """Each thread runs the whole time loop for its share of the sequences."""
    want, got = _rnn_pair(ref, nb, case, activation, dtype)
    for g, w in zip(got, want):
        close(g, w, dtype)
    assert split_everything == [min(3, case[0])] * 2


def test_rnn_rejects_unknown_activation(nb):
    x = np.zeros((1, 2, 3), np.float32)
    with pytest.raises(ValueError, match="unknown recurrent activation"):
        nb.rnn_forward(x, np.zeros((3, 4), np.float32), np.zeros((4, 4), np.float32), np.zeros(4, np.float32), "elu")


def test_rnn_float32_tanh_is_accurate_and_keeps_nan(nb):
    """The float32 tanh approximation stays within a few units in the last place."""
    special = [0.0, 1e-6, -3e-4, 4e-4, 7.99, 8.5, -40]
    z = np.concatenate([np.linspace(-12, 12, 20001), special]).astype(np.float32)
    x = z.reshape(-1, 1, 1)  # one step, one unit, many sequences
    hs, _ = nb.rnn_forward(x, np.ones((1, 1), np.float32), np.zeros((1, 1), np.float32), np.zeros(1, np.float32), "tanh")
    exact = np.tanh(z.astype(np.float64))
    err = np.abs(hs.reshape(-1).astype(np.float64) - exact)
    assert err.max() <= 4 * np.finfo(np.float32).eps * np.maximum(np.abs(exact), 1e-30).max()
    assert np.all(err <= 4 * np.finfo(np.float32).eps * np.abs(exact) + 1e-45)
    bad, _ = nb.rnn_forward(np.full((1, 1, 1), np.nan, np.float32), np.ones((1, 1), np.float32),
                            np.zeros((1, 1), np.float32), np.zeros(1, np.float32), "tanh")
    assert np.isnan(bad).all()


ACTIVATION_SHAPES = [(1,), (7,), (3, 5), (2, 3, 4, 5), (1, 1), (600, 500)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", ACTIVATION_SHAPES)
@pytest.mark.parametrize("name", ["relu", "leaky_relu", "sigmoid", "tanh", "softmax"])
def test_activations_match_reference(ref, nb, close, name, shape, dtype):
    rng = np.random.default_rng(2)
    z = (rng.standard_normal(shape) * 4).astype(dtype)
    z.reshape(-1)[: min(3, z.size)] = [0.0, 60.0, -60.0][: min(3, z.size)]
    dy = rng.standard_normal(shape).astype(dtype)
    extra = (0.013,) if name == "leaky_relu" else ()
    f0, b0 = getattr(ref, f"{name}_forward"), getattr(ref, f"{name}_backward")
    f1, b1 = getattr(nb, f"{name}_forward"), getattr(nb, f"{name}_backward")
    y0, y1 = f0(z, *extra), f1(z, *extra)
    close(y1, y0, dtype)
    close(b1(dy, z, y1, *extra), b0(dy, z, y0, *extra), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_activations_accept_non_contiguous_input(ref, nb, close, dtype):
    z = np.random.default_rng(3).standard_normal((6, 8)).astype(dtype)[:, ::2]
    for name in ("relu", "sigmoid", "softmax"):
        close(getattr(nb, f"{name}_forward")(z), getattr(ref, f"{name}_forward")(z), dtype)


def test_activations_propagate_nan(nb):
    z = np.array([np.nan, 1.0, -1.0], np.float32)
    for name in ("relu", "sigmoid", "tanh"):
        assert np.isnan(getattr(nb, f"{name}_forward")(z)[0])
    assert np.isnan(nb.leaky_relu_forward(z, 0.01)[0])
    assert np.isnan(nb.softmax_forward(z)).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (5, 7), (3, 4, 5), (700, 400)])
@pytest.mark.parametrize("rate", [0.0, 0.3, 0.9])
def test_dropout_matches_reference_exactly(ref, nb, shape, rate, dtype):
    """Same generator, same seed: the same units are dropped and scaled identically."""
    x = np.random.default_rng(4).standard_normal(shape).astype(dtype)
    y0, m0 = ref.dropout_forward(x, rate, np.random.default_rng(5))
    y1, m1 = nb.dropout_forward(x, rate, np.random.default_rng(5))
    assert y1.dtype == m1.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(m1, m0)
    np.testing.assert_array_equal(y1, y0)
    dy = np.random.default_rng(6).standard_normal(shape).astype(dtype)
    np.testing.assert_array_equal(nb.dropout_backward(dy, m1), ref.dropout_backward(dy, m0))


def _optimizer_run(kernels, name, size, dtype, steps=3, **kw):
    rng = np.random.default_rng(7)
    param = rng.standard_normal(size).astype(dtype)
    states = [np.zeros(size, dtype) for _ in range(2)]
    for step in range(1, steps + 1):
        grad = rng.standard_normal(size).astype(dtype)
        if name == "sgd":
            kernels.sgd_update(param, grad, states[0], 0.05, kw["momentum"], kw["nesterov"])
        elif name == "adam":
            kernels.adam_update(param, grad, states[0], states[1], step, 0.01, 0.9, 0.999, 1e-8)
        else:
            kernels.adadelta_update(param, grad, states[0], states[1], 1.0, 0.9, 1e-6)
    return [param] + states


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [1, 13, 300_001])
@pytest.mark.parametrize(
    "name, kw",
    [
        ("sgd", {"momentum": 0.0, "nesterov": False}),
        ("sgd", {"momentum": 0.9, "nesterov": False}),
        ("sgd", {"momentum": 0.9, "nesterov": True}),
        ("adam", {}),
        ("adadelta", {}),
    ],
)
def test_optimizers_match_reference(ref, nb, close, name, kw, size, dtype):
    want = _optimizer_run(ref, name, size, dtype, **kw)
    got = _optimizer_run(nb, name, size, dtype, **kw)
    for g, w in zip(got, want):
        close(g, w, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [3, 14, 1001])
@pytest.mark.parametrize(
    "name, kw",
    [("sgd", {"momentum": 0.0, "nesterov": False}), ("sgd", {"momentum": 0.9, "nesterov": True}),
     ("adam", {}), ("adadelta", {})],
)
def test_optimizers_split_across_threads_match_reference(ref, nb, close, split_everything, name, kw, size, dtype):
    """Each thread of the team updates its own range of the buffer."""
    want = _optimizer_run(ref, name, size, dtype, **kw)
    got = _optimizer_run(nb, name, size, dtype, **kw)
    for g, w in zip(got, want):
        close(g, w, dtype)
    assert split_everything and set(split_everything) == {3}


def test_optimizers_refuse_arrays_they_cannot_update_in_place(nb):
    param = np.zeros(10, np.float32)[::2]
    with pytest.raises(ValueError, match="C-contiguous"):
        nb.sgd_update(param, np.zeros(5, np.float32), np.zeros(5, np.float32), 0.1, 0.0, False)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (1, 3), (7, 2), (64, 10), (5, 33)])
@pytest.mark.parametrize("kind", ["labels", "one-hot", "soft"])
def test_softmax_cross_entropy_matches_reference(ref, nb, close, shape, kind, dtype):
    n, k = shape
    rng = np.random.default_rng(6)
    logits = (rng.standard_normal(shape) * 4).astype(dtype)
    labels = rng.integers(0, k, n)
    if kind == "labels":
        target = labels
    elif kind == "one-hot":
        target = np.eye(k, dtype=dtype)[labels]
    else:
        target = rng.dirichlet(np.ones(k), n).astype(dtype)
    loss0, grad0 = ref.softmax_cross_entropy(logits, target, None)
    loss1, grad1 = nb.softmax_cross_entropy(logits, target, None)
    assert isinstance(loss1, np.ndarray) and loss1.shape == () and loss1.dtype == np.dtype(dtype)
    close(loss1, loss0, dtype)
    close(grad1, grad0, dtype)


def test_softmax_cross_entropy_keeps_nan_and_refuses_bad_labels(nb):
    logits = np.zeros((2, 3), np.float32)
    logits[1, 2] = np.nan
    loss, grad = nb.softmax_cross_entropy(logits, np.array([0, 1]), None)
    assert np.isnan(loss) and np.isnan(grad[1]).all() and np.isfinite(grad[0]).all()
    for bad in ([0, 3], [-1, 0]):
        with pytest.raises(IndexError, match="labels must lie in 0..2"):
            nb.softmax_cross_entropy(np.zeros((2, 3), np.float32), np.array(bad), None)
    with pytest.raises(ValueError, match="needs 2 labels"):
        nb.softmax_cross_entropy(np.zeros((2, 3), np.float32), np.array([0, 1, 2]), None)


def test_softmax_of_empty_rows(nb):
    assert nb.softmax_forward(np.zeros((3, 0), np.float32)).shape == (3, 0)
    assert nb.softmax_backward(np.zeros((0, 4)), np.zeros((0, 4)), np.zeros((0, 4))).shape == (0, 4)


def test_mismatched_shapes_are_refused_not_read_out_of_bounds(nb):
    """The compiled loops do not check indices, so the wrappers must."""
    f32 = np.float32
    x, w, b = np.zeros((2, 3, 5, 5), f32), np.zeros((4, 2, 3, 3), f32), np.zeros(4, f32)
    with pytest.raises(ValueError, match="conv2d"):
        nb.conv2d_forward(x, w, b, 1, 1)
    with pytest.raises(ValueError, match="does not fit"):
        nb.conv2d_forward(x, np.zeros((4, 3, 9, 9), f32), b, 1, 1)
    w = np.zeros((4, 3, 3, 3), f32)
    with pytest.raises(ValueError, match="dy of shape"):
        nb.conv2d_backward(np.zeros((2, 4, 4, 4), f32), x, w, 1, 1, None, np.empty_like(w), np.empty_like(b), True)
    xs, wx, wh, bh = np.zeros((2, 3, 4), f32), np.zeros((4, 5), f32), np.zeros((5, 5), f32), np.zeros(5, f32)
    with pytest.raises(ValueError, match="rnn"):
        nb.rnn_forward(xs, wx[:3], wh, bh, "tanh")
    hs, _ = nb.rnn_forward(xs, wx, wh, bh, "tanh")
    with pytest.raises(ValueError, match="hs and dhs"):
        nb.rnn_backward(hs[:, :2], xs, wx, wh, hs, "tanh", None, np.empty_like(wx), np.empty_like(wh), np.empty_like(bh), True)
    with pytest.raises(ValueError, match="one shape"):
        nb.relu_backward(np.zeros(3, f32), np.zeros(4, f32), np.zeros(4, f32))
    with pytest.raises(ValueError, match="one shape"):
        nb.dropout_backward(np.zeros(3, f32), np.zeros(4, f32))
    with pytest.raises(ValueError, match="one length"):
        nb.adam_update(np.zeros(4, f32), np.zeros(3, f32), np.zeros(4, f32), np.zeros(4, f32), 1, 0.1, 0.9, 0.999, 1e-8)


def test_an_update_with_a_gradient_of_another_dtype_stays_on_the_calling_thread(nb, split_everything):
    """A float64 gradient for float32 parameters is read as float64, on the calling thread (the
    shared-out kernel is compiled for one dtype)."""
    rng = np.random.default_rng(8)
    param = rng.standard_normal(1000).astype(np.float32)
    grad = rng.standard_normal(1000)  # float64
    want = param - np.float32(0.1) * grad.astype(np.float32)
    nb.sgd_update(param, grad, np.zeros(1000, np.float32), 0.1, 0.0, False)
    assert param.dtype == np.float32
    np.testing.assert_allclose(param, want, rtol=1e-6, atol=1e-6)
    assert split_everything == []
