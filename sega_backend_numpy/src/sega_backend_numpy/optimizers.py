"""Optimizer update rules over the model's flat parameter buffer, in place, with few temporaries."""

from __future__ import annotations

import math

import numpy as np

from sega_core.hookspecs import hookimpl


@hookimpl
def sega_sgd_update(param, grad, velocity, lr, momentum, nesterov):
    """SGD with (optionally Nesterov) momentum, PyTorch's formulation."""
    if momentum == 0:
        param -= lr * grad
        return
    velocity *= momentum
    velocity += grad
    if nesterov:
        param -= lr * (grad + momentum * velocity)
    else:
        param -= lr * velocity


@hookimpl
def sega_adam_update(param, grad, m, v, step, lr, beta1, beta2, eps):
    """Adam with bias correction folded into two scalars."""
    m *= beta1
    m += (1.0 - beta1) * grad
    v *= beta2
    v += (1.0 - beta2) * (grad * grad)
    step_size = lr / (1.0 - beta1**step)
    denom = np.sqrt(v)
    denom *= 1.0 / math.sqrt(1.0 - beta2**step)
    denom += eps
    np.divide(m, denom, out=denom)
    denom *= step_size
    param -= denom


@hookimpl
def sega_adadelta_update(param, grad, sq_avg, acc_delta, lr, rho, eps):
    """Adadelta, PyTorch's formulation (``lr`` scales the computed step)."""
    sq_avg *= rho
    sq_avg += (1.0 - rho) * (grad * grad)
    delta = np.sqrt(acc_delta + eps)
    delta /= np.sqrt(sq_avg + eps)
    delta *= grad
    acc_delta *= rho
    acc_delta += (1.0 - rho) * (delta * delta)
    delta *= lr
    param -= delta
