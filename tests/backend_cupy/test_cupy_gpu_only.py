"""Checks that only mean something on a real GPU: device arrays, no host synchronisation, and
the backend wiring through ``sega_core.get_backend("cupy")``.

Skipped only when the plugin's own probe finds no CUDA device. With a device present, a missing
or broken cupy fails these tests (it is what they are there to find).
"""

from __future__ import annotations

import numpy as np
import pytest

from sega_backend_cupy.probe import cuda_device_problem

_PROBLEM = cuda_device_problem()
pytestmark = pytest.mark.skipif(
    _PROBLEM is not None, reason=f"no CUDA device: the CuPy GPU checks need one ({_PROBLEM})"
)


@pytest.fixture(scope="module")
def backend():
    import sega_core

    try:
        return sega_core.get_backend("cupy")
    except sega_core.BackendUnavailableError as exc:
        pytest.fail(f"a CUDA device is present but the cupy backend cannot be used: {exc}")


def test_backend_is_complete_and_all_its_own(backend):
    import cupy

    assert backend.device == "gpu"
    assert backend.xp is cupy
    assert set(backend.kernels.sources.values()) == {"cupy"}
    assert isinstance(backend.make_rng(0), cupy.random.Generator)


def _training_step(backend, arrays, rng, step_count):
    """Forward, loss, backward and an Adam update of a conv + rnn + dense stack: kernels only."""
    k = backend.kernels
    x, w, b, seq, wx, wh, bh, w2, b2, labels, flat, grad, m, v = arrays
    y, ctx = k.conv2d_forward(x, w, b, 2, 1)
    a = k.relu_forward(y)
    hs, rctx = k.rnn_forward(seq, wx, wh, bh, "tanh")
    feats = backend.xp.concatenate([a.reshape(a.shape[0], -1), hs[:, -1]], axis=1)
    logits = k.dense_forward(feats, w2, b2)
    dropped, mask = k.dropout_forward(logits, 0.25, rng)
    loss, g = k.softmax_cross_entropy(dropped, labels)
    g = k.dropout_backward(g, mask)
    nconv = w.size + b.size
    nrnn = wx.size + wh.size + bh.size
    gw, gb = grad[: w.size].reshape(w.shape), grad[w.size : nconv]
    gwx = grad[nconv : nconv + wx.size].reshape(wx.shape)
    gwh = grad[nconv + wx.size : nconv + wx.size + wh.size].reshape(wh.shape)
    gbh = grad[nconv + wx.size + wh.size : nconv + nrnn]
    gw2 = grad[nconv + nrnn : nconv + nrnn + w2.size].reshape(w2.shape)
    gb2 = grad[nconv + nrnn + w2.size :]
    dfeats = k.dense_backward(g, feats, w2, gw2, gb2, True)
    da = dfeats[:, : a[0].size].reshape(a.shape)
    dhs = backend.xp.zeros_like(hs)
    dhs[:, -1] = dfeats[:, a[0].size :]
    k.rnn_backward(dhs, seq, wx, wh, hs, "tanh", rctx, gwx, gwh, gbh, False)
    k.conv2d_backward(k.relu_backward(da, y, a), x, w, 2, 1, ctx, gw, gb, False)
    k.adam_update(flat, grad, m, v, step_count, 1e-3, 0.9, 0.999, 1e-8)
    return loss


#: A kernel that keeps one GPU thread busy for a given number of clock cycles.
_BUSY = r"""
extern "C" __global__ void busy(long long cycles) {
    long long start = clock64();
    while (clock64() - start < cycles) { }
}
"""
#: Cycles the busy kernel holds the stream: about 3 s at a data-centre GPU's 2 GHz, far longer
#: than queuing one training step takes.
_BUSY_CYCLES = 6 * 10**9


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_training_step_never_synchronises(backend, dtype):
    """Queue a whole step behind a kernel that keeps the GPU busy for seconds: had anything in the
    step waited for the device (a device-to-host copy, a synchronisation), the busy kernel would
    have finished by the time the step was queued. (A CUDA graph capture would say the same, but
    CuPy refuses cuBLAS calls while a stream is being captured.)"""
    import cupy

    rng = np.random.default_rng(3)
    n, classes = 5, 3
    x = rng.standard_normal((n, 3, 7, 7)).astype(dtype)
    seq = rng.standard_normal((n, 4, 2)).astype(dtype)
    shapes = [(4, 3, 3, 3), (4,), (2, 6), (6, 6), (6,), (4 * 4 * 4 + 6, classes), (classes,)]
    total = sum(int(np.prod(s)) for s in shapes)
    busy = cupy.RawKernel(_BUSY, "busy")
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        flat = cupy.asarray(rng.standard_normal(total).astype(dtype) * 0.3)
        params, start = [], 0
        for s in shapes:
            size = int(np.prod(s))
            params.append(flat[start : start + size].reshape(s))
            start += size
        w, b, wx, wh, bh, w2, b2 = params
        grad, m, v = cupy.zeros_like(flat), cupy.zeros_like(flat), cupy.zeros_like(flat)
        labels = cupy.asarray(rng.integers(0, classes, size=n))
        dropout_rng = backend.make_rng(1)
        arrays = (cupy.asarray(x), w, b, cupy.asarray(seq), wx, wh, bh, w2, b2, labels, flat, grad, m, v)
        _training_step(backend, arrays, dropout_rng, 1)  # warm-up: compile every kernel, fill the memory pool
        busy((1,), (1,), (np.int64(0),))  # compiled before it has to hold the stream
        stream.synchronize()
        busy((1,), (1,), (np.int64(_BUSY_CYCLES),))
        busy_done = stream.record()
        loss = _training_step(backend, arrays, dropout_rng, 2)
        waited = busy_done.done
        stream.synchronize()
    assert not waited, "a training step waited for the device: something in it copied to the host or synchronised"
    assert isinstance(loss, cupy.ndarray) and loss.ndim == 0 and loss.dtype == dtype
    assert np.isfinite(float(loss))


def test_kernel_results_are_device_arrays(backend):
    import cupy

    k, dev = backend.kernels, backend.to_device
    x = dev(np.ones((2, 3), dtype=np.float32))
    w = dev(np.ones((3, 4), dtype=np.float32))
    b = dev(np.zeros(4, dtype=np.float32))
    y = k.dense_forward(x, w, b)
    assert isinstance(y, cupy.ndarray) and y.dtype == np.float32
    loss, grad = k.mse(y, y * 0)
    assert isinstance(loss, cupy.ndarray) and loss.shape == () and isinstance(grad, cupy.ndarray)
    loss, grad = k.softmax_cross_entropy(y, dev(np.array([0, 3])))
    assert isinstance(loss, cupy.ndarray) and loss.shape == ()


def test_row_kernels_compile_once(backend):
    from sega_backend_cupy import _rowwise

    z = backend.to_device(np.zeros((3, 5)))
    for _ in range(3):
        backend.kernels.softmax_forward(z)
        backend.kernels.softmax_forward(z.astype(np.float32))
    assert _rowwise._module.cache_info().currsize == 1


class _DLPackOnly:
    """Another framework's CUDA array: DLPack and nothing else (a PyTorch CUDA tensor, say)."""

    def __init__(self, array):
        self.array = array

    def __dlpack__(self, **kwargs):
        return self.array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.array.__dlpack_device__()


def _two_models(backend):
    from sega_core import NeuralNetwork
    from sega_core.nn import layers as L

    return [NeuralNetwork([L.Dense(6, activation="relu"), L.Dense(3)], backend=backend, seed=4) for _ in range(2)]


def test_a_cupy_array_never_leaves_the_device(backend, monkeypatch):
    """Trained, predicted and scored in place: nothing of X's shape is copied to the host (CuPy
    refuses implicit copies, so the only ways out are the backend's to_host and DLPack's)."""
    import cupy

    from sega_core.nn import validation

    rng = np.random.default_rng(11)
    X_host, y = rng.standard_normal((48, 5)).astype(np.float32), rng.integers(0, 3, 48)
    X = cupy.asarray(X_host)
    reference, model = _two_models(backend)
    reference.train(X_host, y, epochs=2, batch_size=16, verbose=0)
    copied, to_host = [], backend.to_host
    monkeypatch.setattr(backend, "to_host", lambda a: copied.append(a.shape) or to_host(a))
    monkeypatch.setattr(validation, "_from_dlpack", lambda a, name: pytest.fail(f"{name} was copied to the host"))
    model.train(X, y, epochs=2, batch_size=16, verbose=0, validation_data=(X[:16], y[:16]))
    proba, scores = model.predict_proba(X), model.evaluate(X, y)
    monkeypatch.undo()
    assert X.shape not in copied and (16, 5) not in copied
    for a, b in zip(reference.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(proba, reference.predict_proba(X_host), rtol=1e-5, atol=1e-6)
    assert scores["accuracy"] == reference.evaluate(X_host, y)["accuracy"]


def test_another_frameworks_cuda_array_is_shared_through_dlpack(backend):
    import cupy

    X_host = np.random.default_rng(12).standard_normal((9, 5)).astype(np.float32)
    X = cupy.asarray(X_host)
    model, _ = _two_models(backend)
    model._build((5,))
    checked = model._features(_DLPackOnly(X))
    assert isinstance(checked, cupy.ndarray) and checked.data.ptr == X.data.ptr
    np.testing.assert_array_equal(model.predict_proba(_DLPackOnly(X)), model.predict_proba(X_host))
