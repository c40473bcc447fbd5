"""Loss kernels: each returns (mean loss as a 0-d array, gradient of the mean loss)."""

from __future__ import annotations

import numpy as np

from sega_core.hookspecs import hookimpl


def _scalar(value, dtype):
    return np.asarray(value, dtype=dtype)


@hookimpl
def sega_softmax_cross_entropy(logits, target):
    """Log-softmax via log-sum-exp, then the negative log-likelihood of the targets."""
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_p = shifted - log_sum
    grad = np.exp(log_p)
    if target.ndim == 1:
        rows = np.arange(n)
        loss = -log_p[rows, target].sum() / n
        grad[rows, target] -= 1
    else:
        loss = -(target * log_p).sum() / n
        grad -= target
    grad /= n
    return _scalar(loss, logits.dtype), grad


@hookimpl
def sega_bce_with_logits(logits, target):
    """Binary cross-entropy on logits: ``max(l,0) - l*t + log1p(exp(-|l|))``."""
    loss = np.maximum(logits, 0) - logits * target + np.log1p(np.exp(-np.abs(logits)))
    e = np.exp(-np.abs(logits))
    sig = np.where(logits >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(logits.dtype, copy=False)
    return _scalar(loss.mean(), logits.dtype), (sig - target) / logits.size


@hookimpl
def sega_mse(pred, target):
    """Mean squared error."""
    r = pred - target
    return _scalar((r * r).mean(), pred.dtype), r * (2.0 / pred.size)


@hookimpl
def sega_mae(pred, target):
    """Mean absolute error (gradient 0 where the residual is exactly 0)."""
    r = pred - target
    return _scalar(np.abs(r).mean(), pred.dtype), np.sign(r) * (1.0 / pred.size)


@hookimpl
def sega_huber(pred, target, delta):
    """Huber loss: quadratic within ``delta``, linear outside."""
    r = pred - target
    a = np.abs(r)
    loss = np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))
    return _scalar(loss.mean(), pred.dtype), np.clip(r, -delta, delta) * (1.0 / pred.size)
