"""Helpers for the export tests: run an exported graph in onnxruntime and in onnx's reference
evaluator, and compare what they give with ``predict_proba``/``predict``."""

from __future__ import annotations

import numpy as np
import pytest

#: How far a runtime's float32 arithmetic may drift from sega's (summation order, exp/tanh).
TOLERANCE = {np.dtype(np.float32): dict(rtol=1e-4, atol=2e-5), np.dtype(np.float64): dict(rtol=1e-9, atol=1e-10)}
#: Probabilities this close to a decision boundary may be decided either way by another runtime.
MARGIN = 1e-4


def reference_session(proto):
    """onnx's ReferenceEvaluator for ``proto``. Its RNN knows the Tanh and Affine activations
    only; the ONNX spec (and onnxruntime) also have Relu and Sigmoid, added here."""
    from onnx.reference import ReferenceEvaluator
    from onnx.reference.ops.op_rnn import RNN_14

    class RNN(RNN_14):
        op_domain = ""

        def choose_act(self, name, alpha, beta):
            if name == "Relu":
                return lambda x: np.maximum(x, 0)
            if name == "Sigmoid":
                return lambda x: 1 / (1 + np.exp(-x))
            return super().choose_act(name, alpha, beta)

    return ReferenceEvaluator(proto, new_ops=[RNN])


def ort_session(proto):
    """An onnxruntime CPU session for ``proto``."""
    import onnxruntime as ort

    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def run(session, proto, X) -> dict[str, np.ndarray]:
    """``{output name: array}`` of ``session`` on ``X``, cast to the graph's input type."""
    from onnx import helper

    dtype = helper.tensor_dtype_to_np_dtype(proto.graph.input[0].type.tensor_type.elem_type)
    names = [o.name for o in proto.graph.output]
    return dict(zip(names, session.run(names, {"X": np.asarray(X, dtype=dtype)})))


def assert_matches_model(outputs: dict, model, X, dtype=None) -> None:
    """The graph's outputs are what ``model`` gives for ``X``: probabilities and labels (labels
    only where sega's decision is not within :data:`MARGIN` of a tie), or values."""
    tol = TOLERANCE[np.dtype(dtype or model.dtype)]
    if model.regressor:
        want = model.predict(X)
        assert outputs["values"].shape == want.shape
        np.testing.assert_allclose(outputs["values"], want, rtol=tol["rtol"], atol=tol["atol"] * max(1.0, np.abs(want).max()))
        return
    proba, labels = model.predict_proba(X), model.predict(X)
    assert outputs["probabilities"].shape == proba.shape
    np.testing.assert_allclose(outputs["probabilities"], proba, **tol)
    got = outputs["label"]
    assert got.shape == labels.shape
    if labels.ndim == 2:  # multi-label: 0/1 per output
        clear = np.abs(proba - 0.5) > MARGIN
        assert np.array_equal(got[clear], labels[clear])
        return
    top = np.sort(proba, axis=1)
    clear = top[:, -1] - top[:, -2] > MARGIN
    assert got.dtype.kind == labels.dtype.kind or (got.dtype.kind in "OU" and labels.dtype.kind in "OU"), (got.dtype, labels.dtype)
    assert list(got[clear]) == list(labels[clear])


def check_export(model, X, tmp_path, opset=None) -> object:
    """Export ``model``, check the file, and compare both runtimes with ``predict`` on ``X``
    (batch 1 and all of ``X``). Where onnxruntime has no float64 kernel for an operator, the
    refusal is checked and the model's float32 graph runs in onnxruntime instead."""
    import onnx

    from sega_core.export.onnx_export import ONNXRUNTIME_FLOAT64_GAPS

    path = tmp_path / "model.onnx"
    proto = model.export_onnx(path, opset=opset)
    loaded = onnx.load(str(path))
    onnx.checker.check_model(loaded, full_check=True)
    reference = reference_session(loaded)
    gaps = {node.op_type for node in loaded.graph.node} & ONNXRUNTIME_FLOAT64_GAPS if model.dtype == np.float64 else set()
    if gaps:
        with pytest.raises(Exception, match="NOT_IMPLEMENTED|does not support double"):
            run(ort_session(loaded), loaded, X[:1])
        runtime_proto = model.export_onnx(tmp_path / "model32.onnx", opset=opset, dtype="float32")
        runtime_dtype = np.float32
    else:
        runtime_proto, runtime_dtype = loaded, None
    runtime = ort_session(runtime_proto)
    for batch in (X[:1], X):
        assert_matches_model(run(reference, loaded, batch), model, batch)
        assert_matches_model(run(runtime, runtime_proto, batch), model, batch, runtime_dtype)
    return proto


@pytest.fixture
def exported():
    """:func:`check_export`."""
    return check_export


@pytest.fixture
def refused(one_line_error):
    """``refused(ErrorType, call, *parts)``: a one-line error holding each part."""
    return one_line_error
