"""``sega train / predict / evaluate`` end to end, as subprocesses."""

from __future__ import annotations

import json
import re
import zlib

import numpy as np
import pytest

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_real_png(path) -> None:
    """Signature, an IHDR chunk with a valid CRC and sane size, and an IEND chunk."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    length = int.from_bytes(data[8:12], "big")
    assert data[12:16] == b"IHDR" and length == 13
    ihdr = data[16 : 16 + length]
    crc = int.from_bytes(data[16 + length : 20 + length], "big")
    assert zlib.crc32(b"IHDR" + ihdr) == crc
    width, height = int.from_bytes(ihdr[:4], "big"), int.from_bytes(ihdr[4:8], "big")
    assert 100 <= width <= 5000 and 100 <= height <= 5000
    assert data[-8:-4] == b"IEND"


def test_main_job_default_digits(sega):
    """The README's command: `sega train` alone, under a minute, prints held-out accuracy."""
    result = sega("train")
    assert result.rc == 0, result
    match = re.search(r"^test accuracy: (\d\.\d+)$", result.out, re.MULTILINE)
    assert match, result.out
    assert float(match.group(1)) >= 0.95  # what the README promises
    assert "Total params" in result.out and "validation" in result.out and "digits" in result.out
    assert result.seconds < 60


def test_csv_round_trip_with_text_labels(sega, tmp_path, colors_csv, read_csv):
    result = sega("train", colors_csv, "--target", "color", "--epochs", "15", "--save", "colors.sega",
                  "--plot", "curves.png")
    assert result.rc == 0, result
    assert float(re.search(r"test accuracy: (\S+)", result.out).group(1)) > 0.9
    assert_real_png(tmp_path / "curves.png")

    rows = read_csv(colors_csv)
    # New data: columns in another order and no label column; predict finds them by name.
    new = tmp_path / "new.csv"
    new.write_text("c,a,b\n" + "\n".join(f"{r[2]},{r[0]},{r[1]}" for r in rows[1:21]) + "\n")
    result = sega("predict", "colors.sega", new)
    assert result.rc == 0, result
    lines = read_csv(result.out)
    assert lines[0] == ["prediction"]
    predicted = [row[0] for row in lines[1:]]
    truth = [r[3] for r in rows[1:21]]
    assert len(predicted) == 20 and set(predicted) <= {"red", "green", "blue"}
    assert np.mean([p == t for p, t in zip(predicted, truth)]) >= 0.9

    # The training file itself (label column present, ignored) to a file, with probabilities.
    result = sega("predict", "colors.sega", colors_csv, "-o", "out.csv", "--proba")
    assert result.rc == 0, result
    out = read_csv(tmp_path / "out.csv")
    assert out[0] == ["prediction", "proba_blue", "proba_green", "proba_red"]
    assert len(out) == 301
    np.testing.assert_allclose([sum(map(float, row[1:])) for row in out[1:]], 1.0, atol=1e-5)

    result = sega("evaluate", "colors.sega", colors_csv)
    assert result.rc == 0, result
    assert float(re.search(r"^accuracy:\s+(\S+)", result.out, re.MULTILINE).group(1)) > 0.9
    assert "f1:" in result.out


def test_regression_csv_auto_task_and_json(sega, tmp_path, houses_csv, read_csv):
    result = sega("train", houses_csv, "--epochs", "60", "--save", "houses.sega", "--early-stopping", "20")
    assert result.rc == 0, result
    assert "test r2:" in result.out and "test accuracy" not in result.out
    result = sega("predict", "houses.sega", houses_csv)
    assert result.rc == 0, result
    values = np.array([float(row[0]) for row in read_csv(result.out)[1:]])
    truth = np.array([float(row[3]) for row in read_csv(houses_csv)[1:]])
    assert values.shape == (200,) and np.corrcoef(values, truth)[0, 1] > 0.9  # in price units
    result = sega("evaluate", "houses.sega", houses_csv, "--json")
    assert result.rc == 0, result
    scores = json.loads(result.out)
    assert scores["samples"] == 200 and scores["r2"] > 0.8 and {"mse", "mae", "loss"} <= set(scores)


def test_npz_with_cnn_and_rnn_presets(sega, tmp_path, read_csv):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 120)
    X = rng.normal(size=(120, 16)) + y[:, None] * 1.5  # 16 features: 4x4 images or 4 steps x 4
    np.savez(tmp_path / "train.npz", X=X, y=y)
    np.savez(tmp_path / "new.npz", X=X[:7])
    result = sega("train", "train.npz", "--model", "cnn", "--filters", "4", "--layers", "8", "--epochs", "3",
                  "--save", "cnn.sega")
    assert result.rc == 0, result
    assert "Conv2D" in result.out and "Reshape" in result.out and "(N, 1, 4, 4)" in result.out
    result = sega("train", "train.npz", "--model", "rnn", "--sequence-shape", "8,2", "--epochs", "3",
                  "--save", "rnn.sega")
    assert result.rc == 0, result
    assert "RNN" in result.out and "(N, 8, 2)" in result.out
    for name in ("cnn.sega", "rnn.sega"):
        result = sega("predict", name, "new.npz")
        assert result.rc == 0, result
        rows = read_csv(result.out)
        assert rows[0] == ["prediction"] and len(rows) == 8 and {r[0] for r in rows[1:]} <= {"0", "1"}


def test_builtin_dataset_evaluate_scores_the_held_out_split(sega):
    assert sega("train", "iris", "--epochs", "5", "--save", "iris.sega", "-q").rc == 0
    result = sega("evaluate", "iris.sega", "iris")
    assert result.rc == 0, result
    assert "30 samples (held-out test split)" in result.out
    result = sega("evaluate", "iris.sega", "iris", "--all", "--json")
    assert json.loads(result.out)["samples"] == 150


@pytest.mark.parametrize("command", [[], ["train"], ["predict"], ["evaluate"]])
def test_help_everywhere_with_examples(sega, command):
    result = sega(*command, "--help")
    assert result.rc == 0, result
    assert "usage:" in result.out
    if command:
        assert "examples:" in result.out


@pytest.mark.parametrize(("preset", "layer"), [("lstm", "LSTM"), ("gru", "GRU")])
def test_lstm_and_gru_presets_learn_digits_as_sequences(sega, preset, layer):
    result = sega("train", "--model", preset, "--layers", "32", "--epochs", "15", "--save", f"{preset}.sega")
    assert result.rc == 0, result
    assert f"\n{layer} " in result.out and "(N, 8, 8)" in result.out
    assert float(result.out.split("test accuracy:")[1].split()[0]) > 0.85


def test_the_cnn_preset_pools_while_the_image_is_large(sega, tmp_path):
    import sega_core

    assert sega("train", "--model", "cnn", "--epochs", "1", "--save", "digits.sega", "-q").rc == 0
    kinds = [type(layer).__name__ for layer in sega_core.NeuralNetwork.load(tmp_path / "digits.sega").layers]
    # 8x8 digits: pooled once to 4x4, the second convolution left at 4x4.
    assert kinds[:6] == ["Normalization", "Reshape", "Conv2D", "MaxPool2D", "Conv2D", "Flatten"]
