"""Datasets for the command line: CSV and ``.npz`` files, and scikit-learn's built-in datasets.

Everything here turns files into a :class:`Table`: raw features (NaN where a cell is missing),
the target as the file holds it, column names, and where each row came from, so that every
problem is a one-line :class:`~sega_core.errors.InputError` naming the lines to fix. What a
model learns from the data (scaling, class labels) is the model's own business, not this
module's.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import InputError, SegaError
from .csvfile import is_number, read_csv, to_numbers

#: ``sega train NAME`` datasets, served by scikit-learn (an optional extra).
BUILTIN_DATASETS = {
    "digits": ("load_digits", "classify", "8x8 images of hand-written digits, 10 classes, 1797 samples"),
    "iris": ("load_iris", "classify", "iris flowers, 4 features, 3 classes, 150 samples"),
    "wine": ("load_wine", "classify", "wine cultivars, 13 features, 3 classes, 178 samples"),
    "breast_cancer": ("load_breast_cancer", "classify", "tumour diagnosis, 30 features, 2 classes, 569 samples"),
    "diabetes": ("load_diabetes", "regress", "disease progression, 10 features, regression, 442 samples"),
}

TASKS = ("auto", "classify", "regress")

#: An integer-valued numeric target with at most this many distinct values is taken as class
#: labels by ``--task auto``; more distinct values (or any fractional value) mean regression.
MAX_AUTO_CLASSES = 20

#: How many line numbers a message lists before it says how many more there are.
LINES_SHOWN = 5


@dataclass
class Table:
    """Features ``X`` (N, ...; NaN where a value is missing), target ``y`` (N,) or None, and
    where they came from.

    ``lines`` holds each row's line number in a CSV file (None for other sources) and
    ``y_cells`` the target's cells as written there, so labels can be matched as text.
    """

    X: np.ndarray
    y: np.ndarray | None
    feature_names: list[str]
    target_name: str | None
    source: str
    kind: str  # "csv", "npz" or "builtin"
    builtin: str | None = None
    lines: np.ndarray | None = None
    y_cells: np.ndarray | None = None

    def take(self, rows: np.ndarray) -> "Table":
        """The rows ``rows`` (indices) of this table."""
        pick = (lambda a: None if a is None else a[rows])
        return replace(self, X=self.X[rows], y=pick(self.y), lines=pick(self.lines), y_cells=pick(self.y_cells))

    def where(self, rows) -> str:
        """``"lines 3, 7"`` (CSV) or ``"rows 2, 6 (counting from 0)"`` for row indices ``rows``."""
        rows = np.asarray(rows)
        if self.lines is not None:
            return "line" + ("s " if len(rows) > 1 else " ") + _numbers(self.lines[rows])
        return "row" + ("s " if len(rows) > 1 else " ") + _numbers(rows) + " (counting from 0)"


def _numbers(values) -> str:
    values = [int(v) for v in values]
    text = ", ".join(map(str, values[:LINES_SHOWN]))
    return text + (f" and {len(values) - LINES_SHOWN} more" if len(values) > LINES_SHOWN else "")


def print_note(text: str) -> None:
    """Tell the user, on stderr, an assumption the command made."""
    print(f"sega: note: {text}", file=sys.stderr)


# ---- reading --------------------------------------------------------------------------------


def is_builtin(name: str) -> bool:
    """Whether ``name`` names a built-in dataset rather than a file."""
    return name in BUILTIN_DATASETS and not Path(name).exists()


def load_builtin(name: str) -> Table:
    """One of :data:`BUILTIN_DATASETS`, as float64 features and its target."""
    try:
        fast = _read_bundled(name)
    except Exception:  # a scikit-learn release that moved or changed its files: use its loader
        fast = None
    if fast is not None:
        X, y = fast
        return Table(X, y, _builtin_feature_names(name, X.shape[1]), "target", name, "builtin", builtin=name)
    try:
        from sklearn import datasets
    except ImportError:
        raise SegaError(
            f'the built-in dataset {name!r} comes from scikit-learn, which is not installed; '
            'install it with pip install "sega-core[sklearn]", or pass a CSV / .npz file'
        ) from None
    loader, _, _ = BUILTIN_DATASETS[name]
    bunch = getattr(datasets, loader)()
    X = np.asarray(bunch.data, dtype=np.float64)
    return Table(X, np.asarray(bunch.target), _builtin_feature_names(name, X.shape[1]), "target", name, "builtin", builtin=name)


def _read_bundled(name: str):
    """The dataset straight from the files scikit-learn ships, or None where they are absent.

    ``import sklearn`` alone takes seconds (it pulls in SciPy); reading its small bundled
    files does not, and that is most of the time of ``sega train digits``.
    ``tests/cli/test_data.py`` checks the result against scikit-learn's own loaders.
    """
    import importlib.util

    spec = importlib.util.find_spec("sklearn")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    if name == "digits":
        table = np.loadtxt(folder / "digits.csv.gz", delimiter=",")
        return table[:, :-1], table[:, -1].astype(np.int64)
    if name == "diabetes":
        X = np.loadtxt(folder / "diabetes_data_raw.csv.gz")
        y = np.loadtxt(folder / "diabetes_target.csv.gz")
        # load_diabetes(scaled=True): centred, unit variance, then divided by sqrt(n_samples).
        X = (X - X.mean(axis=0)) / X.std(axis=0) / np.sqrt(len(X))
        return X, y
    files = {"iris": "iris.csv", "wine": "wine_data.csv", "breast_cancer": "breast_cancer.csv"}
    # First line: n_samples, n_features, class names; then features and an integer class.
    with open(folder / files[name], encoding="utf-8") as fh:
        n_samples, n_features = (int(v) for v in fh.readline().split(",")[:2])
        table = np.loadtxt(fh, delimiter=",", ndmin=2)
    if table.shape != (n_samples, n_features + 1):
        return None
    return table[:, :-1], table[:, -1].astype(np.int64)


_CANCER_BASE = ("radius", "texture", "perimeter", "area", "smoothness", "compactness", "concavity",
                "concave points", "symmetry", "fractal dimension")

_FEATURE_NAMES = {
    "iris": ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"],
    "wine": ["alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols", "flavanoids",
             "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue", "od280/od315_of_diluted_wines",
             "proline"],
    "breast_cancer": [f"mean {b}" for b in _CANCER_BASE] + [f"{b} error" for b in _CANCER_BASE]
    + [f"worst {b}" for b in _CANCER_BASE],
    "diabetes": ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"],
    "digits": [f"pixel_{r}_{c}" for r in range(8) for c in range(8)],
}


def _builtin_feature_names(name: str, n: int) -> list[str]:
    """scikit-learn's column names (fixed here so both ways of loading agree)."""
    names = _FEATURE_NAMES.get(name, [])
    return list(names) if len(names) == n else [f"x{i}" for i in range(n)]


def load_data(
    source: str,
    target: str | None = None,
    need_target: bool = True,
    default_target: str | None = None,
    feature_names: list[str] | None = None,
    header: str = "auto",
    note: Callable[[str], None] | None = print_note,
) -> Table:
    """Read a built-in dataset name, a ``.csv`` file or a ``.npz`` file.

    CSV: ``target`` names the target column (default ``default_target``, else the last column);
    ``header`` is ``auto`` (a first row of numbers is data, columns then named ``x0 .. xN-1``;
    ``note`` is told so), ``yes`` or ``no``. ``feature_names`` (a trained model's columns) picks
    exactly those columns, in that order, and ignores any other. NPZ: arrays ``X`` and ``y``
    (``target`` names another key for y). With ``need_target=False`` the target is not read
    (prediction); with ``need_target=True`` a missing target value is an error naming its rows.
    Missing feature values are NaN in ``X``: whether they are an error is the caller's choice.
    """
    if is_builtin(source):
        return load_builtin(source)
    path = Path(source)
    if not path.exists():
        known = ", ".join(BUILTIN_DATASETS)
        raise InputError(f"data file {source!r} not found (and it is not a built-in dataset: {known})")
    if path.is_dir():
        raise InputError(f"{source!r} is a directory; pass a .csv or .npz file")
    if path.suffix.lower() == ".npz":
        return _load_npz(path, target, need_target)
    return _load_csv(path, target, need_target, default_target, feature_names, header, note)


def _load_npz(path: Path, target: str | None, need_target: bool) -> Table:
    key = target or "y"
    try:
        with np.load(path, allow_pickle=False) as data:
            keys = list(data.keys())
            if "X" not in keys:
                raise InputError(f"{str(path)!r} has no array named 'X' (it holds: {', '.join(keys) or 'nothing'})")
            X = np.asarray(data["X"])
            y = np.asarray(data[key]) if key in keys and need_target else None
    except InputError:
        raise
    except ValueError as exc:
        # allow_pickle=False refuses object arrays: a pickled file is not accepted on purpose.
        raise InputError(f"{str(path)!r} could not be read as .npz ({exc})") from None
    except Exception as exc:  # zipfile.BadZipFile, OSError, EOFError...
        raise InputError(f"{str(path)!r} is not a readable .npz file ({type(exc).__name__}: {exc})") from None
    if y is None and need_target:
        raise InputError(f"{str(path)!r} has no target array {key!r} (it holds: {', '.join(keys)})")
    if X.ndim < 2 or len(X) == 0:
        raise InputError(f"{str(path)!r}: X must hold one row per sample (shape (N, features) or (N, C, H, W)), got {X.shape}")
    if X.dtype.kind not in "biuf":
        raise InputError(f"{str(path)!r}: X must be numeric, got dtype {X.dtype}")
    if y is not None and len(y) != len(X):
        raise InputError(f"{str(path)!r}: X has {len(X)} samples but {key} has {len(y)}")
    X = X.astype(np.float64)
    names = [f"x{i}" for i in range(int(np.prod(X.shape[1:])))]
    table = Table(X, y, names, key if y is not None else None, str(path), "npz")
    infinite = np.isinf(X).reshape(len(X), -1).any(axis=1)
    if infinite.any():
        raise InputError(f"{str(path)!r}: X holds infinite values on {table.where(np.flatnonzero(infinite))}; features must be finite")
    if y is not None and y.dtype.kind == "f" and not np.isfinite(y).all():
        bad = np.flatnonzero(~np.isfinite(y))
        raise InputError(f"{str(path)!r}: the target {key!r} is NaN or infinite on {table.where(bad)}; remove those samples or fill them in")
    return table


def _load_csv(path: Path, target, need_target: bool, default_target, wanted_features, header: str, note) -> Table:
    csv = read_csv(path, header)
    name, header_names = str(path), csv.names
    columns = {column: j for j, column in enumerate(header_names)}
    wanted = target or default_target
    if wanted is not None and wanted not in columns:
        if target is not None or need_target:
            raise InputError(f"{name!r} has no column {wanted!r} (columns: {_short_list(header_names)}){_headerless(csv)}")
        wanted = None
    if wanted is None and need_target:
        if len(header_names) < 2:
            raise InputError(f"{name!r} has one column; it needs feature columns and a target column")
        wanted = header_names[-1]
    if not csv.has_header and note is not None:
        what = f"; {wanted} is the target" if need_target else ""
        note(f"{name!r} is read without a header row (its first row is data): its columns are named "
             f"x0..x{len(header_names) - 1}{what} (pass --header yes if the first row names the columns)")
    if wanted_features:
        missing = [n for n in wanted_features if n not in columns]
        if missing:
            raise InputError(
                f"{name!r} lacks the feature column(s) {_short_list(missing)} that the model was trained on{_headerless(csv)}"
            )
        feature_names = list(wanted_features)
    else:
        feature_names = [h for h in header_names if h != wanted]
    if not feature_names:
        raise InputError(f"{name!r} has no feature columns besides the target {wanted!r}")
    table = Table(np.empty((len(csv.cells), len(feature_names))), None, feature_names, wanted if need_target else None,
                  name, "csv", lines=csv.lines)
    for j, column in enumerate(feature_names):
        table.X[:, j] = _feature_column(csv.cells[:, columns[column]], column, table)
    if need_target:
        table.y_cells = csv.cells[:, columns[wanted]]
        table.y = _target_column(table.y_cells, wanted, table)
    return table


def _headerless(csv) -> str:
    return "" if csv.has_header else f" (it was read without a header row: columns x0..x{len(csv.names) - 1})"


def _feature_column(cells: np.ndarray, name: str, table: Table) -> np.ndarray:
    """A feature column as float64, NaN where a cell is missing; text or infinities are errors."""
    values, _, text = to_numbers(cells)
    if text.any():
        row = int(np.flatnonzero(text)[0])
        raise InputError(
            f"{table.source!r}: feature column {name!r} holds {str(cells[row])!r} on {table.where([row])}; feature columns "
            "must be numeric (encode categories as numbers, or choose it as --target)"
        )
    infinite = np.isinf(values)
    if infinite.any():
        rows = np.flatnonzero(infinite)
        raise InputError(f"{table.source!r}: feature column {name!r} holds {str(cells[rows[0]])!r} on {table.where(rows)}; "
                         "features must be finite numbers")
    return values


def _target_column(cells: np.ndarray, name: str, table: Table) -> np.ndarray:
    """Numbers when every cell is a finite number, else the cells as text; missing cells are an error."""
    values, missing, text = to_numbers(cells)
    if missing.any():
        raise InputError(
            f"{table.source!r}: the target column {name!r} has no value on {table.where(np.flatnonzero(missing))}; "
            "remove those rows or fill them in"
        )
    if text.any():
        return cells.astype(str)
    if not np.isfinite(values).all():
        rows = np.flatnonzero(~np.isfinite(values))
        raise InputError(f"{table.source!r}: the target column {name!r} holds {str(cells[rows[0]])!r} on {table.where(rows)}; "
                         "a target must be finite")
    return values


def _short_list(items, limit: int = 12) -> str:
    items = list(items)
    text = ", ".join(items[:limit])
    return text + (f", ... ({len(items)} in all)" if len(items) > limit else "")


# ---- the task and the labels ---------------------------------------------------------------


def infer_task(y: np.ndarray, requested: str = "auto", builtin: str | None = None, name: str | None = None) -> str:
    """``classify`` or ``regress`` for target ``y`` (column ``name``); ``requested`` overrides ``auto``.

    ``auto`` refuses a text column whose cells are mostly numbers: that is a numeric target
    with a few stray cells (``n.a.``, ``-``...), and taking each value as a class would train
    a useless classifier.
    """
    if requested not in TASKS:
        raise InputError(f"--task must be one of {', '.join(TASKS)}, got {requested!r}")
    numeric = y.dtype.kind in "biuf"
    if requested == "regress":
        if not numeric:
            example = next(v for v in y if not is_number(v))
            raise InputError(f"--task regress needs a numeric target, but it holds text such as {str(example)!r}")
        return "regress"
    if requested == "classify":
        return "classify"
    if builtin is not None:
        return BUILTIN_DATASETS[builtin][1]
    if not numeric:
        numbers = np.frompyfunc(is_number, 1, 1)(y).astype(bool)
        if numbers.mean() >= 0.5:
            example = str(y[np.flatnonzero(~numbers)[0]])
            raise InputError(
                f"the target{'' if name is None else f' column {name!r}'} holds numbers and some text such as "
                f"{example!r}; fix those cells (or mark them NA), "
                "or pass --task classify to take every value as a class label"
            )
        return "classify"
    integral = bool(np.all(y == np.round(y)))
    return "classify" if integral and len(np.unique(y)) <= MAX_AUTO_CLASSES else "regress"


def training_targets(y: np.ndarray, task: str) -> np.ndarray:
    """``y`` as the model should learn it: float values (regress), or class labels that print
    as the file wrote them (classify: whole numbers as ints, other numbers as text)."""
    y = label_array(y)
    if task == "regress":
        return y.astype(np.float64)
    if y.dtype.kind == "f":
        return y.astype(np.int64) if np.all(y == np.round(y)) else y.astype(str)
    return y


def label_array(y) -> np.ndarray:
    """``y`` as a 1-D array of labels (one per sample)."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise InputError(f"the target must be one label per sample, got shape {arr.shape}")
    return arr


# ---- splitting ------------------------------------------------------------------------------


def train_test_indices(n: int, test_size: float, seed: int, stratify: np.ndarray | None = None,
                       option: str = "--test-size"):
    """Shuffled train and test indices; per class when ``stratify`` labels are given.

    Every class keeps at least one sample in the training part: a class the model never saw
    cannot be learnt or scored. ``option`` names the fraction in messages.
    """
    if not 0 <= test_size < 1:
        raise InputError(f"{option} must be in [0, 1), got {test_size}")
    rng = np.random.default_rng(seed)
    if test_size == 0:
        return rng.permutation(n), np.array([], dtype=np.int64)
    if stratify is None:
        perm = rng.permutation(n)
        n_test = max(1, int(round(n * test_size)))
        if n_test >= n:
            raise InputError(f"{option} {test_size} leaves no training samples out of {n}")
        return np.sort(perm[n_test:]), np.sort(perm[:n_test])
    train, test = [], []
    for cls in np.unique(stratify):
        idx = rng.permutation(np.flatnonzero(stratify == cls))
        k = min(int(round(len(idx) * test_size)), len(idx) - 1)
        test.append(idx[:k])
        train.append(idx[k:])
    train, test = np.sort(np.concatenate(train)), np.sort(np.concatenate(test))
    if len(test) == 0:
        raise InputError(f"{option} {test_size} leaves no samples to hold out of {n} ({len(np.unique(stratify))} classes); "
                         "give a larger fraction, or 0 for none")
    return train, test
