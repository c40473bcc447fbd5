"""2-D convolution (cross-correlation, NCHW): compiled im2col/col2im around matrix products.

The NumPy reference builds one im2col matrix for the whole batch (N*HO*WO rows of C*K*K, 29 MB
for a 64x16x28x28 batch and a 3x3 kernel), multiplies it, transposes the result back to NCHW,
and scatters the input gradient with K*K strided adds over 6-D views. Here:

* The batch is cut into one share of samples per thread (:mod:`._parallel`); each share runs
  its samples in chunks of a few, whose im2col block (about 2 MiB) stays in the CPU cache
  between being written and being read by the matrix product, in scratch that is reused from
  call to call, so no call page-faults its way through a fresh allocation. Nothing is kept from
  forward to backward (``ctx`` is ``None``): the backward pass rebuilds each chunk's block, which
  costs less than holding the whole batch's block in memory.
* A chunk's block is laid out (C*K*K + 1, samples * positions), so each matrix product of a
  chunk is one large BLAS call: ``[W | b] @ block`` for the output, ``block @ dY.T`` for the
  (transposed) weight gradient, ``W.T @ dY`` for the input gradient's block.
* The block's extra row of ones carries the bias through the output product and yields the bias
  gradient as the last column of the weight-gradient product.
* Stride 1 (the common case) uses "padded-width" positions: each sample is zero-padded once and
  a block row is then *one contiguous slice* of the padded image, shifted by the kernel offset
  (``ki * Wp + kj``). The product computes ``Wp - WO`` extra columns per output row (7 % more
  work for 28x28 images with padding 1) that are dropped when the output is written out; in
  exchange im2col and col2im are plain vectorised copies and adds over long rows instead of
  short per-row loops with boundary tests. Other strides use the classic positions.

In the backward pass each share sums its own samples' weight gradient; the shares' sums are
added at the end.
"""

from __future__ import annotations

import numba
import numpy as np
from sega_backend_numpy import conv as reference

from ._jit import inline, jit
from ._parallel import kernel, run, shares, span
from ._workspace import workspaces

#: Bytes of im2col block per chunk: small enough to stay in cache, big enough that the matrix
#: products are efficient and the per-chunk overhead is small.
CHUNK_BYTES = 2 << 20


# ---- stride 1: padded-width positions --------------------------------------------------------------


@jit()
def _im2col_s1(x, n0, k, p, ho, wp, plane, cols):
    """Block rows (c, ki, kj) of samples n0.. as shifted slices of each zero-padded plane.

    ``cols`` is (C*K*K + 1, m * HO*Wp); ``plane`` is scratch of at least (H+2p)*Wp + K.
    """
    c_, h, w = x.shape[1], x.shape[2], x.shape[3]
    length = ho * wp
    m = cols.shape[1] // length
    zero = x.dtype.type(0)
    one = x.dtype.type(1)
    # The shifted slices reach up to K-1 elements past the padded plane; those elements only
    # feed output columns that are dropped, but they must be finite numbers.
    for q in range(plane.size):
        plane[q] = zero
    # Inner loops index 1-D views with their own loop counter: an index like ``off + q`` with
    # a runtime ``off`` could be negative as far as the compiler knows, and numba's check for
    # negative indices would then keep the loop from vectorising.
    for j in range(m):
        col0 = j * length
        for c in range(c_):
            for ih in range(h):
                src = x[n0 + j, c, ih]
                dst = plane[(ih + p) * wp + p:]
                for iw in range(w):
                    dst[iw] = src[iw]
            for ki in range(k):
                for kj in range(k):
                    src = plane[ki * wp + kj:]
                    dst = cols[(c * k + ki) * k + kj, col0:]
                    for q in range(length):
                        dst[q] = src[q]
        dst = cols[c_ * k * k, col0:]
        for q in range(length):
            dst[q] = one


@jit()
def _col2im_s1(dcols, n0, k, p, ho, wp, plane, dx):
    """Add the block gradient's shifted rows onto each padded plane, then crop into ``dx``."""
    c_, h, w = dx.shape[1], dx.shape[2], dx.shape[3]
    length = ho * wp
    m = dcols.shape[1] // length
    zero = dx.dtype.type(0)
    for j in range(m):
        col0 = j * length
        for c in range(c_):
            for q in range(plane.size):
                plane[q] = zero
            for ki in range(k):
                for kj in range(k):
                    src = dcols[(c * k + ki) * k + kj, col0:]
                    dst = plane[ki * wp + kj:]
                    for q in range(length):
                        dst[q] += src[q]
            for ih in range(h):
                src = plane[(ih + p) * wp + p:]
                dst = dx[n0 + j, c, ih]
                for iw in range(w):
                    dst[iw] = src[iw]


# ---- any stride: classic positions ---------------------------------------------------------------


@jit()
def _im2col(x, n0, k, s, p, ho, wo, cols):
    """Block (C*K*K + 1, m * HO*WO) of samples n0..; zero where the kernel overlaps padding."""
    c_, h, w = x.shape[1], x.shape[2], x.shape[3]
    length = ho * wo
    m = cols.shape[1] // length
    zero = x.dtype.type(0)
    one = x.dtype.type(1)
    for j in range(m):
        col0 = j * length
        for c in range(c_):
            for ki in range(k):
                for kj in range(k):
                    r = (c * k + ki) * k + kj
                    off = kj - p
                    # Output columns whose input column ow*s + off falls inside the image.
                    lo = min(wo, max(0, (p - kj + s - 1) // s))
                    hi = max(lo, min(wo, (w - 1 - off) // s + 1))
                    for oh in range(ho):
                        ih = oh * s + ki - p
                        dst = cols[r, col0 + oh * wo:]
                        if ih < 0 or ih >= h:
                            for ow in range(wo):
                                dst[ow] = zero
                        else:
                            src = x[n0 + j, c, ih]
                            for ow in range(lo):
                                dst[ow] = zero
                            for ow in range(lo, hi):
                                dst[ow] = src[ow * s + off]
                            for ow in range(hi, wo):
                                dst[ow] = zero
        dst = cols[c_ * k * k, col0:]
        for q in range(length):
            dst[q] = one


@jit()
def _col2im(dcols, n0, k, s, p, ho, wo, dx):
    """Scatter the block gradient (>= C*K*K, m * HO*WO) onto samples n0.. of ``dx`` (overwritten)."""
    c_, h, w = dx.shape[1], dx.shape[2], dx.shape[3]
    length = ho * wo
    m = dcols.shape[1] // length
    zero = dx.dtype.type(0)
    for j in range(m):
        col0 = j * length
        for c in range(c_):
            for ih in range(h):
                for iw in range(w):
                    dx[n0 + j, c, ih, iw] = zero
            for ki in range(k):
                for kj in range(k):
                    r = (c * k + ki) * k + kj
                    off = kj - p
                    lo = min(wo, max(0, (p - kj + s - 1) // s))
                    hi = max(lo, min(wo, (w - 1 - off) // s + 1))
                    for oh in range(ho):
                        ih = oh * s + ki - p
                        if ih < 0 or ih >= h:
                            continue
                        src = dcols[r, col0 + oh * wo:]
                        dst = dx[n0 + j, c, ih]
                        for ow in range(lo, hi):
                            dst[ow * s + off] += src[ow]


# ---- moving outputs between (F, m * positions) and NCHW ---------------------------------------------


@jit()
def _scatter_output(ym, n0, wp, y):
    """``y[n0 + j, f, oh, ow] = ym[f, j*HO*Wp + oh*Wp + ow]`` for the valid ``ow < WO``."""
    f_, ho, wo = y.shape[1], y.shape[2], y.shape[3]
    length = ho * wp
    m = ym.shape[1] // length
    for j in range(m):
        for f in range(f_):
            for oh in range(ho):
                src = ym[f, j * length + oh * wp:]
                dst = y[n0 + j, f, oh]
                for ow in range(wo):
                    dst[ow] = src[ow]


@jit()
def _gather_gradient(dy, n0, wp, dym):
    """The inverse layout change for ``dy``, zero in the extra columns (they must add nothing)."""
    f_, ho, wo = dy.shape[1], dy.shape[2], dy.shape[3]
    length = ho * wp
    m = dym.shape[1] // length
    zero = dy.dtype.type(0)
    for f in range(f_):
        for j in range(m):
            for oh in range(ho):
                src = dy[n0 + j, f, oh]
                dst = dym[f, j * length + oh * wp:]
                for ow in range(wo):
                    dst[ow] = src[ow]
                for ow in range(wo, wp):
                    dst[ow] = zero


# ---- the kernels: one share of the batch per thread -------------------------------------------------


@inline
def _chunk_block(x, n0, m, rows, cols, plane, k, s, p, ho, wo, wp, unit_stride):
    """The im2col block of samples ``n0 .. n0+m-1``, built in the flat scratch ``cols`` and
    returned as a C-ordered 2-D view of it (which np.dot takes without a copy)."""
    block = cols[: rows * m * ho * wp].reshape(rows, m * ho * wp)
    if unit_stride:
        _im2col_s1(x, n0, k, p, ho, wp, plane, block)
    else:
        _im2col(x, n0, k, s, p, ho, wo, block)
    return block


def _kernels(unit_stride: bool):
    """The forward and backward kernels for stride 1 (padded-width positions) or any other
    stride. ``unit_stride`` is a constant of the compiled code, so each kernel holds only its
    own im2col/col2im loops: W3 never compiles the strided ones."""

    @kernel
    def forward(x, wb, y, cols, ym, plane, k, s, p, ho, wo, wp, chunk, parts):
        """Each share's output samples, chunk by chunk: im2col, one product, write-out."""
        rows, f = wb.shape[1], wb.shape[0]
        length = ho * wp
        for i in numba.prange(parts):
            share = np.int64(i)
            lo, hi = span(share, x.shape[0], parts)
            for n0 in range(lo, hi, chunk):
                m = min(chunk, hi - n0)
                block = _chunk_block(x, n0, m, rows, cols[share], plane[share], k, s, p, ho, wo, wp, unit_stride)
                out = ym[share][: f * m * length].reshape(f, m * length)
                np.dot(wb, block, out)
                _scatter_output(out, n0, wp, y)

    @kernel
    def backward(dy, x, wt, dx, need_dx, grads, part, cols, dym, plane, k, s, p, ho, wo, wp, chunk, parts):
        """Each share's transposed ``[dW | db]`` summed into ``grads[share]``, and its samples of
        ``dx`` when ``need_dx``."""
        rows, f = grads.shape[1], grads.shape[2]
        length = ho * wp
        for i in numba.prange(parts):
            share = np.int64(i)
            lo, hi = span(share, x.shape[0], parts)
            total, product = grads[share], part[share]
            for r in range(rows):
                for j in range(f):
                    total[r, j] = 0
            for n0 in range(lo, hi, chunk):
                m = min(chunk, hi - n0)
                block = _chunk_block(x, n0, m, rows, cols[share], plane[share], k, s, p, ho, wo, wp, unit_stride)
                grad = dym[share][: f * m * length].reshape(f, m * length)
                _gather_gradient(dy, n0, wp, grad)
                # Accumulated transposed, (C*K*K + 1, F): measured faster than ``dY @ block.T``.
                np.dot(block, grad.T, product)
                for r in range(rows):
                    for j in range(f):
                        total[r, j] += product[r, j]
                if need_dx:
                    # The block is no longer needed: its rows take the block gradient (all but
                    # the row of ones, which has no input to send a gradient to).
                    np.dot(wt, grad, block[: rows - 1])
                    if unit_stride:
                        _col2im_s1(block, n0, k, p, ho, wp, plane[share], dx)
                    else:
                        _col2im(block, n0, k, s, p, ho, wo, dx)

    return forward, backward


#: (forward, backward) kernels by ``stride == 1``.
_KERNELS = {unit: _kernels(unit) for unit in (True, False)}


# ---- the hook implementations -------------------------------------------------------------------


class _Plan:
    """Shapes and chunking of one convolution call (checked: the compiled loops do not check
    their indices, and must not raise, so a shape mismatch must be refused here)."""

    __slots__ = ("n", "f", "k", "s", "p", "ho", "wo", "wp", "rows", "chunk", "plane", "macs", "length")

    def __init__(self, x, w, stride, padding, dy=None):
        stride, padding = int(stride), int(padding)
        if x.ndim != 4 or w.ndim != 4 or w.shape[1] != x.shape[1] or w.shape[2] != w.shape[3]:
            raise ValueError(f"conv2d needs x (N, C, H, W) and w (F, C, K, K); got {x.shape} and {w.shape}")
        if stride < 1 or padding < 0:
            raise ValueError(f"conv2d needs stride >= 1 and padding >= 0; got {stride} and {padding}")
        n, c, h, wd = x.shape
        f, _, k, _ = w.shape
        self.n, self.f, self.k, self.s, self.p = n, f, k, stride, padding
        self.ho = (h + 2 * padding - k) // stride + 1
        self.wo = (wd + 2 * padding - k) // stride + 1
        if self.ho < 1 or self.wo < 1:
            raise ValueError(f"conv2d kernel {k} with padding {padding} does not fit an input of {h}x{wd}")
        if dy is not None and dy.shape != (n, f, self.ho, self.wo):
            raise ValueError(f"conv2d backward needs dy of shape {(n, f, self.ho, self.wo)}, got {dy.shape}")
        # Positions per output row: the padded width for stride 1, the output width otherwise.
        self.wp = wd + 2 * padding if stride == 1 else self.wo
        self.length = self.ho * self.wp
        self.rows = c * k * k + 1
        # Multiply-adds of one sample's forward product (how the batch is shared out).
        self.macs = f * self.rows * self.length
        per_sample = self.rows * self.length * x.itemsize
        self.chunk = max(1, min(n, CHUNK_BYTES // max(per_sample, 1)))
        self.plane = (h + 2 * padding) * self.wp + k

    def scratch(self, slot, parts, dtype, *extra):
        """Per-share scratch: the im2col block, the product's output and the padded plane,
        then arrays of the ``extra`` shapes, each with a leading axis of ``parts``."""
        block = self.chunk * self.length
        shapes = ((parts, self.rows * block), (parts, self.f * block), (parts, self.plane))
        return workspaces(slot, shapes + tuple((parts,) + e for e in extra), dtype)

    def geometry(self):
        """The compiled loops' shape arguments, in their order."""
        return self.k, self.s, self.p, self.ho, self.wo, self.wp, self.chunk


def _weights_with_bias(w, b):
    """``[W | b]``: (F, C*K*K + 1), the bias as the weight of the block's row of ones."""
    f = w.shape[0]
    wb = np.empty((f, w[0].size + 1), w.dtype)
    wb[:, :-1] = w.reshape(f, -1)
    wb[:, -1] = b
    return wb


def _general(w, stride, padding) -> bool:
    """Whether the convolution has a rectangular kernel, or strides or padding that differ per
    axis or side (hook API 1.2): the compiled kernels handle square, symmetric ones, and the
    NumPy reference the rest."""
    return w.shape[2] != w.shape[3] or not isinstance(stride, int) or not isinstance(padding, int)


def conv2d_forward(x, w, b, stride, padding):
    """Convolution forward, the batch shared out between numba's threads."""
    if _general(w, stride, padding):
        return reference.sega_conv2d_forward(x, w, b, stride, padding)
    x = np.ascontiguousarray(x)
    plan = _Plan(x, w, stride, padding)
    wb = _weights_with_bias(w, b)
    y = np.empty((plan.n, plan.f, plan.ho, plan.wo), x.dtype)
    parts = shares(plan.n, plan.macs)
    cols, ym, plane = plan.scratch("conv_forward", parts, x.dtype)
    run(_KERNELS[plan.s == 1][0], parts, x, wb, y, cols, ym, plane, *plan.geometry())
    return y, None


def conv2d_backward(dy, x, w, stride, padding, ctx, dw, db, need_dx):
    """Convolution backward, the batch shared out between numba's threads.

    The general forms (see :func:`_general`) go to the NumPy reference, as their forward did.

    Per chunk: one product ``block @ dY.T`` for the weight and bias gradients, and (if
    ``need_dx``) one product ``W.T @ dY`` scattered back by col2im. Each share sums its own
    samples' weight gradient; the shares' sums are added at the end.
    """
    if _general(w, stride, padding):
        return reference.sega_conv2d_backward(dy, x, w, stride, padding, ctx, dw, db, need_dx)
    x = np.ascontiguousarray(x)
    dy = np.ascontiguousarray(dy)
    plan = _Plan(x, w, stride, padding, dy)
    wt = np.ascontiguousarray(w.reshape(plan.f, -1).T)
    # Without an input gradient the loops never touch dx: x stands in for its type.
    dx = np.empty(x.shape, x.dtype) if need_dx else x
    parts = shares(plan.n, 2 * plan.macs)
    cols, dym, plane, grads, part = plan.scratch("conv_backward", parts, x.dtype, (plan.rows, plan.f),
                                                 (plan.rows, plan.f))
    run(_KERNELS[plan.s == 1][1], parts, dy, x, wt, dx, bool(need_dx), grads, part, cols, dym, plane,
        *plan.geometry())
    grad_t = np.add.reduce(grads, axis=0) if parts > 1 else grads[0]
    dw[...] = grad_t[:-1].T.reshape(dw.shape)
    db[...] = grad_t[-1]
    return dx if need_dx else None
