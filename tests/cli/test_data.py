"""In-process checks of the CLI's data layer (sega_core/cli/data.py)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from sega_core.cli import data as D
from sega_core.cli.csvfile import read_csv, to_numbers
from sega_core.errors import InputError


@pytest.mark.parametrize("name", list(D.BUILTIN_DATASETS))
def test_bundled_files_match_sklearn_loaders(name):
    """The fast path (reading scikit-learn's files without importing it) gives its loaders' data."""
    datasets = pytest.importorskip("sklearn.datasets")
    bunch = getattr(datasets, D.BUILTIN_DATASETS[name][0])()
    table = D.load_builtin(name)
    np.testing.assert_allclose(table.X, bunch.data)
    np.testing.assert_array_equal(table.y, bunch.target)
    assert table.feature_names == [str(n) for n in bunch.feature_names]


@pytest.mark.parametrize(
    ("y", "requested", "expected"),
    [
        (np.array(["a", "b", "a"], dtype=object), "auto", "classify"),
        (np.array([0.0, 1.0, 2.0, 1.0]), "auto", "classify"),
        (np.array([0.5, 1.25, 2.0]), "auto", "regress"),
        (np.arange(100.0), "auto", "regress"),  # many distinct integers: a quantity, not classes
        (np.arange(100.0), "classify", "classify"),
        (np.array([0.0, 1.0]), "regress", "regress"),
    ],
)
def test_infer_task(y, requested, expected):
    assert D.infer_task(y, requested) == expected


def test_regress_on_text_is_refused():
    with pytest.raises(InputError, match="numeric target"):
        D.infer_task(np.array(["x", "y"], dtype=object), "regress")


def test_stratified_split_keeps_class_shares():
    y = np.repeat([0, 1, 2], [50, 30, 20])
    train, test = D.train_test_indices(100, 0.2, 0, stratify=y)
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == 100
    assert np.bincount(y[test]).tolist() == [10, 6, 4]
    again = D.train_test_indices(100, 0.2, 0, stratify=y)
    assert np.array_equal(again[1], test)  # the same seed gives the same split (evaluate relies on it)


def test_csv_cells_come_from_numpys_reader_with_quotes_and_line_numbers(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text('name,x,label\n"Smith, J",1.5,"a ""b"""\nLee,NA,c\n\n\n')
    table = read_csv(path)
    assert table.has_header and table.names == ["name", "x", "label"]
    assert table.cells.tolist() == [["Smith, J", "1.5", 'a "b"'], ["Lee", "NA", "c"]]
    assert table.lines.tolist() == [2, 3]  # trailing blank lines are not rows


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a,b\n1,2\n\n3,4\n", "line 3 is blank"),
        ("a,b\n1,2\n3\n", "line 3 has 1 fields but line 1 has 2"),
        ("a,a\n1,2\n", "'a' twice"),
        ("a,b\n", "no data rows"),
        ("", "is empty"),
    ],
)
def test_csv_problems_name_the_line(tmp_path, text, fragment):
    (tmp_path / "bad.csv").write_text(text)
    with pytest.raises(InputError, match=re.escape(fragment)):
        read_csv(tmp_path / "bad.csv")


@pytest.mark.parametrize(
    ("first", "header"),
    [("1,2.5,-3", False), ("1,,3", False), ("1,NA,3", False), ("a,2,3", True), ("NA,,?", True),
     ("1,2,cat", True)],  # text over a column of numbers: a name
)
def test_a_first_row_of_numbers_is_data(tmp_path, first, header):
    (tmp_path / "h.csv").write_text(first + "\n4,5,6\n")
    table = read_csv(tmp_path / "h.csv")
    assert table.has_header is header
    if not header:
        assert table.names == ["x0", "x1", "x2"] and len(table.cells) == 2
    assert read_csv(tmp_path / "h.csv", header="yes").has_header and not read_csv(tmp_path / "h.csv", header="no").has_header


def test_missing_cells_are_told_apart_from_text():
    values, missing, text = to_numbers(np.array(["1", "", "NA", "nan", "NaN", "?", "n/a", "x", "2e3", "None"]))
    assert missing.tolist() == [False, True, True, True, True, True, True, False, False, False]
    assert text.tolist() == [False] * 7 + [True, False, True]
    assert values[0] == 1 and values[8] == 2000 and np.isnan(values[1:8]).all()


def test_stratified_split_keeps_a_sample_of_every_class_for_training():
    y = np.array([0, 0, 1, 1, 1, 1, 1, 1, 1, 1])
    train, test = D.train_test_indices(10, 0.9, 0, stratify=y)
    assert set(y[train]) == {0, 1}
