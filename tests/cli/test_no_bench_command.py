"""``sega`` runs only code it ships: there is no command that runs a benchmarks/run.py found on disk."""

from __future__ import annotations

import importlib.util

from sega_core.cli import SUBCOMMANDS


def test_a_benchmarks_run_py_in_the_working_folder_is_never_run(sega, tmp_path):
    marker = tmp_path / "it-ran"
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "run.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    result = sega("bench")
    assert result.rc == 2 and "invalid choice: 'bench'" in result.err, result
    assert not marker.exists()


def test_bench_is_gone_from_the_commands_and_the_help(sega):
    assert "bench_cmd" not in SUBCOMMANDS
    assert importlib.util.find_spec("sega_core.cli.bench_cmd") is None
    result = sega("--help")
    assert result.rc == 0 and "bench" not in result.out
