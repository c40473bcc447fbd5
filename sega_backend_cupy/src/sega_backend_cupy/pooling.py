"""Max and average pooling on the GPU: one elementwise kernel per pass, no atomics.

Forward runs one thread per output element, looping over its window's input pixels (padding is
skipped, so it never takes part). Backward runs one thread per *input* element and gathers from
every window that holds it, so overlapping windows need no atomic additions: a max-pool input
pixel collects the ``dy`` of the windows it won, an average-pool pixel ``dy / count`` of each.
"""

from __future__ import annotations

from ._cupy import contiguous, cupy

_GEOMETRY = "int32 H, int32 W, int32 HO, int32 WO, int32 PH, int32 PW, int32 SH, int32 SW, int32 PT, int32 PL"

# One output element: its plane (sample and channel) and window origin in unpadded coordinates.
_OUTPUT_WINDOW = """
    const long long plane = i / ((long long)HO * WO);
    const int oh = (int)((i / WO) % HO), ow = (int)(i % WO);
    const int h0 = oh * SH - PT, w0 = ow * SW - PL;
    const T* src = &x[plane * H * W];
"""


def _forward_kernel(outputs: str, start: str, visit: str, finish: str, name: str):
    """A forward kernel: per output element, ``start``, then ``visit`` for each pixel of its window
    inside the image (``r``, ``c`` and its index ``r * W + c`` in ``src``; padding is skipped),
    then ``finish``."""
    return cupy.ElementwiseKernel(
        f"raw T x, {_GEOMETRY}",
        outputs,
        _OUTPUT_WINDOW + start + """
    for (int kh = 0; kh < PH; ++kh) {
        const int r = h0 + kh;
        if (r < 0 || r >= H) continue;
        for (int kw = 0; kw < PW; ++kw) {
            const int c = w0 + kw;
            if (c < 0 || c >= W) continue;
""" + visit + """
        }
    }
""" + finish,
        name,
    )


_max_forward = _forward_kernel(
    "T y, int32 arg",
    "    T best = (T)0; int where = -1;\n",
    """            const T v = src[r * W + c];
            if (where < 0 || v > best) { best = v; where = r * W + c; }
""",
    "    y = best; arg = where;\n",
    "sega_maxpool_forward",
)

_avg_forward = _forward_kernel(
    "T y",
    "    T total = (T)0; int count = 0;\n",
    "            total += src[r * W + c]; ++count;\n",
    "    y = total / (T)count;\n",
    "sega_avgpool_forward",
)

# One input element, and the range of windows holding it along each axis.
_INPUT_WINDOWS = """
    const long long plane = i / ((long long)H * W);
    const int r = (int)((i / W) % H), c = (int)(i % W);
    const int pr = r + PT, pc = c + PL;
    const int oh_lo = pr < PH ? 0 : (pr - PH) / SH + 1, oh_hi = min(pr / SH, HO - 1);
    const int ow_lo = pc < PW ? 0 : (pc - PW) / SW + 1, ow_hi = min(pc / SW, WO - 1);
    const long long base = plane * HO * WO;
    T total = (T)0;
"""

_max_backward = cupy.ElementwiseKernel(
    f"raw T dy, raw int32 arg, {_GEOMETRY}",
    "T dx",
    _INPUT_WINDOWS
    + """
    const int me = r * W + c;
    for (int oh = oh_lo; oh <= oh_hi; ++oh)
        for (int ow = ow_lo; ow <= ow_hi; ++ow)
            if (arg[base + oh * WO + ow] == me) total += dy[base + oh * WO + ow];
    dx = total;
    """,
    "sega_maxpool_backward",
)

_avg_backward = cupy.ElementwiseKernel(
    f"raw T dy, {_GEOMETRY}",
    "T dx",
    _INPUT_WINDOWS
    + """
    for (int oh = oh_lo; oh <= oh_hi; ++oh) {
        const int rows = min(oh * SH - PT + PH, H) - max(oh * SH - PT, 0);
        for (int ow = ow_lo; ow <= ow_hi; ++ow) {
            const int cols = min(ow * SW - PL + PW, W) - max(ow * SW - PL, 0);
            total += dy[base + oh * WO + ow] / (T)(rows * cols);
        }
    }
    dx = total;
    """,
    "sega_avgpool_backward",
)


def _geometry(x, pool, stride, padding):
    (ph, pw), (sh, sw), ((top, bottom), (left, right)) = pool, stride, padding
    n, c, h, w = x.shape
    ho, wo = (h + top + bottom - ph) // sh + 1, (w + left + right - pw) // sw + 1
    return (n, c, ho, wo), (h, w, ho, wo, ph, pw, sh, sw, top, left)


def maxpool2d_forward(x, pool, stride, padding):
    """The window maxima; ``ctx`` is each window's winning position in its (H, W) plane."""
    x = contiguous(x)
    shape, geometry = _geometry(x, pool, stride, padding)
    y = cupy.empty(shape, dtype=x.dtype)
    arg = cupy.empty(shape, dtype=cupy.int32)
    _max_forward(x, *geometry, y, arg)
    return y, arg


def maxpool2d_backward(dy, x, pool, stride, padding, ctx):
    """Each input pixel gathers the gradient of the windows it won."""
    _, geometry = _geometry(x, pool, stride, padding)
    dx = cupy.empty(x.shape, dtype=dy.dtype)
    _max_backward(contiguous(dy), ctx, *geometry, dx)
    return dx


def avgpool2d_forward(x, pool, stride, padding):
    """The window means over their input pixels; no ``ctx``."""
    x = contiguous(x)
    shape, geometry = _geometry(x, pool, stride, padding)
    y = cupy.empty(shape, dtype=x.dtype)
    _avg_forward(x, *geometry, y)
    return y, None


def avgpool2d_backward(dy, x, pool, stride, padding, ctx):
    """Each input pixel gathers ``dy / count`` of every window holding it."""
    _, geometry = _geometry(x, pool, stride, padding)
    dx = cupy.empty(x.shape, dtype=dy.dtype)
    _avg_backward(contiguous(dy), *geometry, dx)
    return dx
