"""Inverted dropout with masks drawn on the GPU: one RNG launch + one fused kernel."""

from __future__ import annotations

from ._cupy import cupy

# ``mask`` arrives holding the uniform draws and leaves holding the mask (0 or the scale), so
# the draws need no buffer of their own; ``y`` is written in the same pass.
_dropout_kernel = cupy.ElementwiseKernel(
    "T x, T rate, T scale",
    "T mask, T y",
    "const T keep = mask >= rate ? scale : (T)0; mask = keep; y = x * keep;",
    "sega_dropout_forward",
)
_dropout_backward_kernel = cupy.ElementwiseKernel("T dy, T mask", "T dx", "dx = dy * mask;", "sega_dropout_backward")


def dropout_forward(x, rate, rng):
    """Zero each element with probability ``rate``, scale survivors by ``1 / (1 - rate)``.

    ``rng`` is the ``cupy.random.Generator`` made by ``sega_make_rng``; draws are uniform in
    [0, 1) in ``x``'s dtype, so an element survives when its draw is ``>= rate`` (as the
    reference decides it).
    """
    mask = rng.random(x.shape, dtype=x.dtype)
    y = cupy.empty(x.shape, dtype=x.dtype)
    _dropout_kernel(x, rate, 1.0 / (1.0 - rate), mask, y)
    return y, mask


def dropout_backward(dy, mask):
    """The survivors' gradient, scaled like their values: ``dy * mask``."""
    return _dropout_backward_kernel(dy, mask)
