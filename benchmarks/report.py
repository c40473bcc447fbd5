"""Summaries, ratios to PyTorch, target checks, tables and JSON for the harness's results."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

#: Peak memory allowed for a W2 run: 2 x the data set's bytes + this many bytes.
W2_MEMORY_SLACK = 300 * 10**6
MB = 10**6


def summarise_row(row: dict, n_train: int) -> dict:
    """Add median epoch time, samples/s and spread to one framework's row (in place)."""
    times = row.get("epoch_seconds") or []
    if times:
        row["median_s"] = statistics.median(times)
        row["min_s"], row["max_s"] = min(times), max(times)
        row["samples_per_s"] = n_train / row["median_s"]
        waits = [w / t for w, t in zip(row.get("wait_seconds") or [], times) if w is not None and t > 0]
        if waits:
            # Share of each epoch its threads spent waiting for a CPU taken by other processes.
            row["median_wait_share"] = statistics.median(waits)
        cpu = [t for t in row.get("cpu_seconds") or [] if t is not None]
        if cpu:
            row["median_cpu_s"] = statistics.median(cpu)
        inner = [t for t in row.get("inner_seconds") or [] if t is not None]
        if inner:
            row["median_inner_s"] = statistics.median(inner)
            row["median_call_overhead_s"] = statistics.median(
                s - i for s, i in zip(times, row["inner_seconds"]) if i is not None
            )
    return row


def add_ratios(result: dict) -> dict:
    """Ratio of every row to the PyTorch eager row of the same workload (and of sega's rows to
    compiled PyTorch's, where it ran), and the targets (in place). A dry run has no targets."""
    rows = result["rows"]
    torch_row = next((r for r in rows if r["framework"] == "torch" and not r.get("compiled") and r.get("median_s")),
                     None)
    compiled_row = next((r for r in rows if r.get("compiled") and r.get("median_s")), None)
    for row in rows:
        if torch_row is not None and row.get("median_s"):
            row["ratio_to_torch"] = row["median_s"] / torch_row["median_s"]
            row["ratio_to_torch_best"] = row["min_s"] / torch_row["min_s"]
        if compiled_row is not None and row["framework"] == "sega" and row.get("median_s"):
            row["ratio_to_torch_compiled"] = row["median_s"] / compiled_row["median_s"]
        if result.get("gpu"):
            target = None if result.get("emulated") else result.get("gpu_target")
        else:
            target = result.get("targets", {}).get(row.get("backend"), result["target"])
        if row["framework"] == "sega" and "ratio_to_torch" in row and target is not None:
            row["target"] = target
            row["target_met"] = row["ratio_to_torch"] <= target
            row["target_miss_pct"] = max(0.0, (row["ratio_to_torch"] / target - 1) * 100)
        if result["workload"] == "mlp-large" and row["framework"] == "sega" and row.get("peak_rss_bytes"):
            limit = 2 * result["dataset_bytes"] + W2_MEMORY_SLACK
            row["memory_limit_bytes"] = limit
            row["memory_target_met"] = row["peak_rss_bytes"] <= limit
    return result


def _fmt_time(s: float) -> str:
    if s >= 10:
        return f"{s:.1f}"
    if s >= 1:
        return f"{s:.2f}"
    if s >= 0.01:
        return f"{s:.3f}"
    return f"{s:.4f}"


def _target_text(row: dict) -> str:
    if "target_met" not in row:
        return ""
    if row["target_met"]:
        return f"met (<= {row['target']:.2f})"
    return f"MISSED by {row['target_miss_pct']:.0f}% (target {row['target']:.2f})"


def format_table(result: dict) -> str:
    """A Markdown table of one workload's rows."""
    head = f"### {result['key']} {result['workload']}: {result['title']}"
    if result.get("emulated"):
        head += " (dry run: CuPy on the CPU emulation of CUDA, PyTorch on the CPU; the times mean nothing)"
    if not result.get("n_train"):
        return f"{head}\n\nnothing ran (no backend or framework took part, or every one failed at start)."
    info = (
        f"{result['n_train']} training samples, batch {result['batch_size']}, "
        f"{result.get('timed_epochs', '?')} timed epochs after {result.get('warmup', '?')} warm-up; "
        f"data set {result['dataset_bytes'] / MB:.1f} MB"
    )
    lines = [
        head,
        "",
        info,
        "",
        "| framework | s/epoch (median) | min-max | samples/s | peak RSS MB | test acc | / torch | / torch (best) | target | CPU wait |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for row in result["rows"]:
        if row.get("error"):
            lines.append(f"| {row['label']} | failed: {row['error'][:80]} | | | | | | | | |")
            continue
        if not row.get("median_s"):
            continue
        ratio = f"{row['ratio_to_torch']:.2f}" if "ratio_to_torch" in row else "-"
        best = f"{row['ratio_to_torch_best']:.2f}" if "ratio_to_torch_best" in row else "-"
        peak = f"{row['peak_rss_bytes'] / MB:.0f}" if row.get("peak_rss_bytes") else "-"
        acc = f"{row['accuracy']:.3f}" if row.get("accuracy") is not None else "-"
        other = f"{row['median_wait_share']:.0%}" if row.get("median_wait_share") is not None else "-"
        if row.get("discarded_seconds"):
            other += f" ({len(row['discarded_seconds'])} redone)"
        lines.append(
            f"| {row['label']} | {_fmt_time(row['median_s'])} | {_fmt_time(row['min_s'])}-{_fmt_time(row['max_s'])} "
            f"| {row['samples_per_s']:,.0f} | {peak} | {acc} | {ratio} | {best} | {_target_text(row)} | {other} |"
        )
    notes = [
        "/ torch: ratio of median epoch times (the targets use it); / torch (best): ratio of the fastest epochs.",
        "CPU wait: median share of an epoch that the framework's threads spent runnable but waiting for a CPU "
        "(Linux schedstat; 0% = it had the cores to itself); redone: disturbed epochs that were run again."
    ]
    for row in result["rows"]:
        if "memory_target_met" in row:
            verdict = "met" if row["memory_target_met"] else "MISSED"
            notes.append(
                f"Memory target ({row['label']}): peak {row['peak_rss_bytes'] / MB:.0f} MB <= 2 x data + 300 MB "
                f"= {row['memory_limit_bytes'] / MB:.0f} MB: {verdict}."
            )
        if row.get("median_call_overhead_s") is not None:
            notes.append(
                f"{row['label']}: epoch loop {_fmt_time(row['median_inner_s'])} s + per-train()-call overhead "
                f"{row['median_call_overhead_s'] * 1e3:.2f} ms."
            )
        if row.get("ratio_to_torch_compiled") is not None:
            notes.append(f"{row['label']} / compiled PyTorch (torch.compile, mode='reduce-overhead'): "
                         f"{row['ratio_to_torch_compiled']:.2f}.")
        if row.get("gpu_peak_bytes") or row.get("gpu_pool_bytes"):
            b = row.get("gpu_peak_bytes") or row.get("gpu_pool_bytes")
            notes.append(f"{row['label']}: GPU memory {b / MB:.0f} MB.")
    if result.get("gemm_flops_per_epoch"):
        notes.append(f"Matrix-product work per epoch: {result['gemm_flops_per_epoch'] / 1e9:.1f} GFLOP.")
    if notes:
        lines += [""] + [f"- {n}" for n in notes]
    return "\n".join(lines)


def write_json(path, payload: dict) -> None:
    """Write the results to ``path`` (parent folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")


def main(argv=None) -> int:
    """Print the tables of a JSON file written by ``run.py --json``: ``python benchmarks/report.py FILE``."""
    import sys

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python benchmarks/report.py RESULTS.json", file=sys.stderr)
        return 2
    payload = json.loads(Path(argv[0]).read_text())
    meta = payload.get("meta", {})
    machine = meta.get("machine", {})
    print(f"{meta.get('date', '?')}  {machine.get('cpu_model', '?')}  threads {meta.get('threads', '?')}  "
          f"size {meta.get('size', '?')}\n")
    for result in payload.get("workloads", []):
        print(format_table(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
