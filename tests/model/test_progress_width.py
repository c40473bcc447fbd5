"""The progress readout fits an 80-column terminal, bar or line, at four-digit epoch counts with
validation metrics and a regressor's large losses."""

from __future__ import annotations

import numpy as np
import pytest

from sega_core import NeuralNetwork
from sega_core.nn.callbacks import ProgressLogger

WORST = {
    "classifier": {"loss": 0.6931, "accuracy": 0.9531, "lr": 1e-3, "val_loss": 0.6932, "val_accuracy": 0.9512},
    "regressor": {"loss": 12345.678, "mae": 1234.5, "lr": 1e-3, "val_loss": 123456.7, "val_mae": 1234.56},
    "tiny": {"loss": 1.234e-7, "mae": 5.6e-5, "lr": 1e-3, "val_loss": 2.5e-12, "val_mae": 1e-300},
}


def _frames(capsys, bar: bool, logs: dict) -> list[str]:
    logger = ProgressLogger(bar=bar)
    logger.set_params({"epochs": 1000, "steps": 10, "metrics": list(logs)})
    logger.on_train_begin()
    for epoch in range(1000):
        logger.on_epoch_end(epoch, dict(logs))
    logger.on_train_end()
    text = capsys.readouterr().err
    return [frame for frame in text.replace("\n", "\r").split("\r") if frame.strip()]


@pytest.mark.parametrize("bar", [True, False], ids=["bar", "lines"])
@pytest.mark.parametrize("task", sorted(WORST))
def test_the_readout_fits_80_columns(capsys, bar, task):
    if bar:
        pytest.importorskip("tqdm")
    frames = _frames(capsys, bar, WORST[task])
    assert frames and max(len(frame) for frame in frames) <= 80, max(frames, key=len)
    last = frames[-1]
    assert "1000/1000" in last and "val_loss=" in last and "lr=" not in last


def test_the_readout_keeps_three_significant_digits(capsys):
    last = _frames(capsys, False, WORST["regressor"])[-1]
    assert "loss=1.23e4" in last and "val_loss=1.23e5" in last and "mae=1.23e3" in last
    assert "loss=1.23e-7" in _frames(capsys, False, WORST["tiny"])[-1]


def test_a_training_bar_shows_the_epoch_count_and_metrics(capsys):
    pytest.importorskip("tqdm")
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), rng.integers(0, 2, 40)
    NeuralNetwork([3, 2], seed=0).train(X, y, epochs=3, callbacks=[ProgressLogger(bar=True)], verbose=0,
                                        validation_split=0.25)
    last = [f for f in capsys.readouterr().err.replace("\n", "\r").split("\r") if f.strip()][-1]
    assert last.startswith("3/3 ") and "acc=" in last and "val_acc=" in last
