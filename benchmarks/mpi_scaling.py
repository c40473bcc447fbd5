"""Data-parallel scaling of W2 (``mlp-large``) over MPI: P processes x 1 thread against 1 x 1.

    python benchmarks/mpi_scaling.py                      # 1 and 2 processes, numba, 3 timed epochs
    python benchmarks/mpi_scaling.py --processes 1,2 --backend numpy --epochs 5 --rounds 2

Each configuration runs in fresh processes (``mpiexec -n P``, one thread each: NUMBA_NUM_THREADS,
OMP/OPENBLAS/MKL_NUM_THREADS = 1) on W2's training split (48,000 x 784 float32, batch 128, Adam).
P = 1 is a plain model (``distributed=None``); P > 1 is ``distributed="mpi"`` with the same
global batch of 128, so every configuration does the same steps (``--weak``: 128 rows per process,
a global batch of 128 P, so P processes take 1/P of the steps). Reported per configuration:
the median epoch time and throughput, the gradient allreduce's time per step and its share of
the step, and the message (the flat gradient buffer). ``--rounds`` alternates the
configurations that many times, so a disturbance hits both. Then a paper estimate for 8 and 64
processes over a network of ``--network-gbps`` (ring allreduce: each process sends and receives
``2 (P-1)/P`` times the message, plus ``2 (P-1)`` latencies of ``--latency-us``), with each
process's compute taken as the measured 1-process step time divided by P (global batch 128: an
optimistic bound, as shards of 16 or 2 rows use the cores less well than 128), and for a global
batch of 128 rows per process (each process's compute the measured 1-process step).
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

ROOT = Path(__file__).resolve().parent.parent


def worker(args) -> None:
    """One process of one configuration: train, time epochs, print a JSON line on rank 0."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.workloads import load_dataset, sega_layers
    from sega_core import NeuralNetwork

    data = load_dataset("mlp-large")
    distributed = "mpi" if args.distributed else None
    model = NeuralNetwork(sega_layers("mlp-large"), backend=args.backend, seed=0, distributed=distributed)
    dist = model.distributed
    batch = 128 * (dist.size if dist and args.weak else 1)
    model.train(data.X_train, data.y_train, epochs=1, batch_size=batch, optimizer="adam", lr=1e-3, verbose=0,
                track_metrics=False)  # warm-up: compiles, touches the data
    times, shares = [], []
    for _ in range(args.epochs):
        before = (dist.allreduce_seconds, dist.allreduce_calls) if dist else (0.0, 0)
        if dist:
            dist.comm.Barrier()
        started = time.perf_counter()
        model.train(data.X_train, data.y_train, epochs=1, batch_size=batch, verbose=0, track_metrics=False)
        seconds = time.perf_counter() - started
        times.append(seconds)
        if dist:
            shares.append(((dist.allreduce_seconds - before[0]), dist.allreduce_calls - before[1]))
    accuracy = float(model.evaluate(data.X_test, data.y_test)["accuracy"])  # collective: every process calls it
    if dist is None or dist.is_root:
        steps = -(-len(data.X_train) // batch)
        epoch = statistics.median(times)
        allreduce = statistics.median(s / max(c, 1) for s, c in shares) if shares else 0.0
        print(json.dumps({
            "processes": dist.size if dist else 1, "batch": batch, "backend": args.backend, "epochs": times, "epoch_s": epoch,
            "samples_per_s": len(data.X_train) / epoch, "step_ms": 1e3 * epoch / steps, "allreduce_ms": 1e3 * allreduce,
            "allreduce_share": allreduce / (epoch / steps), "message_bytes": model.params.size * model.dtype.itemsize,
            "accuracy": accuracy,
        }), flush=True)


def _mpiexec() -> str:
    beside = Path(sys.executable).with_name("mpiexec")
    return str(beside) if beside.exists() else "mpiexec"


def run_configuration(processes: int, args) -> dict:
    """Start one configuration in fresh processes; its rank 0's report."""
    env = {**os.environ, "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    command = [sys.executable, __file__, "--worker", "--backend", args.backend, "--epochs", str(args.epochs)]
    if processes > 1:
        command = [_mpiexec(), "-n", str(processes)] + command + ["--distributed"] + (["--weak"] if args.weak else [])
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{processes} process(es) failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def estimate(message: float, step_1: float, processes: int, gbps: float, latency_us: float) -> dict:
    """Paper estimate of a step on ``processes`` over the network (ring allreduce)."""
    bandwidth = gbps * 1e9 / 8
    allreduce = 2 * (processes - 1) / processes * message / bandwidth + 2 * (processes - 1) * latency_us * 1e-6
    compute = step_1 / processes
    return {"processes": processes, "compute_ms": 1e3 * compute, "allreduce_ms": 1e3 * allreduce,
            "speedup": step_1 / (compute + allreduce), "allreduce_share": allreduce / (compute + allreduce)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", default="1,2", help="comma list of process counts (default 1,2)")
    parser.add_argument("--backend", default="numba", help="sega backend (default numba)")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per configuration (default 3)")
    parser.add_argument("--rounds", type=int, default=1, help="times to alternate the configurations (default 1)")
    parser.add_argument("--network-gbps", type=float, default=25.0, help="network for the estimate (default 25 Gb/s)")
    parser.add_argument("--latency-us", type=float, default=5.0, help="per-message latency for the estimate (default 5 us)")
    parser.add_argument("--weak", action="store_true", help="128 rows per process (global batch 128 P), not 128 in all")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--distributed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    counts = [int(p) for p in args.processes.split(",")]
    print(f"started {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, load {os.getloadavg()[0]:.2f}", flush=True)
    results = {p: [] for p in counts}
    for round_ in range(args.rounds):
        for p in counts:
            report = run_configuration(p, args)
            results[p].append(report)
            print(f"round {round_ + 1}, {p} process(es): epochs {', '.join(f'{t:.2f}' for t in report['epochs'])} s, "
                  f"allreduce {report['allreduce_ms']:.2f} ms/step ({100 * report['allreduce_share']:.1f} % of the step), "
                  f"load {os.getloadavg()[0]:.2f}", flush=True)
    base = statistics.median(r["epoch_s"] for r in results[counts[0]])
    print("\n| processes x threads | global batch | epoch (s, median) | fastest epoch (s) | samples/s | speedup | "
          "allreduce per step (ms) | share of step |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for p in counts:
        epoch = statistics.median(r["epoch_s"] for r in results[p])
        fastest = min(t for r in results[p] for t in r["epochs"])
        ar = statistics.median(r["allreduce_ms"] for r in results[p])
        share = statistics.median(r["allreduce_share"] for r in results[p])
        print(f"| {p} x 1 | {results[p][0]['batch']} | {epoch:.2f} | {fastest:.2f} | {48000 / epoch:,.0f} | {base / epoch:.2f} | "
              f"{ar:.2f} | {100 * share:.1f} % |")
    one = results[counts[0]][0]
    message, step_1 = one["message_bytes"], statistics.median(r["step_ms"] for r in results[counts[0]]) / 1e3
    print(f"\nmessage: {message:,} bytes (the flat float32 gradient); 1-process step {1e3 * step_1:.2f} ms")
    print(f"paper estimate, {args.network_gbps:g} Gb/s, {args.latency_us:g} us latency:")
    for p in (8, 64):
        e = estimate(message, step_1, p, args.network_gbps, args.latency_us)
        print(f"  {p} processes, global batch 128 ({128 / p:g} rows each): compute {e['compute_ms']:.2f} ms + allreduce "
              f"{e['allreduce_ms']:.2f} ms per step, speedup {e['speedup']:.1f}, allreduce {100 * e['allreduce_share']:.0f} % "
              "of the step")
        w = estimate(message, step_1 * p, p, args.network_gbps, args.latency_us)  # 128 rows per process
        print(f"  {p} processes, batch 128 each (global {128 * p}): compute {w['compute_ms']:.2f} ms + allreduce "
              f"{w['allreduce_ms']:.2f} ms per step, {w['speedup']:.1f} x one process's samples/s, allreduce "
              f"{100 * w['allreduce_share']:.0f} % of the step")
    if args.json:
        Path(args.json).write_text(json.dumps({str(p): r for p, r in results.items()}, indent=1))


if __name__ == "__main__":
    main()
