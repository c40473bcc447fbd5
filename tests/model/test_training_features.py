"""What Keras and scikit-learn users type into fit: keyword arguments, validation data, verbosity,
callbacks, class and sample weights."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from sega_core import Dense, InputError, NeuralNetwork, Normalization
from sega_core.nn.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    LearningRateScheduler,
    ModelCheckpoint,
    TerminateOnNaN,
)
from sega_core.nn.optimizers import SGD


def _blobs(n=120, seed=0, classes=3):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    X = rng.normal(size=(n, 4)) * 0.5 + np.eye(classes, 4)[y] * 2
    return X, y


def _model(**kwargs):
    kwargs.setdefault("backend", "numpy")
    kwargs.setdefault("seed", 0)
    return NeuralNetwork([4, 8, 3], **kwargs)


# ---- arguments --------------------------------------------------------------------------------


def test_everything_after_y_is_a_keyword():
    X, y = _blobs()
    with pytest.raises(TypeError, match="positional"):
        _model().fit(X, y, 32, 10)


def test_history_reads_like_keras_and_like_a_dict():
    X, y = _blobs()
    history = _model().fit(X, y, epochs=3, validation_data=(X[:20], y[:20]))
    assert history.history["loss"] == history["loss"] and len(history["val_accuracy"]) == 3
    assert history.epoch == [0, 1, 2]


def test_validation_data_with_weights_and_validation_split():
    X, y = _blobs()
    weighted = _model().fit(X, y, epochs=2, validation_data=(X[:30], y[:30], np.r_[np.ones(15), np.zeros(15)]))
    half = _model().fit(X, y, epochs=2, validation_data=(X[:15], y[:15]))
    assert weighted["val_loss"][0] == pytest.approx(half["val_loss"][0] / 2, rel=1e-5)
    split = _model().fit(X, y, epochs=2, validation_split=0.25)
    assert len(split["val_loss"]) == 2
    with pytest.raises(InputError, match="validation_data or validation_split, not both"):
        _model().fit(X, y, epochs=1, validation_data=(X, y), validation_split=0.2)
    with pytest.raises(InputError, match=r"validation_data must be a tuple \(X_val, y_val\)"):
        _model().fit(X, y, epochs=1, validation_data=X)


@pytest.mark.parametrize("verbose", [1, 2])
def test_verbose_logs_one_line_per_epoch_off_a_terminal(verbose, capsys):
    X, y = _blobs()
    _model().fit(X, y, epochs=3, verbose=verbose)
    assert len(capsys.readouterr().err.splitlines()) == 3


def test_verbose_zero_is_silent_and_bad_values_are_refused(capsys):
    X, y = _blobs()
    _model().fit(X, y, epochs=2, verbose=0)
    assert capsys.readouterr().err == ""
    with pytest.raises(InputError, match="verbose must be 0"):
        _model().fit(X, y, epochs=1, verbose=3)
    with pytest.raises(InputError, match="verbose or progress, not both"):
        _model().fit(X, y, epochs=1, verbose=1, progress=True)


# ---- callbacks ----------------------------------------------------------------------------------


def test_unknown_monitor_name_fails_before_training():
    X, y = _blobs()
    model = _model()
    before = model.get_weights()
    with pytest.raises(InputError, match=r"EarlyStopping monitors 'val_loss', which this training does not record \(validation"):
        model.fit(X, y, epochs=3, callbacks=[EarlyStopping()])
    with pytest.raises(InputError, match="monitors 'val_acc'.*it records: loss, accuracy, lr, val_loss, val_accuracy"):
        model.fit(X, y, epochs=3, validation_split=0.2, callbacks=[EarlyStopping("val_acc")])
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert model.history is None or model.history.epochs == 0


def test_early_stopping_restores_its_best_epoch():
    X, y = _blobs()
    model = _model()
    stop = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    history = model.fit(X[:90], y[:90], epochs=200, lr=0.2, validation_data=(X[90:], y[90:]), callbacks=[stop])
    assert history.stopped_early and history.epochs < 200
    best = int(np.argmin(history["val_loss"]))
    assert history.best_epoch == best + 1
    assert model.evaluate(X[90:], y[90:])["loss"] == pytest.approx(history["val_loss"][best], rel=1e-6)


def test_early_stopping_maximises_accuracies():
    X, y = _blobs()
    stop = EarlyStopping(monitor="val_accuracy", patience=1)
    assert stop._monitor.mode == "max"
    _model().fit(X, y, epochs=3, validation_split=0.2, callbacks=[stop])


def test_model_checkpoint_writes_loadable_files_only_on_improvement(tmp_path):
    X, y = _blobs()
    model = _model()
    checkpoint = ModelCheckpoint(tmp_path / "ckpt-{epoch:02d}.npz", monitor="loss", save_best_only=True)

    model.fit(X, y, epochs=4, lr=0.05, callbacks=[checkpoint])
    written = sorted(p.name for p in tmp_path.iterdir())
    losses = model.history["loss"]
    improving = [i + 1 for i in range(4) if losses[i] == min(losses[: i + 1])]
    assert written == [f"ckpt-{e:02d}.npz" for e in improving]
    loaded = NeuralNetwork.load(tmp_path / written[-1])
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_a_checkpoint_or_log_in_a_missing_folder_fails_before_training(tmp_path):
    X, y = _blobs()
    model = _model()
    for callback, name in ((ModelCheckpoint(tmp_path / "nope" / "m.npz"), "ModelCheckpoint"), (CSVLogger(tmp_path / "nope" / "log.csv"), "CSVLogger")):
        with pytest.raises(InputError, match=f"{name} folder .*nope.* does not exist"):
            model.fit(X, y, epochs=2, callbacks=[callback])
    assert model.history is None or model.history.epochs == 0
    with pytest.raises(InputError, match="is a directory"):
        model.fit(X, y, epochs=1, callbacks=[CSVLogger(tmp_path)])


def test_csv_logger_writes_one_row_per_epoch(tmp_path):
    X, y = _blobs()
    path = tmp_path / "log.csv"
    model = _model()
    model.fit(X, y, epochs=3, validation_split=0.2, callbacks=[CSVLogger(path)])
    model.fit(X, y, epochs=2, validation_split=0.2, callbacks=[CSVLogger(path, append=True)])
    rows = list(csv.DictReader(path.open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4, 5]
    assert float(rows[4]["val_loss"]) == pytest.approx(model.history["val_loss"][4])


def test_learning_rate_scheduler_sets_each_epochs_rate():
    X, y = _blobs()
    history = _model().fit(X, y, epochs=3, optimizer=SGD(lr=0.1), callbacks=[LearningRateScheduler(lambda e, lr: 0.1 / (e + 1))])
    assert history["lr"] == pytest.approx([0.1, 0.05, 0.1 / 3])
    with pytest.raises(InputError, match="schedule returned -1 for epoch 0"):
        _model().fit(X, y, epochs=1, callbacks=[LearningRateScheduler(lambda e, lr: -1)])


def test_terminate_on_nan_stops_quietly_with_finite_weights():
    X, y = _blobs()
    model = _model()
    history = model.fit(X * 1e3, y, epochs=5, optimizer=SGD(lr=1e30), callbacks=[TerminateOnNaN()])
    assert history.diverged and history.epochs < 5
    assert all(np.isfinite(w).all() for w in model.get_weights())


def test_batch_callbacks_only_where_asked():
    X, y = _blobs(n=100)
    seen = []

    class Batches(Callback):
        def on_batch_end(self, batch, logs=None):
            seen.append((batch, logs["size"], float(logs["loss"])))

    class Epochs(Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(("epoch", epoch))

    _model().fit(X, y, epochs=2, batch_size=32, callbacks=[Batches(), Epochs()])
    assert [s[:2] for s in seen] == [(0, 32), (1, 32), (2, 32), (3, 4), ("epoch", 0), (0, 32), (1, 32), (2, 32), (3, 4), ("epoch", 1)]


def test_a_callback_can_stop_training():
    X, y = _blobs()

    class StopAtTwo(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.model.stop_training = True

    assert _model().fit(X, y, epochs=10, callbacks=[StopAtTwo()]).epochs == 2


def test_callbacks_must_be_callback_objects():
    X, y = _blobs()
    with pytest.raises(InputError, match="callbacks must be a list of Callback objects"):
        _model().fit(X, y, epochs=1, callbacks=[print])


# ---- class and sample weights -------------------------------------------------------------------


def test_sample_weights_scale_each_samples_loss():
    X, y = _blobs(n=12)
    model = _model(dtype="float64")
    model.fit(X, y, epochs=1)
    w = np.linspace(0, 2, 12)
    per_sample = np.array([model.evaluate(X[i : i + 1], y[i : i + 1])["loss"] for i in range(12)])
    assert model.evaluate(X, y, sample_weight=w)["loss"] == pytest.approx((w * per_sample).mean(), rel=1e-10)
    assert model.evaluate(X, y, sample_weight=np.ones(12))["loss"] == pytest.approx(per_sample.mean(), rel=1e-10)


def test_a_zero_weight_sample_does_not_move_the_weights():
    X, y = _blobs(n=8)
    a = _model(dtype="float64")
    a.fit(X[:4], y[:4], epochs=1, batch_size=8, shuffle=False, optimizer=SGD(lr=0.1))
    b = _model(dtype="float64")
    weights = np.r_[np.ones(4), np.zeros(4)]
    # The mean is over every sample, so the four ignored samples halve the step.
    b.fit(X, y, epochs=1, batch_size=8, shuffle=False, optimizer=SGD(lr=0.2), sample_weight=weights)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-12)


def test_class_weight_equals_the_matching_sample_weight():
    X, y = _blobs()
    names = np.array(["a", "b", "c"])[y]
    by_class = _model(dtype="float64").fit(X, names, epochs=2, class_weight={"a": 2.0, "c": 0.5})
    by_sample = _model(dtype="float64").fit(X, names, epochs=2, sample_weight=np.array([2.0, 1.0, 0.5])[y])
    assert by_class["loss"] == pytest.approx(by_sample["loss"], rel=1e-12)
    balanced = _model(dtype="float64").fit(X, y, epochs=1, class_weight="balanced")
    counts = np.bincount(y)
    expected = _model(dtype="float64").fit(X, y, epochs=1, sample_weight=(len(y) / (3 * counts))[y])
    assert balanced["loss"] == pytest.approx(expected["loss"], rel=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sample_weight": -np.ones(120)}, "sample_weight must be finite and >= 0"),
        ({"sample_weight": np.ones(5)}, r"sample_weight must be 120 numbers, one per sample, got shape \(5,\)"),
        ({"sample_weight": np.zeros(120)}, r"the sample weights are all 0 \(sample_weight\)"),
        ({"class_weight": {0: 0.0, 1: 0.0, 2: 0.0}}, r"the sample weights are all 0 \(class_weight\)"),
        ({"sample_weight": np.full(120, np.nan)}, "sample_weight must be finite"),
        ({"class_weight": {7: 1.0}}, r"class_weight names the class 7, which the model does not have \(its classes: 0, 1, 2\)"),
        ({"class_weight": {0: -1.0}}, r"class_weight\[0\] must be a finite number >= 0"),
        ({"class_weight": "even"}, "class_weight must be a dict"),
    ],
)
def test_bad_weights_fail_before_training(kwargs, message):
    X, y = _blobs()
    model = _model()
    with pytest.raises(InputError, match=message):
        model.fit(X, y, epochs=1, **kwargs)
    assert model.history is None


def test_a_validation_set_weighing_nothing_names_its_own_weights():
    X, y = _blobs()
    with pytest.raises(InputError, match=r"the sample weights are all 0 \(sample_weight_val\)") as caught:
        _model().fit(X, y, epochs=1, class_weight="balanced", validation_data=(X[:10], y[:10], np.zeros(10)))
    assert "class_weight" not in str(caught.value)


def test_class_weight_needs_a_classifier():
    X, y = _blobs()
    with pytest.raises(InputError, match="class_weight needs a classifier trained on one class label per sample"):
        NeuralNetwork([4, 1], regressor=True, backend="numpy").fit(X, y.astype(float), epochs=1, class_weight={0: 1.0})


def test_balanced_class_weight_raises_the_minority_recall():
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    rng = np.random.default_rng(0)
    minority = np.flatnonzero(data.target == 0)
    keep = np.r_[np.flatnonzero(data.target == 1), rng.choice(minority, size=len(minority) // 6, replace=False)]
    X, y = data.data[keep], data.target[keep]
    assert (y == 0).mean() < 0.11
    recalls = {}
    for weight in (None, "balanced"):
        found = []
        for seed in range(3):
            model = NeuralNetwork([Normalization(), Dense(8, activation="relu"), Dense(2, activation="softmax")],
                                  backend="numpy", seed=seed)
            model.fit(X, y, epochs=10, batch_size=64, lr=0.01, class_weight=weight)
            pred = model.predict(data.data)
            found.append(((pred == 0) & (data.target == 0)).sum() / (data.target == 0).sum())
        recalls[weight] = np.mean(found)
    assert recalls["balanced"] > recalls[None] + 0.1, recalls



# ---- clipping, schedules, resuming --------------------------------------------------------------


def test_global_clipnorm_caps_the_step_and_clipvalue_the_elements():
    from sega_core.nn.optimizers import Adam

    X, y = _blobs(n=16)
    ref = _model(dtype="float64")
    _, grad = ref._loss_and_grad(X, y)
    norm = np.linalg.norm(grad)
    for clip, expected in (({"global_clipnorm": norm / 4}, grad * 0.25), ({"clipvalue": 0.01}, np.clip(grad, -0.01, 0.01))):
        model = _model(dtype="float64")
        before = model.params.host_copy()
        model.fit(X, y, epochs=1, batch_size=16, shuffle=False, optimizer=SGD(lr=1.0, **clip))
        np.testing.assert_allclose(before - model.params.host_copy(), expected, rtol=1e-9, atol=1e-15)


def test_clipnorm_clips_each_parameter_array_on_its_own():
    X, y = _blobs(n=16)
    ref = _model(dtype="float64")
    _, grad = ref._loss_and_grad(X, y)
    expected = grad.copy()
    for offset, size in ref.params.segments:
        part = expected[offset : offset + size]
        part *= min(1.0, 0.05 / np.linalg.norm(part))
    model = _model(dtype="float64")
    before = model.params.host_copy()
    model.fit(X, y, epochs=1, batch_size=16, shuffle=False, optimizer=SGD(lr=1.0, clipnorm=0.05))
    np.testing.assert_allclose(before - model.params.host_copy(), expected, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: SGD(clipnorm=0), r"clipnorm must be a positive number"),
        (lambda: SGD(clipvalue=-1), r"clipvalue must be a positive number"),
        (lambda: SGD(clipnorm=1, global_clipnorm=1), "clipnorm .* or global_clipnorm .*, not both"),
    ],
)
def test_bad_clipping_arguments(factory, message):
    with pytest.raises(InputError, match=message):
        factory()


def test_cosine_decay_warms_up_then_decays_per_batch():
    from sega_core import CosineDecay

    X, y = _blobs(n=40)
    seen = []

    class Rates(Callback):
        def on_batch_end(self, batch, logs=None):
            seen.append(self.model.optimizer.lr)

    schedule = CosineDecay(0.0, decay_steps=6, warmup_steps=4, warmup_target=0.01)
    _model().fit(X, y, epochs=2, batch_size=4, lr_scheduler=schedule, callbacks=[Rates()])
    expected = [schedule.lr_at(s) for s in range(20)]
    expected = [max(e, 1e-30) for e in expected]
    assert seen == pytest.approx(expected, rel=1e-12, abs=1e-40)
    assert seen[:5] == pytest.approx([1e-30, 0.0025, 0.005, 0.0075, 0.01], abs=1e-12)
    assert seen[7] == pytest.approx(0.005) and seen[-1] == pytest.approx(1e-30, abs=1e-20)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_training_resumed_from_a_file_equals_training_straight_through(backend, tmp_path, require_backend):
    from sega_core import CosineDecay, Dropout, ReduceLROnPlateau, StepLR
    from sega_core.nn.optimizers import Adam

    require_backend(backend)
    X, y = _blobs(n=90)

    def make():
        layers = [Normalization(), Dense(16, activation="relu"), Dropout(0.3), Dense(3, activation="softmax")]
        return NeuralNetwork(layers, backend=backend, seed=3)

    # Per epoch, on the validation loss, and per batch (warm-up then cosine decay, mid-warm-up at the save).
    for scheduler in (lambda: StepLR(step_size=1, gamma=0.5), lambda: ReduceLROnPlateau(patience=0, factor=0.5),
                      lambda: CosineDecay(0.0, decay_steps=12, warmup_steps=12, warmup_target=0.02)):
        straight = make()
        straight.fit(X, y, epochs=4, batch_size=16, optimizer=Adam(lr=0.01, clipnorm=1.0), lr_scheduler=scheduler(),
                     validation_split=0.2)
        halves = make()
        halves.fit(X, y, epochs=2, batch_size=16, optimizer=Adam(lr=0.01, clipnorm=1.0), lr_scheduler=scheduler(),
                   validation_split=0.2)
        halves.save(tmp_path / "half.npz")
        resumed = NeuralNetwork.load(tmp_path / "half.npz", backend=backend)
        resumed.fit(X, y, epochs=2, batch_size=16, validation_split=0.2)
        for a, b in zip(straight.get_weights(), resumed.get_weights()):
            np.testing.assert_array_equal(a, b)
        assert resumed.history["loss"] == straight.history["loss"]
        assert resumed.history["lr"] == straight.history["lr"]
        assert resumed.optimizer.steps == straight.optimizer.steps


def test_a_model_saved_without_its_optimizer_starts_a_fresh_one(tmp_path):
    X, y = _blobs()
    model = _model()
    model.fit(X, y, epochs=1)
    model.save(tmp_path / "m.npz", include_optimizer=False)
    assert NeuralNetwork.load(tmp_path / "m.npz").optimizer is None
    model.save(tmp_path / "m2.npz")
    loaded = NeuralNetwork.load(tmp_path / "m2.npz")
    assert loaded.optimizer.steps == model.optimizer.steps and loaded.history.epochs == 1


def test_class_weight_on_a_one_output_binary_model():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), np.r_[np.zeros(32, int), np.ones(8, int)]
    balanced = NeuralNetwork([3, 4, 1], backend="numpy", seed=0, dtype="float64").fit(X, y, epochs=1, class_weight="balanced")
    by_sample = NeuralNetwork([3, 4, 1], backend="numpy", seed=0, dtype="float64").fit(
        X, y, epochs=1, sample_weight=np.where(y == 1, 40 / 16, 40 / 64))
    assert balanced["loss"] == pytest.approx(by_sample["loss"], rel=1e-12)


def test_a_weighted_loss_divides_by_the_samples_and_weighted_metrics_by_the_weights():
    # Keras's loss reduction, scikit-learn's weighted metrics, as the losses guide says.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = X @ [1.0, 2.0, 3.0] + rng.normal(size=40)
    model = NeuralNetwork([3, 8, 1], regressor=True, backend="numpy", dtype="float64", seed=0)
    model.train(X, y, epochs=5, progress=False)
    w = rng.random(40) * 2
    squared = (model.predict(X) - y) ** 2
    scores = model.evaluate(X, y, sample_weight=w)
    assert scores["loss"] == pytest.approx((w * squared).sum() / len(y), rel=1e-9)
    assert scores["mse"] == pytest.approx((w * squared).sum() / w.sum(), rel=1e-9)


def test_a_refused_training_call_teaches_the_model_nothing():
    """Classes and target scaling learnt from a y that is then refused would bind every later call."""
    X, y = _blobs()
    model = _model()
    with pytest.raises(InputError, match="X has 120 samples but y has 60"):
        model.fit(X, np.array(["a", "b", "c"] * 20), epochs=1)
    assert model.classes_ is None
    model.fit(X, np.array(["x", "y", "z"])[y], epochs=1)
    assert list(model.classes_) == ["x", "y", "z"]
    regressor = NeuralNetwork([4, 8, 1], regressor=True, standardize_target=True, backend="numpy", seed=0)
    with pytest.raises(InputError, match="X has 120 samples but y has 5"):
        regressor.fit(X, np.arange(5.0) * 100, epochs=1, sample_weight=np.ones(120))
    with pytest.raises(InputError, match="sample_weight must be 120 numbers"):
        regressor.fit(X, X[:, 0] * 100, epochs=1, sample_weight=np.ones(7))
    assert regressor.target_scaler is None


def test_a_regressors_target_scaling_weighs_its_samples():
    X, _ = _blobs()
    target = X[:, 0] * 10 + 3
    weight = np.where(target > 3, 3.0, 1.0)
    regressor = NeuralNetwork([4, 8, 1], regressor=True, standardize_target=True, backend="numpy", seed=0)
    regressor.fit(X, target, epochs=1, sample_weight=weight)
    mean = np.average(target, weights=weight)
    np.testing.assert_allclose(regressor.target_scaler.mean, [mean])
    np.testing.assert_allclose(regressor.target_scaler.scale, [np.sqrt(np.average((target - mean) ** 2, weights=weight))])


def test_a_validation_split_whose_held_out_samples_weigh_nothing_is_refused():
    X, y = _blobs(n=20)
    weight = np.zeros(20)
    held = np.random.default_rng(7).permutation(20)[:2]  # what validation_split=0.1 holds out
    weight[np.setdiff1d(np.arange(20), held)] = 1.0
    with pytest.raises(InputError, match=r"the 2 held-out samples of validation_split=0.1 all weigh 0"):
        _model().fit(X, y, epochs=1, sample_weight=weight, validation_split=0.1)


@pytest.mark.parametrize("refused", [
    dict(epochs=-1), dict(batch_size=0), dict(lr=-1.0), dict(optimizer="rmsprop"), dict(callbacks=[1]),
    dict(early_stopping_patience=0), dict(validation_split=1.5),
    dict(validation_data=(np.zeros((4, 4)), ["p", "q", "r"])),
])
def test_a_call_refused_for_any_argument_leaves_the_model_unbuilt_and_untaught(refused):
    X, y = _blobs()
    model = NeuralNetwork([Dense(8, activation="relu"), Dense(3)], backend="numpy", seed=0)
    with pytest.raises(InputError):
        model.fit(X, np.array(["a", "b", "c"])[y], **refused)
    assert model.classes_ is None and not model._built
    wider = np.hstack([X, X])  # a different feature count is welcome: nothing was built
    model.fit(wider, np.array(["x", "y", "z"])[y], epochs=1)
    assert list(model.classes_) == ["x", "y", "z"] and model.input_shape == (8,)
    regressor = NeuralNetwork([4, 8, 1], regressor=True, standardize_target=True, backend="numpy", seed=0)
    with pytest.raises(InputError):
        regressor.fit(X, X[:, 0] * 1000, **refused)
    assert regressor.target_scaler is None


def test_a_refused_batch_stream_teaches_the_model_nothing():
    X, y = _blobs()
    model = _model()
    with pytest.raises(InputError, match="sample_weight batch must be"):
        model.fit(iter([(X[:10], np.array(["a", "b", "c"])[y[:10]], np.ones(3))]), epochs=1)
    assert model.classes_ is None
