"""Discovery under stress: many threads asking at once, and plugins that exit or re-enter."""

from __future__ import annotations

import threading

import pytest

import sega_core
from sega_core import hookimpl
from sega_core.backends import BackendRegistry
from sega_core.backends import registry as registry_module
from sega_core.errors import PluginLoadError, SegaPluginWarning

N_THREADS = 16

#: Sorted before every real backend, so its import holds up the whole scan.
SLOW_PLUGIN_SOURCE = '''
    import time
    time.sleep(0.3)
    from sega_core.hookspecs import HOOK_API_VERSION, hookimpl

    @hookimpl
    def sega_backend_info():
        return {"name": "aaslow", "version": "1.0", "hook_api": HOOK_API_VERSION, "device": "cpu"}

    @hookimpl
    def sega_backend_available():
        return None
'''

#: A plugin whose import asks the process-wide registry for its backends while it is being scanned.
REENTRANT_PLUGIN_SOURCE = '''
    from sega_core.backends import get_registry
    from sega_core.hookspecs import HOOK_API_VERSION, hookimpl

    SEEN_DURING_IMPORT = get_registry().names()

    @hookimpl
    def sega_backend_info():
        return {"name": "aareentrant", "version": "1.0", "hook_api": HOOK_API_VERSION, "device": "cpu"}

    @hookimpl
    def sega_backend_available():
        return None
'''


def _run_together(work, n=N_THREADS) -> list:
    """Run ``work()`` in ``n`` threads released at once; return each result or exception."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i):
        barrier.wait()
        try:
            results[i] = work()
        except BaseException as exc:  # the test reports it
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread is stuck"
    return results


def test_threads_creating_their_first_model_at_once_all_get_the_default_backend(fake_dists, monkeypatch):
    fake_dists.add("fake-sega-slow", "1.0", {"aaslow": "fake_sega_slow_plugin"}, {"fake_sega_slow_plugin": SLOW_PLUGIN_SOURCE})
    monkeypatch.setattr(registry_module, "_registry", BackendRegistry())  # nothing scanned yet

    results = _run_together(lambda: sega_core.get_backend().name)

    assert results == ["numpy"] * N_THREADS
    assert "aaslow" in registry_module._registry.names()


def test_threads_listing_a_fresh_registry_wait_for_the_scan(fake_dists):
    fake_dists.add("fake-sega-slow", "1.0", {"aaslow": "fake_sega_slow_plugin"}, {"fake_sega_slow_plugin": SLOW_PLUGIN_SOURCE})
    registry = BackendRegistry()

    results = _run_together(lambda: (tuple(registry.names()), registry.get("numpy").name))

    expected = (tuple(sorted(registry.names())), "numpy")
    assert "aaslow" in expected[0] and "numpy" in expected[0]
    assert results == [expected] * N_THREADS


def test_a_plugin_reaching_back_into_the_registry_does_not_start_a_second_scan(fake_dists, monkeypatch):
    fake_dists.add("fake-sega-reentrant", "1.0", {"aareentrant": "fake_sega_reentrant_plugin"},
                   {"fake_sega_reentrant_plugin": REENTRANT_PLUGIN_SOURCE})
    monkeypatch.setattr(registry_module, "_registry", BackendRegistry())
    scans = []
    original = BackendRegistry._load_entry_points

    def counting(self):
        scans.append(self)
        return original(self)

    monkeypatch.setattr(BackendRegistry, "_load_entry_points", counting)

    names = sega_core.backends.get_registry().names()

    assert "aareentrant" in names and "numpy" in names
    assert len(scans) == 1
    import fake_sega_reentrant_plugin

    assert fake_sega_reentrant_plugin.SEEN_DURING_IMPORT == []  # it ran first: nothing loaded yet


# ---- plugins that raise SystemExit and the like -------------------------------------------------


@pytest.fixture
def exiting_dist(fake_dists):
    """A distribution ``fake-sega-exit 0.1`` whose ``exiting`` entry point calls sys.exit on import."""
    fake_dists.add("fake-sega-exit", "0.1", {"exiting": "fake_sega_exit_plugin"},
                   {"fake_sega_exit_plugin": "import sys\nsys.exit('plugin says bye')\n"})
    return fake_dists


def test_a_plugin_calling_sys_exit_on_import_is_skipped_with_a_warning(exiting_dist):
    registry = BackendRegistry()
    with pytest.warns(SegaPluginWarning, match=r"exiting \(fake-sega-exit 0.1\) was skipped.*SystemExit: plugin says bye"):
        names = registry.names()
    assert "numpy" in names and "exiting" not in names
    record = next(r for r in registry.records() if r.name == "exiting")
    assert record.status == "failed" and "SystemExit" in record.reason
    assert registry.get("numpy").name == "numpy"


def test_a_plugin_calling_sys_exit_is_a_plugin_load_error_in_strict_mode(exiting_dist, monkeypatch):
    monkeypatch.setenv("SEGA_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError, match=r"exiting \(fake-sega-exit 0.1\) failed to import") as info:
        BackendRegistry().names()
    assert isinstance(info.value.__cause__, SystemExit)


def test_ctrl_c_while_a_plugin_imports_still_interrupts(fake_dists):
    fake_dists.add("fake-sega-ctrlc", "0.1", {"ctrlc": "fake_sega_ctrlc_plugin"},
                   {"fake_sega_ctrlc_plugin": "raise KeyboardInterrupt\n"})
    registry = BackendRegistry()
    with pytest.raises(KeyboardInterrupt):
        registry.names()


def _raising(exc):
    def hook():
        raise exc

    return hook


@pytest.mark.parametrize("exc", [SystemExit(4), GeneratorExit()])
def test_backend_info_raising_a_base_exception_is_refused(fresh_registry, plugin, exc):
    module = plugin("quits")
    module.sega_backend_info = hookimpl(_raising(exc))
    with pytest.warns(SegaPluginWarning, match=f"quits was skipped: sega_backend_info raised {type(exc).__name__}"):
        record = fresh_registry.register(module, "quits")
    assert record.status == "failed"


def test_backend_info_raising_system_exit_in_strict_mode(fresh_registry, plugin, monkeypatch):
    monkeypatch.setenv("SEGA_STRICT_PLUGINS", "1")
    module = plugin("quits")
    module.sega_backend_info = hookimpl(_raising(SystemExit(4)))
    with pytest.raises(PluginLoadError, match="sega_backend_info raised SystemExit"):
        fresh_registry.register(module, "quits")


def test_availability_probe_raising_system_exit_makes_the_backend_unavailable(fresh_registry, plugin):
    module = plugin("probe")
    module.sega_backend_available = hookimpl(_raising(SystemExit("no device")))
    assert fresh_registry.register(module, "probe").status == "ok"
    record = next(r for r in fresh_registry.records() if r.name == "probe")
    assert record.status == "unavailable" and "SystemExit: no device" in record.reason
    with pytest.raises(sega_core.BackendUnavailableError, match="probe raised SystemExit"):
        fresh_registry.get("probe")
