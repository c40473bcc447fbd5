"""The numba backend as a plugin: entry point, lazy import, availability, cache directory."""

from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np
import pytest

import sega_core
from sega_core.hookspecs import HOOK_API_VERSION

OWN_KERNELS = {
    "dense_forward", "dense_backward", "softmax_cross_entropy",
    "conv2d_forward", "conv2d_backward", "rnn_forward", "rnn_backward", "dropout_forward",
    "dropout_backward", "sigmoid_forward", "sigmoid_backward", "tanh_forward", "tanh_backward",
    "relu_forward", "relu_backward", "leaky_relu_forward", "leaky_relu_backward",
    "softmax_forward", "softmax_backward", "sgd_update", "adam_update", "adadelta_update",
    "maxpool2d_forward", "maxpool2d_backward", "avgpool2d_forward", "avgpool2d_backward",
    "lstm_forward", "lstm_backward", "gru_forward", "gru_backward",
}


def test_listing_backends_does_not_import_numba(run_python):
    out = run_python(
        """
        import sys
        import sega_core
        rows = {r["name"]: r for r in sega_core.list_backends()}
        print(rows["numba"]["status"], "numba" in sys.modules, "sega_backend_numba.plugin" in sys.modules)
        """
    )
    assert out.split() == ["ok", "False", "True"]


def test_backend_resolves_through_entry_point():
    backend = sega_core.get_backend("numba")
    assert backend.name == "numba" and backend.device == "cpu"
    assert backend.info["hook_api"] == HOOK_API_VERSION
    sources = backend.kernels.sources
    assert {k for k, v in sources.items() if v == "numba"} == OWN_KERNELS
    assert {v for k, v in sources.items() if k not in OWN_KERNELS} == {"numpy"}
    # The dispatch table holds the compiled-module functions, not the lazy stubs.
    from sega_backend_numba import _conv

    assert backend.kernels.conv2d_forward is _conv.conv2d_forward
    assert backend.xp is np


def test_info_and_availability():
    from sega_backend_numba import __version__, plugin

    info = plugin.sega_backend_info()
    assert info["name"] == "numba" and info["version"] == __version__ and info["device"] == "cpu"
    assert info["description"]
    assert plugin.sega_backend_available() is None


def test_unavailable_without_numba(monkeypatch):
    from sega_backend_numba import plugin

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "numba" else real(name, *a))
    reason = plugin.sega_backend_available()
    assert "numba is not installed" in reason and 'pip install "sega-core[numba]"' in reason


def test_default_cache_dir_follows_xdg(monkeypatch, tmp_path):
    from sega_backend_numba._cachedir import default_cache_dir

    if os.name == "nt" or sys.platform == "darwin":
        pytest.skip("XDG applies to Linux and other Unixes")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == os.path.join(str(tmp_path), "sega", "numba")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")
    assert default_cache_dir() == os.path.join(os.path.expanduser("~"), ".cache", "sega", "numba")


def test_cache_dir_defaults_to_user_cache(tmp_path, run_python):
    if os.name == "nt" or sys.platform == "darwin":
        pytest.skip("XDG applies to Linux and other Unixes")
    out = run_python(
        """
        import os
        from sega_backend_numba import _jit
        import numba
        print(_jit.CACHE.enabled, _jit.CACHE.directory, "NUMBA_CACHE_DIR" in os.environ, repr(numba.config.CACHE_DIR))
        """,
        NUMBA_CACHE_DIR=None,
        XDG_CACHE_HOME=str(tmp_path),
    )
    from sega_backend_numba._cachedir import source_fingerprint

    expected = os.path.join(str(tmp_path), "sega", "numba", source_fingerprint())
    assert out.split() == ["True", expected, "False", "''"]


def test_the_default_cache_changes_with_any_source_file(tmp_path):
    """A cached kernel holds the code of the kernels it calls, which numba does not check: a
    change to any source file must lead to a fresh cache directory."""
    import shutil

    import sega_backend_numba
    from sega_backend_numba._cachedir import source_fingerprint

    copy = tmp_path / "pkg"
    shutil.copytree(os.path.dirname(sega_backend_numba.__file__), copy)
    before = source_fingerprint(str(copy))
    assert before == source_fingerprint(os.path.dirname(sega_backend_numba.__file__))
    recurrence = copy / "_recurrence.py"
    recurrence.write_text(recurrence.read_text() + "\n# edited\n")
    assert source_fingerprint(str(copy)) != before


def test_a_numba_cache_dir_set_by_the_user_holds_the_backends_cache_in_a_subdirectory(tmp_path, run_python):
    out = run_python(
        """
        import os
        from sega_backend_numba import _jit
        print(_jit.CACHE.enabled, _jit.CACHE.directory, os.environ["NUMBA_CACHE_DIR"])
        """,
        NUMBA_CACHE_DIR=str(tmp_path / "mine"),
    )
    from sega_backend_numba._cachedir import source_fingerprint

    expected = str(tmp_path / "mine" / "sega_backend_numba" / source_fingerprint())
    assert out.split() == ["True", expected, str(tmp_path / "mine")]


def test_unwritable_cache_dir_warns_and_still_works(tmp_path, run_python):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    out = run_python(
        """
        import warnings
        import numpy as np
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            from sega_backend_numba import _jit, _activations
        print(_jit.CACHE.enabled)
        print(any("will not be cached" in str(w.message) and "a-file" in str(w.message) for w in caught))
        y = _activations.tanh_backward(np.ones(3, np.float32), None, np.zeros(3, np.float32))
        print(y.dtype, y.tolist())
        """,
        NUMBA_CACHE_DIR=str(blocker / "cache"),
    )
    assert out.split("\n")[:3] == ["False", "True", "float32 [1.0, 1.0, 1.0]"]
