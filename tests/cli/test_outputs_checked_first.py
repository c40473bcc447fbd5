"""Every output path and optional dependency is checked before training, never after it."""

from __future__ import annotations

import os

import pytest


def assert_failed_before_training(result, assert_error, *fragments):
    """A one-line error holding ``fragments``, and no sign that training started."""
    assert_error(result, *fragments)
    assert "training the" not in result.out and "Total params" not in result.out, result


@pytest.mark.parametrize(
    ("option", "path", "fragments"),
    [
        ("--save", "nodir/m.sega", ("nodir", "does not exist")),
        ("--save", "folder", ("'folder'", "is a folder")),
        ("--plot", "nodir/curves.png", ("nodir", "does not exist")),
        ("--plot", "folder", ("'folder'", "is a folder")),
    ],
)
def test_unwritable_outputs_fail_before_training(sega, assert_error, tmp_path, option, path, fragments):
    (tmp_path / "folder").mkdir()
    result = sega("train", "iris", "--epochs", "3", option, path)
    assert_failed_before_training(result, assert_error, *fragments)
    assert not list(tmp_path.glob("nodir*"))


def test_plot_without_matplotlib_fails_before_training(sega, assert_error, tmp_path):
    shim = tmp_path / "shim" / "matplotlib"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('No module named matplotlib')\n")
    path = os.pathsep.join(p for p in (str(shim.parent), os.environ.get("PYTHONPATH")) if p)
    result = sega("train", "iris", "--epochs", "3", "--plot", "curves.png", env_extra={"PYTHONPATH": path})
    assert_failed_before_training(result, assert_error, "--plot needs matplotlib", "sega-core[plot]")


def test_save_and_plot_on_one_file_fail_before_training(sega, assert_error):
    result = sega("train", "iris", "--epochs", "3", "--save", "out.png", "--plot", "out.png")
    assert_failed_before_training(result, assert_error, "--save and --plot")


def test_predict_checks_its_output_before_reading_the_model(sega, assert_error, colors_csv):
    # The model file does not exist either: the output folder is what is reported, first.
    assert_error(sega("predict", "missing.sega", colors_csv, "-o", "nodir/out.csv"), "nodir", "does not exist")
