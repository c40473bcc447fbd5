"""Elman recurrent layer: the batch split across the team, each thread running the whole time
loop for its sequences.

The batch is cut into one range of sequences per thread of the team (:mod:`._team`). Where
NumPy's OpenBLAS exposes a usable ``cblas_?gemm`` (:mod:`._cblas`), a thread's whole share of
the forward or backward pass (projection, time loop, weight gradients) is one compiled call of
:mod:`._recurrence`, handed to the team as a job (:mod:`._jobs`) that its workers run without
ever taking the GIL (forward per 32-sequence share of W4: 27 steps in 306-356 us). Otherwise,
and for float64 tanh, each thread runs the loop in Python with one compiled call per step. The
threads' shares of the weight and bias gradients are added up at the end.
"""

from __future__ import annotations

import numpy as np

from ._cblas import addresses
from ._jobs import rnn_backward_jobs, rnn_forward_jobs, runner
from ._recurrence import CODES, LINEAR, SIGMOID, SIGMOID_VIA_TANH, TANH, backward_step, forward_step
from ._team import cut, team
from ._workspace import workspace, workspaces


def _code(activation: str) -> int:
    try:
        return CODES[activation]
    except KeyError:
        raise ValueError(f"unknown recurrent activation {activation!r}; valid names: {', '.join(CODES)}") from None


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
    """The recurrence for sequences lo..hi-1 (one thread's share) driven from Python, one
    compiled call per step: for when BLAS cannot be called from compiled code, and float64 tanh."""
    m, steps, f = hi - lo, x.shape[1], x.shape[2]
    h = wh.shape[0]
    states = hs[lo:hi]
    rec = workspace("rnn_rec", (m, h), hs.dtype)
    np.matmul(x[lo:hi].reshape(m * steps, f), wx, out=states.reshape(m * steps, h))
    for t in range(steps):
        if t:
            np.matmul(states[:, t - 1], wh, out=rec)
        else:
            rec.fill(0)
        forward_step(hs, rec, b, t, code, lo, hi)
        if numpy_tanh:
            state = states[:, t]
            np.tanh(state, out=state)


def _gemm_address(*arrays):
    """The cblas gemm for these arrays' dtype if they all share one and it was found, else None."""
    dtype = arrays[0].dtype
    if any(a.dtype != dtype for a in arrays):
        return None
    return addresses().get(dtype)


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
    parts = crew.shares(n * steps * h * (f + h), n)
    address = None if numpy_tanh else _gemm_address(x, wx, wh, b, hs)
    if address is None:
        crew.run(_forward_rows, [(x, wx, wh, b, hs, kernel_code, numpy_tanh, lo, hi) for lo, hi in cut(n, parts)])
    else:
        rec = workspace("rnn_rec", (n, h), hs.dtype)
        jobs = rnn_forward_jobs(runner("rnn_forward", hs.dtype), address, x, wx, wh, b, hs, rec, kernel_code, parts)
        crew.run_jobs(jobs)
    return hs, None


def _backward_rows(dhs, x, wx, wht, hs, das, code, need_dx, dx, lo, hi):
    """BPTT for sequences lo..hi-1 driven from Python, one compiled call per step: their ``das``
    (and ``dx``), and their share of the weight and bias gradients, returned as ``(dwx, dwh, db)``."""
    m, steps, f = hi - lo, x.shape[1], x.shape[2]
    h = wht.shape[0]
    grads, states = das[lo:hi], hs[lo:hi]
    carry = workspace("rnn_carry", (m, h), hs.dtype)
    dbias = np.zeros(h, hs.dtype)
    for t in range(steps - 1, -1, -1):
        if t < steps - 1:
            np.matmul(grads[:, t + 1], wht, out=carry)
        else:
            carry.fill(0)
        backward_step(dhs, hs, carry, das, dbias, t, code, lo, hi)
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
    wh = np.ascontiguousarray(wh)
    dx = np.empty(x.shape, hs.dtype) if need_dx else None
    crew = team()
    parts = crew.shares(n * steps * h * (2 * f + 2 * h), n)
    address = _gemm_address(dhs, x, wx, wh, hs)
    if address is None:
        # A contiguous copy of Wh.T makes each step's product twice as fast as the strided view.
        wht = np.ascontiguousarray(wh.T)
        das = workspace("rnn_das", (n, steps, h), hs.dtype)
        shares = crew.run(_backward_rows, [(dhs, x, wx, wht, hs, das, code, need_dx, dx, lo, hi)
                                           for lo, hi in cut(n, parts)])
        for out, k in ((dwx, 0), (dwh, 1), (db, 2)):
            out[...] = shares[0][k]
            for share in shares[1:]:
                out += share[k]
        return dx
    dtype = hs.dtype
    das, carry, wht, *grads = workspaces(
        "rnn_backward", ((n, steps, h), (n, h), (parts, h, h), (parts, f, h), (parts, h, h), (parts, h)), dtype)
    crew.run_jobs(rnn_backward_jobs(runner("rnn_backward", dtype), address, dhs, x, wx, wh, hs, das, carry, wht,
                                    *grads, das if dx is None else dx, need_dx, code, parts))
    for out, shares in zip((dwx, dwh, db), grads):
        np.add.reduce(shares, axis=0, out=out)
    return dx
