"""Arrays from other frameworks into train, predict and evaluate: PyTorch tensors (read in place
on the CPU through DLPack), device arrays (one copy to the host, or a one-line refusal), data
frames, and array-API objects; the dtype rules are NumPy's (no silent promotion)."""

from __future__ import annotations

import numpy as np
import pytest

from sega_core import InputError, NeuralNetwork
from sega_core.nn import layers as L
from sega_core.nn.validation import check_features, host_array

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(3)
F32, F64 = np.dtype(np.float32), np.dtype(np.float64)


def _require(backend: str) -> None:
    if backend == "numba":
        pytest.importorskip("numba")  # with numba installed, a backend that fails to load is a failure


def _trained(backend="numpy", dtype="float32", regressor=False):
    X = RNG.normal(size=(40, 5))
    y = RNG.normal(size=40) if regressor else RNG.integers(0, 3, 40)
    layers = [L.Dense(6, activation="relu"), L.Dense(1 if regressor else 3)]
    model = NeuralNetwork(layers, regressor=regressor, backend=backend, dtype=dtype, seed=0)
    model.train(X, y, epochs=2, batch_size=8, verbose=0)
    return model


# ---- in place on the CPU ------------------------------------------------------------------------


def test_a_float32_cpu_tensor_is_read_in_place():
    t = torch.randn(7, 5)
    arr = check_features(t, F32)
    assert np.shares_memory(arr, t.numpy())


def test_a_tensor_that_requires_grad_is_read_in_place_too():
    t = torch.randn(7, 5, requires_grad=True)
    arr = check_features(t, F32)
    assert np.shares_memory(arr, t.detach().numpy())


def test_a_non_contiguous_tensor_is_read_as_numpy_would_read_it():
    base = torch.randn(5, 14)
    t = base.T[::2]  # (7, 5), strided both ways
    np.testing.assert_array_equal(check_features(t, F32), np.ascontiguousarray(base.numpy().T[::2]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.int64, torch.int32, torch.uint8,
                                   torch.bool], ids=str)
@pytest.mark.parametrize("model_dtype", [F32, F64], ids=str)
def test_every_numeric_dtype_converts_as_its_numpy_array_does(dtype, model_dtype):
    t = (torch.randn(6, 4) * 3).to(dtype)
    got = check_features(t, model_dtype)
    want = check_features(t.numpy(), model_dtype)
    assert got.dtype == want.dtype == model_dtype
    np.testing.assert_array_equal(got, want)


def test_float64_beyond_float32_is_refused_as_for_numpy(one_line_error):
    t = torch.tensor([[1e300, 0.0]], dtype=torch.float64)
    message = one_line_error(InputError, lambda: check_features(t, F32), "float32")
    assert message == one_line_error(InputError, lambda: check_features(t.numpy(), F32))


def test_a_dtype_numpy_lacks_is_a_one_line_error(one_line_error):
    one_line_error(InputError, lambda: check_features(torch.ones(3, 2, dtype=torch.bfloat16), F32), "X (torch.Tensor)",
              "float32 or float64")


def test_complex_tensors_are_refused_as_complex_arrays_are(one_line_error):
    one_line_error(InputError, lambda: check_features(torch.ones(3, 2, dtype=torch.complex64), F32), "complex")


def test_nan_in_a_tensor_is_refused_as_in_an_array(one_line_error):
    t = torch.ones(3, 2)
    t[1, 1] = float("nan")
    one_line_error(InputError, lambda: check_features(t, F32), "NaN")


# ---- the model API --------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_predict_and_evaluate_take_tensors(backend):
    _require(backend)
    model = _trained(backend)
    X, y = RNG.normal(size=(9, 5)).astype(np.float32), RNG.integers(0, 3, 9)
    tX = torch.from_numpy(X).requires_grad_()
    np.testing.assert_array_equal(model.predict(tX), model.predict(X))
    np.testing.assert_array_equal(model.predict_proba(tX), model.predict_proba(X))
    assert model.evaluate(tX, torch.from_numpy(y)) == model.evaluate(X, y)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_training_on_tensors_is_training_on_their_arrays(backend):
    _require(backend)
    X, y, w = RNG.normal(size=(40, 5)), RNG.integers(0, 3, 40), RNG.uniform(0.5, 2, 40)
    a = NeuralNetwork([L.Dense(4), L.Dense(3)], backend=backend, seed=1)
    b = NeuralNetwork([L.Dense(4), L.Dense(3)], backend=backend, seed=1)
    a.train(X, y, sample_weight=w, epochs=2, batch_size=8, verbose=0, validation_data=(X[:10], y[:10]))
    b.train(torch.from_numpy(X), torch.from_numpy(y), sample_weight=torch.from_numpy(w), epochs=2, batch_size=8,
            verbose=0, validation_data=(torch.from_numpy(X[:10]), torch.from_numpy(y[:10])))
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert a.history == b.history


def test_regressors_and_binary_classifiers_take_tensor_targets():
    X = RNG.normal(size=(30, 5))
    reg = NeuralNetwork([L.Dense(1)], regressor=True, standardize_target=True, seed=0)
    reg.train(torch.from_numpy(X), torch.from_numpy(RNG.normal(50, 10, 30)).requires_grad_(), epochs=1, verbose=0)
    assert reg.predict(torch.from_numpy(X)).shape == (30,)
    clf = NeuralNetwork([L.Dense(1)], seed=0)
    labels = torch.from_numpy(RNG.integers(0, 2, 30)).bool()
    clf.train(torch.from_numpy(X), labels, epochs=1, verbose=0)
    assert list(clf.classes_) == [False, True]
    assert clf.predict(torch.from_numpy(X)).dtype == bool


# ---- devices ------------------------------------------------------------------------------------


class _DeviceArray:
    """A DLPack producer holding ``host`` but saying it lives on a CUDA device, as a GPU array
    would; ``copies`` says whether it copies itself to the host when asked (DLPack 1.0)."""

    def __init__(self, host, copies: bool):
        self.host, self.copies, self.requests = host, copies, []

    def __dlpack_device__(self):
        return (2, 0)

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        self.requests.append((dl_device, copy))
        if not (self.copies and dl_device is not None and int(dl_device[0]) == 1):
            raise BufferError("cannot export to that device")
        return self.host.copy().__dlpack__(stream=stream, max_version=max_version)


@pytest.mark.skipif(tuple(int(p) for p in np.__version__.split(".")[:2]) < (2, 1),
                    reason="asking a producer to copy to the host is NumPy >= 2.1's from_dlpack(device=)")
def test_a_device_array_is_copied_to_the_host_once():
    host = RNG.normal(size=(4, 3)).astype(np.float32)
    device_array = _DeviceArray(host, copies=True)
    arr = check_features(device_array, F32)
    np.testing.assert_array_equal(arr, host)
    assert not np.shares_memory(arr, host)
    assert len(device_array.requests) == 1 and device_array.requests[0][1] is True


def test_a_device_array_that_cannot_reach_the_host_is_a_one_line_error(one_line_error):
    one_line_error(InputError, lambda: host_array(_DeviceArray(np.ones((2, 2)), copies=False)), "on a CUDA device", "host")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the GPU tensor check needs one")
def test_a_cuda_tensor_is_copied_once_to_a_cpu_backend():
    model = _trained()
    X = RNG.normal(size=(9, 5)).astype(np.float32)
    np.testing.assert_array_equal(model.predict_proba(torch.from_numpy(X).cuda()), model.predict_proba(X))


# ---- frames and other array-likes ---------------------------------------------------------------


class _Frame:
    """What sega needs of a data frame: ``to_numpy``."""

    def __init__(self, values):
        self.values = values

    def to_numpy(self):
        return self.values


class _ArrayAPIObject:
    """An array-API object without DLPack: read through ``__array__``."""

    def __init__(self, values):
        self.values = values

    def __array_namespace__(self, api_version=None):
        return np

    def __array__(self, dtype=None, copy=None):
        return self.values if dtype is None else self.values.astype(dtype)


@pytest.mark.parametrize("wrap", [_Frame, _ArrayAPIObject], ids=["frame", "array-api"])
def test_frames_and_array_api_objects(wrap):
    model = _trained()
    X = RNG.normal(size=(6, 5))
    np.testing.assert_array_equal(model.predict(wrap(X)), model.predict(X))


@pytest.mark.parametrize("library", ["pandas", "polars"])
def test_real_data_frames(library):
    frames = pytest.importorskip(library)
    model = _trained()
    X = RNG.normal(size=(6, 5))
    frame = frames.DataFrame({f"f{i}": X[:, i] for i in range(5)})
    np.testing.assert_array_equal(model.predict(frame), model.predict(X))


def test_the_estimators_take_tensors():
    pytest.importorskip("sklearn")
    from sega_core.estimators import SegaClassifier

    X, y = RNG.normal(size=(40, 4)), RNG.integers(0, 2, 40)
    a = SegaClassifier(hidden_layer_sizes=(4,), epochs=3, random_state=0).fit(X, y)
    b = SegaClassifier(hidden_layer_sizes=(4,), epochs=3, random_state=0).fit(torch.from_numpy(X), torch.from_numpy(y))
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(torch.from_numpy(X)))
