"""Inverted dropout."""

from __future__ import annotations

from sega_core.hookspecs import hookimpl


@hookimpl
def sega_dropout_forward(x, rate, rng):
    """Keep each element with probability ``1 - rate``, scaled so the expectation is unchanged."""
    mask = (rng.random(x.shape, dtype=x.dtype) >= rate).astype(x.dtype)
    mask *= 1.0 / (1.0 - rate)
    return x * mask, mask


@hookimpl
def sega_dropout_backward(dy, mask):
    """The survivors' gradient, scaled like their values."""
    return dy * mask
