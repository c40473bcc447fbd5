"""Fully connected layer: the NumPy reference's BLAS products, split across the team's threads.

The arithmetic is the reference's (``x @ w + b``; ``x.T @ dy``, ``dy.sum(0)``, ``dy @ w.T``).
What differs is who runs it: BLAS is held to one thread per team thread (see :mod:`._team`), so
OpenBLAS's own workers are never woken during training and cannot spin on a core that the next
convolution or recurrent kernel needs. Large products are cut by rows across the team; small
ones run on the calling thread.
"""

from __future__ import annotations

import numpy as np

from ._team import cut, team

#: Multiply-adds below which a product is left to BLAS as it is: OpenBLAS runs products this
#: small on the calling thread anyway (its GEMM_MULTITHREAD_THRESHOLD), so no thread is woken.
BLAS_SINGLE_THREADED_MACS = 1 << 18
#: Multiply-adds each thread must get for a split to pay for waking it (about 60 us).
MIN_MACS_PER_THREAD = 1 << 22


def _rows_per_thread(macs_per_row: int) -> int:
    return max(1, -(-MIN_MACS_PER_THREAD // max(1, macs_per_row)))


def _forward_rows(x, w, b, y, lo, hi):
    np.matmul(x[lo:hi], w, out=y[lo:hi])
    y[lo:hi] += b


def dense_forward(x, w, b):
    """``x @ w + b``, rows of the batch split across the team when the product is large."""
    n, k = x.shape
    m = w.shape[1]
    if n * k * m <= BLAS_SINGLE_THREADED_MACS:
        y = x @ w
        y += b
        return y
    y = np.empty((n, m), np.result_type(x, w))
    crew = team()
    crew.run(_forward_rows, [(x, w, b, y, lo, hi) for lo, hi in crew.ranges(n, _rows_per_thread(k * m))])
    return y


def _backward_part(dy, x, w, dw, dx, rows, inputs):
    """One thread's share: rows ``inputs`` of ``dw`` and rows ``rows`` of ``dx``."""
    i0, i1 = inputs
    np.matmul(x[:, i0:i1].T, dy, out=dw[i0:i1])
    if dx is not None:
        lo, hi = rows
        np.matmul(dy[lo:hi], w.T, out=dx[lo:hi])


def dense_backward(dy, x, w, dw, db, need_dx):
    """``dw = x.T @ dy`` (split by input features), ``db = dy.sum(0)``, ``dx = dy @ w.T`` (split
    by rows of the batch), each thread taking one share of both products."""
    n, k = x.shape
    m = w.shape[1]
    np.sum(dy, axis=0, out=db)
    if n * k * m <= BLAS_SINGLE_THREADED_MACS:
        np.matmul(x.T, dy, out=dw)
        return dy @ w.T if need_dx else None
    dx = np.empty((n, k), np.result_type(dy, w)) if need_dx else None
    crew = team()
    # Both products have n*k*m multiply-adds; the number of shares is set by the smaller side
    # so that every share of each product has enough work.
    shares = min(len(crew.ranges(n, _rows_per_thread(k * m))), len(crew.ranges(k, _rows_per_thread(n * m))))
    crew.run(_backward_part, [(dy, x, w, dw, dx, rows, inputs) for rows, inputs in zip(cut(n, shares), cut(k, shares))])
    return dx
