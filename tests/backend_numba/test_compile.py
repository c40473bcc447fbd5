"""Eager compilation (``compile_all``) and its progress callback."""

from __future__ import annotations

import pytest

from sega_backend_numba.compile import TASKS, compile_all


def test_compile_all_reports_progress():
    seen = []
    timings = compile_all(dtypes=("float32",), progress=lambda done, total, name: seen.append((done, total, name)))
    pieces = sum(len(task) if isinstance(task, tuple) else 1 for _, task in TASKS)
    assert [s[0] for s in seen] == list(range(1, pieces + 1))
    assert {s[1] for s in seen} == {pieces}
    assert [s[2] for s in seen[:3]] == ["conv2d forward float32", "conv2d backward float32", "conv2d_strided forward float32"]
    assert "relu float32" in timings
    assert set(timings) == {name for _, _, name in seen}


def test_compile_all_refuses_other_dtypes():
    with pytest.raises(ValueError, match="float32 and float64"):
        compile_all(dtypes=("float16",))


def test_one_specialisation_per_dtype():
    """Kernels are called with C-contiguous arrays and plain scalars only: whatever ran before
    in this session, no kernel holds more than one compiled version per dtype (literal arguments,
    which select an activation's or a stride kind's loop on purpose, aside)."""
    import importlib

    from numba.core import types
    from numba.core.registry import CPUDispatcher

    from sega_backend_numba._parallel import Kernel

    def dispatchers(module):
        """(name, dispatcher) of the module's compiled functions, kernels kept in tables included
        (a kernel's parallel version: the serial one is made only if needed)."""
        for attr, value in vars(module).items():
            found = [value]
            if isinstance(value, dict):
                found = [k for v in value.values() for k in (v if isinstance(v, tuple) else (v,))]
            for item in found:
                yield attr, item.parallel if isinstance(item, Kernel) else item

    compile_all(dtypes=("float32", "float64"))
    seen = 0
    for name in ("_conv", "_dense", "_rnn", "_recurrence", "_pooling", "_gates", "_activations", "_dropout", "_optimizers",
                 "_updates", "_parallel"):
        module = importlib.import_module(f"sega_backend_numba.{name}")
        for attr, value in dispatchers(module):
            if isinstance(value, CPUDispatcher) and value.signatures:
                seen += 1
                kinds = {tuple(t for t in sig if not isinstance(t, types.Literal)) for sig in value.signatures}
                assert len(kinds) <= 2, (name, attr, value.signatures)
                for signature in value.signatures:
                    layouts = {getattr(t, "layout", "C") for t in signature}
                    assert layouts == {"C"}, (name, attr, signature)
    assert seen >= 20


def test_a_model_compiles_only_the_kernel_groups_its_layers_call(monkeypatch):
    from sega_backend_numba import compile as compiler

    from sega_core import GRU, LSTM, RNN, Conv2D, Dense, Dropout, Flatten, MaxPool2D, NumbaBackendNeuralNetwork

    asked = []
    monkeypatch.setattr(compiler, "compile_all",
                        lambda dtypes, progress=None, groups=None, jobs=1: asked.append((dtypes, groups, jobs)))
    NumbaBackendNeuralNetwork([64, 32, 10], compile_numba=True)
    NumbaBackendNeuralNetwork([Conv2D(4, 3, activation="tanh"), MaxPool2D(2), Flatten(), Dropout(0.5), Dense(3)],
                              input_shape=(1, 8, 8), compile_numba=True)
    NumbaBackendNeuralNetwork([LSTM(4), Dense(2, activation="sigmoid")], input_shape=(5, 3), compile_numba=True,
                              dtype="float64")
    NumbaBackendNeuralNetwork([Conv2D(4, 3, stride=2), Flatten(), Dense(2)], input_shape=(1, 8, 8), compile_numba=True)
    NumbaBackendNeuralNetwork([RNN(4, activation="relu", return_sequences=True), GRU(3, reset_after=False), Dense(2)],
                              input_shape=(5, 3), compile_numba=True)
    always = ["softmax_cross_entropy", "sgd", "adam", "adadelta"]
    assert asked == [
        (("float32",), ["dense", "relu", "softmax", *always], None),
        (("float32",), ["conv2d", "pooling", "dense", "tanh", "dropout", *always], None),
        (("float64",), ["lstm", "dense", "sigmoid", *always], None),
        (("float32",), ["conv2d_strided", "dense", "relu", *always], None),
        (("float32",), ["rnn_relu", "gru_reset_before", "dense", "relu", *always], None),
    ]


def test_compile_all_refuses_unknown_groups_and_bad_jobs():
    with pytest.raises(ValueError, match=r"unknown kernel groups \['conv3d'\]; known: conv2d, conv2d_strided, rnn_tanh"):
        compile_all(groups=["conv3d", "conv2d"])
    for jobs in (0, 1.5, True):
        with pytest.raises(ValueError, match="jobs must be an int >= 1 or None"):
            compile_all(groups=["relu"], jobs=jobs)


def test_compile_all_compiles_only_the_groups_named():
    seen = []
    compile_all(groups=["relu", "adam"], progress=lambda done, total, name: seen.append(name))
    assert seen == ["relu float32", "adam float32"]


_WORKER_CHECK = """
import json
import numpy as np
from sega_backend_numba import _activations, compile as compiler
from sega_backend_numba.compile import compile_all

compiler.WORKER_START = 0.0  # these two groups are cheap: share them out all the same
seen = []
compile_all(groups=["relu", "sigmoid"], jobs=2, progress=lambda done, total, name: seen.append((done, total, name)))
kernels = {name: getattr(_activations, "_" + name + "_forward") for name in ("relu", "sigmoid")}
worker = [name for name, kernel in kernels.items() if not kernel.signatures]
getattr(_activations, worker[0] + "_forward")(np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4))
stats = kernels[worker[0]].stats
print(json.dumps({"seen": seen, "worker": worker, "hits": sum(stats.cache_hits.values()),
                  "misses": sum(stats.cache_misses.values())}))
"""


def test_a_worker_process_compiles_groups_that_this_process_then_loads_from_the_cache(tmp_path):
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", _WORKER_CHECK], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert sorted(name for _, _, name in result["seen"]) == ["relu float32", "sigmoid float32"]
    assert [(done, total) for done, total, _ in result["seen"]] == [(1, 2), (2, 2)]
    # One group was compiled here, the other by the worker; the worker's came from the disk cache.
    assert len(result["worker"]) == 1
    assert result["hits"] >= 1 and result["misses"] == 0


def test_a_failing_worker_is_an_error_naming_its_groups(monkeypatch, tmp_path):
    import shutil
    import sys

    from sega_backend_numba import compile as compiler

    monkeypatch.setattr(compiler, "WORKER_START", 0.0)
    monkeypatch.setattr(sys, "executable", shutil.which("false"))
    with pytest.raises(RuntimeError, match=r"a worker process compiling numba kernels \((sigmoid|tanh) float32\) failed"):
        compile_all(groups=["sigmoid", "tanh"], jobs=2)


def test_cache_entries_of_concurrent_writers_never_share_a_data_file(tmp_path):
    """Two processes saving one function's machine code for different signatures at once: the
    second read the index before the first wrote it, and wrote its own between the first's index
    and data writes. Each signature must still load its own code (numba's own naming gives both
    the first free number, and one signature would load the other's code)."""
    from sega_backend_numba._cachedir import KeyedIndexFile

    def cache_file():
        return KeyedIndexFile(cache_path=str(tmp_path), filename_base="kernel-1.py311", source_stamp="stamp")

    first, second = cache_file(), cache_file()
    reads = []

    def stale_then_fresh():
        reads.append(1)
        return {} if len(reads) == 1 else KeyedIndexFile._load_index(second)

    second._load_index = stale_then_fresh
    writes = []

    def interleaved(name, data):
        if not writes:
            writes.append(name)
            second.save(("float64 signature",), b"float64 code")
        KeyedIndexFile._save_data(first, name, data)

    first._save_data = interleaved
    first.save(("float32 signature",), b"float32 code")
    fresh = cache_file()
    assert fresh.load(("float32 signature",)) == b"float32 code"
    assert fresh.load(("float64 signature",)) == b"float64 code"


def test_groups_for_takes_the_optimizers_a_model_will_use():
    from sega_backend_numba.compile import groups_for

    from sega_core import Dense

    assert groups_for([Dense(3, activation="relu")], ["adam"]) == ["dense", "relu", "softmax_cross_entropy", "adam"]
    with pytest.raises(ValueError, match=r"unknown optimizers \['rmsprop'\]"):
        groups_for([Dense(3)], ["rmsprop"])


def test_groups_for_takes_a_model_and_refuses_what_is_not_layers():
    from sega_backend_numba.compile import groups_for

    from sega_core import Conv2D, Dense, NeuralNetwork

    assert groups_for(NeuralNetwork([3, 4, 2]), "sgd") == ["dense", "relu", "softmax", "softmax_cross_entropy", "sgd"]
    # Rectangular kernels and per-axis strides run on the NumPy reference: no convolution group.
    assert groups_for([Conv2D(4, (3, 5)), Conv2D(4, 3, stride=(1, 2))], []) == ["relu", "softmax_cross_entropy"]
    assert groups_for([Conv2D(4, 3, stride=(2, 2))], []) == ["conv2d_strided", "relu", "softmax_cross_entropy"]
    with pytest.raises(TypeError, match="groups_for takes sega layer objects"):
        groups_for([4, 8, 3])


def test_compile_all_takes_one_name_as_a_string():
    seen = []
    compile_all("float32", groups="relu", progress=lambda done, total, name: seen.append(name))
    assert seen == ["relu float32"]


def test_the_compile_command_refuses_a_bad_job_count(capsys):
    from sega_backend_numba.compile import main

    with pytest.raises(SystemExit) as exit_:
        main(["--jobs", "0"])
    assert exit_.value.code == 2
    assert "--jobs: must be an int >= 1, got 0" in capsys.readouterr().err
