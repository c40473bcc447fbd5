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

from ..errors import SegaError

#: The opset ``export_onnx`` writes unless told otherwise: the newest whose every operator
#: sega uses runs in onnxruntime 1.32 (and in onnx's reference evaluator). An older onnx
#: package lowers it to the newest it knows.
DEFAULT_OPSET = 22
#: The oldest opset sega writes: every operator it uses has had today's semantics since 17
#: (onnxruntime >= 1.11 runs it).
MIN_OPSET = 17


class ExportError(SegaError, ValueError):
    """A model (or one of its layers) cannot be written in the format asked for."""


__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "ExportError"]
