"""Entry point of the cupy backend: identity, availability, and every hook, declared lazily.

This module must stay light: listing backends imports it, so it imports neither cupy nor the
implementation modules (which do). Each hook below is an empty stub with the specification's
exact signature; ``lazy_kernel`` names the real function, which the core imports and stores in
its dispatch table when the backend is first used. The arrays live on the GPU, so the backend
implements every kernel and service itself (the core refuses it otherwise).
"""

from __future__ import annotations

from sega_core import lazy_kernel
from sega_core.hookspecs import HOOK_API_VERSION, hookimpl

from . import __version__
from .probe import unavailable_reason

_PKG = "sega_backend_cupy"


@hookimpl
def sega_backend_info():
    """Identify the cupy backend (cheap: no cupy import)."""
    return {
        "name": "cupy",
        "version": __version__,
        "hook_api": HOOK_API_VERSION,
        "device": "gpu",
        "description": "CuPy kernels on an NVIDIA GPU (cuBLAS GEMMs, fused CUDA elementwise kernels)",
    }


@hookimpl
def sega_backend_available():
    """``None`` if cupy is installed and a CUDA device is visible, else why not.

    Checked without importing cupy (importlib for the package, ctypes for the driver).
    """
    return unavailable_reason()


# ---- services ------------------------------------------------------------------------------


@hookimpl
@lazy_kernel(f"{_PKG}.services:array_module")
def sega_array_module():
    """cupy."""


@hookimpl
@lazy_kernel(f"{_PKG}.services:to_device")
def sega_to_device(x):
    """Host -> GPU copy."""


@hookimpl
@lazy_kernel(f"{_PKG}.services:to_host")
def sega_to_host(x):
    """GPU -> host copy."""


@hookimpl
@lazy_kernel(f"{_PKG}.services:make_rng")
def sega_make_rng(seed):
    """A cupy random Generator."""


@hookimpl
@lazy_kernel(f"{_PKG}.staging:stream_to_device")
def sega_stream_to_device(chunks):
    """Chunks copied from pinned host memory on a copy stream, one chunk ahead of the compute."""


# ---- layers --------------------------------------------------------------------------------


@hookimpl
@lazy_kernel(f"{_PKG}.dense:dense_forward")
def sega_dense_forward(x, w, b):
    """See ``sega_backend_cupy.dense``."""


@hookimpl
@lazy_kernel(f"{_PKG}.dense:dense_backward")
def sega_dense_backward(dy, x, w, dw, db, need_dx):
    """See ``sega_backend_cupy.dense``."""


@hookimpl
@lazy_kernel(f"{_PKG}.conv:conv2d_forward")
def sega_conv2d_forward(x, w, b, stride, padding):
    """See ``sega_backend_cupy.conv``."""


@hookimpl
@lazy_kernel(f"{_PKG}.conv:conv2d_backward")
def sega_conv2d_backward(dy, x, w, stride, padding, ctx, dw, db, need_dx):
    """See ``sega_backend_cupy.conv``."""


@hookimpl
@lazy_kernel(f"{_PKG}.rnn:rnn_forward")
def sega_rnn_forward(x, wx, wh, b, activation):
    """See ``sega_backend_cupy.rnn``."""


@hookimpl
@lazy_kernel(f"{_PKG}.rnn:rnn_backward")
def sega_rnn_backward(dhs, x, wx, wh, hs, activation, ctx, dwx, dwh, db, need_dx):
    """See ``sega_backend_cupy.rnn``."""


@hookimpl
@lazy_kernel(f"{_PKG}.dropout:dropout_forward")
def sega_dropout_forward(x, rate, rng):
    """See ``sega_backend_cupy.dropout``."""


@hookimpl
@lazy_kernel(f"{_PKG}.dropout:dropout_backward")
def sega_dropout_backward(dy, mask):
    """See ``sega_backend_cupy.dropout``."""


# ---- activations ---------------------------------------------------------------------------


@hookimpl
@lazy_kernel(f"{_PKG}.activations:sigmoid_forward")
def sega_sigmoid_forward(z):
    """See ``sega_backend_cupy.activations``."""


@hookimpl
@lazy_kernel(f"{_PKG}.activations:sigmoid_backward")
def sega_sigmoid_backward(dy, z, y):
    """See ``sega_backend_cupy.activations``."""


@hookimpl
@lazy_kernel(f"{_PKG}.activations:tanh_forward")
def sega_tanh_forward(z):
    """See ``sega_backend_cupy.activations``."""


@hookimpl
@lazy_kernel(f"{_PKG}.activations:tanh_backward")
def sega_tanh_backward(dy, z, y):
    """See ``sega_backend_cupy.activations``."""


@hookimpl
@lazy_kernel(f"{_PKG}.activations:relu_forward")
def sega_relu_forward(z):
    """See ``sega_backend_cupy.activations``."""


@hookimpl
@lazy_kernel(f"{_PKG}.activations:relu_backward")
def sega_relu_backward(dy, z, y):
    """See ``sega_backend_cupy.activations``."""


@hookimpl
@lazy_kernel(f"{_PKG}.activations:leaky_relu_forward")
def sega_leaky_relu_forward(z, alpha):
    """See ``sega_backend_cupy.activations``."""


@hookimpl
@lazy_kernel(f"{_PKG}.activations:leaky_relu_backward")
def sega_leaky_relu_backward(dy, z, y, alpha):
    """See ``sega_backend_cupy.activations``."""


@hookimpl
@lazy_kernel(f"{_PKG}.activations:softmax_forward")
def sega_softmax_forward(z):
    """See ``sega_backend_cupy.activations``."""


@hookimpl
@lazy_kernel(f"{_PKG}.activations:softmax_backward")
def sega_softmax_backward(dy, z, y):
    """See ``sega_backend_cupy.activations``."""


@hookimpl
@lazy_kernel(f"{_PKG}.activations:linear_forward")
def sega_linear_forward(z):
    """See ``sega_backend_cupy.activations``."""


@hookimpl
@lazy_kernel(f"{_PKG}.activations:linear_backward")
def sega_linear_backward(dy, z, y):
    """See ``sega_backend_cupy.activations``."""


# ---- pooling, batch normalization, LSTM, GRU (hook API 1.2) -------------------------------------


@hookimpl
@lazy_kernel(f"{_PKG}.pooling:maxpool2d_forward")
def sega_maxpool2d_forward(x, pool, stride, padding):
    """See ``sega_backend_cupy.pooling``."""


@hookimpl
@lazy_kernel(f"{_PKG}.pooling:maxpool2d_backward")
def sega_maxpool2d_backward(dy, x, pool, stride, padding, ctx):
    """See ``sega_backend_cupy.pooling``."""


@hookimpl
@lazy_kernel(f"{_PKG}.pooling:avgpool2d_forward")
def sega_avgpool2d_forward(x, pool, stride, padding):
    """See ``sega_backend_cupy.pooling``."""


@hookimpl
@lazy_kernel(f"{_PKG}.pooling:avgpool2d_backward")
def sega_avgpool2d_backward(dy, x, pool, stride, padding, ctx):
    """See ``sega_backend_cupy.pooling``."""


@hookimpl
@lazy_kernel(f"{_PKG}.batchnorm:batchnorm_forward")
def sega_batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum, eps, training):
    """See ``sega_backend_cupy.batchnorm``."""


@hookimpl
@lazy_kernel(f"{_PKG}.batchnorm:batchnorm_backward")
def sega_batchnorm_backward(dy, x, gamma, ctx, dgamma, dbeta, need_dx):
    """See ``sega_backend_cupy.batchnorm``."""


@hookimpl
@lazy_kernel(f"{_PKG}.gates:lstm_forward")
def sega_lstm_forward(x, wx, wh, b):
    """See ``sega_backend_cupy.gates``."""


@hookimpl
@lazy_kernel(f"{_PKG}.gates:lstm_backward")
def sega_lstm_backward(dhs, x, wx, wh, hs, ctx, dwx, dwh, db, need_dx):
    """See ``sega_backend_cupy.gates``."""


@hookimpl
@lazy_kernel(f"{_PKG}.gates:gru_forward")
def sega_gru_forward(x, wx, wh, bx, bh, reset_after):
    """See ``sega_backend_cupy.gates``."""


@hookimpl
@lazy_kernel(f"{_PKG}.gates:gru_backward")
def sega_gru_backward(dhs, x, wx, wh, bx, bh, reset_after, hs, ctx, dwx, dwh, dbx, dbh, need_dx):
    """See ``sega_backend_cupy.gates``."""


# ---- losses --------------------------------------------------------------------------------


@hookimpl
@lazy_kernel(f"{_PKG}.losses:softmax_cross_entropy")
def sega_softmax_cross_entropy(logits, target, weight):
    """See ``sega_backend_cupy.losses``."""


@hookimpl
@lazy_kernel(f"{_PKG}.losses:bce_with_logits")
def sega_bce_with_logits(logits, target, weight):
    """See ``sega_backend_cupy.losses``."""


@hookimpl
@lazy_kernel(f"{_PKG}.losses:mse")
def sega_mse(pred, target, weight):
    """See ``sega_backend_cupy.losses``."""


@hookimpl
@lazy_kernel(f"{_PKG}.losses:mae")
def sega_mae(pred, target, weight):
    """See ``sega_backend_cupy.losses``."""


@hookimpl
@lazy_kernel(f"{_PKG}.losses:huber")
def sega_huber(pred, target, delta, weight):
    """See ``sega_backend_cupy.losses``."""


# ---- optimizers ----------------------------------------------------------------------------


@hookimpl
@lazy_kernel(f"{_PKG}.optimizers:sgd_update")
def sega_sgd_update(param, grad, velocity, lr, momentum, nesterov):
    """See ``sega_backend_cupy.optimizers``."""


@hookimpl
@lazy_kernel(f"{_PKG}.optimizers:adam_update")
def sega_adam_update(param, grad, m, v, step, lr, beta1, beta2, eps):
    """See ``sega_backend_cupy.optimizers``."""


@hookimpl
@lazy_kernel(f"{_PKG}.optimizers:adadelta_update")
def sega_adadelta_update(param, grad, sq_avg, acc_delta, lr, rho, eps):
    """See ``sega_backend_cupy.optimizers``."""
