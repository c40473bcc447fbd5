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
    """Base class of every layer.

    Training and inference are separate paths. ``forward``/``backward`` run in training (and in
    the gradient checks) and may keep what the backward pass needs on the layer; ``infer`` is
    pure: it reads the parameters and writes nothing, so a ``predict`` in one thread can run
    while another thread trains the same model.
    """

    #: Registry key used in saved model files.
    kind = "layer"

    def __init__(self) -> None:
        self.input_shape: tuple[int, ...] | None = None
        self.output_shape: tuple[int, ...] | None = None
        self.params: dict = {}
        self.grads: dict = {}
        self.state: dict = {}
        self._owner = None

    def build(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Fix the per-sample input shape; return the per-sample output shape."""
        self.input_shape = tuple(int(s) for s in input_shape)
        self.output_shape = self._output_shape(self.input_shape)
        return self.output_shape

    def _output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        raise NotImplementedError

    def param_specs(self) -> list[ParamSpec]:
        """The trainable parameters this layer needs (none by default)."""
        return []

    def state_specs(self) -> list[ParamSpec]:
        """Non-trainable arrays saved with the model (statistics; none by default)."""
        return []

    def bind(self, backend, params: dict, grads: dict, seed: int, state: dict | None = None) -> None:
        """Attach backend, parameter, gradient and state views; ``seed`` feeds any randomness."""
        self.backend, self.kernels, self.params, self.grads = backend, backend.kernels, params, grads
        self.state = state or {}

    def forward(self, x, training: bool):
        """Compute the layer's output for the batch ``x``, keeping what ``backward`` needs."""
        raise NotImplementedError

    def infer(self, x):
        """The layer's inference output for ``x``; modifies nothing."""
        raise NotImplementedError

    def backward(self, dy, need_dx: bool):
        """Given d(loss)/d(output), fill this layer's gradients; return d(loss)/d(input)."""
        raise NotImplementedError

    def get_config(self) -> dict:
        """Constructor arguments as JSON-able values (saved in model files)."""
        return {}

    @classmethod
    def from_config(cls, config: dict) -> "Layer":
        """Rebuild a layer from :meth:`get_config`'s output."""
        return cls(**config)

    @property
    def n_params(self) -> int:
        """Number of trainable scalars."""
        return int(sum(np.prod(s.shape) for s in self.param_specs()))

    @property
    def n_state(self) -> int:
        """Number of non-trainable scalars (normalisation statistics)."""
        return int(sum(np.prod(s.shape) for s in self.state_specs()))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class ActivatedLayer(Layer):
    """A layer followed by an activation, applied (and differentiated) inside the layer.

    When the model's loss applies this same activation itself (softmax inside cross-entropy,
    sigmoid inside BCE-with-logits), the model runs its output layer with
    ``apply_activation=False``, so the activation is applied exactly once. The choice is the
    model's, made per call: nothing on the layer changes.
    """

    def __init__(self, activation: str | None, alpha: float = DEFAULT_LEAKY_ALPHA) -> None:
        super().__init__()
        self.activation = canonical_activation(activation)
        self.alpha = _alpha(alpha)

    def bind(self, backend, params, grads, seed, state=None):
        """Also resolve the activation's kernels once."""
        super().bind(backend, params, grads, seed, state)
        self._act = activation_kernels(backend.kernels, self.activation, self.alpha)

    def _linear(self, x, training: bool):
        """The layer's output before its activation (training: keep what backward needs)."""
        raise NotImplementedError

    def _linear_infer(self, x):
        """The layer's output before its activation, keeping nothing."""
        raise NotImplementedError

    def forward(self, x, training, apply_activation: bool = True):
        """The linear part, then the activation unless the model's loss applies it."""
        z = self._linear(x, training)
        act = self._act if apply_activation else None
        self._cache_act = (act, z, None)
        if act is None:
            return z
        y = act[0](z)
        self._cache_act = (act, z, y)
        return y

    def infer(self, x, apply_activation: bool = True):
        """Inference output; the activation skipped when the model's head applies it."""
        z = self._linear_infer(x)
        return z if self._act is None or not apply_activation else self._act[0](z)

    def _activation_grad(self, dy):
        act, z, y = self._cache_act
        return dy if act is None else act[1](dy, z, y)

    def get_config(self) -> dict:
        """Activation name (and leaky ReLU's alpha when it is used)."""
        config = {"activation": self.activation}
        if self.activation == "leaky_relu":
            config["alpha"] = self.alpha
        return config


def _alpha(value) -> float:
    import math

    from ...errors import InputError

    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not math.isfinite(value) or value < 0:
        raise InputError(f"leaky ReLU alpha must be a finite number >= 0, got {value!r}")
    return float(value)


def positive_int(owner: str, name: str, value, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum`` (NumPy ints accepted), else a one-line InputError."""
    from ...errors import InputError

    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{owner} {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


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
