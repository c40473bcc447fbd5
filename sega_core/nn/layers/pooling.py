"""Pooling over (N, C, H, W) images: MaxPool2D, AvgPool2D and GlobalAvgPool2D (Keras 3 names)."""

from __future__ import annotations

import numpy as np

from ...errors import InputError
from .base import Layer


def pair(owner: str, name: str, value) -> tuple[int, int]:
    """An int or a pair of ints >= 1 as a pair (Keras's ``pool_size=2`` or ``(2, 3)``)."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2 or any(isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 1 for v in items):
        raise InputError(f"{owner} {name} must be an int >= 1 or a pair of them, got {value!r}")
    return int(items[0]), int(items[1])


def check_image_shape(owner: str, input_shape) -> None:
    """Refuse samples that are not (C, H, W)."""
    if len(input_shape) != 3:
        raise InputError(
            f"{owner} expects (channels, height, width) samples but receives shape {input_shape}; "
            "reshape images to N x C x H x W"
        )


def check_channels_first(owner: str, input_shape) -> None:
    """Refuse a model's input images that look channels-last: more than four "channels" of
    images one, three or four pixels wide are far more likely (H, W, C) images (RGB, RGBA,
    grey) given the wrong way round. Applied to what the user passes, not between layers, whose
    (C, H, W) outputs may have any shape."""
    c, h, w = input_shape
    if w in (1, 3, 4) and c > 4 and h > 4:
        raise InputError(
            f"{owner} receives samples of shape {input_shape}, which look channels-last (H, W, C); sega's image "
            "layers are channels-first (C, H, W): pass X.transpose(0, 3, 1, 2)"
        )


def same_padding(size: int, window: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding of one axis: ``ceil(size / stride)`` outputs, the odd pixel at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


class _Pool2D(Layer):
    """What max and average pooling share: window geometry, and the kernel calls."""

    _op = ""

    def __init__(self, pool_size=2, strides=None, padding: str = "valid") -> None:
        super().__init__()
        name = type(self).__name__
        self.pool_size = pair(name, "pool_size", pool_size)
        self.strides = self.pool_size if strides is None else pair(name, "strides", strides)
        if padding not in ("valid", "same"):
            raise InputError(f"{name} padding must be 'valid' or 'same', got {padding!r}")
        self.padding = padding

    def _output_shape(self, input_shape):
        name = type(self).__name__
        check_image_shape(name, input_shape)
        c, h, w = input_shape
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        if self.padding == "same":
            self._pads = (same_padding(h, ph, sh), same_padding(w, pw, sw))
        else:
            if ph > h or pw > w:
                raise InputError(
                    f"{name} pool {ph}x{pw} is larger than its {h}x{w} input; use a smaller pool_size or padding='same'"
                )
            self._pads = ((0, 0), (0, 0))
        (top, bottom), (left, right) = self._pads
        return (c, (h + top + bottom - ph) // sh + 1, (w + left + right - pw) // sw + 1)

    def _kernel(self, x):
        forward = getattr(self.kernels, f"{self._op}_forward")
        return forward(x, self.pool_size, self.strides, self._pads)

    def forward(self, x, training):
        """Pool, keeping what the backward pass needs."""
        self._x = x
        y, self._ctx = self._kernel(x)
        return y

    def infer(self, x):
        """Pool, keeping nothing."""
        return self._kernel(x)[0]

    def backward(self, dy, need_dx):
        """The gradient with respect to the input (pooling has no parameters)."""
        if not need_dx:
            return None
        backward = getattr(self.kernels, f"{self._op}_backward")
        return backward(dy, self._x, self.pool_size, self.strides, self._pads, self._ctx)

    def get_config(self):
        """Window, strides, padding."""
        return {"pool_size": list(self.pool_size), "strides": list(self.strides), "padding": self.padding}


class MaxPool2D(_Pool2D):
    """The maximum of each ``pool_size`` window, moved by ``strides`` (default: the window)."""

    kind = "maxpool2d"
    _op = "maxpool2d"


class AvgPool2D(_Pool2D):
    """The mean of each ``pool_size`` window; with ``padding="same"`` the mean of its pixels only."""

    kind = "avgpool2d"
    _op = "avgpool2d"


class GlobalAvgPool2D(Layer):
    """The mean of each channel over the whole image: (N, C, H, W) to (N, C)."""

    kind = "globalavgpool2d"

    def _output_shape(self, input_shape):
        check_image_shape("GlobalAvgPool2D", input_shape)
        self._window = tuple(input_shape[1:])
        return (input_shape[0],)

    def _pool(self, x):
        return self.kernels.avgpool2d_forward(x, self._window, self._window, ((0, 0), (0, 0)))

    def forward(self, x, training):
        """Average, keeping what the backward pass needs."""
        self._x = x
        y, self._ctx = self._pool(x)
        return y.reshape(len(x), -1)

    def infer(self, x):
        """Average, keeping nothing."""
        return self._pool(x)[0].reshape(len(x), -1)

    def backward(self, dy, need_dx):
        """Spread each channel's gradient over its pixels."""
        if not need_dx:
            return None
        dy4 = dy.reshape(dy.shape + (1, 1))
        return self.kernels.avgpool2d_backward(dy4, self._x, self._window, self._window, ((0, 0), (0, 0)), self._ctx)


#: Keras's longer names for the same layers.
MaxPooling2D = MaxPool2D
AveragePooling2D = AvgPool2D
GlobalAveragePooling2D = GlobalAvgPool2D

