"""Optimizer updates over the model's flat parameter buffer: ONE fused launch per step.

``param`` and the state arrays are passed as the kernels' outputs, which cupy binds by
reference, so each element is read and updated in place in a single pass; hyper-parameters
(including Adam's bias corrections, folded into two scalars on the host) are kernel arguments
cast to the arrays' dtype.
"""

from __future__ import annotations

import math

from ._cupy import cupy

_sgd_plain = cupy.ElementwiseKernel("T g, T lr", "T p", "p -= lr * g;", "sega_sgd_update")
_sgd_momentum = cupy.ElementwiseKernel(
    "T g, T lr, T mu, int32 nesterov",
    "T p, T v",
    "v = mu * v + g; p -= nesterov ? lr * (g + mu * v) : lr * v;",
    "sega_sgd_momentum_update",
)
_adam = cupy.ElementwiseKernel(
    "T g, T b1, T one_minus_b1, T b2, T one_minus_b2, T step_size, T inv_bias2, T eps",
    "T p, T m, T v",
    """
    m = b1 * m + one_minus_b1 * g;
    v = b2 * v + one_minus_b2 * (g * g);
    p -= step_size * (m / (sqrt(v) * inv_bias2 + eps));
    """,
    "sega_adam_update",
)
_adadelta = cupy.ElementwiseKernel(
    "T g, T lr, T rho, T one_minus_rho, T eps",
    "T p, T sq, T acc",
    """
    sq = rho * sq + one_minus_rho * (g * g);
    const T d = sqrt(acc + eps) / sqrt(sq + eps) * g;
    acc = rho * acc + one_minus_rho * (d * d);
    p -= lr * d;
    """,
    "sega_adadelta_update",
)


def sgd_update(param, grad, velocity, lr, momentum, nesterov):
    """SGD with optional (Nesterov) momentum, PyTorch's formulation; ``velocity`` is untouched
    when ``momentum == 0``."""
    if momentum == 0:
        _sgd_plain(grad, lr, param)
    else:
        _sgd_momentum(grad, lr, momentum, 1 if nesterov else 0, param, velocity)


def adam_update(param, grad, m, v, step, lr, beta1, beta2, eps):
    """Adam with bias correction: ``param -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)``."""
    step_size = lr / (1.0 - beta1**step)
    inv_bias2 = 1.0 / math.sqrt(1.0 - beta2**step)
    _adam(grad, beta1, 1.0 - beta1, beta2, 1.0 - beta2, step_size, inv_bias2, eps, param, m, v)


def adadelta_update(param, grad, sq_avg, acc_delta, lr, rho, eps):
    """Adadelta (Zeiler), PyTorch's formulation: ``lr`` scales the computed step."""
    _adadelta(grad, lr, rho, 1.0 - rho, eps, param, sq_avg, acc_delta)
