"""An Elman RNN on scikit-learn's digits, each image read as 8 time steps of 8 pixels (one row
per step), with a validation split, early stopping and a plot of the training curves.

Needs scikit-learn and matplotlib. Runs in about a second on a laptop CPU.
"""

import sys

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sega_core import RNN, Dense, NeuralNetwork

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train = scaler.transform(X_train).reshape(-1, 8, 8)  # (samples, time steps, features)
X_test = scaler.transform(X_test).reshape(-1, 8, 8)

model = NeuralNetwork([RNN(64, activation="tanh"), Dense(10)], seed=0)
history = model.train(
    X_train, y_train, validation_split=0.1, epochs=30, batch_size=32, lr_scheduler="exponential", early_stopping_patience=5
)
print(f"ran {history.epochs} epochs, best validation loss at epoch {history.best_epoch}")
print({name: round(value, 4) for name, value in model.evaluate(X_test, y_test).items()})

if len(sys.argv) > 1:  # python rnn_digits.py curves.png
    model.plot_metrics(sys.argv[1])
    print(f"training curves written to {sys.argv[1]}")
