"""Max and average pooling over NCHW: loops over the window's offsets (a few), never over pixels.

Each offset ``(kh, kw)`` of the window reads one strided view of the padded input, which holds
that offset's element of every window at once. Padding is ``-inf`` for the maximum and excluded
from the average's count, so it never takes part in a result.
"""

from __future__ import annotations

import numpy as np

from sega_core.hookspecs import hookimpl


def _geometry(x, pool, stride, padding):
    (ph, pw), (sh, sw), ((top, bottom), (left, right)) = pool, stride, padding
    h, w = x.shape[2] + top + bottom, x.shape[3] + left + right
    return (h - ph) // sh + 1, (w - pw) // sw + 1


def _padded(x, padding, fill):
    ((top, bottom), (left, right)) = padding
    if not (top or bottom or left or right):
        return x
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=fill)


def _window_views(padded, pool, stride, out_h, out_w):
    """``((kh, kw), view)`` for every window offset: ``view[n, c, i, j]`` is that offset's
    element of window ``(i, j)``."""
    (ph, pw), (sh, sw) = pool, stride
    for kh in range(ph):
        for kw in range(pw):
            yield (kh, kw), padded[:, :, kh : kh + sh * (out_h - 1) + 1 : sh, kw : kw + sw * (out_w - 1) + 1 : sw]


@hookimpl
def sega_maxpool2d_forward(x, pool, stride, padding):
    """The window maximum; ``ctx`` holds each window's winning offset (first in row-major order)."""
    out_h, out_w = _geometry(x, pool, stride, padding)
    padded = _padded(x, padding, -np.inf)
    y = np.full((x.shape[0], x.shape[1], out_h, out_w), -np.inf, dtype=x.dtype)
    winner = np.zeros(y.shape, dtype=np.int32)
    for (kh, kw), view in _window_views(padded, pool, stride, out_h, out_w):
        better = view > y
        np.copyto(y, view, where=better)
        winner[better] = kh * pool[1] + kw
    return y, winner


def _scatter(dy_per_offset, x, pool, stride, padding):
    """Add each offset's share of ``dy`` back at its input position; return the unpadded sum."""
    ((top, bottom), (left, right)) = padding
    out_h, out_w = dy_per_offset(0, 0).shape[2:]
    dx = np.zeros((x.shape[0], x.shape[1], x.shape[2] + top + bottom, x.shape[3] + left + right), dtype=x.dtype)
    for (kh, kw), view in _window_views(dx, pool, stride, out_h, out_w):
        view += dy_per_offset(kh, kw)
    return dx[:, :, top : top + x.shape[2], left : left + x.shape[3]].copy()


@hookimpl
def sega_maxpool2d_backward(dy, x, pool, stride, padding, ctx):
    """Each window's gradient to its winning position."""
    return _scatter(lambda kh, kw: np.where(ctx == kh * pool[1] + kw, dy, 0).astype(dy.dtype, copy=False),
                    x, pool, stride, padding)


def _counts(x, pool, stride, padding, out_h, out_w):
    """How many input elements each window holds (1, 1, HO, WO)."""
    ones = _padded(np.ones((1, 1) + x.shape[2:], dtype=x.dtype), padding, 0)
    total = np.zeros((1, 1, out_h, out_w), dtype=x.dtype)
    for _, view in _window_views(ones, pool, stride, out_h, out_w):
        total += view
    return total


@hookimpl
def sega_avgpool2d_forward(x, pool, stride, padding):
    """The mean of each window's input elements; ``ctx`` is the element counts."""
    out_h, out_w = _geometry(x, pool, stride, padding)
    padded = _padded(x, padding, 0)
    total = np.zeros((x.shape[0], x.shape[1], out_h, out_w), dtype=x.dtype)
    for _, view in _window_views(padded, pool, stride, out_h, out_w):
        total += view
    counts = _counts(x, pool, stride, padding, out_h, out_w)
    total /= counts
    return total, counts


@hookimpl
def sega_avgpool2d_backward(dy, x, pool, stride, padding, ctx):
    """Each window's gradient spread evenly over its input elements."""
    counts = ctx if ctx is not None else _counts(x, pool, stride, padding, *dy.shape[2:])
    share = dy / counts
    return _scatter(lambda kh, kw: share, x, pool, stride, padding)
