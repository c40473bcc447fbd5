"""The Python examples of the guide run as written.

Every ```python block of a page runs, in order, in one namespace per page (so a page can build
on its earlier blocks), in a scratch folder. A block placed right after a line
``<!-- not run: why -->`` is skipped: it needs what a test machine lacks (several MPI
processes, a Dask cluster, a GPU) or stands for the user's own data. The plugin author's guide
(plugins.md) is left out: its blocks are hook signatures and pseudo-code, and
tests/plugins/test_docs.py checks it.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if p.name != "plugins.md" and "```python" in p.read_text(encoding="utf-8"))
# A block may be indented (inside a tab of the migration page); so may its "not run" mark.
BLOCK = re.compile(r"(<!-- not run: [^>]+ -->\n[ \t]*)?```python[^\n]*\n(.*?)```", re.DOTALL)


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(DOCS)) for p in PAGES])
def test_the_page_s_python_examples_run(page, tmp_path, monkeypatch):
    pytest.importorskip("sklearn")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SEGA_BACKEND", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace = {"__name__": "__docs__"}
    for number, match in enumerate(BLOCK.finditer(page.read_text(encoding="utf-8")), 1):
        if match.group(1) or "--8<--" in match.group(2):
            continue
        code = compile(textwrap.dedent(match.group(2)), f"{page.name}, python block {number}", "exec")
        exec(code, namespace)  # noqa: S102 - the documentation's own examples
