"""A model's normalisation statistics travel with its weights: the epoch that early stopping
keeps and the epoch a divergence returns to are the weights *and* the running statistics that
were used with them, or the model would predict differently from what was measured."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from sega_core import BatchNormalization, Dense, EarlyStopping, NeuralNetwork, TrainingDivergedError


def _data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)) * 3 + 5
    y = (X[:, 0] + X[:, 1] > 10).astype(int)
    return X, y


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_restore_best_weights_restores_the_batchnorm_statistics_of_the_best_epoch(backend):
    X, y = _data()
    Xv, yv = _data(48, seed=1)
    model = NeuralNetwork([Dense(16, activation="relu"), BatchNormalization(momentum=0.5), Dense(2, activation="softmax")],
                          backend=backend, seed=0)
    stop = EarlyStopping("val_loss", patience=2, restore_best_weights=True)
    history = model.train(X, y, epochs=30, batch_size=16, lr=0.05, validation_data=(Xv, yv), callbacks=[stop],
                          progress=False)
    assert stop.stopped_epoch is not None, "the run must stop early for this test to mean anything"
    assert model.evaluate(Xv, yv)["loss"] == pytest.approx(min(history["val_loss"]), rel=1e-5)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_a_divergence_keeps_the_statistics_from_before_it_and_the_model_still_predicts(backend):
    X, y = _data()
    model = NeuralNetwork([Dense(16, activation="relu"), BatchNormalization(), Dense(16, activation="relu"), Dense(1)],
                          regressor=True, backend=backend, seed=0)
    model.train(X, y * 1.0, epochs=1, optimizer="sgd", lr=1e-3, progress=False)
    statistics, weights = model.params.state_copy(), model.get_weights()
    prediction = model.predict(X)
    with pytest.raises(TrainingDivergedError), warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # one error, not NumPy's overflow warnings too
        model.train(X, y * 1e3, epochs=3, optimizer="sgd", lr=1e3, progress=False)
    np.testing.assert_array_equal(model.params.state_copy(), statistics)
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(model.predict(X), prediction)
