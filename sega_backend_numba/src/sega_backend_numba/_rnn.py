"""Elman recurrent layer: BLAS for the matrix products, one compiled pass per time step for the rest.

Layout: everything stays batch-major (N, T, H), the layout of the layer's input and output, so
the input projection ``x @ Wx`` for all steps is one product with no transposes, the states are
written where they are returned, and the per-step product ``h[t-1] @ Wh`` reads a strided
(N, H) slice that BLAS takes as it is.

Per step the forward pass adds the recurrent product and the bias to the projected input and
applies the activation in one compiled pass over (N, H); the backward pass adds the carried
gradient, multiplies by the activation's derivative (computed from the stored output, exact for
all four activations) and accumulates the bias gradient, again in one pass.

The batch is split into one range of sequences per thread of the team (:mod:`._team`); each
thread runs the whole time loop for its sequences with single-threaded BLAS, and the threads'
shares of the weight and bias gradients are added at the end. Where NumPy's OpenBLAS exposes a
usable ``cblas_?gemm`` (:mod:`._cblas`), a thread's whole share of the forward or backward pass
(projection, time loop, weight gradients) is one compiled call that calls BLAS itself, without
the GIL (forward per 32-sequence share of W4: 27 steps in 306-356 us); otherwise, and for
float64 tanh, the loop runs in Python with one compiled call per step. After a thread's loop its weight
gradients are two products over all its steps at once; ``dWh`` pairs each
state with the next step's gradient by offsetting the flat (N*T, H) arrays by one row, with the
gradients of step 0 zeroed so the pairs that cross from one sequence into the next contribute
nothing (no copies of the state array).

tanh in float32 uses a rational approximation (the one Eigen uses, at most a few units in the
last place from the exact value) because the C library's tanh cannot be vectorised; the float32
sigmoid is computed from it as ``0.5 + 0.5 * tanh(x / 2)`` (absolute error about 1e-7). float64
uses NumPy's vectorised tanh on the step's slice and the exact, exp-based sigmoid.
"""

from __future__ import annotations

import numpy as np

from ._activations import _sigmoid
from ._cblas import NO_TRANS, TRANS, addresses, gemm
from ._jit import jit, scalar
from ._team import team
from ._workspace import workspace

TANH, RELU, SIGMOID, LINEAR = 0, 1, 2, 3
#: float32 sigmoid through the tanh approximation: 0.5 + 0.5 * tanh(x / 2), vectorised.
SIGMOID_VIA_TANH = 4
_CODES = {"tanh": TANH, "relu": RELU, "sigmoid": SIGMOID, "linear": LINEAR}

# Eigen's float32 tanh: odd degree-13 numerator over even degree-6 denominator on [-c, c],
# exact to float32 precision beyond c; below 4e-4, tanh(x) rounds to x itself.
_TANH_CLAMP = 7.99881172180175781
_TANH_TINY = 0.0004
_A1, _A3, _A5, _A7 = 4.89352455891786e-03, 6.37261928875436e-04, 1.48572235717979e-05, 5.12229709037114e-08
_A9, _A11, _A13 = -8.60467152213735e-11, 2.00018790482477e-13, -2.76076847742355e-16
_B0, _B2, _B4, _B6 = 4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04, 1.19825839466702e-06


def _code(activation: str) -> int:
    try:
        return _CODES[activation]
    except KeyError:
        raise ValueError(f"unknown recurrent activation {activation!r}; valid names: {', '.join(_CODES)}") from None


@scalar
def _tanh32(v, like):
    """tanh for float32 (``like`` gives the dtype), branch-free so the loop vectorises."""
    t = like.dtype.type
    x = min(max(v, t(-_TANH_CLAMP)), t(_TANH_CLAMP))
    x2 = x * x
    p = x2 * t(_A13) + t(_A11)
    p = x2 * p + t(_A9)
    p = x2 * p + t(_A7)
    p = x2 * p + t(_A5)
    p = x2 * p + t(_A3)
    p = x2 * p + t(_A1)
    p = x * p
    q = x2 * t(_B6) + t(_B4)
    q = x2 * q + t(_B2)
    q = x2 * q + t(_B0)
    r = p / q
    # The clamp would turn NaN into +-1; a diverging model must see its NaN.
    return v if (abs(v) < t(_TANH_TINY) or v != v) else r


@jit()
def _forward_step(hs, rec, b, t, code, use_rec, lo, hi):
    """``hs[i, t] = act(hs[i, t] + b + rec[i - lo])`` for rows lo..hi-1 (``rec`` skipped at t = 0).

    ``code`` TANH and SIGMOID_VIA_TANH use the float32 tanh approximation; for float64 tanh the
    caller passes LINEAR and applies NumPy's tanh afterwards.
    """
    zero = hs.dtype.type(0)
    one = hs.dtype.type(1)
    h = hs.shape[2]
    for i in range(lo, hi):
        # 1-D row views indexed by the loop counter keep numba's negative-index check out of
        # the inner loops, which then vectorise.
        z = hs[i, t]
        if use_rec:
            r = rec[i - lo]
            for j in range(h):
                z[j] = z[j] + b[j] + r[j]
        else:
            for j in range(h):
                z[j] = z[j] + b[j]
        # One loop per activation so each vectorises on its own.
        if code == TANH:
            for j in range(h):
                z[j] = _tanh32(z[j], hs)
        elif code == RELU:
            for j in range(h):
                v = z[j]
                z[j] = zero if v < zero else v
        elif code == SIGMOID:
            for j in range(h):
                z[j] = _sigmoid(z[j], one)
        elif code == SIGMOID_VIA_TANH:
            half = hs.dtype.type(0.5)
            for j in range(h):
                z[j] = half + half * _tanh32(half * z[j], hs)


@jit()
def _backward_step(dhs, hs, carry, das, db, t, code, use_carry, lo, hi):
    """``das[i, t] = (dhs[i, t] + carry[i - lo]) * act'(hs[i, t])`` for rows lo..hi-1;
    ``db += das[lo:hi, t].sum(0)``."""
    zero = hs.dtype.type(0)
    one = hs.dtype.type(1)
    h = hs.shape[2]
    for i in range(lo, hi):
        d = das[i, t]
        g = dhs[i, t]
        y = hs[i, t]
        if use_carry:
            c = carry[i - lo]
            for j in range(h):
                d[j] = g[j] + c[j]
        else:
            for j in range(h):
                d[j] = g[j]
        if code == TANH:
            for j in range(h):
                d[j] = d[j] * (one - y[j] * y[j])
        elif code == RELU:
            for j in range(h):
                d[j] = d[j] if y[j] > zero else zero
        elif code == SIGMOID:
            for j in range(h):
                d[j] = d[j] * (y[j] * (one - y[j]))
        for j in range(h):
            db[j] += d[j]


@jit()
def _forward_share(address, x, wx, wh, b, hs, rec, code, lo, hi):
    """One thread's whole forward pass over rows lo..hi-1 in one compiled call, BLAS called by
    address (:mod:`._cblas`): the input projection ``hs = x @ wx``, then per step
    ``rec = hs[:, t-1] @ wh`` and :func:`_forward_step`."""
    steps, f, h = x.shape[1], x.shape[2], hs.shape[2]
    zero = hs.dtype.type(0)
    gemm(address, NO_TRANS, NO_TRANS, (hi - lo) * steps, h, f, x, lo * steps * f, f, wx, 0, h, zero,
         hs, lo * steps * h, h)
    for t in range(steps):
        if t:
            gemm(address, NO_TRANS, NO_TRANS, hi - lo, h, h, hs, (lo * steps + t - 1) * h, steps * h,
                 wh, 0, h, zero, rec, 0, h)
        _forward_step(hs, rec, b, t, code, t > 0, lo, hi)


@jit()
def _backward_share(address, dhs, x, wx, wht, hs, das, carry, dwx, dwh, db, dx, need_dx, code, lo, hi):
    """One thread's whole backward pass over rows lo..hi-1 in one compiled call: per step (last
    first) ``carry = das[:, t+1] @ wh.T`` and :func:`_backward_step`; then its shares
    ``dwx = x.T @ das``, ``dwh`` (see :func:`_backward_rows`) and, if ``need_dx``, its rows of
    ``dx = das @ wx.T``. (Without ``need_dx``, ``dx`` may be any array of the right type.)"""
    steps, f, h = x.shape[1], x.shape[2], hs.shape[2]
    zero = hs.dtype.type(0)
    for t in range(steps - 1, -1, -1):
        if t < steps - 1:
            gemm(address, NO_TRANS, NO_TRANS, hi - lo, h, h, das, (lo * steps + t + 1) * h, steps * h,
                 wht, 0, h, zero, carry, 0, h)
        _backward_step(dhs, hs, carry, das, db, t, code, t < steps - 1, lo, hi)
    rows, x0, s0 = (hi - lo) * steps, lo * steps * f, lo * steps * h
    gemm(address, TRANS, NO_TRANS, f, h, rows, x, x0, f, das, s0, h, zero, dwx, 0, h)
    if need_dx:
        gemm(address, NO_TRANS, TRANS, rows, f, h, das, s0, h, wx, 0, h, zero, dx, x0, f)
    if steps > 1:
        for i in range(lo, hi):
            g = das[i, 0]
            for j in range(h):
                g[j] = zero
        gemm(address, TRANS, NO_TRANS, h, h, rows - 1, hs, s0, h, das, s0 + h, h, zero, dwh, 0, h)
    else:
        for i in range(h):
            for j in range(h):
                dwh[i, j] = zero


def _check_shapes(x, wx, wh, b):
    # The compiled steps do not check their indices: refuse mismatched shapes here.
    if x.ndim != 3 or wx.ndim != 2 or wh.ndim != 2:
        raise ValueError(f"rnn needs x (N, T, F), wx (F, H), wh (H, H); got {x.shape}, {wx.shape}, {wh.shape}")
    n, steps, f = x.shape
    h = wh.shape[0]
    if wx.shape != (f, h) or wh.shape != (h, h) or (b is not None and b.shape != (h,)):
        shapes = f"wx {wx.shape}, wh {wh.shape}" + ("" if b is None else f", b {b.shape}")
        raise ValueError(f"rnn with {f} features and {h} units needs wx ({f}, {h}), wh ({h}, {h}), b ({h},); got {shapes}")
    return n, steps, f, h


def _forward_rows(x, wx, wh, b, hs, code, numpy_tanh, lo, hi):
    """The recurrence for sequences lo..hi-1 (one thread's share), written into ``hs``."""
    m, steps, f = hi - lo, x.shape[1], x.shape[2]
    h = wh.shape[0]
    states = hs[lo:hi]
    rec = workspace("rnn_rec", (m, h), hs.dtype)
    address = addresses().get(hs.dtype) if x.dtype == wx.dtype == wh.dtype == hs.dtype else None
    if address is not None and not numpy_tanh:
        _forward_share(address, x, wx, wh, b, hs, rec, code, lo, hi)
        return
    np.matmul(x[lo:hi].reshape(m * steps, f), wx, out=states.reshape(m * steps, h))
    for t in range(steps):
        if t:
            np.matmul(states[:, t - 1], wh, out=rec)
        _forward_step(hs, rec, b, t, code, t > 0, lo, hi)
        if numpy_tanh:
            state = states[:, t]
            np.tanh(state, out=state)


def rnn_forward(x, wx, wh, b, activation):
    """Run the recurrence over the whole sequence, the batch split across the team; ``(hs, None)``."""
    code = _code(activation)
    x = np.ascontiguousarray(x)
    n, steps, f, h = _check_shapes(x, wx, wh, b)
    b = np.ascontiguousarray(b)
    wx = np.ascontiguousarray(wx)
    wh = np.ascontiguousarray(wh)
    hs = np.empty((n, steps, h), np.result_type(x, wx))
    single = hs.dtype == np.float32
    numpy_tanh = code == TANH and not single
    kernel_code = LINEAR if numpy_tanh else (SIGMOID_VIA_TANH if code == SIGMOID and single else code)
    crew = team()
    parts = crew.ranges(n, steps * h * (f + h))
    crew.run(_forward_rows, [(x, wx, wh, b, hs, kernel_code, numpy_tanh, lo, hi) for lo, hi in parts])
    return hs, None


def _backward_rows(dhs, x, wx, wht, hs, das, code, need_dx, dx, lo, hi):
    """BPTT for sequences lo..hi-1: their ``das`` (and ``dx``), and their share of the weight and
    bias gradients, returned as ``(dwx, dwh, db)``."""
    m, steps, f = hi - lo, x.shape[1], x.shape[2]
    h = wht.shape[0]
    grads, states = das[lo:hi], hs[lo:hi]
    carry = workspace("rnn_carry", (m, h), hs.dtype)
    dbias = np.zeros(h, hs.dtype)
    address = addresses().get(hs.dtype)
    if address is not None and x.dtype == wx.dtype == wht.dtype == dhs.dtype == hs.dtype:
        dwx, dwh = np.empty((f, h), hs.dtype), np.empty((h, h), hs.dtype)
        _backward_share(address, dhs, x, wx, wht, hs, das, carry, dwx, dwh, dbias,
                        das if dx is None else dx, need_dx, code, lo, hi)
        return dwx, dwh, dbias
    for t in range(steps - 1, -1, -1):
        if t < steps - 1:
            np.matmul(grads[:, t + 1], wht, out=carry)
        _backward_step(dhs, hs, carry, das, dbias, t, code, t < steps - 1, lo, hi)
    flat = grads.reshape(m * steps, h)
    dwx = np.matmul(x[lo:hi].reshape(m * steps, f).T, flat)
    if need_dx:
        np.matmul(flat, wx.T, out=dx[lo:hi].reshape(m * steps, f))
    # dWh pairs each state with the next step's gradient by offsetting the flat arrays by one
    # row; zeroing step 0's gradients makes the pairs that cross into the next sequence add 0.
    if steps > 1:
        grads[:, 0] = 0
        dwh = np.matmul(states.reshape(m * steps, h)[:-1].T, flat[1:])
    else:
        dwh = np.zeros((h, h), hs.dtype)
    return dwx, dwh, dbias


def rnn_backward(dhs, x, wx, wh, hs, activation, ctx, dwx, dwh, db, need_dx):
    """Backpropagation through time, the batch split across the team; overwrites ``dwx``, ``dwh``
    and ``db`` with the sums of the threads' shares."""
    code = _code(activation)
    x = np.ascontiguousarray(x)
    hs = np.ascontiguousarray(hs)
    dhs = np.ascontiguousarray(dhs)
    wx = np.ascontiguousarray(wx)
    n, steps, f, h = _check_shapes(x, wx, wh, None)
    if hs.shape != (n, steps, h) or dhs.shape != hs.shape:
        raise ValueError(f"rnn backward needs hs and dhs of shape {(n, steps, h)}, got {hs.shape} and {dhs.shape}")
    das = workspace("rnn_das", (n, steps, h), hs.dtype)
    # A contiguous copy of Wh.T makes each step's product a little faster than the strided view.
    wht = np.ascontiguousarray(wh.T)
    dx = np.empty(x.shape, hs.dtype) if need_dx else None
    crew = team()
    parts = crew.ranges(n, steps * h * (2 * f + 2 * h))
    shares = crew.run(_backward_rows, [(dhs, x, wx, wht, hs, das, code, need_dx, dx, lo, hi) for lo, hi in parts])
    for out, k in ((dwx, 0), (dwh, 1), (db, 2)):
        out[...] = shares[0][k]
        for share in shares[1:]:
            out += share[k]
    return dx
