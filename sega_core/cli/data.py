"""Datasets for the command line: CSV and ``.npz`` files, and scikit-learn's built-in datasets.

Everything here turns files into a :class:`Table` (features, optional target, column names) and
keeps the preprocessing that ``sega train`` learns (feature scaling, label mapping, target
scaling, sample reshaping) in a JSON-able :class:`Preprocessing` stored in the model file's
``extra_config``, so ``sega predict`` and ``sega evaluate`` apply exactly the same steps to raw
data. Every problem is a :class:`~sega_core.errors.InputError` with a one-line message.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError, ModelFileError, SegaError

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

#: Version of the ``extra_config["cli"]`` section written by ``sega train``.
CLI_META_VERSION = 1


@dataclass
class Table:
    """Features ``X`` (N, ...), target ``y`` (N,) or None, and where they came from."""

    X: np.ndarray
    y: np.ndarray | None
    feature_names: list[str]
    target_name: str | None
    source: str
    kind: str  # "csv", "npz" or "builtin"
    builtin: str | None = None


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
) -> Table:
    """Read a built-in dataset name, a ``.csv`` file or a ``.npz`` file.

    CSV: a header row; ``target`` names the target column (default ``default_target``, else the
    last column). With ``need_target=False`` a missing target column is fine (prediction).
    ``feature_names`` (a trained model's columns) picks exactly those columns, in that order,
    and ignores any other. NPZ: arrays ``X`` and ``y`` (``target`` names another key for y).
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
    return _load_csv(path, target, need_target, default_target, feature_names)


def _load_npz(path: Path, target: str | None, need_target: bool) -> Table:
    key = target or "y"
    try:
        with np.load(path, allow_pickle=False) as data:
            keys = list(data.keys())
            if "X" not in keys:
                raise InputError(f"{str(path)!r} has no array named 'X' (it holds: {', '.join(keys) or 'nothing'})")
            X = np.asarray(data["X"])
            y = np.asarray(data[key]) if key in keys else None
    except InputError:
        raise
    except ValueError as exc:
        # allow_pickle=False refuses object arrays: a pickled file is not accepted on purpose.
        raise InputError(f"{str(path)!r} could not be read as .npz ({exc})") from None
    except Exception as exc:  # zipfile.BadZipFile, OSError, EOFError...
        raise InputError(f"{str(path)!r} is not a readable .npz file ({type(exc).__name__}: {exc})") from None
    if y is None and (need_target or target is not None):
        raise InputError(f"{str(path)!r} has no target array {key!r} (it holds: {', '.join(keys)})")
    if X.ndim < 2 or len(X) == 0:
        raise InputError(f"{str(path)!r}: X must hold one row per sample (shape (N, features) or (N, C, H, W)), got {X.shape}")
    if X.dtype.kind not in "biuf":
        raise InputError(f"{str(path)!r}: X must be numeric, got dtype {X.dtype}")
    if y is not None and len(y) != len(X):
        raise InputError(f"{str(path)!r}: X has {len(X)} samples but {key} has {len(y)}")
    names = [f"x{i}" for i in range(int(np.prod(X.shape[1:])))]
    return Table(X.astype(np.float64), y, names, key if y is not None else None, str(path), "npz")


def _load_csv(path: Path, target, need_target: bool, default_target, wanted_features) -> Table:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = [row for row in csv.reader(fh) if row and any(cell.strip() for cell in row)]
    except UnicodeDecodeError:
        raise InputError(f"{str(path)!r} is not a UTF-8 text CSV file") from None
    except (OSError, csv.Error) as exc:
        raise InputError(f"{str(path)!r} could not be read as CSV ({exc})") from None
    if len(rows) < 2:
        raise InputError(f"{str(path)!r} needs a header row and at least one data row")
    header = [h.strip() for h in rows[0]]
    if len(set(header)) != len(header):
        dup = next(h for h in header if header.count(h) > 1)
        raise InputError(f"{str(path)!r} has the column name {dup!r} twice in its header")
    body = rows[1:]
    for i, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise InputError(f"{str(path)!r} line {i} has {len(row)} fields but the header has {len(header)}")
    columns = {name: [row[j].strip() for row in body] for j, name in enumerate(header)}

    wanted = target or default_target
    if wanted is not None and wanted not in columns:
        if target is not None or need_target:
            raise InputError(f"{str(path)!r} has no column {wanted!r} (columns: {_short_list(header)})")
        wanted = None
    if wanted is None and target is None and default_target is None and need_target:
        if len(header) < 2:
            raise InputError(f"{str(path)!r} has one column; it needs feature columns and a target column")
        wanted = header[-1]
    if wanted_features:
        missing = [n for n in wanted_features if n not in columns]
        if missing:
            raise InputError(f"{str(path)!r} lacks the feature column(s) {_short_list(missing)} that the model was trained on")
        feature_names = list(wanted_features)
    else:
        feature_names = [h for h in header if h != wanted]
    if not feature_names:
        raise InputError(f"{str(path)!r} has no feature columns besides the target {wanted!r}")
    X = np.empty((len(body), len(feature_names)), dtype=np.float64)
    for j, name in enumerate(feature_names):
        X[:, j] = _numeric_column(columns[name], name, path)
    y = None
    if wanted is not None:
        raw = columns[wanted]
        if any(cell == "" for cell in raw):
            line = raw.index("") + 2
            raise InputError(f"{str(path)!r}: the target column {wanted!r} is empty on line {line}")
        y = _maybe_numeric(raw)
    return Table(X, y, feature_names, wanted, str(path), "csv")


def _numeric_column(cells: list[str], name: str, path: Path) -> np.ndarray:
    out = np.empty(len(cells), dtype=np.float64)
    for i, cell in enumerate(cells):
        try:
            out[i] = float(cell)
        except ValueError:
            what = "is empty" if cell == "" else f"holds {cell!r}"
            raise InputError(
                f"{str(path)!r}: feature column {name!r} {what} on line {i + 2}; feature columns must be "
                "numeric (encode categories as numbers, or choose it as --target)"
            ) from None
        if not math.isfinite(out[i]):
            raise InputError(f"{str(path)!r}: feature column {name!r} holds {cell!r} on line {i + 2}; clean or impute it first")
    return out


def _maybe_numeric(cells: list[str]) -> np.ndarray:
    """Numbers when every cell parses as a finite float, else the strings themselves."""
    try:
        values = np.array([float(c) for c in cells], dtype=np.float64)
    except ValueError:
        return np.array(cells, dtype=object)
    if not np.isfinite(values).all():
        return np.array(cells, dtype=object)
    return values


def _short_list(items, limit: int = 12) -> str:
    items = list(items)
    text = ", ".join(items[:limit])
    return text + (f", ... ({len(items)} in all)" if len(items) > limit else "")


# ---- the task and the preprocessing --------------------------------------------------------


def infer_task(y: np.ndarray, requested: str = "auto", builtin: str | None = None) -> str:
    """``classify`` or ``regress`` for target ``y``; ``requested`` overrides ``auto``."""
    if requested not in TASKS:
        raise InputError(f"--task must be one of {', '.join(TASKS)}, got {requested!r}")
    numeric = y.dtype.kind in "biuf"
    if requested == "regress":
        if not numeric:
            example = next(v for v in y if not _is_number(v))
            raise InputError(f"--task regress needs a numeric target, but it holds text such as {example!r}")
        return "regress"
    if requested == "classify":
        return "classify"
    if builtin is not None:
        return BUILTIN_DATASETS[builtin][1]
    if not numeric:
        return "classify"
    integral = bool(np.all(y == np.round(y)))
    return "classify" if integral and len(np.unique(y)) <= MAX_AUTO_CLASSES else "regress"


def _is_number(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _json_scalar(v):
    """A label as a JSON value that compares equal to what the data files hold."""
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return int(f) if f.is_integer() else f
    return str(v)


@dataclass
class Preprocessing:
    """What ``sega train`` learned besides the weights; stored in ``extra_config["cli"]``."""

    task: str
    feature_names: list[str]
    target_name: str | None
    classes: list | None = None
    feature_mean: list[float] | None = None
    feature_std: list[float] | None = None
    target_mean: float | None = None
    target_std: float | None = None
    sample_shape: list[int] | None = None
    dataset: str | None = None
    split: dict = field(default_factory=dict)

    # -- fitting (train) --

    @classmethod
    def fit(cls, table: Table, task: str, standardize: bool, sample_shape=None) -> "Preprocessing":
        """Learn label classes, feature and target scaling from the training part of ``table``."""
        pre = cls(task=task, feature_names=list(table.feature_names), target_name=table.target_name)
        flat = table.X.reshape(len(table.X), -1)
        if standardize:
            mean, std = flat.mean(axis=0), flat.std(axis=0)
            # Constant features (e.g. digits' blank corner pixels) would divide by zero.
            std = np.where(std > 1e-12, std, 1.0)
            pre.feature_mean, pre.feature_std = mean.tolist(), std.tolist()
        if task == "classify":
            pre.classes = [_json_scalar(v) for v in np.unique(label_array(table.y))]
            if len(pre.classes) < 2:
                raise InputError(f"the target {table.target_name!r} has a single class ({pre.classes[0]!r}); classification needs at least 2")
        else:
            y = np.asarray(table.y, dtype=np.float64)
            std = float(y.std())
            pre.target_mean, pre.target_std = float(y.mean()), (std if std > 0 else 1.0)
        pre.sample_shape = list(sample_shape) if sample_shape else list(table.X.shape[1:])
        return pre

    # -- applying (train, predict, evaluate) --

    def features(self, X: np.ndarray) -> np.ndarray:
        """Raw features (N, ...) -> scaled and reshaped network input."""
        flat = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
        n_expected = int(np.prod(self.sample_shape))
        if flat.shape[1] != n_expected:
            raise InputError(f"the data has {flat.shape[1]} features per sample, but the model was trained on {n_expected}")
        if self.feature_mean is not None:
            flat = (flat - np.asarray(self.feature_mean)) / np.asarray(self.feature_std)
        return flat.reshape((len(flat), *self.sample_shape))

    def encode_target(self, y: np.ndarray, name: str = "target") -> np.ndarray:
        """Labels -> class indices (classify) or values -> standardised values (regress)."""
        if self.task == "classify":
            labels = label_array(y)
            # Keyed by text so that a label read as the number 1 in one file and as the
            # string "1" in another (a column with some non-numeric cells) still matches.
            lookup = {str(_json_scalar(c)): i for i, c in enumerate(self.classes)}
            out = np.empty(len(labels), dtype=np.int64)
            for i, v in enumerate(labels):
                key = str(_json_scalar(v))
                if key not in lookup:
                    raise InputError(
                        f"{name} holds the label {key!r}, which the model never saw in training "
                        f"(its classes: {_short_list(map(str, self.classes))})"
                    )
                out[i] = lookup[key]
            return out
        if y.dtype.kind not in "biuf":
            raise InputError(f"{name} must be numeric for this regression model")
        return (np.asarray(y, dtype=np.float64) - self.target_mean) / self.target_std

    def decode(self, outputs: np.ndarray) -> np.ndarray:
        """Network predictions -> original labels or values."""
        if self.task == "classify":
            return np.asarray(self.classes, dtype=object)[np.asarray(outputs, dtype=np.int64)]
        values = np.asarray(outputs, dtype=np.float64)
        return values * self.target_std + self.target_mean

    def to_config(self) -> dict:
        """The JSON-able form stored in the model file."""
        return {"version": CLI_META_VERSION, **self.__dict__}

    @classmethod
    def from_model(cls, model, path: str) -> "Preprocessing":
        """The preprocessing saved by ``sega train``, or a pass-through for other model files."""
        extra = getattr(model, "extra_config", None) or {}
        meta = extra.get("cli")
        if meta is None:
            # A model saved from Python: raw features in, class indices or values out.
            shape = list(model.input_shape)
            return cls(
                task="regress" if model.regressor else "classify",
                feature_names=[],
                target_name=None,
                classes=None if model.regressor else list(range(max(2, model.n_outputs))),
                target_mean=0.0 if model.regressor else None,
                target_std=1.0 if model.regressor else None,
                sample_shape=shape,
            )
        if not isinstance(meta, dict) or meta.get("version") != CLI_META_VERSION:
            raise ModelFileError(
                f"{path!r} holds command-line metadata of version {meta.get('version') if isinstance(meta, dict) else '?'}; "
                f"this sega reads version {CLI_META_VERSION}"
            )
        try:
            fields = {k: v for k, v in meta.items() if k != "version"}
            return cls(**fields)
        except TypeError as exc:
            raise ModelFileError(f"{path!r} has invalid command-line metadata ({exc})") from None


def label_array(y) -> np.ndarray:
    """``y`` as a 1-D array of labels (one per sample)."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise InputError(f"the target must be one label per sample, got shape {arr.shape}")
    return arr


# ---- splitting ------------------------------------------------------------------------------


def train_test_indices(n: int, test_size: float, seed: int, stratify: np.ndarray | None = None):
    """Shuffled train and test indices; per class when ``stratify`` labels are given."""
    if not 0 <= test_size < 1:
        raise InputError(f"--test-size must be in [0, 1), got {test_size}")
    rng = np.random.default_rng(seed)
    if test_size == 0:
        return rng.permutation(n), np.array([], dtype=np.int64)
    if stratify is None:
        perm = rng.permutation(n)
        n_test = max(1, int(round(n * test_size)))
        if n_test >= n:
            raise InputError(f"--test-size {test_size} leaves no training samples out of {n}")
        return np.sort(perm[n_test:]), np.sort(perm[:n_test])
    train, test = [], []
    for cls in np.unique(stratify):
        idx = rng.permutation(np.flatnonzero(stratify == cls))
        # Classes with one sample stay in training: a class the model never saw cannot be scored.
        k = int(round(len(idx) * test_size)) if len(idx) > 1 else 0
        test.append(idx[:k])
        train.append(idx[k:])
    train, test = np.sort(np.concatenate(train)), np.sort(np.concatenate(test))
    if len(test) == 0 or len(train) == 0:
        raise InputError(f"--test-size {test_size} leaves an empty train or test part out of {n} samples")
    return train, test
