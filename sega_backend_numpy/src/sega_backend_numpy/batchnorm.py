"""Batch normalization per channel (axis 1) of (N, C) or (N, C, H, W) inputs."""

from __future__ import annotations

import numpy as np

from sega_core.hookspecs import hookimpl


def _axes_and_shape(x):
    """The reduced axes, and the shape that broadcasts a (C,) array against ``x``."""
    axes = (0,) + tuple(range(2, x.ndim))
    return axes, (1, x.shape[1]) + (1,) * (x.ndim - 2)


@hookimpl
def sega_batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum, eps, training):
    """Normalise with the batch's statistics (training, updating the running ones) or the running ones."""
    axes, shape = _axes_and_shape(x)
    if not training:
        scale = gamma / np.sqrt(running_var + eps)
        return x * scale.reshape(shape) + (beta - running_mean * scale).reshape(shape), None
    mean = x.mean(axis=axes)
    var = x.var(axis=axes)
    inv = 1.0 / np.sqrt(var + eps)
    xhat = (x - mean.reshape(shape)) * inv.reshape(shape)
    running_mean *= momentum
    running_mean += (1 - momentum) * mean
    running_var *= momentum
    running_var += (1 - momentum) * var
    return xhat * gamma.reshape(shape) + beta.reshape(shape), (xhat, inv)


@hookimpl
def sega_batchnorm_backward(dy, x, gamma, ctx, dgamma, dbeta, need_dx):
    """Gradients through the affine map and the batch statistics."""
    xhat, inv = ctx
    axes, shape = _axes_and_shape(x)
    np.sum(dy, axis=axes, out=dbeta)
    np.sum(dy * xhat, axis=axes, out=dgamma)
    if not need_dx:
        return None
    count = x.size // x.shape[1]
    dxhat = dy * gamma.reshape(shape)
    mean_dxhat = dxhat.sum(axis=axes) / count
    mean_dxhat_xhat = (dxhat * xhat).sum(axis=axes) / count
    return (dxhat - mean_dxhat.reshape(shape) - xhat * mean_dxhat_xhat.reshape(shape)) * inv.reshape(shape)
