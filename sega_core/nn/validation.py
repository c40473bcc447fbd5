"""Checks on user data: every malformed input gets an InputError that says what to do."""

from __future__ import annotations

import numpy as np

from ..errors import InputError

DTYPES = {"float32": np.float32, "float64": np.float64}


def canonical_dtype(dtype) -> np.dtype:
    """float32 or float64; anything else is refused (there is no silent promotion)."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.name not in DTYPES:
        raise InputError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return dt


def _as_numeric(a, name: str) -> np.ndarray:
    if a is None:
        raise InputError(f"{name} is None; pass an array")
    if hasattr(a, "to_numpy"):  # pandas objects
        a = a.to_numpy()
    try:
        arr = np.asarray(a)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{name} could not be read as an array: {exc}") from None
    if arr.dtype.kind not in "biuf":
        try:
            arr = arr.astype(np.float64)
        except (ValueError, TypeError):
            raise InputError(
                f"{name} must be numeric, got values of dtype {arr.dtype} (e.g. {arr.ravel()[:1].tolist()}); "
                "encode text or categories as numbers first"
            ) from None
    if arr.ndim == 0 or arr.shape[0] == 0 or arr.size == 0:
        raise InputError(f"{name} is empty (shape {arr.shape}); pass at least one sample")
    return arr


def _check_finite(arr: np.ndarray, name: str) -> None:
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise InputError(f"{name} contains {bad} NaN or infinite value(s); clean or impute them first")


def check_features(X, dtype: np.dtype, sample_shape: tuple | None = None, name: str = "X") -> np.ndarray:
    """Return ``X`` as a C-contiguous array of ``dtype``, checked for shape and finiteness.

    ``sample_shape`` is the per-sample shape the model expects, once it is known.
    """
    arr = _as_numeric(X, name)
    if arr.ndim == 1:
        raise InputError(
            f"{name} must have one row per sample, got a 1-D array of shape {arr.shape}; "
            f"use {name}.reshape(-1, 1) for one feature or {name}.reshape(1, -1) for one sample"
        )
    _check_finite(arr, name)
    if sample_shape is not None and tuple(arr.shape[1:]) != tuple(sample_shape):
        if len(sample_shape) == 1 and arr.ndim == 2:
            raise InputError(f"{name} has {arr.shape[1]} features, but the model expects {sample_shape[0]}")
        raise InputError(
            f"{name} has samples of shape {tuple(arr.shape[1:])}, but the model expects {tuple(sample_shape)}"
        )
    return np.ascontiguousarray(arr, dtype=dtype)


def check_lengths(X: np.ndarray, y: np.ndarray, x_name="X", y_name="y") -> None:
    """X and y must hold the same number of samples."""
    if len(X) != len(y):
        raise InputError(f"{x_name} has {len(X)} samples but {y_name} has {len(y)}; they must match")


def check_classification_targets(y, n_outputs: int, loss: str, dtype: np.dtype, name: str = "y") -> np.ndarray:
    """Labels for a classifier, in the form its loss kernel takes.

    Cross-entropy: integer class indices (N,) in [0, n_outputs) -> int64, or probability rows
    (N, n_outputs) -> dtype. Binary cross-entropy: 0/1 labels (N,) or (N, n_outputs) -> dtype,
    shaped (N, n_outputs).
    """
    arr = _as_numeric(y, name)
    _check_finite(arr, name)
    if arr.ndim == 2 and arr.shape[1] == 1 and n_outputs != 1:
        arr = arr[:, 0]
    if arr.ndim == 1:
        if arr.dtype.kind == "f" and not np.all(arr == np.round(arr)):
            raise InputError(
                f"{name} holds non-integer values (e.g. {arr[arr != np.round(arr)][0]!r}), which look like a "
                "regression target; pass integer class labels, or build the model with regressor=True"
            )
        labels = arr.astype(np.int64)
        high = 2 if loss == "bce_with_logits" else n_outputs
        bad = (labels < 0) | (labels >= high)
        if bad.any():
            raise InputError(
                f"{name} has label {labels[bad][0]} outside the model's {high} classes (0..{high - 1}); "
                "check the output layer size or re-encode the labels"
            )
        if loss == "bce_with_logits":
            if n_outputs != 1:
                raise InputError(f"{name} is 1-D but the binary model has {n_outputs} outputs; pass (N, {n_outputs}) 0/1 labels")
            return np.ascontiguousarray(labels.reshape(-1, 1), dtype=dtype)
        return np.ascontiguousarray(labels)
    if arr.ndim == 2 and arr.shape[1] == n_outputs:
        if loss == "bce_with_logits":
            if ((arr < 0) | (arr > 1)).any():
                raise InputError(f"{name} for binary cross-entropy must be in [0, 1]")
        elif ((arr < 0).any()) or not np.allclose(arr.sum(1), 1, atol=1e-3):
            raise InputError(f"{name} rows must be one-hot or class probabilities summing to 1")
        return np.ascontiguousarray(arr, dtype=dtype)
    raise InputError(
        f"{name} has shape {arr.shape}; a classifier with {n_outputs} outputs expects labels of shape (N,) "
        f"or one-hot rows of shape (N, {n_outputs})"
    )


def check_regression_targets(y, n_outputs: int, dtype: np.dtype, name: str = "y") -> np.ndarray:
    """Targets for a regressor as (N, n_outputs) of ``dtype``."""
    raw = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y)
    if raw.dtype.kind in "bOSU":
        raise InputError(
            f"{name} holds {'booleans' if raw.dtype.kind == 'b' else 'text'}, which look like class labels; "
            "a regressor needs numeric targets (or build a classifier: regressor=False)"
        )
    arr = _as_numeric(raw, name)
    _check_finite(arr, name)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2 or arr.shape[1] != n_outputs:
        raise InputError(f"{name} has shape {arr.shape}; the regressor has {n_outputs} output(s)")
    return np.ascontiguousarray(arr, dtype=dtype)


def check_batch_size(batch_size) -> int:
    """A positive int."""
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
        raise InputError(f"batch_size must be an int >= 1, got {batch_size!r}")
    return int(batch_size)


def check_epochs(epochs) -> int:
    """A non-negative int."""
    if not isinstance(epochs, (int, np.integer)) or isinstance(epochs, bool) or epochs < 0:
        raise InputError(f"epochs must be an int >= 0, got {epochs!r}")
    return int(epochs)
