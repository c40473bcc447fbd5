"""A model written by ``sega train`` predicts from Python exactly as ``sega predict`` does.

The model takes raw features (its Normalization layer holds the scaling), returns the labels
the file held and a regressor's values in the target's units; the command line adds nothing.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from sega_core.cli.data import load_builtin
from sega_core.nn.model import NeuralNetwork


def cli_predictions(sega, read_csv, model, data) -> list[str]:
    """The ``prediction`` column ``sega predict MODEL DATA`` writes, as text."""
    result = sega("predict", model, data)
    assert result.rc == 0, result
    rows = read_csv(result.out)
    assert rows[0] == ["prediction"]
    return [row[0] for row in rows[1:]]


def test_wine_classifier_predicts_the_same_from_python(sega, tmp_path, read_csv):
    assert sega("train", "wine", "--save", "wine.sega", "-q").rc == 0
    table = load_builtin("wine")
    python = NeuralNetwork.load(tmp_path / "wine.sega").predict(table.X)  # raw features, no scaling
    cli = cli_predictions(sega, read_csv, "wine.sega", "wine")
    assert [str(v) for v in python] == cli
    assert np.mean(python == table.y) > 0.95


def test_diabetes_regressor_predicts_the_same_values_from_python(sega, tmp_path, read_csv):
    assert sega("train", "diabetes", "--save", "diabetes.sega", "-q").rc == 0
    table = load_builtin("diabetes")
    model = NeuralNetwork.load(tmp_path / "diabetes.sega")
    python = model.predict(table.X)
    cli = np.array(cli_predictions(sega, read_csv, "diabetes.sega", "diabetes"), dtype=np.float64)
    np.testing.assert_allclose(python, cli, rtol=1e-6)
    # In the target's own units: the whole data set is scored as well from Python as by the CLI.
    scores = model.evaluate(table.X, table.y)
    result = sega("evaluate", "diabetes.sega", "diabetes", "--all", "--json")
    assert result.rc == 0, result
    assert scores["r2"] == pytest.approx(json.loads(result.out)["r2"], abs=1e-6) and scores["r2"] > 0.4
    assert abs(python.mean() - table.y.mean()) < 0.2 * table.y.std()


def test_text_labels_from_a_csv_come_back_from_python(sega, tmp_path, colors_csv, read_csv):
    assert sega("train", colors_csv, "--epochs", "15", "--save", "colors.sega", "-q").rc == 0
    X = np.loadtxt(colors_csv, delimiter=",", skiprows=1, usecols=(0, 1, 2))
    truth = np.loadtxt(colors_csv, delimiter=",", skiprows=1, usecols=3, dtype=str)
    model = NeuralNetwork.load(tmp_path / "colors.sega")
    python = model.predict(X)
    assert python.tolist() == cli_predictions(sega, read_csv, "colors.sega", colors_csv)
    assert np.mean(python == truth) > 0.9
    assert model.classes_.tolist() == ["blue", "green", "red"]


def test_the_model_begins_with_its_normalization_unless_no_standardize(sega, tmp_path):
    assert sega("train", "iris", "--epochs", "1", "--save", "std.sega", "-q").rc == 0
    assert sega("train", "iris", "--epochs", "1", "--save", "raw.sega", "--no-standardize", "-q").rc == 0
    assert sega("train", "iris", "--model", "cnn", "--image-shape", "1,2,2", "--epochs", "1", "--save", "cnn.sega", "-q").rc == 0
    kinds = {name: [type(layer).__name__ for layer in NeuralNetwork.load(tmp_path / name).layers]
             for name in ("std.sega", "raw.sega", "cnn.sega")}
    assert kinds["std.sega"][0] == "Normalization" and "Normalization" not in kinds["raw.sega"]
    assert kinds["cnn.sega"][:3] == ["Normalization", "Reshape", "Conv2D"]


def test_command_line_metadata_is_only_about_files(sega, tmp_path, houses_csv):
    assert sega("train", houses_csv, "--epochs", "1", "--save", "h.sega", "-q").rc == 0
    meta = NeuralNetwork.load(tmp_path / "h.sega").extra_config["cli"]
    assert set(meta) == {"version", "feature_names", "target_name", "dataset", "split", "imputation"}
    assert meta["feature_names"] == ["rooms", "age", "distance"] and meta["target_name"] == "price"


def test_a_model_file_with_the_old_command_line_metadata_says_to_retrain(sega, assert_error, tmp_path, colors_csv):
    assert sega("train", colors_csv, "--epochs", "1", "--save", "new.sega", "-q").rc == 0
    model = NeuralNetwork.load(tmp_path / "new.sega")
    model.extra_config["cli"] = {"version": 1, "task": "classify", "feature_names": ["a", "b", "c"],
                                 "target_name": "color", "classes": ["blue", "green", "red"]}
    model.save(tmp_path / "old.sega")
    for command in ("predict", "evaluate"):
        assert_error(sega(command, "old.sega", colors_csv), "'old.sega'", "older sega train", "train it again")
