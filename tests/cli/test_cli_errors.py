"""Command-line errors: one readable line, exit code 2, a traceback only with --debug."""

from __future__ import annotations

import json

import numpy as np
import pytest


@pytest.fixture
def colors_model(sega, colors_csv):
    """A classifier saved by `sega train` (module tests share nothing: it is quick)."""
    result = sega("train", colors_csv, "--epochs", "2", "--save", "colors.sega", "-q")
    assert result.rc == 0, result
    return colors_csv.parent / "colors.sega"


def test_data_file_not_found(sega, assert_error):
    assert_error(sega("train", "nope.csv"), "'nope.csv' not found")


def test_target_column_missing(sega, assert_error, colors_csv):
    assert_error(sega("train", colors_csv, "--target", "colour"), "no column 'colour'", "color")


def test_text_in_a_feature_column(sega, assert_error, colors_csv):
    assert_error(sega("train", colors_csv, "--target", "a"), "feature column 'color'", "line 2")


def test_model_file_not_found(sega, assert_error, colors_csv):
    assert_error(sega("predict", "missing.sega", colors_csv), "model file 'missing.sega' not found")


def test_model_file_corrupt(sega, assert_error, tmp_path, colors_csv):
    (tmp_path / "bad.sega").write_bytes(np.random.default_rng(0).bytes(600))
    assert_error(sega("predict", "bad.sega", colors_csv), "'bad.sega' is not a sega model file or is corrupt")
    (tmp_path / "empty.sega").write_bytes(b"")
    assert_error(sega("evaluate", "empty.sega", colors_csv), "empty.sega")


def test_model_file_from_an_incompatible_version(sega, assert_error, tmp_path, colors_model, colors_csv):
    with np.load(colors_model) as data:
        config, params = json.loads(bytes(data["config"]).decode()), data["params"]
    config["format_version"], config["sega_version"] = 99, "9.0.0"
    with open(tmp_path / "future.sega", "wb") as fh:
        np.savez(fh, config=np.frombuffer(json.dumps(config).encode(), dtype=np.uint8), params=params)
    assert_error(sega("predict", "future.sega", colors_csv), "model format version 99", "9.0.0")


def test_predict_data_lacks_feature_columns(sega, assert_error, tmp_path, colors_model):
    (tmp_path / "other.csv").write_text("a,b,z\n1,2,3\n")
    assert_error(sega("predict", colors_model, "other.csv"), "lacks the feature column(s) c")


def test_evaluate_needs_the_target(sega, assert_error, tmp_path, colors_model):
    (tmp_path / "unlabelled.csv").write_text("a,b,c\n1,2,3\n")
    assert_error(sega("evaluate", colors_model, "unlabelled.csv"), "no column 'color'")


def test_evaluate_label_never_seen_in_training(sega, assert_error, tmp_path, colors_model):
    (tmp_path / "purple.csv").write_text("a,b,c,color\n1,2,3,purple\n")
    assert_error(sega("evaluate", colors_model, "purple.csv"), "'purple'", "never saw")


def test_bad_option_values(sega, assert_error, colors_csv):
    assert_error(sega("train", colors_csv, "--layers", "64,x"), "--layers")
    assert_error(sega("train", colors_csv, "--backend", "no-such-backend"), "no-such-backend")
    assert_error(sega("train", colors_csv, "--model", "cnn"), "--image-shape")
    assert_error(sega("train", colors_csv, "--task", "regress"), "numeric target")


def test_argparse_usage_error_exits_2(sega):
    result = sega("train", "--epochs", "many")
    assert result.rc == 2 and "invalid int value" in result.err and "Traceback" not in result.err


def test_debug_shows_the_traceback(sega):
    result = sega("--debug", "train", "nope.csv")
    assert result.rc != 0
    assert "Traceback" in result.err and "not found" in result.err
