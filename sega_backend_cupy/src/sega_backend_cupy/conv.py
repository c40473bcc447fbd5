"""2-D convolution (cross-correlation, NCHW) as im2col + one cuBLAS GEMM each way.

The im2col matrix is laid out (C*K*K, N*HO*WO) -- one row per (channel, kernel offset), one
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

_im2col_kernel = cupy.ElementwiseKernel(
    "raw T x, int32 channels, int32 height, int32 width, int32 ksize, int32 stride, int32 pad, "
    "int32 out_w, int32 opix, int64 ncols",
    "T col",
    r"""
    // col is (C*K*K, N*HO*WO): row r = (c, ki, kj), column q = (image, output pixel).
    const long long q = i % ncols;
    const long long r = i / ncols;
    const int kj = (int)(r % ksize);
    const int ki = (int)((r / ksize) % ksize);
    const int c = (int)(r / ((long long)ksize * ksize));
    const long long img = q / opix;
    const int pix = (int)(q - img * opix);
    const int ih = (pix / out_w) * stride - pad + ki;
    const int iw = (pix % out_w) * stride - pad + kj;
    col = (ih >= 0 && ih < height && iw >= 0 && iw < width)
        ? x[((img * channels + c) * height + ih) * width + iw]
        : (T)0;
    """,
    "sega_im2col",
)

_col2im_kernel = cupy.ElementwiseKernel(
    "raw T dcols, int32 channels, int32 height, int32 width, int32 ksize, int32 stride, int32 pad, "
    "int32 out_h, int32 out_w, int64 ncols",
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
    const int hp = xh + pad;
    const int wp = xw + pad;
    T acc = (T)0;
    for (int ki = 0; ki < ksize && ki <= hp; ++ki) {
        const int th = hp - ki;
        if (th % stride != 0) continue;
        const int oh = th / stride;
        if (oh >= out_h) continue;
        for (int kj = 0; kj < ksize && kj <= wp; ++kj) {
            const int tw = wp - kj;
            if (tw % stride != 0) continue;
            const int ow = tw / stride;
            if (ow >= out_w) continue;
            acc += dcols[((long long)(c * ksize + ki) * ksize + kj) * ncols + base + (long long)oh * out_w + ow];
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


def output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Spatial output length of a convolution."""
    return (size + 2 * padding - kernel) // stride + 1


def im2col(x, k, stride, padding):
    """(N, C, H, W) -> (C*K*K, N*HO*WO) in one launch; returns ``(cols, ho, wo)``."""
    x = contiguous(x)
    n, c, h, w = x.shape
    ho, wo = output_size(h, k, stride, padding), output_size(w, k, stride, padding)
    ncols = n * ho * wo
    cols = cupy.empty((c * k * k, ncols), dtype=x.dtype)
    _im2col_kernel(x, c, h, w, k, stride, padding, wo, ho * wo, ncols, cols)
    return cols, ho, wo


def col2im(dcols, x_shape, k, stride, padding, ho, wo):
    """Sum the gradient of im2col's entries back onto an (N, C, H, W) image, one launch."""
    n, c, h, w = x_shape
    dx = cupy.empty(x_shape, dtype=dcols.dtype)
    _col2im_kernel(dcols, c, h, w, k, stride, padding, ho, wo, n * ho * wo, dx)
    return dx


def conv2d_forward(x, w, b, stride, padding):
    """Convolution forward; ``ctx`` is the im2col matrix, reused by the backward pass."""
    f, _, k, _ = w.shape
    cols, ho, wo = im2col(x, k, stride, padding)
    n = x.shape[0]
    y2 = cupy.matmul(contiguous(w).reshape(f, -1), cols)
    y = cupy.empty((n, f, ho, wo), dtype=y2.dtype)
    _bias_nchw_kernel(y2, contiguous(b), f, ho * wo, n, y)
    return y, cols


def conv2d_backward(dy, x, w, stride, padding, ctx, dw, db, need_dx):
    """Overwrite ``dw`` and ``db``; return the input gradient if ``need_dx``."""
    f, _, k, _ = w.shape
    n, _, ho, wo = dy.shape
    cols = ctx if ctx is not None else im2col(x, k, stride, padding)[0]
    # (N, F, P) -> (F, N*P), the GEMM layout of the columns (one copy launch).
    dy2 = cupy.ascontiguousarray(dy.reshape(n, f, ho * wo).transpose(1, 0, 2)).reshape(f, n * ho * wo)
    matmul_into(dy2, cols.T, dw)
    cupy.sum(dy2, axis=1, out=db)
    if not need_dx:
        return None
    dcols = cupy.matmul(contiguous(w).reshape(f, -1).T, dy2)
    return col2im(dcols, x.shape, k, stride, padding, ho, wo)
