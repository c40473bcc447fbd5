"""Fixtures for plugin tests: fake backends registered in the process-wide registry, then removed."""

from __future__ import annotations

import types

import pytest

from sega_core import HOOK_API_VERSION, hookimpl
from sega_core.backends import get_registry


def _make_plugin(name: str, *, device: str = "cpu", hook_api: str = HOOK_API_VERSION, **hooks) -> types.ModuleType:
    """A backend module named ``name``: identity, availability, and ``hooks`` (plain functions).

    Keys of ``hooks`` are hook names without the ``sega_`` prefix; each function is marked as a
    hook implementation and renamed to its hook (pluggy finds implementations by attribute name).
    """
    module = types.ModuleType(f"fake_sega_backend_{name}")

    def sega_backend_info():
        return {"name": name, "version": "0.0.1", "hook_api": hook_api, "device": device}

    def sega_backend_available():
        return None

    functions = {"backend_info": sega_backend_info, "backend_available": sega_backend_available, **hooks}
    for short, function in functions.items():
        setattr(module, f"sega_{short}", hookimpl(function))
    return module


@pytest.fixture
def make_plugin():
    """``make_plugin(name, **hooks)``: a fake backend module (see :func:`_make_plugin`)."""
    return _make_plugin


@pytest.fixture
def register_backend():
    """Register fake backends for one test: ``register_backend(module, name)`` -> record."""
    registry = get_registry()
    names = []

    def register(plugin, name: str):
        names.append(name)
        return registry.register(plugin, name)

    yield register
    for name in names:
        registry.unregister(name)
