"""Fully connected layer: cuBLAS GEMMs, gradients written straight into the model's buffers."""

from __future__ import annotations

from ._cupy import cupy, matmul_into


def dense_forward(x, w, b):
    """``x @ w + b``: one GEMM, then the bias added in place (one broadcast launch)."""
    y = cupy.matmul(x, w)
    y += b
    return y


def dense_backward(dy, x, w, dw, db, need_dx):
    """Overwrite ``dw`` with ``x.T @ dy`` and ``db`` with ``dy.sum(0)``; return ``dy @ w.T``.

    The transposes are views: cuBLAS reads them with its transpose flags, no copies.
    """
    matmul_into(x.T, dy, dw)
    cupy.sum(dy, axis=0, out=db)
    return cupy.matmul(dy, w.T) if need_dx else None
