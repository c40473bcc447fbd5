"""``sega evaluate MODEL DATA``: loss and metrics of a saved model on labelled data."""

from __future__ import annotations

import argparse
import json

import numpy as np

from . import data as D
from .csvfile import HEADER_MODES
from .predict_cmd import load_inputs, load_model

NAME = "evaluate"

EPILOG = """\
examples:
  sega evaluate model.sega test.csv
  sega evaluate model.sega test.csv --target species --json
  sega evaluate digits.sega digits        # the held-out split `sega train digits` kept aside

DATA needs the target: the column the model was trained on (or --target), y in an .npz, or a
built-in dataset name. For the built-in dataset a model was trained on, only its held-out test
split is scored (same --test-size and --seed as in training); pass --all to score every sample.
Classifiers report loss, accuracy and macro precision / recall / f1; regressors report loss
(on the standardised target the network trains on), mse, mae and r2 in the target's own units.
Missing feature values are an error unless the model was trained with --impute.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``sega evaluate``."""
    p = subparsers.add_parser(
        NAME,
        help="print a saved model's metrics on labelled data",
        description="Score a model saved by `sega train --save` on data with true values.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", help="model file written by `sega train --save`")
    p.add_argument("data", help="CSV, .npz or built-in dataset name")
    p.add_argument("--target", metavar="COLUMN", help="target column / array (default: the one used in training)")
    p.add_argument("--all", action="store_true", help="built-in dataset: score all samples, not only the held-out split")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    p.add_argument("--header", choices=HEADER_MODES, default="auto",
                   help="CSV: whether the first row names the columns (default: auto, a row of numbers is data)")
    p.add_argument("--backend", help="compute backend (default: the default backend)")
    return p


def run(args) -> int:
    """Print the metrics; 0 on success."""
    from .metadata import model_inputs, model_targets

    model, meta = load_model(args.model, args.backend)
    table = load_inputs(meta, args.data, args.target, need_target=True, header=args.header)
    part = "all"
    if table.builtin is not None and table.builtin == meta.dataset and meta.split and not args.all:
        # Scoring the samples the model trained on would flatter it: keep to its test split.
        stratify = D.label_array(table.y) if meta.split.get("stratified") else None
        _, test = D.train_test_indices(len(table.y), meta.split["test_size"], meta.split["seed"], stratify)
        if len(test):
            table, part = table.take(test), "held-out test split"
    scores = model.evaluate(model_inputs(model, meta, table, args.model), model_targets(model, table))
    if args.json:
        print(json.dumps({"samples": int(len(table.y)), **{k: float(v) for k, v in scores.items()}}))
        return 0
    print(f"{table.source}: {len(table.y)} samples ({part})")
    width = max(map(len, scores))
    for key, value in scores.items():
        print(f"{key + ':':<{width + 1}} {value:.4f}" if np.isfinite(value) else f"{key + ':':<{width + 1}} {value}")
    return 0
