"""Dispatch tables: plain functions, numpy fallbacks for CPU backends, adapted short signatures,
lazy kernels resolved to their real target."""

from __future__ import annotations

import sys

import numpy as np
import pluggy
import pytest

import sega_backend_numpy.dense
import sega_backend_numpy.plugin as numpy_plugin
from sega_core import get_backend, hookimpl, lazy_kernel, list_backends
from sega_core.backends import KERNEL_HOOKS, KernelTable
from sega_core.errors import BackendError, BackendUnavailableError

KERNELS = [h[len("sega_"):] for h in KERNEL_HOOKS]


def test_numpy_table_holds_the_plain_kernel_functions():
    kernels = get_backend("numpy").kernels
    assert isinstance(kernels, KernelTable)
    assert kernels.dense_forward is sega_backend_numpy.dense.sega_dense_forward
    for name in KERNELS:
        assert getattr(kernels, name) is getattr(numpy_plugin, f"sega_{name}"), name
        assert not isinstance(getattr(kernels, name), pluggy.HookCaller)
    assert kernels.sources == {name: "numpy" for name in KERNELS}


def test_the_table_has_exactly_the_kernel_hooks():
    kernels = get_backend("numpy").kernels
    assert set(KernelTable.__slots__) == set(KERNELS) | {"sources"}
    with pytest.raises(AttributeError):
        kernels.not_a_kernel = 1  # __slots__: a typo cannot add a kernel


def test_partial_cpu_backend_falls_back_to_numpy(global_backend, plugin, relu):
    calls = []
    record = global_backend(plugin("partial", **relu(calls)), "partial")
    assert record.status == "ok" and record.implemented == ("sega_relu_forward", "sega_relu_backward")
    backend = get_backend("partial")
    kernels = backend.kernels
    own = {"relu_forward", "relu_backward"}
    assert kernels.sources == {name: ("partial" if name in own else "numpy") for name in KERNELS}
    assert kernels.dense_forward is sega_backend_numpy.dense.sega_dense_forward
    z = np.array([-1.0, 2.0])
    np.testing.assert_array_equal(kernels.relu_forward(z), [0.0, 2.0])
    kernels.relu_backward(np.ones(2), z, z)
    assert calls == ["relu_forward", "relu_backward"]
    # Services fall back too: a CPU backend's arrays are NumPy arrays.
    assert backend.xp is np and backend.to_host(backend.to_device(z)) is not None
    # The listing says the same as the table.
    listed = next(b for b in list_backends() if b["name"] == "partial")
    assert listed["status"] == "ok"
    assert listed["kernels"] == kernels.sources


def test_fallback_table_is_rebuilt_when_the_reference_goes(fresh_registry, plugin, relu):
    fresh_registry.register(plugin("partial", **relu()), "partial")
    assert fresh_registry.get("partial").kernels.sources["dense_forward"] == "numpy"
    fresh_registry.unregister("numpy")
    with pytest.raises(BackendError, match="lacks"):
        fresh_registry.get("partial")


def test_an_implementation_taking_fewer_arguments_is_called_with_only_those(fresh_registry, plugin):
    received = []

    def leaky_relu_forward(z, alpha):
        return np.where(z > 0, z, alpha * z)

    def leaky_relu_backward(alpha, dy):  # fewer arguments than the spec, and in another order
        received.append({"alpha": alpha, "dy": dy})
        return dy * alpha

    fresh_registry.register(plugin("short", leaky_relu_forward=leaky_relu_forward,
                                   leaky_relu_backward=leaky_relu_backward), "short")
    kernels = fresh_registry.get("short").kernels
    dy, z = np.ones(3), np.arange(3.0)
    np.testing.assert_array_equal(kernels.leaky_relu_backward(dy, z, z, 0.25), 0.25 * dy)
    assert len(received) == 1 and set(received[0]) == {"alpha", "dy"}
    assert received[0]["alpha"] == 0.25 and received[0]["dy"] is dy
    # An adapter only where needed: the full-signature forward is stored as it is.
    assert kernels.leaky_relu_forward is leaky_relu_forward
    assert kernels.leaky_relu_backward.__wrapped__ is leaky_relu_backward
    assert kernels.leaky_relu_backward.__name__ == "sega_leaky_relu_backward"


LAZY_TARGET = '''
import numpy as np

def relu_forward(z):
    return np.maximum(z, 0) + 0  # a distinct function, so identity checks mean something

def relu_backward(dy, z, y):
    return dy * (z > 0)
'''


def _lazy_plugin(plugin, module_name):
    module = plugin("lazy")

    @hookimpl
    @lazy_kernel(f"{module_name}:relu_forward")
    def sega_relu_forward(z):
        """Stub: the real kernel lives in the target module."""

    @hookimpl
    @lazy_kernel(f"{module_name}:relu_backward")
    def sega_relu_backward(dy, z, y):
        """Stub."""

    module.sega_relu_forward = sega_relu_forward
    module.sega_relu_backward = sega_relu_backward
    return module


def test_lazy_kernel_resolves_to_its_target_only_when_used(fresh_registry, plugin, fake_dists):
    fake_dists.add("fake-sega-lazy", "1.0", {}, {"fake_sega_lazy_kernels": LAZY_TARGET})
    stub_module = _lazy_plugin(plugin, "fake_sega_lazy_kernels")
    assert fresh_registry.register(stub_module, "lazy").status == "ok"
    fresh_registry.records()  # listing the backend must not import its kernels either
    assert "fake_sega_lazy_kernels" not in sys.modules
    kernels = fresh_registry.get("lazy").kernels
    target = sys.modules["fake_sega_lazy_kernels"]
    assert kernels.relu_forward is target.relu_forward  # the real kernel, no stub in between
    assert kernels.relu_backward is target.relu_backward
    assert kernels.sources["relu_forward"] == "lazy"
    # Calling the stub directly also works: it imports and forwards.
    np.testing.assert_array_equal(stub_module.sega_relu_forward(np.array([-1.0, 3.0])), [0.0, 3.0])


def test_lazy_kernel_whose_module_is_missing_gives_a_sega_error(fresh_registry, plugin):
    fresh_registry.register(_lazy_plugin(plugin, "no_such_module_for_sega_tests"), "lazy")
    with pytest.raises(BackendUnavailableError, match="'lazy' cannot be used: importing the kernel behind "
                                                      "sega_relu_forward failed: ModuleNotFoundError"):
        fresh_registry.get("lazy")


def test_lazy_kernel_target_must_name_a_function():
    with pytest.raises(ValueError, match="package.module:function"):
        lazy_kernel("just_a_module")(lambda z: None)(np.zeros(1))


def test_resolved_backends_are_cached(fresh_registry):
    assert fresh_registry.get("numpy") is fresh_registry.get("numpy")


def test_renamed_argument_keeps_working_with_a_deprecation_warning(fresh_registry, plugin, monkeypatch):
    from sega_core import hookspecs

    monkeypatch.setattr(hookspecs, "DEPRECATED_ARGUMENTS", {"sega_huber": {"threshold": "delta"}})
    received = {}

    def huber(pred, target, threshold):  # written against the old name
        received["threshold"] = threshold
        return np.asarray(0.0), pred - target

    assert fresh_registry.register(plugin("old", huber=huber), "old").status == "ok"
    with pytest.warns(DeprecationWarning, match="'threshold' of sega_huber was renamed 'delta'"):
        kernels = fresh_registry.get("old").kernels
    kernels.huber(np.ones(2), np.zeros(2), 0.5)
    assert received == {"threshold": 0.5}


def test_a_loss_written_before_weights_falls_back_to_the_reference_when_weighted(global_backend, plugin):
    """A CPU backend's 1.1 loss (no ``weight``) serves unweighted calls; weighted ones go to NumPy."""
    calls = []

    def mse(pred, target):
        calls.append("own")
        return np.asarray(((pred - target) ** 2).mean()), 2 * (pred - target) / pred.size

    global_backend(plugin("oldloss", hook_api="1.1", mse=mse), "oldloss")
    kernels = get_backend("oldloss").kernels
    pred, target = np.arange(6.0).reshape(3, 2), np.zeros((3, 2))
    kernels.mse(pred, target, None)
    assert calls == ["own"]
    weight = np.array([1.0, 0.0, 2.0])
    loss, grad = kernels.mse(pred, target, weight)
    assert calls == ["own"]
    ref_loss, ref_grad = get_backend("numpy").kernels.mse(pred, target, weight)
    assert float(loss) == float(ref_loss) and np.array_equal(grad, ref_grad)


def test_a_device_backends_loss_without_weights_refuses_a_weighted_call(fresh_registry, plugin):
    from sega_core.backends.dispatch import KERNEL_HOOKS as HOOKS, SERVICE_HOOKS

    numpy_hooks = {h[len("sega_"):]: getattr(numpy_plugin, h) for h in HOOKS + SERVICE_HOOKS}

    def mse(pred, target):
        return numpy_hooks["mse"](pred, target, None)

    record = fresh_registry.register(plugin("gpuish", device="gpu", hook_api="1.1", **{**numpy_hooks, "mse": mse}), "gpuish")
    assert record.status == "ok", record.reason
    kernels = fresh_registry.get("gpuish").kernels
    kernels.mse(np.ones((2, 1)), np.zeros((2, 1)), None)
    with pytest.raises(BackendError, match="backend 'gpuish' cannot do this: its sega_mse does not take 'weight'"):
        kernels.mse(np.ones((2, 1)), np.zeros((2, 1)), np.ones(2))
