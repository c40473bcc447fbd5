"""Elman recurrent layer: the batch shared out between threads, each share one compiled call
that runs the whole time loop for its sequences (:mod:`._recurrence`).

The threads' shares of the weight and bias gradients are added up at the end.
"""

from __future__ import annotations

import numpy as np

from ._parallel import run, shares
from ._recurrence import CODES, KERNELS, SIGMOID, SIGMOID_VIA_TANH32, TANH, TANH32
from ._workspace import workspaces


def _code(activation: str, dtype) -> int:
    try:
        code = CODES[activation]
    except KeyError:
        raise ValueError(f"unknown recurrent activation {activation!r}; valid names: {', '.join(CODES)}") from None
    if np.dtype(dtype) == np.float32:
        # Vectorised float32 versions (see _recurrence): the C library's tanh is a scalar call.
        code = {TANH: TANH32, SIGMOID: SIGMOID_VIA_TANH32}.get(code, code)
    return code


def _check_shapes(x, wx, wh, b):
    # The compiled shares do not check their indices, and must not raise: refuse mismatches here.
    if x.ndim != 3 or wx.ndim != 2 or wh.ndim != 2:
        raise ValueError(f"rnn needs x (N, T, F), wx (F, H), wh (H, H); got {x.shape}, {wx.shape}, {wh.shape}")
    n, steps, f = x.shape
    h = wh.shape[0]
    if wx.shape != (f, h) or wh.shape != (h, h) or (b is not None and b.shape != (h,)):
        shapes = f"wx {wx.shape}, wh {wh.shape}" + ("" if b is None else f", b {b.shape}")
        raise ValueError(f"rnn with {f} features and {h} units needs wx ({f}, {h}), wh ({h}, {h}), b ({h},); got {shapes}")
    return n, steps, f, h


def rnn_forward(x, wx, wh, b, activation):
    """Run the recurrence over the whole sequence, the batch shared out; ``(hs, None)``."""
    x = np.ascontiguousarray(x)
    n, steps, f, h = _check_shapes(x, wx, wh, b)
    wx, wh, b = (np.ascontiguousarray(a) for a in (wx, wh, b))
    hs = np.empty((n, steps, h), x.dtype)
    code = _code(activation, hs.dtype)
    parts = shares(n, steps * h * (f + h))
    state, rec = workspaces("rnn_forward", ((parts, n, h), (parts, n, h)), hs.dtype)
    run(KERNELS[code][0], parts, x, wx, wh, b, hs, state, rec)
    return hs, None


def rnn_backward(dhs, x, wx, wh, hs, activation, ctx, dwx, dwh, db, need_dx):
    """Backpropagation through time, the batch shared out; overwrites ``dwx``, ``dwh`` and
    ``db`` with the sums of the shares' parts."""
    x, hs, dhs, wx = (np.ascontiguousarray(a) for a in (x, hs, dhs, wx))
    n, steps, f, h = _check_shapes(x, wx, wh, None)
    if hs.shape != (n, steps, h) or dhs.shape != hs.shape:
        raise ValueError(f"rnn backward needs hs and dhs of shape {(n, steps, h)}, got {hs.shape} and {dhs.shape}")
    code = _code(activation, hs.dtype)
    wht = np.ascontiguousarray(wh.T)
    dx = np.empty(x.shape, hs.dtype) if need_dx else x  # x stands in for dx's type, never written
    parts = shares(n, steps * h * (2 * f + 2 * h))
    das, grad_now, carry, *grads = workspaces(
        "rnn_backward", ((n, steps, h), (parts, n, h), (parts, n, h), (parts, f, h), (parts, h, h), (parts, h)),
        hs.dtype)
    run(KERNELS[code][1], parts, dhs, x, wx, wht, hs, das, dx, bool(need_dx), grad_now, carry, *grads)
    for out, share in zip((dwx, dwh, db), grads):
        np.add.reduce(share, axis=0, out=out)
    return dx if need_dx else None
