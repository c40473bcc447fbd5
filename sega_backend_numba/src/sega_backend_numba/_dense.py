"""Fully connected layer: the reference's matrix products, large ones shared out between threads.

The arithmetic is the reference's (``x @ w + b``; ``x.T @ dy``, ``dy.sum(0)``, ``dy @ w.T``).
What differs is who runs it: large products are cut into one share per thread
(:mod:`._parallel`), each share a single-threaded BLAS call through numba's ``np.dot``, so
BLAS never wakes threads of its own during training (they would spin on a core the next
kernel's shares need). Small products stay on the calling thread, through NumPy.

How each product is cut (numba's ``np.dot`` takes only C- or Fortran-ordered arrays, so a
share must be a block of whole rows, or a transposed one):

* ``y = x @ w + b``: rows of ``x`` and ``y`` (samples); each share adds the bias to its rows.
* ``dx = dy @ w.T``: rows likewise.
* ``dw = x.T @ dy``: rows of ``dw`` (input features), each share copying its columns of ``x``
  into a contiguous block first; or, when that copy would cost more than adding up per-share
  partial products (many samples, few outputs: W3's 25088-to-10 layer), each share multiplies
  its own samples into a full-size partial ``dw`` and the partials are added at the end.
"""

from __future__ import annotations

import numba
import numpy as np

from ._parallel import kernel, run, shares, span
from ._workspace import workspace

#: Multiply-adds below which a product runs on the calling thread through NumPy: sharing out
#: such small products costs more than it saves.
BLAS_SINGLE_THREADED_MACS = 1 << 18


@kernel
def _forward(x, w, b, y, parts):
    for i in numba.prange(parts):
        lo, hi = span(np.int64(i), x.shape[0], parts)
        out = y[lo:hi]
        np.dot(x[lo:hi], w, out)
        for r in range(hi - lo):
            row = out[r]
            for j in range(b.shape[0]):
                row[j] += b[j]


@kernel
def _backward(dy, x, w, dw, dx, need_dx, by_samples, scratch, parts):
    """Each share's part of ``dw`` (its rows, or when ``by_samples`` its samples' partial sum
    into ``scratch[share]``) and of ``dx`` (its rows) when ``need_dx``."""
    n, k = x.shape
    for i in numba.prange(parts):
        share = np.int64(i)
        if by_samples:
            lo, hi = span(share, n, parts)
            partial = scratch[share][: k * dw.shape[1]].reshape(k, dw.shape[1])
            np.dot(x[lo:hi].T, dy[lo:hi], partial)
        else:
            lo, hi = span(share, k, parts)
            columns = scratch[share][: n * (hi - lo)].reshape(n, hi - lo)
            for r in range(n):
                src, dst = x[r], columns[r]
                for j in range(hi - lo):
                    dst[j] = src[lo + j]
            np.dot(columns.T, dy, dw[lo:hi])
        if need_dx:
            lo, hi = span(share, n, parts)
            np.dot(dy[lo:hi], w.T, dx[lo:hi])


def _check(x, w, b=None, dy=None):
    # The compiled shares do not check shapes, and must not raise: refuse mismatches here.
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[0]:
        raise ValueError(f"dense needs x (N, IN) and w (IN, OUT); got {x.shape} and {w.shape}")
    if b is not None and b.shape != (w.shape[1],):
        raise ValueError(f"dense needs b of shape {(w.shape[1],)}, got {b.shape}")
    if dy is not None and dy.shape != (x.shape[0], w.shape[1]):
        raise ValueError(f"dense backward needs dy of shape {(x.shape[0], w.shape[1])}, got {dy.shape}")


def dense_forward(x, w, b):
    """``x @ w + b``; large products shared out by rows."""
    n, k = x.shape
    m = w.shape[1]
    parts = 1 if n * k * m <= BLAS_SINGLE_THREADED_MACS else shares(n, k * m)
    if parts == 1:
        y = x @ w
        y += b
        return y
    _check(x, w, b)
    x, w, b = (np.ascontiguousarray(a) for a in (x, w, b))
    y = np.empty((n, m), x.dtype)
    run(_forward, parts, x, w, b, y)
    return y


def dense_backward(dy, x, w, dw, db, need_dx):
    """``dw = x.T @ dy``, ``db = dy.sum(0)``, ``dx = dy @ w.T``; large products shared out."""
    n, k = x.shape
    m = w.shape[1]
    np.add.reduce(dy, axis=0, out=db)
    parts = 1 if n * k * m <= BLAS_SINGLE_THREADED_MACS else shares(min(n, k), n * k * m / min(n, k))
    if parts == 1:
        np.matmul(x.T, dy, out=dw)
        return dy @ w.T if need_dx else None
    _check(x, w, dy=dy)
    x, w, dy = (np.ascontiguousarray(a) for a in (x, w, dy))
    # Copying each share's columns of x moves N*IN numbers; adding up partial products moves
    # parts*IN*OUT: the cheaper wins.
    by_samples = n > parts * m
    size = k * m if by_samples else n * (k // parts + 1)
    scratch = workspace("dense_backward", (parts, size), x.dtype)
    target = dw if dw.flags.c_contiguous else np.empty(dw.shape, dw.dtype)
    dx = np.empty((n, k), x.dtype) if need_dx else x  # x stands in for dx's type, never written
    run(_backward, parts, dy, x, w, target, dx, bool(need_dx), by_samples, scratch)
    if by_samples:
        np.add.reduce(scratch.reshape(parts, k, m), axis=0, out=target)
    if target is not dw:
        dw[...] = target
    return dx if need_dx else None
