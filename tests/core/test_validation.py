"""Plugins that break the contract are refused with a message saying why, never silently."""

from __future__ import annotations

import numpy as np
import pytest

from sega_core import HOOK_API_VERSION, hookimpl, list_backends
from sega_core.backends import BackendRegistry
from sega_core.backends.dispatch import FAMILIES, KERNEL_HOOKS
from sega_core.errors import BackendError, BackendUnavailableError, PluginLoadError, SegaPluginWarning


def test_half_a_family_is_refused(fresh_registry, plugin):
    half = plugin("half", relu_forward=lambda z: z)
    with pytest.warns(SegaPluginWarning, match="implements sega_relu_forward without sega_relu_backward"):
        record = fresh_registry.register(half, "half")
    assert record.status == "failed"
    assert "kernel families must be implemented together" in record.reason
    assert "half" not in fresh_registry.names()
    with pytest.raises(BackendUnavailableError, match="'half' failed to load: implements sega_relu_forward"):
        fresh_registry.get("half")


def test_half_a_family_in_strict_mode_raises(fresh_registry, plugin, monkeypatch):
    monkeypatch.setenv("SEGA_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError, match="without sega_dense_forward"):
        fresh_registry.register(plugin("half", dense_backward=lambda dy, x, w, dw, db, need_dx: None), "half")


def test_families_pair_every_forward_with_its_backward():
    paired = {hook for family in FAMILIES for hook in family}
    assert paired <= set(KERNEL_HOOKS)
    assert {h for h in KERNEL_HOOKS if h.endswith(("_forward", "_backward"))} == paired
    assert len(FAMILIES) == 15  # dense, conv2d, rnn, dropout, 6 activations, 2 pools, batchnorm, lstm, gru


def test_misspelt_hook_is_reported_and_skipped(global_backend, plugin):
    typo = plugin("typo", dense_forwrd=lambda x, w, b: x @ w + b)
    with pytest.warns(SegaPluginWarning, match="typo.*unknown hook.*sega_dense_forwrd"):
        record = global_backend(typo, "typo")
    assert record.status == "failed"
    listed = next(b for b in list_backends() if b["name"] == "typo")
    assert listed["status"] == "failed" and "sega_dense_forwrd" in listed["reason"]


def test_misspelt_argument_is_reported(fresh_registry, plugin):
    # pluggy checks argument names at registration: 'zz' is not an argument of sega_relu_forward.
    bad = plugin("badarg", relu_forward=lambda zz: zz, relu_backward=lambda dy, z, y: dy)
    with pytest.warns(SegaPluginWarning, match="invalid hook implementation.*zz"):
        record = fresh_registry.register(bad, "badarg")
    assert record.status == "failed"
    assert "\n" not in record.reason  # pluggy's message spans lines; listings show one


def test_a_failed_plugin_does_not_linger_in_pluggy(fresh_registry, plugin, relu):
    with pytest.warns(SegaPluginWarning):
        fresh_registry.register(plugin("typo", dense_forwrd=lambda x, w, b: None), "typo")
    # A later, valid plugin is not blamed for the earlier one's unknown hook.
    assert fresh_registry.register(plugin("fine", **relu()), "fine").status == "ok"


@pytest.mark.parametrize("declared", ["2.0", "0.9"])
def test_wrong_major_hook_api_is_refused_naming_both_versions(fresh_registry, plugin, declared):
    with pytest.warns(SegaPluginWarning) as caught:
        record = fresh_registry.register(plugin("future", hook_api=declared), "future")
    assert record.status == "failed"
    message = str(caught[0].message)
    assert f"hook API {declared}" in message and f"hook API {HOOK_API_VERSION}" in message


def test_another_minor_hook_api_is_accepted(fresh_registry, plugin):
    major = HOOK_API_VERSION.split(".")[0]
    assert fresh_registry.register(plugin("minor", hook_api=f"{major}.99"), "minor").status == "ok"


def test_name_mismatch_and_duplicate_names_are_refused(fresh_registry, plugin):
    with pytest.warns(SegaPluginWarning, match="declares the name 'other' but is registered as 'mine'"):
        assert fresh_registry.register(plugin("mine", info_name="other"), "mine").status == "failed"
    with pytest.warns(SegaPluginWarning, match="'numpy' is already taken"):
        assert fresh_registry.register(plugin("numpy"), "numpy").status == "failed"
    assert fresh_registry.get("numpy").kernels.sources["dense_forward"] == "numpy"


def test_missing_identity_hooks_are_refused(fresh_registry, plugin):
    module = plugin("anon")
    del module.sega_backend_info
    with pytest.warns(SegaPluginWarning, match="does not implement sega_backend_info"):
        fresh_registry.register(module, "anon")
    module = plugin("noprobe")
    del module.sega_backend_available
    with pytest.warns(SegaPluginWarning, match="does not implement sega_backend_available"):
        fresh_registry.register(module, "noprobe")


def test_backend_info_that_raises_is_refused(fresh_registry, plugin):
    module = plugin("explodes")

    def sega_backend_info():
        raise KeyError("oops")

    module.sega_backend_info = hookimpl(sega_backend_info)
    with pytest.warns(SegaPluginWarning, match="sega_backend_info raised KeyError"):
        assert fresh_registry.register(module, "explodes").status == "failed"


def _gpu_services():
    return {
        "array_module": lambda: np,
        "to_device": lambda x: x,
        "to_host": lambda x: x,
        "make_rng": lambda seed: np.random.default_rng(seed),
    }


def test_incomplete_gpu_backend_is_refused_naming_the_missing_kernels(fresh_registry, plugin):
    dense = {"dense_forward": lambda x, w, b: x @ w + b, "dense_backward": lambda dy, x, w, dw, db, need_dx: None}
    gpu = plugin("fakegpu", device="gpu", **_gpu_services(), **dense)
    assert fresh_registry.register(gpu, "fakegpu").status == "ok"  # registering is fine...
    with pytest.raises(BackendError) as info:  # ...using it is not: nothing may fall back to numpy
        fresh_registry.get("fakegpu")
    message = str(info.value)
    assert "'fakegpu' cannot be used" in message and "device 'gpu' must implement every kernel" in message
    for hook in KERNEL_HOOKS:
        assert (hook in message) == (hook not in ("sega_dense_forward", "sega_dense_backward")), hook
    # The listing does not call it "ok" either.
    record = next(r for r in fresh_registry.records() if r.name == "fakegpu")
    assert record.status == "unavailable" and "sega_conv2d_forward" in record.reason


def test_unavailable_backend_says_why(fresh_registry, plugin):
    fresh_registry.register(plugin("nodevice", available="no CUDA device found"), "nodevice")
    with pytest.raises(BackendUnavailableError, match="'nodevice' is installed but unavailable: no CUDA device found"):
        fresh_registry.get("nodevice")
    record = next(r for r in fresh_registry.records() if r.name == "nodevice")
    assert (record.status, record.reason) == ("unavailable", "no CUDA device found")


def test_a_probe_that_raises_makes_the_backend_unavailable(fresh_registry, plugin):
    module = plugin("flaky")
    def sega_backend_available():
        raise OSError("driver exploded")

    module.sega_backend_available = hookimpl(sega_backend_available)
    fresh_registry.register(module, "flaky")
    record = next(r for r in fresh_registry.records() if r.name == "flaky")
    assert record.status == "unavailable" and "OSError: driver exploded" in record.reason


def test_cpu_backend_without_the_reference_is_refused(plugin, relu):
    registry = BackendRegistry(autoload=False)
    registry.register(plugin("lonely", **relu()), "lonely")
    with pytest.raises(BackendError, match="lacks .*sega_dense_forward.*pip install sega-backend-numpy"):
        registry.get("lonely")
