"""A CSV file as a grid of text cells, read with NumPy's reader, and its cells as numbers.

:func:`read_csv` splits the file into stripped text cells with ``np.loadtxt`` (quoting
included), decides whether the first row is a header, and keeps each row's line number so
that every later complaint can name the lines to fix. :func:`to_numbers` converts one column,
telling missing cells (``NA``, ``nan``, ``?``, empty...) apart from text.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

#: Cells that mean "no value", compared case-insensitively after stripping spaces: what
#: pandas reads as missing by default, and UCI's "?". ("None" is left out: it is often a
#: category, e.g. a symptom's severity.)
MISSING_TOKENS = ("", "na", "n/a", "nan", "-nan", "null", "?", "#n/a", "#na", "<na>")

#: ``--header`` choices: ``auto`` takes a first row of numbers as data, any other as a header.
HEADER_MODES = ("auto", "yes", "no")


@dataclass
class CsvFile:
    """The stripped text ``cells`` (rows, columns) of a CSV file, its column ``names`` and the
    file ``lines`` each row came from."""

    path: str
    names: list[str]
    cells: np.ndarray
    lines: np.ndarray
    has_header: bool


def read_csv(path: Path, header: str = "auto") -> CsvFile:
    """Read ``path`` as comma-separated UTF-8 text.

    ``header``: ``yes`` (the first row names the columns), ``no`` (columns are named
    ``x0 .. xN-1``) or ``auto``: a header when the first row has text over a column of numbers
    (see :func:`_names_columns`), else data. Blank lines at the end are ignored; a blank line anywhere else is an error, since
    it would otherwise be a row that silently vanishes.
    """
    name = str(path)
    if header not in HEADER_MODES:
        raise InputError(f"--header must be one of {', '.join(HEADER_MODES)}, got {header!r}")
    try:
        # newline=None: \r\n and \r end lines too, so line numbers match what an editor shows.
        with open(path, encoding="utf-8-sig", newline=None) as fh:
            lines = fh.read().split("\n")
    except UnicodeDecodeError:
        raise InputError(f"{name!r} is not a UTF-8 text CSV file") from None
    except OSError as exc:
        raise InputError(f"{name!r} could not be read ({exc.strerror or exc})") from None
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise InputError(f"{name!r} is empty; it needs rows of comma-separated values")
    blank = next((i for i, line in enumerate(lines) if not line.strip()), None)
    if blank is not None:
        raise InputError(
            f"{name!r} line {blank + 1} is blank; delete it, or write NA in each cell of a row whose values are missing"
        )
    cells = _split(lines, name)
    has_header = header == "yes" or (header == "auto" and _names_columns(cells))
    numbers = np.arange(1, len(cells) + 1)
    if has_header:
        names = cells[0].tolist()
        cells, numbers = cells[1:], numbers[1:]
        if len(set(names)) != len(names):
            duplicate = next(n for n in names if names.count(n) > 1)
            raise InputError(f"{name!r} has the column name {duplicate!r} twice in its header")
    else:
        names = [f"x{i}" for i in range(cells.shape[1])]
    if len(cells) == 0:
        raise InputError(f"{name!r} has a header row but no data rows")
    return CsvFile(name, names, cells, numbers, has_header)


def _split(lines: list[str], name: str) -> np.ndarray:
    """The lines' cells, stripped, as a 2-D array of str."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NumPy's notes about row counting do not concern us
            cells = np.loadtxt(lines, delimiter=",", quotechar='"', dtype=str, comments=None, ndmin=2)
    except ValueError as exc:
        # NumPy counts rows from 1 over the lines it was given, which are the file's lines here.
        found = re.search(r"changed from (\d+) to (\d+) at row (\d+)", str(exc))
        if found:
            first, now, row = found.groups()
            raise InputError(f"{name!r} line {row} has {now} fields but line 1 has {first}") from None
        raise InputError(f"{name!r} could not be read as CSV ({exc})") from None
    return np.char.strip(cells)


def is_missing(cells: np.ndarray) -> np.ndarray:
    """Which (stripped) cells stand for a missing value (see :data:`MISSING_TOKENS`)."""
    return np.isin(np.char.lower(cells), MISSING_TOKENS)


def to_numbers(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(values, missing, text)`` of a column: float64 values (NaN where missing or text), and
    masks of the missing cells and of the cells that are neither numbers nor missing."""
    missing = is_missing(cells)
    values = np.full(cells.shape, np.nan)
    present = ~missing
    try:
        values[present] = cells[present].astype(np.float64)
        return values, missing, np.zeros(cells.shape, dtype=bool)
    except ValueError:
        pass
    # Some cell is text: find which, one by one (only on this slower path).
    number = np.frompyfunc(is_number, 1, 1)(cells).astype(bool) & present
    values[number] = cells[number].astype(np.float64)
    return values, missing, present & ~number


def is_number(cell) -> bool:
    """Whether ``cell`` (text or a number) reads as a number, as NumPy reads it."""
    try:
        np.float64(cell)
    except (TypeError, ValueError):
        return False
    return True


def _all_numbers(row: np.ndarray) -> bool:
    """A row of numbers and missing cells, at least one number: data, not column names."""
    _, missing, text = to_numbers(row)
    return not text.any() and not missing.all()


def _names_columns(cells: np.ndarray) -> bool:
    """Whether the first row is a header: it has text where a column below holds only numbers
    (a column name over numeric data). A first row of numbers in every numeric column is data,
    text in a text column (a class label) included; in a file of text columns only, a first
    row that is not all numbers is taken for names, and so is a row of missing cells only."""
    first, rest = cells[0], cells[1:]
    _, first_missing, first_text = to_numbers(first)
    if first_missing.all():
        return True  # no value at all: not a sample
    numeric = [j for j in range(cells.shape[1]) if len(rest) and not to_numbers(rest[:, j])[2].any()]
    if numeric:
        return bool(first_text[numeric].any())
    return not _all_numbers(first)
