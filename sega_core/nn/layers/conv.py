"""2-D convolution layer (NCHW, square kernels, zero padding)."""

from __future__ import annotations

from ...errors import InputError
from .base import ActivatedLayer, ParamSpec, positive_int, weight_init, zeros


class Conv2D(ActivatedLayer):
    """``activation(conv(x, W) + b)`` on (N, C, H, W) inputs."""

    kind = "conv2d"

    def __init__(
        self,
        filters: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 0,
        activation: str | None = "relu",
        alpha: float = 0.01,
    ) -> None:
        super().__init__(activation, alpha)
        self.filters = positive_int("Conv2D", "filters", filters)
        self.kernel_size = positive_int("Conv2D", "kernel_size", kernel_size)
        self.stride = positive_int("Conv2D", "stride", stride)
        self.padding = positive_int("Conv2D", "padding", padding, minimum=0)

    def _output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise InputError(
                f"Conv2D expects (channels, height, width) samples but receives shape {input_shape}; "
                "reshape images to N x C x H x W"
            )
        c, h, w = input_shape
        k, s, p = self.kernel_size, self.stride, self.padding
        ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        if ho < 1 or wo < 1:
            raise InputError(f"Conv2D kernel {k} with padding {p} does not fit an input of {h}x{w}")
        return (self.filters, ho, wo)

    def param_specs(self):
        """W (filters, channels, k, k) and b (filters,)."""
        c, k = self.input_shape[0], self.kernel_size
        fan_in, fan_out = c * k * k, self.filters * k * k
        return [
            ParamSpec("W", (self.filters, c, k, k), "weight", weight_init(self.activation, fan_in, fan_out)),
            ParamSpec("b", (self.filters,), "bias", zeros),
        ]

    def _linear(self, x, training):
        self._x = x
        z, self._ctx = self.kernels.conv2d_forward(x, self.params["W"], self.params["b"], self.stride, self.padding)
        return z

    def _linear_infer(self, x):
        return self.kernels.conv2d_forward(x, self.params["W"], self.params["b"], self.stride, self.padding)[0]

    def backward(self, dy, need_dx):
        """Activation derivative, then the convolution's backward kernel."""
        dz = self._activation_grad(dy)
        return self.kernels.conv2d_backward(
            dz, self._x, self.params["W"], self.stride, self.padding, self._ctx, self.grads["W"], self.grads["b"], need_dx
        )

    def get_config(self):
        """Filters, kernel, stride, padding, activation."""
        return {
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "stride": self.stride,
            "padding": self.padding,
            **super().get_config(),
        }
