"""The layer protocol shared by every layer type.

A layer is built once for a per-sample input shape (``build``), declares its parameters
(``param_specs``), receives views into the model's flat parameter and gradient buffers
(``bind``), then runs ``forward``/``backward`` on backend arrays through the kernel table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..activations import activation_kernels, canonical_activation, DEFAULT_LEAKY_ALPHA


@dataclass(frozen=True)
class ParamSpec:
    """One parameter array of a layer: its name, shape, role and initialiser.

    ``role`` is ``"weight"`` (L2-regularised) or ``"bias"`` (not). ``init(rng, shape)`` returns
    float64 values drawn from the NumPy ``Generator`` ``rng``.
    """

    name: str
    shape: tuple[int, ...]
    role: str
    init: Callable[[np.random.Generator, tuple], np.ndarray]


class Layer:
    """Base class of every layer."""

    #: Registry key used in saved model files.
    kind = "layer"

    def __init__(self) -> None:
        self.input_shape: tuple[int, ...] | None = None
        self.output_shape: tuple[int, ...] | None = None
        self.params: dict = {}
        self.grads: dict = {}

    def build(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Fix the per-sample input shape; return the per-sample output shape."""
        self.input_shape = tuple(int(s) for s in input_shape)
        self.output_shape = self._output_shape(self.input_shape)
        return self.output_shape

    def _output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        raise NotImplementedError

    def param_specs(self) -> list[ParamSpec]:
        """The parameters this layer needs (none by default)."""
        return []

    def bind(self, backend, params: dict, grads: dict, seed: int) -> None:
        """Attach backend, parameter views and gradient views; ``seed`` feeds any randomness."""
        self.backend, self.kernels, self.params, self.grads = backend, backend.kernels, params, grads

    def forward(self, x, training: bool):
        """Compute the layer's output for the batch ``x``."""
        raise NotImplementedError

    def backward(self, dy, need_dx: bool):
        """Given d(loss)/d(output), fill this layer's gradients; return d(loss)/d(input)."""
        raise NotImplementedError

    def get_config(self) -> dict:
        """Constructor arguments as JSON-able values (saved in model files)."""
        return {}

    @property
    def n_params(self) -> int:
        """Number of trainable scalars."""
        return int(sum(np.prod(s.shape) for s in self.param_specs()))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class ActivatedLayer(Layer):
    """A layer followed by an activation, applied (and differentiated) inside the layer.

    The model sets ``logits_only`` on its last layer when the loss kernel applies that same
    activation itself (softmax inside cross-entropy, sigmoid inside BCE-with-logits), so it is
    applied exactly once.
    """

    logits_only = False

    def __init__(self, activation: str | None, alpha: float = DEFAULT_LEAKY_ALPHA) -> None:
        super().__init__()
        self.activation = canonical_activation(activation)
        self.alpha = float(alpha)

    def bind(self, backend, params, grads, seed):
        """Also resolve the activation's kernels once."""
        super().bind(backend, params, grads, seed)
        name = "linear" if self.logits_only else self.activation
        self._act = activation_kernels(backend.kernels, name, self.alpha)

    def _activate(self, z):
        self._z = z
        if self._act is None:
            return z
        self._y = y = self._act[0](z)
        return y

    def _activation_grad(self, dy):
        return dy if self._act is None else self._act[1](dy, self._z, self._y)

    def get_config(self) -> dict:
        """Activation name (and leaky ReLU's alpha when it is used)."""
        config = {"activation": self.activation}
        if self.activation == "leaky_relu":
            config["alpha"] = self.alpha
        return config


def glorot_uniform(fan_in: int, fan_out: int):
    """Glorot/Xavier uniform initialiser (tanh, sigmoid, softmax, linear)."""
    limit = float(np.sqrt(6.0 / (fan_in + fan_out)))
    return lambda rng, shape: rng.uniform(-limit, limit, size=shape)


def he_uniform(fan_in: int):
    """He/Kaiming uniform initialiser (ReLU family)."""
    limit = float(np.sqrt(6.0 / fan_in))
    return lambda rng, shape: rng.uniform(-limit, limit, size=shape)


def orthogonal():
    """Orthogonal initialiser for square recurrent weights."""

    def init(rng, shape):
        q, r = np.linalg.qr(rng.standard_normal(shape))
        return q * np.sign(np.diag(r))

    return init


def zeros(rng, shape):
    """All-zero initialiser (biases)."""
    return np.zeros(shape)


def weight_init(activation: str, fan_in: int, fan_out: int):
    """He for the ReLU family, Glorot otherwise."""
    if activation in ("relu", "leaky_relu"):
        return he_uniform(fan_in)
    return glorot_uniform(fan_in, fan_out)
