"""Measurements besides epoch times: import time, Numba compile time, per-batch overhead,
the float32 GEMM floor of the machine, and where time goes on each workload.

Examples::

    python benchmarks/extras.py                       # everything
    python benchmarks/extras.py import-time gemm      # some of it
    python benchmarks/extras.py profile --profile-workloads cnn,rnn --json benchmarks/results/extras.json

Tasks (each measurement runs in fresh subprocesses with the thread variables set, as in run.py):

- ``import-time``: ``import sega_core`` in a fresh interpreter (median of ``--repeats``), with
  ``import numpy`` alone and ``sega_core.get_backend("numpy")`` (entry-point scan + plugin import
  + dispatch table) for scale.
- ``compile``: for every CPU backend whose status is ok (Numba above all): the first training
  batch of the tiny W3 and W4 models in a new process, cold (an empty ``NUMBA_CACHE_DIR``) and
  warm (the same cache, another new process), and the time from process start to those batches;
  for Numba also cold with both models' kernels compiled first on ``--threads`` processes
  (``compile_all(groups=..., jobs=...)``, what ``compile_numba=True`` does).
- ``overhead``: W1 (digits, batch 16) per-batch time split into time inside kernels (every entry
  of ``model.backend.kernels`` wrapped with a timer) and the rest (framework overhead), with the
  top non-kernel Python functions from cProfile; PyTorch's per-batch time for scale.
- ``gemm``: GFLOP/s of large float32 matrix products (NumPy, and PyTorch when installed) on
  ``--threads`` threads, and the time of one W2 epoch's matrix products alone at W2's shapes.
- ``profile``: for each workload on the NumPy backend, per-kernel time of one epoch and the top
  functions of a cProfile of another epoch.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.run import child_env, log, machine_info, sega_backends  # noqa: E402
from benchmarks.worker import PREFIX  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TASKS = ("import-time", "compile", "overhead", "gemm", "profile")


# ---- plumbing -----------------------------------------------------------------------------

def _child(task: str, spec: dict, threads: int, env_extra: dict | None = None, timeout: float = 1800) -> dict:
    """Run ``task`` of this file in a fresh process; return its JSON reply."""
    env = child_env(threads)
    env.update(env_extra or {})
    spec = {**spec, "spawned_at": time.time()}
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", task, json.dumps(spec)],
                          env=env, cwd=str(ROOT), capture_output=True, text=True, timeout=timeout)
    for line in proc.stdout.splitlines():
        if line.startswith(PREFIX):
            return json.loads(line[len(PREFIX):])
    raise RuntimeError(f"{task} child failed (status {proc.returncode}):\n{proc.stderr[-3000:]}")


def _python(code: str, threads: int) -> float:
    """Wall seconds of ``python -c code`` in a fresh process."""
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=child_env(threads), cwd=str(ROOT), check=True,
                   capture_output=True)
    return time.perf_counter() - t


def _python_out(code: str, threads: int) -> str:
    return subprocess.run([sys.executable, "-c", code], env=child_env(threads), cwd=str(ROOT), check=True,
                          capture_output=True, text=True).stdout.strip()


def _ok_cpu_backends(threads: int) -> list[str]:
    return [b["name"] for b in sega_backends(threads) if b["status"] == "ok" and b["device"] == "cpu"]


# ---- import time --------------------------------------------------------------------------

def import_time(threads: int, repeats: int) -> dict:
    """Median seconds of importing numpy, sega_core, and resolving the numpy backend, fresh each time."""
    timed = (
        "import time; t = time.perf_counter(); import {mod}; print(time.perf_counter() - t)"
    )
    backend = (
        "import time; t = time.perf_counter(); import sega_core; t1 = time.perf_counter(); "
        "sega_core.get_backend('numpy'); print(t1 - t, time.perf_counter() - t1)"
    )
    heavy = (
        "import sys, sega_core; print(','.join(sorted(m for m in ('numba', 'cupy', 'torch', 'sklearn', 'scipy', "
        "'matplotlib', 'pluggy') if m in sys.modules)))"
    )
    out = {"repeats": repeats}
    for label, mod in (("numpy_s", "numpy"), ("sega_core_s", "sega_core")):
        out[label] = statistics.median(float(_python_out(timed.format(mod=mod), threads)) for _ in range(repeats))
    pairs = [tuple(map(float, _python_out(backend, threads).split())) for _ in range(repeats)]
    out["get_backend_numpy_s"] = statistics.median(p[1] for p in pairs)
    out["interpreter_start_s"] = statistics.median(_python("pass", threads) for _ in range(repeats))
    out["process_import_sega_core_s"] = statistics.median(_python("import sega_core", threads) for _ in range(repeats))
    out["heavy_modules_after_import"] = _python_out(heavy, threads)
    return out


# ---- compile time -------------------------------------------------------------------------

def child_first_batch(spec: dict) -> dict:
    """(child) Time the first (and second) training batch of tiny W3 and W4 models on a backend."""
    t_import = time.perf_counter()
    import sega_core

    from benchmarks.workloads import get_workload, load_dataset, sega_layers

    out = {"import_s": time.perf_counter() - t_import}
    if spec.get("ahead_jobs"):
        from sega_backend_numba.compile import compile_all, groups_for

        # Both models train with Adam.
        groups = set(groups_for(sega_layers("cnn"), ["adam"])) | set(groups_for(sega_layers("rnn"), ["adam"]))
        t = time.perf_counter()
        compile_all(groups=groups, jobs=spec["ahead_jobs"])
        out["ahead_compile_s"] = time.perf_counter() - t
    for name in ("cnn", "rnn"):
        data = load_dataset(name, "tiny")
        bs = get_workload(name).batch_size
        X, y = data.X_train[:bs], data.y_train[:bs]
        model = sega_core.NeuralNetwork(layers=sega_layers(name), backend=spec["backend"], seed=0)
        t = time.perf_counter()
        model.train(X, y, optimizer="adam", lr=1e-3, epochs=1, batch_size=bs, progress=False)
        out[f"{name}_first_batch_s"] = time.perf_counter() - t
        out[f"{name}_since_process_start_s"] = time.time() - spec["spawned_at"]
        t = time.perf_counter()
        model.train(X, y, optimizer=None, epochs=1, batch_size=bs, progress=False)
        out[f"{name}_second_batch_s"] = time.perf_counter() - t
    return out


def _median_dicts(runs: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def compile_time(threads: int, backends: list[str], repeats: int = 3) -> dict:
    """Cold (empty cache) and warm (cached, new process) first batches per backend; medians of ``repeats``."""
    out = {}
    for backend in backends:
        runs: dict[str, list] = {"cold": [], "warm": []}
        if backend == "numba":
            runs["cold, ahead"] = []
        files = 0
        for _ in range(repeats):
            for kind in runs:
                if kind == "warm":
                    continue
                with tempfile.TemporaryDirectory(prefix="sega-numba-cache-") as cache:
                    env = {"NUMBA_CACHE_DIR": cache}
                    log(f"  compile: {backend} {kind}")
                    spec = {"backend": backend, "ahead_jobs": threads if kind == "cold, ahead" else 0}
                    runs[kind].append(_child("first-batch", spec, threads, env))
                    if kind == "cold":
                        log(f"  compile: {backend} warm")
                        runs["warm"].append(_child("first-batch", {"backend": backend}, threads, env))
                        files = sum(1 for f in Path(cache).rglob("*") if f.is_file())
        out[backend] = {kind: _median_dicts(r) for kind, r in runs.items()}
        out[backend].update({"cache_files": files, "repeats": repeats, "runs": runs, "ahead_jobs": threads})
    return out


# ---- per-batch overhead on W1 -------------------------------------------------------------

def _epoch_seconds(model, data, bs, first: bool) -> float:
    kwargs = dict(optimizer="adam", lr=1e-3) if first else dict(optimizer=None)
    t = time.perf_counter()
    model.train(data.X_train, data.y_train, epochs=1, batch_size=bs, progress=False, track_metrics=False, **kwargs)
    return time.perf_counter() - t


def _top_functions(profile: cProfile.Profile, n: int, skip=()) -> list[dict]:
    stats = pstats.Stats(profile).stats
    rows = []
    for (filename, line, func), (cc, nc, tt, ct, _callers) in stats.items():
        short = filename
        for marker in ("site-packages/", "/work/main/", str(ROOT) + "/"):
            if marker in short:
                short = short.split(marker, 1)[1]
        where = f"{short}:{line}({func})" if line else func
        if any(s in where for s in skip):
            continue
        rows.append({"function": where, "calls": nc, "tottime_s": tt, "cumtime_s": ct})
    rows.sort(key=lambda r: -r["tottime_s"])
    return rows[:n]


def child_overhead(spec: dict) -> dict:
    """(child) W1 per-batch time: inside kernels vs. the rest, on one backend."""
    import sega_core

    from benchmarks.kerneltime import KernelTimer
    from benchmarks.workloads import get_workload, load_dataset, sega_layers

    name, epochs = "mlp-small", spec["epochs"]
    data = load_dataset(name, "full")
    bs = get_workload(name).batch_size
    batches = -(-data.n_train // bs)
    backend = sega_core.get_backend(spec["backend"])
    timer = KernelTimer(backend).wrap()
    wrapped = sega_core.NeuralNetwork(layers=sega_layers(name), backend=backend.name, seed=0)
    _epoch_seconds(wrapped, data, bs, True)
    kernel_s, wrapped_s = [], []
    for _ in range(epochs):
        timer.reset()
        wrapped_s.append(_epoch_seconds(wrapped, data, bs, False))
        kernel_s.append(timer.total_seconds())
    per_kernel = {k: {"calls_per_batch": v["calls"] / batches, "us_per_batch": v["seconds"] / batches * 1e6}
                  for k, v in timer.report().items()}
    timer.unwrap()
    plain = sega_core.NeuralNetwork(layers=sega_layers(name), backend=backend.name, seed=0)
    _epoch_seconds(plain, data, bs, True)
    plain_s = [_epoch_seconds(plain, data, bs, False) for _ in range(epochs)]
    prof = cProfile.Profile()
    prof.enable()
    _epoch_seconds(plain, data, bs, False)
    prof.disable()
    epoch = statistics.median(plain_s)
    kernels = statistics.median(kernel_s)
    return {
        "backend": backend.name,
        "batches_per_epoch": batches,
        "epoch_s": epoch,
        "batch_us": epoch / batches * 1e6,
        "kernel_us_per_batch": kernels / batches * 1e6,
        "overhead_us_per_batch": (epoch - kernels) / batches * 1e6,
        "overhead_share": (epoch - kernels) / epoch,
        "wrapped_epoch_s": statistics.median(wrapped_s),
        "kernels": per_kernel,
        "top_functions_cprofile": _top_functions(prof, 20),
    }


def child_torch_w1(spec: dict) -> dict:
    """(child) PyTorch's per-batch time on W1, for scale."""
    from benchmarks.runner_torch import TorchRunner
    from benchmarks.workloads import get_workload, load_dataset

    data = load_dataset("mlp-small", "full")
    runner = TorchRunner("mlp-small", data, spec["threads"])
    runner.epoch()
    times = [runner.epoch()["seconds"] for _ in range(spec["epochs"])]
    batches = -(-data.n_train // get_workload("mlp-small").batch_size)
    return {"epoch_s": statistics.median(times), "batch_us": statistics.median(times) / batches * 1e6,
            "threads": spec["threads"]}


def overhead(threads: int, backends: list[str], epochs: int, with_torch: bool) -> dict:
    """Per-batch framework overhead on W1 for each backend (and PyTorch's per-batch time)."""
    out = {}
    for backend in backends:
        log(f"  overhead: {backend}")
        out[backend] = _child("overhead", {"backend": backend, "epochs": epochs}, threads)
    if with_torch:
        for t in sorted({threads, 1}):
            log(f"  overhead: torch ({t} thread(s))")
            out[f"torch-{t}thread"] = _child("torch-w1", {"epochs": epochs, "threads": t}, t)
    return out


# ---- GEMM floor ---------------------------------------------------------------------------

def _best(fn, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def child_gemm(spec: dict) -> dict:
    """(child) float32 GEMM GFLOP/s and one W2 epoch's GEMMs, NumPy and (if present) PyTorch."""
    import numpy as np

    from benchmarks.workloads import gemm_flops_per_sample

    out = {"numpy": {}, "torch": {}}
    rng = np.random.default_rng(0)
    sizes = (1024, 2048, 4096)
    for n in sizes:
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        c = np.empty((n, n), dtype=np.float32)
        t = _best(lambda: np.matmul(a, b, out=c), 5 if n < 4096 else 3)
        out["numpy"][f"square_{n}_gflops"] = 2 * n**3 / t / 1e9

    # One W2 epoch's matrix products at W2's shapes (48000 samples, batch 128).
    bs, dims, n_train = 128, (784, 512, 256, 10), 48000
    batches = n_train // bs

    def w2_gemms(lib):
        if lib == "numpy":
            xp, mm = np, (lambda a, b, o: np.matmul(a, b, out=o))
            mk = lambda *s: rng.standard_normal(s, dtype=np.float32)  # noqa: E731
        else:
            import torch

            xp = torch
            mm = lambda a, b, o: torch.matmul(a, b, out=o)  # noqa: E731
            mk = lambda *s: torch.randn(*s)  # noqa: E731
        acts = [mk(bs, d) for d in dims]
        ws = [mk(a, b) for a, b in zip(dims[:-1], dims[1:])]
        gws = [mk(a, b) for a, b in zip(dims[:-1], dims[1:])]
        outs = [mk(bs, d) for d in dims]

        def batch():
            for i, w in enumerate(ws):  # forward
                mm(acts[i], w, outs[i + 1])
            for i, w in enumerate(ws):  # weight gradients: x.T @ dz
                mm(acts[i].T, outs[i + 1], gws[i])
            for i in range(1, len(ws)):  # input gradients except the first layer: dz @ W.T
                mm(outs[i + 1], ws[i].T, acts[i])

        def epoch():
            for _ in range(batches):
                batch()

        del xp
        return _best(epoch, 3)

    flops = gemm_flops_per_sample("mlp-large") * batches * bs
    out["w2_epoch_gflop"] = flops / 1e9
    t = w2_gemms("numpy")
    out["numpy"]["w2_epoch_gemm_s"] = t
    out["numpy"]["w2_epoch_gemm_gflops"] = flops / t / 1e9
    try:
        import torch
    except ImportError:
        out.pop("torch")
        return out
    torch.set_num_threads(spec["threads"])
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        c = torch.empty(n, n)
        t = _best(lambda: torch.matmul(a, b, out=c), 5 if n < 4096 else 3)
        out["torch"][f"square_{n}_gflops"] = 2 * n**3 / t / 1e9
    t = w2_gemms("torch")
    out["torch"]["w2_epoch_gemm_s"] = t
    out["torch"]["w2_epoch_gemm_gflops"] = flops / t / 1e9
    return out


def gemm(threads: int) -> dict:
    """The GEMM floor measurements, in a fresh process with ``threads`` threads."""
    out = _child("gemm", {"threads": threads}, threads)
    out["threads"] = threads
    peak = max(out["numpy"][k] for k in out["numpy"] if k.startswith("square_"))
    out["numpy_peak_gflops"] = peak
    out["w2_floor_s_at_numpy_peak"] = out["w2_epoch_gflop"] / peak
    if out.get("torch"):
        tpeak = max(out["torch"][k] for k in out["torch"] if k.startswith("square_"))
        out["torch_peak_gflops"] = tpeak
        out["w2_floor_s_at_best_peak"] = out["w2_epoch_gflop"] / max(peak, tpeak)
    return out


# ---- profiles -----------------------------------------------------------------------------

def child_profile(spec: dict) -> dict:
    """(child) One workload on one backend: per-kernel time of one epoch, cProfile of another."""
    import sega_core

    from benchmarks.kerneltime import KernelTimer
    from benchmarks.workloads import get_workload, load_dataset, sega_layers

    name = spec["workload"]
    data = load_dataset(name, spec.get("size", "full"))
    bs = get_workload(name).batch_size
    batches = -(-data.n_train // bs)
    backend = sega_core.get_backend(spec["backend"])
    timer = KernelTimer(backend).wrap()
    model = sega_core.NeuralNetwork(layers=sega_layers(name), backend=backend.name, seed=0)
    warm = _epoch_seconds(model, data, bs, True)
    timer.reset()
    epoch = _epoch_seconds(model, data, bs, False)
    in_kernels = timer.total_seconds()
    kernels = {k: {"calls_per_batch": v["calls"] / batches, "ms_per_epoch": v["seconds"] * 1e3,
                   "share": v["seconds"] / epoch} for k, v in timer.report().items()}
    prof = cProfile.Profile()
    prof.enable()
    profiled = _epoch_seconds(model, data, bs, False)
    prof.disable()
    return {
        "workload": name,
        "backend": backend.name,
        "warmup_epoch_s": warm,
        "epoch_s": epoch,
        "profiled_epoch_s": profiled,
        "outside_kernels_share": 1 - in_kernels / epoch,
        "kernels": kernels,
        "top_functions_cprofile": _top_functions(prof, 20, skip=("timed_",)),
    }


def profile(threads: int, workloads: list[str], backend: str, size: str) -> dict:
    """Per-kernel and cProfile breakdowns of each workload on ``backend``."""
    out = {}
    for name in workloads:
        log(f"  profile: {name} on {backend}")
        out[name] = _child("profile", {"workload": name, "backend": backend, "size": size}, threads)
    return out


# ---- printing -----------------------------------------------------------------------------

def format_results(res: dict) -> str:
    """Human-readable summary of whatever was measured."""
    lines = []
    if "import-time" in res:
        r = res["import-time"]
        lines += ["## Import time (median of %d fresh processes)" % r["repeats"], "",
                  f"- import numpy: {r['numpy_s'] * 1e3:.0f} ms",
                  f"- import sega_core (numpy included): {r['sega_core_s'] * 1e3:.0f} ms",
                  f"- sega_core.get_backend('numpy') after that (entry points, plugin, table): "
                  f"{r['get_backend_numpy_s'] * 1e3:.0f} ms",
                  f"- `python -c 'import sega_core'` wall: {r['process_import_sega_core_s'] * 1e3:.0f} ms "
                  f"(bare interpreter {r['interpreter_start_s'] * 1e3:.0f} ms)",
                  f"- heavy modules loaded by `import sega_core`: {r['heavy_modules_after_import'] or 'none'}", ""]
    if "compile" in res:
        lines += ["## First training batch in a new process (tiny W3, then W4; medians)", "",
                  "| backend | cache | import s | W3 1st batch s | W3 2nd s | W4 1st batch s | W4 2nd s | start -> W3 batch s | start -> W4 batch s |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for backend, r in res["compile"].items():
            for kind in ("cold", "cold, ahead", "warm"):
                if kind not in r:
                    continue
                c = r[kind]
                label = f"cold, compiled ahead on {r['ahead_jobs']} processes in {c['ahead_compile_s']:.1f} s" \
                    if kind == "cold, ahead" else kind
                lines.append(
                    f"| {backend} | {label} | {c['import_s']:.2f} | {c['cnn_first_batch_s']:.2f} | {c['cnn_second_batch_s']:.3f} "
                    f"| {c['rnn_first_batch_s']:.2f} | {c['rnn_second_batch_s']:.3f} | {c['cnn_since_process_start_s']:.2f} "
                    f"| {c['rnn_since_process_start_s']:.2f} |")
        lines.append("")
    if "overhead" in res:
        lines += ["## Per-batch time on W1 (digits, batch 16)", ""]
        for backend, r in res["overhead"].items():
            if backend.startswith("torch"):
                lines.append(f"- {backend}: {r['batch_us']:.0f} us/batch ({r['epoch_s'] * 1e3:.1f} ms/epoch)")
                continue
            lines.append(
                f"- sega[{backend}]: {r['batch_us']:.0f} us/batch = {r['kernel_us_per_batch']:.0f} us in kernels "
                f"+ {r['overhead_us_per_batch']:.0f} us outside them ({r['overhead_share']:.0%} overhead); "
                f"{r['epoch_s'] * 1e3:.1f} ms/epoch")
            for k, v in r["kernels"].items():
                lines.append(f"    - {k}: {v['calls_per_batch']:.0f} call(s)/batch, {v['us_per_batch']:.1f} us/batch")
        lines.append("")
    if "gemm" in res:
        r = res["gemm"]
        lines += [f"## float32 GEMM floor ({r['threads']} threads)", ""]
        for lib in ("numpy", "torch"):
            if r.get(lib):
                sq = ", ".join(f"{k.split('_')[1]}: {v:.0f}" for k, v in r[lib].items() if k.startswith("square_"))
                lines.append(f"- {lib}: square GEMM GFLOP/s {sq}; one W2 epoch's GEMMs alone "
                             f"{r[lib]['w2_epoch_gemm_s']:.2f} s ({r[lib]['w2_epoch_gemm_gflops']:.0f} GFLOP/s)")
        lines.append(f"- W2 epoch: {r['w2_epoch_gflop']:.1f} GFLOP of matrix products; floor at NumPy's peak "
                     f"{r['w2_floor_s_at_numpy_peak']:.2f} s")
        lines.append("")
    if "profile" in res:
        lines += ["## Where time goes (per kernel, one epoch)", ""]
        for name, r in res["profile"].items():
            lines.append(f"### {name} on {r['backend']}: {r['epoch_s']:.3f} s/epoch, "
                         f"{r['outside_kernels_share']:.0%} outside kernels")
            for k, v in list(r["kernels"].items())[:8]:
                lines.append(f"- {k}: {v['ms_per_epoch']:.0f} ms ({v['share']:.0%}), {v['calls_per_batch']:.0f}/batch")
            lines.append("- cProfile top (tottime): " + "; ".join(
                f"{f['function']} {f['tottime_s']:.2f}s" for f in r["top_functions_cprofile"][:6]))
            lines.append("")
    return "\n".join(lines)


CHILD_TASKS = {
    "first-batch": child_first_batch,
    "overhead": child_overhead,
    "torch-w1": child_torch_w1,
    "gemm": child_gemm,
    "profile": child_profile,
}


def main(argv=None) -> int:
    """Run the requested extra measurements; print a summary; optionally write JSON."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        result = CHILD_TASKS[argv[1]](json.loads(argv[2]))
        print(PREFIX + json.dumps(result), flush=True)
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="tasks: " + ", ".join(TASKS) + " (default: all)")
    p.add_argument("tasks", nargs="*", default=[], help="which measurements (default all)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--repeats", type=int, default=7, help="fresh processes per import-time measurement")
    p.add_argument("--epochs", type=int, default=10, help="epochs measured by the overhead task")
    p.add_argument("--backends", default=None, help="sega backends for compile/overhead (default: ok CPU backends)")
    p.add_argument("--profile-workloads", default="mlp-small,mlp-large,cnn,rnn")
    p.add_argument("--profile-backend", default="numpy")
    p.add_argument("--size", choices=("full", "tiny"), default="full", help="data size of the profile task")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--json", default=None, metavar="PATH")
    args = p.parse_args(argv)
    tasks = args.tasks or list(TASKS)
    bad = [t for t in tasks if t not in TASKS]
    if bad:
        p.error(f"unknown task(s) {', '.join(bad)}; choose from {', '.join(TASKS)}")
    backends = args.backends.split(",") if args.backends else _ok_cpu_backends(args.threads)
    with_torch = not args.no_torch and __import__("importlib").util.find_spec("torch") is not None
    res: dict = {"meta": {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine_info(),
                          "threads": args.threads}}
    for task in tasks:
        log(f"[{task}]")
        if task == "import-time":
            res[task] = import_time(args.threads, args.repeats)
        elif task == "compile":
            res[task] = compile_time(args.threads, backends, max(1, min(3, args.repeats)))
        elif task == "overhead":
            res[task] = overhead(args.threads, backends, args.epochs, with_torch)
        elif task == "gemm":
            res[task] = gemm(args.threads)
        elif task == "profile":
            res[task] = profile(args.threads, args.profile_workloads.split(","), args.profile_backend, args.size)
        print(format_results({task: res[task]}), flush=True)
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
