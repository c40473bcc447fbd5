"""save/load: a pickle-free .npz written atomically; corrupt or foreign files raise
ModelFileError; a model saved on one backend loads on another and predicts the same."""

from __future__ import annotations

import json
import os
import pickle
import stat
import zipfile

import numpy as np
import pytest

import sega_core
from sega_core import (
    RNN,
    BaseBackendNeuralNetwork,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Huber,
    ModelFileError,
    NeuralNetwork,
    NumbaBackendNeuralNetwork,
    load_model,
)
from sega_core.errors import OutputPathError, UnknownBackendError

rng = np.random.default_rng(0)


def trained(kind: str, dtype="float32"):
    """A small trained model of each kind, with data to predict on."""
    if kind == "mlp":
        X, y = rng.normal(size=(60, 5)), rng.integers(0, 3, size=60)
        model = NeuralNetwork([5, 8, 3], dropout_rate=0.2, reg_lambda=0.01, backend="numpy", seed=1, dtype=dtype)
    elif kind == "binary":
        X, y = rng.normal(size=(60, 5)), rng.integers(0, 2, size=60)
        model = NeuralNetwork([5, 8, 1], activations=["leaky_relu", "sigmoid"], backend="numpy", seed=1, dtype=dtype)
    elif kind == "regressor":
        X = rng.normal(size=(60, 5))
        y = X @ rng.normal(size=(5, 2))
        model = NeuralNetwork([5, 8, 2], regressor=True, loss_function=Huber(0.5), backend="numpy", seed=1, dtype=dtype)
    elif kind == "conv":
        X, y = rng.normal(size=(30, 1, 6, 6)), rng.integers(0, 3, size=30)
        layers = [Conv2D(3, 3, stride=2, padding=1, activation="tanh"), Flatten(), Dropout(0.1), Dense(3, activation="linear")]
        model = NeuralNetwork(layers, backend="numpy", seed=1, dtype=dtype)
    elif kind == "rnn":
        X, y = rng.normal(size=(30, 4, 3)), rng.integers(0, 3, size=30)
        layers = [RNN(5, activation="relu", return_sequences=True), RNN(4), Dense(3, activation="softmax")]
        model = NeuralNetwork(layers, backend="numpy", seed=1, dtype=dtype)
    else:
        raise AssertionError(kind)
    model.train(X, y, epochs=3, batch_size=8, progress=False)
    return model, X


def outputs(model, X):
    return model.predict(X) if model.regressor else model.predict_proba(X)


KINDS = ["mlp", "binary", "regressor", "conv", "rnn"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_predicts_identically(tmp_path, kind, dtype):
    model, X = trained(kind, dtype)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = NeuralNetwork.load(path, backend="numpy")
    np.testing.assert_array_equal(outputs(loaded, X), outputs(model, X))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.params.param, model.params.param)
    assert loaded.dtype == model.dtype and loaded.params.param.dtype == model.dtype
    assert repr(loaded.layers) == repr(model.layers)
    assert loaded.loss == model.loss and loaded.regressor == model.regressor
    assert loaded.reg_lambda == model.reg_lambda and loaded.input_shape == model.input_shape
    assert loaded.history == model.history
    # A loaded model can be evaluated and trained further.
    y = model.predict(X)
    assert loaded.evaluate(X, y)["loss"] == pytest.approx(model.evaluate(X, y)["loss"])
    loaded.train(X, y, epochs=1, progress=False)


def test_file_is_a_pickle_free_npz_with_config_params_and_state(tmp_path):
    model, _ = trained("conv")
    path = tmp_path / "model.sega"  # any name: no suffix is added
    model.save(str(path))
    assert [p.name for p in tmp_path.iterdir()] == ["model.sega"]
    assert zipfile.is_zipfile(path)
    with np.load(path, allow_pickle=False) as data:
        assert sorted(data.files) == ["config", "optimizer_state", "params", "state"]
        assert data["optimizer_state"].shape == (2 * model.params.size,)  # Adam's two moments
        assert data["state"].dtype == np.float32 and data["state"].shape == (0,)
        config = json.loads(bytes(data["config"]).decode("utf-8"))
        params = data["params"]
        assert params.dtype == np.float32 and params.shape == (model.params.size,)
        assert data["config"].dtype == np.uint8
    assert config["format"] == "sega-model" and config["dtype"] == "float32"
    assert [entry["kind"] for entry in config["layers"]] == ["conv2d", "flatten", "dropout", "dense"]
    assert config["layers"][0]["config"] == {"filters": 3, "kernel_size": 3, "stride": 2, "padding": 1, "activation": "tanh"}
    assert config["input_shape"] == [1, 6, 6]


def test_load_through_module_function_and_preset_class(tmp_path):
    model, X = trained("mlp")
    path = tmp_path / "m.npz"
    model.save(path)
    a = load_model(path)
    b = BaseBackendNeuralNetwork.load(path)
    assert type(a) is NeuralNetwork and type(b) is BaseBackendNeuralNetwork
    assert b.backend.name == "numpy"
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert sega_core.load_model is load_model


def test_saving_overwrites_atomically(tmp_path):
    first, X = trained("mlp")
    second = NeuralNetwork([5, 4, 3], backend="numpy", seed=7, input_shape=(5,))
    path = tmp_path / "m.npz"
    first.save(path)
    second.save(path)
    np.testing.assert_array_equal(load_model(path).predict_proba(X), second.predict_proba(X))
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_saving_respects_the_umask_and_a_resave_keeps_the_mode(tmp_path):
    model, _ = trained("mlp")
    path = tmp_path / "m.npz"
    old = os.umask(0o022)
    try:
        model.save(path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o644  # what open(path, "w") gives
        os.chmod(path, 0o664)
        model.save(path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o664
    finally:
        os.umask(old)


def test_failing_save_leaves_no_partial_file(tmp_path, monkeypatch):
    model, X = trained("mlp")
    path = tmp_path / "m.npz"

    def broken_savez(fh, **arrays):
        fh.write(b"PK\x03\x04 half a zip")  # something was written before the failure
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert list(tmp_path.iterdir()) == []


def test_failing_save_keeps_the_previous_file(tmp_path, monkeypatch):
    model, X = trained("mlp")
    path = tmp_path / "m.npz"
    model.save(path)
    before = path.read_bytes()

    def broken_savez(fh, **arrays):
        fh.write(b"garbage")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(KeyboardInterrupt):
        NeuralNetwork([5, 3], backend="numpy", input_shape=(5,)).save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_save_into_missing_folder_or_unbuilt_model(tmp_path):
    model, _ = trained("mlp")
    with pytest.raises(OutputPathError, match="folder .* does not exist; create it first"):
        model.save(tmp_path / "no" / "such" / "m.npz")
    with pytest.raises(OutputPathError, match="it is a folder; give a file name inside it"):
        model.save(tmp_path)
    with pytest.raises(ModelFileError, match="not been built"):
        NeuralNetwork([Dense(3)], backend="numpy").save(tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == []


# ---- corrupt and foreign files ----------------------------------------------------------------


def _rewrite(path, out, config_edit=None, params=None, extra=None):
    with np.load(path) as data:
        config = json.loads(bytes(data["config"]))
        flat = data["params"]
    if config_edit:
        config_edit(config)
    arrays = {"config": np.frombuffer(json.dumps(config).encode(), np.uint8), "params": flat if params is None else params}
    arrays.update(extra or {})
    np.savez(out, **arrays)


def _corrupt_files(tmp_path):
    model, _ = trained("mlp")
    good = tmp_path / "good.npz"
    model.save(good)
    raw = good.read_bytes()
    files = {}

    def put(name, content):
        p = tmp_path / name
        p.write_bytes(content) if isinstance(content, bytes) else p.write_text(content)
        files[name] = p

    put("empty.npz", b"")
    put("text.npz", "hello, I am not a model\n")
    put("truncated.npz", raw[: len(raw) // 2])
    put("truncated-end.npz", raw[:-30])
    put("flipped.npz", raw[:200] + bytes(b ^ 0xFF for b in raw[200:260]) + raw[260:])
    put("pickle.npz", pickle.dumps({"config": 1, "params": 2}))
    np.save(tmp_path / "array.npy", np.arange(10.0))
    files["array.npy"] = tmp_path / "array.npy"
    np.savez(tmp_path / "foreign.npz", weights=np.ones(3))
    files["foreign.npz"] = tmp_path / "foreign.npz"
    np.savez(tmp_path / "objects.npz", config=np.array([{"a": 1}], dtype=object), params=np.ones(3))
    files["objects.npz"] = tmp_path / "objects.npz"
    np.savez(tmp_path / "badjson.npz", config=np.frombuffer(b"{not json", np.uint8), params=np.ones(3))
    files["badjson.npz"] = tmp_path / "badjson.npz"
    with zipfile.ZipFile(tmp_path / "plain.zip", "w") as z:
        z.writestr("readme.txt", "just a zip")
    files["plain.zip"] = tmp_path / "plain.zip"
    edits = {
        "wrong-format.npz": lambda c: c.update(format="something-else"),
        "future-version.npz": lambda c: c.update(format_version=99),
        "no-layers.npz": lambda c: c.pop("layers"),
        "unknown-layer.npz": lambda c: c["layers"][0].update(kind="transformer"),
        "bad-layer-arg.npz": lambda c: c["layers"][0]["config"].update(units=-3),
        "unknown-arg.npz": lambda c: c["layers"][0]["config"].update(colour="red"),
        "bad-dtype.npz": lambda c: c.update(dtype="float16"),
        "bad-loss.npz": lambda c: c.update(loss={"name": "hinge"}),
        "bad-shape.npz": lambda c: c.update(input_shape=None),
    }
    for name, edit in edits.items():
        _rewrite(good, tmp_path / name, config_edit=edit)
        files[name] = tmp_path / name
    _rewrite(good, tmp_path / "short-params.npz", params=np.ones(5, np.float32))
    files["short-params.npz"] = tmp_path / "short-params.npz"
    _rewrite(good, tmp_path / "wrong-dtype-params.npz", params=np.ones(model.params.size, np.float64))
    files["wrong-dtype-params.npz"] = tmp_path / "wrong-dtype-params.npz"
    files["missing.npz"] = tmp_path / "missing.npz"
    return files


def test_corrupt_and_foreign_files_raise_model_file_error(tmp_path):
    files = _corrupt_files(tmp_path)
    assert len(files) > 20
    for name, path in files.items():
        with pytest.raises(ModelFileError) as info:
            load_model(path)
        assert str(path) in str(info.value) or path.name in str(info.value), name


def test_a_pickle_payload_is_never_unpickled(tmp_path):
    """A file holding a pickled object array: loading must not run its code."""

    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('unpickled!')",))

    path = tmp_path / "evil.npz"
    np.savez(path, config=np.array([Boom()], dtype=object), params=np.ones(3))
    with pytest.raises(ModelFileError):
        load_model(path)


# ---- across backends --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_saved_on_numpy_loads_on_numba_and_predicts_the_same(tmp_path, kind, require_backend):
    require_backend("numba")
    model, X = trained(kind)
    path = tmp_path / "m.npz"
    model.save(path)
    loaded = NeuralNetwork.load(path, backend="numba")
    assert loaded.backend.name == "numba"
    np.testing.assert_allclose(outputs(loaded, X), outputs(model, X), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(loaded.get_weights()[0], model.get_weights()[0])
    # And back: saved on numba, loaded on numpy.
    back = tmp_path / "back.npz"
    loaded.save(back)
    again = NeuralNetwork.load(back, backend="numpy")
    np.testing.assert_array_equal(again.params.param, model.params.param)


def test_numba_preset_loads_on_numba(tmp_path, require_backend):
    require_backend("numba")
    model, X = trained("mlp")
    path = tmp_path / "m.npz"
    model.save(path)
    loaded = NumbaBackendNeuralNetwork.load(path)
    assert type(loaded) is NumbaBackendNeuralNetwork and loaded.backend.name == "numba"
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), rtol=1e-4, atol=1e-6)


def test_same_seed_same_initial_weights_on_numba(require_backend):
    require_backend("numba")
    layers = lambda: [Conv2D(2, 3, padding=1), Flatten(), Dense(8, "tanh"), Dense(3)]  # noqa: E731
    a = NeuralNetwork(layers(), backend="numpy", seed=11, input_shape=(1, 5, 5))
    b = NeuralNetwork(layers(), backend="numba", seed=11, input_shape=(1, 5, 5))
    np.testing.assert_array_equal(np.asarray(b.backend.to_host(b.params.param)), a.params.param)
    b2 = NeuralNetwork([RNN(4), Dense(2)], backend="numba", seed=3, input_shape=(3, 2))
    a2 = NeuralNetwork([RNN(4), Dense(2)], backend="numpy", seed=3, input_shape=(3, 2))
    np.testing.assert_array_equal(np.asarray(b2.backend.to_host(b2.params.param)), a2.params.param)


def test_an_unknown_backend_blames_the_flag_not_the_file(tmp_path):
    model, _ = trained("mlp")
    model.save(tmp_path / "m.npz")
    with pytest.raises(UnknownBackendError, match=r"^unknown backend 'bogus'; installed backends: .*numpy"):
        NeuralNetwork.load(tmp_path / "m.npz", backend="bogus")
    with pytest.raises(UnknownBackendError, match="'bogus'"):  # checked before the file is even read
        load_model(tmp_path / "no-such-file.npz", backend="bogus")


def test_preset_load_refuses_another_backend(tmp_path):
    model, _ = trained("mlp")
    model.save(tmp_path / "m.npz")
    with pytest.raises(TypeError, match="always runs on backend 'numpy'"):
        BaseBackendNeuralNetwork.load(tmp_path / "m.npz", backend="numba")


@pytest.mark.parametrize("labels", [
    np.array([3, 9], np.uint8), np.array([-3, 5], np.int32), np.array([7, 2**63 + 5], np.uint64),
    np.array([False, True]), np.array(["cat", "dog"]),
], ids=["uint8", "int32", "uint64-beyond-int64", "bool", "text"])
def test_class_labels_come_back_with_their_dtype(tmp_path, labels):
    """JSON alone would make uint8 labels int64 and a uint64 label beyond int64 a rounded float."""
    X = np.random.default_rng(0).random((20, 3))
    y = labels[np.arange(20) % 2]
    model = sega_core.NeuralNetwork([3, 4, 2], backend="numpy", seed=0)
    model.fit(X, y, epochs=1, verbose=0)
    model.save(tmp_path / "m.sega")
    loaded = sega_core.load_model(tmp_path / "m.sega", backend="numpy")
    assert loaded.classes_.dtype == labels.dtype
    np.testing.assert_array_equal(loaded.classes_, labels)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
