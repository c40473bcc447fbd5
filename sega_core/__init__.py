"""sega: a small neural-network library with pluggable compute backends.

Pick a backend by installing one extra (``pip install "sega-core[numba]"``), then::

    from sega_core import NeuralNetwork
    model = NeuralNetwork(layers=[64, 32, 10], backend="numba")
"""

from __future__ import annotations

__version__ = "0.1.0"

from .backends import (  # noqa: E402
    Backend,
    KernelTable,
    get_backend,
    lazy_kernel,
    list_backends,
    refresh_backends,
    use_backend,
)
from .errors import (  # noqa: E402
    BackendError,
    BackendUnavailableError,
    InputError,
    ModelFileError,
    NoBackendInstalledError,
    NotFittedError,
    SegaError,
    SegaPluginWarning,
    UnknownBackendError,
)
from .hookspecs import HOOK_API_VERSION, hookimpl  # noqa: E402

__all__ = [
    "HOOK_API_VERSION",
    "Backend",
    "BackendError",
    "BackendUnavailableError",
    "InputError",
    "KernelTable",
    "ModelFileError",
    "NoBackendInstalledError",
    "NotFittedError",
    "SegaError",
    "SegaPluginWarning",
    "UnknownBackendError",
    "get_backend",
    "hookimpl",
    "lazy_kernel",
    "list_backends",
    "refresh_backends",
    "use_backend",
]
