"""The training loop and the model's public API: history, steps per batch, schedulers, early
stopping, L2, dropout, seeds, dtypes, defaults, metrics, summary and plots."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sega_core import (
    RNN,
    SGD,
    Adadelta,
    Adam,
    BackendUnavailableError,
    BaseBackendNeuralNetwork,
    BatchNormalization,
    Conv2D,
    CuPyBackendNeuralNetwork,
    Dense,
    Dropout,
    ExponentialLR,
    Flatten,
    NeuralNetwork,
    NotFittedError,
    NumbaBackendNeuralNetwork,
    ReduceLROnPlateau,
    StepLR,
)


def blobs(n=120, features=6, classes=3, seed=0, dtype=np.float64):
    """Well separated Gaussian blobs: an easy classification problem."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(classes, features))
    y = rng.integers(0, classes, size=n)
    X = centers[y] + rng.normal(size=(n, features))
    return X.astype(dtype), y


def regression(n=100, features=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, features))
    y = X @ rng.normal(size=features) + 0.1 * rng.normal(size=n)
    return X, y


def np_model(layers, **kw):
    kw.setdefault("backend", "numpy")
    kw.setdefault("seed", 0)
    return NeuralNetwork(layers, **kw)


# ---- history and steps ------------------------------------------------------------------------


def test_history_has_one_entry_per_epoch_with_validation():
    X, y = blobs()
    model = np_model([6, 8, 3])
    history = model.train(X[:90], y[:90], validation_data=(X[90:], y[90:]), epochs=4, batch_size=16, progress=False)
    assert history is model.history
    assert set(history) == {"loss", "accuracy", "lr", "val_loss", "val_accuracy"}
    assert all(len(v) == 4 for v in history.values())
    assert history.epochs == 4 and not history.stopped_early
    assert all(isinstance(v, float) for values in history.values() for v in values)
    assert history["loss"][-1] < history["loss"][0]
    assert 0 <= min(history["accuracy"]) and max(history["accuracy"]) <= 1


def test_regressor_history_tracks_mae():
    X, y = regression()
    model = np_model([4, 8, 1], regressor=True)
    history = model.train(X, y, validation_split=0.25, epochs=3, progress=False)
    assert set(history) == {"loss", "mae", "lr", "val_loss", "val_mae"}
    assert len(history["val_mae"]) == 3


@pytest.mark.parametrize(("n", "batch_size", "epochs"), [(100, 16, 3), (100, 100, 2), (100, 128, 2), (7, 1, 2), (64, 32, 5)])
def test_one_optimizer_step_per_mini_batch(n, batch_size, epochs):
    X, y = blobs(n=n)
    model = np_model([6, 5, 3])
    model.train(X, y, epochs=epochs, batch_size=batch_size, progress=False)
    assert model.optimizer.steps == math.ceil(n / batch_size) * epochs


def test_rnn_state_gradient_is_zero_but_for_the_last_step_every_batch(monkeypatch):
    """The layer keeps one state-gradient array from batch to batch (rnn_backward must leave it
    as it is) and only the last step changes: every batch must still see zeros elsewhere, and
    the last step of that batch's own gradient, also when the batch size changes."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 5, 3))
    y = rng.integers(0, 2, 20)
    model = np_model([RNN(4), Dense(2)], dtype="float64")
    kernels = model.backend.kernels
    real = kernels.rnn_backward
    seen = []

    def recording(dhs, *args):
        seen.append((id(dhs), dhs.copy()))
        return real(dhs, *args)

    monkeypatch.setattr(kernels, "rnn_backward", recording)
    model.train(X, y, optimizer=SGD(lr=0.1), epochs=2, batch_size=8, shuffle=False, progress=False)
    assert [d.shape[0] for _, d in seen] == [8, 8, 4] * 2
    for _, dhs in seen:
        assert dhs.shape[1:] == (5, 4)
        assert not dhs[:, :-1].any() and dhs[:, -1].all()
    assert seen[0][0] == seen[1][0]  # one array for the full batches
    assert not np.array_equal(seen[0][1][:, -1], seen[1][1][:, -1])  # each batch's own gradient


def test_each_step_uses_its_own_batch_and_l2_once():
    """Two plain-SGD steps over two fixed halves equal two manual steps with the exact gradient."""
    X, y = blobs(n=20, seed=3)
    lr, lam = 0.05, 0.3
    model = np_model([6, 5, 3], reg_lambda=lam, dtype="float64")
    reference = np_model([6, 5, 3], reg_lambda=lam, dtype="float64")
    expected = reference.params.param.copy()
    for half in (slice(0, 10), slice(10, 20)):
        _, grad = reference._loss_and_grad(X[half], y[half])  # data gradient + lam * W
        expected -= lr * grad
        reference.params.param[:] = expected
    model.train(X, y, optimizer=SGD(lr=lr), epochs=1, batch_size=10, shuffle=False, progress=False)
    np.testing.assert_allclose(model.params.param, expected, rtol=1e-12, atol=1e-14)


def test_reported_loss_is_the_true_loss_with_l2():
    """History's loss is mean cross-entropy of the softmax probabilities + 0.5*lam*|W|^2."""
    X, y = blobs(n=50, seed=4)
    lam = 0.05
    model = np_model([6, 7, 3], reg_lambda=lam, dtype="float64")
    p = model.predict_proba(X)
    weights = [w for w in model.get_weights() if w.ndim == 2]
    expected = -np.mean(np.log(p[np.arange(len(y)), y])) + 0.5 * lam * sum(float((w * w).sum()) for w in weights)
    assert model.evaluate(X, y)["loss"] == pytest.approx(expected, rel=1e-10)
    # One full-batch epoch with a negligible step: the recorded loss is the loss at the start.
    history = model.train(X, y, optimizer=SGD(lr=1e-12), epochs=1, batch_size=50, progress=False)
    assert history["loss"][0] == pytest.approx(expected, rel=1e-8)


def test_reported_binary_loss_is_true_bce():
    X, y = blobs(n=40, classes=2, seed=5)
    model = np_model([6, 4, 1], dtype="float64")
    p = model.predict_proba(X)[:, 1]
    expected = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert model.evaluate(X, y)["loss"] == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("out_act", ["sigmoid", "linear", "tanh"])
def test_binary_training_accuracy_matches_predictions(out_act):
    """The per-epoch training metric agrees with predict(), whatever the output activation."""
    X, y = blobs(n=60, classes=2, seed=6)
    # tanh hidden units: no dead-ReLU rows with exactly tied outputs that a 1e-12 step could flip.
    model = np_model([Dense(5, "tanh"), Dense(1, out_act)], loss_function="bce", input_shape=(6,))
    expected = float(np.mean(model.predict(X) == y))
    history = model.train(X, y, optimizer=SGD(lr=1e-12), epochs=1, batch_size=60, progress=False)
    assert history["accuracy"][0] == pytest.approx(expected)


def test_multiclass_training_accuracy_matches_predictions():
    X, y = blobs(n=60, seed=7)
    model = np_model([6, 5, 3], activations=["tanh", "softmax"])
    expected = float(np.mean(model.predict(X) == y))
    history = model.train(X, y, optimizer=SGD(lr=1e-12), epochs=1, batch_size=25, progress=False)
    assert history["accuracy"][0] == pytest.approx(expected)


# ---- optimizers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "optimizer",
    ["adam", "sgd", "adadelta", SGD(lr=0.05, momentum=0.9), SGD(lr=0.05, momentum=0.9, nesterov=True), Adam(lr=0.01), Adadelta()],
    ids=["adam", "sgd", "adadelta", "momentum", "nesterov", "Adam", "Adadelta"],
)
def test_every_optimizer_learns(optimizer):
    X, y = blobs(n=150, seed=8)
    model = np_model([6, 16, 3])
    history = model.train(X, y, optimizer=optimizer, epochs=15, batch_size=16, progress=False)
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert model.evaluate(X, y)["accuracy"] >= 0.9


def _manual_updates(name):
    """Reference update rules (PyTorch's formulations) as closures over their own state."""
    state = {}

    def sgd(p, g, lr=0.1, mu=0.9, nesterov=False):
        v = state["v"] = mu * state.get("v", 0) + g
        return p - lr * (g + mu * v if nesterov else v)

    def adam(p, g, lr=0.01, b1=0.9, b2=0.999, eps=1e-8):
        t = state["t"] = state.get("t", 0) + 1
        m = state["m"] = b1 * state.get("m", 0) + (1 - b1) * g
        v = state["v"] = b2 * state.get("v", 0) + (1 - b2) * g * g
        return p - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)

    def adadelta(p, g, lr=1.0, rho=0.9, eps=1e-6):
        sq = state["sq"] = rho * state.get("sq", 0) + (1 - rho) * g * g
        delta = np.sqrt(state.get("acc", 0) + eps) / np.sqrt(sq + eps) * g
        state["acc"] = rho * state.get("acc", 0) + (1 - rho) * delta * delta
        return p - lr * delta

    return {
        "momentum": (SGD(lr=0.1, momentum=0.9), sgd),
        "nesterov": (SGD(lr=0.1, momentum=0.9, nesterov=True), lambda p, g: sgd(p, g, nesterov=True)),
        "adam": (Adam(lr=0.01), adam),
        "adadelta": (Adadelta(lr=1.0), adadelta),
    }[name]


@pytest.mark.parametrize("name", ["momentum", "nesterov", "adam", "adadelta"])
def test_optimizer_state_carries_across_steps(name):
    """Three mini-batch steps (fixed order) equal the reference rule applied to exact gradients."""
    X, y = blobs(n=24, seed=10)
    optimizer, update = _manual_updates(name)
    model = np_model([6, 5, 3], reg_lambda=0.01, dtype="float64")
    reference = np_model([6, 5, 3], reg_lambda=0.01, dtype="float64")
    p = reference.params.param.copy()
    for part in (slice(0, 8), slice(8, 16), slice(16, 24)):
        _, g = reference._loss_and_grad(X[part], y[part])
        p = update(p, g)
        reference.params.param[:] = p
    model.train(X, y, optimizer=optimizer, epochs=1, batch_size=8, shuffle=False, progress=False)
    assert model.optimizer is optimizer and optimizer.steps == 3
    np.testing.assert_allclose(model.params.param, p, rtol=1e-10, atol=1e-13)


def test_lr_argument_overrides_the_optimizer_default():
    X, y = blobs(n=20)
    model = np_model([6, 3])
    history = model.train(X, y, optimizer="sgd", lr=0.123, epochs=2, progress=False)
    assert model.optimizer.lr == 0.123 and history["lr"] == [0.123, 0.123]


# ---- schedulers -------------------------------------------------------------------------------


def test_step_lr_schedule():
    X, y = blobs(n=32)
    model = np_model([6, 3])
    history = model.train(X, y, optimizer=SGD(lr=0.1), lr_scheduler=StepLR(step_size=2, gamma=0.5), epochs=5, progress=False)
    # history["lr"][e] is the rate used during epoch e.
    np.testing.assert_allclose(history["lr"], [0.1, 0.1, 0.05, 0.05, 0.025])
    assert model.optimizer.lr == pytest.approx(0.025)  # after the step following epoch 5 (index 4): 0.1*0.5**2


def test_exponential_lr_schedule():
    X, y = blobs(n=32)
    model = np_model([6, 3])
    history = model.train(X, y, optimizer=Adam(lr=0.01), lr_scheduler=ExponentialLR(gamma=0.9), epochs=4, progress=False)
    np.testing.assert_allclose(history["lr"], [0.01 * 0.9**e for e in range(4)])


def test_reduce_on_plateau_lowers_lr_when_the_loss_stalls():
    X, y = blobs(n=32)
    model = np_model([6, 3])
    # A step too small to change the loss by the relative threshold: every epoch is a plateau.
    history = model.train(
        X, y, optimizer=SGD(lr=1e-9), lr_scheduler=ReduceLROnPlateau(factor=0.5, patience=1), epochs=7, progress=False
    )
    np.testing.assert_allclose(history["lr"], [1e-9, 1e-9, 1e-9, 5e-10, 5e-10, 2.5e-10, 2.5e-10])


def test_reduce_on_plateau_keeps_lr_while_improving():
    X, y = blobs(n=64)
    model = np_model([6, 8, 3])
    history = model.train(X, y, optimizer=Adam(lr=0.01), lr_scheduler="plateau", epochs=5, progress=False)
    assert history["lr"] == [0.01] * 5


def test_reduce_on_plateau_rule():
    class Opt:
        lr = 1.0

    sched = ReduceLROnPlateau(factor=0.1, patience=2, min_lr=0.005)
    sched.bind(Opt)
    lrs = []
    for epoch, metric in enumerate([1.0, 0.9, 0.95, 0.95, 0.95, 0.8, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]):
        sched.step(epoch, metric)
        lrs.append(Opt.lr)
    assert lrs == [1.0, 1.0, 1.0, 1.0, 0.1, 0.1, 0.1, 0.1, pytest.approx(0.01), pytest.approx(0.01), pytest.approx(0.01), 0.005]


@pytest.mark.parametrize(("name", "cls"), [("step", StepLR), ("exponential", ExponentialLR), ("plateau", ReduceLROnPlateau)])
def test_scheduler_names(name, cls):
    X, y = blobs(n=32)
    model = np_model([6, 3])
    history = model.train(X, y, lr_scheduler=name, epochs=2, progress=False)
    assert len(history["lr"]) == 2


# ---- early stopping ---------------------------------------------------------------------------


def test_early_stopping_restores_the_best_weights():
    """Random labels: the network overfits, validation loss rises, training stops early and
    the weights of the best validation epoch come back."""
    rng = np.random.default_rng(9)
    X, y = rng.normal(size=(60, 10)), rng.integers(0, 3, size=60)
    Xv, yv = rng.normal(size=(40, 10)), rng.integers(0, 3, size=40)
    model = np_model([10, 64, 3], dtype="float64")
    history = model.train(X, y, validation_data=(Xv, yv), optimizer=Adam(lr=0.01), epochs=200, batch_size=8, early_stopping_patience=3, progress=False)
    assert history.stopped_early
    assert history.epochs < 200 and len(history["val_loss"]) == history.epochs
    best = int(np.argmin(history["val_loss"]))
    assert history.best_epoch == best + 1
    assert history.epochs == history.best_epoch + 3
    assert model.evaluate(Xv, yv)["loss"] == pytest.approx(history["val_loss"][best], rel=1e-12)
    assert model.evaluate(Xv, yv)["loss"] < history["val_loss"][-1]


def test_early_stopping_without_validation_monitors_training_loss():
    X, y = blobs(n=40)
    model = np_model([6, 3], dtype="float64")
    history = model.train(X, y, optimizer=SGD(lr=1e-9), epochs=50, early_stopping_patience=2, early_stopping_min_delta=1e-3, progress=False)
    assert history.stopped_early and history.epochs == 3 and history.best_epoch == 1


# ---- dropout, seeds, dtypes -------------------------------------------------------------------


def test_dropout_is_active_only_in_training():
    X, y = blobs(n=200, features=20)
    model = np_model([Dense(50, "relu"), Dropout(0.5), Dense(3)], input_shape=(20,))
    plain = np_model([Dense(50, "relu"), Dense(3)], input_shape=(20,))
    np.testing.assert_array_equal(model.params.param, plain.params.param)  # Dropout has no parameters
    # Inference: deterministic and identical to the same network without the Dropout layer.
    p1, p2 = model.predict_proba(X), model.predict_proba(X)
    np.testing.assert_array_equal(p1, p2)
    np.testing.assert_array_equal(p1, plain.predict_proba(X))
    # Training: about half of the hidden units are zeroed, the survivors scaled by 2.
    hidden = model.layers[0].forward(X.astype(np.float32), True)
    dropped = model.layers[1].forward(hidden, True)
    alive = hidden != 0
    frac = np.mean(dropped[alive] == 0)
    assert 0.4 < frac < 0.6
    kept = dropped[alive] != 0
    np.testing.assert_allclose(dropped[alive][kept], 2 * hidden[alive][kept], rtol=1e-6)
    assert not np.array_equal(model.layers[1].forward(hidden, True), dropped)  # fresh mask each batch
    np.testing.assert_array_equal(model.layers[1].forward(hidden, False), hidden)


def test_dropout_rate_in_sizes_list_adds_dropout_between_hidden_layers():
    model = np_model([8, 16, 16, 3], dropout_rate=0.25)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Dense", "Dropout", "Dense", "Dropout", "Dense"]
    assert all(layer.rate == 0.25 for layer in model.layers if isinstance(layer, Dropout))


def test_same_seed_same_weights_and_same_training():
    X, y = blobs(n=80)
    a = np_model([6, 10, 3], dropout_rate=0.3, seed=42)
    b = np_model([6, 10, 3], dropout_rate=0.3, seed=42)
    c = np_model([6, 10, 3], dropout_rate=0.3, seed=43)
    np.testing.assert_array_equal(a.params.param, b.params.param)
    assert not np.array_equal(a.params.param, c.params.param)
    ha = a.train(X, y, epochs=3, batch_size=16, progress=False)
    hb = b.train(X, y, epochs=3, batch_size=16, progress=False)
    assert ha == hb
    np.testing.assert_array_equal(a.params.param, b.params.param)


def test_seed_gives_same_initial_weights_in_both_dtypes():
    a = np_model([Conv2D(2, 3), Flatten(), Dense(3)], seed=5, input_shape=(1, 5, 5))
    b = np_model([Conv2D(2, 3), Flatten(), Dense(3)], seed=5, input_shape=(1, 5, 5), dtype="float64")
    np.testing.assert_array_equal(a.params.param, b.params.param.astype(np.float32))


LAYER_STACKS = {
    "dense": (lambda: [Dense(8, "tanh"), Dropout(0.2), Dense(3)], (6,)),
    "conv": (lambda: [Conv2D(3, 3, stride=2, padding=1), Dropout(0.2), Flatten(), Dense(3)], (1, 6, 6)),
    "rnn": (lambda: [RNN(4, return_sequences=True), Flatten(), Dense(3)], (5, 2)),
}


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("stack", list(LAYER_STACKS))
@pytest.mark.parametrize("dtype", [None, "float64"])
def test_dtype_everywhere_without_promotion(stack, dtype, backend, require_backend):
    """float32 by default, float64 on request: params, grads, optimizer state, every layer's
    output in training and inference, loss gradient, predictions."""
    require_backend(backend)
    make, shape = LAYER_STACKS[stack]
    want = np.float64 if dtype == "float64" else np.float32
    kwargs = {} if dtype is None else {"dtype": dtype}
    model = np_model(make(), input_shape=shape, backend=backend, **kwargs)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10,) + shape)  # float64 input: converted once, not promoted through
    y = rng.integers(0, 3, size=10)
    assert model.dtype == want
    assert model.params.param.dtype == want and model.params.grad.dtype == want
    for training in (True, False):
        x = X.astype(want)
        for layer in model.layers:
            x = layer.forward(x, training)
            assert x.dtype == want, (type(layer).__name__, training)
    loss, grad = model._head.loss(x, y)
    assert grad.dtype == want and np.asarray(loss).dtype == want
    model.train(X, y, epochs=1, batch_size=4, progress=False)
    assert model.params.param.dtype == want
    assert all(state.dtype == want for state in model.optimizer._state)
    assert model.predict_proba(X).dtype == want
    assert all(w.dtype == want for w in model.get_weights())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_regressor_and_binary_outputs_keep_dtype(dtype):
    X, y = regression(n=20)
    reg = np_model([4, 3, 1], regressor=True, dtype=dtype)
    reg.train(X, y, epochs=1, progress=False)
    assert reg.predict(X).dtype == dtype and reg.predict(X).shape == (20,)
    binary = np_model([4, 3, 1], dtype=dtype)
    binary.train(X, (y > 0).astype(int), epochs=1, progress=False)
    assert binary.predict_proba(X).dtype == dtype
    assert binary.predict(X).dtype == np.int64


def test_integer_and_float32_inputs_are_accepted():
    X, y = blobs(n=30)
    model = np_model([6, 3])
    model.train(np.round(X).astype(np.int32), y.astype(np.float32), epochs=1, progress=False)
    assert model.predict(X.tolist()).shape == (30,)


# ---- defaults and outputs ---------------------------------------------------------------------


def test_default_heads_and_losses():
    multi = np_model([4, 5, 3])
    assert multi.layers[-1].activation == "softmax" and multi.loss.name == "cross_entropy"
    assert [layer.activation for layer in multi.layers[:-1]] == ["relu"]
    binary = np_model([4, 5, 1])
    assert binary.layers[-1].activation == "sigmoid" and binary.loss.name == "bce_with_logits"
    reg = np_model([4, 5, 1], regressor=True)
    assert reg.layers[-1].activation == "linear" and reg.loss.name == "mse"
    reg2 = np_model([4, 5, 2], regressor=True, loss_function="mae")
    assert reg2.layers[-1].activation == "linear" and reg2.loss.name == "mae"


def test_activations_option_and_leaky_relu():
    model = np_model([4, 5, 5, 3], activations=["leaky_relu", "tanh", "softmax"])
    assert [layer.activation for layer in model.layers] == ["leaky_relu", "tanh", "softmax"]
    layer = Dense(3, activation="leaky_relu", alpha=0.3)
    m = np_model([layer], input_shape=(2,), regressor=True, dtype="float64")
    m.params.param[:] = [1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0]  # W = [[1,0,0],[0,-1,0]], b = 0
    np.testing.assert_allclose(m.predict(np.array([[2.0, 3.0]])), [[2.0, -0.9, 0.0]])


def test_predict_and_predict_proba():
    X, y = blobs(n=60)
    model = np_model([6, 8, 3])
    model.train(X, y, epochs=5, progress=False)
    p = model.predict_proba(X)
    assert p.shape == (60, 3)
    np.testing.assert_allclose(p.sum(1), 1, rtol=1e-5)
    np.testing.assert_array_equal(model.predict(X), p.argmax(1))
    Xb, yb = blobs(n=60, classes=2)
    binary = np_model([6, 4, 1])
    binary.train(Xb, yb, epochs=5, progress=False)
    pb = binary.predict_proba(Xb)
    assert pb.shape == (60, 2)
    np.testing.assert_allclose(pb.sum(1), 1, rtol=1e-6)
    np.testing.assert_array_equal(binary.predict(Xb), (pb[:, 1] >= 0.5).astype(int))


def test_one_hot_targets_equal_integer_targets():
    X, y = blobs(n=30, seed=11)
    a = np_model([6, 4, 3], dtype="float64")
    la, ga = a._loss_and_grad(X, y)
    lb, gb = a._loss_and_grad(X, np.eye(3)[y])
    assert la == pytest.approx(lb, rel=1e-12)
    np.testing.assert_allclose(ga, gb, rtol=1e-10, atol=1e-14)


def test_classifier_metrics_match_scikit_learn():
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    X, y = blobs(n=150, classes=4, seed=12)
    X = X + np.random.default_rng(0).normal(scale=3.0, size=X.shape)  # make mistakes likely
    model = np_model([6, 4])
    model.train(X[:100], y[:100], epochs=3, progress=False)
    scores = model.evaluate(X[100:], y[100:])
    pred = model.predict(X[100:])
    t = y[100:]
    assert set(scores) == {"loss", "accuracy", "precision", "recall", "f1"}
    assert scores["accuracy"] == pytest.approx(accuracy_score(t, pred))
    assert scores["precision"] == pytest.approx(precision_score(t, pred, average="macro", zero_division=0))
    assert scores["recall"] == pytest.approx(recall_score(t, pred, average="macro", zero_division=0))
    assert scores["f1"] == pytest.approx(f1_score(t, pred, average="macro", zero_division=0))


def test_binary_metrics_match_scikit_learn():
    from sklearn.metrics import accuracy_score, f1_score

    X, y = blobs(n=100, classes=2, seed=13)
    X = X + np.random.default_rng(1).normal(scale=4.0, size=X.shape)
    model = np_model([6, 1])
    model.train(X[:60], y[:60], epochs=2, progress=False)
    scores = model.evaluate(X[60:], y[60:])
    pred = model.predict(X[60:])
    assert scores["accuracy"] == pytest.approx(accuracy_score(y[60:], pred))
    assert scores["f1"] == pytest.approx(f1_score(y[60:], pred, average="macro", zero_division=0))


def test_regression_metrics_match_scikit_learn():
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    X, y = regression(n=80)
    model = np_model([4, 8, 1], regressor=True)
    model.train(X, y, epochs=20, progress=False)
    scores = model.evaluate(X, y)
    pred = model.predict(X)
    assert set(scores) == {"loss", "mse", "mae", "r2"}
    assert scores["mse"] == pytest.approx(mean_squared_error(y, pred), rel=1e-5)
    assert scores["loss"] == pytest.approx(scores["mse"], rel=1e-5)  # MSE loss, no L2
    assert scores["mae"] == pytest.approx(mean_absolute_error(y, pred), rel=1e-5)
    assert scores["r2"] == pytest.approx(r2_score(y, pred), rel=1e-5)


def test_multi_output_regression():
    rng = np.random.default_rng(14)
    X = rng.normal(size=(100, 3))
    Y = np.stack([X[:, 0] + X[:, 1], X[:, 2] - X[:, 0]], axis=1)
    model = np_model([3, 16, 2], regressor=True)
    model.train(X, Y, epochs=60, batch_size=16, optimizer=Adam(lr=0.01), progress=False)
    assert model.predict(X).shape == (100, 2)
    assert model.evaluate(X, Y)["r2"] > 0.9


def test_fit_is_train():
    assert NeuralNetwork.fit is NeuralNetwork.train
    X, y = blobs(n=20)
    assert "loss" in np_model([6, 3]).fit(X, y, epochs=1, progress=False)


def test_model_built_from_first_data_when_layers_are_objects():
    X = np.random.default_rng(0).normal(size=(10, 1, 6, 6))
    model = np_model([Conv2D(2, 3), Flatten(), Dense(2)])
    with pytest.raises(NotFittedError):
        model.predict(X)
    with pytest.raises(NotFittedError):
        model.summary()
    model.train(X, np.arange(10) % 2, epochs=1, progress=False)
    assert model.input_shape == (1, 6, 6)
    assert model.predict(X).shape == (10,)


def test_rnn_returns_last_state_or_sequence():
    x = np.random.default_rng(0).normal(size=(3, 5, 2))
    last = np_model([RNN(4), Dense(1)], input_shape=(5, 2), regressor=True, dtype="float64")
    seq = np_model([RNN(4, return_sequences=True), Flatten(), Dense(1)], input_shape=(5, 2), regressor=True, dtype="float64")
    seq.params.param[: last.params.n_weights - 4] = last.params.param[: last.params.n_weights - 4]  # same Wx, Wh
    hs = seq.layers[0].forward(x, False)
    h = last.layers[0].forward(x, False)
    assert hs.shape == (3, 5, 4) and h.shape == (3, 4)
    np.testing.assert_allclose(hs[:, -1], h)
    # The recurrence itself (tanh by default, zero initial state).
    wx, wh = last.layers[0].params["Wx"], last.layers[0].params["Wh"]
    state = np.zeros((3, 4))
    for t in range(5):
        state = np.tanh(x[:, t] @ wx + state @ wh)
    np.testing.assert_allclose(h, state, rtol=1e-12)


def test_conv_output_shape_stride_and_padding():
    layer = Conv2D(4, kernel_size=3, stride=2, padding=1)
    assert layer.build((2, 8, 8)) == (4, 4, 4)
    assert Conv2D(1, kernel_size=3).build((1, 8, 8)) == (1, 6, 6)
    assert Conv2D(1, kernel_size=2, stride=3, padding=2).build((1, 7, 5)) == (1, 4, 3)


def test_conv_matches_direct_cross_correlation():
    rng = np.random.default_rng(15)
    model = np_model([Conv2D(2, 3, stride=2, padding=1, activation="linear"), Flatten(), Dense(1)], input_shape=(2, 5, 5), regressor=True, dtype="float64")
    conv = model.layers[0]
    x = rng.normal(size=(2, 2, 5, 5))
    conv.params["b"][:] = [0.5, -0.5]
    out = conv.forward(x, False)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    w = conv.params["W"]
    expected = np.zeros((2, 2, 3, 3))
    for n in range(2):
        for f in range(2):
            for i in range(3):
                for j in range(3):
                    expected[n, f, i, j] = (xp[n, :, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3] * w[f]).sum() + conv.params["b"][f]
    np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_trailing_dropout_keeps_softmax_applied_once():
    X, y = blobs(n=30)
    model = np_model([Dense(8, "relu"), Dense(3, "softmax"), Dropout(0.2)], input_shape=(6,), dtype="float64")
    plain = np_model([Dense(8, "relu"), Dense(3, "softmax")], input_shape=(6,), dtype="float64")
    np.testing.assert_allclose(model.predict_proba(X), plain.predict_proba(X), rtol=1e-12)
    assert model.evaluate(X, y)["loss"] == pytest.approx(plain.evaluate(X, y)["loss"], rel=1e-12)


# ---- summary, plots, presets ------------------------------------------------------------------


def test_summary_lists_layers_and_parameter_counts():
    model = np_model([Conv2D(4, 3, padding=1), Flatten(), Dropout(0.1), Dense(10)], input_shape=(1, 8, 8))
    lines = []
    text = model.summary(print_fn=lines.append)
    assert lines == [text]
    for fragment in ("Conv2D (relu)", "Flatten", "Dropout", "Dense", "cross_entropy", "(N, 4, 8, 8)", "(N, 256)", "(N, 10)", "40", "2,570"):
        assert fragment in text
    assert f"Total params: {4 * 9 + 4 + 256 * 10 + 10:,}" in text


def test_summary_counts_normalisation_statistics_as_keras_does():
    # Keras: Dense 40, BatchNormalization 32 (gamma, beta, moving mean and variance), Dense 18;
    # total 90, trainable 74, non-trainable 16.
    text = np_model([Dense(8), BatchNormalization(), Dense(2)], input_shape=(4,)).summary(print_fn=None)
    assert [line.split()[-1] for line in text.splitlines()[4:7]] == ["40", "32", "18"]
    assert "Total params: 90 (trainable 74, non-trainable 16)" in text


def test_plot_metrics_writes_a_png(tmp_path):
    X, y = blobs(n=40)
    model = np_model([6, 3])
    with pytest.raises(NotFittedError):
        model.plot_metrics(tmp_path / "none.png")
    model.train(X, y, epochs=3, progress=False)  # no scheduler, no validation
    path = tmp_path / "curves.png"
    model.plot_metrics(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model.train(X[:30], y[:30], X_val=X[30:], y_val=y[30:], lr_scheduler="step", epochs=3, progress=False)
    model.plot_metrics(str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png"]


def test_progress_bar_option_runs(capsys):
    X, y = blobs(n=20)
    np_model([6, 3]).train(X, y, epochs=2, progress=True)


def test_base_backend_preset_is_the_numpy_model():
    model = BaseBackendNeuralNetwork(layers=[4, 3], seed=0)
    assert isinstance(model, NeuralNetwork) and model.backend.name == "numpy"
    with pytest.raises(TypeError, match="numpy"):
        BaseBackendNeuralNetwork(layers=[4, 3], backend="numba")


def test_numba_preset_is_the_numba_model(require_backend):
    require_backend("numba")
    model = NumbaBackendNeuralNetwork(layers=[4, 3], seed=0)
    assert isinstance(model, NeuralNetwork) and model.backend.name == "numba"
    np.testing.assert_array_equal(model.params.param, np_model([4, 3]).params.param)
    with pytest.raises(TypeError, match="numba"):
        NumbaBackendNeuralNetwork(layers=[4, 3], backend="numpy")


def test_cupy_preset_is_the_cupy_model_or_says_why_not():
    try:
        model = CuPyBackendNeuralNetwork(layers=[4, 3], seed=0)
    except BackendUnavailableError as exc:
        assert "backend 'cupy'" in str(exc) and "unavailable" in str(exc)
        return
    assert model.backend.name == "cupy"
    host = model.backend.to_host(model.params.param)
    np.testing.assert_array_equal(host, np_model([4, 3]).params.param)


def test_inference_is_chunked_by_work_and_chunks_agree(monkeypatch):
    """Conv inference is split so im2col stays bounded; splitting changes no prediction."""
    from sega_core import Conv2D, Dense, Flatten, NeuralNetwork
    from sega_core.nn import model as model_module

    rng = np.random.default_rng(3)
    X = rng.normal(size=(50, 2, 9, 9))
    net = NeuralNetwork([Conv2D(4, 3, padding=1), Flatten(), Dense(3)], dtype="float64", seed=0, input_shape=(2, 9, 9))
    whole = net.predict_proba(X)
    monkeypatch.setattr(model_module, "PREDICT_CHUNK_BYTES", 7 * (9 * 9 * 2 * 3 * 3) * 8)
    assert net._chunk_size() == 7
    np.testing.assert_allclose(net.predict_proba(X), whole, rtol=1e-12)
