"""``sega bench``: a thin wrapper that finds and runs benchmarks/run.py."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from sega_core.cli import bench_cmd
from sega_core.errors import SegaError

REPO = Path(__file__).resolve().parents[2]


def _args(**overrides):
    parser = argparse.ArgumentParser()
    bench_cmd.add_parser(parser.add_subparsers())
    defaults = dict(workload="all", backends=None, size="tiny", epochs=1, compare=False, json=None)
    return argparse.Namespace(**{**defaults, **overrides})


def test_default_command_is_a_quick_sega_only_run():
    command = bench_cmd.harness_command(Path("benchmarks/run.py"), _args())
    assert command[1:] == ["benchmarks/run.py", "--workload", "all", "--size", "tiny", "--epochs", "1",
                           "--warmup", "0", "--no-torch", "--no-sklearn"]
    full = bench_cmd.harness_command(Path("run.py"), _args(size="full", compare=True, backends="numpy", json="r.json"))
    assert "--warmup" not in full and "--no-torch" not in full
    assert full[-4:] == ["--backends", "numpy", "--json", "r.json"]


def test_missing_harness_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(bench_cmd, "HARNESS", Path("benchmarks") / "no-such-harness.py")
    with pytest.raises(SegaError, match="not found.*source repository"):
        bench_cmd.find_harness()


@pytest.mark.skipif(not (REPO / "benchmarks" / "run.py").is_file(), reason="no benchmark harness in this checkout")
def test_bench_runs_the_harness_from_anywhere(sega, tmp_path):
    # From a directory outside the repository: the harness is found next to the package.
    result = sega("bench", "--workload", "mlp-small", "--backends", "numpy", cwd=tmp_path)
    assert result.rc == 0, result
    assert "sega[" in result.out
