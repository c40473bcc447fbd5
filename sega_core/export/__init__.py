"""Getting trained models out of sega: ONNX graphs that run without sega, and weights under
PyTorch's names and layouts.

- :mod:`.onnx_export`: ``NeuralNetwork.export_onnx`` and ``sega export``; needs the ``onnx``
  package (``pip install "sega-core[onnx]"``), imported only there.
- :mod:`.weights`: ``state_dict(format="torch")``, ``save_safetensors`` and ``load_weights``;
  safetensors files need the ``safetensors`` package (``sega-core[safetensors]``).

Both keep one entry per layer kind in a registry (``ONNX_LAYERS``, ``TORCH_LAYOUTS``), so a
new layer type is one entry in each; a layer without one names itself in a one-line
:class:`ExportError`.
"""

from __future__ import annotations

import numpy as np

from ..errors import SegaError

#: The opset ``export_onnx`` writes unless told otherwise. Every opset from 17 to 28 passes the
#: export tests in onnxruntime 1.32; 22 is where the last of the operators sega writes took its
#: present form (later opsets only add data types to the shape operators), so a newer default
#: would shut out older runtimes for nothing. An older onnx package lowers it to its newest.
DEFAULT_OPSET = 22
#: The oldest opset sega writes: every operator it uses has had today's semantics since 17
#: (onnxruntime >= 1.11 runs it).
MIN_OPSET = 17


class ExportError(SegaError, ValueError):
    """A model (or one of its layers) cannot be written in the format asked for."""


def layer_arrays(layer) -> dict[str, np.ndarray]:
    """The layer's parameters and state (statistics) as new host arrays, by their sega names."""
    to_host = layer.backend.to_host
    return {name: np.array(to_host(value)) for group in (layer.params, layer.state) for name, value in group.items()}


def describe(layer, index: int) -> str:
    """``"Dense at position 2"``: how errors name a layer."""
    return f"{type(layer).__name__} at position {index}"


__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "ExportError", "describe", "layer_arrays"]
