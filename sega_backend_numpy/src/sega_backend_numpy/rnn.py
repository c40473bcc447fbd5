"""Elman recurrent layer: the input projection for every step in one matrix product, then the
recurrence; backpropagation through time likewise batches the weight gradients into two GEMMs.
"""

from __future__ import annotations

import numpy as np

from sega_core.hookspecs import hookimpl


def _activate(a, activation):
    if activation == "tanh":
        return np.tanh(a, out=a)
    if activation == "relu":
        return np.maximum(a, 0, out=a)
    if activation == "sigmoid":
        e = np.exp(-np.abs(a))
        return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(a.dtype, copy=False)
    if activation == "linear":
        return a
    raise ValueError(f"unknown recurrent activation {activation!r}")


def _derivative_from_output(h, activation):
    """d activation / d a, written with the output h (exact for these four functions)."""
    if activation == "tanh":
        return 1 - h * h
    if activation == "relu":
        return (h > 0).astype(h.dtype)
    if activation == "sigmoid":
        return h * (1 - h)
    return np.ones_like(h)


@hookimpl
def sega_rnn_forward(x, wx, wh, b, activation):
    """Run the recurrence; time-major internally so every step touches contiguous memory."""
    n, t, f = x.shape
    hidden = wh.shape[0]
    a = (x.transpose(1, 0, 2).reshape(t * n, f) @ wx).reshape(t, n, hidden)
    a += b
    hs = np.empty_like(a)
    h = None
    for step in range(t):
        z = a[step]
        if h is not None:
            z += h @ wh
        hs[step] = h = _activate(z, activation)
    return np.ascontiguousarray(hs.transpose(1, 0, 2)), None


@hookimpl
def sega_rnn_backward(dhs, x, wx, wh, hs, activation, ctx, dwx, dwh, db, need_dx):
    """Backpropagation through time."""
    n, t, f = x.shape
    hidden = wh.shape[0]
    hs_t = hs.transpose(1, 0, 2)  # (T, N, H) view
    deriv = _derivative_from_output(hs_t, activation)
    das = np.empty((t, n, hidden), dtype=x.dtype)
    carry = None
    for step in range(t - 1, -1, -1):
        dh = dhs[:, step] if carry is None else dhs[:, step] + carry
        da = das[step] = dh * deriv[step]
        carry = da @ wh.T
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
