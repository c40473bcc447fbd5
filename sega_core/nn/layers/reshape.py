"""Layers without parameters that only move or mask values: Flatten, Reshape and Dropout."""

from __future__ import annotations

import math

import numpy as np

from ...errors import InputError
from .base import Layer


class Flatten(Layer):
    """Reshape (N, d1, d2, ...) to (N, d1*d2*...)."""

    kind = "flatten"

    def _output_shape(self, input_shape):
        return (math.prod(input_shape),)

    def forward(self, x, training):
        """A reshape: no copy for contiguous input."""
        return self.infer(x)

    def infer(self, x):
        """A reshape: no copy for contiguous input."""
        return x.reshape(x.shape[0], -1)

    def backward(self, dy, need_dx):
        """Reshape the gradient back."""
        return dy.reshape((dy.shape[0],) + self.input_shape) if need_dx else None


class Reshape(Layer):
    """Reshape each sample to ``target_shape`` (one entry may be -1), e.g. flat pixels to (1, 28, 28)."""

    kind = "reshape"

    def __init__(self, target_shape) -> None:
        super().__init__()
        items = tuple(target_shape) if isinstance(target_shape, (tuple, list)) else (target_shape,)
        valid = bool(items) and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in items)
        shape = tuple(int(s) for s in items) if valid else ()
        if not valid or any(s == 0 or s < -1 for s in shape) or shape.count(-1) > 1:
            raise InputError(f"Reshape target_shape must be a tuple of positive ints (at most one -1), got {target_shape!r}")
        self.target_shape = shape

    def _output_shape(self, input_shape):
        size = math.prod(input_shape)
        known = math.prod(s for s in self.target_shape if s != -1)
        shape = tuple(size // known if s == -1 else s for s in self.target_shape)
        if math.prod(shape) != size:
            raise InputError(
                f"Reshape cannot turn samples of shape {input_shape} ({size} values) into {self.target_shape}"
            )
        return shape

    def forward(self, x, training):
        """A reshape: no copy for contiguous input."""
        return self.infer(x)

    def infer(self, x):
        """A reshape: no copy for contiguous input."""
        return x.reshape((x.shape[0],) + self.output_shape)

    def backward(self, dy, need_dx):
        """Reshape the gradient back."""
        return dy.reshape((dy.shape[0],) + self.input_shape) if need_dx else None

    def get_config(self):
        """The target shape."""
        return {"target_shape": list(self.target_shape)}


class Dropout(Layer):
    """Inverted dropout: active in training only; the identity at inference."""

    kind = "dropout"

    def __init__(self, rate: float = 0.5) -> None:
        super().__init__()
        if (
            isinstance(rate, bool)
            or not isinstance(rate, (int, float, np.integer, np.floating))
            or not 0 <= rate < 1
        ):
            raise InputError(f"dropout rate must be a number in [0, 1), got {rate!r}")
        self.rate = float(rate)

    def _output_shape(self, input_shape):
        return input_shape

    def bind(self, backend, params, grads, seed, state=None):
        """Also create this layer's random generator on the backend."""
        super().bind(backend, params, grads, seed, state)
        self._seed = seed
        self._rng = backend.make_rng(seed)
        self._mask = None

    def begin_epoch(self, epoch: int) -> None:
        """A generator for ``epoch`` alone: the masks depend on the seed and the epoch only."""
        self._rng = self.backend.make_rng(int(np.random.SeedSequence([self._seed, epoch]).generate_state(1)[0]))

    def forward(self, x, training):
        """Drop and rescale in training; pass through otherwise."""
        if not training or self.rate == 0:
            self._mask = None
            return x
        y, self._mask = self.kernels.dropout_forward(x, self.rate, self._rng)
        return y

    def infer(self, x):
        """The identity."""
        return x

    def backward(self, dy, need_dx):
        """Mask the gradient like the values were masked."""
        if self._mask is None:
            return dy
        return self.kernels.dropout_backward(dy, self._mask)

    def get_config(self):
        """The drop rate."""
        return {"rate": self.rate}
