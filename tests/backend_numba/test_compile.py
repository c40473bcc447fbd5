"""Eager compilation (``compile_all``) and its progress callback."""

from __future__ import annotations

import pytest

from sega_backend_numba.compile import TASKS, compile_all


def test_compile_all_reports_progress():
    seen = []
    timings = compile_all(dtypes=("float32",), progress=lambda done, total, name: seen.append((done, total, name)))
    assert [s[0] for s in seen] == list(range(1, len(TASKS) + 1))
    assert {s[1] for s in seen} == {len(TASKS)}
    assert seen[0][2] == "conv2d float32"
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

    from sega_core import LSTM, Conv2D, Dense, Dropout, Flatten, MaxPool2D, NumbaBackendNeuralNetwork

    asked = []
    monkeypatch.setattr(compiler, "compile_all", lambda dtypes, progress=None, groups=None: asked.append((dtypes, groups)))
    NumbaBackendNeuralNetwork([64, 32, 10], compile_numba=True)
    NumbaBackendNeuralNetwork([Conv2D(4, 3, activation="tanh"), MaxPool2D(2), Flatten(), Dropout(0.5), Dense(3)],
                              input_shape=(1, 8, 8), compile_numba=True)
    NumbaBackendNeuralNetwork([LSTM(4), Dense(2, activation="sigmoid")], input_shape=(5, 3), compile_numba=True,
                              dtype="float64")
    always = ["softmax_cross_entropy", "sgd", "adam", "adadelta"]
    assert asked == [
        (("float32",), ["relu", "softmax", *always]),
        (("float32",), ["conv2d", "pooling", "tanh", "dropout", *always]),
        (("float64",), ["lstm_gru", "sigmoid", *always]),
    ]


def test_compile_all_refuses_unknown_groups():
    with pytest.raises(ValueError, match=r"unknown kernel groups \['dense'\]; known: conv2d, rnn"):
        compile_all(groups=["dense", "conv2d"])


def test_compile_all_compiles_only_the_groups_named():
    seen = []
    compile_all(groups=["relu", "adam"], progress=lambda done, total, name: seen.append(name))
    assert seen == ["relu float32", "adam float32"]
