"""2-D convolution layer (NCHW): square or rectangular kernels, "valid", "same" or explicit padding."""

from __future__ import annotations

import numpy as np

from ...errors import BackendError, InputError
from .base import ActivatedLayer, ParamSpec, positive_int, weight_init, zeros
from .pooling import check_image_shape, pair, same_padding


class Conv2D(ActivatedLayer):
    """``activation(conv(x, W) + b)`` on (N, C, H, W) inputs; W is (filters, C, KH, KW).

    ``kernel_size`` and ``stride`` (Keras's ``strides`` is accepted too) are an int or a pair
    ``(rows, columns)``. ``padding`` is ``"valid"`` (none, the default 0), ``"same"`` (as many
    outputs as ``ceil(size / stride)``; an odd total pads one more at the bottom and right, as
    TensorFlow does), an int, or a pair (rows, columns) of zeros added on both sides.
    """

    kind = "conv2d"

    def __init__(
        self,
        filters: int,
        kernel_size=3,
        stride=1,
        padding=0,
        activation: str | None = "relu",
        alpha: float = 0.01,
        strides=None,
    ) -> None:
        super().__init__(activation, alpha)
        self.filters = positive_int("Conv2D", "filters", filters)
        self._kernel = pair("Conv2D", "kernel_size", kernel_size)
        if strides is not None:
            if stride != 1:
                raise InputError("give Conv2D stride or strides (the same thing), not both")
            stride = strides
        self._stride = pair("Conv2D", "stride", stride)
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise InputError(f"Conv2D padding must be 'valid', 'same', an int >= 0 or a pair of them, got {padding!r}")
            self._padding = padding
        else:
            items = tuple(padding) if isinstance(padding, (tuple, list)) else (padding, padding)
            if len(items) != 2 or any(isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 0
                                      for v in items):
                raise InputError(f"Conv2D padding must be 'valid', 'same', an int >= 0 or a pair of them, got {padding!r}")
            self._padding = (int(items[0]), int(items[1]))

    # The constructor's forms, as saved in model files and shown by repr.
    @property
    def kernel_size(self):
        """An int for a square kernel, else ``(rows, columns)``."""
        return self._kernel[0] if self._kernel[0] == self._kernel[1] else self._kernel

    @property
    def stride(self):
        """An int when both axes agree, else ``(rows, columns)``."""
        return self._stride[0] if self._stride[0] == self._stride[1] else self._stride

    @property
    def padding(self):
        """``"valid"``, ``"same"``, an int, or ``(rows, columns)``."""
        if isinstance(self._padding, str):
            return self._padding
        return self._padding[0] if self._padding[0] == self._padding[1] else self._padding

    def _output_shape(self, input_shape):
        check_image_shape("Conv2D", input_shape)
        c, h, w = input_shape
        (kh, kw), (sh, sw) = self._kernel, self._stride
        if self._padding == "same":
            pads = (same_padding(h, kh, sh), same_padding(w, kw, sw))
        elif self._padding == "valid":
            pads = ((0, 0), (0, 0))
        else:
            pads = ((self._padding[0],) * 2, (self._padding[1],) * 2)
        self._pads = pads  # ((top, bottom), (left, right)), as the pooling layers keep theirs
        ho = (h + sum(pads[0]) - kh) // sh + 1
        wo = (w + sum(pads[1]) - kw) // sw + 1
        if ho < 1 or wo < 1:
            kernel = kh if kh == kw else f"{kh}x{kw}"
            raise InputError(f"Conv2D kernel {kernel} with padding {self.padding!r} does not fit an input of {h}x{w}")
        # The kernels take plain ints for square, symmetric geometry (every hook API version)
        # and pairs otherwise (hook API 1.2).
        square = kh == kw and sh == sw and pads[0][0] == pads[0][1] == pads[1][0] == pads[1][1]
        self._hook_stride, self._hook_padding = (sh, pads[0][0]) if square else (self._stride, pads)
        return (self.filters, ho, wo)

    def param_specs(self):
        """W (filters, channels, KH, KW) and b (filters,)."""
        c = self.input_shape[0]
        kh, kw = self._kernel
        fan_in, fan_out = c * kh * kw, self.filters * kh * kw
        return [
            ParamSpec("W", (self.filters, c, kh, kw), "weight", weight_init(self.activation, fan_in, fan_out)),
            ParamSpec("b", (self.filters,), "bias", zeros),
        ]

    def bind(self, backend, params, grads, seed, state=None):
        """Also choose the kernels: a backend written before hook API 1.2 cannot take the pair forms."""
        super().bind(backend, params, grads, seed, state)
        self._conv = backend.kernels
        general = not isinstance(self._hook_stride, int)
        written_for = tuple(int(p) for p in str(backend.info.get("hook_api", "1.2")).split(".")[:2])
        if general and written_for < (1, 2):
            if backend.device != "cpu":
                raise BackendError(
                    f"backend {backend.name!r} (hook API {backend.info.get('hook_api')}) cannot run {self!r}: rectangular "
                    "kernels, per-axis strides and 'same' padding with an even kernel need hook API 1.2"
                )
            from ...backends import get_backend

            self._conv = get_backend("numpy").kernels

    def _linear(self, x, training):
        self._x = x
        z, self._ctx = self._conv.conv2d_forward(x, self.params["W"], self.params["b"], self._hook_stride, self._hook_padding)
        return z

    def _linear_infer(self, x):
        return self._conv.conv2d_forward(x, self.params["W"], self.params["b"], self._hook_stride, self._hook_padding)[0]

    def backward(self, dy, need_dx):
        """Activation derivative, then the convolution's backward kernel."""
        dz = self._activation_grad(dy)
        return self._conv.conv2d_backward(
            dz, self._x, self.params["W"], self._hook_stride, self._hook_padding, self._ctx, self.grads["W"],
            self.grads["b"], need_dx,
        )

    def get_config(self):
        """Filters, kernel, stride, padding, activation."""
        def plain(value):
            return list(value) if isinstance(value, tuple) else value

        return {
            "filters": self.filters,
            "kernel_size": plain(self.kernel_size),
            "stride": plain(self.stride),
            "padding": plain(self.padding),
            **super().get_config(),
        }
