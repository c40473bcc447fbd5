"""2-D convolution (cross-correlation, NCHW) as im2col + one cuBLAS GEMM each way.

Kernels may be rectangular and strides and padding given per axis (hook API 1.2). The im2col
matrix is laid out (C*KH*KW, N*HO*WO) -- one row per (channel, kernel offset), one
column per output pixel of the whole batch -- so the forward pass is a single plain GEMM
``W(F, C*K*K) @ cols``, the weight gradient a single GEMM ``dy(F, N*HO*WO) @ cols.T`` and the
column gradient a single GEMM ``W.T @ dy``. im2col and col2im are one kernel launch each: a
thread per element, col2im gathering (no atomics, so results are deterministic). The GEMM's
(F, N, HO*WO) result is moved to NCHW in the same launch that adds the bias.

Launches: forward 3 (im2col, GEMM, bias+layout); backward 3 for the weights (dy layout, GEMM,
bias sum) and 2 more when the input gradient is needed (GEMM, col2im).
"""

from __future__ import annotations

from ._cupy import contiguous, cupy, matmul_into

# Geometry shared by both kernels: kernel (kh, kw), strides (sh, sw), top and left padding.
_GEOMETRY = "int32 kh, int32 kw, int32 sh, int32 sw, int32 pt, int32 pl"

_im2col_kernel = cupy.ElementwiseKernel(
    f"raw T x, int32 channels, int32 height, int32 width, {_GEOMETRY}, int32 out_w, int32 opix, int64 ncols",
    "T col",
    r"""
    // col is (C*KH*KW, N*HO*WO): row r = (c, ki, kj), column q = (image, output pixel).
    const long long q = i % ncols;
    const long long r = i / ncols;
    const int kj = (int)(r % kw);
    const int ki = (int)((r / kw) % kh);
    const int c = (int)(r / ((long long)kh * kw));
    const long long img = q / opix;
    const int pix = (int)(q - img * opix);
    const int ih = (pix / out_w) * sh - pt + ki;
    const int iw = (pix % out_w) * sw - pl + kj;
    col = (ih >= 0 && ih < height && iw >= 0 && iw < width)
        ? x[((img * channels + c) * height + ih) * width + iw]
        : (T)0;
    """,
    "sega_im2col",
)

_col2im_kernel = cupy.ElementwiseKernel(
    f"raw T dcols, int32 channels, int32 height, int32 width, {_GEOMETRY}, int32 out_h, int32 out_w, int64 ncols",
    "T dx",
    r"""
    // Gather, for input pixel (img, c, xh, xw), every column entry that read it in im2col.
    const int xw = (int)(i % width);
    long long rest = i / width;
    const int xh = (int)(rest % height);
    rest /= height;
    const int c = (int)(rest % channels);
    const long long img = rest / channels;
    const long long base = img * ((long long)out_h * out_w);
    const int hp = xh + pt;
    const int wp = xw + pl;
    T acc = (T)0;
    for (int ki = 0; ki < kh && ki <= hp; ++ki) {
        const int th = hp - ki;
        if (th % sh != 0) continue;
        const int oh = th / sh;
        if (oh >= out_h) continue;
        for (int kj = 0; kj < kw && kj <= wp; ++kj) {
            const int tw = wp - kj;
            if (tw % sw != 0) continue;
            const int ow = tw / sw;
            if (ow >= out_w) continue;
            acc += dcols[((long long)(c * kh + ki) * kw + kj) * ncols + base + (long long)oh * out_w + ow];
        }
    }
    dx = acc;
    """,
    "sega_col2im",
)

_bias_nchw_kernel = cupy.ElementwiseKernel(
    "raw T y2, raw T b, int32 filters, int32 opix, int32 batch",
    "T y",
    r"""
    // y is (N, F, HO*WO); y2 is the GEMM's (F, N, HO*WO).
    const long long p = i % opix;
    const long long rest = i / opix;
    const int f = (int)(rest % filters);
    const long long img = rest / filters;
    y = y2[((long long)f * batch + img) * opix + p] + b[f];
    """,
    "sega_conv_bias_nchw",
)


def geometry(stride, padding):
    """``((SH, SW), ((top, bottom), (left, right)))`` from the hook's int or pair forms."""
    strides = (stride, stride) if isinstance(stride, int) else tuple(stride)
    pads = ((padding, padding), (padding, padding)) if isinstance(padding, int) else tuple(map(tuple, padding))
    return strides, pads


def im2col(x, kernel, stride, padding):
    """(N, C, H, W) -> (C*KH*KW, N*HO*WO) in one launch; returns ``(cols, ho, wo)``."""
    x = contiguous(x)
    n, c, h, w = x.shape
    kh, kw = kernel
    (sh, sw), ((top, bottom), (left, right)) = geometry(stride, padding)
    ho, wo = (h + top + bottom - kh) // sh + 1, (w + left + right - kw) // sw + 1
    ncols = n * ho * wo
    cols = cupy.empty((c * kh * kw, ncols), dtype=x.dtype)
    _im2col_kernel(x, c, h, w, kh, kw, sh, sw, top, left, wo, ho * wo, ncols, cols)
    return cols, ho, wo


def col2im(dcols, x_shape, kernel, stride, padding, ho, wo):
    """Sum the gradient of im2col's entries back onto an (N, C, H, W) image, one launch."""
    n, c, h, w = x_shape
    (sh, sw), ((top, _), (left, _)) = geometry(stride, padding)
    dx = cupy.empty(x_shape, dtype=dcols.dtype)
    _col2im_kernel(dcols, c, h, w, kernel[0], kernel[1], sh, sw, top, left, ho, wo, n * ho * wo, dx)
    return dx


def conv2d_forward(x, w, b, stride, padding):
    """Convolution forward; ``ctx`` is the im2col matrix, reused by the backward pass."""
    f = w.shape[0]
    cols, ho, wo = im2col(x, w.shape[2:], stride, padding)
    n = x.shape[0]
    y2 = cupy.matmul(contiguous(w).reshape(f, -1), cols)
    y = cupy.empty((n, f, ho, wo), dtype=y2.dtype)
    _bias_nchw_kernel(y2, contiguous(b), f, ho * wo, n, y)
    return y, cols


def conv2d_backward(dy, x, w, stride, padding, ctx, dw, db, need_dx):
    """Overwrite ``dw`` and ``db``; return the input gradient if ``need_dx``."""
    f = w.shape[0]
    n, _, ho, wo = dy.shape
    cols = ctx if ctx is not None else im2col(x, w.shape[2:], stride, padding)[0]
    # (N, F, P) -> (F, N*P), the GEMM layout of the columns (one copy launch).
    dy2 = cupy.ascontiguousarray(dy.reshape(n, f, ho * wo).transpose(1, 0, 2)).reshape(f, n * ho * wo)
    matmul_into(dy2, cols.T, dw)
    cupy.sum(dy2, axis=1, out=db)
    if not need_dx:
        return None
    dcols = cupy.matmul(contiguous(w).reshape(f, -1).T, dy2)
    return col2im(dcols, x.shape, w.shape[2:], stride, padding, ho, wo)
