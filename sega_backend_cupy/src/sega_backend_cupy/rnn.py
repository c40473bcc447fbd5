"""Elman recurrent layer on the GPU: per-step cuBLAS GEMM + one fused elementwise kernel.

Forward: the input projection ``x @ Wx`` for every step is one GEMM; then, per step, one GEMM
``h[t-1] @ Wh`` into a reused buffer and one kernel that adds the projection and the bias, applies
the activation and writes the state twice: time-major (``hs_tm[t]``, contiguous, the next
step's GEMM operand and the backward pass's ``ctx``) and batch-major (the returned ``hs``), so
no transpose launch is needed at the end. 2T launches in all.

Backward (BPTT): per step, one kernel ``da = (dhs[:, t] + carry) * act'(h[t])`` (written both
time- and batch-major) and one GEMM ``carry = da @ Wh.T`` into a reused buffer; then the weight
gradients are three single GEMM/reduction launches over all steps, straight into ``dwx``,
``dwh`` and ``db``, and the input gradient one GEMM already in (N, T, F) order. 2T + 3 launches
(+1 with ``need_dx``).
"""

from __future__ import annotations

from ._cupy import contiguous, cupy, matmul_into
from ._elementwise import ACTIVATE, DERIVATIVE, check_activation

# Common index arithmetic: the kernel runs over one step's (N, H) states; `at` is the same
# element's offset in a batch-major (N, T, H) array.
_AT = """
    const long long sample = i / hidden;
    const int unit = (int)(i % hidden);
    const long long at = (sample * steps + step) * hidden + unit;
"""


def _step_kernels(activation: str):
    body = ACTIVATE[activation]
    first = cupy.ElementwiseKernel(
        "raw T xw, raw T b, int32 step, int32 steps, int32 hidden",
        "T h, raw T hs",
        _AT + "const T a = xw[at] + b[unit];\n" + body + "\nhs[at] = h;",
        f"sega_rnn_first_{activation}",
    )
    later = cupy.ElementwiseKernel(
        "raw T xw, T hw, raw T b, int32 step, int32 steps, int32 hidden",
        "T h, raw T hs",
        _AT + "const T a = xw[at] + hw + b[unit];\n" + body + "\nhs[at] = h;",
        f"sega_rnn_step_{activation}",
    )
    return first, later


def _bptt_kernels(activation: str):
    deriv = DERIVATIVE[activation]
    last = cupy.ElementwiseKernel(
        "raw T dhs, T h, int32 step, int32 steps, int32 hidden",
        "T da, raw T das",
        _AT + f"da = dhs[at] * {deriv};\ndas[at] = da;",
        f"sega_bptt_last_{activation}",
    )
    earlier = cupy.ElementwiseKernel(
        "raw T dhs, T carry, T h, int32 step, int32 steps, int32 hidden",
        "T da, raw T das",
        _AT + f"da = (dhs[at] + carry) * {deriv};\ndas[at] = da;",
        f"sega_bptt_step_{activation}",
    )
    return last, earlier


# Built once at import; cupy compiles each on first call and caches the binary.
_STEP = {name: _step_kernels(name) for name in ACTIVATE}
_BPTT = {name: _bptt_kernels(name) for name in ACTIVATE}


def rnn_forward(x, wx, wh, b, activation):
    """Run the recurrence; returns ``(hs, hs_tm)``, ``hs_tm`` the (T, N, H) states for BPTT."""
    check_activation(activation)
    first, later = _STEP[activation]
    x = contiguous(x)
    b = contiguous(b)
    n, t, f = x.shape
    hidden = wh.shape[0]
    xw = cupy.matmul(x.reshape(n * t, f), wx)  # (N*T, H), batch-major: row = sample * T + step
    hs = cupy.empty((n, t, hidden), dtype=xw.dtype)
    hs_tm = cupy.empty((t, n, hidden), dtype=xw.dtype)
    if t == 0 or n == 0:
        return hs, hs_tm
    first(xw, b, 0, t, hidden, hs_tm[0], hs)
    if t > 1:
        hw = cupy.empty((n, hidden), dtype=xw.dtype)
        for step in range(1, t):
            cupy.matmul(hs_tm[step - 1], wh, out=hw)
            later(xw, hw, b, step, t, hidden, hs_tm[step], hs)
    return hs, hs_tm


def rnn_backward(dhs, x, wx, wh, hs, activation, ctx, dwx, dwh, db, need_dx):
    """Backpropagation through time; overwrites ``dwx``, ``dwh``, ``db``."""
    check_activation(activation)
    last, earlier = _BPTT[activation]
    x = contiguous(x)
    dhs = contiguous(dhs)
    n, t, f = x.shape
    hidden = wh.shape[0]
    hs_tm = ctx if ctx is not None else cupy.ascontiguousarray(hs.transpose(1, 0, 2))
    das_tm = cupy.empty((t, n, hidden), dtype=dhs.dtype)
    das = cupy.empty((n, t, hidden), dtype=dhs.dtype)
    if t > 0 and n > 0:
        last(dhs, hs_tm[t - 1], t - 1, t, hidden, das_tm[t - 1], das)
        if t > 1:
            carry = cupy.empty((n, hidden), dtype=dhs.dtype)
            wh_t = wh.T
            for step in range(t - 1, 0, -1):
                cupy.matmul(das_tm[step], wh_t, out=carry)  # gradient reaching h[step-1]
                earlier(dhs, carry, hs_tm[step - 1], step - 1, t, hidden, das_tm[step - 1], das)
    das2 = das.reshape(n * t, hidden)
    matmul_into(x.reshape(n * t, f).T, das2, dwx)
    if t > 1:
        # h[t-1] feeds step t: pair states 0..T-2 with gradients 1..T-1, all steps in one GEMM.
        matmul_into(hs_tm[:-1].reshape((t - 1) * n, hidden).T, das_tm[1:].reshape((t - 1) * n, hidden), dwh)
    else:
        dwh.fill(0)
    cupy.sum(das_tm.reshape(t * n, hidden), axis=0, out=db)
    if not need_dx:
        return None
    return cupy.matmul(das2, wx.T).reshape(n, t, f)
