"""The documentation site keeps up with the code: every public name has a docstring and a place
in the API reference, and every gallery script has its page (``mkdocs build --strict`` in CI
then fails on a broken reference or link)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import sega_core

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
REFERENCE = DOCS / "reference"


def _documented() -> set[str]:
    """The objects the reference pages render (``::: dotted.name`` lines)."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in REFERENCE.glob("*.md"))
    return set(re.findall(r"^::: ([\w.]+)$", text, re.MULTILINE))


@pytest.mark.parametrize("name", sega_core.__all__)
def test_every_public_name_is_in_the_api_reference(name):
    assert f"sega_core.{name}" in _documented(), f"add '::: sega_core.{name}' to a page of docs/reference/"


def _public_objects():
    estimators = pytest.importorskip("sega_core.estimators")
    for name in sega_core.__all__:
        yield f"sega_core.{name}", getattr(sega_core, name)
    for name in estimators.__all__:
        yield f"sega_core.estimators.{name}", getattr(estimators, name)


def _own_members(cls):
    """Public methods and properties that sega itself defines on ``cls`` or its sega bases."""
    for klass in cls.__mro__:
        if not klass.__module__.startswith("sega_core"):
            continue
        for attr, value in vars(klass).items():
            if attr.startswith("_"):
                continue
            if isinstance(value, property):
                yield attr, value.fget
            elif isinstance(value, (classmethod, staticmethod)):
                yield attr, value.__func__
            elif inspect.isfunction(value):
                yield attr, value


def test_every_public_thing_has_a_docstring():
    missing = []
    for dotted, obj in _public_objects():
        if isinstance(obj, (str, int, float)):
            continue
        if not (obj.__doc__ or "").strip():
            missing.append(dotted)
        if inspect.isclass(obj):
            missing += [f"{dotted}.{attr}" for attr, fn in _own_members(obj) if not (fn.__doc__ or "").strip()]
    assert not missing, "no docstring: " + ", ".join(sorted(set(missing)))


def test_every_gallery_script_has_a_page():
    pages = "\n".join(p.read_text(encoding="utf-8") for p in (DOCS / "gallery").glob("*.md"))
    for script in sorted((REPO / "examples").glob("*.py")):
        assert f'--8<-- "examples/{script.name}"' in pages, f"examples/{script.name} has no page in docs/gallery/"
