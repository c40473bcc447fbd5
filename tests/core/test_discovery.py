"""Finding backends through real ``sega.backends`` entry points, and surviving broken ones."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from importlib import metadata

import pytest

import sega_core
from sega_core.backends import BackendRegistry, list_backends, refresh_backends
from sega_core.errors import NoBackendInstalledError, PluginLoadError, SegaError, SegaPluginWarning

HEAVY = ("numba", "llvmlite", "cupy", "cupyx", "torch")


def _record(registry, name):
    return next(r for r in registry.records() if r.name == name)


def test_installed_backends_are_found_through_their_entry_points():
    registry = BackendRegistry()
    names = registry.names()
    assert "numpy" in names
    numpy = _record(registry, "numpy")
    assert numpy.distribution == "sega-backend-numpy"
    assert numpy.version == metadata.version("sega-backend-numpy")
    assert numpy.status == "ok" and numpy.reason is None and numpy.device == "cpu"
    assert numpy.implemented == sega_core.backends.KERNEL_HOOKS


def test_list_backends_describes_the_reference():
    entry = next(b for b in list_backends() if b["name"] == "numpy")
    assert entry["distribution"] == "sega-backend-numpy"
    assert entry["status"] == "ok" and entry["reason"] is None and entry["device"] == "cpu"
    assert set(entry["kernels"]) == {h[len("sega_"):] for h in sega_core.backends.KERNEL_HOOKS}
    assert set(entry["kernels"].values()) == {"numpy"}
    json.dumps(list_backends())  # the CLI prints it as JSON: it must serialise as it is


def test_a_real_third_party_entry_point_is_loaded_with_its_distribution(fake_dists, good_source):
    fake_dists.add("fake-sega-good", "9.9.1", {"fakegood": "fake_sega_good_plugin"},
                   {"fake_sega_good_plugin": good_source})
    registry = BackendRegistry()
    record = _record(registry, "fakegood")
    assert (record.status, record.distribution, record.version) == ("ok", "fake-sega-good", "9.9.1")
    assert record.implemented == ("sega_relu_forward", "sega_relu_backward")
    assert registry.get("fakegood").kernels.sources["relu_forward"] == "fakegood"


def test_entry_point_name_must_match_the_declared_name(fake_dists, good_source):
    fake_dists.add("fake-sega-alias", "1.0", {"alias": "fake_sega_alias_plugin"}, {"fake_sega_alias_plugin": good_source})
    with pytest.warns(SegaPluginWarning, match="declares the name 'fakegood' but is registered as 'alias'"):
        record = _record(BackendRegistry(), "alias")
    assert record.status == "failed" and record.distribution == "fake-sega-alias"


def test_plugin_that_fails_to_import_is_reported_not_fatal(broken_dist):
    registry = BackendRegistry()
    with pytest.warns(SegaPluginWarning) as caught:
        names = registry.names()
    assert "numpy" in names and "broken" not in names
    message = str(caught[0].message)
    # The warning names the plugin, its distribution and version, the error, and the way out.
    for part in ("broken", "fake-sega-broken 0.3", "RuntimeError: boom", "SEGA_STRICT_PLUGINS=1"):
        assert part in message
    record = _record(registry, "broken")
    assert record.status == "failed"
    assert "failed to import 'fake_sega_broken_plugin'" in record.reason and "boom" in record.reason
    assert registry.get("numpy").name == "numpy"  # the others still work


def test_a_broken_plugin_shows_up_in_list_backends(broken_dist, keep_global_registry):
    with pytest.warns(SegaPluginWarning, match="broken"):
        refresh_backends()
        listing = {b["name"]: b for b in list_backends()}
    broken = listing["broken"]
    assert broken["status"] == "failed" and "boom" in broken["reason"]
    assert broken["distribution"] == "fake-sega-broken" and broken["version"] == "0.3"
    assert broken["kernels"] == {} and broken["device"] is None
    assert listing["numpy"]["status"] == "ok"


def test_strict_mode_raises_plugin_load_error(broken_dist, monkeypatch):
    monkeypatch.setenv("SEGA_STRICT_PLUGINS", "1")
    registry = BackendRegistry()
    with pytest.raises(PluginLoadError, match=r"broken \(fake-sega-broken 0.3\) failed to import") as info:
        registry.names()
    assert isinstance(info.value, SegaError)
    assert isinstance(info.value.__cause__, RuntimeError)
    # Not a one-off: the half-loaded registry is not kept, so asking again raises again.
    with pytest.raises(PluginLoadError):
        registry.names()


def test_disabled_plugins_are_not_even_imported(broken_dist, monkeypatch):
    monkeypatch.setenv("SEGA_DISABLE_PLUGINS", " broken , nosuchplugin")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        names = BackendRegistry().names()
    assert "broken" not in names and "numpy" in names
    assert "fake_sega_broken_plugin" not in sys.modules


def test_refresh_backends_sees_a_newly_installed_backend(fake_dists, good_source, keep_global_registry):
    assert "fakegood" not in {b["name"] for b in list_backends()}
    fake_dists.add("fake-sega-good", "1.0", {"fakegood": "fake_sega_good_plugin"}, {"fake_sega_good_plugin": good_source})
    assert "fakegood" not in {b["name"] for b in list_backends()}  # cached until refreshed
    refresh_backends()
    assert "fakegood" in {b["name"] for b in list_backends()}


def _run_python(code: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)


def test_listing_backends_imports_no_heavy_library():
    code = (
        "import json, sys, sega_core\n"
        "names = [b['name'] for b in sega_core.list_backends()]\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
        "print(json.dumps({'names': names, 'heavy': heavy}))\n"
    )
    proc = _run_python(code)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    # numba's and cupy's entry points were imported (they are listed), their libraries were not.
    assert {"numpy", "numba", "cupy"} <= set(result["names"])
    assert result["heavy"] == []


def test_importing_sega_core_scans_no_entry_point():
    code = "import sys, sega_core\nprint(sorted(m for m in sys.modules if m.startswith('sega_backend')))"
    proc = _run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_no_backend_installed_in_process(empty_registry):
    with pytest.raises(NoBackendInstalledError) as info:
        sega_core.get_backend()
    assert str(info.value).startswith('no backend installed; install one with pip install "sega-core[numpy]"')
    with pytest.raises(NoBackendInstalledError):
        sega_core.get_backend("numpy")  # asking by name says the same, not "unknown backend"
    assert sega_core.list_backends() == []


def test_no_backend_installed_in_a_subprocess():
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGA_")}
    env["SEGA_DISABLE_PLUGINS"] = "numpy,numba,cupy"
    code = (
        "import sega_core\n"
        "try:\n    sega_core.get_backend()\n"
        "except sega_core.NoBackendInstalledError as exc:\n    print(exc)\n"
    )
    proc = _run_python(code, env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith('no backend installed; install one with pip install "sega-core[numpy]"')
