"""The table ``sega train`` ends with, and its per-epoch log when stderr is not a terminal."""

from __future__ import annotations

import json
import re

import pytest


def table_rows(out: str) -> dict[str, dict[str, float]]:
    """``{part: {column: value}}`` from the score table in ``sega train``'s output."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"^\s+(loss|mse)\s", line))
    columns = lines[start].split()
    rows = {}
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        name, *values = line.split()
        rows[name] = dict(zip(columns, map(float, values)))
    return rows


def epoch_log(err: str, key: str) -> list[float]:
    """``key``'s value on each ``epoch i/n`` line of stderr."""
    lines = [line for line in err.splitlines() if line.startswith("epoch ")]
    return [float(re.search(rf"\b{key}=(\S+)", line).group(1)) for line in lines]


def test_after_early_stopping_the_table_reports_the_restored_epoch(sega):
    result = sega("train", "breast_cancer", "--early-stopping", "3", "--epochs", "300", "--lr", "0.01", "--progress")
    assert result.rc == 0, result
    val_losses = epoch_log(result.err, "val_loss")
    best = int(re.search(r"stopped early \(best epoch (\d+)\)", result.out).group(1))
    assert val_losses[best - 1] == min(val_losses) and val_losses[-1] > 1.2 * min(val_losses)  # a telling run
    reported = table_rows(result.out)["validation"]["loss"]
    assert reported == pytest.approx(val_losses[best - 1], rel=0.01)  # the log shows 3 digits


def test_a_regression_table_is_in_the_targets_units_throughout(sega):
    result = sega("train", "diabetes", "--save", "d.sega")
    assert result.rc == 0, result
    rows = table_rows(result.out)
    assert set(rows) == {"train", "validation", "test"} and set(rows["test"]) == {"mse", "mae", "r2"}
    result = sega("evaluate", "d.sega", "diabetes", "--json")  # the same held-out split
    assert result.rc == 0, result
    scores = json.loads(result.out)
    for column in ("mse", "mae", "r2"):
        assert rows["test"][column] == pytest.approx(scores[column], abs=1e-4, rel=1e-5)
    assert rows["test"]["mse"] > rows["test"]["mae"] > 10  # disease progression units, not standardised ones


def test_progress_off_a_terminal_is_one_line_per_epoch(sega):
    result = sega("train", "iris", "--epochs", "4", "--progress", "-q")
    assert result.rc == 0, result
    lines = result.err.splitlines()
    assert [line.split()[1] for line in lines] == ["1/4", "2/4", "3/4", "4/4"] and "\r" not in result.err
    assert all("val_loss=" in line and len(line) <= 80 for line in lines)
    for quiet in (["--no-progress"], []):
        result = sega("train", "iris", "--epochs", "4", "-q", *quiet)
        assert result.rc == 0 and result.err == "", result
