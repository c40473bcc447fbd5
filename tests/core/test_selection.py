"""Choosing the backend at run time: ``backend=``, ``use_backend``, ``SEGA_BACKEND``, defaults, and
what an unknown name says."""

from __future__ import annotations

import threading

import pytest

import sega_core
from sega_core import get_backend, use_backend
from sega_core.backends import default_backend_name
from sega_core.errors import BackendError, UnknownBackendError


@pytest.fixture
def partial(global_backend, plugin, relu):
    """A second usable CPU backend, so a change of default is observable."""
    global_backend(plugin("partial", **relu()), "partial")
    return "partial"


def test_default_is_numpy():
    assert default_backend_name() == "numpy"
    assert get_backend().name == "numpy"


def test_sega_backend_set_after_import_is_honoured(partial, monkeypatch):
    assert get_backend().name == "numpy"
    monkeypatch.setenv("SEGA_BACKEND", "partial")  # long after `import sega_core`
    assert get_backend().name == "partial"
    monkeypatch.setenv("SEGA_BACKEND", " numpy ")
    assert get_backend().name == "numpy"


def test_unknown_sega_backend_fails_clearly(monkeypatch):
    monkeypatch.setenv("SEGA_BACKEND", "nosuch")
    with pytest.raises(UnknownBackendError, match="unknown backend 'nosuch'; installed backends: .*numpy"):
        get_backend()


def test_use_backend_sets_the_default_inside_the_block(partial, monkeypatch):
    monkeypatch.setenv("SEGA_BACKEND", "numpy")
    with use_backend("partial") as backend:
        assert backend.name == "partial"
        assert get_backend().name == "partial"  # the context manager beats the variable
        with use_backend("numpy"):
            assert get_backend().name == "numpy"
        assert get_backend().name == "partial"
    assert get_backend().name == "numpy"


def test_use_backend_is_restored_after_an_exception(partial):
    with pytest.raises(RuntimeError):
        with use_backend("partial"):
            raise RuntimeError("inside")
    assert get_backend().name == "numpy"


def test_use_backend_does_not_leak_into_other_threads(partial):
    seen = []
    with use_backend("partial"):
        thread = threading.Thread(target=lambda: seen.append(get_backend().name))
        thread.start()
        thread.join()
    assert seen == ["numpy"]


def test_use_backend_with_a_bad_name_fails_on_entry():
    with pytest.raises(UnknownBackendError):
        with use_backend("nosuch"):
            pytest.fail("the block must not run")


def test_explicit_name_beats_everything(partial, monkeypatch):
    monkeypatch.setenv("SEGA_BACKEND", "partial")
    with use_backend("partial"):
        assert get_backend("numpy").name == "numpy"


def test_get_backend_passes_a_backend_through():
    backend = get_backend("numpy")
    assert get_backend(backend) is backend


def test_unknown_name_lists_the_installed_backends():
    installed = [b["name"] for b in sega_core.list_backends() if b["status"] != "failed"]
    with pytest.raises(UnknownBackendError) as info:
        get_backend("tensorflow")
    message = str(info.value)
    assert message.startswith("unknown backend 'tensorflow'; installed backends: ")
    assert message.endswith(", ".join(sorted(installed)))
    assert isinstance(info.value, ValueError) and isinstance(info.value, BackendError)


@pytest.mark.parametrize("name, pip", [
    ("numba", 'pip install "sega-core[numba]"'),
    ("cupy", 'pip install "sega-core[cupy]" cupy-cuda12x'),
])
def test_known_but_missing_backend_gives_the_pip_line(empty_registry, plugin, name, pip):
    import sega_backend_numpy.plugin as numpy_plugin

    empty_registry.register(numpy_plugin, "numpy")
    with pytest.raises(UnknownBackendError) as info:
        get_backend(name)
    assert str(info.value) == f"unknown backend {name!r}; installed backends: numpy. Install it with {pip}"
