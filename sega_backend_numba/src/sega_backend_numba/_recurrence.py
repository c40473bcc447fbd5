"""The recurrent layer's compiled parts: the forward pass and backpropagation through time,
each share of sequences running its whole time loop on one thread (see :mod:`._parallel`).

Layout: the layer's input and output stay batch-major (N, T, H), so the input projection
``x @ Wx`` for all steps of a share is one product written straight into the states, with no
transposes. The per-step product ``h[t-1] @ Wh`` needs its left operand as a contiguous (m, H)
block (numba's ``np.dot`` takes no strided slices), so each share also keeps its current state
(forward) or current gradient (backward) in a small buffer of its own, written in the same pass
that writes the step's result.

Per step the forward pass adds the recurrent product and the bias to the projected input and
applies the activation in one compiled pass over (m, H); the backward pass adds the carried
gradient and multiplies by the activation's derivative (computed from the stored output, exact for
all four activations) in one pass into the share's contiguous block, which a plain loop then
keeps in the (N, T, H) gradient array (the LSTM's and GRU's kernels share these helpers: stores
to several arrays, or bias sums, inside their fused passes slowed them). After its loop a share's
bias gradient is a column sum and its weight gradients two products over all its steps at once;
``dWh`` pairs each state with the next step's gradient by offsetting the flat (m*T, H) arrays by
one row, with the gradients of step 0 zeroed so the pairs that cross from one sequence into the
next contribute nothing (no copies of the state array).

tanh in float32 uses a rational approximation (the one Eigen uses, at most a few units in the
last place from the exact value) because the C library's tanh, which numba calls, cannot be
vectorised; the float32 sigmoid is computed from it as ``0.5 + 0.5 * tanh(x / 2)`` (absolute
error about 1e-7). float64 uses the C library's tanh and the exact, exp-based sigmoid.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._activations import _sigmoid
from ._jit import inline, jit, scalar
from ._parallel import kernel, span

TANH, RELU, SIGMOID, LINEAR = 0, 1, 2, 3
#: float32 only: tanh by the rational approximation, and the sigmoid through it as
#: 0.5 + 0.5 * tanh(x / 2), both vectorised.
TANH32, SIGMOID_VIA_TANH32 = 4, 5
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


@scalar
def _activate(v, code, like):
    """The activation ``code`` of ``v`` (``like`` gives the dtype). Inlined into each step's row
    loop, which is compiled once per ``code`` (see :func:`_forward_step`)."""
    t = like.dtype.type
    if code == TANH32:
        return _tanh32(v, like)
    if code == TANH:
        return np.tanh(v)
    if code == RELU:
        return t(0) if v < t(0) else v
    if code == SIGMOID:
        return _sigmoid(v, t(1))
    if code == SIGMOID_VIA_TANH32:
        return t(0.5) + t(0.5) * _tanh32(t(0.5) * v, like)
    return v


@scalar
def _derivative(y, code, like):
    """The activation's derivative, from its output ``y`` (exact for all four)."""
    t = like.dtype.type
    if code == TANH or code == TANH32:
        return t(1) - y * y
    if code == RELU:
        return t(1) if y > t(0) else t(0)
    if code == SIGMOID or code == SIGMOID_VIA_TANH32:
        return y * (t(1) - y)
    return t(1)


@inline
def _rows_forward(hs, h, rec, b, t, lo, code):
    """``hs[lo+i, t] = h[i] = act(hs[lo+i, t] + b + rec[i])`` for the share's rows, the loop
    specialised per activation: each element is read and written once, and the activation's
    branch is outside the row loop, so the inner loop vectorises (with the branch inside it, the
    backward pass ran 60 % slower). 1-D row views indexed by the loop counter keep numba's
    negative-index check out of the inner loops."""
    width = h.shape[1]
    if code == TANH32:
        for i in range(h.shape[0]):
            z, state, r = hs[lo + i, t], h[i], rec[i]
            for j in range(width):
                v = _tanh32(z[j] + b[j] + r[j], hs)
                z[j] = v
                state[j] = v
    elif code == RELU:
        for i in range(h.shape[0]):
            z, state, r = hs[lo + i, t], h[i], rec[i]
            for j in range(width):
                v = _activate(z[j] + b[j] + r[j], RELU, hs)
                z[j] = v
                state[j] = v
    elif code == SIGMOID_VIA_TANH32:
        for i in range(h.shape[0]):
            z, state, r = hs[lo + i, t], h[i], rec[i]
            for j in range(width):
                v = _activate(z[j] + b[j] + r[j], SIGMOID_VIA_TANH32, hs)
                z[j] = v
                state[j] = v
    elif code == LINEAR:
        for i in range(h.shape[0]):
            z, state, r = hs[lo + i, t], h[i], rec[i]
            for j in range(width):
                v = z[j] + b[j] + r[j]
                z[j] = v
                state[j] = v
    else:  # the float64 tanh and sigmoid: scalar library calls, nothing to vectorise
        for i in range(h.shape[0]):
            z, state, r = hs[lo + i, t], h[i], rec[i]
            for j in range(width):
                v = _activate(z[j] + b[j] + r[j], code, hs)
                z[j] = v
                state[j] = v


@inline
def _rows_backward(dhs, hs, da, carry, t, lo, code):
    """``da[i] = (dhs[lo+i, t] + carry[i]) * act'(hs[lo+i, t])`` for the share's rows, specialised
    per activation likewise; the step's gradients are written to the contiguous block only (see
    :func:`_store_step`)."""
    width = da.shape[1]
    if code == TANH or code == TANH32:
        for i in range(da.shape[0]):
            cur, g, y, c = da[i], dhs[lo + i, t], hs[lo + i, t], carry[i]
            for j in range(width):
                cur[j] = (g[j] + c[j]) * _derivative(y[j], TANH, hs)
    elif code == RELU:
        for i in range(da.shape[0]):
            cur, g, y, c = da[i], dhs[lo + i, t], hs[lo + i, t], carry[i]
            for j in range(width):
                cur[j] = (g[j] + c[j]) * _derivative(y[j], RELU, hs)
    elif code == SIGMOID or code == SIGMOID_VIA_TANH32:
        for i in range(da.shape[0]):
            cur, g, y, c = da[i], dhs[lo + i, t], hs[lo + i, t], carry[i]
            for j in range(width):
                cur[j] = (g[j] + c[j]) * _derivative(y[j], SIGMOID, hs)
    else:
        for i in range(da.shape[0]):
            cur, g, c = da[i], dhs[lo + i, t], carry[i]
            for j in range(width):
                cur[j] = g[j] + c[j]


@jit()
def _store_step(dst, cur, lo, t, col):
    """``dst[lo + i, t, col:col + width] = cur[i]`` for each row of ``cur``: a step's gradients,
    computed into the contiguous block the next product reads, kept for the weight gradients.
    A loop of its own: fused into the pass that computes them, the extra stores slowed it.
    Callers pass ``col`` as an int64 (``np.int64(0)``): a literal 0 would get a compiled
    version of its own."""
    for i in range(cur.shape[0]):
        d, c = dst[lo + i, t], cur[i]
        for j in range(c.shape[0]):
            d[col + j] = c[j]


@jit()
def _column_sums(d, lo, hi, out):
    """``out = d[lo:hi]`` summed over sequences and steps: a share's bias gradient, added up
    after its time loop (accumulated inside it, the sums slowed the loop)."""
    for j in range(out.shape[0]):
        out[j] = 0
    for i in range(lo, hi):
        for t in range(d.shape[1]):
            row = d[i, t]
            for j in range(out.shape[0]):
                out[j] += row[j]


@jit()
def _zero(a):
    zero = a.dtype.type(0)
    for i in range(a.shape[0]):
        row = a[i]
        for j in range(row.shape[0]):
            row[j] = zero


def _kernels(code: int):
    """The forward and backward kernels for activation ``code``. It is a constant of the compiled
    code, and the row loops are inlined, so each kernel holds only its own activation's loop."""

    @kernel
    def forward(x, wx, wh, b, hs, state, rec, parts):
        """The forward pass, each share of sequences on its own thread: the projection ``hs = x @ wx``
        for all their steps in one product, then per step ``rec = h[t-1] @ wh`` and
        :func:`_rows_forward`. ``state[share]`` and ``rec[share]`` are (>= m, H) scratch."""
        n, steps, f = x.shape
        width = wh.shape[0]
        for i in numba.prange(parts):
            share = np.int64(i)
            lo, hi = span(share, n, parts)
            m = hi - lo
            np.dot(x.reshape(n * steps, f)[lo * steps: hi * steps], wx,
                   hs.reshape(n * steps, width)[lo * steps: hi * steps])
            h, r = state[share][:m], rec[share][:m]
            _zero(r)
            for t in range(steps):
                if t:
                    np.dot(h, wh, r)
                _rows_forward(hs, h, r, b, t, lo, code)

    @kernel
    def backward(dhs, x, wx, wht, hs, das, dx, need_dx, grad_now, carry, dwx, dwh, db, parts):
        """Backpropagation through time, each share of sequences on its own thread: per step (last
        first) ``carry = da[t+1] @ wh.T`` (``wht`` is a contiguous copy of ``wh.T``: BLAS multiplies
        by a transposed operand at half speed) and :func:`_rows_backward`; then the share's own
        ``dwx[share] = x.T @ das``, ``dwh[share]`` (see the module's docstring), ``db[share]`` and,
        if ``need_dx``, its rows of ``dx = das @ wx.T``."""
        n, steps, f = x.shape
        width = wht.shape[0]
        for i in numba.prange(parts):
            share = np.int64(i)
            lo, hi = span(share, n, parts)
            m = hi - lo
            da, c = grad_now[share][:m], carry[share][:m]
            _zero(c)
            for t in range(steps - 1, -1, -1):
                if t < steps - 1:
                    np.dot(da, wht, c)
                _rows_backward(dhs, hs, da, c, t, lo, code)
                _store_step(das, da, lo, t, np.int64(0))
            _column_sums(das, lo, hi, db[share])
            flat = das.reshape(n * steps, width)[lo * steps: hi * steps]
            inputs = x.reshape(n * steps, f)[lo * steps: hi * steps]
            np.dot(inputs.T, flat, dwx[share])
            if need_dx:
                np.dot(flat, wx.T, dx.reshape(n * steps, f)[lo * steps: hi * steps])
            if steps > 1 and m > 0:
                for r in range(lo, hi):
                    g = das[r, 0]
                    for j in range(width):
                        g[j] = 0
                np.dot(hs.reshape(n * steps, width)[lo * steps: hi * steps][:-1].T, flat[1:], dwh[share])
            else:
                _zero(dwh[share])

    return forward, backward


#: (forward, backward) kernels by activation code (each compiled on first use).
KERNELS = {code: _kernels(code) for code in (TANH, RELU, SIGMOID, LINEAR, TANH32, SIGMOID_VIA_TANH32)}
