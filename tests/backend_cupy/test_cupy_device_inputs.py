"""Data already on the CuPy backend's device stay there through train, predict and evaluate.

A device ``X`` is checked on the device (one reduction: its minimum and maximum come back, never
``X``), training cuts its batches from it on the device and the first layer receives them as
device arrays (views of ``X`` itself when not shuffled), and the results are those of the same
data given as a NumPy array.

On this CPU the device is the counting emulation (``_counting.py``): arrays that stand for cupy
arrays and report every host copy and synchronisation. The GPU tests at the end run the real
backend and skip only without a CUDA device.
"""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pytest

from sega_core import InputError, NeuralNetwork
from sega_core.nn import data as data_module
from sega_core.nn import layers as L
from sega_core.nn import validation

RNG = np.random.default_rng(11)
X_HOST = RNG.normal(size=(48, 5)).astype(np.float32)
Y = RNG.integers(0, 3, 48)


def _counting_module():
    """``_counting.py``, through the helper this folder's conftest loads."""
    return sys.modules["sega_cupy_tests_emulation"].load_sibling("_counting.py")


@pytest.fixture(scope="module")
def counted(tmp_path_factory):
    """``(backend, counter)``: the cupy backend on the counting emulation."""
    if shutil.which("g++") is None:
        pytest.skip("no C++ compiler (g++): the CPU emulation of the CUDA kernels needs one")
    return _counting_module().counting_backend(tmp_path_factory.mktemp("device_inputs"))


class _Transfers:
    """The shapes of every array the backend copies either way, and every array read on the host."""

    def __init__(self, backend, monkeypatch):
        self.uploads, self.downloads, self.host_reads = [], [], []
        to_device, to_host = backend.to_device, backend.to_host
        monkeypatch.setattr(backend, "to_device", self._spy(to_device, self.uploads))
        monkeypatch.setattr(backend, "to_host", self._spy(to_host, self.downloads))
        host_array = validation.host_array
        for module in (validation, data_module):
            monkeypatch.setattr(module, "host_array", self._spy(host_array, self.host_reads))

    @staticmethod
    def _spy(function, log):
        def spy(a, *args, **kwargs):
            log.append(tuple(getattr(a, "shape", ())))
            return function(a, *args, **kwargs)

        return spy

    def of_shape(self, shape) -> list:
        return [s for s in self.uploads + self.downloads + self.host_reads if s == tuple(shape)]


def _model(backend):
    return NeuralNetwork([L.Dense(6, activation="relu"), L.Dense(3)], backend=backend, seed=4)


def _first_layer_inputs(model):
    """Record what the first layer's forward pass receives in training."""
    seen, forward = [], model.layers[0].forward

    def spy(x, *args):
        seen.append(x)
        return forward(x, *args)

    model.layers[0].forward = spy
    return seen


def test_training_on_a_device_array_cuts_batches_from_it_on_the_device(counted, monkeypatch):
    backend, _ = counted
    device_type = _counting_module().DeviceArray
    X = backend.to_device(X_HOST)
    model = _model(backend)
    model._build((5,))
    seen = _first_layer_inputs(model)
    transfers = _Transfers(backend, monkeypatch)
    model.train(X, Y, epochs=2, batch_size=16, shuffle=False, verbose=0, validation_data=(X[:16], Y[:16]))
    assert len(seen) == 6
    assert all(type(x) is device_type for x in seen)
    assert all(np.shares_memory(x.view(np.ndarray), X.view(np.ndarray)) for x in seen)  # slices of X itself
    assert transfers.of_shape(X.shape) == [] and transfers.of_shape((16, 5)) == []


def test_shuffled_batches_are_gathered_on_the_device(counted, monkeypatch):
    backend, _ = counted
    X = backend.to_device(X_HOST)
    model = _model(backend)
    model._build((5,))
    seen = _first_layer_inputs(model)
    transfers = _Transfers(backend, monkeypatch)
    model.train(X, Y, epochs=1, batch_size=16, verbose=0, validation_split=0.25)
    assert seen and all(type(x) is _counting_module().DeviceArray for x in seen)
    assert transfers.of_shape(X.shape) == [] and transfers.of_shape((36, 5)) == [] and transfers.of_shape((12, 5)) == []


def test_a_device_array_trains_predicts_and_scores_as_its_host_copy_does(counted, monkeypatch):
    backend, _ = counted
    X = backend.to_device(X_HOST)
    on_host, on_device = _model(backend), _model(backend)
    on_host.train(X_HOST, Y, epochs=2, batch_size=16, verbose=0)
    want = on_host.predict_proba(X_HOST), on_host.predict(X_HOST), on_host.evaluate(X_HOST, Y)
    transfers = _Transfers(backend, monkeypatch)
    on_device.train(X, Y, epochs=2, batch_size=16, verbose=0)
    got = on_device.predict_proba(X), on_device.predict(X), on_device.evaluate(X, Y)
    assert transfers.of_shape(X.shape) == []
    for a, b in zip(on_host.get_weights(), on_device.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert on_host.history == on_device.history
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert got[2] == want[2]


def test_a_device_array_is_checked_with_one_synchronisation(counted):
    backend, counter = counted
    model = _model(backend)
    model._build((5,))
    X = backend.to_device(RNG.normal(size=(48, 5)))  # float64: converted to float32 on the device
    mark = counter.mark()
    checked = model._features(X)
    events = counter.since(mark)
    assert [name for name, _ in events["syncs"]] == ["to_host"]
    assert events["uploads"] == []
    assert type(checked) is _counting_module().DeviceArray and checked.dtype == np.float32
    np.testing.assert_array_equal(checked, X.astype(np.float32))


@pytest.mark.parametrize("case", ["nan", "inf", "beyond float32", "1-D", "features", "empty", "complex"])
def test_a_bad_device_array_gets_the_host_arrays_message(counted, case):
    backend, _ = counted
    model = _model(backend)
    model._build((5,))
    host = RNG.normal(size=(6, 5))
    if case == "nan":
        host[2, 3] = np.nan
    elif case == "inf":
        host[[0, 4], 1] = np.inf
    elif case == "beyond float32":
        host[1, 1] = -1e300
    elif case == "1-D":
        host = host[:, 0]
    elif case == "features":
        host = host[:, :4]
    elif case == "empty":
        host = host[:0]
    else:
        host = host.astype(np.complex128)
    with pytest.raises(InputError) as on_host:
        model._features(host)
    with pytest.raises(InputError) as on_device:
        model._features(backend.to_device(host))
    assert str(on_device.value) == str(on_host.value)
