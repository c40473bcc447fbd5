"""Loss kernels: each returns (mean loss as a 0-d array, gradient of the mean loss).

``weight`` is ``None`` or one weight per sample (row), scaling its loss terms and gradient.
"""

from __future__ import annotations

import numpy as np

from sega_core.hookspecs import hookimpl


def _scalar(value, dtype):
    return np.asarray(value, dtype=dtype)


def _rows(weight, ndim):
    """``weight`` shaped to scale the rows of an ``ndim``-D array."""
    return weight.reshape((-1,) + (1,) * (ndim - 1))


@hookimpl
def sega_softmax_cross_entropy(logits, target, weight):
    """Log-softmax via log-sum-exp, then the negative log-likelihood of the targets."""
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_p = shifted - log_sum
    grad = np.exp(log_p)
    if target.ndim == 1:
        rows = np.arange(n)
        per_row = -log_p[rows, target]
        grad[rows, target] -= 1
    else:
        per_row = -(target * log_p).sum(axis=1)
        grad -= target
    if weight is not None:
        per_row = per_row * weight
        grad *= _rows(weight, 2)
    grad /= n
    return _scalar(per_row.sum() / n, logits.dtype), grad


def _weighted_mean(terms, weight):
    return (terms if weight is None else terms * _rows(weight, terms.ndim)).mean()


def _weighted(grad, weight):
    return grad if weight is None else grad * _rows(weight, grad.ndim)


@hookimpl
def sega_bce_with_logits(logits, target, weight):
    """Binary cross-entropy on logits: ``max(l,0) - l*t + log1p(exp(-|l|))``."""
    loss = np.maximum(logits, 0) - logits * target + np.log1p(np.exp(-np.abs(logits)))
    e = np.exp(-np.abs(logits))
    sig = np.where(logits >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(logits.dtype, copy=False)
    return _scalar(_weighted_mean(loss, weight), logits.dtype), _weighted((sig - target) / logits.size, weight)


@hookimpl
def sega_mse(pred, target, weight):
    """Mean squared error."""
    r = pred - target
    return _scalar(_weighted_mean(r * r, weight), pred.dtype), _weighted(r * (2.0 / pred.size), weight)


@hookimpl
def sega_mae(pred, target, weight):
    """Mean absolute error (gradient 0 where the residual is exactly 0)."""
    r = pred - target
    return _scalar(_weighted_mean(np.abs(r), weight), pred.dtype), _weighted(np.sign(r) * (1.0 / pred.size), weight)


@hookimpl
def sega_huber(pred, target, delta, weight):
    """Huber loss: quadratic within ``delta``, linear outside."""
    r = pred - target
    a = np.abs(r)
    loss = np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))
    return _scalar(_weighted_mean(loss, weight), pred.dtype), _weighted(np.clip(r, -delta, delta) * (1.0 / pred.size), weight)
