"""How the cupy backend shows up in sega_core: listed always, usable only with cupy and a GPU."""

from __future__ import annotations

import re

import pytest

import sega_core
from sega_backend_cupy import plugin, probe
from sega_core.backends.dispatch import KERNEL_HOOKS
from sega_core.backends.registry import BackendRegistry


def _cupy_entry(entries):
    matches = [e for e in entries if e["name"] == "cupy"]
    assert len(matches) == 1, f"cupy listed {len(matches)} times: {entries}"
    return matches[0]


def test_listed_with_status_matching_the_probe():
    entry = _cupy_entry(sega_core.list_backends())
    reason = probe.unavailable_reason()
    assert entry["distribution"] == "sega-backend-cupy"
    assert entry["device"] == "gpu"
    assert entry["description"]
    # Every kernel is the backend's own: a GPU backend has no NumPy fallbacks.
    assert set(entry["kernels"]) == {h[len("sega_"):] for h in KERNEL_HOOKS}
    assert set(entry["kernels"].values()) == {"cupy"}
    if reason is None:
        assert entry["status"] == "ok" and entry["reason"] is None
    else:
        assert entry["status"] == "unavailable"
        assert entry["reason"] == reason


def test_get_backend_refuses_with_the_reason_when_unavailable():
    reason = probe.unavailable_reason()
    if reason is None:
        pytest.skip("cupy and a CUDA device are present here: the backend is available")
    with pytest.raises(sega_core.BackendUnavailableError) as info:
        sega_core.get_backend("cupy")
    assert str(info.value) == f"backend 'cupy' is installed but unavailable: {reason}"


def _private_registry(monkeypatch, find_spec=None, load_library=None):
    """A fresh registry (entry points scanned again) whose cupy probe sees the given fakes."""
    real = probe.unavailable_reason

    def fake_reason():
        return real(find_spec=find_spec, load_library=load_library)

    monkeypatch.setattr(probe, "unavailable_reason", fake_reason)
    monkeypatch.setattr(plugin, "unavailable_reason", fake_reason)
    return BackendRegistry()


def _record(registry, name="cupy"):
    return next(r for r in registry.records() if r.name == name)


def test_without_cupy_installed(monkeypatch):
    registry = _private_registry(monkeypatch, find_spec=lambda name: None)
    record = _record(registry)
    assert record.status == "unavailable"
    assert record.reason.startswith("cupy is not installed")
    assert "pip install cupy-cuda12x" in record.reason
    with pytest.raises(sega_core.BackendUnavailableError, match=re.escape("backend 'cupy' is installed but unavailable: cupy is not installed")):
        registry.get("cupy")


def test_without_a_cuda_driver(monkeypatch):
    def no_driver(name):
        raise OSError("libcuda.so.1: cannot open shared object file")

    registry = _private_registry(monkeypatch, find_spec=lambda name: object(), load_library=no_driver)
    record = _record(registry)
    assert record.status == "unavailable"
    assert record.reason == probe.NO_DRIVER
    with pytest.raises(sega_core.BackendUnavailableError, match=re.escape(f"installed but unavailable: {probe.NO_DRIVER}")):
        registry.get("cupy")


def test_without_a_cuda_device(monkeypatch):
    class ZeroDevices:
        def cuInit(self, flags):  # noqa: N802
            return 0

        def cuDeviceGetCount(self, pointer):  # noqa: N802
            pointer.contents.value = 0
            return 0

    registry = _private_registry(monkeypatch, find_spec=lambda name: object(), load_library=lambda name: ZeroDevices())
    record = _record(registry)
    assert (record.status, record.reason) == ("unavailable", "no CUDA device found")
    with pytest.raises(sega_core.BackendUnavailableError, match="installed but unavailable: no CUDA device found"):
        registry.get("cupy")


def test_info_is_complete():
    info = plugin.sega_backend_info()
    assert info["name"] == "cupy"
    assert info["device"] == "gpu"
    assert info["hook_api"] == sega_core.HOOK_API_VERSION
    assert info["version"] == __import__("sega_backend_cupy").__version__
    assert info["description"]


def test_loads_cleanly_in_a_fresh_registry(recwarn):
    registry = BackendRegistry()
    record = next(r for r in registry.records() if r.name == "cupy")
    assert record.status in ("ok", "unavailable")
    assert set(record.implemented) == set(KERNEL_HOOKS)
    assert not [w for w in recwarn.list if issubclass(w.category, sega_core.SegaPluginWarning)]
