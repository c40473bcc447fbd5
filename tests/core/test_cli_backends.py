"""``sega backends``, run the way users run it: ``python -m sega_core.cli`` and the installed
``sega`` script, in subprocesses (plus a few in-process checks of the dispatcher itself)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

import sega_core
import sega_core.cli as cli
from sega_core.backends import KERNEL_HOOKS
from sega_core.errors import BackendError

N_KERNELS = len(KERNEL_HOOKS)
SEGA_SCRIPT = shutil.which("sega", path=str(Path(sys.executable).parent))


def _env(extra: dict | None = None, base: dict | None = None) -> dict:
    env = {k: v for k, v in (base or os.environ).items() if not k.startswith("SEGA_")}
    return env | (extra or {})


def sega(*args, env=None) -> subprocess.CompletedProcess:
    """``python -m sega_core.cli ARGS``."""
    return subprocess.run([sys.executable, "-m", "sega_core.cli", *args], capture_output=True, text=True,
                          env=env or _env(), timeout=120)


def _rows(stdout: str) -> dict[str, list[str]]:
    """The first table of the listing, by backend name (columns split on runs of 2+ spaces)."""
    import re

    table = stdout.split("\n\n")[0].splitlines()
    assert re.split(r"\s{2,}", table[0]) == ["name", "distribution", "version", "device", "status", "reason"]
    return {cells[0]: cells for cells in (re.split(r"\s{2,}", line) for line in table[1:])}


def test_table_lists_the_installed_backends():
    proc = sega("backends")
    assert proc.returncode == 0, proc.stderr
    rows = _rows(proc.stdout)
    assert rows["numpy"] == ["numpy", "sega-backend-numpy", sega_core.__version__, "cpu", "ok", "-"]
    assert {"numba", "cupy"} <= set(rows)
    assert f"kernel coverage ({N_KERNELS} kernels):" in proc.stdout
    assert f"numpy  {N_KERNELS} own, 0 from numpy, 0 missing" in proc.stdout
    assert "source of each kernel" not in proc.stdout
    assert proc.stderr == ""


def test_verbose_shows_the_source_of_every_kernel():
    proc = sega("backends", "--verbose")
    assert proc.returncode == 0, proc.stderr
    matrix = proc.stdout.split("source of each kernel")[1].splitlines()[1:]
    header = matrix[0].split()
    assert header[0] == "kernel" and "numpy" in header
    column = header.index("numpy")
    kernels = {line.split()[0]: line.split() for line in matrix[1:]}
    assert set(kernels) == {h[len("sega_"):] for h in KERNEL_HOOKS}
    assert all(cells[column] == "numpy" for cells in kernels.values())


def test_json_is_list_backends():
    proc = sega("backends", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    here = sega_core.list_backends()
    assert [b["name"] for b in data] == [b["name"] for b in here]
    assert next(b for b in data if b["name"] == "numpy") == next(b for b in here if b["name"] == "numpy")


@pytest.mark.skipif(SEGA_SCRIPT is None, reason="the sega console script is not installed in this environment")
def test_installed_sega_script():
    proc = subprocess.run([SEGA_SCRIPT, "backends", "--json"], capture_output=True, text=True, env=_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "numpy" in {b["name"] for b in json.loads(proc.stdout)}
    proc = subprocess.run([SEGA_SCRIPT, "--version"], capture_output=True, text=True, env=_env(), timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == f"sega-core {sega_core.__version__}"


def test_partial_backend_coverage(fake_dists, good_source):
    fake_dists.add("fake-sega-good", "2.0", {"fakegood": "fake_sega_good_plugin"}, {"fake_sega_good_plugin": good_source})
    proc = sega("backends", "-v", env=_env(base=fake_dists.env()))
    assert proc.returncode == 0, proc.stderr
    assert _rows(proc.stdout)["fakegood"][:5] == ["fakegood", "fake-sega-good", "2.0", "cpu", "ok"]
    assert f"fakegood  2 own, {N_KERNELS - 2} from numpy, 0 missing" in proc.stdout
    matrix = proc.stdout.split("source of each kernel")[1].splitlines()[1:]
    column = matrix[0].split().index("fakegood")
    sources = {line.split()[0]: line.split()[column] for line in matrix[1:]}
    assert sources["relu_forward"] == sources["relu_backward"] == "fakegood"
    assert sources["dense_forward"] == "numpy"


def test_broken_plugin_is_listed_and_warned_about_on_one_line(broken_dist):
    proc = sega("backends", env=_env(base=broken_dist.env()))
    assert proc.returncode == 0, proc.stderr
    row = _rows(proc.stdout)["broken"]
    assert row[:5] == ["broken", "fake-sega-broken", "0.3", "-", "failed"]
    assert "RuntimeError: boom" in row[5]
    assert "broken  not loaded" in proc.stdout
    warning_lines = proc.stderr.splitlines()
    assert len(warning_lines) == 1 and warning_lines[0].startswith(
        "sega: warning: sega backend plugin broken (fake-sega-broken 0.3) was skipped: failed to import")
    # JSON mode: the warning on stderr, stdout still pure JSON.
    proc = sega("backends", "--json", env=_env(base=broken_dist.env()))
    assert json.loads(proc.stdout) and "sega: warning:" in proc.stderr


def test_strict_mode_error_is_one_line_without_traceback(broken_dist):
    env = _env({"SEGA_STRICT_PLUGINS": "1"}, base=broken_dist.env())
    proc = sega("backends", env=env)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [proc.stderr.strip()]  # exactly one line
    assert proc.stderr.startswith("sega: error: sega backend plugin broken (fake-sega-broken 0.3) failed to import")
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback(broken_dist, where):
    env = _env({"SEGA_STRICT_PLUGINS": "1"}, base=broken_dist.env())
    args = ["--debug", "backends"] if where == "before" else ["backends", "--debug"]
    proc = sega(*args, env=env)
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr and "RuntimeError: boom" in proc.stderr
    assert proc.stderr.rstrip().splitlines()[-1].startswith("sega: error: ")


def test_no_backend_installed():
    env = _env({"SEGA_DISABLE_PLUGINS": "numpy,numba,cupy"})
    proc = sega("backends", env=env)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        'sega: error: no backend installed; install one with pip install "sega-core[numpy]" '
        '(or "sega-core[numba]", "sega-core[cupy]")'
    )
    proc = sega("backends", "--json", env=env)
    assert (proc.returncode, proc.stdout.strip()) == (0, "[]")


def test_usage_errors_exit_2():
    proc = sega()
    assert proc.returncode == 2 and "sega: error:" in proc.stderr and "COMMAND" in proc.stderr
    proc = sega("nosuchcommand")
    assert proc.returncode == 2 and "invalid choice: 'nosuchcommand'" in proc.stderr
    proc = sega("backends", "--nosuchoption")
    assert proc.returncode == 2 and "unrecognized arguments: --nosuchoption" in proc.stderr


def test_sega_backends_imports_no_heavy_library():
    code = (
        "import contextlib, io, json, sys\n"
        "from sega_core.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    status = main(['backends', '--verbose'])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('numba', 'llvmlite', 'cupy', 'cupyx', 'torch',"
        " 'sklearn', 'matplotlib'))\n"
        "print(json.dumps([status, heavy]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [0, []]


# ---- the dispatcher, in process ------------------------------------------------------------


def test_main_returns_the_status_instead_of_exiting(capsys):
    assert cli.main(["backends", "--json"]) == 0
    assert "numpy" in {b["name"] for b in json.loads(capsys.readouterr().out)}
    assert cli.main(["--version"]) == 0
    assert cli.main(["nosuchcommand"]) == 2


def test_a_new_subcommand_only_needs_a_module(monkeypatch, capsys):
    """The extension pattern: a module with add_parser/run, named in SUBCOMMANDS."""
    module = types.ModuleType("sega_core.cli.hello_cmd")

    def add_parser(subparsers):
        parser = subparsers.add_parser("hello", help="say hello")
        parser.add_argument("--fail", action="store_true")
        return parser

    def run(args: argparse.Namespace) -> int:
        if args.fail:
            raise BackendError("it went wrong\non two lines")
        print("hello")
        return 3

    module.add_parser, module.run = add_parser, run
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(cli, "SUBCOMMANDS", cli.SUBCOMMANDS + ("hello_cmd",))
    assert cli.main(["hello"]) == 3
    assert capsys.readouterr().out == "hello\n"
    assert cli.main(["hello", "--fail"]) == 2
    assert capsys.readouterr().err == "sega: error: it went wrong on two lines\n"
    assert cli.main(["backends", "--json"]) == 0  # the others are still there


def test_format_table():
    text = cli.format_table(("a", "bb", "c"), [("xxx", None, "long last cell"), ("y", "z", "")])
    assert text.splitlines() == ["a    bb  c", "xxx  -   long last cell", "y    z   -"]
