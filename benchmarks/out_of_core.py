"""W2's model trained from a float32 ``.npy`` file too big to want in memory, against the same
data in memory: peak memory of the out-of-core process and the epoch-time ratio.

    python benchmarks/out_of_core.py                     # 4 GB file in /tmp, numba, one epoch each
    python benchmarks/out_of_core.py --gigabytes 1 --folder /scratch --backend numpy

The data are W2's (784 float32 features from a random linear teacher, 10 classes), generated
block by block into ``FOLDER/x.npy`` (kept for later runs of the same size) with the labels
in ``y.npy``. Then two fresh processes, one after the other, each train W2's 784-512-256-10
model for ``--epochs`` timed epochs after a warm-up of 5 % of the rows (batch 128, Adam):

- ``memmap``: ``model.train(np.load(path, mmap_mode="r"), y)``, read a block at a time;
- ``memory``: ``model.train(np.load(path), y)``, the whole array loaded first (not timed).

Each reports its epoch times and its peak resident memory (``VmHWM`` of ``/proc/self/status``,
which counts file pages mapped into the process as well as its own memory; ``ru_maxrss`` would
start at the parent's size). ``--rounds`` alternates them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

FEATURES, CLASSES, SEED = 784, 10, 20240604
ROOT = Path(__file__).resolve().parent.parent


def make_data(folder: Path, gigabytes: float) -> tuple[Path, Path]:
    """Write (or reuse) ``x.npy`` of about ``gigabytes`` GB and its labels ``y.npy``."""
    rows = int(gigabytes * 1e9) // (FEATURES * 4)
    x_path, y_path = folder / "x.npy", folder / "y.npy"
    if x_path.exists() and y_path.exists() and np.load(x_path, mmap_mode="r").shape == (rows, FEATURES):
        return x_path, y_path
    rng = np.random.default_rng(SEED)
    W = rng.standard_normal((FEATURES, CLASSES), dtype=np.float32) / np.float32(np.sqrt(FEATURES))
    y = np.empty(rows, dtype=np.int64)
    with open(x_path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": (rows, FEATURES)})
        for start in range(0, rows, 65536):
            block = rng.standard_normal((min(65536, rows - start), FEATURES), dtype=np.float32)
            logits = block @ W + rng.standard_normal((len(block), CLASSES), dtype=np.float32) * np.float32(0.3)
            y[start : start + len(block)] = logits.argmax(1)
            fh.write(block.tobytes())
    np.save(y_path, y)
    return x_path, y_path


def worker(args) -> None:
    """Train from the file (``--mode memmap``) or from memory (``--mode memory``); print a JSON line."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.worker import peak_rss_bytes
    from sega_core import NeuralNetwork

    X = np.load(args.x, mmap_mode="r") if args.mode == "memmap" else np.load(args.x)
    y = np.load(args.y)
    model = NeuralNetwork([FEATURES, 512, 256, CLASSES], backend=args.backend, seed=0)
    warm = max(128, len(y) // 20)
    model.train(X[:warm], y[:warm], epochs=1, batch_size=128, optimizer="adam", lr=1e-3, verbose=0, track_metrics=False)
    times = []
    for _ in range(args.epochs):
        started = time.perf_counter()
        model.train(X, y, epochs=1, batch_size=128, verbose=0, track_metrics=False)
        times.append(time.perf_counter() - started)
    peak = peak_rss_bytes()
    print(json.dumps({"mode": args.mode, "epochs": times, "peak_bytes": peak, "rows": len(y),
                      "loss": model.history["loss"][-1]}), flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gigabytes", type=float, default=4.0, help="size of the feature file (default 4)")
    parser.add_argument("--folder", default="/tmp/sega-out-of-core", help="where the data files go")
    parser.add_argument("--backend", default="numba", help="sega backend (default numba)")
    parser.add_argument("--epochs", type=int, default=1, help="timed epochs per process (default 1)")
    parser.add_argument("--rounds", type=int, default=1, help="times to alternate the two processes (default 1)")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("memmap", "memory"), help=argparse.SUPPRESS)
    parser.add_argument("--x", help=argparse.SUPPRESS)
    parser.add_argument("--y", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    x_path, y_path = make_data(folder, args.gigabytes)
    print(f"data: {x_path} ({x_path.stat().st_size / 1e9:.2f} GB), ready in {time.perf_counter() - started:.0f} s; "
          f"started {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, load {os.getloadavg()[0]:.2f}", flush=True)
    results = {"memmap": [], "memory": []}
    for round_ in range(args.rounds):
        for mode in ("memmap", "memory"):
            command = [sys.executable, __file__, "--worker", "--mode", mode, "--x", str(x_path), "--y", str(y_path),
                       "--backend", args.backend, "--epochs", str(args.epochs)]
            out = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
            if out.returncode != 0:
                raise SystemExit(f"{mode} failed:\n{out.stderr[-3000:]}")
            report = json.loads(out.stdout.strip().splitlines()[-1])
            results[mode].append(report)
            print(f"round {round_ + 1} {mode}: epochs {', '.join(f'{t:.1f}' for t in report['epochs'])} s, "
                  f"peak memory {report['peak_bytes'] / 2**20:,.0f} MiB, load {os.getloadavg()[0]:.2f}", flush=True)
    epoch = {m: statistics.median(t for r in results[m] for t in r["epochs"]) for m in results}
    peak = {m: max(r["peak_bytes"] for r in results[m]) for m in results}
    rows = results["memmap"][0]["rows"]
    print(f"\n| data | rows | epoch (s, median) | samples/s | peak memory (MiB) |")
    print("|---|---:|---:|---:|---:|")
    for m in ("memmap", "memory"):
        print(f"| {m} | {rows:,} | {epoch[m]:.1f} | {rows / epoch[m]:,.0f} | {peak[m] / 2**20:,.0f} |")
    print(f"\nout-of-core / in-memory epoch time: {epoch['memmap'] / epoch['memory']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
