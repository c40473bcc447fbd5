"""Entry point of the numba backend: identity, availability, and lazily imported kernels.

Listing backends imports this module, so it stays light: it never imports numba. Each kernel
hook below is an empty stub under :func:`sega_core.lazy_kernel`; the compiled kernel module is
imported only when the backend is first used (``get_backend("numba")``), and the core's dispatch
table then holds the real kernels.

numba is a CPU backend: hooks not implemented here (the regression and binary losses, the linear activation,
batch normalization, the array module and host/device copies, the random generator) are taken from the NumPy
reference, which is already as fast as it gets for them (BLAS, or trivial).
"""

from __future__ import annotations

import importlib.util

from sega_core import lazy_kernel
from sega_core.hookspecs import HOOK_API_VERSION, hookimpl

from . import __version__

_ACT = "sega_backend_numba._activations:"


@hookimpl
def sega_backend_info():
    """Identify the numba backend."""
    return {
        "name": "numba",
        "version": __version__,
        "hook_api": HOOK_API_VERSION,
        "device": "cpu",
        "description": "Numba-compiled conv, pooling, RNN, LSTM, GRU, activation, dropout and optimizer kernels (cached on disk)",
    }


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


@hookimpl
def sega_backend_available():
    """``None`` when numba and SciPy (whose BLAS numba's matrix products call) can be imported
    (checked without importing them), else why not."""
    for name in ("numba", "scipy"):
        if not _installed(name):
            return f'{name} is not installed; install it with pip install "sega-core[numba]"'
    return None


# ---- the compute context ------------------------------------------------------------------------


@hookimpl
@lazy_kernel("sega_backend_numba._blas:compute_context")
def sega_compute_context():
    """BLAS held to one thread while any train/predict/evaluate call runs (re-entrant)."""


# ---- layers -----------------------------------------------------------------------------------------


@hookimpl
@lazy_kernel("sega_backend_numba._dense:dense_forward")
def sega_dense_forward(x, w, b):
    """BLAS product, large batches shared out by rows between threads."""


@hookimpl
@lazy_kernel("sega_backend_numba._dense:dense_backward")
def sega_dense_backward(dy, x, w, dw, db, need_dx):
    """BLAS products, large ones shared out between threads."""


@hookimpl
@lazy_kernel("sega_backend_numba._conv:conv2d_forward")
def sega_conv2d_forward(x, w, b, stride, padding):
    """Compiled im2col in cache-sized chunks + BLAS, bias folded into the product."""


@hookimpl
@lazy_kernel("sega_backend_numba._conv:conv2d_backward")
def sega_conv2d_backward(dy, x, w, stride, padding, ctx, dw, db, need_dx):
    """Chunked weight gradient by BLAS, input gradient by compiled col2im."""


@hookimpl
@lazy_kernel("sega_backend_numba._rnn:rnn_forward")
def sega_rnn_forward(x, wx, wh, b, activation):
    """One compiled time loop per share of sequences: BLAS step products, one fused pass per step."""


@hookimpl
@lazy_kernel("sega_backend_numba._rnn:rnn_backward")
def sega_rnn_backward(dhs, x, wx, wh, hs, activation, ctx, dwx, dwh, db, need_dx):
    """BPTT per share of sequences, derivative and bias gradient fused per step; weight gradients
    in two products per share."""


@hookimpl
@lazy_kernel("sega_backend_numba._pooling:maxpool2d_forward")
def sega_maxpool2d_forward(x, pool, stride, padding):
    """Compiled window loops, the image planes shared out; ``ctx`` the winners' positions."""


@hookimpl
@lazy_kernel("sega_backend_numba._pooling:maxpool2d_backward")
def sega_maxpool2d_backward(dy, x, pool, stride, padding, ctx):
    """One scattered add per window, the image planes shared out."""


@hookimpl
@lazy_kernel("sega_backend_numba._pooling:avgpool2d_forward")
def sega_avgpool2d_forward(x, pool, stride, padding):
    """Compiled window sums over input elements only, the image planes shared out."""


@hookimpl
@lazy_kernel("sega_backend_numba._pooling:avgpool2d_backward")
def sega_avgpool2d_backward(dy, x, pool, stride, padding, ctx):
    """Each window's share of ``dy`` added over its input elements, the image planes shared out."""


# Batch normalization stays with the NumPy reference: it is a few whole-array passes (means,
# variances, an affine map), which NumPy already runs vectorised at memory speed, and a training
# step spends a small fraction of its time there next to the convolutions or products around
# it; compiled loops would save a pass or two at the price of another kernel to compile.


@hookimpl
@lazy_kernel("sega_backend_numba._gates:lstm_forward")
def sega_lstm_forward(x, wx, wh, b):
    """One compiled time loop per share of sequences: a BLAS product and one fused gate pass per step."""


@hookimpl
@lazy_kernel("sega_backend_numba._gates:lstm_backward")
def sega_lstm_backward(dhs, x, wx, wh, hs, ctx, dwx, dwh, db, need_dx):
    """BPTT per share of sequences, gate derivatives and bias gradient fused per step; weight
    gradients in three products per share."""


@hookimpl
@lazy_kernel("sega_backend_numba._gates:gru_forward")
def sega_gru_forward(x, wx, wh, bx, bh, reset_after):
    """One compiled time loop per share of sequences: a BLAS product (two without
    ``reset_after``) and fused gate passes per step."""


@hookimpl
@lazy_kernel("sega_backend_numba._gates:gru_backward")
def sega_gru_backward(dhs, x, wx, wh, bx, bh, reset_after, hs, ctx, dwx, dwh, dbx, dbh, need_dx):
    """BPTT per share of sequences, gate derivatives and bias gradients fused per step; weight
    gradients in a few products per share."""


@hookimpl
@lazy_kernel("sega_backend_numba._dropout:dropout_forward")
def sega_dropout_forward(x, rate, rng):
    """NumPy's uniform draw, then mask and product in one compiled pass."""


@hookimpl
@lazy_kernel("sega_backend_numba._dropout:dropout_backward")
def sega_dropout_backward(dy, mask):
    """``dy * mask`` in one compiled pass."""


# ---- activations ---------------------------------------------------------------------------------


@hookimpl
@lazy_kernel(_ACT + "sigmoid_forward")
def sega_sigmoid_forward(z):
    """Compiled one-pass logistic function."""


@hookimpl
@lazy_kernel(_ACT + "sigmoid_backward")
def sega_sigmoid_backward(dy, z, y):
    """Compiled ``dy * y * (1 - y)``."""


@hookimpl
@lazy_kernel(_ACT + "tanh_forward")
def sega_tanh_forward(z):
    """NumPy's vectorised tanh."""


@hookimpl
@lazy_kernel(_ACT + "tanh_backward")
def sega_tanh_backward(dy, z, y):
    """Compiled ``dy * (1 - y*y)``."""


@hookimpl
@lazy_kernel(_ACT + "relu_forward")
def sega_relu_forward(z):
    """Compiled ``max(z, 0)``."""


@hookimpl
@lazy_kernel(_ACT + "relu_backward")
def sega_relu_backward(dy, z, y):
    """Compiled masked copy of ``dy``."""


@hookimpl
@lazy_kernel(_ACT + "leaky_relu_forward")
def sega_leaky_relu_forward(z, alpha):
    """Compiled leaky ReLU."""


@hookimpl
@lazy_kernel(_ACT + "leaky_relu_backward")
def sega_leaky_relu_backward(dy, z, y, alpha):
    """Compiled leaky ReLU derivative times ``dy``."""


@hookimpl
@lazy_kernel(_ACT + "softmax_forward")
def sega_softmax_forward(z):
    """Compiled row-wise softmax."""


@hookimpl
@lazy_kernel(_ACT + "softmax_backward")
def sega_softmax_backward(dy, z, y):
    """Compiled row-wise softmax vector-Jacobian product."""


# ---- losses ---------------------------------------------------------------------------------------


@hookimpl
@lazy_kernel("sega_backend_numba._losses:softmax_cross_entropy")
def sega_softmax_cross_entropy(logits, target, weight):
    """One compiled pass per row: maximum, exponentials into the gradient, loss (weighted: the
    NumPy reference)."""


# ---- optimizers -----------------------------------------------------------------------------------


@hookimpl
@lazy_kernel("sega_backend_numba._optimizers:sgd_update")
def sega_sgd_update(param, grad, velocity, lr, momentum, nesterov):
    """One fused pass over the flat parameter buffer."""


@hookimpl
@lazy_kernel("sega_backend_numba._optimizers:adam_update")
def sega_adam_update(param, grad, m, v, step, lr, beta1, beta2, eps):
    """One fused pass over the flat parameter buffer."""


@hookimpl
@lazy_kernel("sega_backend_numba._optimizers:adadelta_update")
def sega_adadelta_update(param, grad, sq_avg, acc_delta, lr, rho, eps):
    """One fused pass over the flat parameter buffer."""
