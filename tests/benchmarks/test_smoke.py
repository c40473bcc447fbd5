"""Smoke test of the benchmark harness: it runs end to end on tiny data (no timing assertions).

The harness itself is exercised in a subprocess exactly as a person would run it; PyTorch is
left out (``--no-torch``) so the test passes whether or not it is installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "benchmarks" / "run.py"

pytest.importorskip("sklearn")  # the digits workload and the MLPClassifier rows need it


def test_harness_runs_every_workload_on_tiny_data(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [sys.executable, str(RUN), "--size", "tiny", "--epochs", "1", "--warmup", "0", "--no-torch",
           "--backends", "numpy", "--workload", "all", "--json", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    payload = json.loads(out.read_text())
    assert payload["meta"]["size"] == "tiny"
    results = {w["workload"]: w for w in payload["workloads"]}
    assert set(results) == {"mlp-small", "mlp-large", "cnn", "rnn", "lenet", "lstm", "gru"}
    for name, result in results.items():
        rows = {r["label"]: r for r in result["rows"]}
        assert "sega[numpy]" in rows, name
        assert "torch" not in rows, name
        if name in ("mlp-small", "mlp-large"):
            assert "sklearn" in rows, name
        for label, row in rows.items():
            assert not row.get("error"), (name, label, row.get("error"))
            assert len(row["epoch_seconds"]) == 1, (name, label)
            assert all(t > 0 for t in row["epoch_seconds"]), (name, label)
            assert row["median_s"] > 0 and row["samples_per_s"] > 0, (name, label)
            assert 0.0 <= row["accuracy"] <= 1.0, (name, label)
            assert row["peak_rss_bytes"] > 0, (name, label)
    # The tables went to stdout.
    assert "| sega[numpy] |" in proc.stdout


def test_harness_rejects_an_unknown_workload():
    proc = subprocess.run([sys.executable, str(RUN), "--workload", "nope", "--no-torch"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "unknown workload" in proc.stderr
