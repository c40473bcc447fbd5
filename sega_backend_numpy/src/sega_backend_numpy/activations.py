"""Activation kernels: forward on the pre-activation, backward from whichever of z/y is exact."""

from __future__ import annotations

import numpy as np

from sega_core.hookspecs import hookimpl


@hookimpl
def sega_sigmoid_forward(z):
    """Logistic function; ``exp`` only ever sees non-positive numbers, so it cannot overflow."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype, copy=False)


@hookimpl
def sega_sigmoid_backward(dy, z, y):
    """``dy * y * (1 - y)``: the derivative at z written with the output y = sigmoid(z)."""
    return dy * y * (1 - y)


@hookimpl
def sega_tanh_forward(z):
    """Hyperbolic tangent."""
    return np.tanh(z)


@hookimpl
def sega_tanh_backward(dy, z, y):
    """``dy * (1 - y**2)`` with y = tanh(z)."""
    return dy * (1 - y * y)


@hookimpl
def sega_relu_forward(z):
    """``max(z, 0)``."""
    return np.maximum(z, 0)


@hookimpl
def sega_relu_backward(dy, z, y):
    """Pass the gradient where z > 0."""
    return dy * (z > 0)


@hookimpl
def sega_leaky_relu_forward(z, alpha):
    """``z`` for z > 0, ``alpha * z`` otherwise."""
    return np.where(z > 0, z, z * alpha)


@hookimpl
def sega_leaky_relu_backward(dy, z, y, alpha):
    """``dy`` for z > 0, ``alpha * dy`` otherwise."""
    return np.where(z > 0, dy, dy * alpha)


@hookimpl
def sega_softmax_forward(z):
    """Row-wise softmax over the last axis, shifted by the row maximum."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    e /= e.sum(axis=-1, keepdims=True)
    return e


@hookimpl
def sega_softmax_backward(dy, z, y):
    """Jacobian-vector product ``y * (dy - sum(dy * y))`` over the last axis."""
    return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


@hookimpl
def sega_linear_forward(z):
    """Identity."""
    return z


@hookimpl
def sega_linear_backward(dy, z, y):
    """Identity's derivative."""
    return dy
