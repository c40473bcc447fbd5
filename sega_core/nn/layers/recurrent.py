"""Elman recurrent layer with full backpropagation through time."""

from __future__ import annotations

import numpy as np

from ...errors import InputError
from .base import Layer, ParamSpec, glorot_uniform, orthogonal, positive_int, zeros

RNN_ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")


class RNN(Layer):
    """``h[t] = activation(x[t] @ Wx + h[t-1] @ Wh + b)`` over (N, T, features) inputs.

    Returns the last state (N, units), or every state (N, T, units) with
    ``return_sequences=True``. The initial state is zero.
    """

    kind = "rnn"

    def __init__(self, units: int, activation: str = "tanh", return_sequences: bool = False) -> None:
        super().__init__()
        units = positive_int("RNN", "units", units)
        act = "linear" if activation is None else str(activation).strip().lower()
        if act not in RNN_ACTIVATIONS:
            raise InputError(f"unknown RNN activation {activation!r}; valid names: {', '.join(RNN_ACTIVATIONS)}")
        if not isinstance(return_sequences, (bool, np.bool_)):
            raise InputError(f"RNN return_sequences must be True or False, got {return_sequences!r}")
        self.units, self.activation, self.return_sequences = units, act, bool(return_sequences)

    def _output_shape(self, input_shape):
        if len(input_shape) != 2:
            raise InputError(
                f"RNN expects (time steps, features) samples but receives shape {input_shape}; "
                "reshape sequences to N x T x F"
            )
        t = input_shape[0]
        return (t, self.units) if self.return_sequences else (self.units,)

    def param_specs(self):
        """Wx (features, units), Wh (units, units) and b (units,)."""
        f, h = self.input_shape[1], self.units
        return [
            ParamSpec("Wx", (f, h), "weight", glorot_uniform(f, h)),
            ParamSpec("Wh", (h, h), "weight", orthogonal()),
            ParamSpec("b", (h,), "bias", zeros),
        ]

    def forward(self, x, training):
        """Run the recurrence over the whole sequence."""
        self._x = x
        self._hs, self._ctx = self.kernels.rnn_forward(x, self.params["Wx"], self.params["Wh"], self.params["b"], self.activation)
        if self.return_sequences:
            return self._hs
        return self.backend.xp.ascontiguousarray(self._hs[:, -1])

    def infer(self, x):
        """The recurrence, keeping nothing."""
        hs, _ = self.kernels.rnn_forward(x, self.params["Wx"], self.params["Wh"], self.params["b"], self.activation)
        return hs if self.return_sequences else self.backend.xp.ascontiguousarray(hs[:, -1])

    def backward(self, dy, need_dx):
        """Backpropagation through time over every step."""
        if self.return_sequences:
            dhs = dy
        else:
            dhs = self._state_gradient()
            dhs[:, -1] = dy
        p, g = self.params, self.grads
        return self.kernels.rnn_backward(
            dhs, self._x, p["Wx"], p["Wh"], self._hs, self.activation, self._ctx, g["Wx"], g["Wh"], g["b"], need_dx
        )

    def _state_gradient(self):
        """The gradient of every state for a layer returning its last state only: zero but for
        the last step, which the caller fills in. One array, kept from batch to batch.

        A fresh (64, 28, 128) float32 array, W4's, cost 144 us per batch (glibc hands large freed
        blocks back to the OS, so each new one page-faults its way in), and zeroing a kept one
        22 us. The kernel contract makes ``rnn_backward`` leave ``dhs`` as it is (hook API 1.1),
        and only the last step changes from batch to batch, so the array is zeroed once.
        """
        buf = getattr(self, "_dhs_buffer", None)
        if buf is None or buf.shape != self._hs.shape or buf.dtype != self._hs.dtype or type(buf) is not type(self._hs):
            buf = self._dhs_buffer = self.backend.xp.zeros_like(self._hs)
        return buf

    def get_config(self):
        """Units, activation, return_sequences."""
        return {"units": self.units, "activation": self.activation, "return_sequences": self.return_sequences}
