"""Kernel launches per training batch and host reads per epoch of the GPU workloads, counted.

The GPU workloads are launch-bound: each batch is a few dozen small kernels, so their number, not
their arithmetic, sets the epoch time. This counts them without a GPU, on the CPU emulation of
CUDA (``benchmarks/gpu/emulation.py``), by training each workload's model on a few of its batches
and then on twice as many: the difference over the extra batches is the cost of one batch. With
``--device``, it also counts on the real GPU through PyTorch's profiler (CUPTI sees every kernel
of the process, CuPy's too), for sega and for PyTorch eager.

    python benchmarks/gpu/launch_counts.py                  # emulation, every GPU workload
    python benchmarks/gpu/launch_counts.py --device --json counts.json
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.workloads import WORKLOADS, load_dataset, sega_layers  # noqa: E402

#: Batches of the shorter epoch; the longer one has twice as many.
BATCHES = 2


def _epoch_data(workload, batches: int):
    data = load_dataset(workload.name, "tiny")
    n = batches * workload.batch_size
    return np.resize(data.X_train, (n, *data.X_train.shape[1:])), np.resize(data.y_train, n)


def _sega_model(workload, backend):
    import sega_core

    return sega_core.NeuralNetwork(layers=sega_layers(workload.name), backend=backend, dtype="float32", seed=0)


def emulated_counts(workload) -> dict:
    """Launches per batch (in all and by kernel), host reads per epoch and copies per call, emulated."""
    from benchmarks.gpu.emulation import counting_cupy_backend

    backend, counter = counting_cupy_backend()
    events = []
    for batches in (BATCHES, 2 * BATCHES):
        X, y = _epoch_data(workload, batches)
        with counter.paused():
            model = _sega_model(workload, backend)
        # One epoch first, untimed and uncounted: it builds the optimizer state.
        # The benchmark's settings: no accuracy tracked per batch.
        model.train(X[: workload.batch_size], y[: workload.batch_size], epochs=1, batch_size=workload.batch_size,
                    optimizer="adam", lr=1e-3, progress=False, track_metrics=False)
        mark = counter.mark()
        model.train(X, y, epochs=1, batch_size=workload.batch_size, optimizer=None, lr=None, progress=False,
                    track_metrics=False)
        events.append(counter.since(mark))
    short, long = events
    per_batch = collections.Counter(name for name, _ in long["launches"])
    per_batch.subtract(name for name, _ in short["launches"])
    kernels = {name: count / BATCHES for name, count in per_batch.most_common() if count}
    return {
        "launches_per_batch": (len(long["launches"]) - len(short["launches"])) / BATCHES,
        "gemms_per_batch": kernels.get("gemm", 0),
        "kernels_per_batch": kernels,
        "host_reads_per_epoch": len(long["syncs"]),
        "host_reads_per_extra_batch": (len(long["syncs"]) - len(short["syncs"])) / BATCHES,
        "uploads_per_call": len(long["uploads"]),
        "launches_outside_batches": 2 * len(short["launches"]) - len(long["launches"]),
    }


def device_counts(workload) -> dict:
    """Device operations (kernels, copies, memsets) per batch and device-to-host copies per epoch
    on the real GPU, through PyTorch's CUPTI profiler, for sega[cupy] and PyTorch eager."""
    import torch

    from benchmarks.runner_sega import SegaRunner
    from benchmarks.runner_torch import TorchRunner
    from benchmarks.workloads import Dataset

    def count(make_runner) -> dict:
        from torch.profiler import ProfilerActivity, profile

        runners = {}
        for batches in (BATCHES, 2 * BATCHES):
            X, y = _epoch_data(workload, batches)
            runner = runners[batches] = make_runner(Dataset(X, y, X[:1], y[:1], X.nbytes))
            runner.epoch()  # warm-up: compiles every kernel, fills the memory pools, builds Adam's state
        ops = []
        for batches, runner in runners.items():
            torch.cuda.synchronize()
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                runner.epoch()
                torch.cuda.synchronize()
            events = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
            reads = [e for e in events if "DtoH" in e.name or "D2H" in e.name]
            ops.append((len(events), len(reads)))
        (short, _), (long, reads) = ops
        return {"device_ops_per_batch": (long - short) / BATCHES, "dtoh_copies_per_epoch": reads}

    return {
        "sega[cupy]": count(lambda data: SegaRunner(workload.name, data, "cupy")),
        "torch-cuda": count(lambda data: TorchRunner(workload.name, data, threads=1, gpu=True)),
    }


def main(argv=None) -> int:
    """Print (and with ``--json`` write) the counts of every GPU workload."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workload", default="all", help="a comma list of GPU workloads (default: all of them)")
    p.add_argument("--device", action="store_true", help="also count on the real GPU (needs CUDA, CuPy and PyTorch)")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the counts as JSON")
    args = p.parse_args(argv)
    gpu_workloads = [n for n, w in WORKLOADS.items() if w.gpu_target is not None]
    names = gpu_workloads if args.workload == "all" else [n.strip() for n in args.workload.split(",") if n.strip()]
    results = {}
    print("| workload | launches/batch | GEMMs/batch | host reads/epoch | most launched (per batch) |")
    print("|---|---:|---:|---:|---|")
    for name in names:
        workload = WORKLOADS[name]
        counts = {}
        if shutil.which("g++") is None:
            print(f"| {workload.key} {name} | no g++ here: the CPU emulation of CUDA needs one | | | |", flush=True)
        else:
            e = counts["emulated"] = emulated_counts(workload)
            top = ", ".join(f"{k} {v:g}" for k, v in list(e["kernels_per_batch"].items())[:8])
            print(f"| {workload.key} {name} | {e['launches_per_batch']:g} | {e['gemms_per_batch']:g} "
                  f"| {e['host_reads_per_epoch']} | {top} |", flush=True)
        if args.device:
            counts["device"] = device_counts(workload)
            for label, c in counts["device"].items():
                print(f"|   on the GPU, {label} | {c['device_ops_per_batch']:g} device operations | | "
                      f"{c['dtoh_copies_per_epoch']} device-to-host copies | |", flush=True)
        results[name] = counts
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
