"""In-process checks of the CLI's data layer (sega_core/cli/data.py)."""

from __future__ import annotations

import numpy as np
import pytest

from sega_core.cli import data as D
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


def test_preprocessing_round_trip_and_labels_read_as_numbers_or_text():
    table = D.Table(np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 10.0]]), np.array([2.0, 1.0, 2.0]), ["p", "q"],
                    "label", "t.csv", "csv")
    pre = D.Preprocessing.fit(table, "classify", standardize=True)
    assert pre.classes == [1, 2]
    X = pre.features(table.X)
    np.testing.assert_allclose(X[:, 0], [-1.2247449, 0.0, 1.2247449], rtol=1e-6)
    assert np.all(X[:, 1] == 0)  # a constant column is centred, not divided by zero
    # The same labels as text (a file whose column also holds words) map to the same classes.
    np.testing.assert_array_equal(pre.encode_target(np.array(["1", "2"], dtype=object)), [0, 1])
    assert pre.decode(np.array([1, 0])).tolist() == [2, 1]
    restored = D.Preprocessing(**{k: v for k, v in pre.to_config().items() if k != "version"})
    assert restored == pre
