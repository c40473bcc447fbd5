"""Optimizer updates: one fused pass over the model's flat parameter buffer.

NumPy's version of Adam makes about ten passes over four arrays of the model's size and allocates
three temporaries; here every element is read and written once. The scalar coefficients are
computed in Python (double precision) and rounded to the parameters' dtype inside the kernel,
which is what NumPy does with a Python float and a float32 array, so both backends take the
same steps.
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import jit


@jit()
def _sgd(param, grad, velocity, lr, momentum, nesterov):
    lr_ = param.dtype.type(lr)
    mom = param.dtype.type(momentum)
    if momentum == 0.0:
        for i in range(param.size):
            param[i] -= lr_ * grad[i]
    elif nesterov:
        for i in range(param.size):
            g = grad[i]
            v = velocity[i] * mom + g
            velocity[i] = v
            param[i] -= lr_ * (g + mom * v)
    else:
        for i in range(param.size):
            v = velocity[i] * mom + grad[i]
            velocity[i] = v
            param[i] -= lr_ * v


@jit()
def _adam(param, grad, m, v, beta1, one_minus_beta1, beta2, one_minus_beta2, step_size, inv_bc2, eps):
    t = param.dtype.type
    b1, c1, b2, c2 = t(beta1), t(one_minus_beta1), t(beta2), t(one_minus_beta2)
    ss, ib, e = t(step_size), t(inv_bc2), t(eps)
    for i in range(param.size):
        g = grad[i]
        mi = m[i] * b1 + c1 * g
        vi = v[i] * b2 + c2 * (g * g)
        m[i] = mi
        v[i] = vi
        denom = np.sqrt(vi) * ib + e
        param[i] -= (mi / denom) * ss


@jit()
def _adadelta(param, grad, sq_avg, acc_delta, lr, rho, one_minus_rho, eps):
    t = param.dtype.type
    lr_, r, c, e = t(lr), t(rho), t(one_minus_rho), t(eps)
    for i in range(param.size):
        g = grad[i]
        sq = sq_avg[i] * r + c * (g * g)
        sq_avg[i] = sq
        delta = np.sqrt(acc_delta[i] + e) / np.sqrt(sq + e) * g
        acc_delta[i] = acc_delta[i] * r + c * (delta * delta)
        param[i] -= delta * lr_


def _prepare(param, grad, *state):
    """``grad`` as a C-contiguous array, after checking every array the update may touch.

    Updates happen in place, so a copy made to get a contiguous array would be lost; and the
    compiled loops do not check their indices, so every array must be as long as ``param``.
    """
    for a in (param,) + state:
        if a.ndim != 1 or not a.flags.c_contiguous or not a.flags.writeable:
            raise ValueError("optimizer kernels update writable, C-contiguous 1-D arrays in place")
    grad = np.ascontiguousarray(grad)
    if any(a.size != param.size for a in (grad,) + state):
        raise ValueError(f"optimizer arrays must have one length, got {[a.size for a in (param, grad) + state]}")
    return grad


def sgd_update(param, grad, velocity, lr, momentum, nesterov):
    """SGD with (optionally Nesterov) momentum, PyTorch's formulation, in place."""
    if momentum == 0:
        # Plain SGD leaves the velocity alone; the parameter array stands in for its type.
        grad = _prepare(param, grad)
        velocity = param
    else:
        grad = _prepare(param, grad, velocity)
    _sgd(param, grad, velocity, float(lr), float(momentum), bool(nesterov))


def adam_update(param, grad, m, v, step, lr, beta1, beta2, eps):
    """Adam with bias correction, in place; ``step`` is the 1-based step count."""
    grad = _prepare(param, grad, m, v)
    step_size = lr / (1.0 - beta1**step)
    inv_bc2 = 1.0 / math.sqrt(1.0 - beta2**step)
    _adam(
        param, grad, m, v,
        float(beta1), 1.0 - beta1, float(beta2), 1.0 - beta2, float(step_size), float(inv_bc2), float(eps),
    )


def adadelta_update(param, grad, sq_avg, acc_delta, lr, rho, eps):
    """Adadelta, PyTorch's formulation, in place."""
    grad = _prepare(param, grad, sq_avg, acc_delta)
    _adadelta(param, grad, sq_avg, acc_delta, float(lr), float(rho), 1.0 - rho, float(eps))
