"""``sega train``: train a network on a CSV / .npz file or a built-in dataset, report, save, plot."""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from ..errors import InputError, SegaError
from . import data as D

NAME = "train"

DEFAULT_DATASET = "digits"

#: Per-preset defaults: hidden sizes and epochs that train the built-in datasets in seconds.
PRESET_DEFAULTS = {
    "mlp": {"layers": "128,64", "epochs": 30},
    "cnn": {"layers": "64", "epochs": 10},
    "rnn": {"layers": "64", "epochs": 30},
}

EPILOG = """\
examples:
  sega train                                   # digits, 80/20 split, prints test accuracy
  sega train iris --layers 16 --epochs 100
  sega train digits --model cnn --save digits.sega --plot curves.png
  sega train digits --model rnn --sequence-shape 8,8
  sega train data.csv --target species --save model.sega
  sega train houses.csv --target price --task regress --early-stopping 10
  sega train images.npz --model cnn --image-shape 1,28,28 --backend numba

models:
  mlp  Dense hidden layers (--layers 128,64)
  cnn  Conv2D layers (--filters 8,16; the second and later ones with stride 2), Flatten, Dense
       (--layers); samples are images C x H x W: --image-shape, or square 1 x s x s
  rnn  an RNN (first --layers entry = its units) then Dense layers; samples are sequences
       T x F: --sequence-shape, or square s x s

Built-in datasets (need scikit-learn): digits, iris, wine, breast_cancer (classification),
diabetes (regression). Features are standardised by default (--no-standardize to keep them);
the scaling, label names and target column are saved in the model file for predict/evaluate.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``sega train`` and its options."""
    p = subparsers.add_parser(
        NAME,
        help="train a model on a CSV/.npz file or a built-in dataset",
        description="Train a neural network, print a summary table and the held-out test score.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "data",
        nargs="?",
        default=DEFAULT_DATASET,
        help=f"CSV file (header row), .npz file (arrays X, y) or built-in dataset name "
        f"({', '.join(D.BUILTIN_DATASETS)}); default: {DEFAULT_DATASET}",
    )
    g = p.add_argument_group("data")
    g.add_argument("--target", metavar="COLUMN", help="target column of a CSV (default: the last one) or array of an .npz (default: y)")
    g.add_argument("--task", choices=D.TASKS, default="auto",
                   help="auto: text or few integer values -> classify, other numbers -> regress (default: auto)")
    g.add_argument("--test-size", type=float, default=0.2, metavar="FRACTION",
                   help="held-out fraction scored after training, 0 for none (default: 0.2)")
    g.add_argument("--validation-split", type=float, default=0.1, metavar="FRACTION",
                   help="fraction of the training part watched during training, 0 for none (default: 0.1)")
    g.add_argument("--no-standardize", dest="standardize", action="store_false",
                   help="keep raw feature values (default: scale each feature to mean 0, std 1)")
    m = p.add_argument_group("model")
    m.add_argument("--model", choices=tuple(PRESET_DEFAULTS), default="mlp", help="architecture preset (default: mlp)")
    m.add_argument("--layers", metavar="SIZES", help="comma-separated hidden sizes (default: mlp 128,64; cnn 64; rnn 64)")
    m.add_argument("--filters", metavar="COUNTS", default="8,16", help="cnn: comma-separated Conv2D filters (default: 8,16)")
    m.add_argument("--image-shape", metavar="C,H,W", help="cnn: shape of one sample")
    m.add_argument("--sequence-shape", metavar="T,F", help="rnn: time steps and features per step")
    m.add_argument("--activation", help="hidden activation: relu, leaky_relu, tanh, sigmoid "
                   "(default: relu; tanh for the rnn layer itself)")
    m.add_argument("--dropout", type=float, default=0.0, metavar="RATE", help="dropout after hidden layers (default: 0)")
    m.add_argument("--l2", type=float, default=0.0, metavar="LAMBDA", help="L2 weight penalty (default: 0)")
    m.add_argument("--backend", help="compute backend (see `sega backends`; default: the default backend)")
    m.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="default: float32")
    t = p.add_argument_group("training")
    t.add_argument("--epochs", type=int, metavar="N", help="passes over the data (default: mlp 30, cnn 10, rnn 30)")
    t.add_argument("--batch-size", type=int, default=32, metavar="N", help="default: 32")
    t.add_argument("--optimizer", default="adam", help="adam, sgd or adadelta (default: adam)")
    t.add_argument("--lr", type=float, metavar="RATE", help="learning rate (default: the optimizer's, 1e-3 for adam)")
    t.add_argument("--lr-scheduler", choices=("step", "exponential", "plateau"), help="learning-rate schedule")
    t.add_argument("--early-stopping", type=int, nargs="?", const=10, metavar="PATIENCE",
                   help="stop after PATIENCE epochs (default 10) without validation improvement, keep the best weights")
    t.add_argument("--seed", type=int, default=0, help="seeds the split, the weights and the shuffling (default: 0)")
    progress = t.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None,
                          help="always show the per-epoch progress bar (default: when stderr is a terminal)")
    progress.add_argument("--no-progress", dest="progress", action="store_false", help="never show it")
    o = p.add_argument_group("output")
    o.add_argument("--save", metavar="PATH", help="write the trained model (with its preprocessing) to PATH")
    o.add_argument("--plot", metavar="PNG", help="write the training curves to a PNG file (needs matplotlib)")
    o.add_argument("-q", "--quiet", action="store_true", help="print only the final scores")
    return p


# ---- argument parsing helpers -------------------------------------------------------------


def int_list(text: str | None, option: str, allow_empty: bool = False) -> list[int]:
    """``"128,64"`` -> ``[128, 64]``; a readable error otherwise."""
    if text is None or text.strip() in ("", "none"):
        if allow_empty:
            return []
        raise InputError(f"{option} needs comma-separated positive integers, got {text!r}")
    try:
        values = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise InputError(f"{option} needs comma-separated positive integers (e.g. 128,64), got {text!r}") from None
    if (not values and not allow_empty) or any(v < 1 for v in values):
        raise InputError(f"{option} needs comma-separated positive integers (e.g. 128,64), got {text!r}")
    return values


def sample_shape(table: D.Table, preset: str, image_shape: str | None, sequence_shape: str | None) -> tuple[int, ...]:
    """The per-sample shape the preset's first layer takes."""
    n_features = int(np.prod(table.X.shape[1:]))
    if preset == "mlp":
        return (n_features,)
    given = image_shape if preset == "cnn" else sequence_shape
    option = "--image-shape" if preset == "cnn" else "--sequence-shape"
    want = 3 if preset == "cnn" else 2
    if given:
        shape = tuple(int_list(given, option))
        if len(shape) != want:
            raise InputError(f"{option} needs {want} comma-separated sizes ({'C,H,W' if want == 3 else 'T,F'}), got {given!r}")
    elif table.X.ndim == want + 1:
        shape = tuple(table.X.shape[1:])
    elif preset == "cnn" and table.X.ndim == 3:
        shape = (1, *table.X.shape[1:])
    else:
        side = math.isqrt(n_features)
        if side * side != n_features:
            raise InputError(
                f"the {preset} model needs {'images' if preset == 'cnn' else 'sequences'}, but the data has "
                f"{n_features} features, not a square number; give {option} "
                f"{'C,H,W' if preset == 'cnn' else 'T,F'}"
            )
        shape = (1, side, side) if preset == "cnn" else (side, side)
    if int(np.prod(shape)) != n_features:
        raise InputError(f"{option} {','.join(map(str, shape))} holds {int(np.prod(shape))} values, but samples have {n_features} features")
    return shape


def build_layers(preset: str, hidden: list[int], filters: list[int], n_out: int, activation: str | None,
                 dropout: float, regressor: bool):
    """Layer objects for a preset (the output layer's activation follows the task)."""
    from ..nn.layers import RNN, Conv2D, Dense, Dropout, Flatten
    from ..nn.layers.recurrent import RNN_ACTIVATIONS

    layers = []
    given = activation
    activation = activation or "relu"
    if preset == "cnn":
        for i, f in enumerate(filters):
            # Later convolutions halve the resolution: there is no pooling layer to do it.
            layers.append(Conv2D(f, 3, stride=1 if i == 0 else 2, padding=1, activation=activation))
        layers.append(Flatten())
    elif preset == "rnn":
        if not hidden:
            raise InputError("the rnn model needs --layers with at least the RNN units (e.g. 64)")
        # tanh unless asked otherwise: a ReLU recurrence easily blows up over long sequences.
        if given is not None and given.lower() not in RNN_ACTIVATIONS:
            raise InputError(f"the rnn layer takes --activation {', '.join(RNN_ACTIVATIONS)}, got {given!r}")
        layers.append(RNN(hidden[0], activation=(given or "tanh").lower()))
        hidden = hidden[1:]
    for units in hidden:
        layers.append(Dense(units, activation=activation))
        if dropout:
            layers.append(Dropout(dropout))
    layers.append(Dense(n_out, activation="linear" if regressor else "softmax"))
    return layers


# ---- the command --------------------------------------------------------------------------


def run(args) -> int:
    """Train, report, optionally save and plot; 0 on success."""
    from ..backends import get_backend
    from ..nn.model import NeuralNetwork

    out = (lambda *a, **k: None) if args.quiet else print
    # A missing or unusable backend is the first thing to report: nothing else can work.
    get_backend(args.backend)
    table = D.load_data(args.data, target=args.target, need_target=True)
    if table.y is None:
        raise InputError(f"{table.source!r} has no target to train on")
    task = D.infer_task(table.y, args.task, table.builtin)
    preset = args.model
    defaults = PRESET_DEFAULTS[preset]
    epochs = defaults["epochs"] if args.epochs is None else args.epochs
    hidden = int_list(args.layers if args.layers is not None else defaults["layers"], "--layers", allow_empty=preset != "rnn")
    filters = int_list(args.filters, "--filters") if preset == "cnn" else []
    shape = sample_shape(table, preset, args.image_shape, args.sequence_shape)
    if not 0 <= args.validation_split < 1:
        raise InputError(f"--validation-split must be in [0, 1), got {args.validation_split}")

    stratify = D.label_array(table.y) if task == "classify" else None
    train_idx, test_idx = D.train_test_indices(len(table.X), args.test_size, args.seed, stratify)
    train = D.Table(table.X[train_idx], table.y[train_idx], table.feature_names, table.target_name, table.source, table.kind, table.builtin)
    pre = D.Preprocessing.fit(train, task, args.standardize, shape)
    pre.dataset = table.builtin or table.source
    pre.split = {"test_size": args.test_size, "seed": args.seed, "stratified": stratify is not None}
    X_train, y_train = pre.features(train.X), pre.encode_target(train.y, f"target {table.target_name!r}")

    regressor = task == "regress"
    n_out = 1 if regressor else len(pre.classes)
    model = NeuralNetwork(
        build_layers(preset, hidden, filters, n_out, args.activation, args.dropout, regressor),
        reg_lambda=args.l2,
        regressor=regressor,
        backend=args.backend,
        dtype=args.dtype,
        seed=args.seed,
        input_shape=shape,
    )
    model.extra_config = {"cli": pre.to_config()}
    what = f"{len(pre.classes)} classes" if not regressor else "regression"
    out(f"training the {preset} model on {pre.dataset}: {len(train_idx)} train / {len(test_idx)} test samples, "
        f"{int(np.prod(shape))} features, {what}")

    validation_split = args.validation_split
    if args.early_stopping is not None and not validation_split:
        validation_split = 0.1  # early stopping watches a validation loss
    started = time.perf_counter()
    # A diverging run is reported below as one line; numpy's overflow warnings would only
    # bury that line under backend source lines.
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            history = model.train(
                X_train,
                y_train,
                optimizer=args.optimizer,
                lr=args.lr,
                epochs=epochs,
                batch_size=args.batch_size,
                lr_scheduler=args.lr_scheduler,
                early_stopping_patience=args.early_stopping,
                validation_split=validation_split,
                progress=args.progress,
            )
    except FloatingPointError as exc:
        raise SegaError(f"{exc} (e.g. --lr {_smaller_lr(args.lr)})") from None
    seconds = time.perf_counter() - started

    # The network trains on standardised targets; MAE goes back to the target's own units
    # (the loss stays as trained).
    unit = pre.target_std if regressor else 1.0
    metric = "mae" if regressor else "accuracy"
    rows = [("train", _last(history, "loss"), _last(history, metric) * unit)]
    if "val_loss" in history:
        rows.append(("validation", _last(history, "val_loss"), _last(history, "val_" + metric) * unit))
    test_scores = None
    if len(test_idx):
        test_scores = score(model, pre, table.X[test_idx], table.y[test_idx], f"target {table.target_name!r}")
        rows.append(("test", test_scores["loss"], test_scores[metric]))

    out()
    model.summary(print_fn=out)
    stopped = f", stopped early (best epoch {history.best_epoch})" if history.stopped_early else ""
    out(f"trained {history.epochs} epochs in {seconds:.1f} s on backend {model.backend.name!r}{stopped}")
    out()
    out(_score_table(rows, metric))
    out()
    if test_scores is not None:
        if regressor:
            print(f"test r2: {test_scores['r2']:.4f}")
            print(f"test mae: {test_scores['mae']:.4g}")
        else:
            print(f"test accuracy: {test_scores['accuracy']:.4f}")
    if args.save:
        model.save(args.save)
        out(f"saved model to {args.save}")
    if args.plot:
        model.plot_metrics(args.plot)
        out(f"wrote training curves to {args.plot}")
    return 0


def score(model, pre: D.Preprocessing, X_raw, y_raw, name: str = "target") -> dict[str, float]:
    """Loss and metrics on raw data.

    Classifiers: loss, accuracy, macro precision / recall / f1. Regressors: loss (on the
    standardised target the network trains on), and mse, mae, r2 in the target's own units.
    """
    from ..nn import metrics as M

    X, y = pre.features(X_raw), pre.encode_target(y_raw, name)
    scores = model.evaluate(X, y)
    if pre.task == "regress":
        pred = pre.decode(model.predict(X))
        scores = {"loss": scores["loss"], **M.regression_metrics(np.asarray(y_raw, dtype=np.float64), pred)}
    return scores


def _last(history, key):
    values = history.get(key) or []
    return values[-1] if values else float("nan")


def _score_table(rows, metric: str) -> str:
    header = ("", "loss", metric)
    cells = [header] + [(name, f"{loss:.4f}", f"{value:.4f}") for name, loss, value in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(3)]
    return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}" for r in cells)


def _smaller_lr(lr) -> str:
    return f"{(lr or 1e-3) / 10:g}"

