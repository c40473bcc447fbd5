"""Accuracy on real data (scikit-learn's bundled data sets, no download).

Every test: features standardised on the training part, train_test_split(test_size=0.2,
random_state=0), a fixed model seed, the NumPy backend, well under a few seconds on two cores.
Hyper-parameters were chosen so the target holds for seeds 0-4 (0-9 for breast cancer), not
only for the seed used here.
"""

from __future__ import annotations

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from sega_core import RNN, Conv2D, Dense, Flatten, NeuralNetwork  # noqa: E402

SEED = 0


def split(X, y):
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


@pytest.fixture(scope="module")
def digits():
    return split(*load_digits(return_X_y=True))


def test_digits_mlp(digits):
    X_train, X_test, y_train, y_test = digits
    model = NeuralNetwork([64, 128, 10], reg_lambda=1e-3, seed=SEED, backend="numpy")
    history = model.train(X_train, y_train, epochs=30, batch_size=32, progress=False)
    scores = model.evaluate(X_test, y_test)
    assert scores["accuracy"] >= 0.96, scores
    assert scores["f1"] >= 0.95, scores
    assert history["accuracy"][-1] > 0.99  # training fit


@pytest.mark.parametrize("batch_size", [16, 64])
def test_digits_with_the_seed_documents_configuration(digits, batch_size):
    """The README's own [64, 32, 10] + dropout 0.2 + L2 0.01: the original reached 26% at batch
    64 (gradients divided by the batch size twice); it must learn at any batch size."""
    X_train, X_test, y_train, y_test = digits
    model = NeuralNetwork(layers=[64, 32, 10], dropout_rate=0.2, reg_lambda=0.01, seed=SEED, backend="numpy")
    model.train(X_train, y_train, epochs=50, batch_size=batch_size, progress=False)
    assert model.evaluate(X_test, y_test)["accuracy"] >= 0.95


def test_digits_conv(digits):
    """Digits as 1x8x8 images through a Conv2D network."""
    X_train, X_test, y_train, y_test = digits
    images_train, images_test = X_train.reshape(-1, 1, 8, 8), X_test.reshape(-1, 1, 8, 8)
    model = NeuralNetwork([Conv2D(16, kernel_size=3, padding=1), Flatten(), Dense(10)], seed=SEED, backend="numpy")
    model.train(images_train, y_train, epochs=15, batch_size=32, progress=False)
    scores = model.evaluate(images_test, y_test)
    assert scores["accuracy"] >= 0.97, scores


def test_digits_rnn(digits):
    """Digits as 8 time steps of 8 features (one image row per step) through an Elman RNN."""
    X_train, X_test, y_train, y_test = digits
    seq_train, seq_test = X_train.reshape(-1, 8, 8), X_test.reshape(-1, 8, 8)
    model = NeuralNetwork([RNN(64), Dense(10)], seed=SEED, backend="numpy")
    model.train(seq_train, y_train, epochs=20, batch_size=32, progress=False)
    scores = model.evaluate(seq_test, y_test)
    assert scores["accuracy"] >= 0.95, scores


def test_digits_rnn_sequence_output(digits):
    X_train, X_test, y_train, y_test = digits
    model = NeuralNetwork([RNN(32, return_sequences=True), Flatten(), Dense(10)], seed=SEED, backend="numpy")
    model.train(X_train.reshape(-1, 8, 8), y_train, epochs=20, batch_size=32, lr=3e-3, progress=False)
    assert model.evaluate(X_test.reshape(-1, 8, 8), y_test)["accuracy"] >= 0.95


def test_breast_cancer_binary_one_sigmoid_output():
    X_train, X_test, y_train, y_test = split(*load_breast_cancer(return_X_y=True))
    model = NeuralNetwork([30, 32, 1], reg_lambda=0.05, seed=SEED, backend="numpy")
    assert model.layers[-1].activation == "sigmoid" and model.loss.name == "bce_with_logits"
    model.train(X_train, y_train, epochs=50, batch_size=32, progress=False)
    scores = model.evaluate(X_test, y_test)
    assert scores["accuracy"] >= 0.95, scores
    proba = model.predict_proba(X_test)
    assert proba.shape == (len(X_test), 2)


def test_diabetes_regression():
    """Diabetes: the target is standardised too (a test choice: raw targets near 150 need far more
    Adam steps), L2 0.1 and early stopping on a validation split; R2 on the original scale."""
    X_train, X_test, y_train, y_test = split(*load_diabetes(return_X_y=True))
    mean, std = y_train.mean(), y_train.std()
    model = NeuralNetwork([10, 16, 1], regressor=True, reg_lambda=0.1, seed=SEED, backend="numpy")
    history = model.train(
        X_train, (y_train - mean) / std, epochs=300, batch_size=32, validation_split=0.2, early_stopping_patience=10, progress=False
    )
    assert history.best_epoch is not None  # the best validation epoch's weights are the ones kept
    pred = model.predict(X_test) * std + mean
    r2 = 1 - np.sum((y_test - pred) ** 2) / np.sum((y_test - y_test.mean()) ** 2)
    assert r2 >= 0.30, r2
    # evaluate() reports the same R2 on the standardised scale (R2 is scale-invariant).
    assert model.evaluate(X_test, (y_test - mean) / std)["r2"] == pytest.approx(r2, rel=1e-4)
