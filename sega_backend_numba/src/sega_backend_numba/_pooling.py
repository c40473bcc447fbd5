"""Max and average pooling over NCHW: compiled window loops, the image planes shared out
between threads (:mod:`._parallel`).

Every (sample, channel) plane is pooled on its own, so the batch's N*C planes are cut into one
contiguous share per thread; each share writes only its own planes of the outputs. Each window
is clipped to the input before it is read, so padding is never read or stored: the maximum is
over the window's input elements (the first one in row-major order wins a tie, like the
reference's strict ``>``; a NaN wins over numbers), the average divides by their count.

The maximum's ``ctx`` is the flat position in its plane (``ih * W + iw``) of each window's
winner, as int32, so the backward pass is one scattered add per output element. The average
keeps nothing: its backward pass recomputes each window's clipped bounds and count.
"""

from __future__ import annotations

import numba
import numpy as np

from ._parallel import kernel, run, shares, span
from ._jit import inline

#: What one window element visit (a load and a compare or add, in a short loop) costs in the
#: BLAS multiply-adds that ``shares`` counts work in: a share then gets tens of thousands of
#: visits, tens of microseconds, several times a parallel launch.
VISIT_COST = 64


@inline
def _bounds(o, stride, pad, window, size):
    """``[lo, hi)``: the input rows (or columns) of output row ``o``'s window, clipped to the input."""
    start = o * stride - pad
    return max(start, 0), min(start + window, size)


@kernel
def _max_forward(x, y, winner, ph, pw, sh, sw, top, left, parts):
    """``y[p, i, j]`` = the maximum of window ``(i, j)`` of plane ``p``; ``winner`` its position."""
    planes, h, w = x.shape
    ho, wo = y.shape[1], y.shape[2]
    for k in numba.prange(parts):
        lo, hi = span(np.int64(k), planes, parts)
        for p in range(lo, hi):
            plane, out, best_at = x[p], y[p], winner[p]
            for i in range(ho):
                r0, r1 = _bounds(i, sh, top, ph, h)
                for j in range(wo):
                    c0, c1 = _bounds(j, sw, left, pw, w)
                    best = plane[r0, c0]
                    at = r0 * w + c0
                    for r in range(r0, r1):
                        row = plane[r]
                        for c in range(c0, c1):
                            # A NaN wins and stays (nothing compares greater): a diverging
                            # model must see its NaN, as PyTorch's pooling shows it.
                            if row[c] > best or row[c] != row[c]:
                                best = row[c]
                                at = r * w + c
                    out[i, j] = best
                    best_at[i, j] = at


@kernel
def _max_backward(dy, winner, dx, parts):
    """``dx[p]`` = every window's ``dy`` added at its winner's position (overwritten)."""
    planes = dx.shape[0]
    size = dx.shape[1] * dx.shape[2]
    ho, wo = dy.shape[1], dy.shape[2]
    zero = dx.dtype.type(0)
    for k in numba.prange(parts):
        lo, hi = span(np.int64(k), planes, parts)
        for p in range(lo, hi):
            flat, grad, at = dx[p].reshape(size), dy[p], winner[p]
            for q in range(size):
                flat[q] = zero
            for i in range(ho):
                for j in range(wo):
                    flat[at[i, j]] += grad[i, j]


@kernel
def _avg_forward(x, y, ph, pw, sh, sw, top, left, parts):
    """``y[p, i, j]`` = the mean of window ``(i, j)``'s input elements."""
    planes, h, w = x.shape
    ho, wo = y.shape[1], y.shape[2]
    for k in numba.prange(parts):
        lo, hi = span(np.int64(k), planes, parts)
        for p in range(lo, hi):
            plane, out = x[p], y[p]
            for i in range(ho):
                r0, r1 = _bounds(i, sh, top, ph, h)
                for j in range(wo):
                    c0, c1 = _bounds(j, sw, left, pw, w)
                    total = x.dtype.type(0)
                    for r in range(r0, r1):
                        row = plane[r]
                        for c in range(c0, c1):
                            total += row[c]
                    out[i, j] = total / x.dtype.type((r1 - r0) * (c1 - c0))


@kernel
def _avg_backward(dy, dx, ph, pw, sh, sw, top, left, parts):
    """``dx[p]`` = each window's ``dy`` spread evenly over its input elements (overwritten)."""
    planes, h, w = dx.shape
    ho, wo = dy.shape[1], dy.shape[2]
    zero = dx.dtype.type(0)
    for k in numba.prange(parts):
        lo, hi = span(np.int64(k), planes, parts)
        for p in range(lo, hi):
            plane, grad = dx[p], dy[p]
            for r in range(h):
                row = plane[r]
                for c in range(w):
                    row[c] = zero
            for i in range(ho):
                r0, r1 = _bounds(i, sh, top, ph, h)
                for j in range(wo):
                    c0, c1 = _bounds(j, sw, left, pw, w)
                    share = grad[i, j] / dx.dtype.type((r1 - r0) * (c1 - c0))
                    for r in range(r0, r1):
                        row = plane[r]
                        for c in range(c0, c1):
                            row[c] += share


class _Window:
    """One pooling call's geometry as plain ints, checked (the compiled loops do not check their
    indices and must not raise, so every window must hold at least one input element)."""

    __slots__ = ("ph", "pw", "sh", "sw", "top", "left", "ho", "wo", "n", "c", "h", "w")

    def __init__(self, op, x, pool, stride, padding):
        if x.ndim != 4:
            raise ValueError(f"{op} needs x (N, C, H, W); got shape {x.shape}")
        (ph, pw), (sh, sw), ((top, bottom), (left, right)) = pool, stride, padding
        self.ph, self.pw, self.sh, self.sw, self.top, self.left = (int(v) for v in (ph, pw, sh, sw, top, left))
        self.n, self.c, self.h, self.w = x.shape
        if min(self.ph, self.pw, self.sh, self.sw) < 1 or min(top, bottom, left, right) < 0:
            raise ValueError(f"{op} needs pool and strides >= 1 and padding >= 0; got {pool}, {stride}, {padding}")
        if max(top, bottom) >= self.ph or max(left, right) >= self.pw:
            raise ValueError(f"{op} padding {padding} must be smaller than the pool {pool}: a window would hold only padding")
        self.ho = (self.h + top + bottom - self.ph) // self.sh + 1
        self.wo = (self.w + left + right - self.pw) // self.sw + 1
        if self.ho < 1 or self.wo < 1:
            raise ValueError(f"{op} pool {pool} with padding {padding} does not fit an input of {self.h}x{self.w}")

    def geometry(self):
        """The compiled loops' window arguments, in their order."""
        return self.ph, self.pw, self.sh, self.sw, self.top, self.left

    def parts(self):
        """Shares of the N*C planes, by the element visits of one plane."""
        return shares(self.n * self.c, self.ho * self.wo * self.ph * self.pw * VISIT_COST, blas=False)

    def planes(self, a):
        """``a`` (N, C, ., .) as C-contiguous (N*C, ., .) planes."""
        return np.ascontiguousarray(a).reshape((self.n * self.c,) + a.shape[2:])

    def check_dy(self, op, dy, x):
        if dy.shape != (self.n, self.c, self.ho, self.wo) or dy.dtype != x.dtype:
            raise ValueError(f"{op} backward needs dy of shape {(self.n, self.c, self.ho, self.wo)} and dtype "
                             f"{x.dtype}; got {dy.shape} {dy.dtype}")


def maxpool2d_forward(x, pool, stride, padding):
    """Window maxima; ``ctx`` is each winner's flat position in its plane (int32)."""
    g = _Window("maxpool2d", x, pool, stride, padding)
    y = np.empty((g.n, g.c, g.ho, g.wo), x.dtype)
    winner = np.empty(y.shape, np.int32)
    run(_max_forward, g.parts(), g.planes(x), g.planes(y), g.planes(winner), *g.geometry())
    return y, winner


def maxpool2d_backward(dy, x, pool, stride, padding, ctx):
    """Each window's gradient added at its winner's position."""
    g = _Window("maxpool2d", x, pool, stride, padding)
    g.check_dy("maxpool2d", dy, x)
    if ctx is None or ctx.shape != dy.shape or ctx.dtype != np.int32:
        raise ValueError("maxpool2d backward needs the ctx its own forward pass returned")
    dx = np.empty(x.shape, x.dtype)
    run(_max_backward, g.parts(), g.planes(dy), g.planes(ctx), g.planes(dx))
    return dx


def avgpool2d_forward(x, pool, stride, padding):
    """Window means over input elements only; ``ctx`` is ``None``."""
    g = _Window("avgpool2d", x, pool, stride, padding)
    y = np.empty((g.n, g.c, g.ho, g.wo), x.dtype)
    run(_avg_forward, g.parts(), g.planes(x), g.planes(y), *g.geometry())
    return y, None


def avgpool2d_backward(dy, x, pool, stride, padding, ctx):
    """Each window's gradient spread evenly over its input elements."""
    g = _Window("avgpool2d", x, pool, stride, padding)
    g.check_dy("avgpool2d", dy, x)
    dx = np.empty(x.shape, x.dtype)
    run(_avg_backward, g.parts(), g.planes(dy), g.planes(dx), *g.geometry())
    return dx
