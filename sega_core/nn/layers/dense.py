"""Fully connected layer."""

from __future__ import annotations

from ...errors import InputError
from .base import ActivatedLayer, ParamSpec, positive_int, weight_init, zeros


class Dense(ActivatedLayer):
    """``activation(x @ W + b)`` on (N, features) inputs; W is (features, units)."""

    kind = "dense"

    def __init__(self, units: int, activation: str | None = None, alpha: float = 0.01) -> None:
        super().__init__(activation, alpha)
        self.units = positive_int("Dense", "units", units)

    def _output_shape(self, input_shape):
        if len(input_shape) != 1:
            raise InputError(
                f"Dense expects flat (features,) samples but receives shape {input_shape}; put a Flatten() before it"
            )
        return (self.units,)

    def param_specs(self):
        """W (in, units) and b (units,)."""
        fan_in = self.input_shape[0]
        return [
            ParamSpec("W", (fan_in, self.units), "weight", weight_init(self.activation, fan_in, self.units)),
            ParamSpec("b", (self.units,), "bias", zeros),
        ]

    def _linear(self, x, training):
        self._x = x
        return self._linear_infer(x)

    def _linear_infer(self, x):
        return self.kernels.dense_forward(x, self.params["W"], self.params["b"])

    def backward(self, dy, need_dx):
        """Activation derivative, then the dense kernel fills dW and db."""
        dz = self._activation_grad(dy)
        return self.kernels.dense_backward(dz, self._x, self.params["W"], self.grads["W"], self.grads["b"], need_dx)

    def get_config(self):
        """Units and activation."""
        return {"units": self.units, **super().get_config()}
