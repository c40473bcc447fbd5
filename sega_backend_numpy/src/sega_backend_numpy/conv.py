"""2-D convolution (cross-correlation, NCHW) as channel-major im2col + one batched matrix product.

Kernels may be rectangular (KH, KW), strides and paddings given per axis (hook API 1.2), as
pairs. Each sample's im2col matrix is (C*KH*KW, HO*WO): one row per input channel and kernel offset,
one column per output pixel. It is built with K*K slab copies, each moving a strided window of
the padded input into contiguous rows, and no transposes. The forward product
``W (F, C*K*K) @ cols (N, C*K*K, HO*WO)`` then gives (N, F, HO*WO), which *is* the NCHW output:
nothing is transposed back. The matrix is handed to the backward pass as ``ctx``; there the
input gradient's matrix ``W.T @ dY`` is scattered back with K*K slab additions (col2im).
"""

from __future__ import annotations

import numpy as np

from sega_core.hookspecs import hookimpl


def output_size(size: int, kernel: int, stride: int, padding) -> int:
    """Spatial output length of a convolution; ``padding`` is an int or a (before, after) pair."""
    before, after = (padding, padding) if isinstance(padding, int) else padding
    return (size + before + after - kernel) // stride + 1


def geometry(stride, padding):
    """``((SH, SW), ((top, bottom), (left, right)))`` from the hook's int or pair forms."""
    strides = (stride, stride) if isinstance(stride, int) else tuple(stride)
    pads = ((padding, padding), (padding, padding)) if isinstance(padding, int) else tuple(map(tuple, padding))
    return strides, pads


def _pad(x, pads):
    if not any(pads[0] + pads[1]):
        return x
    return np.pad(x, ((0, 0), (0, 0), pads[0], pads[1]))


def im2col(x, kernel, stride, padding):
    """(N, C, H, W) -> (N, C*KH*KW, HO*WO): row ``(c, i, j)`` of sample ``n`` holds the input
    pixel under kernel offset ``(i, j)`` of channel ``c`` for every output pixel."""
    n, c, h, w = x.shape
    kh, kw = kernel
    (sh, sw), pads = geometry(stride, padding)
    ho, wo = output_size(h, kh, sh, pads[0]), output_size(w, kw, sw, pads[1])
    xp = _pad(x, pads)
    cols = np.empty((n, c, kh, kw, ho, wo), x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = xp[:, :, i : i + sh * ho : sh, j : j + sw * wo : sw]
    return cols.reshape(n, c * kh * kw, ho * wo), ho, wo


def col2im(dcols, x_shape, kernel, stride, padding, ho, wo):
    """Add the rows of (N, C*KH*KW, HO*WO) gradients back onto an (N, C, H, W) image (im2col's adjoint)."""
    n, c, h, w = x_shape
    kh, kw = kernel
    (sh, sw), ((top, bottom), (left, right)) = geometry(stride, padding)
    dxp = np.zeros((n, c, h + top + bottom, w + left + right), dtype=dcols.dtype)
    d6 = dcols.reshape(n, c, kh, kw, ho, wo)
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i : i + sh * ho : sh, j : j + sw * wo : sw] += d6[:, :, i, j]
    if top or bottom or left or right:
        return np.ascontiguousarray(dxp[:, :, top : top + h, left : left + w])
    return dxp


@hookimpl
def sega_conv2d_forward(x, w, b, stride, padding):
    """Convolution forward; ``ctx`` is the im2col matrix."""
    n = x.shape[0]
    f = w.shape[0]
    cols, ho, wo = im2col(x, w.shape[2:], stride, padding)
    y = np.matmul(w.reshape(f, -1), cols)
    y += b[:, None]
    return y.reshape(n, f, ho, wo), cols


@hookimpl
def sega_conv2d_backward(dy, x, w, stride, padding, ctx, dw, db, need_dx):
    """Convolution backward from the saved im2col matrix."""
    f = w.shape[0]
    n, _, ho, wo = dy.shape
    cols = ctx if ctx is not None else im2col(x, w.shape[2:], stride, padding)[0]
    dy3 = dy.reshape(n, f, ho * wo)
    # One (F, C*K*K) product per sample, summed over the batch.
    np.sum(np.matmul(dy3, cols.transpose(0, 2, 1)), axis=0, out=dw.reshape(f, -1))
    np.sum(dy3, axis=(0, 2), out=db)
    if not need_dx:
        return None
    return col2im(np.matmul(w.reshape(f, -1).T, dy3), x.shape, w.shape[2:], stride, padding, ho, wo)
