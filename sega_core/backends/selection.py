"""Which backend a model uses when it is not told: ``use_backend``, ``SEGA_BACKEND``, defaults.

The choice is made at run time, never at import: ``SEGA_BACKEND`` is read each time a default
is needed, so setting it after ``import sega_core`` works.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from typing import Iterator

from ..errors import NoBackendInstalledError
from .dispatch import Backend
from .registry import REFERENCE_BACKEND, get_registry

BACKEND_ENV = "SEGA_BACKEND"

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("sega_backend", default=None)


def default_backend_name() -> str:
    """The name used when none is given: ``use_backend`` > ``SEGA_BACKEND`` > ``"numpy"``.

    Without either, the NumPy reference if installed, else the first installed backend.
    """
    chosen = _current.get() or os.environ.get(BACKEND_ENV, "").strip()
    if chosen:
        return chosen
    names = get_registry().names()
    if not names:
        raise NoBackendInstalledError()
    return REFERENCE_BACKEND if REFERENCE_BACKEND in names else names[0]


def get_backend(name: str | None = None) -> Backend:
    """The resolved backend ``name`` (or the default one); raises a clear error if unusable."""
    if isinstance(name, Backend):
        return name
    return get_registry().get(name or default_backend_name())


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[Backend]:
    """Make ``name`` the default backend inside a ``with`` block (per thread and task).

    The backend is resolved on entry, so a bad name fails here, not at the first model.
    """
    backend = get_backend(name)
    token = _current.set(name)
    try:
        yield backend
    finally:
        _current.reset(token)
