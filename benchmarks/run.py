"""Benchmark sega's backends against PyTorch eager and scikit-learn on four training workloads
(see ``workloads.py``).

Examples::

    python benchmarks/run.py --workload cnn --backends numpy,numba
    python benchmarks/run.py --workload all --json benchmarks/results/cpu.json
    python benchmarks/run.py --workload all --gpu          # CuPy backend vs PyTorch CUDA, eager and compiled
    python benchmarks/run.py --gpu --emulate --size tiny   # the same on the CPU emulation of CUDA (dry run)
    python benchmarks/run.py --size tiny --epochs 1 --warmup 0 --no-torch   # smoke run

Every framework and every sega backend runs in its own subprocess (``benchmarks/worker.py``),
with ``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS``/``MKL_NUM_THREADS``/``NUMBA_NUM_THREADS`` set
to ``--threads`` before anything is imported, and pinned to that many cores. The processes stay
alive side by side and the parent hands out epochs in turn (round-robin, rotating who goes
first), so slow drifts of the machine hit every framework alike. One epoch is warm-up; the
reported time is the median of the timed epochs.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.report import add_ratios, format_table, summarise_row, write_json  # noqa: E402
from benchmarks.workloads import WORKLOADS, gemm_flops_per_sample, load_dataset, save_dataset  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "worker.py"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
#: Pause between two workers' epochs, so one's spinning BLAS/OpenMP threads have gone idle.
SETTLE_SECONDS = 0.3


def log(message: str) -> None:
    """Progress on stderr (stdout carries the tables)."""
    print(message, file=sys.stderr, flush=True)


def child_env(threads: int, gpu: bool = False) -> dict:
    """The environment of a worker: thread counts fixed, the repository importable; on a GPU,
    CuPy's TF32 off (PyTorch's is turned off in its runner), so both multiply in float32."""
    env = dict(os.environ)
    for name in THREAD_VARIABLES:
        env[name] = str(threads)
    if gpu:
        env["CUPY_TF32"] = "0"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def sega_backends(threads: int) -> list[dict]:
    """``sega_core.list_backends()`` as seen by a fresh process (name, status, device, reason)."""
    code = (
        "import json, warnings\n"
        "warnings.simplefilter('ignore')\n"
        "import sega_core\n"
        "print(json.dumps([{k: b[k] for k in ('name', 'status', 'device', 'reason')} for b in sega_core.list_backends()]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=child_env(threads), capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def gpu_info() -> list[str]:
    """``name, driver, memory`` of each NVIDIA GPU (``nvidia-smi``), or nothing without one."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []


def machine_info() -> dict:
    """CPU model, logical CPUs, memory, GPUs, OS and library versions, for the record."""
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpu_count": os.cpu_count()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    versions = {}
    for module in ("numpy", "sega_core", "sklearn", "torch", "numba", "cupy"):
        if importlib.util.find_spec(module) is None:
            continue
        try:
            from importlib import metadata

            dist = {"sklearn": "scikit-learn", "sega_core": "sega-core"}.get(module, module)
            versions[module] = metadata.version(dist)
        except Exception:
            versions[module] = "?"
    info["versions"] = versions
    info["gpus"] = gpu_info()
    return info


def cpu_busy_seconds() -> float | None:
    """CPU-seconds all processes of the machine have used since boot (``/proc/stat``), or None."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def wait_until_idle(max_wait: float, threshold: float = 0.15, window: float = 3.0) -> float | None:
    """Wait (up to ``max_wait`` s) until other processes use < ``threshold`` of the CPUs; return that share."""
    deadline = time.monotonic() + max_wait
    share = None
    while True:
        b0, t0 = cpu_busy_seconds(), time.monotonic()
        time.sleep(window)
        b1, t1 = cpu_busy_seconds(), time.monotonic()
        if b0 is None or b1 is None:
            return None
        share = (b1 - b0) / ((t1 - t0) * (os.cpu_count() or 1))
        if share < threshold or time.monotonic() >= deadline:
            return share
        log(f"  waiting for a quiet machine: other processes use {share:.0%} of the CPUs")


class Worker:
    """A running ``worker.py`` child: one framework (or sega backend) on one workload."""

    def __init__(self, label: str, spec: dict, env: dict):
        self.label, self.spec = label, spec
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,  # the child's own messages go straight to our stderr
            text=True,
            bufsize=1,
            env=env,
            cwd=str(ROOT),
        )
        self.error: str | None = None

    def _read(self) -> dict:
        from benchmarks.worker import PREFIX

        for line in self.proc.stdout:
            if line.startswith(PREFIX):
                reply = json.loads(line[len(PREFIX):])
                if reply.get("event") == "error":
                    self.error = reply["error"]
                    log(f"  {self.label} failed:\n{reply.get('traceback', reply['error'])}")
                return reply
        self.error = self.error or f"worker exited with status {self.proc.wait()}"
        return {"event": "error", "error": self.error}

    def ask(self, command: str) -> dict:
        """Send one command; return the reply (an ``error`` event if the child died)."""
        if self.error:
            return {"event": "error", "error": self.error}
        try:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass
        return self._read()

    def close(self) -> None:
        """Let the child exit (or end it if it does not within a few seconds)."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def participants(workload, args, backends: list[str], torch_ok: bool) -> list[tuple[str, dict]]:
    """(label, spec) of every process that runs ``workload``."""
    base = {"workload": workload.name, "size": args.size, "threads": args.threads, "gpu": args.gpu,
            "emulate": args.emulate, "track_metrics": args.track_metrics}
    out = [(f"sega[{b}]", {**base, "framework": "sega", "backend": b}) for b in backends]
    if args.baseline:
        out += [(f"sega[{b}] before", {**base, "framework": "sega", "backend": b, "source": args.baseline})
                for b in backends]
    if torch_ok:
        torch_label = "torch-cuda" if args.gpu and not args.emulate else "torch"
        out.append((torch_label, {**base, "framework": "torch"}))
        if args.gpu and not args.no_compile:
            out.append((f"{torch_label} compiled", {**base, "framework": "torch", "compiled": True}))
    if workload.sklearn and not args.gpu and not args.no_sklearn:
        out.append(("sklearn", {**base, "framework": "sklearn"}))
    return out


def run_workload(workload, args, backends: list[str], torch_ok: bool) -> dict:
    """Run every participant of ``workload`` side by side; return its result record."""
    epochs = args.epochs if args.epochs is not None else workload.default_epochs
    if args.size == "tiny" and args.epochs is None:
        epochs = 1
    result = {"workload": workload.name, "key": workload.key, "title": workload.title,
              "batch_size": workload.batch_size, "target": workload.target,
              "targets": {b: workload.target_for(b) for b in backends}, "gpu": args.gpu, "emulated": args.emulate,
              "gpu_target": workload.gpu_target,
              "timed_epochs": epochs, "warmup": args.warmup, "rows": []}
    log(f"[{workload.key} {workload.name}] building the data set ({args.size})")
    data_dir = tempfile.mkdtemp(prefix=f"sega-bench-{workload.name}-")
    try:
        save_dataset(load_dataset(workload.name, args.size), data_dir)
        return _run_workers(workload, args, backends, torch_ok, epochs, result, data_dir)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _run_workers(workload, args, backends, torch_ok, epochs, result, data_dir) -> dict:
    env = child_env(args.threads, args.gpu and not args.emulate)
    workers: list[Worker] = []
    rows: dict[str, dict] = {}
    if args.wait_idle:
        share = wait_until_idle(args.wait_idle)
        if share is not None:
            result["other_load_start"] = share
    result["loadavg_start"] = _loadavg()
    if result["loadavg_start"] and result["loadavg_start"][0] > 0.5:
        log(f"  note: the machine is busy (1-min load {result['loadavg_start'][0]:.2f}); expect noisy times")
    specs = participants(workload, args, backends, torch_ok)
    if not specs:
        log(f"[{workload.key} {workload.name}] nothing to run (no backend selected, PyTorch and scikit-learn off)")
    log(f"[{workload.key} {workload.name}] starting {len(specs)} process(es)")
    for label, spec in specs:
        spec = {**spec, "data_dir": data_dir}
        row = {"label": label, "framework": spec["framework"], "backend": spec.get("backend"),
               "source": spec.get("source"), "compiled": spec.get("compiled", False),
               "epoch_seconds": [], "inner_seconds": [], "cpu_seconds": [], "wait_seconds": [],
               "warmup_seconds": [], "discarded_seconds": [], "losses": []}
        rows[label] = row
        result["rows"].append(row)
        worker = Worker(label, spec, env)
        ready = worker._read()  # set up one at a time: data generation does not overlap
        if ready.get("event") != "ready":
            row["error"] = ready.get("error", "no ready message")
            worker.close()
            continue
        row["setup"] = {k: v for k, v in ready.items() if k != "event"}
        result.setdefault("dataset_bytes", ready["dataset_bytes"])
        result.setdefault("n_train", ready["n_train"])
        result.setdefault("n_test", ready["n_test"])
        log(f"  {label}: ready (data {ready['data_seconds']:.2f} s, build {ready['build_seconds']:.2f} s)")
        workers.append(worker)
    total = args.warmup + epochs
    for r in range(total):
        timed = r >= args.warmup
        shift = r % max(1, len(workers))
        for worker in workers[shift:] + workers[:shift]:
            _run_epoch(worker, rows[worker.label], args, timed, f"{r + 1}/{total}")
    for worker in workers:
        reply = worker.ask("finish")
        row = rows[worker.label]
        if reply.get("event") == "finish":
            row.update({k: v for k, v in reply.items() if k != "event"})
        else:
            row["error"] = reply.get("error")
        worker.close()
    result["loadavg_end"] = _loadavg()
    n_train = result.get("n_train", 0)
    for row in result["rows"]:
        summarise_row(row, n_train)
    if n_train:
        result["gemm_flops_per_epoch"] = gemm_flops_per_sample(workload.name) * n_train
    return add_ratios(result)


def _run_epoch(worker: Worker, row: dict, args, timed: bool, position: str) -> None:
    """One epoch of ``worker``; a timed epoch that was disturbed is run again (``--redo``)."""
    for attempt in range(args.redo + 1):
        if worker.error:
            return
        time.sleep(SETTLE_SECONDS)
        reply = worker.ask("epoch")
        if reply.get("event") != "epoch":
            row["error"] = reply.get("error")
            return
        row["losses"].append(reply.get("loss"))
        seconds, waited = reply["seconds"], reply.get("runqueue_wait_seconds")
        share = waited / seconds if waited is not None and seconds > 0 else None
        note = f"  (waited for a CPU {share:.0%} of the time)" if share is not None and share >= 0.01 else ""
        if not timed:
            row["warmup_seconds"].append(seconds)
            log(f"  {worker.label}: epoch {position} (warm-up) {seconds:.3f} s  loss {reply.get('loss', 0):.4f}{note}")
            return
        if share is not None and share > args.disturbed and attempt < args.redo:
            row["discarded_seconds"].append(seconds)
            log(f"  {worker.label}: epoch {position} {seconds:.3f} s discarded{note}; running it again")
            continue
        row["epoch_seconds"].append(seconds)
        row["inner_seconds"].append(reply.get("inner_seconds"))
        row["cpu_seconds"].append(reply.get("cpu_seconds"))
        row["wait_seconds"].append(waited)
        log(f"  {worker.label}: epoch {position} (timed) {seconds:.3f} s  loss {reply.get('loss', 0):.4f}{note}")
        return


def _loadavg():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def parse_args(argv=None):
    """The command line (see ``--help``)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workload", default="all", help="mlp-small, mlp-large, cnn, rnn, lenet, lstm, gru, all, or a comma list (default all; with --gpu, "
                        "all is the workloads with a GPU target)")
    p.add_argument("--backends", default=None,
                   help="comma list of sega backends (default: every backend whose status is ok; on --gpu, the non-CPU ones)")
    p.add_argument("--epochs", type=int, default=None,
                   help="timed epochs (default per workload: W1 15, W2 3, W3 3, W4 15, W5 3, W6 3; 1 at --size tiny)")
    p.add_argument("--warmup", type=int, default=1, help="untimed warm-up epochs (default 1)")
    p.add_argument("--size", choices=("full", "tiny"), default="full", help="tiny = a few hundred samples (smoke tests)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads (and cores) per framework (default: all)")
    p.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    p.add_argument("--no-sklearn", action="store_true", help="leave scikit-learn out")
    p.add_argument("--gpu", action="store_true",
                   help="CuPy backend against PyTorch CUDA, eager and torch.compile(mode='reduce-overhead') "
                        "(TF32 off on both) on the GPU workloads")
    p.add_argument("--emulate", action="store_true",
                   help="with --gpu: the CuPy backend on the CPU emulation of CUDA and PyTorch on the CPU "
                        "(a dry run of the GPU benchmark: the code paths, not the times)")
    p.add_argument("--no-compile", action="store_true", help="with --gpu: leave torch.compile's row out")
    p.add_argument("--track-metrics", action="store_true",
                   help="compute training accuracy per batch (sega's track_metrics=True; PyTorch likewise); off by default")
    p.add_argument("--redo", type=int, default=2, metavar="N",
                   help="run a timed epoch again, up to N times, when it was disturbed (default 2)")
    p.add_argument("--disturbed", type=float, default=0.05, metavar="SHARE",
                   help="an epoch is disturbed when its threads waited for a CPU longer than this share "
                        "of its time (Linux schedstat; default 0.05)")
    p.add_argument("--wait-idle", type=float, default=0, metavar="SECONDS",
                   help="before each workload, wait up to this long for other processes to leave the CPUs idle")
    p.add_argument("--baseline", default=None, metavar="DIR",
                   help="also run every sega backend from the sources in DIR, a copy of another version of "
                        "this repository (e.g. git archive REV | tar -x -C DIR), labelled 'before'")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON")
    args = p.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        p.error("--epochs must be >= 1")
    if args.warmup < 0:
        p.error("--warmup must be >= 0")
    if args.threads < 1:
        p.error("--threads must be >= 1")
    if args.emulate and not args.gpu:
        p.error("--emulate is a dry run of --gpu; give both")
    if args.baseline is not None:
        args.baseline = os.path.abspath(args.baseline)
        if not os.path.isdir(os.path.join(args.baseline, "sega_core")):
            p.error(f"--baseline {args.baseline} holds no sega_core/ (give the root of a copy of the repository)")
    return args


def main(argv=None) -> int:
    """Run the benchmarks; print one table per workload; optionally write JSON."""
    args = parse_args(argv)
    if args.workload == "all":
        names = [n for n, w in WORKLOADS.items() if w.gpu_target is not None or not args.gpu]
    else:
        names = [w.strip() for w in args.workload.split(",") if w.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        log(f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(WORKLOADS)} or all")
        return 2
    listed = sega_backends(args.threads)
    status = {b["name"]: b for b in listed}
    if args.emulate:
        backends = ["cupy"]  # its kernels on the CPU emulation, whatever its status here
    elif args.backends is None:
        backends = [b["name"] for b in listed if b["status"] == "ok" and (b["device"] != "cpu") == args.gpu]
    else:
        backends = [b.strip() for b in args.backends.split(",") if b.strip()]
        for b in backends:
            if b not in status:
                log(f"warning: sega backend {b!r} is not installed (installed: {', '.join(status)})")
            elif status[b]["status"] != "ok":
                log(f"warning: sega backend {b!r} is {status[b]['status']}: {status[b]['reason']}")
    torch_ok = not args.no_torch and importlib.util.find_spec("torch") is not None
    if not args.no_torch and not torch_ok:
        log("warning: PyTorch is not installed; running without it (no ratios)")
    log(f"backends: {', '.join(backends) or '(none)'}; threads {args.threads}; size {args.size}")
    payload = {
        "meta": {
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join([Path(sys.argv[0]).name] + (sys.argv[1:] if argv is None else list(argv))),
            "machine": machine_info(),
            "threads": args.threads,
            "size": args.size,
            "warmup": args.warmup,
            "epochs": args.epochs,
            "gpu": args.gpu,
            "emulated": args.emulate,
            "track_metrics": args.track_metrics,
            "backends": listed,
        },
        "workloads": [],
    }
    started = time.perf_counter()
    for name in names:
        result = run_workload(WORKLOADS[name], args, backends, torch_ok)
        payload["workloads"].append(result)
        print(format_table(result) + "\n", flush=True)
        if args.json:  # written after each workload, so a long run leaves partial results
            write_json(args.json, payload)
    payload["meta"]["total_seconds"] = time.perf_counter() - started
    if args.json:
        write_json(args.json, payload)
        log(f"wrote {args.json}")
    failed = [r["label"] for w in payload["workloads"] for r in w["rows"] if r.get("error")]
    if failed:
        log(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
