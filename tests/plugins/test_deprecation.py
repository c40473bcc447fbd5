"""Hook-API evolution: adding an argument stays compatible; renaming or removing one warns first.

Hook API 1.0 has renamed nothing, so these tests put test-only entries into
``hookspecs.DEPRECATED_ARGUMENTS`` (as if ``sega_huber``'s ``delta`` had been called
``threshold`` before), exactly the form a real deprecation takes.
"""

from __future__ import annotations

import sys
import types
import warnings

import numpy as np
import pytest

from sega_core import NeuralNetwork, SegaPluginWarning, get_backend, lazy_kernel
from sega_core import hookspecs
from sega_core.testing import backend_checks


def old_huber(pred, target, threshold):
    """Huber loss written against the (hypothetical) old signature ``sega_huber(pred, target, threshold)``."""
    r = pred - target
    a = np.abs(r)
    loss = np.where(a <= threshold, 0.5 * r * r, threshold * (a - 0.5 * threshold))
    return np.asarray(loss.mean(), dtype=pred.dtype), np.clip(r, -threshold, threshold) * (1.0 / pred.size)


@pytest.fixture
def renamed(monkeypatch):
    """Pretend ``sega_huber``'s ``delta`` was once called ``threshold``."""
    monkeypatch.setitem(hookspecs.DEPRECATED_ARGUMENTS, "sega_huber", {"threshold": "delta"})


def _data(dtype=np.float64):
    rng = np.random.default_rng(0)
    return rng.normal(size=(6, 3)).astype(dtype), rng.normal(size=(6, 3)).astype(dtype)


def test_plugin_using_a_renamed_argument_works_and_warns(make_plugin, renamed, register_backend):
    record = register_backend(make_plugin("oldhuber", huber=old_huber), "oldhuber")
    assert record.status == "ok", record.reason
    with pytest.warns(DeprecationWarning) as caught:
        backend = get_backend("oldhuber")
    message = " ".join(str(w.message) for w in caught if issubclass(w.category, DeprecationWarning))
    assert "'oldhuber'" in message and "sega_huber" in message
    assert "'threshold'" in message and "'delta'" in message
    assert backend.kernels.sources["huber"] == "oldhuber"

    pred, target = _data()
    for delta in (0.3, 1.0):
        loss, grad = backend.kernels.huber(pred, target, delta)
        ref_loss, ref_grad = get_backend("numpy").kernels.huber(pred, target, delta, None)
        assert float(loss) == pytest.approx(float(ref_loss))
        np.testing.assert_allclose(grad, ref_grad)


def test_renamed_argument_passes_the_conformance_checks_and_trains(make_plugin, renamed, register_backend):
    register_backend(make_plugin("oldhuber2", huber=old_huber), "oldhuber2")
    with pytest.warns(DeprecationWarning):
        get_backend("oldhuber2")
    for check in backend_checks():
        if check.name in ("huber", "gradient_losses"):
            check("oldhuber2")
    X = np.random.default_rng(1).uniform(-1, 1, size=(100, 2))
    model = NeuralNetwork([2, 8, 1], regressor=True, loss_function="huber", backend="oldhuber2", seed=0)
    history = model.train(X, X[:, 0] - X[:, 1], epochs=20, batch_size=10, progress=False)
    assert history["loss"][-1] < 0.5 * history["loss"][0]


def test_without_the_deprecation_entry_the_old_name_is_rejected(make_plugin, register_backend):
    """The entry in DEPRECATED_ARGUMENTS is what keeps the old form working."""
    assert "sega_huber" not in hookspecs.DEPRECATED_ARGUMENTS
    with pytest.warns(SegaPluginWarning, match="threshold"):
        record = register_backend(make_plugin("unknownarg", huber=old_huber), "unknownarg")
    assert record.status == "failed"


def test_renamed_argument_in_a_lazy_kernel(make_plugin, renamed, register_backend, monkeypatch):
    target = types.ModuleType("fake_lazy_kernels_for_sega")
    target.huber = old_huber
    monkeypatch.setitem(sys.modules, target.__name__, target)

    @lazy_kernel(f"{target.__name__}:huber")
    def huber(pred, target, threshold):
        ...

    register_backend(make_plugin("lazyold", huber=huber), "lazyold")
    with pytest.warns(DeprecationWarning, match="'threshold' of sega_huber was renamed 'delta'"):
        backend = get_backend("lazyold")
    pred, target_values = _data(np.float32)
    loss, grad = backend.kernels.huber(pred, target_values, 0.5)
    ref_loss, ref_grad = get_backend("numpy").kernels.huber(pred, target_values, 0.5, None)
    assert loss.dtype == np.float32 and float(loss) == pytest.approx(float(ref_loss))
    np.testing.assert_allclose(grad, ref_grad)


def test_old_and_new_name_together_is_refused(make_plugin, renamed, register_backend):
    def both(pred, target, threshold, delta):
        return old_huber(pred, target, delta)

    with pytest.warns(SegaPluginWarning, match="both 'threshold' and its new name 'delta'"):
        record = register_backend(make_plugin("both", huber=both), "both")
    assert record.status == "failed"


def test_plugin_without_deprecated_names_is_registered_as_itself(make_plugin, renamed, register_backend):
    from sega_backend_numpy.losses import sega_huber

    plugin = make_plugin("current", huber=sega_huber)
    record = register_backend(plugin, "current")
    assert record.plugin is plugin
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        get_backend("current")


def test_argument_scheduled_for_removal_warns_only_plugins_that_take_it(make_plugin, monkeypatch, register_backend):
    monkeypatch.setitem(hookspecs.DEPRECATED_ARGUMENTS, "sega_relu_backward", {"y": None})

    def relu_backward_with_y(dy, z, y):
        return dy * (z > 0)

    def relu_backward_without_y(dy, z):
        return dy * (z > 0)

    def relu_forward(z):
        return np.maximum(z, 0)

    register_backend(make_plugin("takes_y", relu_forward=relu_forward, relu_backward=relu_backward_with_y), "takes_y")
    register_backend(make_plugin("no_y", relu_forward=relu_forward, relu_backward=relu_backward_without_y), "no_y")
    with pytest.warns(DeprecationWarning, match="'y' of sega_relu_backward is deprecated and will be removed"):
        takes_y = get_backend("takes_y")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        no_y = get_backend("no_y")
    z, dy = np.array([[-1.0, 0.0, 2.0]]), np.array([[5.0, 6.0, 7.0]])
    for backend in (takes_y, no_y):
        np.testing.assert_array_equal(backend.kernels.relu_backward(dy, z, np.maximum(z, 0)), [[0.0, 0.0, 7.0]])


def test_implementation_taking_fewer_arguments_still_works(make_plugin, register_backend):
    """An older plugin, written before an argument was added, takes fewer than the spec lists."""

    def relu_forward(z):
        return np.maximum(z, 0)

    def relu_backward(dy, z):  # spec: sega_relu_backward(dy, z, y)
        return dy * (z > 0)

    def dense_forward(x, w):  # as if the bias argument had been added later
        return x @ w

    def dense_backward(dy, x, w, dw, db, need_dx):
        np.matmul(x.T, dy, out=dw)
        np.sum(dy, axis=0, out=db)
        return dy @ w.T if need_dx else None

    register_backend(
        make_plugin("older", relu_forward=relu_forward, relu_backward=relu_backward,
                    dense_forward=dense_forward, dense_backward=dense_backward),
        "older",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        backend = get_backend("older")
    z, dy = np.array([[-1.0, 0.5]]), np.array([[3.0, 4.0]])
    np.testing.assert_array_equal(backend.kernels.relu_backward(dy, z, np.maximum(z, 0)), [[0.0, 4.0]])
    x, w = np.ones((2, 3)), np.ones((3, 4))
    np.testing.assert_array_equal(backend.kernels.dense_forward(x, w, np.full(4, 9.0)), np.full((2, 4), 3.0))
    for check in backend_checks():
        if check.name in ("relu_forward", "relu_backward", "gradient_activations"):
            check("older")


def test_implementation_with_arguments_in_another_order(make_plugin, register_backend):
    def dense_forward(b, w, x):
        return x @ w + b

    def dense_backward(need_dx, dw, db, w, x, dy):
        np.matmul(x.T, dy, out=dw)
        np.sum(dy, axis=0, out=db)
        return dy @ w.T if need_dx else None

    register_backend(make_plugin("shuffled", dense_forward=dense_forward, dense_backward=dense_backward), "shuffled")
    for check in backend_checks():
        if check.name in ("dense_forward", "dense_backward", "gradient_dense"):
            check("shuffled")
