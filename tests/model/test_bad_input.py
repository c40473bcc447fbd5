"""Every kind of bad input gets a clear InputError (a ValueError) naming the problem."""

from __future__ import annotations

import numpy as np
import pytest

from sega_core import RNN, SGD, Conv2D, Dense, Dropout, Flatten, InputError, NeuralNetwork, StepLR

rng = np.random.default_rng(0)
X = rng.normal(size=(20, 4))
Y = np.arange(20) % 3


def clf(**kw):
    return NeuralNetwork([4, 5, 3], backend="numpy", seed=0, **kw)


def reg(**kw):
    return NeuralNetwork([4, 5, 1], backend="numpy", seed=0, regressor=True, **kw)


def test_input_error_is_a_value_error():
    assert issubclass(InputError, ValueError)


# ---- data ---------------------------------------------------------------------------------------


def test_mismatched_lengths():
    with pytest.raises(InputError, match="X has 20 samples but y has 19"):
        clf().train(X, Y[:19], epochs=1)
    with pytest.raises(InputError, match="X_val has 5 samples but y_val has 4"):
        clf().train(X, Y, validation_data=(X[:5], Y[:4]), epochs=1)
    with pytest.raises(InputError, match="samples but y has"):
        clf().evaluate(X, Y[:3])


def test_validation_data_must_come_in_pairs():
    with pytest.raises(InputError, match="both X_val and y_val"):
        clf().train(X, Y, X_val=X, epochs=1)


def test_wrong_feature_count():
    model = clf()
    with pytest.raises(InputError, match="X has 5 features, but the model expects 4"):
        model.train(np.ones((20, 5)), Y, epochs=1)
    model.train(X, Y, epochs=1, progress=False)
    with pytest.raises(InputError, match="3 features, but the model expects 4"):
        model.predict(np.ones((2, 3)))
    with pytest.raises(InputError, match="X_val has 3 features"):
        model.train(X, Y, validation_data=(np.ones((2, 3)), Y[:2]), epochs=1)


def test_one_dimensional_x_says_how_to_reshape():
    with pytest.raises(InputError, match=r"reshape\(-1, 1\)"):
        clf().train(np.ones(20), Y, epochs=1)


def test_wrong_image_shape():
    model = NeuralNetwork([Conv2D(2, 3), Flatten(), Dense(3)], backend="numpy", input_shape=(1, 8, 8))
    with pytest.raises(InputError, match=r"samples of shape \(8, 8\), but the model expects \(1, 8, 8\)"):
        model.predict(np.ones((2, 8, 8)))
    with pytest.raises(InputError, match=r"\(3, 8, 8\), but the model expects \(1, 8, 8\)"):
        model.predict(np.ones((2, 3, 8, 8)))
    with pytest.raises(InputError, match="Conv2D expects \\(channels, height, width\\)"):
        NeuralNetwork([Conv2D(2, 3), Flatten(), Dense(3)], backend="numpy").train(np.ones((4, 64)), Y[:4], epochs=1)


def test_wrong_sequence_shape():
    with pytest.raises(InputError, match="RNN expects \\(time steps, features\\)"):
        NeuralNetwork([RNN(4), Dense(3)], backend="numpy").train(np.ones((4, 64)), Y[:4], epochs=1)
    model = NeuralNetwork([RNN(4), Dense(3)], backend="numpy", input_shape=(8, 8))
    with pytest.raises(InputError, match=r"\(4, 16\), but the model expects \(8, 8\)"):
        model.predict(np.ones((2, 4, 16)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_x(bad):
    Xb = X.copy()
    Xb[3, 1] = bad
    with pytest.raises(InputError, match="X contains 1 NaN or infinite"):
        clf().train(Xb, Y, epochs=1)
    model = clf()
    with pytest.raises(InputError, match="NaN or infinite"):
        model.predict(Xb)
    with pytest.raises(InputError, match="X_val contains 1 NaN"):
        model.train(X, Y, validation_data=(Xb, Y), epochs=1)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_in_y(bad):
    yr = rng.normal(size=20)
    yr[5] = bad
    with pytest.raises(InputError, match="y contains 1 NaN or infinite"):
        reg().train(X, yr, epochs=1)
    yc = Y.astype(float)
    yc[0] = bad
    with pytest.raises(InputError, match="y contains 1 NaN or infinite"):
        clf().train(X, yc, epochs=1)


@pytest.mark.parametrize("labels", [np.arange(20) % 4, -(np.arange(20) % 2)])
def test_labels_that_are_not_indices_must_match_the_output_size(labels):
    with pytest.raises(InputError, match=r"distinct labels \(.*\) but the model has 3 classes"):
        clf().train(X, labels, epochs=1)


def test_binary_labels_must_be_zero_or_one():
    model = NeuralNetwork([4, 1], backend="numpy")
    with pytest.raises(InputError, match="3 distinct labels .* but the model has 2 classes"):
        model.train(X, np.arange(20) % 3, epochs=1)
    with pytest.raises(InputError, match=r"in \[0, 1\]"):
        model.train(X, np.full((20, 1), 2.0), epochs=1)


def test_one_hot_rows_must_match_outputs_and_sum_to_one():
    with pytest.raises(InputError, match=r"\(N, 3\)"):
        clf().train(X, np.eye(4)[np.arange(20) % 4], epochs=1)
    with pytest.raises(InputError, match="one-hot or class probabilities"):
        clf().train(X, 2 * np.eye(3)[Y], epochs=1)


def test_regression_target_for_a_classifier():
    with pytest.raises(InputError, match="regression target.*regressor=True"):
        clf().train(X, rng.normal(size=20), epochs=1)


@pytest.mark.parametrize("labels", [np.array(["cat", "dog"] * 10), np.arange(20) % 2 == 0])
def test_class_labels_for_a_regressor(labels):
    with pytest.raises(InputError, match="look like class labels"):
        reg().train(X, labels, epochs=1)


def test_regressor_output_count():
    with pytest.raises(InputError, match="the regressor has 1 output"):
        reg().train(X, np.ones((20, 2)), epochs=1)


def test_classification_loss_for_regressor_and_vice_versa():
    with pytest.raises(InputError, match="for classification; a regressor needs mse, mae or huber"):
        NeuralNetwork([4, 1], regressor=True, loss_function="cross_entropy", backend="numpy")
    with pytest.raises(InputError, match="for regression; build the model with regressor=True"):
        NeuralNetwork([4, 3], loss_function="mse", backend="numpy")
    with pytest.raises(InputError, match="cross_entropy needs at least 2 outputs"):
        NeuralNetwork([4, 1], loss_function="cross_entropy", backend="numpy")


def test_predict_proba_on_a_regressor():
    with pytest.raises(InputError, match="predict_proba is for classifiers"):
        reg().predict_proba(X)


@pytest.mark.parametrize("empty", [np.empty((0, 4)), np.empty((20, 0)), []], ids=["no-rows", "no-columns", "list"])
def test_empty_x(empty):
    with pytest.raises(InputError, match="empty"):
        clf().train(empty, Y, epochs=1)


def test_empty_y():
    with pytest.raises(InputError, match="y is empty"):
        clf().train(X, np.array([], dtype=int), epochs=1)
    with pytest.raises(InputError, match="y is empty"):
        reg().train(X, [], epochs=1)


def test_none_data():
    with pytest.raises(InputError, match="X is None"):
        clf().train(None, Y, epochs=1)
    with pytest.raises(InputError, match="y is None"):
        clf().train(X, None, epochs=1)


@pytest.mark.parametrize(
    "data",
    [np.array([["a", "b", "c", "d"]] * 20), np.array([[object(), 1, 2, 3]] * 20, dtype=object), [[1, 2], [3]]],
    ids=["text", "objects", "ragged"],
)
def test_non_numeric_x(data):
    with pytest.raises(InputError, match="numeric|could not be read"):
        clf().train(data, Y[: len(data)], epochs=1)


def test_text_labels_must_be_as_many_as_the_classes():
    with pytest.raises(InputError, match=r"y holds 2 distinct labels \('a', 'b'\) but the model has 3 classes"):
        clf().train(X, np.array(["a", "b"] * 10), epochs=1)


def test_labels_never_seen_in_training_are_named():
    model = clf()
    model.train(X, np.array(["a", "b", "c", "a"] * 5), epochs=1)
    with pytest.raises(InputError, match="label 'd', which the model was not trained on .*'a', 'b', 'c'"):
        model.evaluate(X, np.array(["a", "b", "c", "d"] * 5))


# ---- architecture -----------------------------------------------------------------------------


def test_layers_that_do_not_chain():
    with pytest.raises(InputError, match="Dense expects flat .* put a Flatten\\(\\) before it"):
        NeuralNetwork([Conv2D(2, 3), Dense(3)], backend="numpy", input_shape=(1, 8, 8))
    with pytest.raises(InputError, match="Conv2D expects \\(channels, height, width\\)"):
        NeuralNetwork([Dense(4), Conv2D(2, 3), Flatten(), Dense(3)], backend="numpy", input_shape=(8,))
    with pytest.raises(InputError, match="kernel 5 with padding 0 does not fit an input of 3x3"):
        NeuralNetwork([Conv2D(2, 5), Flatten(), Dense(3)], backend="numpy", input_shape=(1, 3, 3))
    with pytest.raises(InputError, match="RNN expects"):
        NeuralNetwork([Conv2D(2, 3), RNN(3), Dense(3)], backend="numpy", input_shape=(1, 8, 8))
    with pytest.raises(InputError, match="end the model with a Dense layer"):
        NeuralNetwork([Conv2D(2, 3)], backend="numpy", input_shape=(1, 8, 8))
    with pytest.raises(InputError, match="end the model with a Dense layer"):
        NeuralNetwork([RNN(3, return_sequences=True)], backend="numpy", input_shape=(4, 2))


@pytest.mark.parametrize("sizes", [[4], [4, 0, 3], [4, -2, 3], []])
def test_bad_layer_sizes(sizes):
    with pytest.raises(InputError, match="layer"):
        NeuralNetwork(sizes, backend="numpy")


def test_mixed_sizes_and_layer_objects():
    with pytest.raises(InputError, match="all sizes .* or all layer objects"):
        NeuralNetwork([4, Dense(3)], backend="numpy")


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: Dense(0), "Dense units must be an int >= 1"),
        (lambda: Dense(2.5), "Dense units must be an int >= 1"),
        (lambda: Conv2D(0), "filters must be an int >= 1"),
        (lambda: Conv2D(2, kernel_size=0), "kernel_size must be an int >= 1"),
        (lambda: Conv2D(2, stride=0), "stride must be an int >= 1"),
        (lambda: Conv2D(2, padding=-1), "padding must be 'valid', 'same', an int >= 0 or a pair of them, got -1"),
        (lambda: Conv2D(2, padding="full"), "padding must be 'valid', 'same', an int >= 0 or a pair of them"),
        (lambda: Conv2D(2, kernel_size=(3, 3, 3)), "kernel_size must be an int >= 1 or a pair of them"),
        (lambda: Conv2D(2, stride=2, strides=2), "give Conv2D stride or strides"),
        (lambda: RNN(0), "RNN units must be an int >= 1"),
        (lambda: RNN(3, activation="softmax"), "valid names: tanh, relu, sigmoid, linear"),
        (lambda: Dropout(1.0), r"dropout rate must be a number in \[0, 1\)"),
        (lambda: Dropout(-0.1), r"dropout rate must be a number in \[0, 1\)"),
    ],
)
def test_bad_layer_arguments(factory, message):
    with pytest.raises(InputError, match=message):
        factory()


def test_unknown_activation_lists_valid_names():
    valid = "valid names: sigmoid, tanh, relu, leaky_relu, softmax, linear"
    with pytest.raises(InputError, match=f"unknown activation 'swish'; {valid}"):
        Dense(3, activation="swish")
    with pytest.raises(InputError, match=f"unknown activation 'gelu'; {valid}"):
        NeuralNetwork([4, 5, 3], activations=["gelu", "softmax"], backend="numpy")
    with pytest.raises(InputError, match="one name per layer"):
        NeuralNetwork([4, 5, 3], activations=["relu"], backend="numpy")


def test_unknown_optimizer_lists_valid_names():
    with pytest.raises(InputError, match="unknown optimizer 'rmsprop'; valid names: sgd, adam, adadelta"):
        clf().train(X, Y, optimizer="rmsprop", epochs=1)
    with pytest.raises(InputError, match="optimizer must be a name or an Optimizer"):
        clf().train(X, Y, optimizer=3, epochs=1)


def test_unknown_loss_and_scheduler_list_valid_names():
    with pytest.raises(InputError, match="unknown loss function 'hinge'; valid names: cross_entropy, bce_with_logits, mse, mae, huber"):
        NeuralNetwork([4, 3], loss_function="hinge", backend="numpy")
    with pytest.raises(InputError, match="unknown lr_scheduler 'linear'; valid names: step, exponential, plateau, cosine"):
        clf().train(X, Y, lr_scheduler="linear", epochs=1)
    with pytest.raises(InputError, match=r"cosine schedule needs its settings: lr_scheduler=CosineDecay\(initial_lr"):
        clf().train(X, Y, lr_scheduler="cosine", epochs=1)


# ---- training arguments -----------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True, "16"])
def test_batch_size_below_one_or_not_an_int(batch_size):
    with pytest.raises(InputError, match="batch_size must be an int >= 1"):
        clf().train(X, Y, batch_size=batch_size, epochs=1)


@pytest.mark.parametrize("epochs", [-1, 1.5])
def test_bad_epochs(epochs):
    with pytest.raises(InputError, match="epochs must be an int >= 0"):
        clf().train(X, Y, epochs=epochs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dropout_rate": 1.0}, r"dropout_rate must be in \[0, 1\)"),
        ({"reg_lambda": -0.1}, "reg_lambda must be a finite number >= 0"),
        ({"reg_lambda": float("nan")}, "reg_lambda must be a finite number >= 0"),
        ({"dtype": "float16"}, "dtype must be 'float32' or 'float64'"),
        ({"dtype": "int32"}, "dtype must be 'float32' or 'float64'"),
    ],
)
def test_bad_model_options(kwargs, message):
    with pytest.raises(InputError, match=message):
        clf(**kwargs)


def test_bad_optimizer_and_scheduler_hyper_parameters():
    with pytest.raises(InputError, match="learning rate must be a positive number"):
        SGD(lr=0)
    with pytest.raises(InputError, match="learning rate must be a positive number"):
        clf().train(X, Y, lr=-1.0, epochs=1)
    with pytest.raises(InputError, match="momentum must be in"):
        SGD(momentum=1.5)
    with pytest.raises(InputError, match="Nesterov momentum needs momentum > 0"):
        SGD(nesterov=True)
    with pytest.raises(InputError, match="StepLR needs"):
        StepLR(step_size=0)


def test_bad_early_stopping_and_validation_split():
    with pytest.raises(InputError, match="early_stopping_patience must be an int >= 1"):
        clf().train(X, Y, early_stopping_patience=0, epochs=1)
    with pytest.raises(InputError, match=r"validation_split must be in \(0, 1\)"):
        clf().train(X, Y, validation_split=1.5, epochs=1)


def test_option_that_applies_to_size_lists_only():
    with pytest.raises(InputError, match="dropout_rate= applies to size lists"):
        NeuralNetwork([Dense(3)], dropout_rate=0.5, backend="numpy")
    with pytest.raises(InputError, match="activations= applies to size lists"):
        NeuralNetwork([Dense(3)], activations=["relu"], backend="numpy")


def test_errors_leave_the_model_usable():
    model = clf()
    with pytest.raises(InputError):
        model.train(X, np.arange(20) % 5, epochs=1)
    model.train(X, Y, epochs=1, progress=False)
    assert model.predict(X).shape == (20,)


def test_a_model_too_large_for_memory_says_how_much_it_needs():
    with pytest.raises(InputError, match=r"10,001,100,010 parameters: 37.3 GiB of float32 for the weights alone"):
        NeuralNetwork([10**5, 10**5, 10], backend="numpy")


def test_regression_targets_beyond_float32_are_refused_not_made_infinite():
    with pytest.raises(InputError, match="beyond float32"):
        NeuralNetwork([4, 1], regressor=True, backend="numpy").train(X, np.full(20, 1e300), epochs=1)


@pytest.mark.parametrize("as_objects", [False, True], ids=["bytes-array", "bytes-objects"])
def test_bytes_labels_are_refused_before_training_since_a_model_file_could_not_keep_them(as_objects):
    X = np.random.default_rng(0).normal(size=(20, 3))
    y = np.where(np.arange(20) % 2, b"a", b"b")
    model = NeuralNetwork([3, 4, 2], backend="numpy", seed=0)
    with pytest.raises(InputError, match=r"^y holds bytes labels \(e.g. .*\); decode them to text first, e.g. y.astype\(str\)$"):
        model.train(X, y.astype(object) if as_objects else y, epochs=1, progress=False)
    assert model.history is None


@pytest.mark.parametrize(
    "X, message",
    [(5, r"^X must be an array of samples, got a single value \(5\)$"),
     (np.array(1.0), r"^X must be an array of samples, got a single value \(1\.0\)$"),
     ({"a": np.zeros((30, 30))}, r"^X must be numeric, got values of dtype object \(e.g. \{'a': array\(\[\[0\., .*\.\.\.\); encode")],
    ids=["scalar", "0-d-array", "dict"],
)
def test_a_scalar_or_a_dict_for_x_is_named_in_one_short_line(X, message):
    with pytest.raises(InputError, match=message) as info:
        NeuralNetwork([3, 4, 2], backend="numpy").train(X, [0, 1, 0], epochs=1, progress=False)
    assert "\n" not in str(info.value) and len(str(info.value)) < 200
