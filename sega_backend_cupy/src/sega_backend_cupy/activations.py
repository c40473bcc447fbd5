"""Activation kernels: one fused elementwise launch each way (softmax: one warp-per-row launch).

Each kernel is templated on ``T`` (cupy picks float or double from the arrays, and casts Python
scalars such as ``alpha`` to ``T``), so dtypes are preserved and nothing is promoted.
"""

from __future__ import annotations

import numpy as np

from . import _rowwise
from ._cupy import contiguous, cupy

_sigmoid_forward = cupy.ElementwiseKernel(
    "T z",
    "T y",
    # exp only ever sees -|z| <= 0, so it cannot overflow (the reference's formula).
    "const T e = exp(-fabs(z)); y = z >= (T)0 ? (T)1 / ((T)1 + e) : e / ((T)1 + e);",
    "sega_sigmoid_forward",
)
_sigmoid_backward = cupy.ElementwiseKernel("T dy, T y", "T dz", "dz = dy * y * ((T)1 - y);", "sega_sigmoid_backward")
_tanh_forward = cupy.ElementwiseKernel("T z", "T y", "y = tanh(z);", "sega_tanh_forward")
_tanh_backward = cupy.ElementwiseKernel("T dy, T y", "T dz", "dz = dy * ((T)1 - y * y);", "sega_tanh_backward")
# ``z < 0 ? 0 : z`` rather than ``z > 0 ? z : 0`` so a NaN passes through, as np.maximum does.
_relu_forward = cupy.ElementwiseKernel("T z", "T y", "y = z < (T)0 ? (T)0 : z;", "sega_relu_forward")
_relu_backward = cupy.ElementwiseKernel("T dy, T z", "T dz", "dz = z > (T)0 ? dy : (T)0;", "sega_relu_backward")
_leaky_forward = cupy.ElementwiseKernel("T z, T alpha", "T y", "y = z > (T)0 ? z : z * alpha;", "sega_leaky_relu_forward")
_leaky_backward = cupy.ElementwiseKernel(
    "T dy, T z, T alpha", "T dz", "dz = z > (T)0 ? dy : dy * alpha;", "sega_leaky_relu_backward"
)


def sigmoid_forward(z):
    """Logistic function, overflow-free for large ``|z|``."""
    return _sigmoid_forward(z)


def sigmoid_backward(dy, z, y):
    """``dy * y * (1 - y)`` from the forward output."""
    return _sigmoid_backward(dy, y)


def tanh_forward(z):
    """Hyperbolic tangent."""
    return _tanh_forward(z)


def tanh_backward(dy, z, y):
    """``dy * (1 - y**2)`` from the forward output."""
    return _tanh_backward(dy, y)


def relu_forward(z):
    """``max(z, 0)``."""
    return _relu_forward(z)


def relu_backward(dy, z, y):
    """Pass ``dy`` where ``z > 0`` (the derivative at 0 is 0)."""
    return _relu_backward(dy, z)


def leaky_relu_forward(z, alpha):
    """``z`` where ``z > 0``, else ``alpha * z``."""
    return _leaky_forward(z, alpha)


def leaky_relu_backward(dy, z, y, alpha):
    """``dy`` where ``z > 0``, else ``alpha * dy``."""
    return _leaky_backward(dy, z, alpha)


def softmax_forward(z):
    """Softmax over the last axis, shifted by the row maximum: one launch, a warp per row."""
    z = contiguous(z)
    y = cupy.empty(z.shape, dtype=z.dtype)
    cols = z.shape[-1]
    rows = z.size // cols if cols else 0
    _rowwise.launch("sega_softmax_forward", z.dtype, rows, (z, y, np.int64(rows), np.int32(cols)))
    return y


def softmax_backward(dy, z, y):
    """``y * (dy - sum(dy * y, -1))`` over the last axis, one launch."""
    dy, y = contiguous(dy), contiguous(y)
    dz = cupy.empty(y.shape, dtype=y.dtype)
    cols = y.shape[-1]
    rows = y.size // cols if cols else 0
    _rowwise.launch("sega_softmax_backward", y.dtype, rows, (dy, y, dz, np.int64(rows), np.int32(cols)))
    return dz


def linear_forward(z):
    """Identity: the same array, no launch."""
    return z


def linear_backward(dy, z, y):
    """Identity's derivative: ``dy`` itself, no launch."""
    return dy
