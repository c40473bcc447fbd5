"""LSTM and GRU over whole sequences, time-major inside like the Elman layer.

The input projections of every step are one matrix product before the time loop, and the
weight gradients two or three products after it; the loop itself does one product with the
recurrent weights per step, forward and backward.
"""

from __future__ import annotations

import numpy as np

from sega_core.hookspecs import hookimpl


def _sigmoid(a):
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(a.dtype, copy=False)


def _weight_gradients(x_t, das, dwx, dwh_parts, db_parts):
    """``dwx = X^T dA`` over every step; each ``(dwh, h_in, dA)`` in ``dwh_parts`` likewise."""
    t, n, f = x_t.shape
    np.matmul(x_t.reshape(t * n, f).T, das.reshape(t * n, -1), out=dwx)
    for dwh, h_in, d in dwh_parts:
        np.matmul(h_in.reshape(-1, h_in.shape[-1]).T, d.reshape(-1, d.shape[-1]), out=dwh)
    for db, d in db_parts:
        np.sum(d.reshape(-1, d.shape[-1]), axis=0, out=db)


def _input_gradient(das, wx, need_dx):
    if not need_dx:
        return None
    t, n, _ = das.shape
    return np.ascontiguousarray((das.reshape(t * n, -1) @ wx.T).reshape(t, n, -1).transpose(1, 0, 2))


def _lstm_scale(hidden, dtype):
    """Per gate column: 1/2 for the sigmoid gates (i, f, o), 1 for the cell gate (g).

    ``sigmoid(a) = 1/2 + tanh(a/2) / 2``, so with the sigmoid gates' pre-activations halved one
    ``tanh`` over the whole gate row, then ``* s + (1 - s)``, activates all four gates: three
    array operations a step instead of a dozen. Halving is exact in floating point.
    """
    s = np.full(4 * hidden, 0.5, dtype=dtype)
    s[2 * hidden : 3 * hidden] = 1
    return s


@hookimpl
def sega_lstm_forward(x, wx, wh, b):
    """Gates in PyTorch's order (input, forget, cell, output); ``ctx`` keeps gates, cells and
    the cells' tanh."""
    hidden = wh.shape[0]
    s = _lstm_scale(hidden, x.dtype)
    offset = 1 - s
    wh_s = wh * s
    gates = np.matmul(x.transpose(1, 0, 2), wx * s)  # (T, N, 4H): every step's input projection
    gates += b * s
    t_steps, n = gates.shape[:2]
    cells = np.empty((t_steps, n, hidden), dtype=x.dtype)
    tcells = np.empty_like(cells)
    hs = np.empty_like(cells)
    rec = np.empty((n, 4 * hidden), dtype=x.dtype)
    fc = np.empty((n, hidden), dtype=x.dtype)
    for step in range(t_steps):
        a = gates[step]
        if step:
            np.matmul(hs[step - 1], wh_s, out=rec)
            a += rec
        np.tanh(a, out=a)
        a *= s
        a += offset
        i, f, g, o = a[:, :hidden], a[:, hidden : 2 * hidden], a[:, 2 * hidden : 3 * hidden], a[:, 3 * hidden :]
        c = np.multiply(i, g, out=cells[step])
        if step:
            c += np.multiply(f, cells[step - 1], out=fc)
        np.tanh(c, out=tcells[step])
        np.multiply(o, tcells[step], out=hs[step])
    return np.ascontiguousarray(hs.transpose(1, 0, 2)), (gates, cells, tcells, hs)


def _lstm_local_derivatives(gates, cells, tcells):
    """Every step's factors from a cell's gradient to the gates' (i, f, g in the first three
    blocks), from the state's gradient to the output gate's (last block), and ``q`` from the
    state's gradient to the cell's: the whole sequence in a few array operations, so that the
    time loop is left with products of two arrays."""
    t_steps, n, hidden = cells.shape
    g4 = gates.reshape(t_steps, n, 4, hidden)
    i, f, g, o = g4[:, :, 0], g4[:, :, 1], g4[:, :, 2], g4[:, :, 3]
    p = np.empty_like(g4)
    np.subtract(1, g4, out=p)
    p *= g4  # a sigmoid's derivative a (1 - a); the cell gate's is redone below
    p[:, :, 0] *= g
    p[1:, :, 1] *= cells[:-1]
    p[0, :, 1] = 0  # the cell before step 0 is zero
    np.multiply(g, g, out=p[:, :, 2])
    np.subtract(1, p[:, :, 2], out=p[:, :, 2])
    p[:, :, 2] *= i
    p[:, :, 3] *= tcells
    q = np.multiply(tcells, tcells)
    np.subtract(1, q, out=q)
    q *= o
    return p, q, f


@hookimpl
def sega_lstm_backward(dhs, x, wx, wh, hs, ctx, dwx, dwh, db, need_dx):
    """Backpropagation through time; the weight gradients in three products after the loop."""
    gates, cells, tcells, hs_t = ctx
    hidden = wh.shape[0]
    t_steps, n = gates.shape[:2]
    das, q, f = _lstm_local_derivatives(gates, cells, tcells)  # das is filled in place, step by step
    dh = np.array(dhs.transpose(1, 0, 2))  # (T, N, H), each step's gradient then gathers the carry
    dc = np.zeros((n, hidden), dtype=x.dtype)
    tmp = np.empty_like(dc)
    wh_t = np.ascontiguousarray(wh.T)
    for step in range(t_steps - 1, -1, -1):
        d, da = dh[step], das[step]
        dc += np.multiply(d, q[step], out=tmp)
        da[:, :3] *= dc[:, None, :]
        da[:, 3] *= d
        if step:
            dc *= f[step]
            dh[step - 1] += np.matmul(da.reshape(n, 4 * hidden), wh_t, out=tmp)
    das = das.reshape(t_steps, n, 4 * hidden)
    parts = [(dwh, hs_t[:-1], das[1:])] if t_steps > 1 else []
    if t_steps == 1:
        dwh[...] = 0
    _weight_gradients(x.transpose(1, 0, 2), das, dwx, parts, [(db, das)])
    return _input_gradient(das, wx, need_dx)


@hookimpl
def sega_gru_forward(x, wx, wh, bx, bh, reset_after):
    """Gates in PyTorch's order (reset, update, new); ``ctx`` keeps what the backward pass needs."""
    hidden = wh.shape[0]
    ax = np.matmul(x.transpose(1, 0, 2), wx)  # (T, N, 3H)
    ax += bx
    t_steps, n = ax.shape[:2]
    gates = np.empty_like(ax)  # r, z, n after their activations
    ah_n = np.empty((t_steps, n, hidden), dtype=x.dtype)  # the recurrent input of the new gate
    hs = np.empty((t_steps, n, hidden), dtype=x.dtype)
    h = np.zeros((n, hidden), dtype=x.dtype)
    for step in range(t_steps):
        if reset_after:
            ah = h @ wh + bh
            rz = _sigmoid(ax[step, :, : 2 * hidden] + ah[:, : 2 * hidden])
            r = rz[:, :hidden]
            ah_n[step] = ah[:, 2 * hidden :]
            new = np.tanh(ax[step, :, 2 * hidden :] + r * ah_n[step])
        else:
            rz = _sigmoid(ax[step, :, : 2 * hidden] + h @ wh[:, : 2 * hidden] + bh[: 2 * hidden])
            r = rz[:, :hidden]
            ah_n[step] = r * h  # the reset state, multiplied by the new gate's weights
            new = np.tanh(ax[step, :, 2 * hidden :] + ah_n[step] @ wh[:, 2 * hidden :] + bh[2 * hidden :])
        gates[step, :, : 2 * hidden] = rz
        gates[step, :, 2 * hidden :] = new
        z = rz[:, hidden:]
        h = (1 - z) * new + z * h
        hs[step] = h
    return np.ascontiguousarray(hs.transpose(1, 0, 2)), (gates, ah_n, hs)


@hookimpl
def sega_gru_backward(dhs, x, wx, wh, bx, bh, reset_after, hs, ctx, dwx, dwh, dbx, dbh, need_dx):
    """Backpropagation through time; the weight gradients in products after the loop."""
    gates, ah_n, hs_t = ctx
    hidden = wh.shape[0]
    t_steps, n = gates.shape[:2]
    dhs_t = dhs.transpose(1, 0, 2)
    dax = np.empty_like(gates)
    dah = np.empty_like(gates)
    dh = np.zeros((n, hidden), dtype=x.dtype)
    wh_t = np.ascontiguousarray(wh.T)
    zero = np.zeros((n, hidden), dtype=x.dtype)
    for step in range(t_steps - 1, -1, -1):
        r, z, new = gates[step, :, :hidden], gates[step, :, hidden : 2 * hidden], gates[step, :, 2 * hidden :]
        h_prev = hs_t[step - 1] if step else zero
        dh = dh + dhs_t[step]
        dn = dh * (1 - z) * (1 - new * new)
        dz = dh * (h_prev - new) * z * (1 - z)
        dh_prev = dh * z
        dax[step, :, 2 * hidden :] = dn
        dax[step, :, hidden : 2 * hidden] = dz
        dah[step, :, hidden : 2 * hidden] = dz
        if reset_after:
            dr = dn * ah_n[step] * r * (1 - r)
            dah[step, :, 2 * hidden :] = dn * r
        else:
            d_reset_state = dn @ wh_t[2 * hidden :]
            dr = d_reset_state * h_prev * r * (1 - r)
            dh_prev += d_reset_state * r
            dah[step, :, 2 * hidden :] = dn
        dax[step, :, :hidden] = dr
        dah[step, :, :hidden] = dr
        if reset_after:
            dh = dh_prev + dah[step] @ wh_t
        else:
            dh = dh_prev + dah[step, :, : 2 * hidden] @ wh_t[: 2 * hidden]
    if reset_after:
        parts = [(dwh, hs_t[:-1], dah[1:])] if t_steps > 1 else []
        if t_steps == 1:
            dwh[...] = 0
    else:
        dwh_rz, dwh_n = np.empty((hidden, 2 * hidden), dtype=x.dtype), np.empty((hidden, hidden), dtype=x.dtype)
        parts = [(dwh_n, ah_n, dah[:, :, 2 * hidden :])]
        if t_steps > 1:
            parts.append((dwh_rz, hs_t[:-1], dah[1:, :, : 2 * hidden]))
        else:
            dwh_rz[...] = 0
    _weight_gradients(x.transpose(1, 0, 2), dax, dwx, parts, [(dbx, dax), (dbh, dah)])
    if not reset_after:
        dwh[:, : 2 * hidden] = dwh_rz
        dwh[:, 2 * hidden :] = dwh_n
    return _input_gradient(dax, wx, need_dx)
