"""Loss kernels: each returns (mean loss as a 0-d device array, gradient of the mean loss).

Nothing here synchronises with the host: the loss stays on the GPU as a 0-d array and the core
turns it into a Python float once per epoch. Elementwise losses are two launches (a fused
gradient kernel and a fused map-reduce for the mean); softmax cross-entropy is one warp-per-row
launch (gradient and per-row loss) plus the mean. Sample weights (``weight``, one per row) take
a few more launches: the weights broadcast over the rows, the per-element terms mapped, their
weighted mean, and the gradient scaled.
"""

from __future__ import annotations

import numpy as np

from . import _rowwise
from ._cupy import contiguous, cupy

# cupy's own mean divides by this; the reduction runs over every element, into a 0-d array.
_MEAN = "y = a / _type_reduce(_in_ind.size() / _out_ind.size())"


def _mean_kernel(params: str, term: str, name: str):
    return cupy.ReductionKernel(params, "T y", term, "a + b", _MEAN, "0", name)


_mean = _mean_kernel("T x", "x", "sega_mean")
_weighted_mean = _mean_kernel("T x, T w", "x * w", "sega_weighted_mean")

#: Each elementwise loss's parameters and per-element term, written once: the unweighted mean is
#: one fused map-reduce of the term; the weighted path maps the terms, then takes their weighted mean.
_TERM_SOURCES = {
    "bce": ("T l, T t", "(l > (T)0 ? l : (T)0) - l * t + log1p(exp(-fabs(l)))"),
    "mse": ("T p, T t", "(p - t) * (p - t)"),
    "mae": ("T p, T t", "fabs(p - t)"),
    "huber": ("T p, T t, T delta", "fabs(p - t) <= delta ? (T)0.5 * (p - t) * (p - t) : delta * (fabs(p - t) - (T)0.5 * delta)"),
}
_LOSS = {name: _mean_kernel(params, term, f"sega_{name}_loss") for name, (params, term) in _TERM_SOURCES.items()}
_TERMS = {
    name: cupy.ElementwiseKernel(params, "T y", f"y = {term};", f"sega_{name}_terms")
    for name, (params, term) in _TERM_SOURCES.items()
}
_bce_grad = cupy.ElementwiseKernel(
    "T l, T t, T count",
    "T g",
    "const T e = exp(-fabs(l)); const T s = l >= (T)0 ? (T)1 / ((T)1 + e) : e / ((T)1 + e); g = (s - t) / count;",
    "sega_bce_grad",
)
_mse_grad = cupy.ElementwiseKernel("T p, T t, T scale", "T g", "g = (p - t) * scale;", "sega_mse_grad")
_mae_grad = cupy.ElementwiseKernel(
    "T p, T t, T scale",
    "T g",
    # sign(r) * scale; r * scale at r == 0 gives the reference's 0 (and keeps a NaN a NaN).
    "const T r = p - t; g = r > (T)0 ? scale : (r < (T)0 ? -scale : r * scale);",
    "sega_mae_grad",
)
_huber_grad = cupy.ElementwiseKernel(
    "T p, T t, T delta, T scale",
    "T g",
    "const T r = p - t; g = (r < -delta ? -delta : (r > delta ? delta : r)) * scale;",
    "sega_huber_grad",
)


def _as_dtype_of(target, pred):
    # The core sends targets in the model's dtype already; this is a no-op then.
    return target if target.dtype == pred.dtype else target.astype(pred.dtype)


def _rows(weight, like):
    """``weight`` (N,) broadcast over the rows of ``like``, as a contiguous array of its dtype."""
    w = weight.astype(like.dtype, copy=False).reshape((-1,) + (1,) * (like.ndim - 1))
    return contiguous(cupy.broadcast_to(w, like.shape))


def _loss_and_grad(name, grad, args, weight):
    """The (weighted) mean of loss ``name``'s per-element terms, and the (weighted) gradient."""
    if weight is None:
        return _LOSS[name](*args), grad
    w = _rows(weight, grad)
    return _weighted_mean(_TERMS[name](*args), w), grad * w


def softmax_cross_entropy(logits, target, weight):
    """Softmax + cross-entropy, fused and stable; integer labels (N,) or probabilities (N, C)."""
    logits = contiguous(logits)
    n, c = logits.shape
    grad = cupy.empty((n, c), dtype=logits.dtype)
    row_loss = cupy.empty((n,), dtype=logits.dtype)
    if target.ndim == 1:
        labels = contiguous(target.astype(cupy.int64, copy=False))
        _rowwise.launch("sega_sce_labels", logits.dtype, n, (logits, labels, grad, row_loss, np.int64(n), np.int32(c)))
    else:
        probs = contiguous(_as_dtype_of(target, logits))
        _rowwise.launch("sega_sce_probs", logits.dtype, n, (logits, probs, grad, row_loss, np.int64(n), np.int32(c)))
    if weight is None:
        return _mean(row_loss), grad
    return _weighted_mean(row_loss, _rows(weight, row_loss)), grad * _rows(weight, grad)


def bce_with_logits(logits, target, weight):
    """Binary cross-entropy on logits: ``max(l,0) - l*t + log1p(exp(-|l|))``, mean over all."""
    target = _as_dtype_of(target, logits)
    return _loss_and_grad("bce", _bce_grad(logits, target, logits.size), (logits, target), weight)


def mse(pred, target, weight):
    """Mean squared error; gradient ``2 * (pred - target) / size``."""
    target = _as_dtype_of(target, pred)
    return _loss_and_grad("mse", _mse_grad(pred, target, 2.0 / pred.size), (pred, target), weight)


def mae(pred, target, weight):
    """Mean absolute error; gradient ``sign(pred - target) / size``."""
    target = _as_dtype_of(target, pred)
    return _loss_and_grad("mae", _mae_grad(pred, target, 1.0 / pred.size), (pred, target), weight)


def huber(pred, target, delta, weight):
    """Huber loss (PyTorch's definition); gradient ``clip(r, -delta, delta) / size``."""
    target = _as_dtype_of(target, pred)
    return _loss_and_grad("huber", _huber_grad(pred, target, delta, 1.0 / pred.size), (pred, target, delta), weight)
