"""``sega export MODEL OUT.onnx``: a saved model as an ONNX graph that runs without sega."""

from __future__ import annotations

import argparse
import sys

from ..export import DEFAULT_OPSET, MIN_OPSET

NAME = "export"

EPILOG = f"""\
examples:
  sega export model.sega model.onnx
  sega export model.sega model.onnx --opset 17          # for an older runtime
  sega export model.sega model.onnx --dtype float32     # a float64 model's graph in float32

The graph takes X (any number of samples, then the model's input shape) and outputs what
predict_proba and predict give: 'probabilities' and 'label' (the model's class labels) for a
classifier, 'values' in the target's own units for a regressor; a model trained with --impute
fills missing (NaN) features in the graph. The class labels and the feature names are also in
the file's metadata. Default opset: {DEFAULT_OPSET} (at least {MIN_OPSET}).
Needs the onnx package: pip install "sega-core[onnx]". Run it with onnxruntime, e.g.
  onnxruntime.InferenceSession("model.onnx").run(None, {{"X": X.astype("float32")}})
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``sega export``."""
    p = subparsers.add_parser(
        NAME,
        help="write a saved model as an ONNX graph",
        description="Write a model saved by `sega train --save` (or NeuralNetwork.save) as a standard ONNX graph.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", help="model file written by `sega train --save`")
    p.add_argument("output", help="the .onnx file to write (checked before anything is read)")
    p.add_argument("--opset", type=int, metavar="N", help=f"ONNX opset to write (default {DEFAULT_OPSET}, at least {MIN_OPSET})")
    p.add_argument("--dtype", choices=("float32", "float64"), help="the graph's float type (default: the model's)")
    return p


def run(args) -> int:
    """Write the graph; 0 on success."""
    from ..nn.atomic import check_output_path
    from ..nn.model import NeuralNetwork
    from .metadata import CliMetadata

    check_output_path(args.output)
    model = NeuralNetwork.load(args.model)
    imputer = CliMetadata.from_model(model, args.model).imputer(args.model)
    from ..export.onnx_export import ONNXRUNTIME_FLOAT64_GAPS, export_onnx

    proto = export_onnx(model, args.output, opset=args.opset, dtype=args.dtype,
                        fill_missing=None if imputer is None else imputer.values)
    graph = proto.graph
    shapes = {v.name: _shape([d.dim_param or str(d.dim_value) for d in v.type.tensor_type.shape.dim])
              for v in list(graph.input) + list(graph.output)}
    dtype = args.dtype or model.dtype.name
    print(f"wrote {args.output}: opset {proto.opset_import[0].version}, {dtype}, X {shapes['X']} -> "
          + ", ".join(f"{v.name} {shapes[v.name]}" for v in graph.output))
    if imputer is not None:
        print(f"missing (NaN) features are filled with the training part's {imputer.strategy}, as sega predict fills them")
    gaps = sorted({node.op_type for node in graph.node} & ONNXRUNTIME_FLOAT64_GAPS) if dtype == "float64" else []
    if gaps:
        print(f"sega: note: onnxruntime's CPU kernels have no float64 {', '.join(gaps)}; "
              "--dtype float32 writes a graph they run", file=sys.stderr)
    return 0


def _shape(dims: list[str]) -> str:
    """``(N, 64)``, or ``(N,)`` for one dimension, as Python writes shapes."""
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"
