"""Child process of the harness: one framework (or one sega backend) on one workload.

The parent starts it with a JSON spec as its only argument and the thread variables
(``OMP_NUM_THREADS`` ...) already in its environment, so they are in force before NumPy or
PyTorch is imported. The child loads the data set the parent saved (``data_dir``; without one
it builds it itself), builds the model, says ``ready``, then obeys one command per line on
stdin: ``epoch`` (train one epoch, reply with its wall and CPU times) or ``finish``
(reply with the test accuracy and the peak memory, then exit). Replies are JSON lines on the
original stdout; anything a library prints goes to stderr instead.

Peak memory is this process's peak resident set size (``VmHWM`` of ``/proc/self/status``,
interpreter and imports included); ``ru_maxrss`` is reported too, but on Linux it inherits the
parent's size at fork (see :func:`ru_maxrss_bytes`).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

#: Prefix of protocol lines, so stray output can never be mistaken for a reply.
PREFIX = "@@bench "


def current_rss_bytes() -> int:
    """Resident set size of this process now (Linux ``/proc/self/statm``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def ru_maxrss_bytes() -> int:
    """``getrusage(RUSAGE_SELF).ru_maxrss`` in bytes (KiB on Linux, bytes on macOS).

    On Linux it never falls below the parent's resident size at the fork that started this
    process (the kernel carries the old address space's high-water mark through ``exec``), so
    it overstates a small child of a big parent; :func:`peak_rss_bytes` does not.
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


def peak_rss_bytes() -> int:
    """Peak resident set size of this process's own address space (``VmHWM``), else ``ru_maxrss``."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return ru_maxrss_bytes()


def runqueue_wait_seconds() -> float | None:
    """Seconds this process's threads have spent runnable but waiting for a CPU (Linux schedstat).

    It grows only when other work holds the CPUs, so its increase over an epoch measures how
    much that epoch was disturbed (0 = it had the cores to itself). None where unsupported.
    """
    total = 0
    try:
        for entry in os.scandir("/proc/self/task"):
            with open(f"/proc/self/task/{entry.name}/schedstat") as f:
                total += int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return total / 1e9


def use_sources(root: str) -> None:
    """Import sega's core and bundled backends from the repository copy at ``root`` (the harness's
    ``--baseline``) instead of the installed ones; the entry points still name the same modules."""
    packages = [root] + [os.path.join(root, name, "src") for name in sorted(os.listdir(root))
                         if name.startswith("sega_backend_") and os.path.isdir(os.path.join(root, name, "src"))]
    sys.path[0:0] = packages


def make_runner(spec: dict, data):
    """The runner object for ``spec`` (framework, workload, backend, threads, gpu)."""
    framework = spec["framework"]
    if framework == "sega":
        from benchmarks.runner_sega import SegaRunner

        backend = spec["backend"]
        if spec.get("emulate"):  # the GPU benchmark's dry run: the cupy backend on the CPU emulation
            from benchmarks.gpu.emulation import emulated_cupy_backend

            backend = emulated_cupy_backend()
        return SegaRunner(spec["workload"], data, backend, track_metrics=spec.get("track_metrics", False))
    if framework == "torch":
        from benchmarks.runner_torch import TorchRunner

        return TorchRunner(spec["workload"], data, spec["threads"], gpu=spec.get("gpu", False) and not spec.get("emulate"),
                           track_metrics=spec.get("track_metrics", False), compiled=spec.get("compiled", False))
    if framework == "sklearn":
        from benchmarks.runner_sklearn import SklearnRunner

        return SklearnRunner(spec["workload"], data)
    raise ValueError(f"unknown framework {framework!r}")


def main(argv: list[str] | None = None) -> int:
    """Run the command loop described in the module docstring."""
    argv = sys.argv[1:] if argv is None else argv
    spec = json.loads(argv[0])
    # Replies go to the real stdout; everything else printed to fd 1 lands on stderr.
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def reply(obj):
        proto.write(PREFIX + json.dumps(obj) + "\n")
        proto.flush()

    try:
        threads = int(spec["threads"])
        if hasattr(os, "sched_setaffinity") and threads < (os.cpu_count() or threads):
            try:
                os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:threads]))
            except OSError:
                pass
        rss_start = current_rss_bytes()
        if spec.get("source"):
            use_sources(spec["source"])
        from benchmarks.workloads import load_dataset, load_saved_dataset

        t0 = time.perf_counter()
        if spec.get("data_dir"):
            data = load_saved_dataset(spec["data_dir"])
        else:
            data = load_dataset(spec["workload"], spec["size"])
        t1 = time.perf_counter()
        runner = make_runner(spec, data)
        t2 = time.perf_counter()
        reply({"event": "ready", "data_seconds": t1 - t0, "build_seconds": t2 - t1, "rss_start_bytes": rss_start,
               "dataset_bytes": data.nbytes, "n_train": data.n_train, "n_test": len(data.X_test)})
        for line in sys.stdin:
            command = line.strip()
            if command == "epoch":
                cpu0, wait0 = time.process_time(), runqueue_wait_seconds()
                timing = runner.epoch()
                cpu1, wait1 = time.process_time(), runqueue_wait_seconds()
                waited = None if wait0 is None or wait1 is None else wait1 - wait0
                reply({"event": "epoch", "cpu_seconds": cpu1 - cpu0, "runqueue_wait_seconds": waited, **timing})
            elif command == "finish":
                peak_train = peak_rss_bytes()
                accuracy = runner.accuracy()
                reply({"event": "finish", "accuracy": accuracy, "peak_rss_train_bytes": peak_train,
                       "peak_rss_bytes": peak_rss_bytes(), "ru_maxrss_bytes": ru_maxrss_bytes(),
                       **runner.device_memory()})
                return 0
            elif command:
                raise ValueError(f"unknown command {command!r}")
        return 0
    except BaseException as exc:  # report any failure to the parent, then exit non-zero
        reply({"event": "error", "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()})
        return 1


if __name__ == "__main__":
    sys.exit(main())
