"""Optimizer updates, in place over the model's flat parameter buffer, shared out between
threads when the buffer is large (:mod:`._updates` has the compiled loops).

An update is memory-bound: a pass over a few megabytes. With at least
:data:`MIN_ELEMENTS_PER_THREAD` elements per thread the buffer is cut into one range per thread
(:mod:`._parallel`); smaller updates (W4's 22 K parameters) are faster on the calling thread.
"""

from __future__ import annotations

import math

import numpy as np

from ._parallel import run, shares
from ._updates import ADADELTA, ADAM, SGD, UPDATES, adadelta_loop, adam_loop, sgd_loop

#: Elements a thread must get for an update to be shared out (the updates call no BLAS, so they
#: are shared out inside and outside a compute context alike).
MIN_ELEMENTS_PER_THREAD = 1 << 16


def _update(kind, loop, arrays, coefficients) -> None:
    """``loop(*arrays, *coefficients)`` on this thread, or shared out when large."""
    param = arrays[0]
    parts = shares(param.size, 1, blas=False, min_work=MIN_ELEMENTS_PER_THREAD)
    # A call mixing dtypes (a float64 gradient for float32 parameters) stays on this thread: the
    # shared-out kernel is compiled for one dtype, the loops compile per signature anyway.
    if parts == 1 or any(a.dtype != param.dtype for a in arrays):
        loop(*arrays, *coefficients)
        return
    s1, s2 = (arrays[2:] + (param, param))[:2]  # unused state slots: the parameters stand in
    coef = np.array([float(c) for c in coefficients], np.float64)
    run(UPDATES[kind], parts, param, arrays[1], s1, s2, coef)


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
    _update(SGD, sgd_loop, (param, grad, velocity), (float(lr), float(momentum), bool(nesterov)))


def adam_update(param, grad, m, v, step, lr, beta1, beta2, eps):
    """Adam with bias correction, in place; ``step`` is the 1-based step count."""
    grad = _prepare(param, grad, m, v)
    step_size = lr / (1.0 - beta1**step)
    inv_bc2 = 1.0 / math.sqrt(1.0 - beta2**step)
    _update(ADAM, adam_loop, (param, grad, m, v),
            (float(beta1), 1.0 - beta1, float(beta2), 1.0 - beta2, float(step_size), float(inv_bc2), float(eps)))


def adadelta_update(param, grad, sq_avg, acc_delta, lr, rho, eps):
    """Adadelta, PyTorch's formulation, in place."""
    grad = _prepare(param, grad, sq_avg, acc_delta)
    _update(ADADELTA, adadelta_loop, (param, grad, sq_avg, acc_delta), (float(lr), float(rho), 1.0 - rho, float(eps)))
