"""Tabular classification from a CSV file: scikit-learn's breast-cancer data (569 tumours, 30
measurements each) written to ``cancer.csv`` with a text label column, then learnt twice:

1. on the command line: ``sega train cancer.csv --target diagnosis --save model.npz``, then
   ``sega predict model.npz cancer.csv``;
2. in Python: the CSV read with NumPy, a model that standardises its own inputs (a
   ``Normalization`` layer), an L2 penalty, ``class_weight="balanced"`` for the smaller class,
   and early stopping on a validation split.

The model file written by the command line loads in Python and predicts the same labels from the
same raw columns.

Needs ``pip install "sega-core[numpy,sklearn]"``.
"""

import csv
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

from sega_core import Dense, EarlyStopping, NeuralNetwork, Normalization

workdir = tempfile.TemporaryDirectory()  # removed when the script ends
folder = Path(workdir.name)
data = load_breast_cancer()
columns = [name.replace(" ", "_") for name in data.feature_names]
with open(folder / "cancer.csv", "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(columns + ["diagnosis"])
    for features, label in zip(data.data, data.target):
        writer.writerow([*features, data.target_names[label]])  # "malignant" or "benign"

# 1. The command line (the `sega` command; `python -m sega_core.cli` is the same program).
sega = [sys.executable, "-m", "sega_core.cli"]
subprocess.run(sega + ["train", folder / "cancer.csv", "--target", "diagnosis", "--layers", "32",
                       "--epochs", "40", "--early-stopping", "5", "--save", folder / "model.npz"], check=True)
cli_labels = subprocess.run(sega + ["predict", folder / "model.npz", folder / "cancer.csv"], check=True,
                            capture_output=True, text=True).stdout.split()[1:]  # a CSV column after its header

# 2. Python: read the same file with NumPy (the header row names the columns).
table = np.genfromtxt(folder / "cancer.csv", delimiter=",", names=True, dtype=None, encoding="utf-8")
X = np.column_stack([table[name] for name in columns])
y = table["diagnosis"]  # text labels: the model learns them and predicts them back
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)

model = NeuralNetwork([Normalization(), Dense(32, activation="relu"), Dense(2)], reg_lambda=0.01, seed=0)
history = model.train(
    X_train, y_train, epochs=100, batch_size=32, validation_split=0.2, class_weight="balanced",
    callbacks=[EarlyStopping("val_loss", patience=10, restore_best_weights=True)], verbose=0,
)
scores = model.evaluate(X_test, y_test)
print(f"Python: {history.epochs} epochs, test accuracy {scores['accuracy']:.3f}, macro recall {scores['recall']:.3f}")
print("labels:", model.classes_, "first predictions:", model.predict(X_test[:5]))

# The command line's model file, in Python: raw columns in, the same labels out.
from_cli = NeuralNetwork.load(folder / "model.npz")
assert list(from_cli.predict(X)) == cli_labels
print(f"sega train's model in Python: accuracy {np.mean(from_cli.predict(X) == y):.3f} on the whole file")
assert scores["accuracy"] >= 0.95, scores
