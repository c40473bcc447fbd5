"""MkDocs hook: the command-line page shows each command's current ``--help``.

A line ``<!-- sega-help: train -->`` in a page becomes ``sega train --help``'s text, taken from
the parser the ``sega`` command itself builds, so the page cannot fall behind the options.
"""

from __future__ import annotations

import contextlib
import io
import os
import re

MARKER = re.compile(r"^<!-- sega-help: ?(\w*) -->$", re.MULTILINE)


def _help(command: str) -> str:
    from sega_core.cli import build_parser

    argv = [command, "--help"] if command else ["--help"]
    text = io.StringIO()
    # A fixed width (argparse reads COLUMNS), so the page does not depend on the terminal that built it.
    width = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        with contextlib.redirect_stdout(text):
            build_parser().parse_args(argv)
    except SystemExit:  # --help prints, then exits
        pass
    finally:
        if width is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = width
    return text.getvalue()


def on_page_markdown(markdown: str, page, config, files) -> str:
    """Replace every help marker of a page with that command's help, as a console block."""
    return MARKER.sub(lambda m: "```text\n" + _help(m.group(1)).rstrip() + "\n```", markdown)


# Docstrings cross-reference in Sphinx's roles (:class:`~sega_core.errors.InputError`), which
# Markdown leaves as text before a code span; show the code span alone, shortened as ``~`` asks.
ROLE = re.compile(r":(?:class|mod|meth|func|attr|data|exc|obj):<code>(~?)([^<]*)</code>")


def _role(match: re.Match) -> str:
    target = match.group(2)
    if match.group(1):
        target = target.rsplit(".", 1)[-1]
    return f"<code>{target}</code>"


def on_page_content(html: str, page, config, files) -> str:
    """Docstrings' Sphinx roles as plain code spans; a paragraph that introduces a code block
    with reStructuredText's ``::`` ends in one colon, as the rendered block follows it."""
    return ROLE.sub(_role, html).replace("::</p>", ":</p>")
