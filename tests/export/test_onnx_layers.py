"""Every layer type exports to ONNX: onnx.checker passes, and onnxruntime and onnx's reference
evaluator give what predict_proba and predict give, on float32 and float64 models, for a batch
of 1 and of 37.

Each case is one layer (in a few settings) between the input and a Dense output. A layer kind
added to sega without a case here fails :func:`test_every_layer_kind_has_a_case`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from sega_core import NeuralNetwork  # noqa: E402
from sega_core.nn import layers as L  # noqa: E402
from sega_core.nn.activations import ACTIVATIONS  # noqa: E402
from sega_core.nn.layers import LAYER_TYPES  # noqa: E402

FLAT, IMAGE, SEQUENCE = (6,), (2, 5, 5), (4, 3)


@dataclass(frozen=True)
class Case:
    """One layer under test: its kind, the input shape, and the layers before the output."""

    id: str
    kind: str
    input_shape: tuple
    layers: Callable[[], list]


def _cases() -> list[Case]:
    cases = []
    for act in ACTIVATIONS:
        cases.append(Case(f"dense-{act}", "dense", FLAT, lambda a=act: [L.Dense(5, activation=a, alpha=0.2)]))
        cases.append(Case(f"conv2d-{act}", "conv2d", IMAGE,
                          lambda a=act: [L.Conv2D(2, 3, stride=2, padding=1, activation=a, alpha=0.2), L.Flatten()]))
    cases.append(Case("conv2d-valid", "conv2d", IMAGE, lambda: [L.Conv2D(3, 2), L.Flatten()]))
    cases.append(Case("conv2d-named-valid", "conv2d", IMAGE, lambda: [L.Conv2D(3, 2, padding="valid"), L.Flatten()]))
    cases.append(Case("conv2d-same", "conv2d", IMAGE, lambda: [L.Conv2D(3, 3, padding="same"), L.Flatten()]))
    # An even kernel's "same" padding is one pixel more at the end than at the start.
    cases.append(Case("conv2d-same-even-strided", "conv2d", IMAGE,
                      lambda: [L.Conv2D(2, 2, strides=2, padding="same"), L.Flatten()]))
    cases.append(Case("conv2d-rectangular", "conv2d", IMAGE,
                      lambda: [L.Conv2D(2, (3, 2), strides=(2, 1), padding=(1, 0)), L.Flatten()]))
    for kind, name in (("maxpool2d", "MaxPool2D"), ("avgpool2d", "AvgPool2D")):
        cases.append(Case(f"{kind}-valid", kind, IMAGE, lambda n=name: [getattr(L, n)(2), L.Flatten()]))
        cases.append(Case(f"{kind}-same", kind, IMAGE,
                          lambda n=name: [getattr(L, n)((2, 3), strides=(2, 1), padding="same"), L.Flatten()]))
    cases.append(Case("globalavgpool2d", "globalavgpool2d", IMAGE, lambda: [L.Conv2D(3, 3), L.GlobalAvgPool2D()]))
    for act in ("tanh", "relu", "sigmoid", "linear"):
        for seq in (False, True):
            cases.append(Case(f"rnn-{act}-{'seq' if seq else 'last'}", "rnn", SEQUENCE,
                              lambda a=act, s=seq: [L.RNN(4, activation=a, return_sequences=s)] + ([L.Flatten()] if s else [])))
    for seq in (False, True):
        cases.append(Case(f"lstm-{'seq' if seq else 'last'}", "lstm", SEQUENCE,
                          lambda s=seq: [L.LSTM(4, return_sequences=s)] + ([L.Flatten()] if s else [])))
        for after in (True, False):
            cases.append(Case(f"gru-{'after' if after else 'before'}-{'seq' if seq else 'last'}", "gru", SEQUENCE,
                              lambda s=seq, a=after: [L.GRU(4, return_sequences=s, reset_after=a)] + ([L.Flatten()] if s else [])))
    cases.append(Case("flatten", "flatten", IMAGE, lambda: [L.Flatten()]))
    cases.append(Case("reshape", "reshape", FLAT, lambda: [L.Reshape((2, -1)), L.RNN(3)]))
    cases.append(Case("dropout", "dropout", FLAT, lambda: [L.Dense(5), L.Dropout(0.5)]))
    cases.append(Case("normalization-features", "normalization", FLAT, lambda: [L.Normalization()]))
    cases.append(Case("normalization-channels", "normalization", IMAGE, lambda: [L.Normalization(axis=1), L.Flatten()]))
    cases.append(Case("normalization-all", "normalization", FLAT, lambda: [L.Normalization(axis=None)]))
    cases.append(Case("batchnormalization-dense", "batchnormalization", FLAT,
                      lambda: [L.Dense(5), L.BatchNormalization(momentum=0.5)]))
    cases.append(Case("batchnormalization-conv", "batchnormalization", IMAGE,
                      lambda: [L.Conv2D(3, 3), L.BatchNormalization(momentum=0.5), L.Flatten()]))
    # Only the kinds this sega has (the layers of a case are made when it runs).
    return [case for case in cases if case.kind in LAYER_TYPES]


CASES = _cases()


def trained(case: Case, dtype: str, n_out: int = 3) -> tuple[NeuralNetwork, np.ndarray]:
    """The case's model after one epoch on random data (statistics fitted, biases moved), and
    fresh inputs shifted off zero so Normalization has something to undo."""
    rng = np.random.default_rng(abs(hash(case.id)) % 2**32)
    model = NeuralNetwork(case.layers() + [L.Dense(n_out)], dtype=dtype, seed=1)
    X = rng.normal(1.0, 2.0, size=(37, *case.input_shape))
    model.train(X, rng.integers(0, n_out, 37), epochs=1, batch_size=8, lr=0.05, verbose=0)
    return model, rng.normal(1.0, 2.0, size=(37, *case.input_shape))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_layer_exports_and_runs_as_sega(case, dtype, exported, tmp_path):
    model, X = trained(case, dtype)
    exported(model, X, tmp_path)


def test_every_layer_kind_has_a_case():
    assert set(LAYER_TYPES) == {case.kind for case in CASES}


def test_every_layer_kind_has_an_exporter():
    """A layer kind without an ONNX exporter would only be refused at export time."""
    from sega_core.export.onnx_export import ONNX_LAYERS

    assert set(LAYER_TYPES) <= set(ONNX_LAYERS)



def test_the_float64_cases_meet_every_listed_onnxruntime_gap():
    """check_export confirms each float64 graph's listed gaps are refused by onnxruntime and that
    a graph without them runs; this makes sure every listed operator occurs in some case."""
    import onnx

    from sega_core.export.onnx_export import ONNXRUNTIME_FLOAT64_GAPS, build_onnx

    seen = set()
    for case in CASES:
        model = NeuralNetwork(case.layers() + [L.Dense(3)], dtype="float64", input_shape=case.input_shape, seed=0)
        seen |= {node.op_type for node in build_onnx(model).graph.node}
    kinds = {"Conv": "conv2d", "AveragePool": "avgpool2d", "GlobalAveragePool": "globalavgpool2d", "RNN": "rnn",
             "LSTM": "lstm", "GRU": "gru"}
    assert {op for op in ONNXRUNTIME_FLOAT64_GAPS if kinds[op] in LAYER_TYPES} <= seen
    assert onnx.defs.onnx_opset_version() >= 17
