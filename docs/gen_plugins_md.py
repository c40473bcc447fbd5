"""Regenerate the generated parts of docs/plugins.md from the code.

``docs/plugins.md`` is hand-written prose with three generated regions, each between
``<!-- BEGIN GENERATED: name -->`` and ``<!-- END GENERATED: name -->``:

``contract``
    the hook contract's general rules: the docstring of :mod:`sega_core.hookspecs`;
``hooks``
    the hook reference: every specification's exact signature and docstring, grouped by the
    section comments of ``hookspecs.py``;
``checks``
    the conformance checks (:mod:`sega_core.testing`) and the hooks each exercises.

Run ``python docs/gen_plugins_md.py`` after changing any of those; ``--check`` only reports
whether the file is up to date (tests/plugins/test_docs.py does the same).
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
from pathlib import Path

DOC = Path(__file__).with_name("plugins.md")
REGIONS = ("contract", "hooks", "checks")


# ---- reStructuredText (the subset used in docstrings) to Markdown --------------------------------


def _inline(text: str) -> str:
    """``code`` and :role:`target` to Markdown code spans (a span may cross a line break)."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text)
    return re.sub(r"``(.+?)``", r"`\1`", text, flags=re.DOTALL)


def rst_to_markdown(text: str, heading: str = "###") -> str:
    """Convert a docstring to Markdown: inline code, literal blocks, definition lists, headings."""
    lines = inspect.cleandoc(text).splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        # Heading: a line underlined with dashes.
        if nxt and set(nxt) == {"-"} and len(nxt) >= len(line.strip()) > 0:
            out += [f"{heading} {line.strip()}", ""]
            i += 2
            continue
        # Literal block: a paragraph ending in "::", then an indented block.
        if line.rstrip().endswith("::"):
            stripped = line.rstrip()[:-2].rstrip()
            if stripped:
                out.append(stripped + ":")
            i += 1
            block: list[str] = []
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith("    ")):
                block.append(lines[i][4:] if lines[i].strip() else "")
                i += 1
            while block and not block[0]:
                block.pop(0)
            while block and not block[-1]:
                block.pop()
            language = "toml" if block and block[0].startswith("[") else "python"
            out += ["", f"```{language}", *block, "```", ""]
            continue
        # Definition list item: a term line, then its definition indented by four spaces.
        if line.strip() and not line.startswith(" ") and nxt.startswith("    ") and not line.startswith(("*", "-")):
            i += 1
            definition: list[str] = []
            while i < len(lines) and lines[i].startswith("    "):
                definition.append(lines[i].strip())
                i += 1
            out.append(f"- {line.strip()}: {' '.join(definition)}")
            continue
        out.append(line)
        i += 1
    # Inline markup is converted outside code fences only, after joining, so that a ``span``
    # broken across two lines is converted whole.
    chunks = re.split(r"(\n```\w*\n.*?\n```\n)", "\n".join(out), flags=re.DOTALL)
    text = "".join(chunk if chunk.startswith("\n```") else _inline(chunk) for chunk in chunks)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# ---- the generated regions ---------------------------------------------------------------------


def _hookspecs():
    from sega_core import hookspecs

    return hookspecs


def hook_names() -> list[str]:
    """Every hook specification, in source order."""
    hookspecs = _hookspecs()
    marker = hookspecs.PROJECT_NAME + "_spec"
    return [n for n, o in vars(hookspecs).items() if n.startswith("sega_") and hasattr(o, marker)]


def signature(hook: str) -> str:
    """``sega_name(a, b, c)``: the hook's exact current signature."""
    return hook + str(inspect.signature(getattr(_hookspecs(), hook)))


def _sections() -> list[tuple[str, str, list[str]]]:
    """(title, description, hooks) per ``# ----`` comment block of hookspecs.py, in order."""
    source = inspect.getsource(_hookspecs()).splitlines()
    sections: list[tuple[str, str, list[str]]] = []
    i = 0
    while i < len(source):
        line = source[i]
        if line.startswith("# ----"):
            i += 1
            comment = []
            while i < len(source) and not source[i].startswith("# ----"):
                comment.append(source[i][2:])
                i += 1
            text = " ".join(comment).strip()
            match = re.match(r"(.+?)(?:\. |: | \()(.*)$", text)
            title, rest = (match.group(1), match.group(2)) if match else (text, "")
            rest = rest.rstrip(")").strip() if text[len(title):].startswith(" (") else rest
            rest = rest[:1].upper() + rest[1:]
            sections.append((title.strip(), rest + ("." if rest and not rest.endswith(".") else ""), []))
        else:
            found = re.match(r"def (sega_\w+)\(", line)
            if found:
                if not sections:
                    sections.append(("Hooks", "", []))
                sections[-1][2].append(found.group(1))
        i += 1
    return sections


def render_contract() -> str:
    """The hook contract's general rules (hookspecs' module docstring), as Markdown."""
    return rst_to_markdown(_hookspecs().__doc__, heading="###")


def render_hooks() -> str:
    """The hook reference: every specification's signature and docstring, by section."""
    hookspecs = _hookspecs()
    names = hook_names()
    listed: list[str] = []
    parts = [f"Hook API version: `{hookspecs.HOOK_API_VERSION}`. Every hook is a `firstresult` hook."]
    for title, description, hooks in _sections():
        hooks = [h for h in hooks if h in names]
        if not hooks:
            continue
        parts.append(f"### {title}")
        if description:
            parts.append(_inline(description))
        for hook in hooks:
            listed.append(hook)
            doc = rst_to_markdown(inspect.getdoc(getattr(hookspecs, hook)) or "", heading="####")
            deprecated = hookspecs.DEPRECATED_ARGUMENTS.get(hook)
            parts.append(f"#### `{signature(hook)}`\n\n{doc}")
            if deprecated:
                notes = ", ".join(
                    f"`{old}` (renamed `{new}`)" if new else f"`{old}` (to be removed)" for old, new in deprecated.items()
                )
                parts.append(f"Deprecated arguments still accepted: {notes}.")
    missing = [h for h in names if h not in listed]
    if missing:  # a hook outside any section comment: still documented
        parts.append("### Other hooks")
        parts += [f"#### `{signature(h)}`\n\n{rst_to_markdown(inspect.getdoc(getattr(hookspecs, h)) or '')}" for h in missing]
    return "\n\n".join(parts)


def render_checks() -> str:
    """A table of the conformance checks: name, variants, hooks exercised, what it checks."""
    from sega_core.testing import backend_checks

    rows: dict[str, dict] = {}
    for check in backend_checks():
        row = rows.setdefault(check.name, {"ids": [], "hooks": check.hooks, "description": check.description})
        row["ids"].append(check.id)
    lines = ["| check | ids | hooks | what it checks |", "| --- | --- | --- | --- |"]
    for name, row in rows.items():
        variants = ", ".join(f"`{i}`" for i in row["ids"])
        hooks = ", ".join(f"`{h}`" for h in row["hooks"])
        description = _inline(row["description"].replace("\n", " ")).replace("|", "\\|")
        lines.append(f"| {name} | {variants} | {hooks} | {description} |")
    return "\n".join(lines)


RENDERERS = {"contract": render_contract, "hooks": render_hooks, "checks": render_checks}


def _pattern(region: str) -> re.Pattern:
    return re.compile(
        rf"(<!-- BEGIN GENERATED: {region} .*?-->\n)(.*?)(<!-- END GENERATED: {region} -->)", re.DOTALL
    )


def generated_regions(text: str) -> dict[str, str]:
    """The current content of each generated region of ``text``."""
    out = {}
    for region in REGIONS:
        match = _pattern(region).search(text)
        if match is None:
            raise ValueError(f"docs/plugins.md lacks the generated region {region!r}")
        out[region] = match.group(2)
    return out


def render(text: str) -> str:
    """``text`` with every generated region replaced by freshly rendered content."""
    for region in REGIONS:
        content = "\n" + RENDERERS[region]() + "\n\n"
        text, count = _pattern(region).subn(lambda m: m.group(1) + content + m.group(3), text)
        if count != 1:
            raise ValueError(f"docs/plugins.md must hold the generated region {region!r} exactly once")
    return text


def main(argv: list[str] | None = None) -> int:
    """Rewrite docs/plugins.md (or, with ``--check``, fail if it is out of date)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether the file is up to date")
    args = parser.parse_args(argv)
    current = DOC.read_text(encoding="utf-8")
    fresh = render(current)
    if args.check:
        if fresh != current:
            print(f"{DOC} is out of date; run: python docs/gen_plugins_md.py", file=sys.stderr)
            return 1
        return 0
    if fresh != current:
        DOC.write_text(fresh, encoding="utf-8")
        print(f"updated {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
