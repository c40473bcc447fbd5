"""Activation kernels: one pass over memory each, the derivative fused with the upstream gradient.

NumPy evaluates ``dy * y * (1 - y)`` in three passes with two temporaries, and its sigmoid in
five; each kernel here reads its inputs once and writes its output once. Arrays of any shape are
handled as flat 1-D views (softmax as rows), so each kernel is compiled once per dtype.

The tanh forward pass is NumPy's own ``np.tanh``: NumPy ships a SIMD tanh that compiled scalar
code calling the C library cannot match (measured 0.37 ms vs 16 ms per million float32), so
only tanh's derivative is compiled here.
"""

from __future__ import annotations

import numpy as np

from ._jit import jit, scalar


@scalar
def _sigmoid(v, one):
    # exp only ever sees -|v| <= 0, so it cannot overflow.
    e = np.exp(-abs(v))
    d = one + e
    return one / d if v >= 0 else e / d


@jit()
def _relu_forward(z, out):
    zero = z.dtype.type(0)
    for i in range(z.size):
        v = z[i]
        # ``v < 0`` (not ``v > 0``) so NaN passes through, as with np.maximum.
        out[i] = zero if v < zero else v


@jit()
def _relu_backward(dy, z, out):
    zero = z.dtype.type(0)
    for i in range(z.size):
        out[i] = dy[i] if z[i] > zero else zero


@jit()
def _leaky_relu_forward(z, alpha, out):
    zero = z.dtype.type(0)
    a = z.dtype.type(alpha)
    for i in range(z.size):
        v = z[i]
        out[i] = v if v > zero else v * a


@jit()
def _leaky_relu_backward(dy, z, alpha, out):
    zero = z.dtype.type(0)
    a = z.dtype.type(alpha)
    for i in range(z.size):
        g = dy[i]
        out[i] = g if z[i] > zero else g * a


@jit()
def _sigmoid_forward(z, out):
    one = z.dtype.type(1)
    for i in range(z.size):
        out[i] = _sigmoid(z[i], one)


@jit()
def _sigmoid_backward(dy, y, out):
    one = y.dtype.type(1)
    for i in range(y.size):
        v = y[i]
        out[i] = dy[i] * v * (one - v)


@jit()
def _tanh_backward(dy, y, out):
    one = y.dtype.type(1)
    for i in range(y.size):
        v = y[i]
        out[i] = dy[i] * (one - v * v)


@jit()
def _softmax_forward(z, out):
    for r in range(z.shape[0]):
        m = z[r, 0]
        for j in range(1, z.shape[1]):
            v = z[r, j]
            # ``not v <= m`` rather than ``v > m`` so a NaN becomes the maximum and propagates.
            if not v <= m:
                m = v
        s = z.dtype.type(0)
        for j in range(z.shape[1]):
            e = np.exp(z[r, j] - m)
            out[r, j] = e
            s += e
        for j in range(z.shape[1]):
            out[r, j] /= s


@jit()
def _softmax_backward(dy, y, out):
    for r in range(y.shape[0]):
        s = y.dtype.type(0)
        for j in range(y.shape[1]):
            s += dy[r, j] * y[r, j]
        for j in range(y.shape[1]):
            out[r, j] = y[r, j] * (dy[r, j] - s)


# ---- the hook implementations -------------------------------------------------------------------


def _flat(a):
    """A C-contiguous 1-D view of ``a`` (a copy only if ``a`` is not contiguous: ``reshape``
    alone returns a strided view of, say, every other column, which numba would compile a
    second, slower version of each kernel for)."""
    return np.ascontiguousarray(a).reshape(-1)


def _same_shape(*arrays):
    # The compiled loops do not check their indices: refuse mismatched shapes here.
    if any(a.shape != arrays[0].shape for a in arrays[1:]):
        raise ValueError(f"activation backward needs arrays of one shape, got {[a.shape for a in arrays]}")


def _rows(a):
    """``a`` as C-contiguous (rows, last axis) for the row-wise softmax kernels."""
    return np.ascontiguousarray(a).reshape(-1, a.shape[-1]) if a.ndim else a.reshape(1, 1)


def relu_forward(z):
    """``max(z, 0)``."""
    out = np.empty(z.shape, z.dtype)
    _relu_forward(_flat(z), _flat(out))
    return out


def relu_backward(dy, z, y):
    """``dy`` where ``z > 0``, else 0."""
    _same_shape(dy, z)
    out = np.empty(z.shape, z.dtype)
    _relu_backward(_flat(dy), _flat(z), _flat(out))
    return out


def leaky_relu_forward(z, alpha):
    """``z`` where ``z > 0``, else ``alpha * z`` (``alpha`` rounded to z's dtype)."""
    out = np.empty(z.shape, z.dtype)
    _leaky_relu_forward(_flat(z), float(alpha), _flat(out))
    return out


def leaky_relu_backward(dy, z, y, alpha):
    """``dy`` where ``z > 0``, else ``alpha * dy``."""
    _same_shape(dy, z)
    out = np.empty(z.shape, z.dtype)
    _leaky_relu_backward(_flat(dy), _flat(z), float(alpha), _flat(out))
    return out


def sigmoid_forward(z):
    """``1 / (1 + exp(-z))`` in one pass, ``exp`` only of non-positive numbers."""
    out = np.empty(z.shape, z.dtype)
    _sigmoid_forward(_flat(z), _flat(out))
    return out


def sigmoid_backward(dy, z, y):
    """``dy * y * (1 - y)`` in one pass."""
    _same_shape(dy, y)
    out = np.empty(y.shape, y.dtype)
    _sigmoid_backward(_flat(dy), _flat(y), _flat(out))
    return out


def tanh_forward(z):
    """``tanh(z)``: NumPy's vectorised tanh, faster than any compiled scalar loop."""
    return np.tanh(z)


def tanh_backward(dy, z, y):
    """``dy * (1 - y*y)`` in one pass."""
    _same_shape(dy, y)
    out = np.empty(y.shape, y.dtype)
    _tanh_backward(_flat(dy), _flat(y), _flat(out))
    return out


def softmax_forward(z):
    """Softmax over the last axis, shifted by the row maximum, in one kernel."""
    out = np.empty(z.shape, z.dtype)
    if out.size:  # the kernel reads each row's first element
        _softmax_forward(_rows(z), _rows(out))
    return out


def softmax_backward(dy, z, y):
    """``y * (dy - sum(dy * y, -1))`` row by row."""
    _same_shape(dy, y)
    out = np.empty(y.shape, y.dtype)
    if out.size:
        _softmax_backward(_rows(dy), _rows(y), _rows(out))
    return out
