"""Pooling, batch normalization, LSTM and GRU as users build them: shapes, bad arguments, files,
the summary, and batch normalization's two modes."""

from __future__ import annotations

import numpy as np
import pytest

from sega_core import (
    GRU,
    LSTM,
    AveragePooling2D,
    AvgPool2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Flatten,
    GlobalAveragePooling2D,
    GlobalAvgPool2D,
    InputError,
    MaxPool2D,
    MaxPooling2D,
    NeuralNetwork,
)


def _images(n=24, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 2, 7, 6)), rng.integers(0, 3, n)


def _sequences(n=24, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 5, 3)), rng.integers(0, 3, n)


def test_keras_long_names_are_the_same_layers():
    assert MaxPooling2D is MaxPool2D and AveragePooling2D is AvgPool2D and GlobalAveragePooling2D is GlobalAvgPool2D


@pytest.mark.parametrize(
    ("layer", "shape"),
    [
        (MaxPool2D(2), (2, 3, 3)),
        (MaxPool2D(3, strides=1), (2, 5, 4)),
        (MaxPool2D((2, 3), strides=(1, 2), padding="same"), (2, 7, 3)),
        (AvgPool2D(2, padding="same"), (2, 4, 3)),
        (GlobalAvgPool2D(), (2,)),
    ],
)
def test_pooling_output_shapes(layer, shape):
    model = NeuralNetwork([layer, Flatten(), Dense(3)], backend="numpy", input_shape=(2, 7, 6))
    assert layer.output_shape == shape
    X, _ = _images(4)
    assert model.predict_proba(X).shape == (4, 3)


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: MaxPool2D(0), r"MaxPool2D pool_size must be an int >= 1 or a pair of them, got 0"),
        (lambda: MaxPool2D((2, 2, 2)), "pool_size must be an int >= 1 or a pair"),
        (lambda: AvgPool2D(2, strides=0), "AvgPool2D strides must be"),
        (lambda: MaxPool2D(2, padding="full"), "padding must be 'valid' or 'same'"),
        (lambda: BatchNormalization(momentum=1.0), r"BatchNormalization needs momentum to be in \[0, 1\)"),
        (lambda: BatchNormalization(epsilon=0), "BatchNormalization needs epsilon to be a positive number"),
        (lambda: LSTM(0), "LSTM units must be an int >= 1"),
        (lambda: GRU(4, reset_after="yes"), "GRU reset_after must be True or False"),
        (lambda: LSTM(4, return_sequences=1), "LSTM return_sequences must be True or False"),
    ],
)
def test_bad_layer_arguments(factory, message):
    with pytest.raises(InputError, match=message):
        factory()


def test_a_pool_larger_than_its_input_is_refused():
    with pytest.raises(InputError, match="MaxPool2D pool 4x4 is larger than its 3x3 input; use a smaller pool_size or padding='same'"):
        NeuralNetwork([Conv2D(2, 3), MaxPool2D(4), Flatten(), Dense(2)], backend="numpy", input_shape=(1, 5, 5))
    # "same" padding keeps every window partly inside the image.
    NeuralNetwork([MaxPool2D(4, padding="same"), Flatten(), Dense(2)], backend="numpy", input_shape=(1, 3, 3))


def test_channels_last_images_are_named_as_such():
    with pytest.raises(InputError, match=r"look channels-last \(H, W, C\).*channels-first \(C, H, W\): pass X.transpose\(0, 3, 1, 2\)"):
        NeuralNetwork([MaxPool2D(2), Flatten(), Dense(2)], backend="numpy").fit(np.zeros((4, 28, 28, 3)), [0, 1, 0, 1],
                                                                             epochs=1)


def test_images_between_layers_may_have_any_channels_first_shape():
    # Conv2D's own output (16, 32, 3) would look channels-last if it were the model's input.
    model = NeuralNetwork([Conv2D(16, (1, 3)), MaxPool2D((2, 1)), Flatten(), Dense(2)], backend="numpy",
                          input_shape=(1, 32, 5), seed=0)
    assert model.layers[1].input_shape == (16, 32, 3)
    model.fit(np.random.default_rng(0).random((4, 1, 32, 5)), [0, 1, 0, 1], epochs=1, progress=False)


@pytest.mark.parametrize("layer", [LSTM, GRU])
def test_recurrent_layers_need_sequences(layer):
    with pytest.raises(InputError, match=rf"{layer.__name__} expects \(time steps, features\) samples but receives shape \(6,\)"):
        NeuralNetwork([layer(4), Dense(2)], backend="numpy").fit(np.zeros((4, 6)), [0, 1, 0, 1], epochs=1)


def test_batchnorm_refuses_one_value_per_feature_in_training_only():
    model = NeuralNetwork([Dense(4, activation="relu"), BatchNormalization(), Dense(2)], backend="numpy", seed=0)
    with pytest.raises(InputError, match=r"BatchNormalization needs more than one value per feature in training; "
                                         r"it needs at least 2 training samples"):
        model.fit(np.ones((1, 3)), [1], epochs=1)
    with pytest.raises(InputError, match=r"more than one value per feature in training; use a batch size > 1"):
        model.fit(np.ones((4, 3)), [0, 1, 0, 1], epochs=1, batch_size=1)
    assert not model._built  # a refused call builds nothing
    model.fit(np.ones((4, 3)), [0, 1, 0, 1], epochs=1, batch_size=2)
    # A last batch of one sample is refused before any step, naming the remainder and a batch
    # size that works; inference on one sample is fine.
    before = model.get_weights()
    with pytest.raises(InputError, match=r"^33 training samples in batches of 32 leave a last batch of 1 sample, and "
                                         r"BatchNormalization .*: use batch_size=31, or drop a sample$"):
        model.fit(np.ones((33, 3)), [0, 1] * 16 + [1], epochs=1)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    model.fit(np.ones((4, 3)), [0, 1, 0, 1], epochs=1, batch_size=2)
    assert model.predict(np.ones((1, 3))).shape == (1,)
    # Images: one sample still holds H * W values per channel.
    images = NeuralNetwork([Conv2D(2, 3, padding=1), BatchNormalization(), Flatten(), Dense(2)], backend="numpy")
    images.fit(np.ones((1, 1, 4, 4)), [1], epochs=1)


def test_batchnorm_uses_batch_statistics_in_training_and_running_ones_otherwise():
    rng = np.random.default_rng(0)
    X = rng.normal(5.0, 3.0, size=(64, 4))
    bn = BatchNormalization(momentum=0.0)  # running statistics = the last batch's
    model = NeuralNetwork([bn, Dense(2)], backend="numpy", seed=0, dtype="float64")
    model.fit(X, rng.integers(0, 2, 64), epochs=1, batch_size=64, shuffle=False, lr=1e-12)
    np.testing.assert_allclose(bn.state["moving_mean"], X.mean(axis=0))
    np.testing.assert_allclose(bn.state["moving_variance"], X.var(axis=0))
    before = (bn.state["moving_mean"].copy(), bn.state["moving_variance"].copy())
    model.predict(X[:3])
    model.evaluate(X, rng.integers(0, 2, 64))
    for a, b in zip(before, (bn.state["moving_mean"], bn.state["moving_variance"])):
        np.testing.assert_array_equal(a, b)  # inference does not touch the running statistics


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_every_new_layer_survives_a_file_on_every_backend(tmp_path, backend, require_backend):
    require_backend(backend)
    X, y = _images()
    S, ys = _sequences()
    image_model = NeuralNetwork(
        [Conv2D(3, 3, padding=1), BatchNormalization(), MaxPool2D(2), AvgPool2D((2, 1), strides=1, padding="same"),
         GlobalAvgPool2D(), Dense(3, activation="softmax")], seed=0)
    sequence_model = NeuralNetwork([LSTM(4, return_sequences=True), GRU(3, reset_after=False), Dense(3, activation="softmax")],
                                   seed=0)
    for model, data, labels in ((image_model, X, y), (sequence_model, S, ys)):
        model.fit(data, labels, epochs=2, batch_size=8)
        model.save(tmp_path / "m.npz")
        loaded = NeuralNetwork.load(tmp_path / "m.npz", backend=backend)
        np.testing.assert_allclose(loaded.predict_proba(data), model.predict_proba(data), rtol=1e-5, atol=1e-6)
        assert [type(a) for a in loaded.layers] == [type(b) for b in model.layers]
        assert [a.get_config() for a in loaded.layers] == [b.get_config() for b in model.layers]


def test_summary_shows_the_new_layers():
    model = NeuralNetwork([Conv2D(2, 3), BatchNormalization(), MaxPool2D(2), GlobalAvgPool2D(), Dense(3)],
                          backend="numpy", input_shape=(1, 8, 8))
    text = model.summary(print_fn=None)
    for row in ("BatchNormalization  (N, 2, 6, 6)", "MaxPool2D           (N, 2, 3, 3)", "GlobalAvgPool2D     (N, 2)"):
        assert row in text
    seq = NeuralNetwork([LSTM(5, return_sequences=True), GRU(4)], backend="numpy", input_shape=(7, 3), regressor=True)
    rows = [line.split() for line in seq.summary(print_fn=None).splitlines()]
    assert ["LSTM", "(N,", "7,", "5)", "180"] in rows  # 4 * 5 * (3 + 5) + 4 * 5
    assert ["GRU", "(N,", "4)", "132"] in rows  # 3 * 4 * (5 + 4) + 2 * 3 * 4


@pytest.mark.parametrize(
    ("kwargs", "shape"),
    [
        ({"kernel_size": 3, "padding": "same"}, (2, 7, 6)),
        ({"kernel_size": 4, "padding": "same", "strides": 2}, (2, 4, 3)),
        ({"kernel_size": (3, 1), "padding": "valid"}, (2, 5, 6)),
        ({"kernel_size": (2, 3), "stride": (1, 2), "padding": (1, 0)}, (2, 8, 2)),
    ],
)
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_conv2d_padding_modes_and_rectangular_kernels(kwargs, shape, backend, require_backend):
    """'same' keeps ceil(size / stride) pixels (an odd total padding goes bottom and right, as in
    TensorFlow); the result equals the reference on every backend."""
    require_backend(backend)
    X, y = _images(6)
    layers = lambda: [Conv2D(2, **kwargs), Flatten(), Dense(3, activation="softmax")]  # noqa: E731
    model = NeuralNetwork(layers(), backend=backend, seed=0, dtype="float64", input_shape=(2, 7, 6))
    assert model.layers[0].output_shape == shape
    reference = NeuralNetwork(layers(), backend="numpy", seed=0, dtype="float64", input_shape=(2, 7, 6))
    np.testing.assert_allclose(model.predict_proba(X), reference.predict_proba(X), rtol=1e-10)
    model.fit(X, y, epochs=1)


def test_conv2d_same_padding_matches_torch_on_an_even_kernel():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2, 1, 5, 6))
    model = NeuralNetwork([Conv2D(1, 4, strides=2, padding="same", activation="linear"), Flatten()], backend="numpy",
                          regressor=True, dtype="float64", input_shape=(1, 5, 6))
    w, b = model.get_weights()
    # TensorFlow's "same": ceil(5 / 2) = 3 rows need 3 padding rows (1 above, 2 below), likewise columns.
    padded = torch.nn.functional.pad(torch.tensor(X), (1, 1, 1, 2))
    expected = torch.nn.functional.conv2d(padded, torch.tensor(w), torch.tensor(b), stride=2).reshape(2, -1).numpy()
    np.testing.assert_allclose(model.predict(X), expected, rtol=1e-12)
