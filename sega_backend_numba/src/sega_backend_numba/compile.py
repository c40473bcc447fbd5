"""Compile numba kernels now instead of at first use, on several processes at once.

Kernels compile lazily, on their first call, and are then cached on disk (see
:mod:`sega_backend_numba._cachedir`), so this is only needed to move the one-off compile time out
of the first training epoch (``NumbaBackendNeuralNetwork(compile_numba=True)`` compiles the groups
its layers need, :func:`groups_for`, on every CPU the process may use) or to fill the cache ahead
of time, e.g. when building a container image::

    python -m sega_backend_numba.compile --dtype float32 --dtype float64 --jobs 4

numba compiles under a process-wide lock, so threads cannot share the work; ``jobs`` worker
processes (``python -m sega_backend_numba.compile``, which never imports the caller's script) each
compile some of the groups into the shared disk cache, from which the caller then loads them.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, Iterable

import numpy as np


def _conv(stride: int):
    """Convolution forward and backward, unit stride or not (each has kernels of its own); two
    pieces, which may compile in different processes (the backward takes no ``ctx``)."""
    def inputs(dtype):
        rng = np.random.default_rng(0)
        x = rng.standard_normal((2, 2, 5, 5)).astype(dtype)
        w = rng.standard_normal((3, 2, 3, 3)).astype(dtype)
        return x, w, np.zeros(3, dtype)

    def forward(dtype):
        from . import _conv

        _conv.conv2d_forward(*inputs(dtype), stride, 1)

    def backward(dtype):
        from . import _conv

        x, w, b = inputs(dtype)
        side = (5 + 2 - 3) // stride + 1
        dy = np.ones((2, 3, side, side), dtype)
        _conv.conv2d_backward(dy, x, w, stride, 1, None, np.empty_like(w), np.empty_like(b), True)

    return (("forward", forward), ("backward", backward))


def _rnn(activation: str):
    """The Elman RNN with one activation (each has kernels of its own, see _recurrence), forward
    and backward as two pieces (the backward takes no ``ctx``)."""
    def inputs(dtype):
        rng = np.random.default_rng(0)
        x = rng.standard_normal((2, 3, 4)).astype(dtype)
        wx = rng.standard_normal((4, 5)).astype(dtype)
        wh = rng.standard_normal((5, 5)).astype(dtype)
        return x, wx, wh, np.zeros(5, dtype)

    def forward(dtype):
        from . import _rnn

        _rnn.rnn_forward(*inputs(dtype), activation)

    def backward(dtype):
        from . import _rnn

        x, wx, wh, b = inputs(dtype)
        hs = np.full((2, 3, 5), 0.5, dtype)
        _rnn.rnn_backward(hs, x, wx, wh, hs, activation, None, np.empty_like(wx), np.empty_like(wh), np.empty_like(b),
                          True)

    return (("forward", forward), ("backward", backward))


def _dense(dtype):
    """Dense forward and backward as shared out between threads (the hooks share out only
    products large enough, and only inside the compute context, so the kernels are run here
    directly, on one share)."""
    from . import _dense
    from ._parallel import run

    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3)).astype(dtype)
    w = rng.standard_normal((3, 2)).astype(dtype)
    b = np.zeros(2, dtype)
    y = np.empty((4, 2), dtype)
    run(_dense._forward, 1, x, w, b, y)
    scratch = np.empty((1, x.size), dtype)
    run(_dense._backward, 1, y, x, w, np.empty_like(w), np.empty_like(x), True, True, scratch)


def _pooling(dtype):
    """Max and average pooling, forward and backward, with padding and overlapping windows."""
    from . import _pooling

    x = np.random.default_rng(0).standard_normal((2, 2, 5, 5)).astype(dtype)
    for op in ("maxpool2d", "avgpool2d"):
        y, ctx = getattr(_pooling, f"{op}_forward")(x, (3, 3), (2, 2), ((1, 1), (1, 1)))
        getattr(_pooling, f"{op}_backward")(y, x, (3, 3), (2, 2), ((1, 1), (1, 1)), ctx)


def _lstm(dtype):
    """The LSTM, forward and backward."""
    from . import _gates

    x, wx, wh, (b,), grads = _gated_inputs(dtype, 4, 1)
    hs, ctx = _gates.lstm_forward(x, wx, wh, b)
    _gates.lstm_backward(hs, x, wx, wh, hs, ctx, *grads, True)


def _gru(reset_after: bool):
    def run(dtype):
        """The GRU with the reset gate after the recurrent product (PyTorch's and Keras's
        default) or before it: each placement has kernels of its own."""
        from . import _gates

        x, wx, wh, (bx, bh), grads = _gated_inputs(dtype, 3, 2)
        hs, ctx = _gates.gru_forward(x, wx, wh, bx, bh, reset_after)
        _gates.gru_backward(hs, x, wx, wh, bx, bh, reset_after, hs, ctx, *grads, True)

    return run


def _gated_inputs(dtype, gates: int, biases: int):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4)).astype(dtype)
    wx = rng.standard_normal((4, gates * 5)).astype(dtype)
    wh = rng.standard_normal((5, gates * 5)).astype(dtype)
    bs = [np.zeros(gates * 5, dtype) for _ in range(biases)]
    return x, wx, wh, bs, [np.empty_like(a) for a in (wx, wh, *bs)]


def _activation(name, *extra):
    def run(dtype):
        """Forward and backward of one activation on a small matrix."""
        from . import _activations

        z = np.linspace(-2, 2, 12, dtype=dtype).reshape(3, 4)
        y = getattr(_activations, f"{name}_forward")(z, *extra)
        getattr(_activations, f"{name}_backward")(z, z, y, *extra)

    return run


def _dropout(dtype):
    from . import _dropout

    x = np.ones((3, 4), dtype)
    y, mask = _dropout.dropout_forward(x, 0.5, np.random.default_rng(0))
    _dropout.dropout_backward(y, mask)


def _loss(dtype):
    """Softmax cross-entropy against labels and against target rows."""
    from . import _losses

    logits = np.linspace(-1, 1, 6, dtype=dtype).reshape(2, 3)
    _losses.softmax_cross_entropy(logits, np.array([0, 2]))
    _losses.softmax_cross_entropy(logits, np.eye(3, dtype=dtype)[[0, 2]])


def _optimizer(name):
    def run(dtype):
        """One update of a small flat parameter array on this thread, and one through the kernel
        that shares large ones out between threads."""
        from . import _optimizers, _parallel, _updates

        p, g, s1, s2 = (np.full(8, 0.5, dtype) for _ in range(4))
        if name == "sgd":
            _optimizers.sgd_update(p, g, s1, 0.1, 0.9, False)
        elif name == "adam":
            _optimizers.adam_update(p, g, s1, s2, 1, 0.001, 0.9, 0.999, 1e-8)
        else:
            _optimizers.adadelta_update(p, g, s1, s2, 1.0, 0.9, 1e-6)
        kind = {"sgd": _updates.SGD, "adam": _updates.ADAM, "adadelta": _updates.ADADELTA}[name]
        coef = np.zeros(7, np.float64)
        _parallel.run(_updates.UPDATES[kind], 1, p, g, s1, s2, coef)

    return run


#: (name, compile function) for every group of kernels, in the order they are compiled; a group
#: compiled in pieces has a tuple of (piece name, compile function) instead of one function.
TASKS: tuple[tuple[str, Callable | tuple], ...] = (
    ("conv2d", _conv(1)),
    ("conv2d_strided", _conv(2)),
    ("rnn_tanh", _rnn("tanh")),
    ("rnn_relu", _rnn("relu")),
    ("rnn_sigmoid", _rnn("sigmoid")),
    ("rnn_linear", _rnn("linear")),
    ("lstm", _lstm),
    ("gru", _gru(True)),
    ("gru_reset_before", _gru(False)),
    ("pooling", _pooling),
    ("dense", _dense),
    ("relu", _activation("relu")),
    ("leaky_relu", _activation("leaky_relu", 0.01)),
    ("sigmoid", _activation("sigmoid")),
    ("tanh", _activation("tanh")),
    ("softmax", _activation("softmax")),
    ("dropout", _dropout),
    ("softmax_cross_entropy", _loss),
    ("sgd", _optimizer("sgd")),
    ("adam", _optimizer("adam")),
    ("adadelta", _optimizer("adadelta")),
)

#: Rough cold-compile seconds of each group (or piece of one), measured on 2 cores, to share
#: them out between processes evenly; only their proportions matter. Unlisted ones count 1.
COST = {
    "conv2d forward": 6.5, "conv2d backward": 9.5, "conv2d_strided forward": 6.5, "conv2d_strided backward": 9.5,
    "lstm": 9.0, "gru": 9.0, "gru_reset_before": 9.0, "pooling": 5.0, "dense": 3.0, "sgd": 1.6, "adam": 1.4,
    **{f"rnn_{activation} {piece}": cost for activation in ("tanh", "relu", "sigmoid", "linear")
       for piece, cost in (("forward", 3.0), ("backward", 4.5))},
}
#: What starting a worker costs, in the same seconds: its interpreter, imports, numba's set-up.
WORKER_START = 2.5


def _same_pair(value):
    """``value`` as one int when it is an int or a pair of equal ints, else ``None``."""
    if isinstance(value, (tuple, list)):
        return value[0] if len(value) == 2 and value[0] == value[1] else None
    return value


def _layer_groups(layer) -> list[str]:
    kind = getattr(layer, "kind", "")
    if kind == "conv2d":
        stride, size = _same_pair(layer.stride), _same_pair(layer.kernel_size)
        if stride is None or size is None:
            return []  # rectangular kernels and per-axis strides run on the NumPy reference
        return ["conv2d" if stride == 1 else "conv2d_strided"]
    if kind == "rnn":
        return [f"rnn_{layer.activation}"]
    if kind == "gru":
        return ["gru" if layer.reset_after else "gru_reset_before"]
    if kind in ("lstm", "dense", "dropout"):
        return [kind]
    if kind in ("maxpool2d", "avgpool2d", "globalavgpool2d"):
        return ["pooling"]
    return []


def groups_for(layers, optimizers: Iterable[str] = ("sgd", "adam", "adadelta")) -> list[str]:
    """The kernel groups (names of :data:`TASKS`) a model with these sega layers calls, in
    compile order: its layers' own (a convolution's stride kind, a recurrent layer's activation
    or gate placement), its activations', the loss and the ``optimizers`` (by default all: a
    model meets its optimizer only at ``train``). The layer groups are most of the compile time
    (a convolution's kernels take over ten seconds cold), so a model compiles only its own."""
    known = dict(TASKS)
    layers = getattr(layers, "layers", layers)  # a model stands for its layers
    if isinstance(optimizers, str):
        optimizers = (optimizers,)
    if isinstance(layers, (str, bytes)) or not all(hasattr(layer, "kind") for layer in layers):
        raise TypeError("groups_for takes sega layer objects (or a model, or model.layers), "
                        "e.g. groups_for([Conv2D(8, 3), Flatten(), Dense(10)])")
    wanted = {"softmax_cross_entropy", *optimizers}
    unknown = wanted - set(known)
    if unknown:
        raise ValueError(f"unknown optimizers {sorted(unknown)}; numba has kernels for sgd, adam and adadelta")
    for layer in layers:
        wanted.update(_layer_groups(layer))
        activation = getattr(layer, "activation", None)
        if isinstance(activation, str) and activation in known:
            wanted.add(activation)
    return [name for name, _ in TASKS if name in wanted]


def available_cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _pieces(name: str):
    """``(piece name, compile function)`` pairs of a group: one unnamed piece, or several."""
    task = dict(TASKS)[name]
    return task if isinstance(task, tuple) else (("", task),)


def _label(name: str, piece: str, kind) -> str:
    return f"{name} {piece} {np.dtype(kind).name}" if piece else f"{name} {np.dtype(kind).name}"


def _share_out(work: list[tuple[str, str, np.dtype]], jobs: int) -> list[list[tuple[str, str, np.dtype]]]:
    """``work`` cut into ``jobs`` lists that should take about as long: the costliest items
    first, each to the list that would finish first (a worker's list starts with its start-up)."""
    def cost(item):
        name, piece, _ = item
        return COST.get(f"{name} {piece}".strip(), 1.0)

    lists: list[list[tuple[str, str, np.dtype]]] = [[] for _ in range(jobs)]
    loads = [0.0] + [WORKER_START] * (jobs - 1)
    for item in sorted(work, key=lambda item: -cost(item)):
        least = loads.index(min(loads))
        lists[least].append(item)
        loads[least] += cost(item)
    return lists


def compile_all(
    dtypes: Iterable[str] = ("float32",),
    progress: Callable[[int, int, str], None] | None = None,
    groups: Iterable[str] | None = None,
    jobs: int | None = 1,
) -> dict[str, float]:
    """Compile (or load from the disk cache) the backend's kernels for ``dtypes``: every group of
    :data:`TASKS`, or only those named in ``groups`` (see :func:`groups_for`).

    Each kernel group is run once on tiny inputs of each dtype (``"float32"``, ``"float64"``),
    some in pieces (a convolution's forward and backward). ``jobs`` processes share them out
    (``None``: one per CPU this process may use, see :func:`available_cpus`): this one, and
    ``jobs - 1`` workers that write their machine code into the disk cache, from which this
    process loads it at the kernels' first call. After each piece, ``progress(done, total,
    name)`` is called if given (always in the calling thread), ``name`` being like ``"relu
    float32"`` or ``"conv2d backward float32"``. Returns the seconds each piece took, by that
    same name: close to zero for one whose machine code was already in the cache.
    """
    if isinstance(dtypes, str):
        dtypes = (dtypes,)
    if isinstance(groups, str):
        groups = (groups,)
    kinds = []
    for dtype in dict.fromkeys(dtypes):
        kind = np.dtype(dtype)
        if kind not in (np.float32, np.float64):
            raise ValueError(f"numba kernels are compiled for float32 and float64, not {kind.name!r}")
        kinds.append(kind)
    names = [name for name, _ in TASKS]
    if groups is not None:
        chosen = set(groups)
        unknown = chosen - set(names)
        if unknown:
            raise ValueError(f"unknown kernel groups {sorted(unknown)}; known: {', '.join(names)}")
        names = [name for name in names if name in chosen]
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ValueError(f"jobs must be an int >= 1 or None (one per CPU), got {jobs!r}")
    work = [(name, piece, kind) for kind in kinds for name in names for piece, _ in _pieces(name)]
    from ._cachedir import CACHE

    # Without a disk cache, a worker's machine code could not reach this process.
    jobs = 1 if not CACHE.enabled else min(available_cpus() if jobs is None else jobs, len(work)) or 1
    report = _Progress(len(work), progress)
    if jobs == 1:
        _compile_here(work, report)
        return report.timings
    own, *others = _share_out(work, jobs)
    workers = [_Worker(items, report) for items in others if items]
    try:
        _compile_here(own, report, workers)
        for worker in workers:
            worker.finish(report)
    finally:
        for worker in workers:
            worker.stop()
    return report.timings


class _Progress:
    """Counts finished pieces, keeps their timings and calls the user's ``progress``."""

    def __init__(self, total: int, callback) -> None:
        self.total, self.callback, self.done, self.timings = total, callback, 0, {}

    def add(self, label: str, seconds: float) -> None:
        self.timings[label] = seconds
        self.done += 1
        if self.callback is not None:
            self.callback(self.done, self.total, label)


def _compile_piece(name: str, piece: str, kind) -> float:
    """Compile one piece of a group here; the seconds it took."""
    start = time.perf_counter()
    dict(_pieces(name))[piece](np.dtype(kind))
    return time.perf_counter() - start


def _compile_here(work, report: _Progress, workers=()) -> None:
    for name, piece, kind in work:
        report.add(_label(name, piece, kind), _compile_piece(name, piece, kind))
        for worker in workers:
            worker.drain(report)


class _Worker:
    """A ``python -m sega_backend_numba.compile`` process compiling some groups; a thread reads
    the line it prints per finished group, so that the caller can report them as they come."""

    def __init__(self, items, report: _Progress) -> None:
        command = [sys.executable, "-m", "sega_backend_numba.compile"]
        for name, piece, kind in items:
            command += ["--task", f"{name}:{piece}:{kind.name}"]
        env = dict(os.environ)
        # The worker must import these very packages, wherever they were imported from here.
        roots = {os.path.dirname(os.path.dirname(os.path.abspath(importlib.import_module(name).__file__)))
                 for name in ("sega_backend_numba", "sega_core", "sega_backend_numpy")}
        env["PYTHONPATH"] = os.pathsep.join([*sorted(roots), *filter(None, [env.get("PYTHONPATH")])])
        self.items, self.lines = items, queue.Queue()
        self.errors = tempfile.TemporaryFile()
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self.errors, env=env, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _report(self, line, report: _Progress) -> bool:
        if line is None:
            return False
        entry = json.loads(line)
        report.add(entry["name"], entry["seconds"])
        return True

    def drain(self, report: _Progress) -> None:
        """Report the groups the worker finished so far, without waiting."""
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                return
            if not self._report(line, report):
                self.lines.put(None)
                return

    def finish(self, report: _Progress) -> None:
        """Wait for the worker, reporting its groups; raise if it failed."""
        while self._report(self.lines.get(), report):
            pass
        code = self.process.wait()
        if code != 0:
            self.errors.seek(0)
            lines = self.errors.read().decode(errors="replace").strip().splitlines()
            why = lines[-1] if lines else f"exit code {code}"
            groups = ", ".join(_label(*item) for item in self.items)
            raise RuntimeError(f"a worker process compiling numba kernels ({groups}) failed: {why}")

    def stop(self) -> None:
        """End the worker if it still runs (an error or Ctrl-C here) and release its files."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()
        self.errors.close()


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an int >= 1, got {text}")
    return value


def main(argv=None) -> int:
    """``python -m sega_backend_numba.compile``: compile kernel groups (see :func:`compile_all`)."""
    parser = argparse.ArgumentParser(prog="python -m sega_backend_numba.compile",
                                     description="Compile sega's numba kernels into the disk cache ahead of time.")
    parser.add_argument("--dtype", action="append", choices=["float32", "float64"],
                        help="dtype to compile for (repeatable; default float32)")
    parser.add_argument("--group", action="append", choices=[name for name, _ in TASKS],
                        help="kernel group to compile (repeatable; default every group)")
    parser.add_argument("--jobs", type=_positive, default=None, help="processes to compile on (default: one per CPU)")
    parser.add_argument("--task", action="append", help=argparse.SUPPRESS)  # name:piece:dtype, from compile_all's workers
    args = parser.parse_args(argv)
    if args.task:
        # A worker: compile exactly these, one JSON line per finished group for the caller.
        for item in args.task:
            name, piece, dtype = item.split(":")
            seconds = _compile_piece(name, piece, dtype)
            print(json.dumps({"name": _label(name, piece, dtype), "seconds": seconds}), flush=True)
        return 0
    start = time.perf_counter()
    timings = compile_all(dtypes=args.dtype or ("float32",), groups=args.group, jobs=args.jobs,
                          progress=lambda done, total, name: print(f"{done}/{total} {name}", flush=True))
    print(f"compiled {len(timings)} pieces of kernel groups in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
