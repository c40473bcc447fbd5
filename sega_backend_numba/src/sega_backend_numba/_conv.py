"""2-D convolution (cross-correlation, NCHW): compiled im2col/col2im around BLAS matrix products.

The NumPy reference builds one im2col matrix for the whole batch (N*HO*WO rows of C*K*K, 29 MB
for a 64x16x28x28 batch and a 3x3 kernel), multiplies it, transposes the result back to NCHW, and
scatters the input gradient with K*K strided adds. Here:

* the batch is processed in chunks of a few samples whose im2col block fits in the CPU cache
  (about 2 MiB), so the block is written and read by the matrix product while still cached,
  instead of streaming tens of megabytes through memory, and the block lives in a scratch buffer
  that is reused (no page faults on a fresh allocation per call);
* each sample's block is laid out (C*K*K + 1, HO*WO), so ``W @ block`` is already that sample's
  output in NCHW order: no transpose;
* the extra row of ones carries the bias through the same matrix product (``[W | b] @ [cols; 1]``)
  and gives the bias gradient for free in the weight-gradient product (its last column);
* col2im is a compiled loop over each (sample, channel) plane: K*K contiguous row adds per
  output row, on a plane that stays in the L1 cache;
* nothing is kept between forward and backward (``ctx`` is ``None``): the backward pass rebuilds
  each chunk's block, which costs less than keeping the whole batch's block in memory.

Matrix products stay in NumPy (BLAS, multi-threaded); the compiled loops run between them on
the calling thread (see :mod:`._jit` for why they are not threaded).
"""

from __future__ import annotations

import numpy as np

from ._jit import jit, scalar
from ._workspace import workspace

#: Bytes of im2col block per chunk: small enough to stay in cache, big enough that the matrix
#: products are efficient and the per-chunk Python overhead is small.
CHUNK_BYTES = 2 << 20


@scalar
def _im2col_plane(x, n0, j, c, k, s, p, ho, wo, cols):
    """Rows c*K*K .. c*K*K + K*K - 1 of sample ``j`` of the block, from input plane (n0+j, c)."""
    h = x.shape[2]
    w = x.shape[3]
    zero = x.dtype.type(0)
    for ki in range(k):
        for kj in range(k):
            r = (c * k + ki) * k + kj
            off = kj - p
            # Output columns whose input column ow*s + off falls inside the image.
            lo = min(wo, max(0, (p - kj + s - 1) // s))
            hi = max(lo, min(wo, (w - 1 - off) // s + 1))
            for oh in range(ho):
                ih = oh * s + ki - p
                base = oh * wo
                for ow in range(wo):
                    cols[j, r, base + ow] = zero


@jit()
def _im2col(x, n0, k, s, p, ho, wo, cols):
    """Fill ``cols`` (m, C*K*K + 1, HO*WO) from samples n0 .. n0+m-1 of ``x``; last row ones."""
    m = cols.shape[0]
    c_ = x.shape[1]
    one = x.dtype.type(1)
    last = cols.shape[1] - 1
    for jc in range(m * c_):
        _im2col_plane(x, n0, jc // c_, jc % c_, k, s, p, ho, wo, cols)
    for j in range(m):
        for q in range(ho * wo):
            cols[j, last, q] = one


@scalar
def _col2im_plane(dcols, n0, j, c, k, s, p, ho, wo, dx):
    """Sum the block's gradient rows of channel ``c`` back onto plane (n0+j, c) of ``dx``."""
    h = dx.shape[2]
    w = dx.shape[3]
    zero = dx.dtype.type(0)
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
                base = oh * wo
                for ow in range(lo, hi):
                    dx[n0 + j, c, ih, ow * s + off] += dcols[j, r, base + ow]


@jit()
def _col2im(dcols, n0, k, s, p, ho, wo, dx):
    """Scatter ``dcols`` (m, >= C*K*K, HO*WO) onto samples n0 .. n0+m-1 of ``dx`` (overwritten)."""
    m = dcols.shape[0]
    c_ = dx.shape[1]
    for jc in range(m * c_):
        _col2im_plane(dcols, n0, jc // c_, jc % c_, k, s, p, ho, wo, dx)


def _geometry(x, w, stride, padding):
    n, c, h, wd = x.shape
    f, _, k, _ = w.shape
    ho = (h + 2 * padding - k) // stride + 1
    wo = (wd + 2 * padding - k) // stride + 1
    ckk = c * k * k
    per_sample = (ckk + 1) * ho * wo * x.itemsize
    chunk = max(1, min(n, CHUNK_BYTES // max(per_sample, 1)))
    return n, f, k, ho, wo, ckk, chunk


def _weights_with_bias(w, b):
    """``[W | b]``: (F, C*K*K + 1), the bias as the weight of the block's row of ones."""
    f = w.shape[0]
    wb = np.empty((f, w[0].size + 1), w.dtype)
    wb[:, :-1] = w.reshape(f, -1)
    wb[:, -1] = b
    return wb


def conv2d_forward(x, w, b, stride, padding):
    """Convolution forward, chunk by chunk: compiled im2col, then one BLAS product per chunk."""
    x = np.ascontiguousarray(x)
    n, f, k, ho, wo, ckk, chunk = _geometry(x, w, stride, padding)
    wb = _weights_with_bias(w, b)
    y = np.empty((n, f, ho * wo), x.dtype)
    for n0 in range(0, n, chunk):
        n1 = min(n, n0 + chunk)
        cols = workspace("conv", (n1 - n0, ckk + 1, ho * wo), x.dtype)
        _im2col(x, n0, k, stride, padding, ho, wo, cols)
        np.matmul(wb, cols, out=y[n0:n1])
    return y.reshape(n, f, ho, wo), None


def conv2d_backward(dy, x, w, stride, padding, ctx, dw, db, need_dx):
    """Convolution backward: weight and bias gradients from rebuilt im2col chunks, input
    gradient by compiled col2im of ``[W | b].T @ dy`` (the bias row of that product is unused).
    """
    x = np.ascontiguousarray(x)
    n, f, k, ho, wo, ckk, chunk = _geometry(x, w, stride, padding)
    dy3 = np.ascontiguousarray(dy).reshape(n, f, ho * wo)
    grad = np.zeros((f, ckk + 1), x.dtype)
    wbt = None
    dx = None
    if need_dx:
        # Any last column will do: the row of the product it makes is never read.
        wbt = _weights_with_bias(w, np.zeros(f, w.dtype)).T
        dx = np.empty(x.shape, x.dtype)
    for n0 in range(0, n, chunk):
        n1 = min(n, n0 + chunk)
        cols = workspace("conv", (n1 - n0, ckk + 1, ho * wo), x.dtype)
        _im2col(x, n0, k, stride, padding, ho, wo, cols)
        grad += np.matmul(dy3[n0:n1], cols.transpose(0, 2, 1)).sum(axis=0)
        if need_dx:
            np.matmul(wbt, dy3[n0:n1], out=cols)
            _col2im(cols, n0, k, stride, padding, ho, wo, dx)
    dw[...] = grad[:, :ckk].reshape(dw.shape)
    db[...] = grad[:, ckk]
    return dx
