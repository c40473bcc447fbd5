"""Importing the estimators without scikit-learn, or with one too old, says which of the two it is."""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path

import pytest


def _import_estimators(monkeypatch, sklearn_module):
    monkeypatch.delitem(sys.modules, "sega_core.estimators", raising=False)
    monkeypatch.setitem(sys.modules, "sklearn", sklearn_module)  # None makes the import fail
    with pytest.raises(ImportError) as info:
        importlib.import_module("sega_core.estimators")
    return str(info.value)


def test_without_scikit_learn_it_says_to_install_the_extra(monkeypatch):
    message = _import_estimators(monkeypatch, None)
    assert message == ('sega_core.estimators needs scikit-learn >= 1.6, which is not installed; '
                       'install it with pip install "sega-core[sklearn]"')


@pytest.mark.parametrize("version", ["1.5.2", "1.3.0", "0.24.2", "1.5.dev0"])
def test_with_an_old_scikit_learn_it_names_the_version_found(monkeypatch, version):
    old = types.ModuleType("sklearn")
    old.__version__ = version
    message = _import_estimators(monkeypatch, old)
    assert message == (f"sega_core.estimators needs scikit-learn >= 1.6, but found {version}; "
                       'upgrade it with pip install --upgrade "scikit-learn>=1.6"')
    assert "sega-core[sklearn]" not in message  # the extra is what the user already has


def test_the_installed_scikit_learn_is_new_enough():
    estimators = importlib.import_module("sega_core.estimators")
    assert estimators._SKLEARN_FOUND >= estimators.SKLEARN_MIN


def test_the_sklearn_extra_and_the_dev_group_require_what_the_estimators_need():
    tomllib = pytest.importorskip("tomllib")
    estimators = importlib.import_module("sega_core.estimators")
    config = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text(encoding="utf-8"))
    wanted = "scikit-learn>=" + ".".join(map(str, estimators.SKLEARN_MIN))
    assert config["project"]["optional-dependencies"]["sklearn"] == [wanted]
    assert [r for r in config["dependency-groups"]["dev"] if isinstance(r, str) and r.startswith("scikit-learn")] == [wanted]
