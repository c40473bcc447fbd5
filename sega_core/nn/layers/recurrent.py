"""Recurrent layers with full backpropagation through time: Elman RNN, LSTM and GRU.

Their weights are laid out so a PyTorch ``nn.RNN``/``nn.LSTM``/``nn.GRU`` maps onto them:
``Wx`` is ``weight_ih_l0.T``, ``Wh`` is ``weight_hh_l0.T``, the gates' columns in PyTorch's order
(LSTM: input, forget, cell, output; GRU: reset, update, new). sega's RNN and LSTM keep one bias
(PyTorch's ``bias_ih_l0 + bias_hh_l0``); the GRU keeps both, since its reset gate multiplies
the recurrent one.
"""

from __future__ import annotations

import numpy as np

from ...errors import InputError
from .base import Layer, ParamSpec, glorot_uniform, orthogonal, positive_int, zeros

RNN_ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")


def _flag(owner: str, name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(f"{owner} {name} must be True or False, got {value!r}")
    return bool(value)


def _orthogonal_blocks(blocks: int):
    """An orthogonal (H, H) block per gate, side by side: (H, blocks * H)."""
    square = orthogonal()
    return lambda rng, shape: np.concatenate([square(rng, (shape[0], shape[0])) for _ in range(blocks)], axis=1)


class _Recurrent(Layer):
    """What the recurrent layers share: the (N, T, F) input, returning the last state or every
    state, the kept state gradient, and pure inference."""

    def __init__(self, units, return_sequences) -> None:
        super().__init__()
        name = type(self).__name__
        self.units = positive_int(name, "units", units)
        self.return_sequences = _flag(name, "return_sequences", return_sequences)

    def _output_shape(self, input_shape):
        if len(input_shape) != 2:
            raise InputError(
                f"{type(self).__name__} expects (time steps, features) samples but receives shape {input_shape}; "
                "reshape sequences to N x T x F"
            )
        t = input_shape[0]
        return (t, self.units) if self.return_sequences else (self.units,)

    def _run(self, x):
        """The kernel's ``(hs, ctx)`` for ``x``."""
        raise NotImplementedError

    def _through_time(self, dhs, need_dx):
        """The kernel's backward pass for every state's gradient ``dhs``."""
        raise NotImplementedError

    def _output(self, hs):
        return hs if self.return_sequences else self.backend.xp.ascontiguousarray(hs[:, -1])

    def forward(self, x, training):
        """Run the recurrence over the whole sequence."""
        self._x = x
        self._hs, self._ctx = self._run(x)
        return self._output(self._hs)

    def infer(self, x):
        """The recurrence, keeping nothing."""
        return self._output(self._run(x)[0])

    def backward(self, dy, need_dx):
        """Backpropagation through time over every step."""
        if self.return_sequences:
            dhs = dy
        else:
            dhs = self._state_gradient()
            dhs[:, -1] = dy
        return self._through_time(dhs, need_dx)

    def _state_gradient(self):
        """The gradient of every state for a layer returning its last state only: zero but for
        the last step, which the caller fills in. One array, kept from batch to batch.

        A fresh (64, 28, 128) float32 array, W4's, cost 144 us per batch (glibc hands large freed
        blocks back to the OS, so each new one page-faults its way in), and zeroing a kept one
        22 us. The kernel contract makes the backward kernels leave ``dhs`` as it is, and only
        the last step changes from batch to batch, so the array is zeroed once.
        """
        buf = getattr(self, "_dhs_buffer", None)
        if buf is None or buf.shape != self._hs.shape or buf.dtype != self._hs.dtype or type(buf) is not type(self._hs):
            buf = self._dhs_buffer = self.backend.xp.zeros_like(self._hs)
        return buf

    def get_config(self):
        """Units and return_sequences."""
        return {"units": self.units, "return_sequences": self.return_sequences}


class RNN(_Recurrent):
    """``h[t] = activation(x[t] @ Wx + h[t-1] @ Wh + b)`` over (N, T, features) inputs.

    Returns the last state (N, units), or every state (N, T, units) with
    ``return_sequences=True``. The initial state is zero.
    """

    kind = "rnn"

    def __init__(self, units: int, activation: str = "tanh", return_sequences: bool = False) -> None:
        super().__init__(units, return_sequences)
        act = "linear" if activation is None else str(activation).strip().lower()
        if act not in RNN_ACTIVATIONS:
            raise InputError(f"unknown RNN activation {activation!r}; valid names: {', '.join(RNN_ACTIVATIONS)}")
        self.activation = act

    def param_specs(self):
        """Wx (features, units), Wh (units, units) and b (units,)."""
        f, h = self.input_shape[1], self.units
        return [
            ParamSpec("Wx", (f, h), "weight", glorot_uniform(f, h)),
            ParamSpec("Wh", (h, h), "weight", orthogonal()),
            ParamSpec("b", (h,), "bias", zeros),
        ]

    def _run(self, x):
        return self.kernels.rnn_forward(x, self.params["Wx"], self.params["Wh"], self.params["b"], self.activation)

    def _through_time(self, dhs, need_dx):
        p, g = self.params, self.grads
        return self.kernels.rnn_backward(
            dhs, self._x, p["Wx"], p["Wh"], self._hs, self.activation, self._ctx, g["Wx"], g["Wh"], g["b"], need_dx
        )

    def get_config(self):
        """Units, activation, return_sequences."""
        return {"units": self.units, "activation": self.activation, "return_sequences": self.return_sequences}


def _forget_bias_one(units: int):
    """Zeros but 1 for the forget gate: the cell remembers by default (Jozefowicz et al.; Keras's
    ``unit_forget_bias``)."""

    def init(rng, shape):
        b = np.zeros(shape)
        b[units : 2 * units] = 1.0
        return b

    return init


class LSTM(_Recurrent):
    """Long short-term memory over (N, T, features) inputs; last state or every state.

    Gates: input, forget, cell candidate, output (PyTorch's order), sigmoid for the gates and
    tanh for the cell. ``Wx`` is (features, 4 * units), ``Wh`` (units, 4 * units), ``b``
    (4 * units), the forget gate's bias starting at 1.
    """

    kind = "lstm"

    def __init__(self, units: int, return_sequences: bool = False) -> None:
        super().__init__(units, return_sequences)

    def param_specs(self):
        """Wx (features, 4 units), Wh (units, 4 units), b (4 units)."""
        f, h = self.input_shape[1], self.units
        return [
            ParamSpec("Wx", (f, 4 * h), "weight", glorot_uniform(f, 4 * h)),
            ParamSpec("Wh", (h, 4 * h), "weight", _orthogonal_blocks(4)),
            ParamSpec("b", (4 * h,), "bias", _forget_bias_one(h)),
        ]

    def _run(self, x):
        return self.kernels.lstm_forward(x, self.params["Wx"], self.params["Wh"], self.params["b"])

    def _through_time(self, dhs, need_dx):
        p, g = self.params, self.grads
        return self.kernels.lstm_backward(
            dhs, self._x, p["Wx"], p["Wh"], self._hs, self._ctx, g["Wx"], g["Wh"], g["b"], need_dx
        )


class GRU(_Recurrent):
    """Gated recurrent unit over (N, T, features) inputs; last state or every state.

    Gates: reset, update, new (PyTorch's order). ``reset_after=True`` (PyTorch's and Keras's
    default) applies the reset gate after the recurrent product, ``False`` before it (the
    original formulation). ``Wx`` is (features, 3 * units), ``Wh`` (units, 3 * units), and the
    input and recurrent biases ``bx``, ``bh`` (3 * units) each.
    """

    kind = "gru"

    def __init__(self, units: int, return_sequences: bool = False, reset_after: bool = True) -> None:
        super().__init__(units, return_sequences)
        self.reset_after = _flag("GRU", "reset_after", reset_after)

    def param_specs(self):
        """Wx (features, 3 units), Wh (units, 3 units), bx and bh (3 units)."""
        f, h = self.input_shape[1], self.units
        return [
            ParamSpec("Wx", (f, 3 * h), "weight", glorot_uniform(f, 3 * h)),
            ParamSpec("Wh", (h, 3 * h), "weight", _orthogonal_blocks(3)),
            ParamSpec("bx", (3 * h,), "bias", zeros),
            ParamSpec("bh", (3 * h,), "bias", zeros),
        ]

    def _run(self, x):
        p = self.params
        return self.kernels.gru_forward(x, p["Wx"], p["Wh"], p["bx"], p["bh"], self.reset_after)

    def _through_time(self, dhs, need_dx):
        p, g = self.params, self.grads
        return self.kernels.gru_backward(
            dhs, self._x, p["Wx"], p["Wh"], p["bx"], p["bh"], self.reset_after, self._hs, self._ctx,
            g["Wx"], g["Wh"], g["bx"], g["bh"], need_dx,
        )

    def get_config(self):
        """Units, return_sequences, reset_after."""
        return {**super().get_config(), "reset_after": self.reset_after}
