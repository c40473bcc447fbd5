"""Layers without parameters that only move or mask values: Flatten and Dropout."""

from __future__ import annotations

import math

from ...errors import InputError
from .base import Layer


class Flatten(Layer):
    """Reshape (N, d1, d2, ...) to (N, d1*d2*...)."""

    kind = "flatten"

    def _output_shape(self, input_shape):
        return (math.prod(input_shape),)

    def forward(self, x, training):
        """A reshape: no copy for contiguous input."""
        return x.reshape(x.shape[0], -1)

    def backward(self, dy, need_dx):
        """Reshape the gradient back."""
        return dy.reshape((dy.shape[0],) + self.input_shape) if need_dx else None


class Dropout(Layer):
    """Inverted dropout: active in training only; the identity at inference."""

    kind = "dropout"

    def __init__(self, rate: float = 0.5) -> None:
        super().__init__()
        if not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise InputError(f"dropout rate must be in [0, 1), got {rate!r}")
        self.rate = float(rate)

    def _output_shape(self, input_shape):
        return input_shape

    def bind(self, backend, params, grads, seed):
        """Also create this layer's random generator on the backend."""
        super().bind(backend, params, grads, seed)
        self._rng = backend.make_rng(seed)
        self._mask = None

    def forward(self, x, training):
        """Drop and rescale in training; pass through otherwise."""
        if not training or self.rate == 0:
            self._mask = None
            return x
        y, self._mask = self.kernels.dropout_forward(x, self.rate, self._rng)
        return y

    def backward(self, dy, need_dx):
        """Mask the gradient like the values were masked."""
        if self._mask is None:
            return dy
        return self.kernels.dropout_backward(dy, self._mask)

    def get_config(self):
        """The drop rate."""
        return {"rate": self.rate}
