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


@hookimpl
def sega_lstm_forward(x, wx, wh, b):
    """Gates in PyTorch's order (input, forget, cell, output); ``ctx`` keeps gates and cells."""
    hidden = wh.shape[0]
    x_t = x.transpose(1, 0, 2)
    gates = np.matmul(x_t, wx)  # (T, N, 4H): every step's input projection, then activated in place
    gates += b
    t_steps, n = gates.shape[:2]
    cells = np.empty((t_steps, n, hidden), dtype=x.dtype)
    hs = np.empty_like(cells)
    h = np.zeros((n, hidden), dtype=x.dtype)
    c = np.zeros_like(h)
    for step in range(t_steps):
        a = gates[step]
        a += h @ wh
        a[:, : 2 * hidden] = _sigmoid(a[:, : 2 * hidden])
        np.tanh(a[:, 2 * hidden : 3 * hidden], out=a[:, 2 * hidden : 3 * hidden])
        a[:, 3 * hidden :] = _sigmoid(a[:, 3 * hidden :])
        i, f, g, o = a[:, :hidden], a[:, hidden : 2 * hidden], a[:, 2 * hidden : 3 * hidden], a[:, 3 * hidden :]
        c = f * c + i * g
        cells[step] = c
        h = o * np.tanh(c)
        hs[step] = h
    return np.ascontiguousarray(hs.transpose(1, 0, 2)), (gates, cells, hs)


@hookimpl
def sega_lstm_backward(dhs, x, wx, wh, hs, ctx, dwx, dwh, db, need_dx):
    """Backpropagation through time; the weight gradients in three products after the loop."""
    gates, cells, hs_t = ctx
    hidden = wh.shape[0]
    t_steps, n = gates.shape[:2]
    dhs_t = dhs.transpose(1, 0, 2)
    das = np.empty_like(gates)
    dh = np.zeros((n, hidden), dtype=x.dtype)
    dc = np.zeros_like(dh)
    wh_t = np.ascontiguousarray(wh.T)
    for step in range(t_steps - 1, -1, -1):
        a = gates[step]
        i, f, g, o = a[:, :hidden], a[:, hidden : 2 * hidden], a[:, 2 * hidden : 3 * hidden], a[:, 3 * hidden :]
        tc = np.tanh(cells[step])
        dh = dh + dhs_t[step]
        dc = dc + dh * o * (1 - tc * tc)
        c_prev = cells[step - 1] if step else 0
        da = das[step]
        da[:, :hidden] = dc * g * i * (1 - i)
        da[:, hidden : 2 * hidden] = dc * c_prev * f * (1 - f)
        da[:, 2 * hidden : 3 * hidden] = dc * i * (1 - g * g)
        da[:, 3 * hidden :] = dh * tc * o * (1 - o)
        dc = dc * f
        dh = da @ wh_t
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
