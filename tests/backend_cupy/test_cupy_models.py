"""Whole models with every layer type on the cupy backend (the GPU, or its CPU emulation).

Each layer type gets a small model around it and a learnable task. On the backend under test it
must train as the NumPy reference trains from the same seed (same losses, same predictions,
within float32 tolerance), learn, and survive files: saved from the device, a model loads on
NumPy and predicts the same; loaded back onto the device, it predicts the same again.

On the counting emulation (``_counting.py``), training must not wait for the device batch by
batch: the host reads from the device once per epoch (the epoch's loss), however many batches.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from sega_core import (
    GRU,
    LSTM,
    RNN,
    AvgPool2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    MaxPool2D,
    NeuralNetwork,
    Normalization,
    Reshape,
)
from sega_core.nn.layers import LAYER_TYPES

TABLE, IMAGE, SEQUENCE = (6,), (2, 6, 6), (5, 3)
N, BATCH, EPOCHS = 48, 16, 10

#: layer kind -> (the model's layers, its input shape). One model per layer type.
MODELS = {
    "Dense": (lambda: [Dense(8, activation="relu"), Dense(3)], TABLE),
    "Dropout": (lambda: [Dense(8, activation="relu"), Dropout(0.25), Dense(3)], TABLE),
    "Normalization": (lambda: [Normalization(), Dense(3)], TABLE),
    # ReLU first: a bias straight before a batch normalization gets only rounding noise as its
    # gradient, which Adam scales up to full steps, so no two backends would agree on it.
    "BatchNormalization": (lambda: [Dense(8, activation="relu"), BatchNormalization(), Dense(3)], TABLE),
    "Reshape": (lambda: [Reshape((2, 3)), Flatten(), Dense(3)], TABLE),
    "Conv2D": (lambda: [Conv2D(3, 3, padding="same", activation="relu"), Flatten(), Dense(3)], IMAGE),
    "MaxPool2D": (lambda: [Conv2D(3, 3, activation="relu"), MaxPool2D(2), Flatten(), Dense(3)], IMAGE),
    "AvgPool2D": (lambda: [AvgPool2D(2, padding="same"), Flatten(), Dense(3)], IMAGE),
    "GlobalAvgPool2D": (lambda: [Conv2D(4, 3, padding=1), GlobalAvgPool2D(), Dense(3)], IMAGE),
    "Flatten": (lambda: [Flatten(), Dense(3)], IMAGE),
    "RNN": (lambda: [RNN(6), Dense(3)], SEQUENCE),
    "LSTM": (lambda: [LSTM(5, return_sequences=True), LSTM(4), Dense(3)], SEQUENCE),
    "GRU": (lambda: [GRU(5, return_sequences=True), GRU(4, reset_after=False), Dense(3)], SEQUENCE),
}
#: Layers whose training draws random numbers on the backend's own generator (not NumPy's).
DRAWS_ON_THE_DEVICE = {"Dropout"}


def _task(shape, seed=0):
    """Inputs of ``shape`` whose class is the group of features with the largest mean (learnable)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, *shape)).astype(np.float32)
    flat = X.reshape(N, -1)
    groups = np.array_split(np.arange(flat.shape[1]), 3)
    y = np.stack([flat[:, g].mean(axis=1) for g in groups], axis=1).argmax(axis=1)
    return X, y


@functools.cache
def _trained(kind, backend):
    """A model with layer ``kind`` trained on ``backend`` (shared by the tests, which only read it)."""
    layers, shape = MODELS[kind]
    X, y = _task(shape)
    model = NeuralNetwork(layers(), backend=backend, seed=3, dtype="float32", input_shape=shape)
    model.train(X, y, epochs=EPOCHS, batch_size=BATCH, shuffle=False, lr=3e-2, progress=False)
    return model, X, y


def test_every_layer_type_has_a_model_here():
    missing = sorted({cls.__name__ for cls in LAYER_TYPES.values()} - set(MODELS))
    assert not missing, f"layer types with no model in MODELS (add one): {', '.join(missing)}"


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_a_model_with_each_layer_learns_as_on_numpy(kind, backend):
    model, X, _ = _trained(kind, backend)
    losses = model.history["loss"]
    assert all(np.isfinite(losses)) and losses[-1] < 0.9 * losses[0], losses
    if kind in DRAWS_ON_THE_DEVICE:
        return
    reference, _, _ = _trained(kind, "numpy")
    np.testing.assert_allclose(losses, reference.history["loss"], rtol=2e-3, atol=1e-5)
    np.testing.assert_allclose(model.predict_proba(X), reference.predict_proba(X), rtol=2e-3, atol=1e-4)


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_saved_from_the_device_loads_on_numpy_and_back(kind, backend, tmp_path):
    model, X, _ = _trained(kind, backend)
    expected = model.predict_proba(X)
    assert isinstance(expected, np.ndarray)
    model.save(tmp_path / "device.npz")
    on_numpy = NeuralNetwork.load(tmp_path / "device.npz", backend="numpy")
    np.testing.assert_allclose(on_numpy.predict_proba(X), expected, rtol=1e-4, atol=1e-6)
    on_numpy.save(tmp_path / "host.npz")
    back = NeuralNetwork.load(tmp_path / "host.npz", backend=backend)
    assert back.backend is backend
    np.testing.assert_allclose(back.predict_proba(X), expected, rtol=1e-4, atol=1e-6)


def _host_reads(counting, kind, n, epochs, **options):
    """Host synchronisations and host-to-device copies of one ``train`` call on ``n`` samples."""
    backend, counter = counting
    layers, shape = MODELS[kind]
    X, y = _task(shape)
    X, y = np.resize(X, (n, *shape)), np.resize(y, n)
    with counter.paused():
        model = NeuralNetwork(layers(), backend=backend, seed=3, dtype="float32", input_shape=shape)
    mark = counter.mark()
    model.train(X, y, epochs=epochs, batch_size=8, progress=False, **options)
    events = counter.since(mark)
    return len(events["syncs"]), len(events["uploads"]), events


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_training_reads_from_the_device_once_per_epoch(kind, counting):
    from sega_cupy_tests_counting import where

    syncs, uploads, events = _host_reads(counting, kind, 64, 2)
    few_syncs, few_uploads, _ = _host_reads(counting, kind, 32, 2)
    one_epoch, _, _ = _host_reads(counting, kind, 32, 1)
    assert syncs - one_epoch == 1, where(events["syncs"])  # the epoch's loss
    assert (syncs, uploads) == (few_syncs, few_uploads), where(events["syncs"] + events["uploads"])


@pytest.mark.parametrize("options", [{"track_metrics": True}, {"validation_split": 0.25, "track_metrics": True}])
def test_metrics_and_validation_read_per_epoch_not_per_batch(options, counting):
    from sega_cupy_tests_counting import where

    syncs, uploads, events = _host_reads(counting, "Conv2D", 96, 2, **options)
    few = _host_reads(counting, "Conv2D", 48, 2, **options)[:2]
    assert (syncs, uploads) == few, where(events["syncs"] + events["uploads"])
