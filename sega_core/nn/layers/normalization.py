"""Normalization layers: fixed statistics fitted from the training data (Normalization), and
batch statistics in training with running ones at inference (BatchNormalization)."""

from __future__ import annotations

import math

import numpy as np

from ...errors import InputError
from ..validation import check_number
from .base import Layer, ParamSpec, zeros


def _ones(rng, shape):
    return np.ones(shape)


class Normalization(Layer):
    """``(x - mean) / sqrt(variance)`` with statistics per index of the ``axis`` axes.

    ``axis`` counts the batch as axis 0 (Keras's convention): the default ``-1`` keeps one mean
    and variance per feature of flat samples; ``1`` keeps one per channel of (N, C, H, W) images;
    ``None`` one for everything. The statistics come from ``mean=``/``variance=`` or are fitted
    (:meth:`adapt`) from the data of the model's first ``train`` call, and are saved with the
    model, so the model takes raw features wherever it is loaded. A variance that is zero (a
    constant feature) scales by 1, as scikit-learn's ``StandardScaler`` does, so such a feature
    maps to 0 instead of dividing by zero.
    """

    kind = "normalization"

    def __init__(self, axis=-1, mean=None, variance=None) -> None:
        super().__init__()
        if axis is None:
            axes = ()
        else:
            items = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
            if not items or any(isinstance(a, bool) or not isinstance(a, (int, np.integer)) for a in items):
                raise InputError(f"Normalization axis must be an int, a tuple of ints or None, got {axis!r}")
            axes = tuple(int(a) for a in items)
        if 0 in axes:
            raise InputError("Normalization axis 0 is the batch; statistics are kept per feature (axis=-1) or per channel (axis=1)")
        self.axis = axes
        if (mean is None) != (variance is None):
            raise InputError("give Normalization both mean= and variance=, or neither (to fit them from the data)")
        self._given = None if mean is None else (np.asarray(mean, dtype=np.float64), np.asarray(variance, dtype=np.float64))
        if self._given is not None:
            if not all(np.isfinite(a).all() for a in self._given) or (self._given[1] < 0).any():
                raise InputError("Normalization mean must be finite and variance finite and >= 0")
        self.adapted = self._given is not None

    def _output_shape(self, input_shape):
        rank = len(input_shape) + 1
        kept = []
        for a in self.axis:
            if not -rank < a < rank or a % rank == 0:
                raise InputError(f"Normalization axis {a} does not exist for samples of shape {input_shape}")
            kept.append(a % rank - 1)
        self._stat_shape = tuple(s if i in kept else 1 for i, s in enumerate(input_shape))
        if self._given is not None:
            for name, value in zip(("mean", "variance"), self._given):
                try:
                    np.broadcast_to(value, self._stat_shape)
                except ValueError:
                    raise InputError(
                        f"Normalization {name} of shape {value.shape} does not fit statistics of shape {self._stat_shape}"
                    ) from None
        return input_shape

    def state_specs(self):
        """``mean`` and ``variance``, shaped to broadcast against a sample."""
        return [ParamSpec("mean", self._stat_shape, "state", zeros), ParamSpec("variance", self._stat_shape, "state", _ones)]

    def bind(self, backend, params, grads, seed, state=None):
        """Also write statistics given to the constructor into the model's state."""
        super().bind(backend, params, grads, seed, state)
        if self._given is not None:
            self._store(*self._given)
            self._given = None

    def _store(self, mean: np.ndarray, variance: np.ndarray) -> None:
        dtype = self.state["mean"].dtype
        variance = np.where(np.sqrt(variance) < 10 * np.finfo(np.float64).eps, 1.0, variance)
        for name, value in (("mean", mean), ("variance", variance)):
            host = np.ascontiguousarray(np.broadcast_to(value, self._stat_shape), dtype=dtype)
            self.state[name][...] = self.backend.to_device(host)
        self.adapted = True

    def adapt(self, X) -> None:
        """Fit the mean and variance from ``X`` (N, ...) in float64 (host arrays)."""
        X = np.asarray(X, dtype=np.float64)
        if X.shape[1:] != self.input_shape:
            raise InputError(f"Normalization.adapt got samples of shape {X.shape[1:]}, expected {self.input_shape}")
        reduce = (0,) + tuple(i + 1 for i, s in enumerate(self._stat_shape) if s == 1)
        self._store(X.mean(axis=reduce, keepdims=True)[0], X.var(axis=reduce, keepdims=True)[0])

    def infer(self, x):
        """Standardised ``x``."""
        return (x - self.state["mean"]) / self.backend.xp.sqrt(self.state["variance"])

    def forward(self, x, training):
        """As at inference: the statistics are fixed once fitted."""
        return self.infer(x)

    def backward(self, dy, need_dx):
        """``dy / sqrt(variance)``."""
        return dy / self.backend.xp.sqrt(self.state["variance"]) if need_dx else None

    def get_config(self):
        """The axes, and whether statistics were fitted (they are saved with the weights)."""
        return {"axis": None if not self.axis else (self.axis[0] if len(self.axis) == 1 else list(self.axis)), "adapted": self.adapted}

    @classmethod
    def from_config(cls, config):
        """Rebuild; the fitted statistics come back with the model's saved state."""
        config = dict(config)
        adapted = bool(config.pop("adapted", False))
        layer = cls(**config)
        layer.adapted = adapted
        return layer


class BatchNormalization(Layer):
    """Normalise each feature (after Dense) or channel (of (N, C, H, W) images) by its batch
    statistics in training, and by running statistics at inference (``evaluate``/``predict``).

    Then scale by ``gamma`` and shift by ``beta`` (trained; not L2-regularised). The running mean
    and variance follow Keras: ``running = momentum * running + (1 - momentum) * batch``, with
    the batch's biased variance; they are saved with the model. A training batch with one value
    per channel (batch size 1 after a Dense layer) cannot be normalised and is refused, as
    PyTorch refuses it.
    """

    kind = "batchnormalization"

    def __init__(self, momentum: float = 0.99, epsilon: float = 1e-3) -> None:
        super().__init__()
        self.momentum = check_number("momentum", momentum, 0, 1, high_open=True, owner="BatchNormalization")
        self.epsilon = check_number("epsilon", epsilon, 0, low_open=True, owner="BatchNormalization")

    def _output_shape(self, input_shape):
        if len(input_shape) not in (1, 3):
            raise InputError(
                f"BatchNormalization expects (features,) or (channels, height, width) samples but receives shape "
                f"{input_shape}; put it after a Dense or Conv2D layer"
            )
        return input_shape

    def param_specs(self):
        """gamma (ones) and beta (zeros), one per channel."""
        c = self.input_shape[0]
        return [ParamSpec("gamma", (c,), "bias", _ones), ParamSpec("beta", (c,), "bias", zeros)]

    def state_specs(self):
        """The running mean (zeros) and variance (ones), saved with the model."""
        c = self.input_shape[0]
        return [ParamSpec("moving_mean", (c,), "state", zeros), ParamSpec("moving_variance", (c,), "state", _ones)]

    def _kernel(self, x, training):
        p, s = self.params, self.state
        return self.kernels.batchnorm_forward(
            x, p["gamma"], p["beta"], s["moving_mean"], s["moving_variance"], self.momentum, self.epsilon, training
        )

    def values_per_channel(self, rows: int) -> int:
        """How many values of each channel a training batch of ``rows`` samples normalises."""
        return rows * math.prod(self.input_shape[1:])

    def forward(self, x, training):
        """Batch statistics in training (updating the running ones), running ones otherwise."""
        self._x, self._training = x, training
        if training and x.size // x.shape[1] < 2:
            raise InputError(
                f"BatchNormalization needs more than one value per channel in training, got a batch of shape "
                f"{tuple(x.shape)}; use a batch size > 1"
            )
        y, self._ctx = self._kernel(x, training)
        return y

    def infer(self, x):
        """Running statistics; modifies nothing."""
        return self._kernel(x, False)[0]

    def backward(self, dy, need_dx):
        """Through the batch statistics in training; through the fixed running ones otherwise."""
        if self._training:
            return self.kernels.batchnorm_backward(
                dy, self._x, self.params["gamma"], self._ctx, self.grads["gamma"], self.grads["beta"], need_dx
            )
        # Evaluation mode (gradient checks): an affine map with the running statistics.
        xp, s, g = self.backend.xp, self.state, self.grads
        axes = (0,) + tuple(range(2, dy.ndim))
        shape = (1, -1) + (1,) * (dy.ndim - 2)
        inv = 1 / xp.sqrt(s["moving_variance"] + self.epsilon)
        xhat = (self._x - s["moving_mean"].reshape(shape)) * inv.reshape(shape)
        g["beta"][...] = dy.sum(axis=axes)
        g["gamma"][...] = (dy * xhat).sum(axis=axes)
        return dy * (self.params["gamma"] * inv).reshape(shape) if need_dx else None

    def get_config(self):
        """Momentum and epsilon."""
        return {"momentum": self.momentum, "epsilon": self.epsilon}
