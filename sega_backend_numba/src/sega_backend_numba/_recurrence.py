"""The recurrent layer's compiled parts: one thread's share of the forward pass or of
backpropagation through time, each one call that runs without the GIL.

Layout: everything stays batch-major (N, T, H), the layout of the layer's input and output, so
the input projection ``x @ Wx`` for all steps is one product with no transposes, the states are
written where they are returned, and the per-step product ``h[t-1] @ Wh`` reads a strided
(N, H) slice that BLAS takes as it is. BLAS is called by address from compiled code
(:mod:`._cblas`).

Per step the forward pass adds the recurrent product and the bias to the projected input and
applies the activation in one compiled pass over (N, H); the backward pass adds the carried
gradient, multiplies by the activation's derivative (computed from the stored output, exact for
all four activations) and accumulates the bias gradient, again in one pass. After its loop a
thread's weight gradients are two products over all its steps at once; ``dWh`` pairs each
state with the next step's gradient by offsetting the flat (N*T, H) arrays by one row, with the
gradients of step 0 zeroed so the pairs that cross from one sequence into the next contribute
nothing (no copies of the state array).

tanh in float32 uses a rational approximation (the one Eigen uses, at most a few units in the
last place from the exact value) because the C library's tanh cannot be vectorised; the float32
sigmoid is computed from it as ``0.5 + 0.5 * tanh(x / 2)`` (absolute error about 1e-7). float64
uses NumPy's vectorised tanh on the step's slice (see :mod:`._rnn`) and the exact, exp-based
sigmoid.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._activations import _sigmoid
from ._cblas import NO_TRANS, TRANS, gemm
from ._jit import jit, scalar

TANH, RELU, SIGMOID, LINEAR = 0, 1, 2, 3
#: float32 sigmoid through the tanh approximation: 0.5 + 0.5 * tanh(x / 2), vectorised.
SIGMOID_VIA_TANH = 4
CODES = {"tanh": TANH, "relu": RELU, "sigmoid": SIGMOID, "linear": LINEAR}

# Eigen's float32 tanh: odd degree-13 numerator over even degree-6 denominator on [-c, c],
# exact to float32 precision beyond c; below 4e-4, tanh(x) rounds to x itself.
_TANH_CLAMP = 7.99881172180175781
_TANH_TINY = 0.0004
_A1, _A3, _A5, _A7 = 4.89352455891786e-03, 6.37261928875436e-04, 1.48572235717979e-05, 5.12229709037114e-08
_A9, _A11, _A13 = -8.60467152213735e-11, 2.00018790482477e-13, -2.76076847742355e-16
_B0, _B2, _B4, _B6 = 4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04, 1.19825839466702e-06


@intrinsic
def _fma(typingctx, a, b, c):
    """``a * b + c`` rounded once: IEEE fused multiply-add (LLVM's ``llvm.fma``, one instruction
    on x86-64 since Haswell). Not fast-math: the result is exactly defined, and the compiler will
    not fuse a separate multiply and add by itself without fast-math."""
    if not (isinstance(a, types.Float) and a == b == c):
        return None
    sig = a(a, b, c)

    def codegen(context, builder, signature, args):
        real = context.get_value_type(signature.return_type)
        name = "llvm.fma.f32" if real == ir.FloatType() else "llvm.fma.f64"
        return builder.call(cgutils.get_or_insert_function(builder.module, ir.FunctionType(real, [real] * 3), name), args)

    return sig, codegen


@scalar
def _tanh32(v, like):
    """tanh for float32 (``like`` gives the dtype), branch-free so the loop vectorises; the
    polynomials by fused multiply-adds, as Eigen evaluates them (17 % faster than separate ones)."""
    t = like.dtype.type
    x = min(max(v, t(-_TANH_CLAMP)), t(_TANH_CLAMP))
    x2 = x * x
    p = _fma(x2, t(_A13), t(_A11))
    p = _fma(x2, p, t(_A9))
    p = _fma(x2, p, t(_A7))
    p = _fma(x2, p, t(_A5))
    p = _fma(x2, p, t(_A3))
    p = _fma(x2, p, t(_A1))
    p = x * p
    q = _fma(x2, t(_B6), t(_B4))
    q = _fma(x2, q, t(_B2))
    q = _fma(x2, q, t(_B0))
    r = p / q
    # The clamp would turn NaN into +-1; a diverging model must see its NaN.
    return v if (abs(v) < t(_TANH_TINY) or v != v) else r


@jit()
def forward_step(hs, rec, b, t, code, lo, hi):
    """``hs[i, t] = act(hs[i, t] + b + rec[i - lo])`` for rows lo..hi-1 (``rec`` is zero at t = 0:
    adding a zero row costs less than a second version of every loop).

    ``code`` TANH and SIGMOID_VIA_TANH use the float32 tanh approximation; for float64 tanh the
    caller passes LINEAR and applies NumPy's tanh afterwards. Each element is read and written
    once, and the activation's branch is outside the row loop, so each inner loop vectorises
    (hence one near-identical row loop per activation: with the branch inside the row loop, the
    backward step's pass ran 60 % slower).
    1-D row views indexed by the loop counter keep numba's negative-index check out of them.
    """
    zero = hs.dtype.type(0)
    one = hs.dtype.type(1)
    half = hs.dtype.type(0.5)
    h = hs.shape[2]
    if code == TANH:
        for i in range(lo, hi):
            z, r = hs[i, t], rec[i - lo]
            for j in range(h):
                z[j] = _tanh32(z[j] + b[j] + r[j], hs)
    elif code == RELU:
        for i in range(lo, hi):
            z, r = hs[i, t], rec[i - lo]
            for j in range(h):
                v = z[j] + b[j] + r[j]
                z[j] = zero if v < zero else v
    elif code == SIGMOID:
        for i in range(lo, hi):
            z, r = hs[i, t], rec[i - lo]
            for j in range(h):
                z[j] = _sigmoid(z[j] + b[j] + r[j], one)
    elif code == SIGMOID_VIA_TANH:
        for i in range(lo, hi):
            z, r = hs[i, t], rec[i - lo]
            for j in range(h):
                z[j] = half + half * _tanh32(half * (z[j] + b[j] + r[j]), hs)
    else:
        for i in range(lo, hi):
            z, r = hs[i, t], rec[i - lo]
            for j in range(h):
                z[j] = z[j] + b[j] + r[j]


@jit()
def backward_step(dhs, hs, carry, das, db, t, code, lo, hi):
    """``das[i, t] = (dhs[i, t] + carry[i - lo]) * act'(hs[i, t])`` for rows lo..hi-1;
    ``db += das[lo:hi, t].sum(0)``, in one pass over each row (``carry`` is zero at the last step).
    The activation's branch is outside the row loop: inside it, the loop ran 60 % slower."""
    zero = hs.dtype.type(0)
    one = hs.dtype.type(1)
    h = hs.shape[2]
    if code == TANH:
        for i in range(lo, hi):
            d, g, y, c = das[i, t], dhs[i, t], hs[i, t], carry[i - lo]
            for j in range(h):
                v = (g[j] + c[j]) * (one - y[j] * y[j])
                d[j] = v
                db[j] += v
    elif code == RELU:
        for i in range(lo, hi):
            d, g, y, c = das[i, t], dhs[i, t], hs[i, t], carry[i - lo]
            for j in range(h):
                v = g[j] + c[j]
                v = v if y[j] > zero else zero
                d[j] = v
                db[j] += v
    elif code == SIGMOID:
        for i in range(lo, hi):
            d, g, y, c = das[i, t], dhs[i, t], hs[i, t], carry[i - lo]
            for j in range(h):
                v = (g[j] + c[j]) * (y[j] * (one - y[j]))
                d[j] = v
                db[j] += v
    else:
        for i in range(lo, hi):
            d, g, c = das[i, t], dhs[i, t], carry[i - lo]
            for j in range(h):
                v = g[j] + c[j]
                d[j] = v
                db[j] += v


@jit()
def _zero_rows(a, rows):
    """``a[:rows] = 0`` for a 2-D array (a loop: slice assignment is slow to compile)."""
    zero = a.dtype.type(0)
    for i in range(rows):
        for j in range(a.shape[1]):
            a[i, j] = zero


@jit()
def forward_share(address, x, wx, wh, b, hs, rec, code, lo, hi):
    """One thread's whole forward pass over rows lo..hi-1 in one compiled call, BLAS called by
    address (:mod:`._cblas`): the input projection ``hs = x @ wx``, then per step
    ``rec = hs[:, t-1] @ wh`` and :func:`forward_step`."""
    steps, f, h = x.shape[1], x.shape[2], hs.shape[2]
    zero = hs.dtype.type(0)
    gemm(address, NO_TRANS, NO_TRANS, (hi - lo) * steps, h, f, x, lo * steps * f, f, wx, 0, h, zero,
         hs, lo * steps * h, h)
    for t in range(steps):
        if t:
            gemm(address, NO_TRANS, NO_TRANS, hi - lo, h, h, hs, (lo * steps + t - 1) * h, steps * h,
                 wh, 0, h, zero, rec, 0, h)
        else:
            _zero_rows(rec, hi - lo)
        forward_step(hs, rec, b, t, code, lo, hi)


@jit()
def _transpose(a, out):
    """``out[...] = a.T`` for a square matrix, in 16 x 16 tiles."""
    n = a.shape[0]
    for i0 in range(0, n, 16):
        for j0 in range(0, n, 16):
            for i in range(i0, min(i0 + 16, n)):
                for j in range(j0, min(j0 + 16, n)):
                    out[j, i] = a[i, j]


@jit()
def backward_share(address, dhs, x, wx, wh, wht, hs, das, carry, dwx, dwh, db, dx, need_dx, code, lo, hi):
    """One thread's whole backward pass over rows lo..hi-1 in one compiled call: per step (last
    first) ``carry = das[:, t+1] @ wh.T`` and :func:`backward_step`; then its shares
    ``dwx = x.T @ das``, ``dwh`` (see :func:`_backward_rows`) and, if ``need_dx``, its rows of
    ``dx = das @ wx.T``. (Without ``need_dx``, ``dx`` may be any array of the right type.)"""
    # The thread's own copy of Wh.T (OpenBLAS multiplies by a transposed operand at half speed);
    # each thread makes it at the start of its share rather than the caller before the split.
    _transpose(wh, wht)
    steps, f, h = x.shape[1], x.shape[2], hs.shape[2]
    zero = hs.dtype.type(0)
    for t in range(steps - 1, -1, -1):
        if t < steps - 1:
            gemm(address, NO_TRANS, NO_TRANS, hi - lo, h, h, das, (lo * steps + t + 1) * h, steps * h,
                 wht, 0, h, zero, carry, 0, h)
        else:
            _zero_rows(carry, hi - lo)
        backward_step(dhs, hs, carry, das, db, t, code, lo, hi)
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
