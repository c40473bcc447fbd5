"""Drive the ``sega`` command line as a subprocess, as a user would."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SEGA = [sys.executable, "-m", "sega_core.cli"]


class Result:
    """A finished ``sega`` run: exit code, stdout, stderr and wall time."""

    def __init__(self, proc: subprocess.CompletedProcess, seconds: float) -> None:
        self.rc, self.out, self.err, self.seconds = proc.returncode, proc.stdout, proc.stderr, seconds

    def __repr__(self) -> str:
        return f"Result(rc={self.rc}, out={self.out[-2000:]!r}, err={self.err[-2000:]!r})"


@pytest.fixture
def sega(tmp_path):
    """``sega(*args)`` runs the CLI in ``tmp_path`` and returns a :class:`Result`; ``env_extra``
    adds environment variables."""
    import time

    env = dict(os.environ, COLUMNS="100")

    def run(*args, cwd: Path | None = None, timeout: float = 120, env_extra: dict | None = None) -> Result:
        started = time.perf_counter()
        proc = subprocess.run(
            [*SEGA, *map(str, args)], cwd=cwd or tmp_path, capture_output=True, text=True, timeout=timeout,
            env=dict(env, **(env_extra or {})),
        )
        return Result(proc, time.perf_counter() - started)

    return run


def write_csv(path: Path, header, rows) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def colors_csv(tmp_path) -> Path:
    """300 rows, 3 numeric features, a text label column ``color`` (three separable blobs)."""
    rng = np.random.default_rng(0)
    centers = {"red": (0.0, 0.0, 0.0), "green": (3.0, 3.0, 0.0), "blue": (0.0, 3.0, 3.0)}
    rows = []
    for i in range(300):
        name = list(centers)[i % 3]
        rows.append([*np.round(rng.normal(centers[name], 0.6), 4), name])
    return write_csv(tmp_path / "colors.csv", ["a", "b", "c", "color"], rows)


@pytest.fixture
def houses_csv(tmp_path) -> Path:
    """200 rows, 3 features and a continuous target ``price`` (last column)."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3))
    y = 300.0 + 40.0 * X[:, 0] - 25.0 * X[:, 1] + 10 * X[:, 2] ** 2 + rng.normal(0, 2, 200)
    rows = [[*np.round(x, 4), round(float(t), 3)] for x, t in zip(X, y)]
    return write_csv(tmp_path / "houses.csv", ["rooms", "age", "distance", "price"], rows)


def _read_csv(path_or_text) -> list[list[str]]:
    text = Path(path_or_text).read_text() if isinstance(path_or_text, Path) else path_or_text
    return list(csv.reader(text.splitlines()))


@pytest.fixture
def read_csv():
    """``read_csv(path or text)`` -> list of rows."""
    return _read_csv


def _assert_one_line_error(result: Result, *fragments: str) -> None:
    """Exit code 2, one ``sega: error:`` line on stderr holding ``fragments``, no traceback."""
    assert result.rc == 2, result
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, result
    assert lines[0].startswith("sega: error: "), result
    assert "Traceback" not in result.err
    for fragment in fragments:
        assert fragment in lines[0], result


@pytest.fixture
def assert_error():
    """``assert_error(result, *fragments)``: a one-line error with exit code 2."""
    return _assert_one_line_error
