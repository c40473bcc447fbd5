"""Meta-tests that keep docs/plugins.md honest: every hook with its exact current signature, the
generated regions up to date, and the names it documents matching the code."""

from __future__ import annotations

import importlib.util
import inspect
import re
from pathlib import Path

import pytest

from sega_core import hookspecs
from sega_core.backends import registry, selection
import sega_core.testing as testing

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "plugins.md"
HOOKS = [name for name, obj in vars(hookspecs).items() if hasattr(obj, hookspecs.PROJECT_NAME + "_spec")]


def _generator():
    spec = importlib.util.spec_from_file_location("gen_plugins_md", REPO / "docs" / "gen_plugins_md.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _prose(text: str) -> str:
    """The document without fenced code blocks (examples there may show old signatures)."""
    return re.sub(r"```.*?```", "", text, flags=re.DOTALL)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_with_its_current_signature(hook):
    signature = hook + str(inspect.signature(getattr(hookspecs, hook)))
    assert f"`{signature}`" in DOC.read_text(encoding="utf-8"), f"docs/plugins.md lacks `{signature}`"


def test_no_stale_signature_in_the_prose():
    current = {h: h + str(inspect.signature(getattr(hookspecs, h))) for h in HOOKS}
    for match in re.finditer(r"`(sega_\w+)\(([^)`]*)\)`", _prose(DOC.read_text(encoding="utf-8"))):
        name = match.group(1)
        assert name in current, f"docs/plugins.md mentions {name}, which is not a hook"
        assert f"{name}({match.group(2)})" == current[name], f"stale signature {match.group(0)}; now {current[name]}"


def test_generated_regions_are_up_to_date():
    gen = _generator()
    text = DOC.read_text(encoding="utf-8")
    assert gen.render(text) == text, "docs/plugins.md is out of date: run python docs/gen_plugins_md.py"


def test_every_hookspec_docstring_is_in_the_reference():
    hooks_region = _generator().generated_regions(DOC.read_text(encoding="utf-8"))["hooks"]
    for hook in HOOKS:
        first_line = inspect.getdoc(getattr(hookspecs, hook)).splitlines()[0]
        assert first_line.replace("``", "`").split(":")[0] in hooks_region, hook


def test_documented_names_match_the_code():
    text = DOC.read_text(encoding="utf-8")
    for name in (registry.STRICT_ENV, registry.DISABLE_ENV, registry.ENTRY_POINT_GROUP, selection.BACKEND_ENV,
                 testing.BACKEND_ENV, testing.EXPECTED_FAILURES_ENV, "parametrize_with_backend_checks",
                 "DEPRECATED_ARGUMENTS", "lazy_kernel", "sega backends"):
        assert name in text, f"docs/plugins.md does not mention {name}"
    assert (REPO / "examples" / "third_party_backend" / "pyproject.toml").is_file()
    for link in re.findall(r"\]\((\.\./[^)#]+)\)", text):
        assert (DOC.parent / link).resolve().exists(), f"broken link {link}"
