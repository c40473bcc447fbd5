"""Fully connected layer: the NumPy reference's BLAS products, split across the team's threads.

The arithmetic is the reference's (``x @ w + b``; ``x.T @ dy``, ``dy.sum(0)``, ``dy @ w.T``).
What differs is who runs it: BLAS is held to one thread per team thread (see :mod:`._team`), so
OpenBLAS's own workers are never woken during training and cannot spin on a core that the next
convolution or recurrent kernel needs (measured on half a W3 epoch: 1.35 s with these kernels,
2.0 s with the reference's multi-threaded products). Large products are cut across the team;
small ones run on the calling thread.
"""

from __future__ import annotations

import numpy as np

from ._team import cut, team

#: Multiply-adds below which a product is left to BLAS as it is: OpenBLAS runs products this
#: small on the calling thread anyway (its GEMM_MULTITHREAD_THRESHOLD), so no thread is woken.
BLAS_SINGLE_THREADED_MACS = 1 << 18


def _share(products, share, shares):
    """Thread ``share`` of ``shares``: its slice of each ``out = a @ b``, cut along the longer
    side of ``out`` (measured on W2's and W3's shapes: the shorter side gives each thread a
    thin product that BLAS runs less efficiently, e.g. 800 vs 630 us for 128x784 @ 784x512)."""
    for a, b, out in products:
        if out.shape[0] >= out.shape[1]:
            lo, hi = cut(out.shape[0], shares)[share]
            np.matmul(a[lo:hi], b, out=out[lo:hi])
        else:
            lo, hi = cut(out.shape[1], shares)[share]
            np.matmul(a, b[:, lo:hi], out=out[:, lo:hi])


def _multiply(products, macs):
    """Run ``out = a @ b`` for each ``(a, b, out)`` of ``products`` (``macs`` multiply-adds each),
    every thread of the team taking one slice of every product."""
    crew = team()
    shares = crew.shares(macs, min(max(out.shape) for _, _, out in products))
    crew.run(_share, [(products, i, shares) for i in range(shares)])


def dense_forward(x, w, b):
    """``x @ w + b``; large products split across the team."""
    n, k = x.shape
    m = w.shape[1]
    if n * k * m <= BLAS_SINGLE_THREADED_MACS:
        y = x @ w
    else:
        y = np.empty((n, m), np.result_type(x, w))
        _multiply([(x, w, y)], n * k * m)
    y += b
    return y


def dense_backward(dy, x, w, dw, db, need_dx):
    """``dw = x.T @ dy``, ``db = dy.sum(0)``, ``dx = dy @ w.T``; each thread of the team takes a
    slice of both products at once (one hand-over instead of two)."""
    n, k = x.shape
    m = w.shape[1]
    np.sum(dy, axis=0, out=db)
    if n * k * m <= BLAS_SINGLE_THREADED_MACS:
        np.matmul(x.T, dy, out=dw)
        return dy @ w.T if need_dx else None
    products = [(x.T, dy, dw)]
    dx = None
    if need_dx:
        dx = np.empty((n, k), np.result_type(dy, w))
        products.append((dy, w.T, dx))
    _multiply(products, n * k * m)
    return dx
