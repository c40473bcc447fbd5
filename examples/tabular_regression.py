"""Tabular regression from a CSV file: scikit-learn's diabetes data (442 patients, 10 measurements,
and a number that scores the disease's progression a year later) written to ``diabetes.csv``,
then learnt on the command line (``sega train diabetes.csv --target progression --task
regress``) and in Python, next to scikit-learn's linear ridge regression as a baseline.

The Python model takes raw columns and gives predictions in the target's own units: a
``Normalization`` layer scales the inputs and ``standardize_target=True`` the target, both saved
with the model.

Needs ``pip install "sega-core[numpy,sklearn]"``.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import RidgeCV
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split

from sega_core import Dense, NeuralNetwork, Normalization

workdir = tempfile.TemporaryDirectory()  # removed when the script ends
folder = Path(workdir.name)
data = load_diabetes(scaled=False)  # raw units: age in years, blood pressure in mm Hg...
header = ",".join(data.feature_names + ["progression"])
np.savetxt(folder / "diabetes.csv", np.column_stack([data.data, data.target]), delimiter=",", header=header,
           comments="", fmt="%.6g")

# The command line: a held-out fifth is scored at the end (--test-size 0.2, the default).
subprocess.run([sys.executable, "-m", "sega_core.cli", "train", folder / "diabetes.csv", "--target", "progression",
                "--task", "regress", "--layers", "8", "--l2", "0.1", "--epochs", "100", "-q"], check=True)

# Python: the same file read back with NumPy.
table = np.loadtxt(folder / "diabetes.csv", delimiter=",", skiprows=1)
X, y = table[:, :-1], table[:, -1]
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)

model = NeuralNetwork([Normalization(), Dense(8, activation="relu"), Dense(1)], regressor=True,
                      standardize_target=True, loss_function="huber", reg_lambda=0.1, seed=0)
model.train(X_train, y_train, epochs=100, batch_size=16, verbose=0)
scores = model.evaluate(X_test, y_test)  # mse, mae and r2 in the target's units
baseline = RidgeCV().fit(X_train, y_train)
print(f"sega:  R^2 {scores['r2']:.3f}, mean absolute error {scores['mae']:.1f}")
print(f"ridge: R^2 {r2_score(y_test, baseline.predict(X_test)):.3f}")
print("first predictions:", np.round(model.predict(X_test[:5])), "true:", y_test[:5])
assert scores["r2"] >= 0.3, scores
