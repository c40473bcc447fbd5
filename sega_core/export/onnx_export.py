"""A model's inference pass as a standard ONNX graph, built with the ``onnx`` package.

The graph takes ``X`` (a dynamic batch ``N``, then the model's input shape) and gives what
``predict_proba`` and ``predict`` give:

- classifiers: ``probabilities`` (N, n_classes), ``[1 - p, p]`` for a one-output binary
  model, and ``label`` (N,): the model's ``classes_`` (ints, floats, text or booleans), or
  class indices when it has none; a multi-label model's ``label`` is (N, outputs) of 0/1;
- regressors: ``values`` in the target's own units (the target scaling is graph arithmetic),
  (N,) for one output, else (N, outputs).

Each layer kind has one entry in :data:`ONNX_LAYERS`, a function ``(graph, layer, x) -> y``
appending the nodes that compute the layer: Dense -> ``Gemm``, Conv2D -> ``Conv``, pooling ->
``MaxPool``/``AveragePool``/``GlobalAveragePool``, RNN/LSTM/GRU -> the ``RNN``/``LSTM``/``GRU``
operators, BatchNormalization -> ``BatchNormalization`` with the running statistics,
Normalization -> ``Sub`` and ``Div`` by ``Sqrt(variance)``, Flatten, Reshape; Dropout writes
nothing. For a layer with an activation the entry writes the linear part and the driver adds
the activation, except where sega's output head applies it (see :mod:`sega_core.nn.head`).
The class labels, task and feature names are also in the model's metadata.

float64 models give float64 graphs. onnxruntime's CPU kernels lack float64 for some of these
operators (:data:`ONNXRUNTIME_FLOAT64_GAPS`); ``dtype="float32"`` writes a float32 graph of a
float64 model for it.
"""

from __future__ import annotations

import json

import numpy as np

from .. import __version__
from ..errors import SegaError
from ..nn.atomic import atomic_path
from ..nn.layers.base import ActivatedLayer
from ..nn.targets import classes_to_config
from ..nn.validation import canonical_dtype
from . import DEFAULT_OPSET, MIN_OPSET, ExportError, describe, layer_arrays

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError:
    raise SegaError('exporting to ONNX needs the onnx package; install it with pip install "sega-core[onnx]"') from None

#: Operators sega writes that onnxruntime's CPU provider has no float64 kernel for (checked
#: against the installed onnxruntime by the tests).
ONNXRUNTIME_FLOAT64_GAPS = frozenset({"Conv", "AveragePool", "GlobalAveragePool", "RNN", "LSTM", "GRU"})

#: protobuf cannot serialise a message over 2 GiB, and ONNX files are one message.
_PROTOBUF_LIMIT = 2**31


class Graph:
    """The nodes and constants of the graph being written, named after the layer writing them."""

    def __init__(self, dtype: np.dtype, opset: int) -> None:
        self.dtype = np.dtype(dtype)
        self.elem_type = helper.np_dtype_to_tensor_dtype(self.dtype)
        self.opset = opset
        self.scope = "model"
        self.nodes: list = []
        self.initializers: list = []
        self._names: set[str] = set()

    def name(self, hint: str) -> str:
        """A fresh value name, ``scope/hint`` (with a number if taken)."""
        base = f"{self.scope}/{hint}"
        name, k = base, 1
        while name in self._names:
            k += 1
            name = f"{base}_{k}"
        self._names.add(name)
        return name

    def const(self, hint: str, value, dtype=None) -> str:
        """A constant (initializer), floats in the graph's dtype unless ``dtype`` says otherwise."""
        array = np.asarray(value)
        if array.dtype.kind in "US":  # onnx writes text tensors from object arrays
            array = array.astype(object)
        elif dtype is not None or array.dtype.kind == "f":
            array = np.ascontiguousarray(array, dtype=self.dtype if dtype is None else dtype)
        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def ints(self, hint: str, values) -> str:
        """A 1-D int64 constant (shapes, axes)."""
        return self.const(hint, np.asarray(values, dtype=np.int64).reshape(-1), np.int64)

    def op(self, op_type: str, inputs, output: str | None = None, **attributes) -> str:
        """Append one node with one output; return the output's name."""
        return self.op_outputs(op_type, inputs, [output or True], **attributes)[0]

    def op_outputs(self, op_type: str, inputs, wanted, **attributes) -> list[str]:
        """Append one node; ``wanted`` has one entry per output: a name, True (a fresh name) or
        False (an optional output left out, ``""``)."""
        outputs = [w if isinstance(w, str) else self.name(op_type) if w else "" for w in wanted]
        self.nodes.append(helper.make_node(op_type, list(inputs), outputs, name=self.name(op_type + "_node"), **attributes))
        return outputs


# ---- layers ---------------------------------------------------------------------------------


#: sega activation -> ONNX operator (leaky ReLU and softmax take attributes: see activation()).
_ACTIVATION_OPS = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh"}


def activation(g: Graph, x: str, name: str, alpha: float = 0.0, owner: str = "the model") -> str:
    """``x`` through sega's activation ``name`` (softmax over the last axis, as sega's)."""
    if name == "linear":
        return x
    if name == "softmax":
        return g.op("Softmax", [x], axis=-1)
    if name == "leaky_relu":
        if g.dtype == np.float64:
            # onnxruntime has no float64 LeakyRelu kernel; this is the same function (sega's own
            # form: x where x > 0, else alpha * x), and every runtime has these three.
            positive = g.op("Greater", [x, g.const("zero", 0.0)])
            return g.op("Where", [positive, x, g.op("Mul", [x, g.const("alpha", alpha)])])
        return g.op("LeakyRelu", [x], alpha=float(alpha))
    if name not in _ACTIVATION_OPS:
        raise ExportError(f"{owner} uses the activation {name!r}, which has no ONNX export")
    return g.op(_ACTIVATION_OPS[name], [x])


def _dense(g: Graph, layer, x: str) -> str:
    w = layer_arrays(layer)
    return g.op("Gemm", [x, g.const("W", w["W"]), g.const("b", w["b"])])  # x @ W + b: W is (in, units)


def _pads(layer) -> list[int]:
    # The convolution's or pooling layer's own padding ((top, bottom), (left, right)), which
    # "same" computes when built; ONNX lists the starts, then the ends.
    (top, bottom), (left, right) = layer._pads
    return [top, left, bottom, right]


def _conv2d(g: Graph, layer, x: str) -> str:
    w = layer_arrays(layer)
    return g.op("Conv", [x, g.const("W", w["W"]), g.const("b", w["b"])], kernel_shape=list(layer._kernel),
                strides=list(layer._stride), pads=_pads(layer))


def _maxpool2d(g: Graph, layer, x: str) -> str:
    # ONNX's max pooling never picks padding, as sega's (padded with -inf) never does.
    return g.op("MaxPool", [x], kernel_shape=list(layer.pool_size), strides=list(layer.strides), pads=_pads(layer))


def _avgpool2d(g: Graph, layer, x: str) -> str:
    # count_include_pad=0: a window at the border averages its pixels only, as sega's does.
    return g.op("AveragePool", [x], kernel_shape=list(layer.pool_size), strides=list(layer.strides), pads=_pads(layer),
                count_include_pad=0)


def _globalavgpool2d(g: Graph, layer, x: str) -> str:
    return g.op("Flatten", [g.op("GlobalAveragePool", [x])], axis=1)


def _flatten(g: Graph, layer, x: str) -> str:
    return g.op("Flatten", [x], axis=1)


def _reshape(g: Graph, layer, x: str) -> str:
    return g.op("Reshape", [x, g.ints("shape", (-1, *layer.output_shape))])


def _dropout(g: Graph, layer, x: str) -> str:
    return x  # the identity at inference


def _normalization(g: Graph, layer, x: str) -> str:
    s = layer_arrays(layer)  # statistics shaped to broadcast against one sample
    centred = g.op("Sub", [x, g.const("mean", s["mean"])])
    return g.op("Div", [centred, g.op("Sqrt", [g.const("variance", s["variance"])])])


def _batchnormalization(g: Graph, layer, x: str) -> str:
    w = layer_arrays(layer)
    inputs = [x] + [g.const(name, w[name]) for name in ("gamma", "beta", "moving_mean", "moving_variance")]
    return g.op("BatchNormalization", inputs, epsilon=float(layer.epsilon))


def _gate_blocks(a: np.ndarray, order, units: int) -> np.ndarray:
    """The (gates * units, ...) array ``a`` with its gate blocks in ``order``."""
    return np.concatenate([a[k * units : (k + 1) * units] for k in order])


def _recurrent(g: Graph, layer, x: str, op_type: str, W, R, B, **attributes) -> str:
    """``op_type`` over (N, T, F) ``x``; ``W``, ``R``, ``B`` in ONNX's layout for one direction."""
    # onnxruntime's CPU kernels take layout=0 only, time-major: transpose in the graph.
    xt = g.op("Transpose", [x], perm=[1, 0, 2])
    inputs = [xt, g.const("W", W[None]), g.const("R", R[None]), g.const("B", B[None])]
    sequence, last = g.op_outputs(op_type, inputs, [layer.return_sequences, not layer.return_sequences],
                                  hidden_size=layer.units, **attributes)
    if layer.return_sequences:  # Y: (T, 1, N, H)
        return g.op("Transpose", [g.op("Squeeze", [sequence, g.ints("axes", [1])])], perm=[1, 0, 2])
    return g.op("Squeeze", [last, g.ints("axes", [0])])  # Y_h: (1, N, H)


#: sega's RNN activation -> ONNX RNN activation (all four run in onnxruntime's CPU kernel).
_RNN_ACTIVATIONS = {"tanh": "Tanh", "relu": "Relu", "sigmoid": "Sigmoid", "linear": "Affine"}


def _rnn(g: Graph, layer, x: str) -> str:
    w, h = layer_arrays(layer), layer.units
    act = _RNN_ACTIVATIONS.get(layer.activation)
    if act is None:
        raise ExportError(f"its activation {layer.activation!r} is none of the ONNX RNN operator's")
    extra = {"activation_alpha": [1.0], "activation_beta": [0.0]} if act == "Affine" else {}
    bias = np.concatenate([w["b"], np.zeros(h, dtype=w["b"].dtype)])  # sega's one bias is Wb; Rb is 0
    return _recurrent(g, layer, x, "RNN", w["Wx"].T, w["Wh"].T, bias, activations=[act], **extra)


def _lstm(g: Graph, layer, x: str) -> str:
    w, h = layer_arrays(layer), layer.units
    order = (0, 3, 1, 2)  # sega's gates are PyTorch's (input, forget, cell, output); ONNX's are i, o, f, c
    bias = np.concatenate([_gate_blocks(w["b"], order, h), np.zeros(4 * h, dtype=w["b"].dtype)])
    return _recurrent(g, layer, x, "LSTM", _gate_blocks(w["Wx"].T, order, h), _gate_blocks(w["Wh"].T, order, h), bias)


def _gru(g: Graph, layer, x: str) -> str:
    w, h = layer_arrays(layer), layer.units
    order = (1, 0, 2)  # sega's gates are PyTorch's (reset, update, new); ONNX's are z, r, h
    bias = np.concatenate([_gate_blocks(w["bx"], order, h), _gate_blocks(w["bh"], order, h)])
    # linear_before_reset=1 is the reset gate applied after the recurrent product (reset_after).
    return _recurrent(g, layer, x, "GRU", _gate_blocks(w["Wx"].T, order, h), _gate_blocks(w["Wh"].T, order, h), bias,
                      linear_before_reset=int(layer.reset_after))


#: Layer kind -> the function writing its nodes. An ActivatedLayer's writes its linear part.
ONNX_LAYERS = {
    "dense": _dense,
    "conv2d": _conv2d,
    "maxpool2d": _maxpool2d,
    "avgpool2d": _avgpool2d,
    "globalavgpool2d": _globalavgpool2d,
    "rnn": _rnn,
    "lstm": _lstm,
    "gru": _gru,
    "flatten": _flatten,
    "reshape": _reshape,
    "dropout": _dropout,
    "normalization": _normalization,
    "batchnormalization": _batchnormalization,
}


# ---- the model ------------------------------------------------------------------------------


def check_opset(opset) -> int:
    """``opset`` as an int sega can write with the installed onnx (``None``: the default)."""
    newest = onnx.defs.onnx_opset_version()
    if opset is None:
        return min(DEFAULT_OPSET, newest)
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or not MIN_OPSET <= opset <= newest:
        raise ExportError(
            f"opset must be an int from {MIN_OPSET} to {newest} (the newest the installed onnx {onnx.__version__} "
            f"knows), got {opset!r}"
        )
    return int(opset)


def _label_constant(classes: np.ndarray) -> np.ndarray:
    if classes.dtype.kind in "iu":
        return classes.astype(np.int64)
    if classes.dtype.kind in "USO":
        return classes.astype(str).astype(object)
    return classes  # floats and booleans as they are


def _head(g: Graph, model, out: str) -> list:
    """Nodes after the last layer: what predict_proba and predict return; the graph's outputs."""
    n = model.n_outputs
    if model.regressor:
        scaler = model.target_scaler
        if scaler is not None:  # predictions in the target's units, as predict's
            out = g.op("Add", [g.op("Mul", [out, g.const("scale", scaler.scale)]), g.const("mean", scaler.mean)])
        if n == 1:
            out = g.op("Squeeze", [out, g.ints("axes", [1])])
        g.op("Identity", [out], output="values")
        return [helper.make_tensor_value_info("values", g.elem_type, ["N"] if n == 1 else ["N", n])]
    head = model._head
    probabilities = out if head.mode == "probabilities" else activation(g, out, head.activation)
    if head.activation == "sigmoid":
        # predict's rule, on the outputs it reads: logits >= 0, or probabilities >= 0.5.
        threshold = g.const("threshold", 0.5 if head.mode == "probabilities" else 0.0)
        decided = g.op("Cast", [g.op("GreaterOrEqual", [out, threshold])], to=TensorProto.INT64)
        if n == 1:
            decided = g.op("Squeeze", [decided, g.ints("axes", [1])])
            probabilities = g.op("Concat", [g.op("Sub", [g.const("one", 1.0), probabilities]), probabilities], axis=1)
    else:
        decided = g.op("ArgMax", [out], axis=1, keepdims=0)  # the first of equal maxima, as NumPy's
    n_classes = 2 if head.activation == "sigmoid" and n == 1 else n
    g.op("Identity", [probabilities], output="probabilities")
    label_type, label_shape = TensorProto.INT64, ["N"] if n == 1 or head.activation == "softmax" else ["N", n]
    if model.classes_ is not None and len(label_shape) == 1:
        labels = _label_constant(model.classes_)
        kept = None if labels.dtype == object else labels.dtype  # float labels stay float64 in a float32 graph
        decided = g.op("Gather", [g.const("classes", labels, kept), decided], axis=0)
        label_type = helper.np_dtype_to_tensor_dtype(np.dtype(object) if labels.dtype == object else labels.dtype)
    g.op("Identity", [decided], output="label")
    return [
        helper.make_tensor_value_info("label", label_type, label_shape),
        helper.make_tensor_value_info("probabilities", g.elem_type, ["N", n_classes]),
    ]


def _metadata(model) -> dict[str, str]:
    props = {"sega_version": __version__, "task": "regressor" if model.regressor else "classifier"}
    if model.classes_ is not None:
        props["classes"] = json.dumps(classes_to_config(model.classes_))
    cli = (getattr(model, "extra_config", None) or {}).get("cli") or {}
    if isinstance(cli, dict) and cli.get("feature_names"):
        props["feature_names"] = json.dumps(cli["feature_names"])
    return props


def build_onnx(model, opset=None, dtype=None, fill_missing=None) -> "onnx.ModelProto":
    """The ONNX model of ``model``'s inference pass (see the module docstring), checked by
    ``onnx.checker``; ``dtype`` is the graph's (default: the model's). ``fill_missing``: one
    value per input feature (flattened) that replaces a missing (NaN) input, as ``sega predict``
    fills them for a model trained with ``--impute``."""
    model._require_built()
    opset = check_opset(opset)
    g = Graph(model.dtype if dtype is None else canonical_dtype(dtype), opset)
    if model.params.size * g.dtype.itemsize >= _PROTOBUF_LIMIT:
        raise ExportError(f"the model's {model.params.size:,} weights exceed ONNX's 2 GiB file limit (protobuf's)")
    x = "X"
    if fill_missing is not None:
        g.scope = "impute"
        fill = np.asarray(fill_missing, dtype=np.float64).reshape(model.input_shape)
        x = g.op("Where", [g.op("IsNaN", [x]), g.const("fill", fill), x])
    head_index = model._head.index  # fused head: that layer's activation comes after the model
    for index, layer in enumerate(model.layers):
        write = ONNX_LAYERS.get(layer.kind)
        if write is None:
            raise ExportError(f"{describe(layer, index)} cannot be exported to ONNX: no exporter for layer kind {layer.kind!r}")
        g.scope = f"{index}_{layer.kind}"
        try:
            x = write(g, layer, x)
            if isinstance(layer, ActivatedLayer) and index != head_index:
                x = activation(g, x, layer.activation, layer.alpha, describe(layer, index))
        except ExportError as exc:
            message = str(exc)
            raise ExportError(message if describe(layer, index) in message else f"{describe(layer, index)}: {message}") from None
    g.scope = "head"
    outputs = _head(g, model, x)
    inputs = [helper.make_tensor_value_info("X", g.elem_type, ["N", *model.input_shape])]
    graph = helper.make_graph(g.nodes, "sega", inputs, outputs, g.initializers,
                              doc_string="sega model: " + ", ".join(f"{type(layer).__name__}" for layer in model.layers))
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="sega",
                              producer_version=__version__)
    # The oldest IR version that holds this opset, so older runtimes read the file.
    proto.ir_version = helper.find_min_ir_version_for(list(proto.opset_import))
    helper.set_model_props(proto, _metadata(model))
    onnx.checker.check_model(proto)
    return proto


def export_onnx(model, path, opset=None, dtype=None, fill_missing=None) -> "onnx.ModelProto":
    """Write ``model``'s inference pass to ``path`` as an ONNX file, atomically; return the model.

    ``opset``: the ONNX opset (default :data:`~sega_core.export.DEFAULT_OPSET`, at least
    :data:`~sega_core.export.MIN_OPSET`). ``dtype``: ``"float32"`` or ``"float64"``, the
    graph's (default: the model's). ``fill_missing``: see :func:`build_onnx`.
    """
    proto = build_onnx(model, opset, dtype, fill_missing)
    with atomic_path(path) as tmp:
        onnx.save_model(proto, str(tmp))
    return proto
