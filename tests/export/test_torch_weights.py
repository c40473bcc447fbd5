"""Weights out under PyTorch's names and layouts: ``state_dict(format="torch")`` loads into the
equivalent ``torch.nn.Sequential`` (one module per sega layer, built as the oracle twin builds
them) and computes what sega computes; ``.safetensors`` files round-trip; ``load_weights`` takes
them back, from a file or from a PyTorch ``state_dict()``, after checking every name and shape."""

from __future__ import annotations

import numpy as np
import pytest

from sega_core import InputError, ModelFileError, NeuralNetwork
from sega_core.export import ExportError
from sega_core.nn import layers as L
from sega_core.nn.layers import LAYER_TYPES

RNG = np.random.default_rng(11)


def _fit(model, shape, n_out=3, epochs=1):
    X = RNG.normal(0.5, 1.5, size=(40, *shape))
    model.train(X, RNG.integers(0, n_out, 40), epochs=epochs, batch_size=8, lr=0.05, verbose=0)
    return model


# ---- the layouts --------------------------------------------------------------------------------


def test_a_dense_layer_is_an_nn_linear():
    model = NeuralNetwork([L.Dense(4, activation="relu"), L.Dense(2)], input_shape=(3,), seed=0)
    W0, b0, W1, b1 = model.get_weights()
    sd = model.state_dict()
    assert list(sd) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    np.testing.assert_array_equal(sd["0.weight"], W0.T)
    np.testing.assert_array_equal(sd["1.bias"], b1)
    assert all(a.flags.c_contiguous and a.dtype == np.float32 for a in sd.values())


def test_an_rnn_is_an_nn_rnn_with_a_zero_recurrent_bias():
    model = NeuralNetwork([L.RNN(4), L.Dense(2)], input_shape=(5, 3), dtype="float64", seed=0)
    Wx, Wh, b = model.get_weights()[:3]
    sd = model.state_dict()
    np.testing.assert_array_equal(sd["0.weight_ih_l0"], Wx.T)
    np.testing.assert_array_equal(sd["0.weight_hh_l0"], Wh.T)
    np.testing.assert_array_equal(sd["0.bias_ih_l0"], b)
    np.testing.assert_array_equal(sd["0.bias_hh_l0"], np.zeros(4))


def test_every_layer_kind_has_a_pytorch_layout():
    from sega_core.export.weights import TORCH_LAYOUTS

    assert set(LAYER_TYPES) <= set(TORCH_LAYOUTS)


@pytest.mark.parametrize("kind, layer, why", [
    ("rnn", lambda: L.RNN(3, activation="sigmoid"), "'sigmoid' has no PyTorch nn.RNN equivalent"),
    ("rnn", lambda: L.RNN(3, activation="linear"), "'linear' has no PyTorch nn.RNN equivalent"),
    ("gru", lambda: L.GRU(3, reset_after=False), "reset_after=False has no PyTorch equivalent"),
], ids=["rnn-sigmoid", "rnn-linear", "gru-reset-before"])
def test_layers_pytorch_lacks_are_refused_in_its_format_and_kept_in_segas(kind, layer, why, tmp_path, refused):
    if kind not in LAYER_TYPES:
        pytest.skip(f"this sega has no {kind} layer")
    model = NeuralNetwork([L.Normalization(), layer(), L.Dense(2)], input_shape=(4, 2), seed=0)
    refused(ExportError, model.state_dict, "at position 1", why, "format='sega'")
    sd = model.state_dict(format="sega")
    other = NeuralNetwork([L.Normalization(), layer(), L.Dense(2)], input_shape=(4, 2), seed=9)
    other.load_weights(sd)
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_bad_format_is_a_one_line_error(refused):
    model = NeuralNetwork([3, 2], seed=0)
    refused(InputError, lambda: model.state_dict(format="keras"), "'torch', 'sega'", "'keras'")


# ---- into PyTorch -----------------------------------------------------------------------------

torch_cases = {
    "mlp": ((6,), lambda: [L.Normalization(), L.Dense(8, activation="leaky_relu", alpha=0.1), L.Dropout(0.3),
                           L.Dense(5, activation="tanh"), L.Dense(3, activation="softmax")]),
    "cnn": ((2, 6, 6), lambda: [L.Conv2D(3, 3, stride=1, padding=1, activation="relu"), L.Conv2D(2, 2, stride=2),
                                L.Flatten(), L.Dense(3, activation="softmax")]),
    "rnn": ((5, 3), lambda: [L.RNN(4, activation="relu", return_sequences=True), L.RNN(3), L.Dense(3, activation="softmax")]),
}
if {"lstm", "gru", "batchnormalization", "maxpool2d", "avgpool2d", "globalavgpool2d"} <= set(LAYER_TYPES):
    torch_cases["gated"] = ((5, 3), lambda: [L.LSTM(4, return_sequences=True), L.GRU(3), L.Dense(4),
                                             L.BatchNormalization(momentum=0.5), L.Dense(3, activation="softmax")])
    torch_cases["pooled-cnn"] = ((2, 8, 8), lambda: [L.Conv2D(3, 3, padding=1), L.BatchNormalization(momentum=0.5),
                                                     L.MaxPool2D(2), L.Conv2D(4, 3), L.AvgPool2D(2),
                                                     L.GlobalAvgPool2D(), L.Dense(3, activation="softmax")])


def torch_twin(model):
    """A ``torch.nn.Sequential`` with one module per sega layer (activations inside), computing
    what ``model`` computes at inference, with PyTorch's own modules and fresh weights."""
    import torch
    import torch.nn.functional as F

    acts = {"linear": lambda z, a: z, "relu": lambda z, a: F.relu(z), "leaky_relu": F.leaky_relu,
            "sigmoid": lambda z, a: torch.sigmoid(z), "tanh": lambda z, a: torch.tanh(z),
            "softmax": lambda z, a: F.softmax(z, dim=-1)}
    dtype = torch.float64 if model.dtype == np.float64 else torch.float32

    class Activated:
        def forward(self, x):
            return acts[self.sega_act](super().forward(x), self.sega_alpha)

    class Linear(Activated, torch.nn.Linear):
        pass

    class Conv(Activated, torch.nn.Conv2d):
        pass

    def recurrent(base, layer):
        class Recurrent(base):
            def forward(self, x):
                out = super().forward(x)[0]
                return out if layer.return_sequences else out[:, -1]

        return Recurrent

    class Normalization(torch.nn.Module):
        def __init__(self, shape):
            super().__init__()
            self.register_buffer("mean", torch.zeros(shape, dtype=dtype))
            self.register_buffer("variance", torch.ones(shape, dtype=dtype))

        def forward(self, x):
            return (x - self.mean) / torch.sqrt(self.variance)

    class GlobalAvgPool(torch.nn.Module):
        def forward(self, x):
            return x.mean(dim=(2, 3))

    modules = []
    for layer in model.layers:
        kind, shape = layer.kind, layer.input_shape
        if kind in ("dense", "conv2d"):
            m = (Linear(shape[0], layer.units, dtype=dtype) if kind == "dense" else
                 Conv(shape[0], layer.filters, layer.kernel_size, layer.stride, layer.padding, dtype=dtype))
            m.sega_act, m.sega_alpha = layer.activation, layer.alpha
        elif kind == "rnn":
            m = recurrent(torch.nn.RNN, layer)(shape[1], layer.units, nonlinearity=layer.activation, batch_first=True, dtype=dtype)
        elif kind in ("lstm", "gru"):
            base = torch.nn.LSTM if kind == "lstm" else torch.nn.GRU
            m = recurrent(base, layer)(shape[1], layer.units, batch_first=True, dtype=dtype)
        elif kind == "batchnormalization":
            bn = torch.nn.BatchNorm1d if len(shape) == 1 else torch.nn.BatchNorm2d
            m = bn(shape[0], eps=layer.epsilon, momentum=1 - layer.momentum, dtype=dtype)
        elif kind == "normalization":
            m = Normalization(layer.state["mean"].shape)
        elif kind in ("maxpool2d", "avgpool2d"):
            assert layer.padding == "valid"
            pool = torch.nn.MaxPool2d if kind == "maxpool2d" else torch.nn.AvgPool2d
            m = pool(layer.pool_size, layer.strides)
        elif kind == "globalavgpool2d":
            m = GlobalAvgPool()
        elif kind == "flatten":
            m = torch.nn.Flatten()
        elif kind == "dropout":
            m = torch.nn.Dropout(layer.rate)
        else:
            raise AssertionError(f"no twin for {kind}")
        modules.append(m)
    return torch.nn.Sequential(*modules).eval()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(torch_cases))
def test_state_dict_loads_into_the_pytorch_twin_and_computes_the_same(name, dtype):
    torch = pytest.importorskip("torch")
    shape, layers = torch_cases[name]
    model = _fit(NeuralNetwork(layers(), dtype=dtype, seed=2), shape)
    twin = torch_twin(model)
    twin.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()}, strict=True)
    X = RNG.normal(0.5, 1.5, size=(37, *shape)).astype(dtype)
    with torch.no_grad():
        got = twin(torch.from_numpy(X)).numpy()
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == "float32" else dict(rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(got, model.predict_proba(X), **tol)


@pytest.mark.parametrize("name", list(torch_cases))
def test_a_pytorch_state_dict_loads_into_sega(name):
    """PyTorch to sega: the twin's own random weights, through load_weights, give its outputs."""
    torch = pytest.importorskip("torch")
    shape, layers = torch_cases[name]
    model = _fit(NeuralNetwork(layers(), dtype="float64", seed=2), shape)
    twin = torch_twin(model)
    twin.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})  # statistics as sega's
    torch.manual_seed(0)
    with torch.no_grad():
        for p in twin.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    model.load_weights(twin.state_dict())
    X = RNG.normal(0.5, 1.5, size=(37, *shape))
    with torch.no_grad():
        want = twin(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(model.predict_proba(X), want, rtol=1e-9, atol=1e-11)


# ---- safetensors files ------------------------------------------------------------------------


@pytest.mark.parametrize("format", ["torch", "sega"])
def test_safetensors_files_round_trip(format, tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    shape, layers = torch_cases["mlp"]
    model = _fit(NeuralNetwork(layers(), seed=2), shape)
    path = tmp_path / "w.safetensors"
    model.save_safetensors(path, format=format)
    stored = st.load_file(str(path))
    assert set(stored) == set(model.state_dict(format))
    fresh = NeuralNetwork(layers(), input_shape=shape, seed=99)
    fresh.load_weights(path)
    X = RNG.normal(size=(9, *shape))
    np.testing.assert_array_equal(fresh.predict_proba(X), model.predict_proba(X))
    assert fresh.layers[0].adapted  # loaded statistics are not fitted again by training
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]


def test_a_safetensors_file_loads_into_pytorch_with_its_own_loader(tmp_path):
    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")
    from safetensors import safe_open

    shape, layers = torch_cases["cnn"]
    model = _fit(NeuralNetwork(layers(), seed=2), shape)
    model.save_safetensors(tmp_path / "w.safetensors")
    with safe_open(str(tmp_path / "w.safetensors"), framework="pt") as f:
        assert f.metadata()["format"] == "pt"
    twin = torch_twin(model)
    twin.load_state_dict(st_torch.load_file(str(tmp_path / "w.safetensors")))
    X = RNG.normal(size=(7, *shape)).astype(np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(twin(torch.from_numpy(X)).numpy(), model.predict_proba(X), rtol=1e-4, atol=1e-5)


# ---- refusals ---------------------------------------------------------------------------------


def _model():
    return NeuralNetwork([L.Dense(4), L.Dense(2)], input_shape=(3,), seed=0)


@pytest.mark.parametrize("change, parts", [
    (lambda sd: sd.pop("1.bias"), ["lacks 1.bias"]),
    (lambda sd: sd.update({"2.weight": np.zeros(2)}), ["unexpected 2.weight"]),
    (lambda sd: sd.update({"0.weight": np.zeros((3, 4))}), ["'0.weight' has shape (3, 4)", "(4, 3)"]),
    (lambda sd: sd["0.bias"].__setitem__(0, np.nan), ["'0.bias'", "NaN"]),
    (lambda sd: sd.update({"0.bias": np.array(["a", "b", "c", "d"])}), ["'0.bias'", "numbers"]),
], ids=["missing", "unexpected", "shape", "nan", "text"])
def test_weights_that_do_not_fit_are_refused_in_one_line_and_change_nothing(change, parts, refused):
    model = _model()
    before = model.get_weights()
    sd = model.state_dict()
    change(sd)
    refused(InputError, lambda: model.load_weights(sd), *parts)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_float64_weights_beyond_float32_are_refused(refused):
    model = _model()
    sd = {k: v.astype(np.float64) for k, v in model.state_dict().items()}
    sd["0.weight"][0, 0] = 1e300
    refused(InputError, lambda: model.load_weights(sd), "'0.weight'", "float32")


def test_a_bad_file_is_a_one_line_model_file_error(tmp_path, refused):
    pytest.importorskip("safetensors")
    model = _model()
    refused(ModelFileError, lambda: model.load_weights(tmp_path / "none.safetensors"), "not found")
    refused(ModelFileError, lambda: model.load_weights(tmp_path), "is a folder")
    (tmp_path / "bad.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    refused(ModelFileError, lambda: model.load_weights(tmp_path / "bad.safetensors"), "not a readable .safetensors file")


def test_something_else_is_a_one_line_input_error(refused):
    refused(InputError, lambda: _model().load_weights([1, 2, 3]), "a .safetensors path or a dict")
