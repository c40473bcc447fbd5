"""2-D convolution (cross-correlation, NCHW) as channel-major im2col + one batched matrix product.

Each sample's im2col matrix is (C*K*K, HO*WO): one row per input channel and kernel offset,
one column per output pixel. It is built with K*K slab copies, each moving a strided window of
the padded input into contiguous rows, and no transposes. The forward product
``W (F, C*K*K) @ cols (N, C*K*K, HO*WO)`` then gives (N, F, HO*WO), which *is* the NCHW output:
nothing is transposed back. The matrix is handed to the backward pass as ``ctx``; there the
input gradient's matrix ``W.T @ dY`` is scattered back with K*K slab additions (col2im).
"""

from __future__ import annotations

import numpy as np

from sega_core.hookspecs import hookimpl


def output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Spatial output length of a convolution."""
    return (size + 2 * padding - kernel) // stride + 1


def _pad(x, padding):
    if padding == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))


def im2col(x, k, stride, padding):
    """(N, C, H, W) -> (N, C*K*K, HO*WO): row ``(c, i, j)`` of sample ``n`` holds the input pixel
    under kernel offset ``(i, j)`` of channel ``c`` for every output pixel."""
    n, c, h, w = x.shape
    ho, wo = output_size(h, k, stride, padding), output_size(w, k, stride, padding)
    xp = _pad(x, padding)
    cols = np.empty((n, c, k, k, ho, wo), x.dtype)
    for i in range(k):
        for j in range(k):
            cols[:, :, i, j] = xp[:, :, i : i + stride * ho : stride, j : j + stride * wo : stride]
    return cols.reshape(n, c * k * k, ho * wo), ho, wo


def col2im(dcols, x_shape, k, stride, padding, ho, wo):
    """Add the rows of (N, C*K*K, HO*WO) gradients back onto an (N, C, H, W) image (im2col's adjoint)."""
    n, c, h, w = x_shape
    dxp = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=dcols.dtype)
    d6 = dcols.reshape(n, c, k, k, ho, wo)
    for i in range(k):
        for j in range(k):
            dxp[:, :, i : i + stride * ho : stride, j : j + stride * wo : stride] += d6[:, :, i, j]
    if padding:
        return np.ascontiguousarray(dxp[:, :, padding:-padding, padding:-padding])
    return dxp


@hookimpl
def sega_conv2d_forward(x, w, b, stride, padding):
    """Convolution forward; ``ctx`` is the im2col matrix."""
    n = x.shape[0]
    f = w.shape[0]
    cols, ho, wo = im2col(x, w.shape[2], stride, padding)
    y = np.matmul(w.reshape(f, -1), cols)
    y += b[:, None]
    return y.reshape(n, f, ho, wo), cols


@hookimpl
def sega_conv2d_backward(dy, x, w, stride, padding, ctx, dw, db, need_dx):
    """Convolution backward from the saved im2col matrix."""
    f, _, k, _ = w.shape
    n, _, ho, wo = dy.shape
    cols = ctx if ctx is not None else im2col(x, k, stride, padding)[0]
    dy3 = dy.reshape(n, f, ho * wo)
    # One (F, C*K*K) product per sample, summed over the batch.
    np.sum(np.matmul(dy3, cols.transpose(0, 2, 1)), axis=0, out=dw.reshape(f, -1))
    np.sum(dy3, axis=(0, 2), out=db)
    if not need_dx:
        return None
    return col2im(np.matmul(w.reshape(f, -1).T, dy3), x.shape, k, stride, padding, ho, wo)
