"""CSV files as users write them: missing cells, no header row, one prediction per row."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from sega_core.nn.model import NeuralNetwork

from .conftest import write_csv


@pytest.fixture
def houses_rows(houses_csv, read_csv):
    """The header and the rows of ``houses.csv`` (3 features, ``price`` last), as text."""
    rows = read_csv(houses_csv)
    return rows[0], rows[1:]


@pytest.mark.parametrize("token", ["NA", "nan", "?", "", "NaN", "N/A"])
def test_a_missing_regression_target_is_an_error_naming_its_lines(sega, assert_error, tmp_path, houses_rows, token):
    header, rows = houses_rows
    rows[4][3] = rows[9][3] = token  # lines 6 and 11 of the file
    write_csv(tmp_path / "na.csv", header, rows)
    for task in ("auto", "regress", "classify"):
        # Never a text column of classes (auto once trained 59 classes to accuracy 0.06).
        assert_error(sega("train", "na.csv", "--task", task, "-q"), "target column 'price'", "lines 6, 11")


def test_a_numeric_target_with_stray_text_is_not_taken_for_classes(sega, assert_error, tmp_path, houses_rows):
    header, rows = houses_rows
    rows[2][3] = "n.a."
    write_csv(tmp_path / "stray.csv", header, rows)
    assert_error(sega("train", "stray.csv", "-q"), "'n.a.'", "--task classify")


def test_missing_features_are_an_error_naming_column_and_lines(sega, assert_error, tmp_path, houses_rows):
    header, rows = houses_rows
    rows[0][1], rows[6][1], rows[7][2] = "NA", "", "?"
    write_csv(tmp_path / "gaps.csv", header, rows)
    assert_error(sega("train", "gaps.csv", "-q"), "feature column 'age'", "lines 2, 8", "1 more column", "--impute")


def test_impute_fills_from_the_training_part_and_predict_fills_the_same(sega, tmp_path, houses_rows, read_csv):
    header, rows = houses_rows
    rows[0][1], rows[6][1], rows[7][2] = "NA", "", "?"
    write_csv(tmp_path / "gaps.csv", header, rows)
    result = sega("train", "gaps.csv", "--impute", "median", "--epochs", "40", "--save", "m.sega")
    assert result.rc == 0, result
    meta = NeuralNetwork.load(tmp_path / "m.sega").extra_config["cli"]
    assert meta["imputation"]["strategy"] == "median" and len(meta["imputation"]["values"]) == 3

    # New data with holes, a row of nothing but empty cells among them: one prediction per row.
    (tmp_path / "new.csv").write_text("rooms,age,distance\n0.1,0.2,0.3\n,,\nNA,1,?\n-1,0,1\n")
    result = sega("predict", "m.sega", "new.csv")
    assert result.rc == 0, result
    values = [float(row[0]) for row in read_csv(result.out)[1:]]
    assert len(values) == 4 and np.isfinite(values).all()
    # From Python, as the CLI guide says: fill with the saved values, then predict the same.
    model = NeuralNetwork.load(tmp_path / "m.sega")
    X = np.array([[0.1, 0.2, 0.3], [np.nan] * 3, [np.nan, 1, np.nan], [-1, 0, 1]])
    filled = np.where(np.isnan(X), model.extra_config["cli"]["imputation"]["values"], X)
    np.testing.assert_allclose(model.predict(filled).ravel(), values, rtol=1e-5)
    result = sega("evaluate", "m.sega", "gaps.csv", "--json")
    assert result.rc == 0 and json.loads(result.out)["samples"] == 200, result


def test_predict_writes_one_row_per_input_row_or_fails(sega, assert_error, tmp_path, houses_csv, read_csv):
    assert sega("train", houses_csv, "--epochs", "2", "--save", "m.sega", "-q").rc == 0
    (tmp_path / "new.csv").write_text("rooms,age,distance\n0.1,0.2,0.3\n,,\n-1,0,1\n")
    # No imputation in this model: the empty row is named, not dropped.
    assert_error(sega("predict", "m.sega", "new.csv"), "'rooms'", "line 3", "without --impute")
    (tmp_path / "full.csv").write_text("rooms,age,distance\n0.1,0.2,0.3\n1,2,3\n-1,0,1\n")
    result = sega("predict", "m.sega", "full.csv")
    assert result.rc == 0 and len(read_csv(result.out)) == 4, result


def test_a_headerless_file_with_text_labels_keeps_its_first_row_as_data(sega, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    labels = np.where(X[:, 0] > 0, "big", "small")
    (tmp_path / "bare.csv").write_text("".join(f"{a:.4f},{b:.4f},{c:.4f},{t}\n" for (a, b, c), t in zip(X, labels)))
    result = sega("train", "bare.csv", "--epochs", "2", "--save", "bare.sega")
    assert result.rc == 0, result
    split = re.search(r"(\d+) train / (\d+) validation / (\d+) test", result.out)
    assert split and sum(map(int, split.groups())) == 60, result.out  # the first row is a sample
    note = [line for line in result.err.splitlines() if line.startswith("sega: note:")]
    assert len(note) == 1 and "without a header row" in note[0] and "x3 is the target" in note[0], result.err
    meta = NeuralNetwork.load(tmp_path / "bare.sega").extra_config["cli"]
    assert meta["feature_names"] == ["x0", "x1", "x2"] and meta["target_name"] == "x3"
    # With names over the numeric columns, the first row is a header.
    (tmp_path / "named.csv").write_text("a,b,c,size\n" + (tmp_path / "bare.csv").read_text())
    result = sega("train", "named.csv", "--epochs", "2", "--save", "named.sega", "-q")
    assert result.rc == 0, result
    assert NeuralNetwork.load(tmp_path / "named.sega").extra_config["cli"]["target_name"] == "size"


def test_a_first_row_of_numbers_is_data_and_the_note_says_so(sega, tmp_path, houses_csv, read_csv):
    rows = read_csv(houses_csv)[1:]
    (tmp_path / "bare.csv").write_text("\n".join(",".join(r) for r in rows) + "\n")
    result = sega("train", "bare.csv", "--epochs", "40", "--save", "bare.sega")
    assert result.rc == 0, result
    assert "144 train / 16 validation / 40 test" in result.out  # 200 rows: the first one too
    note = [line for line in result.err.splitlines() if line.startswith("sega: note:")]
    assert len(note) == 1 and "without a header row" in note[0] and "x0..x3" in note[0] and "x3 is the target" in note[0]
    meta = NeuralNetwork.load(tmp_path / "bare.sega").extra_config["cli"]
    assert meta["feature_names"] == ["x0", "x1", "x2"] and meta["target_name"] == "x3"
    result = sega("predict", "bare.sega", "bare.csv")  # the target column is recognised by name and ignored
    assert result.rc == 0, result
    values = np.array([float(r[0]) for r in read_csv(result.out)[1:]])
    truth = np.array([float(r[3]) for r in rows])
    assert len(values) == 200 and np.corrcoef(values, truth)[0, 1] > 0.9


def test_a_blank_line_inside_the_data_is_an_error(sega, assert_error, tmp_path):
    (tmp_path / "blank.csv").write_text("a,b,y\n1,2,0\n\n3,4,1\n5,6,0\n\n")
    assert_error(sega("train", "blank.csv"), "line 3 is blank")
