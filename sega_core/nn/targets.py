"""What a model learns about its targets besides the weights: class labels and target scaling.

Both are fitted at the model's first ``train`` call and saved in its model file, so a model
loaded anywhere takes raw labels and values in and gives them back out.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .validation import host_array


def _short(values, limit: int = 8) -> str:
    values = list(values)
    text = ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in values[:limit])
    return text + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def raw_labels(y, squeeze_column: bool = True) -> np.ndarray | None:
    """``y`` as a 1-D host array of labels, or ``None`` when it is not one label per sample.

    ``squeeze_column`` reads an (N, 1) array as labels too.
    """
    try:
        arr = host_array(y)
    except InputError:
        return None  # ragged: the target checks say what is wrong
    if squeeze_column and arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    return arr if arr.ndim == 1 else None


def fit_classes(labels: np.ndarray, n_classes: int, name: str = "y") -> np.ndarray | None:
    """The model's classes for 1-D ``labels``; ``None`` to leave the labels to the checks.

    Integer-valued labels within ``0..n_classes-1`` are class indices (classes ``0..n-1``, or
    ``False, True`` for booleans). Any other labels (text, or numbers such as ``{1, 2, 3}`` or
    ``{-1, 1}``) must be exactly ``n_classes`` distinct values, sorted to give the classes.
    Fractional numbers are left to the target checks, which reject them with a hint.
    """
    if labels.dtype.kind == "b":
        return np.array([False, True]) if n_classes == 2 else None
    if labels.dtype.kind in "iuf":
        if labels.dtype.kind == "f" and not (np.isfinite(labels).all() and np.all(labels == np.round(labels))):
            return None
        if labels.size and labels.min() >= 0 and labels.max() < n_classes:
            return np.arange(n_classes)
    elif labels.dtype.kind not in "OUS":
        return None
    try:
        classes = np.unique(labels)
    except TypeError:
        raise InputError(f"{name} mixes labels of different types (e.g. numbers and text); use one type") from None
    if classes.dtype.kind == "S" or (classes.dtype.kind == "O" and any(isinstance(c, bytes) for c in classes)):
        # A model file keeps its labels as JSON text, which has no bytes.
        raise InputError(f"{name} holds bytes labels (e.g. {_short(classes[:1])}); decode them to text first, e.g. "
                         f"{name}.astype(str)")
    if classes.dtype.kind == "O" and any(not isinstance(c, (str, int, float, np.generic)) or c is None for c in classes):
        raise InputError(f"{name} holds labels that are not numbers or text (e.g. {_short(classes[:1])})")
    if len(classes) != n_classes:
        raise InputError(
            f"{name} holds {len(classes)} distinct labels ({_short(classes)}) but the model has {n_classes} classes; "
            f"give the output layer one unit per class, or pass class indices 0..{n_classes - 1}"
        )
    return classes


def encode_labels(labels: np.ndarray, classes: np.ndarray, name: str = "y") -> np.ndarray:
    """Class indices (int64) of ``labels``; a label the model never saw is an error."""
    if labels.dtype.kind in "fc" and not np.isfinite(labels).all():
        raise InputError(f"{name} contains NaN or infinite labels; clean them first")
    try:
        index = np.searchsorted(classes, labels)
        index = np.clip(index, 0, len(classes) - 1)
        known = classes[index] == labels
    except (TypeError, ValueError):
        known, index = np.zeros(len(labels), bool), None
    if not np.all(known):
        bad = labels[~np.asarray(known)][0]
        raise InputError(
            f"{name} holds the label {bad.item() if hasattr(bad, 'item') else bad!r}, which the model was not "
            f"trained on (its classes: {_short(classes)})"
        )
    return index.astype(np.int64)


#: The kinds of label arrays a model file may name: booleans, integers, floats and text.
_LABEL_KINDS = "biufU"


def classes_to_config(classes: np.ndarray | None) -> list | None:
    """Classes as JSON values."""
    if classes is None:
        return None
    return [c.item() if hasattr(c, "item") else c for c in classes]


def classes_dtype_to_config(classes: np.ndarray | None) -> str | None:
    """The classes' dtype (``"<u8"``...), so that labels come back as they went in: JSON alone
    would turn uint8 labels into int64 and integers beyond int64 into floats."""
    if classes is None or classes.dtype.kind not in _LABEL_KINDS:
        return None
    return classes.dtype.str


def classes_from_config(values, dtype: str | None = None) -> np.ndarray | None:
    """The inverse of :func:`classes_to_config` (and of :func:`classes_dtype_to_config`)."""
    if values is None:
        return None
    if not isinstance(values, list) or not values or not all(isinstance(v, (str, int, float, bool)) for v in values):
        raise ValueError(f"classes must be a non-empty list of numbers or strings, got {values!r}")
    if dtype is None:
        return np.array(values)
    kind = np.dtype(dtype) if isinstance(dtype, str) and len(dtype) <= 8 else None
    if kind is None or kind.kind not in _LABEL_KINDS:
        raise ValueError(f"classes_dtype must name a boolean, integer, float or text dtype, got {dtype!r}")
    try:
        classes = np.array(values, dtype=kind)
    except OverflowError:
        classes = None
    if classes is None or classes.tolist() != values:
        raise ValueError(f"classes {values!r} do not fit classes_dtype {dtype!r}")
    return classes


class TargetScaler:
    """Regression targets standardised per output (mean 0, standard deviation 1) for training.

    Adam's default step suits targets of unit scale; a target in the thousands would otherwise
    take thousands of epochs. Predictions are mapped back, so users see their own units.
    """

    def __init__(self, mean, scale) -> None:
        self.mean = np.asarray(mean, dtype=np.float64).reshape(-1)
        self.scale = np.asarray(scale, dtype=np.float64).reshape(-1)

    @classmethod
    def fit(cls, y: np.ndarray, weight: np.ndarray | None = None) -> "TargetScaler":
        """From (N, K) targets and their samples' weights (so that a weight of 2 counts as the
        sample twice); a constant output keeps scale 1."""
        y = np.asarray(y, dtype=np.float64)
        mean = np.average(y, axis=0, weights=weight)
        scale = np.sqrt(np.average((y - mean) ** 2, axis=0, weights=weight))
        return cls(mean, np.where(scale > 10 * np.finfo(np.float64).eps * np.maximum(1, np.abs(mean)), scale, 1.0))

    def transform(self, y: np.ndarray) -> np.ndarray:
        """Targets in the units the network trains on."""
        return (np.asarray(y, dtype=np.float64) - self.mean) / self.scale

    def inverse(self, values: np.ndarray) -> np.ndarray:
        """Network outputs back in the target's units."""
        return np.asarray(values, dtype=np.float64) * self.scale + self.mean

    def to_config(self) -> dict:
        """JSON-able form."""
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_config(cls, config: dict) -> "TargetScaler":
        """The inverse of :meth:`to_config`."""
        mean, scale = np.asarray(config["mean"], dtype=np.float64), np.asarray(config["scale"], dtype=np.float64)
        if mean.shape != scale.shape or mean.ndim != 1 or not np.isfinite(mean).all() or not (scale > 0).all():
            raise ValueError("target standardisation needs equal-length finite mean and positive scale lists")
        return cls(mean, scale)


def sample_weights(sample_weight, class_weight, labels: np.ndarray | None, classes: np.ndarray | None, n: int,
                   name: str = "sample_weight") -> np.ndarray | None:
    """Per-sample float64 weights from ``sample_weight`` and ``class_weight``, or ``None``.

    ``class_weight`` is ``{label: weight}`` (labels as the model knows them, ``classes_``;
    missing ones weigh 1) or ``"balanced"`` (``n / (n_classes * count)``, scikit-learn's rule);
    ``labels`` are the samples' class indices. The two multiply.
    """
    weight = None
    if sample_weight is not None:
        try:
            weight = host_array(sample_weight, name)
        except InputError:
            weight = None
        if weight is None or weight.dtype.kind not in "biuf" or weight.shape != (n,):
            raise InputError(f"{name} must be {n} numbers, one per sample, got {_describe(sample_weight)}")
        weight = weight.astype(np.float64)
        if not np.isfinite(weight).all() or (weight < 0).any():
            raise InputError(f"{name} must be finite and >= 0 (e.g. {weight[~(np.isfinite(weight) & (weight >= 0))][0]!r})")
    if class_weight is not None:
        per_class = _class_weights(class_weight, labels, classes)
        weight = per_class[labels] if weight is None else weight * per_class[labels]
    if weight is not None and not weight.sum() > 0:
        given = " and ".join(w for w, v in ((name, sample_weight), ("class_weight", class_weight)) if v is not None)
        raise InputError(f"the sample weights are all 0 ({given}); at least one sample must count")
    return weight


def _class_weights(class_weight, labels: np.ndarray, classes: np.ndarray | None) -> np.ndarray:
    known = classes if classes is not None else np.arange(int(labels.max()) + 1 if labels.size else 0)
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise InputError(f"class_weight must be a dict {{label: weight}} or 'balanced', got {class_weight!r}")
        counts = np.bincount(labels, minlength=len(known)).astype(np.float64)
        if (counts == 0).any():
            missing = known[np.flatnonzero(counts == 0)[0]]
            raise InputError(f"class_weight='balanced' needs samples of every class; class {_short([missing])} has none")
        return len(labels) / (len(known) * counts)
    if not isinstance(class_weight, dict):
        raise InputError(f"class_weight must be a dict {{label: weight}} or 'balanced', got {type(class_weight).__name__}")
    per_class = np.ones(len(known))
    for label, value in class_weight.items():
        matches = np.flatnonzero(known == label) if known.dtype.kind != "O" else [i for i, c in enumerate(known) if c == label]
        if len(matches) == 0:
            raise InputError(f"class_weight names the class {label!r}, which the model does not have (its classes: {_short(known)})")
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                or not np.isfinite(value) or value < 0:
            raise InputError(f"class_weight[{label!r}] must be a finite number >= 0, got {value!r}")
        per_class[matches[0]] = float(value)
    return per_class


def _describe(value) -> str:
    shape = getattr(value, "shape", None)
    return f"shape {shape}" if shape is not None else repr(value)[:60]
