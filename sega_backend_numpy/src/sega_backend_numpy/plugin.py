"""Entry point of the NumPy backend: identity, services, and every kernel hook."""

from __future__ import annotations

import numpy as np

from sega_core.hookspecs import HOOK_API_VERSION, hookimpl

from . import __version__
from .activations import (  # noqa: F401  (hook implementations, collected by pluggy)
    sega_leaky_relu_backward,
    sega_leaky_relu_forward,
    sega_linear_backward,
    sega_linear_forward,
    sega_relu_backward,
    sega_relu_forward,
    sega_sigmoid_backward,
    sega_sigmoid_forward,
    sega_softmax_backward,
    sega_softmax_forward,
    sega_tanh_backward,
    sega_tanh_forward,
)
from .batchnorm import sega_batchnorm_backward, sega_batchnorm_forward  # noqa: F401
from .conv import sega_conv2d_backward, sega_conv2d_forward  # noqa: F401
from .dense import sega_dense_backward, sega_dense_forward  # noqa: F401
from .dropout import sega_dropout_backward, sega_dropout_forward  # noqa: F401
from .gates import sega_gru_backward, sega_gru_forward, sega_lstm_backward, sega_lstm_forward  # noqa: F401
from .losses import (  # noqa: F401
    sega_bce_with_logits,
    sega_huber,
    sega_mae,
    sega_mse,
    sega_softmax_cross_entropy,
)
from .optimizers import sega_adadelta_update, sega_adam_update, sega_sgd_update  # noqa: F401
from .pooling import (  # noqa: F401
    sega_avgpool2d_backward,
    sega_avgpool2d_forward,
    sega_maxpool2d_backward,
    sega_maxpool2d_forward,
)
from .rnn import sega_rnn_backward, sega_rnn_forward  # noqa: F401


@hookimpl
def sega_backend_info():
    """Identify the NumPy reference backend."""
    return {
        "name": "numpy",
        "version": __version__,
        "hook_api": HOOK_API_VERSION,
        "device": "cpu",
        "description": "NumPy reference kernels (vectorised, BLAS matrix products)",
    }


@hookimpl
def sega_backend_available():
    """NumPy is a dependency of sega-core, so this backend can always run."""
    return None


@hookimpl
def sega_array_module():
    """Arrays are NumPy arrays."""
    return np


@hookimpl
def sega_to_device(x):
    """Host memory is this backend's memory: nothing to copy."""
    return x


@hookimpl
def sega_to_host(x):
    """Already a NumPy array."""
    return np.asarray(x)


@hookimpl
def sega_make_rng(seed):
    """A NumPy ``Generator`` (PCG64) seeded with ``seed``."""
    return np.random.default_rng(seed)
