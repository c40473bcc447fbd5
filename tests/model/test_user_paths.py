"""Paths users walk that the kernels' own tests do not: the output head whatever layer ends the
model, layers shared between models, predicting while training, divergence, the reported loss,
and preprocessing that travels with the model."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from sega_core import (
    RNN,
    SGD,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    InputError,
    NeuralNetwork,
    Normalization,
    Reshape,
    TrainingDivergedError,
)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _separable_sequences(n=200, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 5, 3)) * 0.3
    X[:, :, 0] += np.where(y == 1, 1.0, -1.0)[:, None]
    return X, y


def _separable_images(n=200, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 1, 3, 3)) * 0.3
    X[:, 0, 1, 1] += np.where(y == 1, 1.5, -1.5)
    return X, y


# ---- the head is applied exactly once ------------------------------------------------------


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize(
    "make",
    [
        lambda: ([RNN(1, activation="sigmoid")], _separable_sequences),
        lambda: ([Conv2D(1, 3, activation="sigmoid"), Flatten()], _separable_images),
        lambda: ([Flatten(), Dense(4, activation="tanh"), Dropout(0.1), Dense(1, activation="sigmoid")], _separable_images),
        lambda: ([RNN(4, return_sequences=True), Flatten(), Dense(1, activation="sigmoid")], _separable_sequences),
    ],
    ids=["rnn-last", "conv-flatten-last", "dense-after-dropout", "rnn-sequences-dense"],
)
def test_a_sigmoid_output_of_any_layer_type_learns_separable_data(make, backend, require_backend):
    require_backend(backend)
    layers, data = make()
    X, y = data()
    model = NeuralNetwork(layers, backend=backend, seed=0, dtype="float64")
    model.train(X, y, epochs=60, batch_size=16, lr=0.05, progress=False)
    assert model.evaluate(X, y)["accuracy"] >= 0.95


def test_an_rnn_output_layer_reports_the_loss_of_its_own_probabilities():
    X, y = _separable_sequences(40)
    model = NeuralNetwork([RNN(1, activation="sigmoid")], backend="numpy", seed=3, dtype="float64")
    model.train(X, y, epochs=1, progress=False)
    wx, wh, b = model.get_weights()
    h = np.zeros((len(X), 1))
    for t in range(X.shape[1]):
        h = _sigmoid(X[:, t] @ wx + h @ wh + b)
    p = h[:, 0]
    expected = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert model.evaluate(X, y)["loss"] == pytest.approx(expected, rel=1e-9)
    np.testing.assert_allclose(model.predict_proba(X)[:, 1], p, rtol=1e-12)


def test_a_conv_output_layer_gives_its_activation_once():
    X, y = _separable_images(30)
    model = NeuralNetwork([Conv2D(1, 3, activation="sigmoid"), Flatten()], backend="numpy", seed=1, dtype="float64")
    model.train(X, y, epochs=1, progress=False)
    w, b = model.get_weights()
    z = np.einsum("nchw,fchw->nf", X, w) + b
    np.testing.assert_allclose(model.predict_proba(X)[:, 1], _sigmoid(z[:, 0]), rtol=1e-12)


def test_the_head_choice_leaves_the_layers_unchanged():
    layers = [Dense(4, activation="relu"), Dense(3, activation="softmax")]
    model = NeuralNetwork(layers, backend="numpy", input_shape=(2,))
    assert all(not hasattr(layer, "logits_only") for layer in layers)
    assert layers[-1].activation == "softmax"
    probabilities = model.predict_proba(np.ones((2, 2)))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-6)


# ---- one model per layer object ------------------------------------------------------------


def test_a_layer_of_one_model_cannot_join_another_and_the_first_is_untouched():
    X, y = _separable_images(40)
    shared = Dense(2, activation="softmax")
    first = NeuralNetwork([Flatten(), shared], backend="numpy", seed=0)
    first.train(X, y, epochs=2, progress=False)
    before = first.predict_proba(X)
    with pytest.raises(InputError, match="already belongs to another model"):
        NeuralNetwork([Flatten(), shared], backend="numpy", seed=1, input_shape=(1, 3, 3))
    np.testing.assert_array_equal(first.predict_proba(X), before)
    first.train(X, y, epochs=1, progress=False)  # still trains
    assert not np.array_equal(first.predict_proba(X), before)


def test_the_same_layer_twice_in_one_model_is_refused():
    layer = Dense(4, activation="relu")
    with pytest.raises(InputError, match="appears twice"):
        NeuralNetwork([layer, layer, Dense(2)], backend="numpy")


def test_a_layer_is_free_again_once_its_model_is_gone():
    import gc

    layer = Dense(2, activation="softmax")
    model = NeuralNetwork([layer], backend="numpy", input_shape=(3,))
    del model
    gc.collect()
    NeuralNetwork([layer], backend="numpy", input_shape=(3,))


# ---- predicting while another thread trains ------------------------------------------------


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("kind", ["dense", "conv", "rnn"])
def test_predict_in_another_thread_does_not_touch_training(kind, backend, require_backend):
    require_backend(backend)
    if kind == "dense":
        X, y = _separable_images(96)
        X = X.reshape(len(X), -1)
        make = lambda: [Dense(8, activation="relu"), Dropout(0.2), Dense(2, activation="softmax")]  # noqa: E731
    elif kind == "conv":
        X, y = _separable_images(96)
        make = lambda: [Conv2D(2, 3, padding=1), Flatten(), Dense(2, activation="softmax")]  # noqa: E731
    else:
        X, y = _separable_sequences(96)
        make = lambda: [RNN(4), Dense(2, activation="softmax")]  # noqa: E731

    def trained(disturb):
        model = NeuralNetwork(make(), backend=backend, seed=0, dtype="float64", input_shape=X.shape[1:])
        stop = threading.Event()
        errors = []

        def predict_forever():
            try:
                while not stop.is_set():
                    model.predict(X[:7])  # another batch size than training's
                    model.evaluate(X[:5], y[:5])
            except BaseException as exc:  # reported below
                errors.append(exc)

        thread = threading.Thread(target=predict_forever)
        if disturb:
            thread.start()
        try:
            model.train(X, y, epochs=4, batch_size=16, progress=False)
        finally:
            stop.set()
            if disturb:
                thread.join()
        assert not errors, errors
        return model.get_weights()

    for quiet, disturbed in zip(trained(False), trained(True)):
        np.testing.assert_array_equal(quiet, disturbed)


def test_two_trains_of_one_model_at_once_are_refused():
    from sega_core.nn.schedulers import LRScheduler

    X, y = _separable_images(64)
    model = NeuralNetwork([Flatten(), Dense(2, activation="softmax")], backend="numpy", seed=0)
    started, release = threading.Event(), threading.Event()

    class Paused(LRScheduler):
        def step(self, epoch, metric=None):
            started.set()
            release.wait(10)

    thread = threading.Thread(target=lambda: model.train(X, y, epochs=1, lr_scheduler=Paused(), progress=False))
    thread.start()
    try:
        assert started.wait(10)
        with pytest.raises(InputError, match="already training in another thread"):
            model.train(X, y, epochs=1, progress=False)
        model.predict(X)  # predicting meanwhile is fine
    finally:
        release.set()
        thread.join()
    assert model.history.epochs == 1


# ---- divergence ------------------------------------------------------------------------------


def test_divergence_stops_training_with_the_last_finite_weights():
    X, y = _separable_images(64)
    X = X.reshape(len(X), -1) * 1e3
    model = NeuralNetwork([9, 16, 2], backend="numpy", seed=0)
    model.train(X, y, epochs=1, optimizer=SGD(lr=1e-6), progress=False)
    good = model.get_weights()
    with pytest.raises(TrainingDivergedError, match=r"diverged in epoch 2: .* lower the learning rate \(lr=1e\+30\)"):
        model.train(X, y, epochs=3, optimizer=SGD(lr=1e30), progress=False)
    for before, after in zip(good, model.get_weights()):
        np.testing.assert_array_equal(before, after)
    assert len(model.history["loss"]) == 1
    assert np.isin(model.predict(X), [0, 1]).all()


def test_divergence_names_reg_lambda_and_the_target_scale():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(32, 3))
    y = X @ [1e6, 2e6, 3e6]
    model = NeuralNetwork([3, 4, 1], regressor=True, reg_lambda=5.0, backend="numpy", seed=0)
    with pytest.raises(TrainingDivergedError, match=r"lower reg_lambda \(5\), or scale the targets"):
        model.train(X, y, epochs=5, optimizer=SGD(lr=10.0), progress=False)


# ---- the reported loss -----------------------------------------------------------------------


def test_history_loss_is_the_loss_each_batch_minimised_penalty_included():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(10, 3)), rng.integers(0, 2, 10)
    lam, lr = 0.3, 0.5
    model = NeuralNetwork([3, 2], reg_lambda=lam, backend="numpy", seed=0, dtype="float64")
    reference = NeuralNetwork([3, 2], reg_lambda=lam, backend="numpy", seed=0, dtype="float64")
    expected = 0.0
    for part in (slice(0, 6), slice(6, 10)):
        loss, grad = reference._loss_and_grad(X[part], y[part])  # data loss + penalty, now
        expected += loss * (part.stop - part.start)
        reference.params.param[...] -= lr * grad
    history = model.train(X, y, epochs=1, batch_size=6, shuffle=False, optimizer=SGD(lr=lr), progress=False)
    assert history["loss"][0] == pytest.approx(expected / 10, rel=1e-12)


def test_histories_of_several_train_calls_accumulate():
    X, y = _separable_images(32)
    model = NeuralNetwork([Flatten(), Dense(2, activation="softmax")], backend="numpy", seed=0)
    first = model.train(X, y, epochs=2, progress=False)
    second = model.train(X, y, epochs=3, progress=False)
    assert second is model.history and second.epochs == 5 and len(second["loss"]) == 5
    assert first["loss"][:2] == second["loss"][:2]


# ---- preprocessing belongs to the model ------------------------------------------------------


def test_a_saved_model_takes_raw_features_and_gives_its_labels(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 2, 3)) * [[1000.0], [0.001]] + 50
    y = np.where(X[:, 0, 0] > 50, "high", "low")
    model = NeuralNetwork(
        [Normalization(), Reshape((6,)), Dense(8, activation="relu"), Dense(2, activation="softmax")],
        backend="numpy",
        seed=0,
    )
    model.train(X, y, epochs=40, lr=0.05, progress=False)
    assert model.evaluate(X, y)["accuracy"] >= 0.95
    path = tmp_path / "m.npz"
    model.save(path)
    for backend in ("numpy", "numba"):
        loaded = NeuralNetwork.load(path, backend=backend)
        np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
        assert set(loaded.predict(X)) <= {"high", "low"}
        assert loaded.evaluate(X, y)["accuracy"] == model.evaluate(X, y)["accuracy"]


def test_normalization_statistics_are_those_of_the_training_data():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 3)) * [1, 10, 100] + [5, -5, 0]
    X[:, 2] = 7.0  # a constant feature maps to 0, it does not divide by zero
    norm = Normalization()
    model = NeuralNetwork([norm, Dense(2, activation="softmax")], backend="numpy", seed=0, dtype="float64")
    model.train(X, rng.integers(0, 2, 50), epochs=1, progress=False)
    np.testing.assert_allclose(norm.state["mean"], X.mean(axis=0))
    np.testing.assert_allclose(norm.state["variance"], np.where(X.std(axis=0) > 0, X.var(axis=0), 1.0))
    out = norm.infer(X)
    np.testing.assert_allclose(out[:, :2].mean(axis=0), 0, atol=1e-12)
    np.testing.assert_array_equal(out[:, 2], 0)


def test_a_standardised_regressor_predicts_in_the_targets_units(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    y = 5000 + 800 * X[:, 0] - 300 * X[:, 1]
    model = NeuralNetwork([2, 1], regressor=True, standardize_target=True, backend="numpy", seed=0, dtype="float64")
    model.train(X, y, epochs=100, lr=0.05, progress=False)
    scores = model.evaluate(X, y)
    assert scores["r2"] > 0.999 and scores["mae"] < 20
    model.save(tmp_path / "r.npz")
    np.testing.assert_allclose(NeuralNetwork.load(tmp_path / "r.npz").predict(X), model.predict(X))


# ---- progress ------------------------------------------------------------------------------


def test_progress_off_a_terminal_is_one_short_line_per_epoch(capsys):
    X, y = _separable_images(32)
    model = NeuralNetwork([Flatten(), Dense(2, activation="softmax")], backend="numpy", seed=0)
    model.train(X[:24], y[:24], epochs=3, X_val=X[24:], y_val=y[24:], progress=True)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split()[:2] for line in lines] == [["epoch", "1/3"], ["epoch", "2/3"], ["epoch", "3/3"]]
    assert all("\r" not in line and len(line) <= 80 for line in lines)
    assert all(key in lines[0] for key in ("loss=", "acc=", "val_loss=", "val_acc="))


def test_no_progress_by_default_off_a_terminal(capsys):
    X, y = _separable_images(16)
    NeuralNetwork([Flatten(), Dense(2, activation="softmax")], backend="numpy", seed=0).train(X, y, epochs=2)
    assert capsys.readouterr().err == ""
