"""The optimizers' compiled loops: one fused pass over (a range of) the flat parameter buffer.

NumPy's version of Adam makes about ten passes over four arrays of the model's size and allocates
three temporaries; here every element is read and written once. The scalar coefficients are
computed in Python (double precision) and rounded to the parameters' dtype inside the kernel,
which is what NumPy does with a Python float and a float32 array, so both backends take the
same steps. :data:`UPDATES` holds, per optimizer, its loop with the buffers shared out between
threads (see :mod:`._parallel`).
"""

from __future__ import annotations

import numba
import numpy as np

from ._jit import jit
from ._parallel import kernel, span

SGD, ADAM, ADADELTA = 1, 2, 3


@jit()
def sgd_loop(param, grad, velocity, lr, momentum, nesterov):
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
def adam_loop(param, grad, m, v, beta1, one_minus_beta1, beta2, one_minus_beta2, step_size, inv_bc2, eps):
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
def adadelta_loop(param, grad, sq_avg, acc_delta, lr, rho, one_minus_rho, eps):
    t = param.dtype.type
    lr_, r, c, e = t(lr), t(rho), t(one_minus_rho), t(eps)
    for i in range(param.size):
        g = grad[i]
        sq = sq_avg[i] * r + c * (g * g)
        sq_avg[i] = sq
        delta = np.sqrt(acc_delta[i] + e) / np.sqrt(sq + e) * g
        acc_delta[i] = acc_delta[i] * r + c * (delta * delta)
        param[i] -= delta * lr_


def _kernel(kind: int):
    """Optimizer ``kind``, each share of the buffers on its own thread, its coefficients in the
    float64 array ``coef`` (SGD: lr, momentum, nesterov; Adam: beta1, 1 - beta1, beta2, 1 - beta2,
    step size, inverse bias correction, eps; Adadelta: lr, rho, 1 - rho, eps). ``kind`` is a
    constant of the compiled code, so a model compiles only its own optimizer's parallel kernel."""

    @kernel
    def update(param, grad, s1, s2, coef, parts):
        for i in numba.prange(parts):
            lo, hi = span(np.int64(i), param.size, parts)
            p, g, a, b = param[lo:hi], grad[lo:hi], s1[lo:hi], s2[lo:hi]
            if kind == SGD:
                sgd_loop(p, g, a, coef[0], coef[1], coef[2] != 0.0)
            elif kind == ADAM:
                adam_loop(p, g, a, b, coef[0], coef[1], coef[2], coef[3], coef[4], coef[5], coef[6])
            else:
                adadelta_loop(p, g, a, b, coef[0], coef[1], coef[2], coef[3])

    return update


#: The shared-out update kernel of each optimizer (each compiled on first use).
UPDATES = {kind: _kernel(kind) for kind in (SGD, ADAM, ADADELTA)}
