"""Elman recurrent layer: the input projection for every step in one matrix product, then the
recurrence; backpropagation through time likewise batches the weight gradients into two GEMMs.

Internally everything is time-major, (T, N, H), so each step reads and writes one contiguous
(N, H) block. The forward pass keeps its time-major states as ``ctx`` for the backward pass, and
each step's product and activation are written in place into preallocated arrays.
"""

from __future__ import annotations

import numpy as np

from sega_core.hookspecs import hookimpl


def _activate(a, activation):
    """Apply the activation to ``a`` in place."""
    if activation == "tanh":
        np.tanh(a, out=a)
    elif activation == "relu":
        np.maximum(a, 0, out=a)
    elif activation == "sigmoid":
        e = np.exp(-np.abs(a))
        a[...] = np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    elif activation != "linear":
        raise ValueError(f"unknown recurrent activation {activation!r}")


def _times_derivative(da, h, activation, scratch):
    """``da *= activation'`` in place, the derivative written with the output ``h`` (exact for
    these four functions)."""
    if activation == "tanh":
        np.multiply(h, h, out=scratch)
        np.subtract(1, scratch, out=scratch)
        da *= scratch
    elif activation == "relu":
        da[h <= 0] = 0
    elif activation == "sigmoid":
        np.subtract(1, h, out=scratch)
        scratch *= h
        da *= scratch


@hookimpl
def sega_rnn_forward(x, wx, wh, b, activation):
    """Run the recurrence; ``ctx`` is the time-major (T, N, H) array of states."""
    hs = np.matmul(x.transpose(1, 0, 2), wx)  # (T, N, H): every step's input projection
    hs += b
    product = np.empty_like(hs[0])
    _activate(hs[0], activation)
    for step in range(1, hs.shape[0]):
        np.matmul(hs[step - 1], wh, out=product)
        hs[step] += product
        _activate(hs[step], activation)
    return np.ascontiguousarray(hs.transpose(1, 0, 2)), hs


@hookimpl
def sega_rnn_backward(dhs, x, wx, wh, hs, activation, ctx, dwx, dwh, db, need_dx):
    """Backpropagation through time."""
    n, t, f = x.shape
    hidden = wh.shape[0]
    hs_t = ctx if ctx is not None else hs.transpose(1, 0, 2)
    dhs_t = dhs.transpose(1, 0, 2)
    das = np.empty((t, n, hidden), dtype=x.dtype)
    carry = np.zeros((n, hidden), dtype=x.dtype)
    scratch = np.empty_like(carry)
    wh_t = np.ascontiguousarray(wh.T)
    for step in range(t - 1, -1, -1):
        da = das[step]
        np.add(dhs_t[step], carry, out=da)
        _times_derivative(da, hs_t[step], activation, scratch)
        if step:
            np.matmul(da, wh_t, out=carry)
    flat_das = das.reshape(t * n, hidden)
    np.matmul(x.transpose(1, 0, 2).reshape(t * n, f).T, flat_das, out=dwx)
    if t > 1:
        np.matmul(hs_t[:-1].reshape((t - 1) * n, hidden).T, das[1:].reshape((t - 1) * n, hidden), out=dwh)
    else:
        dwh[...] = 0
    np.sum(flat_das, axis=0, out=db)
    if not need_dx:
        return None
    return np.ascontiguousarray((flat_das @ wx.T).reshape(t, n, f).transpose(1, 0, 2))
