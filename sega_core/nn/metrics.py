"""Evaluation metrics on host NumPy arrays."""

from __future__ import annotations

import numpy as np


def accuracy(y_true, y_pred) -> float:
    """Fraction of exact matches."""
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """``m[i, j]`` counts samples of true class i predicted as j."""
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return m


def precision_recall_f1(y_true, y_pred, n_classes: int) -> tuple[float, float, float]:
    """Macro-averaged precision, recall and F1 over the classes present in y_true or y_pred.

    A class never predicted has precision 0 (scikit-learn's ``zero_division=0``).
    """
    m = confusion_matrix(y_true, y_pred, n_classes)
    tp = np.diag(m).astype(np.float64)
    predicted, actual = m.sum(0), m.sum(1)
    present = (predicted + actual) > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(actual > 0, tp / actual, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return float(precision[present].mean()), float(recall[present].mean()), float(f1[present].mean())


def regression_metrics(y_true, y_pred) -> dict[str, float]:
    """MSE, MAE and R^2 (R^2 averaged uniformly over outputs, as scikit-learn does)."""
    y_true = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(len(y_pred), -1)
    r = y_true - y_pred
    ss_res = (r * r).sum(0)
    ss_tot = ((y_true - y_true.mean(0)) ** 2).sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(ss_tot > 0, 1 - ss_res / ss_tot, 0.0)
    return {"mse": float((r * r).mean()), "mae": float(np.abs(r).mean()), "r2": float(r2.mean())}
