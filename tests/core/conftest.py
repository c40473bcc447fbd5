"""Fixtures for the plugin-system tests: fake backends, fresh registries, real entry points.

Fake backends are modules built on the fly. They go either into a fresh
``BackendRegistry(autoload=False)`` (nothing global touched) or into the process-wide registry,
always removed again after the test. Entry points are made *real*: a ``*.dist-info`` folder with
an ``entry_points.txt`` in a temporary folder put on ``sys.path``, which ``importlib.metadata``
then finds exactly as it finds an installed distribution.
"""

from __future__ import annotations

import functools

import os
import sys
import textwrap
import types
from pathlib import Path

import pytest

import sega_backend_numpy.plugin as numpy_plugin
from sega_core import HOOK_API_VERSION, InputError, hookimpl
from sega_core.backends import BackendRegistry, get_registry
from sega_core.backends import registry as registry_module

#: Environment variables of the plugin system; cleared for every test so the developer's own
#: settings cannot change what the tests see.
SEGA_ENV = ("SEGA_BACKEND", "SEGA_STRICT_PLUGINS", "SEGA_DISABLE_PLUGINS")


def make_plugin(name: str, *, device: str = "cpu", hook_api: str = HOOK_API_VERSION, available=None,
                info_name: str | None = None, **hooks) -> types.ModuleType:
    """A backend module called ``name`` with identity, availability and the given hooks.

    ``hooks`` maps hook names without their ``sega_`` prefix to plain functions (their argument
    names are what pluggy checks); each is marked with ``@hookimpl`` and stored under its hook's
    name. ``available`` is what ``sega_backend_available`` returns (``None``: it can run).
    """
    module = types.ModuleType(f"fake_sega_backend_{name}")

    def sega_backend_info():
        return {"name": info_name or name, "version": "0.0.1", "hook_api": hook_api, "device": device}

    def sega_backend_available():
        return available

    functions = {"backend_info": sega_backend_info, "backend_available": sega_backend_available, **hooks}
    for short, function in functions.items():
        setattr(module, f"sega_{short}", hookimpl(function))
    return module


def relu_hooks(calls: list | None = None) -> dict:
    """A relu family that records its calls (to prove the table calls *these* functions)."""

    def relu_forward(z):
        if calls is not None:
            calls.append("relu_forward")
        return z * (z > 0)

    def relu_backward(dy, z, y):
        if calls is not None:
            calls.append("relu_backward")
        return dy * (z > 0)

    return {"relu_forward": relu_forward, "relu_backward": relu_backward}


@pytest.fixture
def refused(one_line_error):
    """``refused(call, *parts)``: ``call`` must raise a one-line InputError holding each part."""
    return functools.partial(one_line_error, InputError)


@pytest.fixture(autouse=True)
def _clean_sega_env(monkeypatch):
    for name in SEGA_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def plugin():
    """:func:`make_plugin`."""
    return make_plugin


@pytest.fixture
def relu():
    """:func:`relu_hooks`."""
    return relu_hooks


@pytest.fixture
def fresh_registry():
    """A registry that scans no entry points and holds only the NumPy reference."""
    registry = BackendRegistry(autoload=False)
    record = registry.register(numpy_plugin, "numpy")
    assert record.status == "ok"
    return registry


@pytest.fixture
def empty_registry(monkeypatch):
    """A process-wide registry with no backend at all (as with bare ``pip install sega-core``)."""
    registry = BackendRegistry(autoload=False)
    monkeypatch.setattr(registry_module, "_registry", registry)
    return registry


@pytest.fixture
def global_backend():
    """Register fake backends in the process-wide registry for one test, then remove them."""
    registry = get_registry()
    names = []

    def register(module, name: str):
        names.append(name)
        return registry.register(module, name)

    yield register
    for name in names:
        registry.unregister(name)


@pytest.fixture
def keep_global_registry(monkeypatch):
    """Let a test replace the process-wide registry (``refresh_backends``); restored after."""
    monkeypatch.setattr(registry_module, "_registry", registry_module._registry)


class FakeDistributions:
    """Writes installed-looking distributions with ``sega.backends`` entry points into one folder."""

    def __init__(self, site: Path):
        self.site = site
        self.modules: list[str] = []

    def add(self, dist: str, version: str, entry_points: dict[str, str], modules: dict[str, str]) -> Path:
        """Create distribution ``dist`` declaring ``entry_points`` (name -> module) and ``modules``."""
        info = self.site / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        lines = ["[sega.backends]"] + [f"{name} = {target}" for name, target in entry_points.items()]
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        for module, source in modules.items():
            (self.site / f"{module}.py").write_text(textwrap.dedent(source))
            self.modules.append(module)
        return info

    def env(self) -> dict:
        """An environment for a subprocess that sees these distributions too."""
        env = {k: v for k, v in os.environ.items() if k not in SEGA_ENV}
        env["PYTHONPATH"] = os.pathsep.join([str(self.site)] + [p for p in [env.get("PYTHONPATH")] if p])
        return env


@pytest.fixture
def fake_dists(tmp_path, monkeypatch):
    """A :class:`FakeDistributions` whose folder is on ``sys.path`` for this test only."""
    site = tmp_path / "site-packages"
    site.mkdir()
    fakes = FakeDistributions(site)
    monkeypatch.syspath_prepend(str(site))  # also invalidates importlib's caches
    yield fakes
    for module in fakes.modules:
        sys.modules.pop(module, None)


#: A light, well-behaved backend module for real entry points: relu only, numpy for the rest.
GOOD_PLUGIN_SOURCE = '''
    from sega_core.hookspecs import HOOK_API_VERSION, hookimpl

    @hookimpl
    def sega_backend_info():
        return {"name": "fakegood", "version": "9.9", "hook_api": HOOK_API_VERSION, "device": "cpu"}

    @hookimpl
    def sega_backend_available():
        return None

    @hookimpl
    def sega_relu_forward(z):
        return z * (z > 0)

    @hookimpl
    def sega_relu_backward(dy, z, y):
        return dy * (z > 0)
'''

BROKEN_PLUGIN_SOURCE = '''
    raise RuntimeError("boom: this plugin is broken")
'''


@pytest.fixture
def good_source():
    """Source of a working one-family backend named ``fakegood``."""
    return GOOD_PLUGIN_SOURCE


@pytest.fixture
def broken_dist(fake_dists):
    """A distribution ``fake-sega-broken 0.3`` whose ``broken`` entry point raises on import."""
    fake_dists.add("fake-sega-broken", "0.3", {"broken": "fake_sega_broken_plugin"},
                   {"fake_sega_broken_plugin": BROKEN_PLUGIN_SOURCE})
    return fake_dists
