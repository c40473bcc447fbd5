"""Entry point of the example backend (``example = "sega_backend_example.plugin"``).

Listing backends (``sega backends``) imports this module, so it stays light: it imports nothing
heavier than NumPy, which sega-core imports anyway. The SGD kernel shows how a backend whose
kernels need a heavy library (numba, cupy...) defers that import with ``lazy_kernel``: its
module is imported only when the backend is first used.

Hooks not implemented here -- every other kernel, and the services ``sega_array_module``,
``sega_to_device``, ``sega_to_host``, ``sega_make_rng`` -- come from the NumPy reference,
because this is a CPU backend (``"device": "cpu"``) whose arrays are NumPy arrays.
"""

from __future__ import annotations

import numpy as np

from sega_core import hookimpl, lazy_kernel

from . import __version__


@hookimpl
def sega_backend_info():
    """Identify the backend; must be cheap (called whenever backends are listed)."""
    return {
        "name": "example",  # must equal the entry-point name
        "version": __version__,
        "hook_api": "1.2",  # the sega hook API this backend was written for
        "device": "cpu",  # NumPy arrays in host memory: unimplemented kernels fall back
        "description": "worked example: own ReLU and SGD, the rest from numpy",
    }


@hookimpl
def sega_backend_available():
    """``None``: this backend can run anywhere NumPy does (otherwise: a one-line reason)."""
    return None


@hookimpl
def sega_relu_forward(z):
    """``max(z, 0)``, written with ``where`` so the result keeps ``z``'s dtype."""
    return np.where(z > 0, z, z.dtype.type(0))


# An implementation may take fewer arguments than the specification
# ``sega_relu_backward(dy, z, y)``: the core passes only the ones named here. This is also how a
# plugin written before an argument was added keeps working.
@hookimpl
def sega_relu_backward(dy, z):
    """Pass ``dy`` where ``z > 0``, else 0 (the derivative at 0 is taken as 0)."""
    return np.where(z > 0, dy, dy.dtype.type(0))


@hookimpl
@lazy_kernel("sega_backend_example.kernels:sgd_update")
def sega_sgd_update(param, grad, velocity, lr, momentum, nesterov):
    """SGD with (Nesterov) momentum; the kernel lives in ``kernels.py``, imported on first use."""
