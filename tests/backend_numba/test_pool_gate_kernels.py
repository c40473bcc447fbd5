"""The numba pooling, LSTM and GRU kernels against the NumPy reference: both dtypes, awkward
shapes, shared out between threads (finite differences are in test_gradcheck)."""

from __future__ import annotations

import numpy as np
import pytest

DTYPES = (np.float32, np.float64)

# (x shape, pool, stride, padding): windows that do not divide the image, overlapping windows,
# asymmetric padding, a window as large as the image, global pooling of a rectangular image.
POOL_CASES = [
    ((2, 3, 6, 6), (2, 2), (2, 2), ((0, 0), (0, 0))),
    ((1, 1, 7, 5), (2, 2), (2, 2), ((0, 0), (0, 0))),
    ((2, 2, 7, 6), (3, 3), (2, 2), ((1, 1), (1, 1))),
    ((1, 2, 5, 7), (2, 3), (1, 2), ((0, 1), (1, 1))),
    ((3, 1, 4, 4), (4, 4), (4, 4), ((0, 0), (0, 0))),
    ((5, 4, 3, 8), (3, 8), (3, 8), ((0, 0), (0, 0))),
]


def _pool_pair(ref, nb, op, case, dtype, seed=0):
    shape, pool, stride, padding = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    x.reshape(-1)[::5] = x.reshape(-1)[2]  # ties inside windows: the first maximum wins
    y0, ctx0 = getattr(ref, f"{op}_forward")(x, pool, stride, padding)
    y1, ctx1 = getattr(nb, f"{op}_forward")(x, pool, stride, padding)
    dy = rng.standard_normal(y0.shape).astype(dtype)
    dx0 = getattr(ref, f"{op}_backward")(dy, x, pool, stride, padding, ctx0)
    dx1 = getattr(nb, f"{op}_backward")(dy, x, pool, stride, padding, ctx1)
    return (y0, dx0), (y1, dx1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ["maxpool2d", "avgpool2d"])
@pytest.mark.parametrize("case", POOL_CASES)
def test_pooling_matches_reference(ref, nb, close, op, case, dtype):
    want, got = _pool_pair(ref, nb, op, case, dtype)
    for g, w in zip(got, want):
        close(g, w, dtype)
        assert g.flags.c_contiguous


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ["maxpool2d", "avgpool2d"])
def test_pooling_split_across_threads_matches_reference(ref, nb, close, split_everything, op, dtype):
    """Each thread pools a ragged share of the batch's image planes."""
    want, got = _pool_pair(ref, nb, op, ((2, 5, 7, 6), (3, 2), (2, 1), ((1, 1), (0, 1))), dtype)
    for g, w in zip(got, want):
        close(g, w, dtype)
    assert split_everything == [3, 3]


def test_max_pooling_keeps_nan(nb):
    x = np.zeros((1, 1, 4, 4), np.float32)
    x[0, 0, 1, 1] = np.nan
    y, _ = nb.maxpool2d_forward(x, (2, 2), (2, 2), ((0, 0), (0, 0)))
    assert np.isnan(y[0, 0, 0, 0]) and not np.isnan(y[0, 0, 1:, 1:]).any()


# ---- LSTM and GRU ----------------------------------------------------------------------------------

#: (N, T, F, H): batch 1, sequence length 1, odd sizes.
GATED_CASES = [(1, 1, 1, 1), (2, 1, 3, 4), (3, 5, 2, 7), (4, 6, 5, 3), (1, 9, 3, 16)]
#: (name, gates, biases, extra arguments after the weights)
VARIANTS = [("lstm", 4, 1, ()), ("gru", 3, 2, (True,)), ("gru", 3, 2, (False,))]


def _gated_arrays(case, gates, biases, dtype, seed=2):
    n, t, f, h = case
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, t, f)), rng.standard_normal((f, gates * h)) * 0.6,
            rng.standard_normal((h, gates * h)) * 0.5 / np.sqrt(h)] + [
        rng.standard_normal(gates * h) * 0.3 for _ in range(biases)], rng.standard_normal((n, t, h))


def _gated_run(kernels, name, extra, arrays, dhs, need_dx=True):
    """(hs, dwx, dwh, biases' gradients..., dx) from ``kernels``; checks ``dhs`` stays as it was."""
    hs, ctx = getattr(kernels, f"{name}_forward")(*arrays, *extra)
    grads = [np.full_like(a, np.nan) for a in arrays[1:]]
    kept = dhs.copy()
    if name == "lstm":
        dx = kernels.lstm_backward(dhs, *arrays[:3], hs, ctx, *grads, need_dx)
    else:
        dx = kernels.gru_backward(dhs, *arrays, *extra, hs, ctx, *grads, need_dx)
    assert np.array_equal(dhs, kept)
    return [hs, *grads, dx]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("variant", VARIANTS, ids=["lstm", "gru", "gru-reset-before"])
@pytest.mark.parametrize("case", GATED_CASES)
def test_gated_layers_match_reference(ref, nb, close, variant, case, dtype):
    name, gates, biases, extra = variant
    arrays, dhs = _gated_arrays(case, gates, biases, dtype)
    arrays, dhs = [a.astype(dtype) for a in arrays], dhs.astype(dtype)
    want = _gated_run(ref, name, extra, arrays, dhs)
    got = _gated_run(nb, name, extra, arrays, dhs)
    for g, w in zip(got, want):
        close(g, w, dtype, scale_tol=5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("variant", VARIANTS, ids=["lstm", "gru", "gru-reset-before"])
def test_gated_layers_split_across_threads_match_reference(ref, nb, close, split_everything, variant, dtype):
    """Each thread runs the whole time loop for its share of the sequences; the weight
    gradients are the shares' sums; without an input gradient none is returned."""
    name, gates, biases, extra = variant
    arrays, dhs = _gated_arrays((5, 4, 3, 6), gates, biases, dtype)
    arrays, dhs = [a.astype(dtype) for a in arrays], dhs.astype(dtype)
    dhs[:, :-1] = 0  # the last state only, as a layer that does not return sequences sends
    want = _gated_run(ref, name, extra, arrays, dhs, need_dx=False)
    got = _gated_run(nb, name, extra, arrays, dhs, need_dx=False)
    assert got[-1] is None and want[-1] is None
    for g, w in zip(got[:-1], want[:-1]):
        close(g, w, dtype, scale_tol=5)
    assert split_everything == [3, 3]


def test_float32_gates_stay_float32_and_keep_nan(nb):
    arrays, _ = _gated_arrays((2, 3, 2, 4), 4, 1, np.float32)
    arrays = [a.astype(np.float32) for a in arrays]
    arrays[0][1, 1, 0] = np.nan
    hs, _ = nb.lstm_forward(*arrays)
    assert hs.dtype == np.float32
    assert not np.isnan(hs[0]).any() and np.isnan(hs[1, 1:]).all() and not np.isnan(hs[1, 0]).any()


def test_mismatched_pooling_and_gate_arguments_are_refused(nb):
    """The compiled loops do not check indices, so the wrappers must."""
    f32 = np.float32
    x = np.zeros((2, 3, 5, 5), f32)
    with pytest.raises(ValueError, match="does not fit"):
        nb.maxpool2d_forward(x, (6, 6), (1, 1), ((0, 0), (0, 0)))
    with pytest.raises(ValueError, match="only padding"):
        nb.avgpool2d_forward(x, (2, 2), (1, 1), ((2, 0), (0, 0)))
    with pytest.raises(ValueError, match=r"N, C, H, W"):
        nb.maxpool2d_forward(x[0], (2, 2), (2, 2), ((0, 0), (0, 0)))
    y, ctx = nb.maxpool2d_forward(x, (2, 2), (2, 2), ((0, 0), (0, 0)))
    with pytest.raises(ValueError, match="dy of shape"):
        nb.maxpool2d_backward(y[:, :2], x, (2, 2), (2, 2), ((0, 0), (0, 0)), ctx)
    with pytest.raises(ValueError, match="dy of shape"):
        nb.avgpool2d_backward(y.astype(np.float64), x, (2, 2), (2, 2), ((0, 0), (0, 0)), None)
    xs, wx, wh, b = np.zeros((2, 3, 4), f32), np.zeros((4, 20), f32), np.zeros((5, 20), f32), np.zeros(20, f32)
    with pytest.raises(ValueError, match="lstm"):
        nb.lstm_forward(xs, wx[:3], wh, b)
    with pytest.raises(ValueError, match="one dtype"):
        nb.lstm_forward(xs, wx.astype(np.float64), wh, b)
    hs, ctx = nb.lstm_forward(xs, wx, wh, b)
    with pytest.raises(ValueError, match="hs and dhs"):
        nb.lstm_backward(hs[:, :2], xs, wx, wh, hs, ctx, np.empty_like(wx), np.empty_like(wh), np.empty_like(b), True)
    with pytest.raises(ValueError, match="gru"):
        nb.gru_forward(xs, wx[:, :15], wh, b[:15], b[:15], True)
