"""The example backend's kernels that are imported lazily (see ``lazy_kernel`` in plugin.py).

A real backend would import its heavy array library here (``import numba``), not in plugin.py.
"""

from __future__ import annotations

import numpy as np


def sgd_update(param, grad, velocity, lr, momentum, nesterov):
    """SGD with momentum, PyTorch's formulation, updating ``param`` and ``velocity`` in place.

    ``param``, ``grad`` and ``velocity`` are the model's flat 1-D buffers; the result must be
    written into them (``out=`` or augmented assignment), never returned as new arrays.
    """
    if momentum:
        np.multiply(velocity, momentum, out=velocity)
        np.add(velocity, grad, out=velocity)
        step = grad + momentum * velocity if nesterov else velocity
    else:
        step = grad
    # ``lr`` is a Python float: NumPy keeps param's dtype (float32 stays float32).
    param -= lr * step
