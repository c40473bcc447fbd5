"""Evaluation metrics on host NumPy arrays, with optional sample weights."""

from __future__ import annotations

import numpy as np


def _weights(w, n):
    return np.ones(n) if w is None else np.asarray(w, dtype=np.float64)


def accuracy(y_true, y_pred, sample_weight=None) -> float:
    """(Weighted) fraction of exact matches; for 2-D labels, of matching entries."""
    hits = np.asarray(y_true) == np.asarray(y_pred)
    if hits.ndim == 2:
        hits = hits.mean(axis=1)
    return float(np.average(hits, weights=_weights(sample_weight, len(hits))))


def confusion_matrix(y_true, y_pred, n_classes: int, sample_weight=None) -> np.ndarray:
    """``m[i, j]`` sums the weights (counts, unweighted) of samples of true class i predicted as j."""
    m = np.zeros((n_classes, n_classes), dtype=np.float64)
    np.add.at(m, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)),
              _weights(sample_weight, len(y_true)))
    return m


def precision_recall_f1(y_true, y_pred, n_classes: int, sample_weight=None) -> tuple[float, float, float]:
    """Macro-averaged precision, recall and F1 over the classes present in y_true or y_pred.

    A class never predicted has precision 0 (scikit-learn's ``zero_division=0``).
    """
    m = confusion_matrix(y_true, y_pred, n_classes, sample_weight)
    tp = np.diag(m)
    predicted, actual = m.sum(0), m.sum(1)
    present = (predicted + actual) > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(actual > 0, tp / actual, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return float(precision[present].mean()), float(recall[present].mean()), float(f1[present].mean())


def regression_metrics(y_true, y_pred, sample_weight=None) -> dict[str, float]:
    """(Weighted) MSE, MAE and R^2 (R^2 averaged uniformly over outputs, as scikit-learn does)."""
    y_true = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(len(y_pred), -1)
    w = _weights(sample_weight, len(y_true))[:, None]
    r = y_true - y_pred
    total = w.sum()
    ss_res = (w * r * r).sum(0)
    ss_tot = (w * (y_true - (w * y_true).sum(0) / total) ** 2).sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(ss_tot > 0, 1 - ss_res / ss_tot, 0.0)
    k = y_true.shape[1]
    return {"mse": float(ss_res.sum() / (total * k)), "mae": float((w * np.abs(r)).sum() / (total * k)), "r2": float(r2.mean())}
