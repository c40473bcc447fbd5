"""LSTM and GRU on the GPU: per step one cuBLAS GEMM with the recurrent weights and one fused
elementwise kernel for all the gate arithmetic (two of each for a GRU without reset_after).

As in the Elman layer, the input projection of every step is one GEMM before the loop (batch
major: row ``sample * T + step``), the kernels write the states both time-major (the next
step's GEMM operand and the backward pass's ``ctx``) and batch-major (the returned ``hs``), and
backpropagation through time writes each step's gate gradients time-major so the weight
gradients are single GEMMs over every step afterwards. A step's kernel runs one thread per
(sample, unit) and reads that unit's columns of every gate.
"""

from __future__ import annotations

from ._cupy import contiguous, cupy, matmul_into

# The element's sample and unit; rows of the batch-major projection and of (N, k*H) step arrays.
_AT = """
    const long long sample = i / hidden;
    const int unit = (int)(i % hidden);
    const long long xrow = (sample * steps + step) * width;
    const long long srow = sample * width;
    const long long tm = (long long)step * n * hidden + i;      // (T, N, H) time-major
    const long long bm = (sample * steps + step) * hidden + unit;  // (N, T, H) batch-major
    const long long gm = (long long)step * n * width + srow;     // a step's gate row, time-major
"""


def _sigmoid(a: str) -> str:
    return f"({a} >= (T)0 ? (T)1 / ((T)1 + exp(-{a})) : exp({a}) / ((T)1 + exp({a})))"


_lstm_step = cupy.ElementwiseKernel(
    "raw T xw, raw T hw, raw T b, int32 step, int32 steps, int64 n, int32 hidden, int32 width",
    "raw T gates, raw T cells, raw T hs_tm, raw T hs",
    _AT
    + f"""
    T a[4];
    for (int g = 0; g < 4; ++g)
        a[g] = xw[xrow + g * hidden + unit] + b[g * hidden + unit] + (step > 0 ? hw[srow + g * hidden + unit] : (T)0);
    const T ig = {_sigmoid("a[0]")}, fg = {_sigmoid("a[1]")}, gg = tanh(a[2]), og = {_sigmoid("a[3]")};
    const T c = fg * (step > 0 ? cells[tm - n * hidden] : (T)0) + ig * gg;
    const T h = og * tanh(c);
    gates[gm + unit] = ig; gates[gm + hidden + unit] = fg; gates[gm + 2 * hidden + unit] = gg; gates[gm + 3 * hidden + unit] = og;
    cells[tm] = c; hs_tm[tm] = h; hs[bm] = h;
    """,
    "sega_lstm_step",
)

_lstm_back = cupy.ElementwiseKernel(
    "raw T dhs, raw T carry, raw T gates, raw T cells, int32 step, int32 steps, int64 n, int32 hidden, int32 width, int32 last",
    "raw T dc, raw T das",
    _AT
    + """
    const T ig = gates[gm + unit], fg = gates[gm + hidden + unit], gg = gates[gm + 2 * hidden + unit], og = gates[gm + 3 * hidden + unit];
    const T tc = tanh(cells[tm]);
    const T dh = dhs[bm] + (last ? (T)0 : carry[i]);
    const T dcell = (last ? (T)0 : dc[i]) + dh * og * ((T)1 - tc * tc);
    const T c_prev = step > 0 ? cells[tm - n * hidden] : (T)0;
    das[gm + unit] = dcell * gg * ig * ((T)1 - ig);
    das[gm + hidden + unit] = dcell * c_prev * fg * ((T)1 - fg);
    das[gm + 2 * hidden + unit] = dcell * ig * ((T)1 - gg * gg);
    das[gm + 3 * hidden + unit] = dh * tc * og * ((T)1 - og);
    dc[i] = dcell * fg;
    """,
    "sega_lstm_back",
)


def _projection(x, wx):
    n, t, f = x.shape
    return cupy.matmul(x.reshape(n * t, f), wx)


def _weight_and_input_gradients(x, das_tm, dwx, need_dx, wx):
    """``dwx`` over every step (time-major), and the input gradient in (N, T, F) order."""
    n, t, f = x.shape
    x_tm = cupy.ascontiguousarray(x.transpose(1, 0, 2)).reshape(t * n, f)
    flat = das_tm.reshape(t * n, -1)
    matmul_into(x_tm.T, flat, dwx)
    if not need_dx:
        return None
    return cupy.ascontiguousarray(cupy.matmul(flat, wx.T).reshape(t, n, f).transpose(1, 0, 2))


def _previous_states_gradient(hs_tm, d_tm, out):
    """``out = sum_t h[t-1]^T d[t]`` (h[-1] = 0): one GEMM over steps 1..T-1."""
    t, n, hidden = hs_tm.shape
    if t > 1:
        matmul_into(hs_tm[:-1].reshape((t - 1) * n, hidden).T, d_tm[1:].reshape((t - 1) * n, -1), out)
    else:
        out.fill(0)


def lstm_forward(x, wx, wh, b):
    """Run the LSTM; ``ctx`` is (gates, cells, states), all time-major."""
    x, b = contiguous(x), contiguous(b)
    n, t, _ = x.shape
    hidden = wh.shape[0]
    xw = _projection(x, wx)
    gates = cupy.empty((t, n, 4 * hidden), dtype=xw.dtype)
    cells = cupy.empty((t, n, hidden), dtype=xw.dtype)
    hs_tm = cupy.empty((t, n, hidden), dtype=xw.dtype)
    hs = cupy.empty((n, t, hidden), dtype=xw.dtype)
    hw = cupy.empty((n, 4 * hidden), dtype=xw.dtype)
    for step in range(t):
        if step:
            cupy.matmul(hs_tm[step - 1], wh, out=hw)
        _lstm_step(xw, hw, b, step, t, n, hidden, 4 * hidden, gates, cells, hs_tm, hs, size=n * hidden)
    return hs, (gates, cells, hs_tm)


def lstm_backward(dhs, x, wx, wh, hs, ctx, dwx, dwh, db, need_dx):
    """Backpropagation through time; overwrites ``dwx``, ``dwh``, ``db``."""
    gates, cells, hs_tm = ctx
    dhs, x = contiguous(dhs), contiguous(x)
    n, t, _ = x.shape
    hidden = wh.shape[0]
    das = cupy.empty((t, n, 4 * hidden), dtype=dhs.dtype)
    carry = cupy.empty((n, hidden), dtype=dhs.dtype)
    dc = cupy.empty((n, hidden), dtype=dhs.dtype)
    wh_t = wh.T
    for step in range(t - 1, -1, -1):
        _lstm_back(dhs, carry, gates, cells, step, t, n, hidden, 4 * hidden, 1 if step == t - 1 else 0, dc, das, size=n * hidden)
        if step:
            cupy.matmul(das[step], wh_t, out=carry)
    _previous_states_gradient(hs_tm, das, dwh)
    cupy.sum(das.reshape(t * n, 4 * hidden), axis=0, out=db)
    return _weight_and_input_gradients(x, das, dwx, need_dx, wx)


# GRU, PyTorch's gates: reset r, update z, new n. `ah` is this step's h[t-1] @ Wh (+ bh inside).
_gru_step = cupy.ElementwiseKernel(
    "raw T xw, raw T ah, raw T bx, raw T bh, int32 step, int32 steps, int64 n, int32 hidden, int32 width",
    "raw T gates, raw T ahn, raw T hs_tm, raw T hs",
    _AT
    + f"""
    const T hr = (step > 0 ? ah[srow + unit] : (T)0) + bh[unit];
    const T hz = (step > 0 ? ah[srow + hidden + unit] : (T)0) + bh[hidden + unit];
    const T hn = (step > 0 ? ah[srow + 2 * hidden + unit] : (T)0) + bh[2 * hidden + unit];
    const T ar = xw[xrow + unit] + bx[unit] + hr, az = xw[xrow + hidden + unit] + bx[hidden + unit] + hz;
    const T r = {_sigmoid("ar")}, z = {_sigmoid("az")};
    const T nn = tanh(xw[xrow + 2 * hidden + unit] + bx[2 * hidden + unit] + r * hn);
    const T h_prev = step > 0 ? hs_tm[tm - n * hidden] : (T)0;
    const T h = ((T)1 - z) * nn + z * h_prev;
    gates[gm + unit] = r; gates[gm + hidden + unit] = z; gates[gm + 2 * hidden + unit] = nn;
    ahn[tm] = hn; hs_tm[tm] = h; hs[bm] = h;
    """,
    "sega_gru_step",
)

# GRU without reset_after, first half: the reset and update gates, and r * h[t-1].
_gru_gates = cupy.ElementwiseKernel(
    "raw T xw, raw T ah, raw T bx, raw T bh, raw T hs_tm, int32 step, int32 steps, int64 n, int32 hidden, int32 width",
    "raw T gates, raw T rh",
    _AT
    + f"""
    const T ar = xw[xrow + unit] + bx[unit] + bh[unit] + (step > 0 ? ah[sample * 2 * hidden + unit] : (T)0);
    const T az = xw[xrow + hidden + unit] + bx[hidden + unit] + bh[hidden + unit]
        + (step > 0 ? ah[sample * 2 * hidden + hidden + unit] : (T)0);
    const T r = {_sigmoid("ar")}, z = {_sigmoid("az")};
    gates[gm + unit] = r; gates[gm + hidden + unit] = z;
    rh[tm] = r * (step > 0 ? hs_tm[tm - n * hidden] : (T)0);
    """,
    "sega_gru_gates",
)

# Second half: the new gate from (r * h[t-1]) @ Wh_n, and the state.
_gru_new = cupy.ElementwiseKernel(
    "raw T xw, raw T rhw, raw T bx, raw T bh, int32 step, int32 steps, int64 n, int32 hidden, int32 width",
    "raw T gates, raw T hs_tm, raw T hs",
    _AT
    + """
    const T nn = tanh(xw[xrow + 2 * hidden + unit] + bx[2 * hidden + unit] + rhw[i] + bh[2 * hidden + unit]);
    const T z = gates[gm + hidden + unit];
    const T h = ((T)1 - z) * nn + z * (step > 0 ? hs_tm[tm - n * hidden] : (T)0);
    gates[gm + 2 * hidden + unit] = nn; hs_tm[tm] = h; hs[bm] = h;
    """,
    "sega_gru_new",
)

# Backward through one step. `carry` is the recurrent GEMM's share of dL/dh[t], `direct` the
# rest (z * dh from the step after); the step writes its own `direct` for the step before.
_GRU_BACK_HEAD = """
    const T r = gates[gm + unit], z = gates[gm + hidden + unit], nn = gates[gm + 2 * hidden + unit];
    const T h_prev = step > 0 ? hs_tm[tm - n * hidden] : (T)0;
    const T dh = dhs[bm] + (last ? (T)0 : carry[i] + direct[i]);
    const T dn = dh * ((T)1 - z) * ((T)1 - nn * nn);
    const T dz = dh * (h_prev - nn) * z * ((T)1 - z);
    dax[gm + hidden + unit] = dz; dah[gm + hidden + unit] = dz; dax[gm + 2 * hidden + unit] = dn;
"""

_gru_back = cupy.ElementwiseKernel(
    "raw T dhs, raw T carry, raw T gates, raw T ahn, raw T hs_tm, int32 step, int32 steps, int64 n, int32 hidden, "
    "int32 width, int32 last",
    "raw T direct, raw T dax, raw T dah",
    _AT
    + _GRU_BACK_HEAD
    + """
    const T dr = dn * ahn[tm] * r * ((T)1 - r);
    dax[gm + unit] = dr; dah[gm + unit] = dr; dah[gm + 2 * hidden + unit] = dn * r;
    direct[i] = dh * z;
    """,
    "sega_gru_back",
)

_gru_back_new = cupy.ElementwiseKernel(
    "raw T dhs, raw T carry, raw T gates, raw T hs_tm, int32 step, int32 steps, int64 n, int32 hidden, int32 width, "
    "int32 last",
    "raw T direct, raw T dax, raw T dah",
    _AT + _GRU_BACK_HEAD + "dah[gm + 2 * hidden + unit] = dn; direct[i] = dh * z;",
    "sega_gru_back_new",
)

# Without reset_after, the reset gate's gradient comes through (r * h[t-1]) @ Wh_n.
_gru_back_reset = cupy.ElementwiseKernel(
    "raw T drh, raw T gates, raw T hs_tm, int32 step, int32 steps, int64 n, int32 hidden, int32 width",
    "raw T direct, raw T dax, raw T dah",
    _AT
    + """
    const T r = gates[gm + unit];
    const T h_prev = step > 0 ? hs_tm[tm - n * hidden] : (T)0;
    const T dr = drh[i] * h_prev * r * ((T)1 - r);
    dax[gm + unit] = dr; dah[gm + unit] = dr;
    direct[i] += drh[i] * r;
    """,
    "sega_gru_back_reset",
)


def gru_forward(x, wx, wh, bx, bh, reset_after):
    """Run the GRU; ``ctx`` is (gates, the new gate's recurrent input, states), time-major."""
    x, bx, bh = contiguous(x), contiguous(bx), contiguous(bh)
    n, t, _ = x.shape
    hidden = wh.shape[0]
    xw = _projection(x, wx)
    gates = cupy.empty((t, n, 3 * hidden), dtype=xw.dtype)
    inner = cupy.empty((t, n, hidden), dtype=xw.dtype)  # reset_after: h @ Wh_n + bh_n; else r * h
    hs_tm = cupy.empty((t, n, hidden), dtype=xw.dtype)
    hs = cupy.empty((n, t, hidden), dtype=xw.dtype)
    size = n * hidden
    if reset_after:
        ah = cupy.empty((n, 3 * hidden), dtype=xw.dtype)
        for step in range(t):
            if step:
                cupy.matmul(hs_tm[step - 1], wh, out=ah)
            _gru_step(xw, ah, bx, bh, step, t, n, hidden, 3 * hidden, gates, inner, hs_tm, hs, size=size)
        return hs, (gates, inner, hs_tm)
    wh_rz, wh_n = wh[:, : 2 * hidden], wh[:, 2 * hidden :]
    ah = cupy.empty((n, 2 * hidden), dtype=xw.dtype)
    rhw = cupy.empty((n, hidden), dtype=xw.dtype)
    for step in range(t):
        if step:
            cupy.matmul(hs_tm[step - 1], wh_rz, out=ah)
        _gru_gates(xw, ah, bx, bh, hs_tm, step, t, n, hidden, 3 * hidden, gates, inner, size=size)
        cupy.matmul(inner[step], wh_n, out=rhw)
        _gru_new(xw, rhw, bx, bh, step, t, n, hidden, 3 * hidden, gates, hs_tm, hs, size=size)
    return hs, (gates, inner, hs_tm)


def gru_backward(dhs, x, wx, wh, bx, bh, reset_after, hs, ctx, dwx, dwh, dbx, dbh, need_dx):
    """Backpropagation through time; overwrites ``dwx``, ``dwh``, ``dbx``, ``dbh``."""
    gates, inner, hs_tm = ctx
    dhs, x = contiguous(dhs), contiguous(x)
    n, t, _ = x.shape
    hidden = wh.shape[0]
    dax = cupy.empty((t, n, 3 * hidden), dtype=dhs.dtype)
    dah = cupy.empty((t, n, 3 * hidden), dtype=dhs.dtype)
    carry = cupy.empty((n, hidden), dtype=dhs.dtype)
    direct = cupy.empty((n, hidden), dtype=dhs.dtype)
    size = n * hidden
    if reset_after:
        wh_t = wh.T
        for step in range(t - 1, -1, -1):
            last = 1 if step == t - 1 else 0
            _gru_back(dhs, carry, gates, inner, hs_tm, step, t, n, hidden, 3 * hidden, last, direct, dax, dah, size=size)
            if step:
                cupy.matmul(dah[step], wh_t, out=carry)
        _previous_states_gradient(hs_tm, dah, dwh)
    else:
        wh_rz_t, wh_n_t = wh[:, : 2 * hidden].T, wh[:, 2 * hidden :].T
        drh = cupy.empty((n, hidden), dtype=dhs.dtype)
        for step in range(t - 1, -1, -1):
            last = 1 if step == t - 1 else 0
            _gru_back_new(dhs, carry, gates, hs_tm, step, t, n, hidden, 3 * hidden, last, direct, dax, dah, size=size)
            cupy.matmul(dax[step, :, 2 * hidden :], wh_n_t, out=drh)
            _gru_back_reset(drh, gates, hs_tm, step, t, n, hidden, 3 * hidden, direct, dax, dah, size=size)
            if step:
                cupy.matmul(dah[step, :, : 2 * hidden], wh_rz_t, out=carry)
        d_rz = cupy.empty((hidden, 2 * hidden), dtype=dhs.dtype)
        _previous_states_gradient(hs_tm, cupy.ascontiguousarray(dah[:, :, : 2 * hidden]), d_rz)
        d_n = cupy.matmul(inner.reshape(t * n, hidden).T, cupy.ascontiguousarray(dah[:, :, 2 * hidden :]).reshape(t * n, hidden))
        dwh[:, : 2 * hidden] = d_rz
        dwh[:, 2 * hidden :] = d_n
    cupy.sum(dax.reshape(t * n, 3 * hidden), axis=0, out=dbx)
    cupy.sum(dah.reshape(t * n, 3 * hidden), axis=0, out=dbh)
    return _weight_and_input_gradients(x, dax, dwx, need_dx, wx)
