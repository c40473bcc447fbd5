"""The GPU proof: the CuPy backend installed from our wheels, tested and benchmarked on one GPU.

One command on a machine with an NVIDIA GPU, Python, CuPy, PyTorch, NumPy, pluggy, pytest and
scikit-learn but no package index (``benchmarks/README.md``, "The GPU proof", has the exact call):

    bash benchmarks/gpu/prove.sh                       # writes into $OUT, else ./gpu-proof
    bash benchmarks/gpu/prove.sh --parts bench         # only some parts (a rerun after a fix)
    bash benchmarks/gpu/prove.sh --dry-run --out DIR   # on a CPU: every part rehearsed

Its parts, in order, each under its own time limit and all within ``--budget`` seconds:

1. ``install``: our four wheels from ``dist/`` (``uv build --all-packages --out-dir dist``),
   ``pip install --no-index --no-deps``, so the backends' entry points are real;
2. ``backends`` and ``versions``: ``sega backends`` (cupy must be ok), the GPU, driver, CUDA and
   library versions;
3. ``cupy-tests``: ``tests/backend_cupy`` on the GPU (every layer in a whole model, files from
   the device to NumPy and back, device inputs, DLPack from PyTorch, no synchronisation in a
   captured training step...);
4. ``conformance``: ``SEGA_TEST_BACKEND=cupy pytest --pyargs sega_core.testing`` against the
   installed wheels (run outside the repository);
5. ``model-tests``: the model tests that name cupy (the preset class, the seed's CuPy example);
6. ``example``: the seed's CuPy example itself, its output shown;
7. ``bench``: ``benchmarks/run.py --gpu``: sega[cupy] against PyTorch CUDA eager and
   ``torch.compile(mode="reduce-overhead")``, float32, TF32 off, a few epochs;
8. ``launch-counts``: kernels per training batch and device-to-host copies per epoch, counted
   on the CPU emulation and on the GPU (PyTorch's CUPTI profiler).

Everything printed goes to ``prove.log`` in the output folder too; ``prove.json`` holds each
part's command, exit status, seconds and summary line, and the machine's versions; the benchmark
and the counts write ``bench.json`` and ``launches.json`` beside them.

``--dry-run`` runs the same parts on a CPU so the script cannot rot between GPU runs: the
wheels install into a throw-away folder, the test parts only collect their tests, the example is
compiled, the benchmark runs the CuPy backend on the CPU emulation of CUDA (one tiny workload),
and the counts stay on the emulation.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: The seed's CuPy example, wherever the examples folder keeps it.
EXAMPLE_CANDIDATES = ("examples/seed/cupy_backend.py", "examples/cupy_backend.py")
DISTRIBUTIONS = ("sega_core", "sega_backend_numpy", "sega_backend_numba", "sega_backend_cupy")
INFO_PREFIX = "@@info "
#: Timed epochs of each GPU workload (after one warm-up epoch).
GPU_EPOCHS = 3

INFO_SCRIPT = r"""
import json, platform, subprocess, sys
from importlib import metadata
info = {"python": platform.python_version(), "platform": platform.platform(), "versions": {}}
for dist in ("sega-core", "sega-backend-numpy", "sega-backend-numba", "sega-backend-cupy", "numpy", "cupy-cuda13x",
             "cupy-cuda12x", "cupy", "torch", "numba", "scikit-learn", "pluggy", "pytest"):
    try:
        info["versions"][dist] = metadata.version(dist)
    except metadata.PackageNotFoundError:
        pass
try:
    import cupy
    runtime = cupy.cuda.runtime
    props = runtime.getDeviceProperties(0)
    info["cuda"] = {"runtime": runtime.runtimeGetVersion(), "driver": runtime.driverGetVersion(),
                    "device": props["name"].decode(), "compute_capability": f"{props['major']}.{props['minor']}",
                    "memory_gib": round(props["totalGlobalMem"] / 2**30, 1)}
except Exception as exc:
    info["cuda"] = {"error": f"{type(exc).__name__}: {exc}"}
try:
    import torch
    info["torch_cuda"] = {"cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
                          "available": torch.cuda.is_available()}
except Exception as exc:
    info["torch_cuda"] = {"error": f"{type(exc).__name__}: {exc}"}
try:
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm",
                          "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
    info["nvidia_smi"] = smi.stdout.strip() or smi.stderr.strip()
except OSError as exc:
    info["nvidia_smi"] = f"not available ({exc})"
import sega_core
info["backends"] = [{k: b[k] for k in ("name", "status", "device", "reason")} for b in sega_core.list_backends()]
for key, value in info.items():
    print(f"{key}: {value}")
print("@@info " + json.dumps(info))
cupy_row = next((b for b in info["backends"] if b["name"] == "cupy"), None)
if "--gpu" in sys.argv and (cupy_row is None or cupy_row["status"] != "ok"):
    sys.exit(f"the cupy backend is not usable here: {cupy_row}")
"""


@dataclass
class Part:
    """One step of the proof: a command, its time limit, where and how it runs."""

    name: str
    cap: float  # seconds at most
    command: list[str]
    cwd: Path = ROOT
    env: dict = field(default_factory=dict)
    result: dict = field(default_factory=dict)


class Log:
    """Everything printed goes to stdout and to the log file."""

    def __init__(self, path: Path):
        self.file = open(path, "a", buffering=1)

    def __call__(self, text: str = "") -> None:
        print(text, flush=True)
        self.file.write(text + "\n")


def wheels(folder: Path) -> list[Path]:
    """The newest wheel of each of our four distributions in ``folder``; a clear error if one is missing."""
    found = []
    for dist in DISTRIBUTIONS:
        candidates = sorted(folder.glob(f"{dist}-*.whl"), key=lambda p: p.stat().st_mtime)
        if not candidates:
            raise SystemExit(f"no {dist} wheel in {folder}/: build them first with "
                             f"`uv build --all-packages --out-dir {folder}` and carry that folder along")
        found.append(candidates[-1])
    return found


def installer() -> list[str]:
    """pip of this Python, else uv's pip aimed at it (uv's environments have no pip)."""
    try:
        import pip  # noqa: F401

        return [sys.executable, "-m", "pip", "install", "--no-input", "--disable-pip-version-check"]
    except ImportError:
        return ["uv", "pip", "install", "--python", sys.executable]


def sega_cli() -> list[str]:
    """The ``sega`` command installed beside this Python."""
    script = Path(sys.executable).parent / "sega"
    return [str(script)] if script.exists() else [shutil.which("sega") or "sega"]


def make_parts(args, out: Path, scratch: Path) -> list[Part]:
    """Every part of the proof, for the GPU or for the dry run."""
    py = [sys.executable, "-P"]  # -P: the installed wheels, not the sources in the working directory
    pytest = [*py, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
    collect = ["--collect-only"] if args.dry_run else []
    install = [*installer(), "--no-index", "--no-deps", "--force-reinstall"]
    install += ["--target", str(scratch / "site")] if args.dry_run else []
    example = next((p for p in EXAMPLE_CANDIDATES if (ROOT / p).exists()), EXAMPLE_CANDIDATES[0])
    bench = [*py, "benchmarks/run.py", "--gpu", "--warmup", "1", "--redo", "0", "--json", str(out / "bench.json")]
    if args.dry_run:
        bench += ["--emulate", "--size", "tiny", "--epochs", "1", "--threads", "1", "--workload", "mlp-large"]
    else:
        bench += ["--epochs", str(args.epochs)]
    counts = [*py, "benchmarks/gpu/launch_counts.py", "--json", str(out / "launches.json")]
    counts += [] if args.dry_run else ["--device"]
    info = [*py, "-c", INFO_SCRIPT] + ([] if args.dry_run else ["--gpu"])
    return [
        Part("install", 60, [*install, *map(str, wheels(args.wheels))]),
        Part("backends", 30, [*sega_cli(), "backends"]),
        Part("versions", 30, info),
        # The emulated half of these tests runs in CI; on the GPU only the device's half.
        Part("cupy-tests", 100, [*pytest, "tests/backend_cupy", "-k", "not cpu-emulation", *collect]),
        Part("conformance", 60, [*pytest, "--pyargs", "sega_core.testing", *collect], cwd=scratch,
             env={"SEGA_TEST_BACKEND": "cupy"}),
        Part("model-tests", 45, [*pytest, "tests/model/test_examples.py", "tests/model/test_training.py",
                                 "tests/model/test_save_load.py", "-k", "cupy", *collect]),
        Part("example", 30, [*py, "-m", "py_compile", example] if args.dry_run else [*py, example]),
        Part("bench", 150, bench),
        Part("launch-counts", 45, counts),
    ]


def run_part(part: Part, limit: float, log: Log) -> dict:
    """Run ``part`` for at most ``limit`` seconds, its output into the log; its record."""
    log(f"\n===== {part.name}: {' '.join(part.command)}" + (f"  (in {part.cwd})" if part.cwd != ROOT else ""))
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **part.env}
    started = time.monotonic()
    lines: list[str] = []
    proc = subprocess.Popen(part.command, cwd=part.cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, errors="replace", start_new_session=True)

    def pump():
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            log(lines[-1])

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        rc = proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        _stop(proc)
        rc = 124
    reader.join(timeout=10)
    seconds = time.monotonic() - started
    summary = _summary(lines)
    if rc == 124:
        summary = f"stopped at its limit of {limit:.0f} s; last line: {summary}"
    record = {"name": part.name, "command": part.command, "rc": rc, "ok": rc == 0, "seconds": round(seconds, 1),
              "limit": round(limit), "summary": summary}
    info = [line[len(INFO_PREFIX):] for line in lines if line.startswith(INFO_PREFIX)]
    if info:
        record["info"] = json.loads(info[-1])
    log(f"===== {part.name}: exit {rc} after {seconds:.1f} s: {summary}")
    return record


def _stop(proc) -> None:
    """End the part and everything it started (its own process group)."""
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


_PYTEST_SUMMARY = re.compile(r"\b\d+ (passed|failed|errors?|skipped|tests? collected|deselected)\b")


def _summary(lines: list[str]) -> str:
    """pytest's summary line if there is one, else the last line printed."""
    lines = [line for line in lines if not line.startswith(INFO_PREFIX)]
    for line in reversed(lines):
        if _PYTEST_SUMMARY.search(line):
            return line.strip("= ")
    return next((line.strip() for line in reversed(lines) if line.strip()), "")


def parse_args(argv=None):
    """The command line (see ``--help``)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry-run", action="store_true", help="rehearse every part on a CPU (no GPU needed)")
    p.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "gpu-proof"),
                   help="output folder (default: $OUT, else ./gpu-proof)")
    p.add_argument("--wheels", type=Path, default=ROOT / "dist", help="folder of our four wheels (default dist/)")
    p.add_argument("--parts", default="all", help="a comma list of parts to run (default all)")
    p.add_argument("--budget", type=float, default=345,
                   help="seconds for the whole proof; a part gets at most what is left (default 345)")
    p.add_argument("--epochs", type=int, default=GPU_EPOCHS, help=f"timed epochs per GPU workload (default {GPU_EPOCHS})")
    return p.parse_args(argv)


def main(argv=None) -> int:
    """Run the proof; exit 0 only when every part passed."""
    args = parse_args(argv)
    args.wheels = args.wheels.resolve()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    log = Log(out / "prove.log")
    started_at, deadline = time.time(), time.monotonic() + args.budget
    with tempfile.TemporaryDirectory(prefix="sega-gpu-proof-") as scratch:
        parts = make_parts(args, out, Path(scratch))
        chosen = [p.name for p in parts] if args.parts == "all" else [n.strip() for n in args.parts.split(",")]
        unknown = sorted(set(chosen) - {p.name for p in parts})
        if unknown:
            log(f"unknown part(s) {', '.join(unknown)}; the parts are {', '.join(p.name for p in parts)}")
            return 2
        log(f"GPU proof{' (dry run)' if args.dry_run else ''}: parts {', '.join(chosen)}; budget {args.budget:.0f} s; "
            f"output {out}")
        records = []
        for part in (p for p in parts if p.name in chosen):
            limit = min(part.cap, deadline - time.monotonic())
            if limit < 5:
                records.append({"name": part.name, "rc": None, "ok": False, "seconds": 0, "limit": 0,
                                "summary": "not run: the budget was spent"})
                log(f"\n===== {part.name}: not run, the budget of {args.budget:.0f} s was spent")
                continue
            records.append(run_part(part, limit, log))
    total = time.time() - started_at
    machine = next((r.pop("info") for r in records if "info" in r), None)
    ok = all(r["ok"] for r in records)
    payload = {"dry_run": args.dry_run, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started_at)),
               "total_seconds": round(total, 1), "budget_seconds": args.budget, "ok": ok, "machine": machine,
               "parts": records, "files": sorted(p.name for p in out.iterdir())}
    (out / "prove.json").write_text(json.dumps(payload, indent=2) + "\n")
    log("\n| part | seconds | limit | exit | summary |\n|---|---:|---:|---:|---|")
    for r in records:
        log(f"| {r['name']} | {r['seconds']} | {r['limit']} | {r['rc']} | {r['summary'][:150]} |")
    log(f"GPU proof{' (dry run)' if args.dry_run else ''} {'passed' if ok else 'FAILED'} in {total:.0f} s; "
        f"log and results in {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
