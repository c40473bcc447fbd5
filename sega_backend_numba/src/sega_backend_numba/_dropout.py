"""Inverted dropout: the random draw is NumPy's, the mask and the product one compiled pass.

The uniform numbers come from the ``numpy.random.Generator`` the core made for the layer, drawn
exactly as the NumPy reference draws them, so both backends drop the same units for the same
seed. NumPy then needs four more passes (compare, cast, scale, multiply); here the draw buffer is
turned into the mask in place while ``y`` is written, in one pass.
"""

from __future__ import annotations

import numpy as np

from ._jit import jit


@jit()
def _dropout_forward(x, u, rate, y):
    """Overwrite the uniforms ``u`` with the mask and write ``y = x * mask``."""
    keep = x.dtype.type(rate)
    # The same rounding as the reference's ``mask *= 1.0 / (1.0 - rate)`` on a float32 mask.
    scale = x.dtype.type(1.0 / (1.0 - rate))
    zero = x.dtype.type(0)
    for i in range(x.size):
        m = scale if u[i] >= keep else zero
        u[i] = m
        y[i] = x[i] * m


@jit()
def _multiply(a, b, out):
    for i in range(a.size):
        out[i] = a[i] * b[i]


def dropout_forward(x, rate, rng):
    """Zero each element with probability ``rate``, scale the rest by ``1/(1-rate)``.

    Returns ``(y, mask)``. ``rng`` is the ``numpy.random.Generator`` from ``make_rng``.
    """
    mask = rng.random(x.shape, dtype=x.dtype)
    y = np.empty(x.shape, x.dtype)
    _dropout_forward(x.reshape(-1), mask.reshape(-1), float(rate), y.reshape(-1))
    return y, mask


def dropout_backward(dy, mask):
    """``dy * mask``."""
    if dy.shape != mask.shape:
        raise ValueError(f"dropout backward needs dy and mask of one shape, got {dy.shape} and {mask.shape}")
    out = np.empty(dy.shape, dy.dtype)
    _multiply(dy.reshape(-1), mask.reshape(-1), out.reshape(-1))
    return out
