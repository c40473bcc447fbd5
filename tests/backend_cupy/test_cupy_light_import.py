"""Importing sega and listing backends must not import cupy (it is slow and may not exist)."""

from __future__ import annotations

import json
import subprocess
import sys

_SCRIPT = r"""
import json, sys
import sega_core
entries = {e["name"]: e for e in sega_core.list_backends()}
report = {
    "after_list": "cupy" in sys.modules,
    "plugin_loaded": "sega_backend_cupy.plugin" in sys.modules,
    "implementation_loaded": sorted(
        m for m in sys.modules
        if m.startswith("sega_backend_cupy.") and m not in ("sega_backend_cupy.plugin", "sega_backend_cupy.probe")
    ),
    "status": entries["cupy"]["status"],
    "reason": entries["cupy"]["reason"],
}
if entries["cupy"]["status"] != "ok":
    try:
        sega_core.get_backend("cupy")
    except sega_core.BackendUnavailableError as exc:
        report["error"] = str(exc)
    report["after_get"] = "cupy" in sys.modules
print(json.dumps(report))
"""


def test_listing_backends_leaves_cupy_unimported():
    done = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["plugin_loaded"], "the cupy plugin was not loaded at all"
    assert report["after_list"] is False, "sega_core.list_backends() imported cupy"
    assert report["implementation_loaded"] == [], "listing imported the kernel modules"
    if report["status"] != "ok":
        assert report["error"] == f"backend 'cupy' is installed but unavailable: {report['reason']}"
        assert report["after_get"] is False, "a refused get_backend('cupy') imported cupy"


def test_plugin_module_source_has_no_heavy_imports():
    import ast
    import inspect

    from sega_backend_cupy import plugin, probe

    for module in (plugin, probe):
        tree = ast.parse(inspect.getsource(module))
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
            elif isinstance(node, ast.ImportFrom) and node.level > 0:
                imported.add("." + (node.module or ""))
        assert "cupy" not in imported and "numpy" not in imported, (module.__name__, imported)
        assert not {".services", ".dense", ".conv", ".rnn", ".losses", ".optimizers", "._cupy"} & imported
