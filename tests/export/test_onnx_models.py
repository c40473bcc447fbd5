"""Whole models through ONNX: every output head, class labels of every type, regressors in the
target's units, stacked architectures, opsets, metadata, and the one-line errors."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from sega_core import NeuralNetwork, SegaError  # noqa: E402
from sega_core.export import DEFAULT_OPSET, MIN_OPSET, ExportError  # noqa: E402
from sega_core.nn import layers as L  # noqa: E402
from sega_core.nn.layers import LAYER_TYPES  # noqa: E402

RNG = np.random.default_rng(7)


def _fit(model, X, y, epochs=2):
    model.train(X, y, epochs=epochs, batch_size=8, lr=0.05, verbose=0)
    return model


def _data(shape, n=37):
    return RNG.normal(0.5, 1.5, size=(n, *shape))


# ---- heads and labels ---------------------------------------------------------------------------

HEADS = {
    # name: (layers, targets for 37 samples, expected head mode); (N, 3) 0/1 targets: multi-label
    "softmax-fused": (lambda: [L.Dense(5, activation="relu"), L.Dense(3, activation="softmax")],
                      lambda: RNG.integers(0, 3, 37), "fused"),
    "softmax-logits": (lambda: [L.Dense(5, activation="tanh"), L.Dense(3)], lambda: RNG.integers(0, 3, 37), "logits"),
    "softmax-probabilities": (lambda: [L.Dense(3, activation="softmax"), L.Dropout(0.3)],
                              lambda: RNG.integers(0, 3, 37), "probabilities"),
    "binary-fused": (lambda: [L.Dense(4, activation="relu"), L.Dense(1, activation="sigmoid")],
                     lambda: RNG.integers(0, 2, 37), "fused"),
    "binary-logits": (lambda: [L.Dense(4, activation="relu"), L.Dense(1)], lambda: RNG.integers(0, 2, 37), "logits"),
    "binary-probabilities": (lambda: [L.Reshape((3, 2)), L.RNN(1, activation="sigmoid")],
                             lambda: RNG.integers(0, 2, 37), "probabilities"),
    "multilabel-fused": (lambda: [L.Dense(3, activation="sigmoid")], lambda: RNG.integers(0, 2, (37, 3)), "fused"),
    "multilabel-logits": (lambda: [L.Dense(3)], lambda: RNG.integers(0, 2, (37, 3)), "logits"),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(HEADS))
def test_every_head_gives_predict_proba_and_predict(name, dtype, exported, tmp_path):
    layers, targets, mode = HEADS[name]
    loss = "bce_with_logits" if name.startswith("multilabel") else None
    model = _fit(NeuralNetwork(layers(), dtype=dtype, seed=3, loss_function=loss), _data((6,)), targets())
    assert model._head.mode == mode
    exported(model, _data((6,)), tmp_path)


@pytest.mark.parametrize("labels", [
    np.array(["cat", "dog", "emu"]), np.array([10, 20, 30]), np.array([-1.0, 1.0, 3.0]), np.array([False, True]),
], ids=["text", "ints", "floats", "bools"])
def test_labels_are_the_models_classes(labels, exported, tmp_path):
    X = _data((6,))
    model = _fit(NeuralNetwork([L.Dense(len(labels))] if len(labels) > 2 else [L.Dense(1)], seed=2), X,
                 labels[RNG.integers(0, len(labels), 37)])
    proto = exported(model, _data((6,)), tmp_path)
    assert json.loads(_props(proto)["classes"]) == labels.tolist()


def test_a_model_without_classes_labels_by_index(exported, tmp_path):
    X = _data((6,))
    model = _fit(NeuralNetwork([L.Dense(3)], seed=2), X, np.eye(3)[RNG.integers(0, 3, 37)] * 0.8 + 0.2 / 3)
    assert model.classes_ is None
    proto = exported(model, _data((6,)), tmp_path)
    assert "classes" not in _props(proto)


# ---- regressors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("outputs", [1, 3])
@pytest.mark.parametrize("standardize", [True, False], ids=["scaled", "unscaled"])
def test_regressors_give_values_in_the_targets_units(outputs, standardize, dtype, exported, tmp_path):
    X = _data((5,))
    y = RNG.normal(1000, 250, size=(37, outputs)) if standardize else RNG.normal(0, 1, size=(37, outputs))
    model = NeuralNetwork([L.Normalization(), L.Dense(6, activation="leaky_relu"), L.Dense(outputs)], regressor=True,
                          standardize_target=standardize, dtype=dtype, seed=4)
    _fit(model, X, y[:, 0] if outputs == 1 else y)
    assert (model.target_scaler is not None) == standardize
    proto = exported(model, _data((5,)), tmp_path)
    assert _props(proto)["task"] == "regressor"
    assert [o.name for o in proto.graph.output] == ["values"]


# ---- stacked models -----------------------------------------------------------------------------


def _stacked():
    cases = {
        "mlp": ((8,), lambda: [L.Normalization(), L.Dense(16, activation="relu"), L.Dropout(0.2),
                               L.Dense(8, activation="leaky_relu", alpha=0.1), L.Dense(4, activation="softmax")]),
        "pixels-to-cnn": ((36,), lambda: [L.Reshape((1, 6, 6)), L.Conv2D(4, 3, padding=1), L.Conv2D(2, 2, stride=2,
                                           activation="tanh"), L.Flatten(), L.Dense(4)]),
    }
    if {"maxpool2d", "avgpool2d", "globalavgpool2d", "batchnormalization"} <= set(LAYER_TYPES):
        cases["cnn"] = ((3, 8, 8), lambda: [
            L.Normalization(axis=1), L.Conv2D(4, 3, padding=1), L.BatchNormalization(momentum=0.5), L.MaxPool2D(2),
            L.Conv2D(4, 3, padding=1, activation="leaky_relu"), L.AvgPool2D(2, padding="same"), L.GlobalAvgPool2D(),
            L.Dense(4, activation="softmax")])
    if {"lstm", "gru"} <= set(LAYER_TYPES):
        cases["rnns"] = ((6, 3), lambda: [L.LSTM(5, return_sequences=True), L.GRU(4, return_sequences=True),
                                          L.RNN(3, activation="relu"), L.Dense(4)])
    return cases


STACKED = _stacked()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(STACKED))
def test_stacked_models(name, dtype, exported, tmp_path):
    shape, layers = STACKED[name]
    model = _fit(NeuralNetwork(layers(), dtype=dtype, seed=5), _data(shape), RNG.integers(0, 4, 37))
    exported(model, _data(shape), tmp_path)


@pytest.mark.parametrize("opset", [MIN_OPSET, "newest"])
@pytest.mark.parametrize("name", list(STACKED))
def test_the_oldest_and_newest_opsets(name, opset, exported, tmp_path):
    opset = onnx.defs.onnx_opset_version() if opset == "newest" else opset
    shape, layers = STACKED[name]
    model = _fit(NeuralNetwork(layers(), seed=5), _data(shape), RNG.integers(0, 4, 37), epochs=1)
    proto = exported(model, _data(shape), tmp_path, opset=opset)
    assert proto.opset_import[0].version == opset


def test_a_model_trained_on_another_backend_exports_the_same(exported, tmp_path):
    pytest.importorskip("numba")
    shape, layers = STACKED["cnn" if "cnn" in STACKED else "mlp"]
    model = _fit(NeuralNetwork(layers(), backend="numba", seed=5), _data(shape), RNG.integers(0, 4, 37), epochs=1)
    exported(model, _data(shape), tmp_path)


# ---- the file ---------------------------------------------------------------------------------


def _props(proto) -> dict:
    return {p.key: p.value for p in proto.metadata_props}


def test_the_file_declares_a_dynamic_batch_its_opset_and_metadata(tmp_path):
    model = _fit(NeuralNetwork([L.Dense(3)], seed=1), _data((4,)), np.array(["a", "b", "c"])[RNG.integers(0, 3, 37)])
    model.extra_config = {"cli": {"feature_names": ["w", "x", "y", "z"]}}
    model.export_onnx(tmp_path / "m.onnx")
    proto = onnx.load(str(tmp_path / "m.onnx"))
    assert proto.opset_import[0].version == min(DEFAULT_OPSET, onnx.defs.onnx_opset_version())
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["N", 4]
    assert [o.name for o in proto.graph.output] == ["label", "probabilities"]
    props = _props(proto)
    assert props["task"] == "classifier" and json.loads(props["classes"]) == ["a", "b", "c"]
    assert json.loads(props["feature_names"]) == ["w", "x", "y", "z"]
    assert proto.producer_name == "sega"


def test_a_float64_model_exports_as_float32_on_request(tmp_path):
    model = _fit(NeuralNetwork([L.Dense(3)], dtype="float64", seed=1), _data((4,)), RNG.integers(0, 3, 37))
    proto = model.export_onnx(tmp_path / "m.onnx", dtype="float32")
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert all(t.data_type == onnx.TensorProto.FLOAT for t in proto.graph.initializer if t.name.endswith(("/W", "/b")))


def test_the_file_is_written_atomically_over_an_old_one(tmp_path):
    target = tmp_path / "m.onnx"
    target.write_bytes(b"old")
    model = _fit(NeuralNetwork([L.Dense(2)], seed=1), _data((4,)), RNG.integers(0, 2, 37))
    model.export_onnx(target)
    assert onnx.load(str(target)).graph.input[0].name == "X"
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


# ---- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("opset", [16, 999, "22", True, 21.0])
def test_a_bad_opset_is_a_one_line_error(opset, tmp_path, refused):
    model = NeuralNetwork([4, 2], seed=0)
    refused(ExportError, lambda: model.export_onnx(tmp_path / "m.onnx", opset=opset), "opset", "17")
    assert not (tmp_path / "m.onnx").exists()


def test_a_layer_kind_without_an_exporter_names_itself(tmp_path, refused):
    class Mystery(L.Dense):
        kind = "mystery"

    model = NeuralNetwork([L.Dense(4), Mystery(2)], input_shape=(3,), seed=0)
    refused(ExportError, lambda: model.export_onnx(tmp_path / "m.onnx"), "Mystery at position 1", "'mystery'")


def test_an_activation_without_an_export_names_its_layer(tmp_path, refused):
    model = NeuralNetwork([L.Dense(4), L.Dense(2)], input_shape=(3,), seed=0)
    model.layers[0].activation = "gelu"  # as a newer activation sega cannot export yet would be
    refused(ExportError, lambda: model.export_onnx(tmp_path / "m.onnx"), "Dense at position 0", "'gelu'")


def test_an_unbuilt_model_says_so(tmp_path, refused):
    from sega_core import NotFittedError

    refused(NotFittedError, lambda: NeuralNetwork([L.Dense(2)]).export_onnx(tmp_path / "m.onnx"), "train")


def test_without_the_onnx_package_the_error_says_how_to_install_it(tmp_path, monkeypatch, refused):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    monkeypatch.delitem(sys.modules, "sega_core.export.onnx_export", raising=False)
    model = NeuralNetwork([4, 2], seed=0)
    refused(SegaError, lambda: model.export_onnx(tmp_path / "m.onnx"), 'pip install "sega-core[onnx]"')
    monkeypatch.delitem(sys.modules, "sega_core.export.onnx_export", raising=False)


def test_importing_sega_does_not_import_onnx():
    import subprocess

    code = "import sega_core, sega_core.cli, sys; sega_core.NeuralNetwork([2, 2]); print('onnx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# ---- sega export --------------------------------------------------------------------------------


def _sega(*args):
    from sega_core.cli import main

    return main([str(a) for a in args])


def test_sega_export_writes_the_graph_and_says_what_it_is(tmp_path, capsys):
    model = _fit(NeuralNetwork([L.Dense(3)], seed=1), _data((4,)), RNG.integers(0, 3, 37))
    model.save(tmp_path / "m.sega")
    assert _sega("export", tmp_path / "m.sega", tmp_path / "m.onnx", "--opset", MIN_OPSET) == 0
    out = capsys.readouterr().out
    assert f"opset {MIN_OPSET}" in out and "X (N, 4)" in out and "label (N,)" in out and "probabilities (N, 3)" in out
    import onnxruntime

    X = _data((4,)).astype(np.float32)
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(["probabilities"], {"X": X})[0], model.predict_proba(X), rtol=1e-4, atol=1e-5)


def test_sega_export_notes_what_onnxruntime_cannot_run_in_float64(tmp_path, capsys):
    model = NeuralNetwork([L.Conv2D(2, 3), L.Flatten(), L.Dense(2)], dtype="float64", input_shape=(1, 5, 5), seed=0)
    model.save(tmp_path / "m.sega")
    assert _sega("export", tmp_path / "m.sega", tmp_path / "m.onnx") == 0
    err = capsys.readouterr().err
    assert "float64 Conv" in err and "--dtype float32" in err
    assert _sega("export", tmp_path / "m.sega", tmp_path / "m32.onnx", "--dtype", "float32") == 0
    assert capsys.readouterr().err == ""


def test_sega_export_fills_missing_features_as_sega_predict_does(tmp_path, capsys):
    import onnxruntime

    from sega_core.cli.impute import Imputer
    from sega_core.cli.metadata import CliMetadata

    model = _fit(NeuralNetwork([L.Dense(3)], seed=1), _data((4,)), RNG.integers(0, 3, 37))
    imputer = Imputer("median", [0.5, -1.0, 2.0, 0.0])
    model.extra_config = {"cli": CliMetadata(["a", "b", "c", "d"], "y", imputation=imputer.to_config()).to_config()}
    model.save(tmp_path / "m.sega")
    assert _sega("export", tmp_path / "m.sega", tmp_path / "m.onnx") == 0
    assert "filled with the training part's median" in capsys.readouterr().out
    X = _data((4,)).astype(np.float32)
    X[::3, 1] = np.nan
    X[1, :] = np.nan
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(["probabilities"], {"X": X})[0], model.predict_proba(imputer.apply(X)),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("args, parts", [
    (["missing.sega", "m.onnx"], ["not found"]),
    (["m.sega", "nofolder/m.onnx"], ["folder", "does not exist"]),
    (["m.sega", "m.onnx", "--opset", "12"], ["opset", "17"]),
])
def test_sega_export_errors_are_one_line(args, parts, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    NeuralNetwork([4, 2], seed=0).save(tmp_path / "m.sega")
    assert _sega("export", *args) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("sega: error: ")
    for part in parts:
        assert part in err, err


def test_sega_export_help_has_examples(capsys):
    assert _sega("export", "--help") == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "sega export model.sega model.onnx" in out
