"""Batch normalization on the GPU: cuPy reductions for the statistics, one fused kernel to apply them.

Training: the per-channel mean and variance are two reductions; one elementwise kernel then
writes both the normalised input (the backward pass's ``ctx``) and the output. The running
statistics are updated in place on the device. Backward: two reductions (``dbeta``, ``dgamma``
and the two means the input gradient needs come from them) and one elementwise kernel.
"""

from __future__ import annotations

from ._cupy import contiguous, cupy

# One element of (N, C, ...): its channel, from the position and the plane size per channel.
_CHANNEL = "const int ch = (int)((i / inner) % channels);"

_apply = cupy.ElementwiseKernel(
    "T x, raw T shift, raw T scale, raw T gamma, raw T beta, int64 inner, int32 channels",
    "T xhat, T y",
    _CHANNEL + "xhat = (x - shift[ch]) * scale[ch]; y = xhat * gamma[ch] + beta[ch];",
    "sega_batchnorm_apply",
)

_input_gradient = cupy.ElementwiseKernel(
    "T dy, T xhat, raw T gamma, raw T inv, raw T mean_dy, raw T mean_dy_xhat, int64 inner, int32 channels",
    "T dx",
    _CHANNEL + "dx = gamma[ch] * inv[ch] * (dy - mean_dy[ch] - xhat * mean_dy_xhat[ch]);",
    "sega_batchnorm_input_gradient",
)


def _layout(x):
    axes = (0,) + tuple(range(2, x.ndim))
    inner = 1
    for size in x.shape[2:]:
        inner *= size
    return axes, inner


def batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum, eps, training):
    """Normalise with the batch's statistics (training; running ones updated) or the running ones."""
    x = contiguous(x)
    axes, inner = _layout(x)
    channels = x.shape[1]
    xhat = cupy.empty_like(x)
    y = cupy.empty_like(x)
    if not training:
        inv = 1 / cupy.sqrt(running_var + eps)
        _apply(x, running_mean, inv, gamma, beta, inner, channels, xhat, y)
        return y, None
    mean = x.mean(axis=axes)
    var = x.var(axis=axes)
    inv = 1 / cupy.sqrt(var + eps)
    _apply(x, mean, inv, gamma, beta, inner, channels, xhat, y)
    running_mean *= momentum
    running_mean += (1 - momentum) * mean
    running_var *= momentum
    running_var += (1 - momentum) * var
    return y, (xhat, inv)


def batchnorm_backward(dy, x, gamma, ctx, dgamma, dbeta, need_dx):
    """Gradients through the affine map and the batch statistics."""
    xhat, inv = ctx
    dy = contiguous(dy)
    axes, inner = _layout(x)
    count = x.size // x.shape[1]
    cupy.sum(dy, axis=axes, out=dbeta)
    cupy.sum(dy * xhat, axis=axes, out=dgamma)
    if not need_dx:
        return None
    dx = cupy.empty_like(dy)
    _input_gradient(dy, xhat, gamma, inv, dbeta / count, dgamma / count, inner, x.shape[1], dx)
    return dx
