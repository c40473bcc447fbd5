"""2-D convolution (cross-correlation, NCHW) as im2col + one matrix product.

The im2col matrix is built from a strided view of the padded input (no Python loop over pixels)
and handed to the backward pass as ``ctx`` so it is not rebuilt. col2im loops over the K*K kernel
offsets only, each one a vectorised strided add.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from sega_core.hookspecs import hookimpl


def output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Spatial output length of a convolution."""
    return (size + 2 * padding - kernel) // stride + 1


def _pad(x, padding):
    if padding == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))


def im2col(x, k, stride, padding):
    """(N, C, H, W) -> (N*HO*WO, C*K*K): one row per output pixel, its receptive field."""
    n, c = x.shape[:2]
    windows = sliding_window_view(_pad(x, padding), (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
    ho, wo = windows.shape[2:4]
    # (N, C, HO, WO, K, K) -> (N, HO, WO, C, K, K): contiguous rows of C*K*K.
    return np.ascontiguousarray(windows.transpose(0, 2, 3, 1, 4, 5)).reshape(n * ho * wo, c * k * k), ho, wo


def col2im(dcols, x_shape, k, stride, padding, ho, wo):
    """Scatter-add the gradient of im2col's rows back onto an (N, C, H, W) image."""
    n, c, h, w = x_shape
    dxp = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=dcols.dtype)
    d6 = dcols.reshape(n, ho, wo, c, k, k).transpose(0, 3, 1, 2, 4, 5)
    for i in range(k):
        for j in range(k):
            dxp[:, :, i : i + stride * ho : stride, j : j + stride * wo : stride] += d6[..., i, j]
    if padding:
        return np.ascontiguousarray(dxp[:, :, padding:-padding, padding:-padding])
    return dxp


@hookimpl
def sega_conv2d_forward(x, w, b, stride, padding):
    """Convolution forward; ``ctx`` is the im2col matrix."""
    n = x.shape[0]
    f, _, k, _ = w.shape
    cols, ho, wo = im2col(x, k, stride, padding)
    y = cols @ w.reshape(f, -1).T
    y += b
    return np.ascontiguousarray(y.reshape(n, ho, wo, f).transpose(0, 3, 1, 2)), cols


@hookimpl
def sega_conv2d_backward(dy, x, w, stride, padding, ctx, dw, db, need_dx):
    """Convolution backward from the saved im2col matrix."""
    f, _, k, _ = w.shape
    n, _, ho, wo = dy.shape
    cols = ctx if ctx is not None else im2col(x, k, stride, padding)[0]
    dy2 = dy.transpose(0, 2, 3, 1).reshape(n * ho * wo, f)
    np.matmul(dy2.T, cols, out=dw.reshape(f, -1))
    np.sum(dy, axis=(0, 2, 3), out=db)
    if not need_dx:
        return None
    return col2im(dy2 @ w.reshape(f, -1), x.shape, k, stride, padding, ho, wo)
