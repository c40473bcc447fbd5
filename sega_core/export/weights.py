"""A model's weights as named arrays: under PyTorch's names and layouts, or sega's own; to and
from ``.safetensors`` files (no pickle).

``format="torch"`` names each array ``"{position}.{name}"``, ``position`` being the layer's index
in ``model.layers`` and ``name`` what PyTorch's equivalent module calls it, in its layout, so a
``torch.nn.Sequential`` with one module per sega layer (the activation inside it) loads it with
``load_state_dict`` (after ``torch.from_numpy``):

============================  =================================================================
Dense                         ``nn.Linear``: ``weight`` = ``W.T``, ``bias``
Conv2D                        ``nn.Conv2d``: ``weight``, ``bias`` (the same layout)
RNN (tanh, relu)              ``nn.RNN``: ``weight_ih_l0`` = ``Wx.T``, ``weight_hh_l0`` = ``Wh.T``,
                              ``bias_ih_l0`` = ``b``, ``bias_hh_l0`` = 0
LSTM                          ``nn.LSTM``: the same four (4 gates, PyTorch's order already)
GRU (reset_after=True)        ``nn.GRU``: the same, ``bias_ih_l0`` = ``bx``, ``bias_hh_l0`` = ``bh``
BatchNormalization            ``nn.BatchNorm1d``/``2d``: ``weight`` = gamma, ``bias`` = beta,
                              ``running_mean``, ``running_var``, ``num_batches_tracked`` (0);
                              build it with ``eps=layer.epsilon, momentum=1 - layer.momentum``
Normalization                 no PyTorch module: ``mean`` and ``variance`` as sega keeps them
pooling, Flatten, Reshape,    nothing (no weights)
Dropout
============================  =================================================================

An RNN with a sigmoid or linear activation and a GRU with ``reset_after=False`` have no PyTorch
equivalent and are refused in that format. ``format="sega"`` keeps sega's names (``W``, ``b``,
``Wx``...) and layouts for every layer. :func:`load_weights` reads either.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .. import __version__
from ..errors import InputError, ModelFileError, SegaError
from ..nn.atomic import atomic_path
from ..nn.validation import check_float_range, host_array
from . import ExportError, describe, layer_arrays

FORMATS = ("torch", "sega")

#: PyTorch keys that need not be given back: BatchNorm's batch counter, which only a
#: ``momentum=None`` BatchNorm reads.
_OPTIONAL_TORCH_KEYS = ("num_batches_tracked",)


@dataclass(frozen=True)
class TorchLayout:
    """How one layer kind's arrays map onto its PyTorch module's ``state_dict`` entries.

    ``to_torch(layer, arrays)`` takes ``{sega name: array}`` (parameters and state) and gives
    ``{torch name: array}``; ``from_torch`` is its inverse. ``refuse(layer)`` gives the reason a
    layer has no PyTorch equivalent, or ``None``.
    """

    to_torch: Callable[[object, dict], dict]
    from_torch: Callable[[object, dict], dict]
    refuse: Callable[[object], str | None] = lambda layer: None


def _renamed(pairs: dict[str, str]) -> TorchLayout:
    """Arrays that only change names (sega name -> torch name)."""
    back = {t: s for s, t in pairs.items()}
    return TorchLayout(lambda layer, a: {pairs[k]: v for k, v in a.items()},
                       lambda layer, a: {back[k]: v for k, v in a.items() if k in back})


def _linear_to(layer, a):
    return {"weight": a["W"].T, "bias": a["b"]}


def _linear_from(layer, a):
    return {"W": a["weight"].T, "b": a["bias"]}


def _recurrent_to(layer, a):
    out = {"weight_ih_l0": a["Wx"].T, "weight_hh_l0": a["Wh"].T}
    if "b" in a:  # sega's RNN and LSTM keep one bias: PyTorch's two summed
        out.update(bias_ih_l0=a["b"], bias_hh_l0=np.zeros_like(a["b"]))
    else:
        out.update(bias_ih_l0=a["bx"], bias_hh_l0=a["bh"])
    return out


def _recurrent_from(layer, a):
    out = {"Wx": a["weight_ih_l0"].T, "Wh": a["weight_hh_l0"].T}
    if layer.kind == "gru":
        out.update(bx=a["bias_ih_l0"], bh=a["bias_hh_l0"])
    else:
        out["b"] = a["bias_ih_l0"] + a["bias_hh_l0"]
    return out


def _rnn_refusal(layer):
    if layer.activation not in ("tanh", "relu"):
        return f"its activation {layer.activation!r} has no PyTorch nn.RNN equivalent (nn.RNN takes tanh or relu)"
    return None


def _gru_refusal(layer):
    if not layer.reset_after:
        return "reset_after=False has no PyTorch equivalent (nn.GRU applies the reset gate after the recurrent product)"
    return None


def _batchnorm_to(layer, a):
    return {"weight": a["gamma"], "bias": a["beta"], "running_mean": a["moving_mean"],
            "running_var": a["moving_variance"], "num_batches_tracked": np.zeros((), dtype=np.int64)}


def _batchnorm_from(layer, a):
    return {"gamma": a["weight"], "beta": a["bias"], "moving_mean": a["running_mean"], "moving_variance": a["running_var"]}


_NO_WEIGHTS = _renamed({})

#: Layer kind -> its PyTorch layout. A kind missing here cannot be written in torch format.
TORCH_LAYOUTS: dict[str, TorchLayout] = {
    "dense": TorchLayout(_linear_to, _linear_from),
    "conv2d": _renamed({"W": "weight", "b": "bias"}),
    "rnn": TorchLayout(_recurrent_to, _recurrent_from, _rnn_refusal),
    "lstm": TorchLayout(_recurrent_to, _recurrent_from),
    "gru": TorchLayout(_recurrent_to, _recurrent_from, _gru_refusal),
    "batchnormalization": TorchLayout(_batchnorm_to, _batchnorm_from),
    "normalization": _renamed({"mean": "mean", "variance": "variance"}),
    "maxpool2d": _NO_WEIGHTS,
    "avgpool2d": _NO_WEIGHTS,
    "globalavgpool2d": _NO_WEIGHTS,
    "flatten": _NO_WEIGHTS,
    "reshape": _NO_WEIGHTS,
    "dropout": _NO_WEIGHTS,
}


def _check_format(format) -> str:
    if format not in FORMATS:
        raise InputError(f"format must be one of {', '.join(map(repr, FORMATS))}, got {format!r}")
    return format


def _layout(layer, index: int) -> TorchLayout:
    layout = TORCH_LAYOUTS.get(layer.kind)
    if layout is None:
        raise ExportError(f"{describe(layer, index)} has no PyTorch layout (layer kind {layer.kind!r}); use format='sega'")
    reason = layout.refuse(layer)
    if reason is not None:
        raise ExportError(f"{describe(layer, index)} cannot be written in PyTorch's layout: {reason}; use format='sega'")
    return layout


def state_dict(model, format: str = "torch") -> dict[str, np.ndarray]:
    """``{"{position}.{name}": array}`` of every weight and statistic of ``model`` (new
    C-contiguous host arrays in the model's dtype); ``format`` is ``"torch"`` or ``"sega"``
    (see the module docstring)."""
    model._require_built()
    _check_format(format)
    out = {}
    for index, layer in enumerate(model.layers):
        arrays = layer_arrays(layer)
        if format == "torch":
            arrays = _layout(layer, index).to_torch(layer, arrays)
        out.update({f"{index}.{name}": np.ascontiguousarray(value) for name, value in arrays.items()})
    return out


def _safetensors():
    try:
        import safetensors.numpy
    except ImportError:
        raise SegaError('.safetensors files need the safetensors package; install it with pip install "sega-core[safetensors]"') from None
    return safetensors.numpy


def save_safetensors(model, path, format: str = "torch") -> None:
    """Write :func:`state_dict` to ``path`` as a ``.safetensors`` file, atomically."""
    st = _safetensors()
    tensors = state_dict(model, format)
    # "pt" is what Hugging Face's loaders look for in a file of PyTorch-named tensors.
    metadata = {"format": "pt" if format == "torch" else "sega", "producer": f"sega {__version__}"}
    with atomic_path(path) as tmp:
        st.save_file(tensors, str(tmp), metadata=metadata)


def _read(source) -> tuple[dict, str]:
    """``({name: host array}, how to name the source in errors)``."""
    if isinstance(source, (str, Path)):
        st = _safetensors()
        path = Path(source)
        if path.is_dir():
            raise ModelFileError(f"weights file {str(path)!r} is a folder; give the path of a .safetensors file")
        if not path.is_file():
            raise ModelFileError(f"weights file {str(path)!r} not found")
        try:
            return st.load_file(str(path)), repr(str(path))
        except Exception as exc:  # safetensors raises its own SafetensorError, or OSError
            raise ModelFileError(f"{str(path)!r} is not a readable .safetensors file: {' '.join(str(exc).split())}") from None
    if isinstance(source, dict):
        if not all(isinstance(k, str) for k in source):
            raise InputError("the weights dict must have str keys, as state_dict() gives")
        return {k: host_array(v, f"weights[{k!r}]") for k, v in source.items()}, "the weights dict"
    raise InputError(f"load_weights takes a .safetensors path or a dict of arrays, got {type(source).__name__}")


def _names(keys, limit: int = 4) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:limit]) + (f" ... ({len(keys)} in all)" if len(keys) > limit else "")


def _pick_format(model, given: dict, where: str) -> tuple[str, dict]:
    """The format whose keys ``given`` has (PyTorch's first), and that format's arrays now."""
    candidates = []
    for format in FORMATS:
        try:
            expected = state_dict(model, format)
        except ExportError:
            continue  # a layer with no PyTorch layout: only sega's names can fit
        required = {k for k in expected if k.rpartition(".")[2] not in _OPTIONAL_TORCH_KEYS}
        if required <= given.keys() and given.keys() <= expected.keys():
            return format, expected
        candidates.append((format, required, expected))
    format, required, expected = candidates[0]
    missing, unexpected = required - given.keys(), given.keys() - expected.keys()
    parts = ([f"lacks {_names(missing)}"] if missing else []) + ([f"has unexpected {_names(unexpected)}"] if unexpected else [])
    raise InputError(f"{where} does not fit this model in {format!r} format: it {' and '.join(parts)}")


def load_weights(model, source) -> None:
    """Replace ``model``'s weights and statistics with those of ``source``: a ``.safetensors``
    path or a ``{name: array}`` dict (NumPy arrays, PyTorch tensors...), in either format of
    :func:`state_dict`. Names, shapes and values are all checked before anything changes."""
    model._require_built()
    given, where = _read(source)
    format, expected = _pick_format(model, given, where)
    for key, want in expected.items():
        if key not in given or want.dtype.kind != "f":
            continue
        got = given[key]
        if got.shape != want.shape:
            raise InputError(f"{where}: {key!r} has shape {got.shape}, but this model's is {want.shape}")
        if got.dtype.kind not in "iuf":
            raise InputError(f"{where}: {key!r} holds {got.dtype} values; weights must be numbers")
        if got.dtype.kind == "f" and not np.isfinite(got).all():
            raise InputError(f"{where}: {key!r} holds NaN or infinite values")
        check_float_range(got, model.dtype, f"{where}: {key!r}")
    new = {}  # layer index -> {sega name: array}
    for index, layer in enumerate(model.layers):
        prefix = f"{index}."
        arrays = {k[len(prefix):]: np.asarray(v) for k, v in given.items() if k.startswith(prefix)}
        if format == "torch":
            arrays = TORCH_LAYOUTS[layer.kind].from_torch(layer, arrays)
        new[index] = {name: np.ascontiguousarray(value, dtype=model.dtype) for name, value in arrays.items()}
    # get_weights' order: layer by layer, each layer's weights before its other parameters.
    model.set_weights([new[index][spec.name] for index, layer in enumerate(model.layers)
                       for spec in sorted(layer.param_specs(), key=lambda spec: spec.role != "weight")])
    to_device = model.backend.to_device
    for index, layer in enumerate(model.layers):
        for spec in layer.state_specs():
            layer.state[spec.name][...] = to_device(new[index][spec.name])
        if layer.state_specs() and hasattr(layer, "adapted"):
            layer.adapted = True  # loaded statistics: training must not fit them again
