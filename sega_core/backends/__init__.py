"""The plugin system: discovery of backends, their dispatch tables, and run-time selection."""

from .dispatch import KERNEL_HOOKS, Backend, KernelTable
from .lazy import lazy_kernel
from .registry import BackendRegistry, get_registry, list_backends, refresh_backends
from .selection import default_backend_name, get_backend, use_backend

__all__ = [
    "KERNEL_HOOKS",
    "Backend",
    "BackendRegistry",
    "KernelTable",
    "default_backend_name",
    "get_backend",
    "get_registry",
    "lazy_kernel",
    "list_backends",
    "refresh_backends",
    "use_backend",
]
