"""``sega predict MODEL DATA``: one prediction per sample, as CSV, to stdout or a file."""

from __future__ import annotations

import argparse
import csv
import io
import sys

import numpy as np

from ..errors import InputError
from . import data as D
from .csvfile import HEADER_MODES

NAME = "predict"

EPILOG = """\
examples:
  sega predict model.sega new.csv                  # CSV to stdout
  sega predict model.sega new.csv -o predictions.csv --proba
  sega predict model.sega images.npz --backend numba

DATA is a CSV with the model's feature columns (found by name; a target column, if present, is
ignored), an .npz holding X, or a built-in dataset name (the whole dataset). Every row of DATA
gets exactly one prediction, in order; a row with a missing feature value is an error unless
the model was trained with --impute. Classifiers write the original labels; regressors write
values in the target's own units.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``sega predict``."""
    p = subparsers.add_parser(
        NAME,
        help="predict with a saved model; writes CSV",
        description="Predict with a model saved by `sega train --save` (or NeuralNetwork.save).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", help="model file written by `sega train --save`")
    p.add_argument("data", help="CSV, .npz or built-in dataset name")
    p.add_argument("-o", "--output", metavar="PATH", help="write the CSV here instead of stdout (checked before predicting)")
    p.add_argument("--proba", action="store_true", help="classifiers: add one probability column per class")
    p.add_argument("--target", metavar="COLUMN", help="a column to ignore as the target (default: the one used in training)")
    p.add_argument("--header", choices=HEADER_MODES, default="auto",
                   help="CSV: whether the first row names the columns (default: auto, a row of numbers is data)")
    p.add_argument("--backend", help="compute backend (default: the default backend)")
    return p


def load_model(path: str, backend: str | None):
    """The saved network and the command-line metadata it was saved with."""
    from ..nn.model import NeuralNetwork
    from .metadata import CliMetadata

    model = NeuralNetwork.load(path, backend=backend)
    return model, CliMetadata.from_model(model, path)


def load_inputs(meta, source: str, target: str | None, need_target: bool, header: str = "auto") -> D.Table:
    """Read ``source`` the way the model was trained: same columns, target optional or required."""
    table = D.load_data(
        source,
        target=target,
        need_target=need_target,
        default_target=target or meta.target_name,
        feature_names=meta.feature_names or None,
        header=header,
    )
    if need_target and table.y is None:
        raise InputError(f"{source!r} has no target column; evaluation needs the true values")
    return table


def run(args) -> int:
    """Write predictions, one per row of the data; 0 on success."""
    from ..nn.atomic import atomic_path, check_output_path
    from .metadata import model_inputs

    if args.output:
        check_output_path(args.output)  # before the work, not after it
    model, meta = load_model(args.model, args.backend)
    if args.proba and model.regressor:
        raise InputError("--proba is for classifiers; this model is a regressor")
    table = load_inputs(meta, args.data, args.target, need_target=False, header=args.header)
    X = model_inputs(model, meta, table, args.model)
    header = ["prediction"]
    columns = [model.predict(X)]
    if args.proba:
        proba = model.predict_proba(X)
        classes = model.classes_ if model.classes_ is not None else range(proba.shape[1])
        header += [f"proba_{c}" for c in classes]
        columns += [proba[:, i] for i in range(proba.shape[1])]
    text = _to_csv(header, columns)
    if args.output:
        with atomic_path(args.output) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
            fh.write(text)
        print(f"wrote {len(X)} predictions to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _cell(value) -> str:
    if isinstance(value, (float, np.floating)):
        # float32 networks carry ~7 significant digits; more would only print rounding noise.
        return f"{float(value):.7g}"
    return str(value)


def _to_csv(header: list[str], columns: list[np.ndarray]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in zip(*columns):
        writer.writerow([_cell(v) for v in row])
    return buf.getvalue()
