"""PyTorch as a test-only oracle for sega: random architectures, their torch twins, and checks.

Everything the differential test knows about sega's building blocks lives in the registries
below, so a new block is one entry:

``LAYERS``      sega layer kind -> :class:`LayerKind`: how to draw a random instance for an input
                shape, its output shape, the sega object, and the torch module that computes the
                same function from sega's weight arrays (in ``get_weights`` order).
``ACTIVATIONS`` activation name -> torch function.
``TASKS``       loss/target kind -> the sega ``loss_function``, the torch loss, and a target
                generator (integer labels, one-hot, soft rows, binary labels, regression values).
``OPTIMIZERS``  name -> (sega optimizer object, torch optimizer) from one hyper-parameter dict.
``SCHEDULERS``  name -> (sega scheduler object, torch scheduler) likewise.

The torch side is written from what sega *means* (README and docstrings), not from how sega
computes it: float64 throughout, nn.RNN where torch has the recurrence, the output head rule
applied exactly once (a model whose final operation is its loss's activation outputs
probabilities; otherwise its outputs are logits).

The only place that reads sega internals is :func:`sega_loss_and_grads` (the flat gradient and
its layout); update it if that layout changes.

Adding a layer type (MaxPool2D, BatchNormalization, LSTM, GRU...) is one ``LAYERS`` entry:

- ``sega``: spec dict -> the sega layer object;
- ``torch``: ``(spec, arrays, input_shape)`` -> a :class:`TLayer` subclass whose leaf tensors are
  the layer's ``get_weights()`` arrays in sega's layout (``roles`` says which are L2-regularised
  weights), which sets ``act`` (its final activation, or None) and ``pre`` (the pre-activation
  of its output) in ``forward`` so the head rule can find the logits;
- ``out_shape``, ``weight_shapes``: per-sample shapes;
- ``draw(rng, input_shape, training)``: a random spec for that input shape, or None if it does
  not fit (the generator then places the layer anywhere it fits, first, hidden or last);
- ``shape_only=True`` for a layer that only moves values or is the identity at inference
  (the head rule looks through it); ``activations``: the names the coverage test demands.

A layer that can be the model's output layer (has an activation) also goes in
``OUTPUT_LAYERS`` with a branch in ``_output_block``. ``test_the_cases_cover_...`` then fails
until the random cases reach the new layer in every position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

import sega_core
from sega_core import RNN, SGD, Adadelta, Adam, Conv2D, Dense, Dropout, Flatten, Huber, NeuralNetwork
from sega_core import ExponentialLR, ReduceLROnPlateau, StepLR

try:  # layers that came later; the registry skips what this sega does not have
    from sega_core.nn.layers import Reshape
except ImportError:  # pragma: no cover
    Reshape = None
try:
    from sega_core.nn.layers import Normalization
except ImportError:  # pragma: no cover
    Normalization = None
try:
    from sega_core.nn.layers import GRU, LSTM, AvgPool2D, BatchNormalization, GlobalAvgPool2D, MaxPool2D
except ImportError:  # pragma: no cover
    GRU = LSTM = AvgPool2D = BatchNormalization = GlobalAvgPool2D = MaxPool2D = None

T64 = torch.float64


# ---------------------------------------------------------------------------------------------
# sega internals: the one helper that reads them
# ---------------------------------------------------------------------------------------------


def sega_loss_and_grads(model, X, y):
    """``(loss, grads)``: sega's eval-mode loss (L2 included) and its parameter gradients as a
    list of arrays laid out like ``model.get_weights()``.

    Reads the flat gradient buffer and its layout ``model.params._layout`` (entries
    ``(layer index, ParamSpec, offset, size)``, weights first then biases). This is the only
    function of the oracle that touches sega internals.
    """
    loss, flat = model._loss_and_grad(X, y)
    by_layer = sorted(model.params._layout, key=lambda e: e[0])  # stable: W before b in a layer
    return float(loss), [np.array(flat[o : o + n]).reshape(spec.shape) for _, spec, o, n in by_layer]


# ---------------------------------------------------------------------------------------------
# activations
# ---------------------------------------------------------------------------------------------

ACTIVATIONS: dict[str, Callable] = {
    "linear": lambda z, alpha: z,
    "relu": lambda z, alpha: F.relu(z),
    "leaky_relu": lambda z, alpha: F.leaky_relu(z, alpha),
    "sigmoid": lambda z, alpha: torch.sigmoid(z),
    "tanh": lambda z, alpha: torch.tanh(z),
    "softmax": lambda z, alpha: F.softmax(z, dim=-1),  # over the last axis, as documented
}
RNN_ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")


# ---------------------------------------------------------------------------------------------
# torch twins of sega layers
# ---------------------------------------------------------------------------------------------


class TLayer(torch.nn.Module):
    """A torch layer holding leaf tensors in sega's layout (so optimizer states line up)."""

    #: The activation this layer ends with (None: no activation, e.g. Flatten).
    act: str | None = None

    def __init__(self, spec: dict, arrays: list[np.ndarray], roles: list[str]) -> None:
        super().__init__()
        self.spec = spec
        self.tensors: list[torch.Tensor] = []
        self.roles = list(roles)
        for i, a in enumerate(arrays):
            p = torch.nn.Parameter(torch.tensor(np.asarray(a, dtype=np.float64), dtype=T64))
            self.register_parameter(f"p{i}", p)
            self.tensors.append(p)
        self.pre = None  # pre-activation of the last forward

    def _activate(self, z):
        self.pre = z
        return ACTIVATIONS[self.act](z, self.spec.get("alpha", 0.01))


class TDense(TLayer):
    def __init__(self, spec, arrays, in_shape):
        super().__init__(spec, arrays, ["weight", "bias"])
        self.act = spec["activation"]

    def forward(self, x):
        W, b = self.tensors
        return self._activate(F.linear(x, W.T, b))  # y = x @ W + b, W is (in, out)


class TConv2D(TLayer):
    def __init__(self, spec, arrays, in_shape):
        super().__init__(spec, arrays, ["weight", "bias"])
        self.act = spec["activation"]

    def forward(self, x):
        W, b = self.tensors
        return self._activate(F.conv2d(x, W, b, stride=self.spec["stride"], padding=self.spec["padding"]))


class TRNN(TLayer):
    """Elman RNN: torch's nn.RNN for tanh/relu, the recurrence written out for sigmoid/linear."""

    def __init__(self, spec, arrays, in_shape):
        super().__init__(spec, arrays, ["weight", "weight", "bias"])
        self.act = spec["activation"]
        t, f = in_shape
        h = spec["units"]
        if self.act in ("tanh", "relu"):
            # Not a submodule: its own parameters are replaced by ours in functional_call.
            self.__dict__["_rnn"] = torch.nn.RNN(f, h, nonlinearity=self.act, batch_first=True, dtype=T64)

    def forward(self, x):
        Wx, Wh, b = self.tensors
        if self.act in ("tanh", "relu"):
            weights = {"weight_ih_l0": Wx.T, "weight_hh_l0": Wh.T, "bias_ih_l0": b, "bias_hh_l0": torch.zeros_like(b)}
            hs, _ = torch.func.functional_call(self._rnn, weights, (x,))
            pre = None  # tanh/relu never are a classification head
        else:
            h = torch.zeros(x.shape[0], Wh.shape[0], dtype=x.dtype)
            states, pres = [], []
            for t in range(x.shape[1]):
                a = x[:, t] @ Wx + h @ Wh + b
                h = ACTIVATIONS[self.act](a, None)
                states.append(h)
                pres.append(a)
            hs, pre = torch.stack(states, 1), torch.stack(pres, 1)
        if self.spec["return_sequences"]:
            self.pre = pre
            return hs
        self.pre = None if pre is None else pre[:, -1]
        return hs[:, -1]


class TFlatten(TLayer):
    def __init__(self, spec, arrays, in_shape):
        super().__init__(spec, arrays, [])

    def forward(self, x):
        return x.reshape(x.shape[0], -1)


class TReshape(TLayer):
    def __init__(self, spec, arrays, in_shape):
        super().__init__(spec, arrays, [])

    def forward(self, x):
        return x.reshape((x.shape[0],) + tuple(self.spec["target_shape"]))


class TDropout(TLayer):
    def __init__(self, spec, arrays, in_shape):
        super().__init__(spec, arrays, [])
        self.drop = torch.nn.Dropout(spec["rate"])

    def forward(self, x):
        return self.drop(x)


class TNormalization(TLayer):
    """(x - mean) / sqrt(variance); a zero variance scales by 1 (sega's documented rule)."""

    def __init__(self, spec, arrays, in_shape):
        super().__init__(spec, arrays, [])
        var = np.asarray(spec["variance"], dtype=np.float64)
        self.mean = torch.tensor(np.asarray(spec["mean"], dtype=np.float64))
        self.std = torch.tensor(np.sqrt(np.where(var == 0, 1.0, var)))

    def forward(self, x):
        return (x - self.mean) / self.std


def _same_pads(size, window, stride):
    """TensorFlow's "same" padding of one axis (the odd pixel at the end), as sega documents it."""
    out = -(-size // stride)
    total = max((out - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def _pool_pads(spec, in_shape):
    (ph, pw), (sh, sw) = spec["pool_size"], spec["strides"]
    if spec["padding"] == "valid":
        return (0, 0), (0, 0)
    return _same_pads(in_shape[1], ph, sh), _same_pads(in_shape[2], pw, sw)


class TPool(TLayer):
    """Max or average pooling; padding never takes part (max over -inf, mean over the pixels only)."""

    def __init__(self, spec, arrays, in_shape):
        super().__init__(spec, arrays, [])
        (top, bottom), (left, right) = _pool_pads(spec, in_shape)
        self.pads = (left, right, top, bottom)

    def forward(self, x):
        pool, stride = tuple(self.spec["pool_size"]), tuple(self.spec["strides"])
        if self.spec["kind"] == "maxpool2d":
            return F.max_pool2d(F.pad(x, self.pads, value=-math.inf), pool, stride)
        total = F.avg_pool2d(F.pad(x, self.pads), pool, stride, divisor_override=1)
        count = F.avg_pool2d(F.pad(torch.ones_like(x[:1, :1]), self.pads), pool, stride, divisor_override=1)
        return total / count


class TGlobalAvgPool(TLayer):
    def __init__(self, spec, arrays, in_shape):
        super().__init__(spec, arrays, [])

    def forward(self, x):
        return x.mean(dim=(2, 3))


class TBatchNorm(TLayer):
    """Batch statistics (biased variance) in training, updating running ones with Keras's
    momentum convention; the running ones at inference."""

    def __init__(self, spec, arrays, in_shape):
        super().__init__(spec, arrays, ["bias", "bias"])
        c = in_shape[0]
        self.running_mean, self.running_var = torch.zeros(c, dtype=T64), torch.ones(c, dtype=T64)

    def forward(self, x):
        gamma, beta = self.tensors
        shape = (1, -1) + (1,) * (x.ndim - 2)
        axes = (0,) + tuple(range(2, x.ndim))
        eps, momentum = self.spec["epsilon"], self.spec["momentum"]
        if self.training:
            mean, var = x.mean(axes), x.var(axes, unbiased=False)
            with torch.no_grad():
                self.running_mean = momentum * self.running_mean + (1 - momentum) * mean
                self.running_var = momentum * self.running_var + (1 - momentum) * var
        else:
            mean, var = self.running_mean, self.running_var
        return (x - mean.reshape(shape)) / torch.sqrt(var.reshape(shape) + eps) * gamma.reshape(shape) + beta.reshape(shape)


class TGated(TLayer):
    """LSTM (torch's nn.LSTM, one bias) or GRU (nn.GRU; the reset gate before the product written out)."""

    def __init__(self, spec, arrays, in_shape):
        lstm = spec["kind"] == "lstm"
        super().__init__(spec, arrays, ["weight", "weight", "bias"] + ([] if lstm else ["bias"]))
        f, h = in_shape[1], spec["units"]
        if lstm:
            self.__dict__["_rnn"] = torch.nn.LSTM(f, h, batch_first=True, dtype=T64)
        elif spec["reset_after"]:
            self.__dict__["_rnn"] = torch.nn.GRU(f, h, batch_first=True, dtype=T64)

    def forward(self, x):
        if self.spec["kind"] == "lstm":
            Wx, Wh, b = self.tensors
            weights = {"weight_ih_l0": Wx.T, "weight_hh_l0": Wh.T, "bias_ih_l0": b, "bias_hh_l0": torch.zeros_like(b)}
            hs, _ = torch.func.functional_call(self._rnn, weights, (x,))
        elif self.spec["reset_after"]:
            Wx, Wh, bx, bh = self.tensors
            weights = {"weight_ih_l0": Wx.T, "weight_hh_l0": Wh.T, "bias_ih_l0": bx, "bias_hh_l0": bh}
            hs, _ = torch.func.functional_call(self._rnn, weights, (x,))
        else:
            Wx, Wh, bx, bh = self.tensors
            hidden = Wh.shape[0]
            h = torch.zeros(x.shape[0], hidden, dtype=x.dtype)
            states = []
            for t in range(x.shape[1]):
                ax = x[:, t] @ Wx + bx
                r = torch.sigmoid(ax[:, :hidden] + h @ Wh[:, :hidden] + bh[:hidden])
                z = torch.sigmoid(ax[:, hidden : 2 * hidden] + h @ Wh[:, hidden : 2 * hidden] + bh[hidden : 2 * hidden])
                n = torch.tanh(ax[:, 2 * hidden :] + (r * h) @ Wh[:, 2 * hidden :] + bh[2 * hidden :])
                h = (1 - z) * n + z * h
                states.append(h)
            hs = torch.stack(states, 1)
        return hs if self.spec["return_sequences"] else hs[:, -1]


# ---------------------------------------------------------------------------------------------
# layer registry: drawing random layers, their shapes, the sega object, the torch twin
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerKind:
    """One sega layer type as the oracle knows it."""

    name: str
    #: spec dict -> a new sega layer object
    sega: Callable[[dict], object]
    #: (spec, arrays in get_weights order, per-sample input shape) -> torch module
    torch: Callable
    #: (spec, per-sample input shape) -> per-sample output shape
    out_shape: Callable[[dict, tuple], tuple]
    #: (rng, per-sample input shape, training case?) -> a random spec, or None if the shape does not fit
    draw: Callable
    #: shapes of its weight arrays (get_weights order) for an input shape
    weight_shapes: Callable[[dict, tuple], list] = lambda spec, shape: []
    #: parameter-free layers that only reshape, or are the identity at inference (Dropout: the
    #: training cases use rate 0), so an activation before them keeps its meaning
    shape_only: bool = False
    activations: tuple = ()


def _draw_activation(rng, allowed):
    return str(rng.choice(allowed))


def _alpha(rng):
    return float(rng.choice([0.01, 0.2]))


def _conv_out(spec, shape):
    c, h, w = shape
    k, s, p = spec["kernel_size"], spec["stride"], spec["padding"]
    return (spec["filters"], (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)


def _conv_options(shape, max_out=40):
    """Every (kernel, stride, padding) whose output fits ``shape``."""
    c, h, w = shape
    out = []
    for k in (1, 2, 3):
        for s in (1, 2):
            for p in (0, 1):
                ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
                if ho >= 1 and wo >= 1 and ho * wo <= max_out:
                    out.append((k, s, p))
    return out


def _draw_dense(rng, shape, training):
    if len(shape) != 1:
        return None
    act = _draw_activation(rng, tuple(ACTIVATIONS))
    spec = {"kind": "dense", "units": int(rng.integers(1, 7)), "activation": act}
    if act == "leaky_relu":
        spec["alpha"] = _alpha(rng)
    return spec


def _draw_conv(rng, shape, training):
    if len(shape) != 3:
        return None
    options = _conv_options(shape)
    if not options:
        return None
    k, s, p = options[int(rng.integers(len(options)))]
    # In training cases no softmax over a convolution's last axis: it makes the filter's bias
    # irrelevant (its exact gradient is 0), and Adam turns float32 rounding in a zero gradient
    # into full steps, so the float32 runs would differ by design, not by a bug.
    act = _draw_activation(rng, tuple(a for a in ACTIVATIONS if not (training and a == "softmax")))
    spec = {"kind": "conv2d", "filters": int(rng.integers(1, 4)), "kernel_size": k, "stride": s, "padding": p,
            "activation": act}
    if act == "leaky_relu":
        spec["alpha"] = _alpha(rng)
    return spec


def _draw_rnn(rng, shape, training):
    if len(shape) != 2:
        return None
    return {"kind": "rnn", "units": int(rng.integers(1, 5)), "activation": _draw_activation(rng, RNN_ACTIVATIONS),
            "return_sequences": bool(rng.integers(2))}


def _draw_flatten(rng, shape, training):
    return {"kind": "flatten"}


def _draw_dropout(rng, shape, training):
    return {"kind": "dropout", "rate": 0.0 if training else float(rng.choice([0.0, 0.25, 0.5, 0.9]))}


def _factor_shapes(size):
    """Shapes of rank 1 to 3 holding ``size`` values."""
    shapes = [(size,)]
    for a in range(1, size + 1):
        if size % a == 0:
            shapes.append((a, size // a))
            rest = size // a
            for b in range(1, rest + 1):
                if rest % b == 0:
                    shapes.append((a, b, rest // b))
    return shapes


def _draw_reshape(rng, shape, training):
    size = math.prod(shape)
    options = _factor_shapes(size)
    target = list(options[int(rng.integers(len(options)))])
    if rng.random() < 0.3:
        target[int(rng.integers(len(target)))] = -1
    return {"kind": "reshape", "target_shape": tuple(target)}


def _reshape_out(spec, shape):
    size = math.prod(shape)
    known = math.prod(s for s in spec["target_shape"] if s != -1)
    return tuple(size // known if s == -1 else s for s in spec["target_shape"])


def _draw_normalization(rng, shape, training):
    rank = len(shape) + 1
    axes = [-1, None] + ([1] if rank == 4 else [])
    axis = axes[int(rng.integers(len(axes)))]
    kept = set() if axis is None else {axis % rank - 1}
    stat = tuple(s if i in kept else 1 for i, s in enumerate(shape))
    mean = rng.normal(0, 0.5, size=stat)
    variance = rng.uniform(0.25, 2.0, size=stat)
    if variance.size > 1 and rng.random() < 0.5:
        variance.flat[int(rng.integers(variance.size))] = 0.0  # a constant feature: scaled by 1
    return {"kind": "normalization", "axis": axis, "mean": mean, "variance": variance}


def _sega_dense(spec):
    return Dense(spec["units"], activation=spec["activation"], **({"alpha": spec["alpha"]} if "alpha" in spec else {}))


def _sega_conv(spec):
    return Conv2D(spec["filters"], spec["kernel_size"], stride=spec["stride"], padding=spec["padding"],
                  activation=spec["activation"], **({"alpha": spec["alpha"]} if "alpha" in spec else {}))


LAYERS: dict[str, LayerKind] = {
    "dense": LayerKind(
        "dense", _sega_dense, TDense, lambda spec, shape: (spec["units"],), _draw_dense,
        weight_shapes=lambda spec, shape: [(shape[0], spec["units"]), (spec["units"],)],
        activations=tuple(ACTIVATIONS),
    ),
    "conv2d": LayerKind(
        "conv2d", _sega_conv, TConv2D, _conv_out, _draw_conv,
        weight_shapes=lambda spec, shape: [(spec["filters"], shape[0], spec["kernel_size"], spec["kernel_size"]),
                                           (spec["filters"],)],
        activations=tuple(ACTIVATIONS),
    ),
    "rnn": LayerKind(
        "rnn", lambda spec: RNN(spec["units"], activation=spec["activation"], return_sequences=spec["return_sequences"]),
        TRNN, lambda spec, shape: (shape[0], spec["units"]) if spec["return_sequences"] else (spec["units"],), _draw_rnn,
        weight_shapes=lambda spec, shape: [(shape[1], spec["units"]), (spec["units"], spec["units"]), (spec["units"],)],
        activations=RNN_ACTIVATIONS,
    ),
    "flatten": LayerKind("flatten", lambda spec: Flatten(), TFlatten, lambda spec, shape: (math.prod(shape),),
                         _draw_flatten, shape_only=True),
    "dropout": LayerKind("dropout", lambda spec: Dropout(spec["rate"]), TDropout, lambda spec, shape: shape,
                         _draw_dropout, shape_only=True),
}
if Reshape is not None:
    LAYERS["reshape"] = LayerKind("reshape", lambda spec: Reshape(spec["target_shape"]), TReshape, _reshape_out,
                                  _draw_reshape, shape_only=True)
if Normalization is not None:
    LAYERS["normalization"] = LayerKind(
        "normalization", lambda spec: Normalization(spec["axis"], mean=spec["mean"], variance=spec["variance"]),
        TNormalization, lambda spec, shape: shape, _draw_normalization,
    )



def _draw_pool(kind):
    def draw(rng, shape, training):
        if len(shape) != 3:
            return None
        c, h, w = shape
        padding = str(rng.choice(["valid", "same"]))
        limit = (h, w) if padding == "valid" else (3, 3)
        pool = (int(rng.integers(1, min(3, limit[0]) + 1)), int(rng.integers(1, min(3, limit[1]) + 1)))
        strides = pool if rng.random() < 0.5 else (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        return {"kind": kind, "pool_size": pool, "strides": strides, "padding": padding}

    return draw


def _pool_out(spec, shape):
    c, h, w = shape
    (top, bottom), (left, right) = _pool_pads(spec, shape)
    (ph, pw), (sh, sw) = spec["pool_size"], spec["strides"]
    return (c, (h + top + bottom - ph) // sh + 1, (w + left + right - pw) // sw + 1)


def _draw_global_pool(rng, shape, training):
    return {"kind": "globalavgpool2d"} if len(shape) == 3 else None


def _draw_batchnorm(rng, shape, training):
    # A flat training batch of one sample cannot be normalised (sega refuses it, as PyTorch does),
    # and the training cases draw batches of one.
    if len(shape) not in (1, 3) or (training and len(shape) == 1):
        return None
    return {"kind": "batchnormalization", "momentum": float(rng.choice([0.99, 0.5])),
            "epsilon": float(rng.choice([1e-3, 1e-5]))}


def _draw_gated(kind):
    def draw(rng, shape, training):
        if len(shape) != 2:
            return None
        spec = {"kind": kind, "units": int(rng.integers(1, 5)), "return_sequences": bool(rng.integers(2))}
        if kind == "gru":
            spec["reset_after"] = bool(rng.integers(2))
        return spec

    return draw


def _gated_shapes(spec, shape):
    gates = 4 if spec["kind"] == "lstm" else 3
    f, h = shape[1], spec["units"]
    biases = [(gates * h,)] * (1 if spec["kind"] == "lstm" else 2)
    return [(f, gates * h), (h, gates * h)] + biases


if MaxPool2D is not None:
    for _kind, _cls in (("maxpool2d", MaxPool2D), ("avgpool2d", AvgPool2D)):
        LAYERS[_kind] = LayerKind(
            _kind, (lambda cls: lambda spec: cls(spec["pool_size"], spec["strides"], spec["padding"]))(_cls),
            TPool, _pool_out, _draw_pool(_kind),
        )
    LAYERS["globalavgpool2d"] = LayerKind("globalavgpool2d", lambda spec: GlobalAvgPool2D(), TGlobalAvgPool,
                                          lambda spec, shape: (shape[0],), _draw_global_pool)
    LAYERS["batchnormalization"] = LayerKind(
        "batchnormalization", lambda spec: BatchNormalization(spec["momentum"], spec["epsilon"]), TBatchNorm,
        lambda spec, shape: shape, _draw_batchnorm, weight_shapes=lambda spec, shape: [(shape[0],), (shape[0],)],
    )
    LAYERS["lstm"] = LayerKind(
        "lstm", lambda spec: LSTM(spec["units"], return_sequences=spec["return_sequences"]), TGated,
        lambda spec, shape: (shape[0], spec["units"]) if spec["return_sequences"] else (spec["units"],), _draw_gated("lstm"),
        weight_shapes=_gated_shapes,
    )
    LAYERS["gru"] = LayerKind(
        "gru", lambda spec: GRU(spec["units"], return_sequences=spec["return_sequences"], reset_after=spec["reset_after"]),
        TGated, lambda spec, shape: (shape[0], spec["units"]) if spec["return_sequences"] else (spec["units"],),
        _draw_gated("gru"), weight_shapes=_gated_shapes,
    )

#: Layers with an activation that can be the model's output layer (the last one with weights).
OUTPUT_LAYERS = ("dense", "conv2d", "rnn")


def trailing_kinds() -> list[str]:
    """Layer kinds that can follow the output layer: not output layers, and able to keep a flat
    (n,) shape for some draw (found by trying)."""
    found = []
    for name, kind in LAYERS.items():
        if name in OUTPUT_LAYERS:
            continue
        rng = np.random.default_rng(0)
        for _ in range(30):
            spec = kind.draw(rng, (4,), False)
            if spec is not None and kind.out_shape(spec, (4,)) == (4,):
                found.append(name)
                break
    return found


# ---------------------------------------------------------------------------------------------
# tasks: losses and targets
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """A loss and the form of its targets."""

    name: str
    loss: str  # the torch-side loss: cross_entropy, bce, mse, mae, huber
    regressor: bool
    n_out: Callable[[int], bool]  # which output counts the task accepts
    targets: Callable  # (rng, N, n_out) -> y as a user passes it
    head: str | None  # the activation the loss is fused with


def _soft_rows(rng, n, c):
    return rng.dirichlet(np.ones(c), size=n)


TASKS: dict[str, Task] = {
    t.name: t
    for t in [
        Task("ce_int", "cross_entropy", False, lambda k: k >= 2, lambda r, n, k: r.integers(0, k, n), "softmax"),
        Task("ce_onehot", "cross_entropy", False, lambda k: k >= 2,
             lambda r, n, k: np.eye(k)[r.integers(0, k, n)], "softmax"),
        Task("ce_soft", "cross_entropy", False, lambda k: k >= 2, _soft_rows, "softmax"),
        Task("bce1_labels", "bce", False, lambda k: k == 1, lambda r, n, k: r.integers(0, 2, n), "sigmoid"),
        Task("bce1_column", "bce", False, lambda k: k == 1, lambda r, n, k: r.integers(0, 2, (n, 1)), "sigmoid"),
        Task("bce1_prob", "bce", False, lambda k: k == 1, lambda r, n, k: r.uniform(0, 1, (n, 1)), "sigmoid"),
        Task("bceK_labels", "bce", False, lambda k: k >= 2, lambda r, n, k: r.integers(0, 2, (n, k)), "sigmoid"),
        Task("bceK_prob", "bce", False, lambda k: k >= 2, lambda r, n, k: r.uniform(0, 1, (n, k)), "sigmoid"),
        Task("mse", "mse", True, lambda k: 1 <= k <= 6, lambda r, n, k: r.normal(0, 1, (n, k)), None),
        Task("mae", "mae", True, lambda k: 1 <= k <= 6, lambda r, n, k: r.normal(0, 1, (n, k)), None),
        Task("huber", "huber", True, lambda k: 1 <= k <= 6, lambda r, n, k: r.normal(0, 2, (n, k)), None),
    ]
}


def torch_data_loss(task_name: str, logits, target, delta: float = 1.0, weight=None):
    """The mean data loss of ``logits`` (the loss input after the head rule) in torch.

    With per-sample ``weight``: each sample's loss terms scaled by its weight, then the plain
    mean (Keras's convention: the weights scale the loss, the batch size still divides it).
    """
    task = TASKS[task_name]
    reduction = "mean" if weight is None else "none"
    if task.loss == "cross_entropy":
        terms = F.cross_entropy(logits, target, reduction=reduction)
    else:
        target = target.reshape(logits.shape)
        if task.loss == "bce":
            terms = F.binary_cross_entropy_with_logits(logits, target, reduction=reduction)
        elif task.loss == "mse":
            terms = F.mse_loss(logits, target, reduction=reduction)
        elif task.loss == "mae":
            terms = F.l1_loss(logits, target, reduction=reduction)
        else:
            terms = F.huber_loss(logits, target, delta=delta, reduction=reduction)
    if weight is None:
        return terms
    return (terms * weight.reshape((-1,) + (1,) * (terms.ndim - 1))).mean()


# ---------------------------------------------------------------------------------------------
# optimizers and schedulers
# ---------------------------------------------------------------------------------------------

OPTIMIZERS = {
    "sgd": (
        lambda h: SGD(lr=h["lr"], momentum=h["momentum"], nesterov=h["nesterov"]),
        lambda h, ps: torch.optim.SGD(ps, lr=h["lr"], momentum=h["momentum"], nesterov=h["nesterov"]),
    ),
    "adam": (
        lambda h: Adam(lr=h["lr"], beta1=h["beta1"], beta2=h["beta2"], eps=h["eps"]),
        lambda h, ps: torch.optim.Adam(ps, lr=h["lr"], betas=(h["beta1"], h["beta2"]), eps=h["eps"]),
    ),
    "adadelta": (
        lambda h: Adadelta(lr=h["lr"], rho=h["rho"], eps=h["eps"]),
        lambda h, ps: torch.optim.Adadelta(ps, lr=h["lr"], rho=h["rho"], eps=h["eps"]),
    ),
}

#: sega's defaults for an optimizer given by name (``train(optimizer="sgd", lr=...)``).
OPTIMIZER_DEFAULTS = {
    "sgd": {"momentum": 0.0, "nesterov": False},
    "adam": {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
    "adadelta": {"rho": 0.9, "eps": 1e-6},
}


def _draw_optimizer(rng):
    name = str(rng.choice(list(OPTIMIZERS)))
    mode = str(rng.choice(["object", "object", "name", "object_and_lr"]))
    by_name = mode == "name"
    if name == "sgd":
        h = {"lr": float(rng.choice([0.05, 0.2])), "momentum": float(rng.choice([0.0, 0.9])), "nesterov": False}
        h["nesterov"] = bool(h["momentum"] > 0 and rng.random() < 0.5)
    elif name == "adam":
        h = {"lr": float(rng.choice([0.01, 0.05])), "beta1": float(rng.choice([0.9, 0.5])),
             "beta2": float(rng.choice([0.999, 0.9])), "eps": float(rng.choice([1e-8, 1e-3]))}
    else:
        h = {"lr": float(rng.choice([1.0, 0.5])), "rho": float(rng.choice([0.9, 0.5])), "eps": float(rng.choice([1e-6, 1e-3]))}
    if by_name:
        h = {"lr": h["lr"], **OPTIMIZER_DEFAULTS[name]}
    # object_and_lr: train(optimizer=<object built with another lr>, lr=h["lr"]); the lr argument wins.
    return {"name": name, "by_name": by_name, "lr_argument": mode == "object_and_lr", **h}


SCHEDULERS = {
    "none": (lambda h: None, lambda h, opt: None),
    "step": (lambda h: StepLR(step_size=h["step_size"], gamma=h["gamma"]),
             lambda h, opt: torch.optim.lr_scheduler.StepLR(opt, step_size=h["step_size"], gamma=h["gamma"])),
    "exponential": (lambda h: ExponentialLR(gamma=h["gamma"]),
                    lambda h, opt: torch.optim.lr_scheduler.ExponentialLR(opt, gamma=h["gamma"])),
    "plateau": (
        lambda h: ReduceLROnPlateau(factor=h["factor"], patience=h["patience"], threshold=h["threshold"], min_lr=h["min_lr"]),
        lambda h, opt: torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="min", factor=h["factor"], patience=h["patience"], threshold=h["threshold"],
            threshold_mode="rel", min_lr=h["min_lr"]),
    ),
}


def _draw_scheduler(rng, lr):
    name = str(rng.choice(list(SCHEDULERS)))
    if name == "step":
        return {"name": name, "step_size": int(rng.integers(1, 3)), "gamma": float(rng.choice([0.5, 0.1]))}
    if name == "exponential":
        return {"name": name, "gamma": float(rng.choice([0.7, 0.95]))}
    if name == "plateau":
        # A large relative threshold makes the plateau rule fire within a few epochs.
        return {"name": name, "factor": float(rng.choice([0.5, 0.2])), "patience": int(rng.integers(0, 2)),
                "threshold": float(rng.choice([1e-4, 0.5])), "min_lr": float(rng.choice([0.0, lr * 0.3]))}
    return {"name": "none"}


# ---------------------------------------------------------------------------------------------
# random cases
# ---------------------------------------------------------------------------------------------


@dataclass
class Case:
    """One random model, its data and (for training cases) its training schedule."""

    index: int
    task: str
    input_shape: tuple
    layers: list  # layer specs
    n_out: int
    reg_lambda: float
    loss_arg: object  # what is passed as loss_function (None, a name, or ("huber", delta))
    huber_delta: float
    n: int
    from_sizes: list | None = None  # build with NeuralNetwork(sizes) instead of layer objects
    dropout_rate: float = 0.0  # with from_sizes
    training: dict | None = None
    seed: int = 0
    shapes: list = field(default_factory=list)  # per-sample input shape of each layer
    name: str = ""  # hand-written cases have one

    @property
    def regressor(self) -> bool:
        return TASKS[self.task].regressor

    # ---- the sega side -----------------------------------------------------------------------

    def sega_loss(self):
        if self.loss_arg is None:
            return None
        if isinstance(self.loss_arg, tuple):
            return Huber(self.loss_arg[1])
        return self.loss_arg

    def sega_model(self, backend: str, dtype: str) -> NeuralNetwork:
        kwargs = dict(loss_function=self.sega_loss(), regressor=self.regressor, reg_lambda=self.reg_lambda,
                      backend=backend, dtype=dtype, seed=self.seed)
        if self.from_sizes is not None:
            return NeuralNetwork(list(self.from_sizes), dropout_rate=self.dropout_rate, **kwargs)
        return NeuralNetwork([LAYERS[s["kind"]].sega(s) for s in self.layers], input_shape=self.input_shape, **kwargs)

    def code(self, backend="numpy", dtype="float64") -> str:
        """Python that builds the same sega model (for failure messages and reports)."""
        def arg(s):
            kind = s["kind"]
            if kind == "dense":
                extra = f", alpha={s['alpha']}" if "alpha" in s else ""
                return f"Dense({s['units']}, activation={s['activation']!r}{extra})"
            if kind == "conv2d":
                extra = f", alpha={s['alpha']}" if "alpha" in s else ""
                return (f"Conv2D({s['filters']}, {s['kernel_size']}, stride={s['stride']}, padding={s['padding']}, "
                        f"activation={s['activation']!r}{extra})")
            if kind == "rnn":
                return f"RNN({s['units']}, activation={s['activation']!r}, return_sequences={s['return_sequences']})"
            if kind == "dropout":
                return f"Dropout({s['rate']})"
            if kind == "reshape":
                return f"Reshape({tuple(s['target_shape'])})"
            if kind == "normalization":
                return f"Normalization({s['axis']!r}, mean=<{np.shape(s['mean'])}>, variance=<{np.shape(s['variance'])}>)"
            if kind in ("maxpool2d", "avgpool2d"):
                name = "MaxPool2D" if kind == "maxpool2d" else "AvgPool2D"
                return f"{name}({tuple(s['pool_size'])}, {tuple(s['strides'])}, {s['padding']!r})"
            if kind == "globalavgpool2d":
                return "GlobalAvgPool2D()"
            if kind == "batchnormalization":
                return f"BatchNormalization({s['momentum']}, {s['epsilon']})"
            if kind in ("lstm", "gru"):
                extra = f", reset_after={s['reset_after']}" if kind == "gru" else ""
                return f"{kind.upper()}({s['units']}, return_sequences={s['return_sequences']}{extra})"
            return "Flatten()"

        loss = self.sega_loss()
        loss_txt = f"Huber({loss.delta})" if isinstance(loss, sega_core.nn.losses.Loss) else repr(loss)
        head = (f"NeuralNetwork({list(self.from_sizes)}, dropout_rate={self.dropout_rate}" if self.from_sizes is not None
                else f"NeuralNetwork([{', '.join(arg(s) for s in self.layers)}], input_shape={self.input_shape}")
        text = (f"{head}, loss_function={loss_txt}, regressor={self.regressor}, reg_lambda={self.reg_lambda}, "
                f"backend={backend!r}, dtype={dtype!r}, seed={self.seed})  # task {self.task}, N={self.n}")
        if self.training:
            t = self.training
            text += (f"\n  train: {t['optimizer']}, {t['scheduler']}, epochs={t['epochs']}, batch_size={t['batch_size']}, "
                     f"validation samples={t.get('n_val', 0)}, early_stopping_patience={t.get('patience')}, "
                     f"weights={t.get('weights', 'none')}")
        return text

    def data(self, n=None, stream=1):
        """``(X, y)`` as a user passes them (float64 X, targets in the task's form)."""
        rng = np.random.default_rng([self.seed, stream])
        n = self.n if n is None else n
        X = rng.normal(0, 1, (n,) + tuple(self.input_shape))
        y = TASKS[self.task].targets(rng, n, self.n_out)
        if self.regressor and self.n_out == 1 and rng.random() < 0.5:
            y = y[:, 0]  # a regressor's single target as (N,)
        return X, y

    def validation_data(self):
        """Validation ``(X_val, y_val)`` of a training case, or None."""
        n_val = (self.training or {}).get("n_val", 0)
        return self.data(n_val, stream=3) if n_val else None

    def new_weights(self, weights: list[np.ndarray]) -> list[np.ndarray]:
        """sega's initial weights with random (non-zero) biases, so bias paths are exercised."""
        rng = np.random.default_rng([self.seed, 2])
        out, i = [], 0
        for spec, shape in zip(self.layers, self.shapes):
            kind = LAYERS[spec["kind"]]
            for j, wshape in enumerate(kind.weight_shapes(spec, shape)):
                w = np.array(weights[i], dtype=np.float64)
                if j == len(kind.weight_shapes(spec, shape)) - 1 and kind.name in OUTPUT_LAYERS:
                    w = rng.uniform(-0.5, 0.5, size=w.shape)  # the bias
                out.append(w)
                i += 1
        return out


def _output_block(rng, task: Task, shape: tuple, kind: str, training: bool):
    """The model's output layer (and the Flatten it needs), drawn so the output count suits ``task``.

    Returns (specs, n_out) or None when ``shape`` does not suit ``kind``.
    """
    def activation(allowed):
        if task.head in allowed and rng.random() < 0.5:
            return task.head  # the head's own activation: the fused/probability path
        return _draw_activation(rng, allowed)

    def wants(k):
        return task.n_out(k) and k <= 8

    if kind == "dense":
        if len(shape) != 1:
            return None
        candidates = [k for k in range(1, 9) if wants(k)]
        k = int(rng.choice(candidates))
        spec = {"kind": "dense", "units": k, "activation": activation(tuple(ACTIVATIONS))}
        if spec["activation"] == "leaky_relu":
            spec["alpha"] = _alpha(rng)
        return [spec], k
    if kind == "conv2d":
        if len(shape) != 3:
            return None
        options = []
        for k, s, p in _conv_options(shape):
            for f in (1, 2, 3):
                n = math.prod(_conv_out({"filters": f, "kernel_size": k, "stride": s, "padding": p}, shape))
                if wants(n):
                    options.append((f, k, s, p))
        if not options:
            return None
        f, k, s, p = options[int(rng.integers(len(options)))]
        allowed = tuple(a for a in ACTIVATIONS if not (training and a == "softmax" and math.prod(
            _conv_out({"filters": f, "kernel_size": k, "stride": s, "padding": p}, shape)[:-1]) != 1))
        spec = {"kind": "conv2d", "filters": f, "kernel_size": k, "stride": s, "padding": p,
                "activation": activation(allowed)}
        if spec["activation"] == "leaky_relu":
            spec["alpha"] = _alpha(rng)
        return [spec, {"kind": "flatten"}], math.prod(_conv_out(spec, shape))
    if kind == "rnn":
        if len(shape) != 2:
            return None
        t = shape[0]
        seq = rng.random() < 0.4
        units = [u for u in range(1, 7) if wants(u * t if seq else u)]
        if not units:
            return None
        u = int(rng.choice(units))
        spec = {"kind": "rnn", "units": u, "activation": activation(RNN_ACTIVATIONS), "return_sequences": bool(seq)}
        return ([spec, {"kind": "flatten"}] if seq else [spec]), (u * t if seq else u)
    raise ValueError(kind)


def _to_rank(rng, shape, rank):
    """A Flatten or Reshape spec that turns samples of ``shape`` into rank ``rank`` (or None)."""
    if len(shape) == rank:
        return None
    size = math.prod(shape)
    if rank == 1:
        return {"kind": "flatten"} if "reshape" not in LAYERS or rng.random() < 0.6 else {"kind": "reshape", "target_shape": (-1,)}
    options = [s for s in _factor_shapes(size) if len(s) == rank and (rank != 3 or s[1] * s[2] > 1)]
    if not options or "reshape" not in LAYERS:
        return False
    target = list(options[int(rng.integers(len(options)))])
    return {"kind": "reshape", "target_shape": tuple(target)}


INPUT_SHAPES = {1: [(1,), (3,), (5,), (7,)], 2: [(1, 3), (3, 2), (4, 1), (2, 5)], 3: [(1, 3, 3), (2, 4, 3), (1, 5, 2), (3, 3, 4)]}
RANK_OF = {"dense": 1, "rnn": 2, "conv2d": 3}


def make_case(index: int, training: bool = False) -> Case:
    """The ``index``-th random case (deterministic)."""
    seed = 10_000 * (2 if training else 1) + index
    rng = np.random.default_rng(seed)
    task_names = list(TASKS)
    task = TASKS[task_names[index % len(task_names)]]
    head_kind = OUTPUT_LAYERS[(index // len(task_names)) % len(OUTPUT_LAYERS)]
    for _attempt in range(200):
        case = _try_case(rng, index, task, head_kind, training, seed)
        if case is not None:
            return case
    raise RuntimeError(f"could not draw case {index}")


def _try_case(rng, index, task, head_kind, training, seed):
    reg_lambda = float(rng.choice([0.0, 0.0, 0.05, 0.3]))
    n = int(rng.choice([1, 2, 3, 5, 7])) if not training else int(rng.choice([5, 7, 9, 11]))

    # Now and then: a model built from sizes (Dense layers, default output activation).
    if rng.random() < 0.1 and task.name in ("ce_int", "bce1_labels", "mse"):
        k = {"ce_int": int(rng.integers(2, 5)), "bce1_labels": 1, "mse": int(rng.integers(1, 3))}[task.name]
        sizes = [int(rng.integers(1, 6))] + [int(rng.integers(1, 6)) for _ in range(int(rng.integers(0, 3)))] + [k]
        out_act = "linear" if task.regressor else ("softmax" if k > 1 else "sigmoid")
        rate = 0.0 if training else float(rng.choice([0.0, 0.5]))
        layers = []
        for i, units in enumerate(sizes[1:]):
            last = i == len(sizes) - 2
            layers.append({"kind": "dense", "units": units, "activation": out_act if last else "relu"})
            if rate > 0 and not last:
                layers.append({"kind": "dropout", "rate": rate})
        case = Case(index, task.name, (sizes[0],), layers, k, reg_lambda, None, 1.0, n, from_sizes=sizes,
                    dropout_rate=rate, seed=seed)
        return _finish(rng, case, training)

    # The body: random layers from a random input, then a conversion to what the output layer takes.
    rank = int(rng.integers(1, 4))
    shape = INPUT_SHAPES[rank][int(rng.integers(4))]
    input_shape = shape
    layers = []
    for _ in range(int(rng.choice([0, 1, 1, 2, 2, 3]))):
        kinds = list(LAYERS)
        kind = LAYERS[kinds[int(rng.integers(len(kinds)))]]
        spec = kind.draw(rng, shape, training)
        if spec is None:
            continue
        new_shape = kind.out_shape(spec, shape)
        if math.prod(new_shape) > 60:
            continue
        layers.append(spec)
        shape = new_shape
    convert = _to_rank(rng, shape, RANK_OF[head_kind])
    if convert is False:
        return None
    if convert is not None:
        layers.append(convert)
        shape = LAYERS[convert["kind"]].out_shape(convert, shape)
    block = _output_block(rng, task, shape, head_kind, training)
    if block is None:
        return None
    specs, n_out = block
    layers += specs
    # Trailing layers after the output layer: any layer without an activation that keeps the
    # (n_out,) shape (Dropout, Flatten, Reshape, Normalization...).
    for _ in range(int(rng.choice([0, 0, 1, 2]))):
        kinds = trailing_kinds()
        kind = LAYERS[kinds[int(rng.integers(len(kinds)))]]
        for _try in range(10):
            spec = kind.draw(rng, (n_out,), training)
            if spec is not None and kind.out_shape(spec, (n_out,)) == (n_out,):
                layers.append(spec)
                break

    if task.name == "huber":
        delta = float(rng.choice([0.5, 1.0, 2.0]))
        loss_arg = ("huber", delta) if delta != 1.0 or rng.random() < 0.5 else "huber"
    else:
        delta = 1.0
        default = {"cross_entropy": "cross_entropy", "bce": "bce_with_logits", "mse": "mse", "mae": "mae"}[task.loss]
        implicit = (task.loss == "cross_entropy" and n_out > 1) or (task.loss == "bce" and n_out == 1) or task.loss == "mse"
        loss_arg = None if implicit and rng.random() < 0.5 else default
    case = Case(index, task.name, tuple(input_shape), layers, n_out, reg_lambda, loss_arg, delta, n, seed=seed)
    return _finish(rng, case, training)


def _finish(rng, case: Case, training: bool) -> Case:
    shape = case.input_shape
    case.shapes = []
    for spec in case.layers:
        case.shapes.append(shape)
        shape = LAYERS[spec["kind"]].out_shape(spec, shape)
    assert shape == (case.n_out,), (case.layers, shape)
    if training:
        opt = _draw_optimizer(rng)
        sched = _draw_scheduler(rng, opt["lr"])
        epochs = int(rng.integers(2, 5))
        batch = int(rng.choice([1, 2, 3, 4, 16]))
        if batch != 1 and case.n % batch == 0:
            batch += 1  # a last, partial batch
        n_val = int(rng.choice([0, 0, 1, 3]))
        patience = int(rng.choice([1, 2])) if rng.random() < 0.3 else None
        classes = case.task in ("ce_int", "bce1_labels")
        modes = ["none", "sample", "class_dict", "balanced"] if classes else ["none", "none", "sample"]
        case.training = {"optimizer": opt, "scheduler": sched, "epochs": epochs, "batch_size": batch,
                         "n_val": n_val, "patience": patience, "weights": str(rng.choice(modes))}
    return case


# ---------------------------------------------------------------------------------------------
# the torch twin of a sega model
# ---------------------------------------------------------------------------------------------


class TorchTwin:
    """The torch model computing what ``case`` means, on the weights of a sega model."""

    def __init__(self, case: Case, weights: list[np.ndarray]) -> None:
        self.case = case
        self.modules: list[TLayer] = []
        i = 0
        for spec, shape in zip(case.layers, case.shapes):
            kind = LAYERS[spec["kind"]]
            n_w = len(kind.weight_shapes(spec, shape))
            arrays = weights[i : i + n_w]
            for a, want in zip(arrays, kind.weight_shapes(spec, shape)):
                assert tuple(np.shape(a)) == tuple(want), f"{spec['kind']} weight shape {np.shape(a)} != {want}"
            self.modules.append(kind.torch(spec, arrays, shape))
            i += n_w
        assert i == len(weights), f"sega has {len(weights)} weight arrays, the oracle expects {i}"
        self.fused = self._head_index()

    def parameters(self) -> list[torch.Tensor]:
        """Leaf tensors in ``get_weights`` order."""
        return [t for m in self.modules for t in m.tensors]

    def weight_roles(self) -> list[str]:
        return [r for m in self.modules for r in m.roles]

    def _head_index(self) -> int | None:
        """Index of the layer whose activation is the loss's own (applied once, by the loss), or None.

        The rule: the model's final operation, looking through layers that only reshape (Flatten,
        Reshape) or are the identity at inference (Dropout), is the activation the loss is fused
        with (softmax for cross-entropy, over the whole output vector; sigmoid for BCE).
        """
        head = TASKS[self.case.task].head
        if head is None:
            return None
        for i in range(len(self.modules) - 1, -1, -1):
            m = self.modules[i]
            if LAYERS[self.case.layers[i]["kind"]].shape_only:
                continue
            if m.act != head:
                return None
            out_shape = LAYERS[self.case.layers[i]["kind"]].out_shape(self.case.layers[i], self.case.shapes[i])
            if head == "softmax" and math.prod(out_shape[:-1]) != 1:
                return None  # a softmax over another axis than the whole output vector
            return i
        return None

    def forward(self, x: torch.Tensor):
        """``(outputs, logits)``: the model's outputs and the input of the loss/head."""
        for m in self.modules:
            x = m(x)
        if self.fused is None:
            return x, x
        z = self.modules[self.fused].pre
        for m in self.modules[self.fused + 1 :]:
            z = m(z)
        return x, z

    def set_mode(self, training: bool):
        for m in self.modules:
            m.train(training)

    def penalty(self, reg_lambda: float):
        total = torch.zeros((), dtype=T64)
        for t, role in zip(self.parameters(), self.weight_roles()):
            if role == "weight":
                total = total + (t * t).sum()
        return 0.5 * reg_lambda * total

    def loss(self, X, target):
        """Mean data loss + L2 penalty (a torch scalar) on ``X`` (a tensor)."""
        _, logits = self.forward(X)
        return torch_data_loss(self.case.task, logits, target, self.case.huber_delta) + self.penalty(self.case.reg_lambda)

    def probabilities(self, X):
        """What ``predict_proba`` must return."""
        _, logits = self.forward(X)
        if TASKS[self.case.task].head == "softmax":
            return torch.softmax(logits, dim=1)
        p = torch.sigmoid(logits)
        return torch.cat([1 - p, p], dim=1) if p.shape[1] == 1 else p


def torch_targets(case: Case, y: np.ndarray, dtype) -> torch.Tensor:
    """Targets as torch takes them, from the user's ``y`` (rounded to the model's dtype)."""
    task = TASKS[case.task]
    y = np.asarray(y)
    if task.name == "ce_int":
        return torch.tensor(y.astype(np.int64))
    y = y.astype(dtype).astype(np.float64)
    if task.loss == "bce" or task.regressor:
        y = y.reshape(len(y), -1)
    return torch.tensor(y)


def torch_inputs(X: np.ndarray, dtype) -> torch.Tensor:
    """The inputs as the sega model sees them (rounded to its dtype), in float64."""
    return torch.tensor(np.asarray(X, dtype=dtype).astype(np.float64))


def torch_metric(case: Case, logits, out, target, weight=None) -> float:
    """The training metric summed over a batch (weighted by ``weight``), as sega documents it:
    correct predictions (classifiers; the fraction of correct outputs for binary cross-entropy)
    or the mean absolute error of a sample's outputs (regressors)."""
    task = TASKS[case.task]
    if task.regressor:
        per_sample = (out - target.reshape(out.shape)).abs().mean(1)
    elif task.head == "sigmoid":
        per_sample = ((logits >= 0) == (target.reshape(logits.shape) >= 0.5)).to(T64).mean(1)
    else:
        truth = target if target.ndim == 1 else target.argmax(1)
        per_sample = (logits.argmax(1) == truth).to(T64)
    return float(per_sample.sum() if weight is None else (per_sample * weight).sum())


def torch_train(case: Case, twin: TorchTwin, X: torch.Tensor, y: torch.Tensor, val=None, weight=None):
    """sega's training loop written in torch: a history dict of per-epoch lists.

    One optimizer step per mini-batch, batches in order (the last one partial); an epoch's loss
    is the batch-size weighted mean of the losses the steps minimised (data + L2 penalty at the
    weights each batch saw); the validation loss (eval mode, penalty included) at the epoch's
    end weights; the scheduler stepped once after each epoch on the monitored loss (validation
    if there is validation data, else training); early stopping after ``patience`` epochs
    without improvement of the monitored loss, restoring the best weights.
    """
    t = case.training
    h = dict(t["optimizer"])
    params = twin.parameters()
    opt = OPTIMIZERS[h["name"]][1](h, params)
    sh = t["scheduler"]
    sched = SCHEDULERS[sh["name"]][1](sh, opt)
    n, b = len(X), t["batch_size"]
    history = {"loss": [], "metric": [], "lr": [], "val_loss": []}
    best, best_params, waited = math.inf, None, 0
    for _epoch in range(t["epochs"]):
        twin.set_mode(True)
        history["lr"].append(opt.param_groups[0]["lr"])
        total, metric = 0.0, 0.0
        for start in range(0, n, b):
            stop = min(start + b, n)
            opt.zero_grad()
            out, logits = twin.forward(X[start:stop])
            wb = None if weight is None else weight[start:stop]
            loss = torch_data_loss(case.task, logits, y[start:stop], case.huber_delta, wb) + twin.penalty(case.reg_lambda)
            with torch.no_grad():
                metric += torch_metric(case, logits, out, y[start:stop], wb)
            loss.backward()
            opt.step()
            total += loss.item() * (stop - start)
        twin.set_mode(False)
        history["loss"].append(total / n)
        history["metric"].append(metric / (n if weight is None else float(weight.sum())))
        monitored = history["loss"][-1]
        if val is not None:
            with torch.no_grad():
                monitored = twin.loss(*val).item()
            history["val_loss"].append(monitored)
        if sched is not None:
            if sh["name"] == "plateau":
                sched.step(monitored)
            else:
                sched.step()
        if t.get("patience"):
            if monitored < best:
                best, best_params, waited = monitored, [p.detach().clone() for p in params], 0
            else:
                waited += 1
                if waited >= t["patience"]:
                    break
    if best_params is not None:
        with torch.no_grad():
            for p, v in zip(params, best_params):
                p.copy_(v)
    return history


def sample_weights(case: Case, y) -> tuple[dict, np.ndarray | None]:
    """``(train keyword arguments, per-sample weights)`` for a training case's weighting: none,
    ``sample_weight`` (random, some zero), ``class_weight`` as a dict (labels missing from it
    weigh 1) or ``"balanced"`` (``n / (n_classes * count)``, scikit-learn's rule)."""
    mode = (case.training or {}).get("weights", "none")
    rng = np.random.default_rng([case.seed, 4])
    n = len(y)
    if mode == "sample":
        w = rng.uniform(0.1, 3.0, n)
        w[rng.random(n) < 0.2] = 0.0
        w[0] = max(w[0], 0.5)  # never all zero
        return {"sample_weight": w}, w
    if mode == "none":
        return {}, None
    labels = np.asarray(y).reshape(n)
    n_classes = 2 if TASKS[case.task].name == "bce1_labels" else case.n_out
    if mode == "balanced" and len(np.unique(labels)) == n_classes:
        counts = np.bincount(labels, minlength=n_classes)
        return {"class_weight": "balanced"}, n / (n_classes * counts[labels])
    if mode in ("class_dict", "balanced"):
        cw = {int(c): float(rng.choice([0.5, 2.0, 3.0])) for c in range(n_classes) if rng.random() < 0.7}
        return {"class_weight": cw}, np.array([cw.get(int(l), 1.0) for l in labels])
    return {}, None


def sega_train_args(case: Case) -> dict:
    """Keyword arguments of sega's ``train`` for a training case (not its weights: see sample_weights)."""
    t = case.training
    h = dict(t["optimizer"])
    sh = t["scheduler"]
    args = dict(epochs=t["epochs"], batch_size=t["batch_size"], shuffle=False, progress=False,
                lr_scheduler=SCHEDULERS[sh["name"]][0](sh))
    if t.get("patience"):
        args["early_stopping_patience"] = t["patience"]
    val = case.validation_data()
    if val is not None:
        args.update(X_val=val[0], y_val=val[1])
    if h["by_name"]:
        args.update(optimizer=h["name"], lr=h["lr"])
    elif h.get("lr_argument"):
        args.update(optimizer=OPTIMIZERS[h["name"]][0]({**h, "lr": h["lr"] * 3}), lr=h["lr"])
    else:
        args["optimizer"] = OPTIMIZERS[h["name"]][0](h)
    return args


# ---------------------------------------------------------------------------------------------
# comparisons
# ---------------------------------------------------------------------------------------------

#: Relative tolerances per dtype (float64 tight, float32 loose).
RTOL = {"float64": 1e-6, "float32": 1e-3}


def assert_close(got, want, dtype: str, what: str, case: Case, backend: str, factor: float = 1.0):
    """``got`` (sega) agrees with ``want`` (torch) to the dtype's tolerance, scaled by magnitude."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: sega shape {got.shape}, torch shape {want.shape}\n{case.code(backend, dtype)}"
    rtol = RTOL[dtype] * factor
    scale = max(1.0, float(np.abs(want).max())) if want.size else 1.0
    bad = ~np.isclose(got, want, rtol=rtol, atol=rtol * scale)
    if bad.any():
        worst = int(np.argmax(np.abs(got - want)))
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {got.size} values differ (worst: sega {got.ravel()[worst]!r} vs torch "
            f"{want.ravel()[worst]!r}; rtol {rtol})\n{case.code(backend, dtype)}\n"
            f"sega:  {np.array2string(got.ravel()[:8], precision=6)}\ntorch: {np.array2string(want.ravel()[:8], precision=6)}"
        )


def coverage(cases: list[Case]) -> dict:
    """What a list of cases exercises: (layer kind, position), (kind, activation), tasks,
    optimizers, schedulers, and whether some model is built from sizes."""
    seen = {"positions": set(), "activations": set(), "tasks": set(), "optimizers": set(), "schedulers": set(),
            "output_activations": set(), "sizes": False, "partial_batch": False, "batch_1": False}
    for c in cases:
        seen["tasks"].add(c.task)
        seen["sizes"] |= c.from_sizes is not None
        last_param = max((i for i, s in enumerate(c.layers) if s["kind"] in OUTPUT_LAYERS), default=None)
        for i, s in enumerate(c.layers):
            if i == 0:
                pos = "first"
            elif i == len(c.layers) - 1 or (i == last_param and s["kind"] in OUTPUT_LAYERS):
                pos = "output"
            else:
                pos = "hidden"
            seen["positions"].add((s["kind"], pos))
            if "activation" in s:
                seen["activations"].add((s["kind"], s["activation"]))
                if i == last_param:
                    seen["output_activations"].add((s["kind"], s["activation"]))
        if c.n == 1:
            seen["batch_1"] = True
        if c.training:
            seen["optimizers"].add((c.training["optimizer"]["name"], c.training["optimizer"]["by_name"]))
            seen["schedulers"].add(c.training["scheduler"]["name"])
            if c.n % c.training["batch_size"]:
                seen["partial_batch"] = True
    return seen


# ---------------------------------------------------------------------------------------------
# hand-written cases: edges the random draw reaches rarely or never
# ---------------------------------------------------------------------------------------------


def custom_case(index, task, input_shape, layers, n, reg_lambda=0.0, loss_arg=None, delta=1.0, training=None) -> Case:
    """A case from explicit layer specs (shapes are worked out here)."""
    shape = tuple(input_shape)
    for spec in layers:
        shape = LAYERS[spec["kind"]].out_shape(spec, shape)
    if loss_arg is None:
        loss = TASKS[task].loss
        if loss in ("mae", "huber") or (loss == "bce" and shape[0] > 1):
            loss_arg = {"bce": "bce_with_logits"}.get(loss, loss)
    case = Case(index, task, tuple(input_shape), list(layers), shape[0], reg_lambda, loss_arg, delta, n,
                seed=30_000 + index)
    _finish(np.random.default_rng(case.seed), case, False)
    if training is not None:
        case.training = {"n_val": 0, "patience": None, "scheduler": {"name": "none"}, **training}
    return case


def _dense(units, activation):
    return {"kind": "dense", "units": units, "activation": activation}


def _rnn(units, activation, seq=False):
    return {"kind": "rnn", "units": units, "activation": activation, "return_sequences": seq}


def _conv(filters, k, activation, stride=1, padding=0):
    return {"kind": "conv2d", "filters": filters, "kernel_size": k, "stride": stride, "padding": padding,
            "activation": activation}


FLAT = {"kind": "flatten"}


def _gated(kind, units, seq=False, reset_after=True):
    spec = {"kind": kind, "units": units, "return_sequences": seq}
    if kind == "gru":
        spec["reset_after"] = reset_after
    return spec


def _pool(kind, pool, strides=None, padding="valid"):
    return {"kind": kind, "pool_size": pool, "strides": strides or pool, "padding": padding}


BN = {"kind": "batchnormalization", "momentum": 0.9, "epsilon": 1e-3}


def named_cases() -> tuple[list[Case], list[Case]]:
    """Cases chosen by hand: output heads of every layer type, work big enough for the numba
    backend to split batches across threads, inference in several chunks."""
    adam = {"name": "adam", "by_name": False, "lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
    sgd = {"name": "sgd", "by_name": False, "lr": 0.05, "momentum": 0.9, "nesterov": True}
    cases = {
        # The head is the output layer's activation, whatever that layer is.
        "rnn_sigmoid_head_bce": custom_case(0, "bce1_labels", (3, 2), [_rnn(1, "sigmoid")], 6),
        "rnn_sequence_sigmoid_head_bce": custom_case(1, "bceK_labels", (3, 2), [_rnn(1, "sigmoid", True), FLAT], 6),
        "conv_sigmoid_head_bce": custom_case(2, "bce1_labels", (1, 3, 3), [_conv(1, 3, "sigmoid"), FLAT], 6),
        # A softmax over the last axis of a (1, 1, K) convolution output is a softmax over the K outputs.
        "conv_softmax_head_ce": custom_case(3, "ce_int", (2, 1, 5), [_conv(1, 1, "softmax"), FLAT], 6),
        "dense_softmax_then_dropout_ce": custom_case(
            4, "ce_soft", (4,), [_dense(3, "softmax"), {"kind": "dropout", "rate": 0.5}, FLAT], 5),
        "dense_sigmoid_then_dropout_bce": custom_case(
            5, "bce1_column", (4,), [_dense(1, "sigmoid"), {"kind": "dropout", "rate": 0.5}], 5),
        # Enough work per batch for the numba backend to cut it into shares (one per thread).
        "wide_mlp": custom_case(6, "ce_int", (300,), [_dense(512, "relu"), _dense(10, "linear")], 70, reg_lambda=0.01),
        "long_rnn": custom_case(7, "mse", (20, 32), [_rnn(64, "tanh"), _dense(2, "linear")], 70),
        "wide_conv": custom_case(8, "ce_onehot", (3, 16, 16), [_conv(16, 3, "relu", padding=1), FLAT, _dense(4, "linear")],
                                 100),
        # Inference in several chunks (4096 samples per pass).
        "many_samples": custom_case(9, "bceK_prob", (3,), [_dense(4, "tanh"), _dense(2, "linear")], 4100, reg_lambda=0.1),
        # Recurrent layers with gates as the output layer: their outputs are logits.
        "lstm_output_ce": custom_case(20, "ce_int", (4, 3), [_gated("lstm", 3)], 6),
        "gru_sequence_output_bce": custom_case(21, "bceK_labels", (3, 2), [_gated("gru", 2, True), FLAT], 6),
        "gru_reset_before_output_mse": custom_case(22, "mse", (4, 2), [_gated("gru", 2, reset_after=False)], 6),
        "stacked_lstm_gru": custom_case(23, "ce_onehot", (5, 3), [_rnn(2, "tanh", True), _gated("lstm", 4, True),
                                                                   _gated("gru", 3)], 5),
        # A LeNet-like stack: convolution, pooling of both kinds, batch normalization.
        "lenet_like": custom_case(24, "ce_int", (1, 8, 8), [_conv(3, 3, "relu", padding=1), _pool("maxpool2d", (2, 2)), BN,
                                                           _conv(4, 3, "relu"), _pool("avgpool2d", (2, 2), (1, 1), "same"),
                                                           {"kind": "globalavgpool2d"}, _dense(3, "softmax")], 7),
        "pooling_output_bce": custom_case(25, "bceK_prob", (2, 4, 4), [_conv(1, 1, "linear"),
                                                                       _pool("maxpool2d", (3, 3), (2, 2), "same"), FLAT], 5),
        "rnn_between_gated_layers": custom_case(32, "mse", (4, 2), [_gated("lstm", 3, True), _rnn(3, "tanh", True),
                                                                    _gated("gru", 2), _dense(2, "linear")], 5),
        "batchnorm_after_output": custom_case(26, "mse", (3,), [_dense(2, "linear"), BN], 5),
    }
    trained = {
        "rnn_sigmoid_head_bce_adam": custom_case(10, "bce1_labels", (3, 2), [_rnn(1, "sigmoid")], 7,
                                                 training={"optimizer": adam, "epochs": 3, "batch_size": 3}),
        "conv_sigmoid_head_bce_sgd": custom_case(11, "bce1_labels", (1, 3, 3), [_conv(1, 3, "sigmoid"), FLAT], 7,
                                                 reg_lambda=0.1,
                                                 training={"optimizer": sgd, "epochs": 3, "batch_size": 2}),
        "wide_mlp_adam": custom_case(12, "ce_int", (300,), [_dense(512, "relu"), _dense(10, "linear")], 130,
                                     reg_lambda=0.01, training={"optimizer": adam, "epochs": 2, "batch_size": 64}),
        "wide_conv_adam": custom_case(14, "ce_int", (3, 16, 16), [_conv(16, 3, "relu", padding=1), FLAT, _dense(4, "linear")],
                                      100, training={"optimizer": adam, "epochs": 2, "batch_size": 80}),
        # Imbalanced binary classification, the commonest use of class weights.
        "binary_class_weight_balanced": custom_case(15, "bce1_labels", (4,), [_dense(3, "relu"), _dense(1, "sigmoid")], 9,
                                                    training={"optimizer": sgd, "epochs": 2, "batch_size": 4,
                                                              "weights": "balanced"}),
        "long_rnn_sgd": custom_case(13, "mse", (20, 32), [_rnn(64, "tanh"), _dense(2, "linear")], 130,
                                    training={"optimizer": sgd, "epochs": 2, "batch_size": 64}),
        # SGD: batch normalization makes the bias before it irrelevant (an exact gradient of 0),
        # which Adam would turn into full steps of float32 rounding.
        "lenet_like_sgd": custom_case(27, "ce_int", (1, 8, 8), [_conv(3, 3, "relu", padding=1), _pool("maxpool2d", (2, 2)),
                                                                 BN, _conv(4, 3, "relu"), {"kind": "globalavgpool2d"},
                                                                 _dense(3, "linear")], 9,
                                      training={"optimizer": sgd, "epochs": 3, "batch_size": 4}),
        "dense_batchnorm_sgd": custom_case(28, "ce_int", (5,), [_dense(6, "relu"), BN, _dense(3, "softmax")], 11,
                                           training={"optimizer": sgd, "epochs": 3, "batch_size": 4}),
        "lstm_adam": custom_case(29, "ce_int", (4, 3), [_gated("lstm", 5), _dense(3, "linear")], 9,
                                 training={"optimizer": adam, "epochs": 3, "batch_size": 4}),
        "gru_sgd": custom_case(30, "mse", (4, 3), [_gated("gru", 4, True), _gated("gru", 3, reset_after=False),
                                                  _dense(2, "linear")], 9,
                               training={"optimizer": sgd, "epochs": 3, "batch_size": 4}),
        "wide_lstm_adam": custom_case(31, "ce_int", (12, 16), [_gated("lstm", 48), _dense(4, "linear")], 96,
                                      training={"optimizer": adam, "epochs": 2, "batch_size": 48}),
    }
    for name, case in {**cases, **trained}.items():
        case.name = name
    return list(cases.values()), list(trained.values())
