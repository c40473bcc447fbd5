"""Declare a kernel whose implementation lives in a module that is imported only when used.

A backend's entry-point module must stay light (listing backends imports it) but its kernels
may need numba or cupy. ``lazy_kernel`` keeps the hook's signature for pluggy's validation and
defers the import: when the core resolves the backend into its dispatch table it stores the real
kernel, so the training path pays nothing for the indirection.
"""

from __future__ import annotations

import functools
import importlib
from typing import Callable

#: Attribute on a hook implementation that tells the core how to find the real kernel.
RESOLVE_ATTRIBUTE = "__sega_resolve__"


def _import_target(target: str) -> Callable:
    module_name, _, attribute = target.partition(":")
    if not attribute:
        raise ValueError(f"lazy kernel target {target!r} must look like 'package.module:function'")
    return getattr(importlib.import_module(module_name), attribute)


def lazy_kernel(target: str) -> Callable[[Callable], Callable]:
    """Decorate a hook implementation whose body is empty with the kernel it stands for.

    ``target`` is ``"package.module:function"``. Use it *under* ``@hookimpl``::

        @hookimpl
        @lazy_kernel("my_backend._conv:conv2d_forward")
        def sega_conv2d_forward(x, w, b, stride, padding):
            ...

    Calling the decorated function directly also works (it imports and forwards).
    """

    def decorate(stub: Callable) -> Callable:
        @functools.wraps(stub)
        def forward(*args, **kwargs):
            return _import_target(target)(*args, **kwargs)

        setattr(forward, RESOLVE_ATTRIBUTE, functools.partial(_import_target, target))
        return forward

    return decorate


def resolve(function: Callable) -> Callable:
    """Return the real kernel behind ``function`` (the function itself unless it is lazy)."""
    resolver = getattr(function, RESOLVE_ATTRIBUTE, None)
    return resolver() if resolver is not None else function
