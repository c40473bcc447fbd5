"""``sega train``: train a network on a CSV / .npz file or a built-in dataset, report, save, plot."""

from __future__ import annotations

import argparse
import time

import numpy as np

from ..errors import InputError, SegaError
from . import data as D
from .csvfile import HEADER_MODES
from .impute import STRATEGIES
from .presets import PRESET_DEFAULTS, SEQUENCE_PRESETS, int_list, sample_shape

NAME = "train"

DEFAULT_DATASET = "digits"

EPILOG = """\
examples:
  sega train                                   # digits, 80/20 split, prints test accuracy
  sega train iris --layers 16 --epochs 100
  sega train digits --model cnn --save digits.sega --plot curves.png
  sega train digits --model rnn --sequence-shape 8,8
  sega train digits --model lstm
  sega train data.csv --target species --save model.sega
  sega train houses.csv --target price --task regress --early-stopping 10 --impute median
  sega train images.npz --model cnn --image-shape 1,28,28 --backend numba
  mpiexec -n 4 sega train data.npz --distributed mpi   # data-parallel over 4 processes (sega-core[mpi])

models:
  mlp  Dense hidden layers (--layers 128,64)
  cnn  a Conv2D per --filters entry (default 8,16), each followed by a 2x2 MaxPool2D while the
       image is 8 pixels or more, then Flatten, Dense
       (--layers); samples are images C x H x W: --image-shape, or square 1 x s x s
  rnn  an RNN (first --layers entry = its units) then Dense layers; samples are sequences
       T x F: --sequence-shape, or square s x s
  lstm, gru  the same with an LSTM or a GRU layer

Built-in datasets (need scikit-learn): digits, iris, wine, breast_cancer (classification),
diabetes (regression). The model takes raw features: it begins with a Normalization layer
fitted to the training part (--no-standardize leaves it out), learns the class labels, and a
regressor learns its target's scale, so NeuralNetwork.load(PATH).predict(raw_X) in Python gives
what `sega predict` gives. A CSV cell that is empty, NA, nan or ? is missing: an error in the
target, and in features unless --impute fills it. A CSV whose first row holds numbers in every
column of numbers has no header (a text label in it is data): its columns are x0, x1, ...
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
        help=f"CSV file (with a header row, or none if the first row is data), .npz file (arrays X, y) "
        f"or built-in dataset name "
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
                   help="no Normalization layer: the network sees raw feature values "
                   "(default: it scales each feature to mean 0, std 1 of the training part)")
    g.add_argument("--impute", choices=STRATEGIES,
                   help="fill missing feature values with the training part's mean or median, saved with "
                   "the model for predict/evaluate (default: missing values are an error)")
    g.add_argument("--header", choices=HEADER_MODES, default="auto",
                   help="CSV: whether the first row names the columns (default: auto, a first row with numbers over the columns of numbers is data)")
    m = p.add_argument_group("model")
    m.add_argument("--model", choices=tuple(PRESET_DEFAULTS), default="mlp", help="architecture preset (default: mlp)")
    m.add_argument("--layers", metavar="SIZES", help="comma-separated hidden sizes (default: mlp 128,64; cnn 64; rnn, lstm, gru 64)")
    m.add_argument("--filters", metavar="COUNTS", default="8,16", help="cnn: comma-separated Conv2D filters (default: 8,16)")
    m.add_argument("--image-shape", metavar="C,H,W", help="cnn: shape of one sample")
    m.add_argument("--sequence-shape", metavar="T,F", help="rnn, lstm, gru: time steps and features per step")
    m.add_argument("--activation", help="hidden activation: relu, leaky_relu, tanh, sigmoid "
                   "(default: relu; tanh for the rnn layer itself)")
    m.add_argument("--dropout", type=float, default=0.0, metavar="RATE", help="dropout after hidden layers (default: 0)")
    m.add_argument("--l2", type=float, default=0.0, metavar="LAMBDA", help="L2 weight penalty (default: 0)")
    m.add_argument("--backend", help="compute backend (see `sega backends`; default: the default backend)")
    m.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="default: float32")
    t = p.add_argument_group("training")
    t.add_argument("--epochs", type=int, metavar="N", help="passes over the data (default: mlp 30, cnn 10, rnn/lstm/gru 30)")
    t.add_argument("--batch-size", type=int, default=32, metavar="N", help="default: 32")
    t.add_argument("--optimizer", default="adam", help="adam, sgd or adadelta (default: adam)")
    t.add_argument("--lr", type=float, metavar="RATE", help="learning rate (default: the optimizer's, 1e-3 for adam)")
    t.add_argument("--lr-scheduler", choices=("step", "exponential", "plateau"), help="learning-rate schedule")
    t.add_argument("--early-stopping", type=int, nargs="?", const=10, metavar="PATIENCE",
                   help="stop after PATIENCE epochs (default 10) without validation improvement, keep the best weights")
    t.add_argument("--seed", type=int, default=0, help="seeds the split, the weights and the shuffling (default: 0)")
    t.add_argument("--distributed", choices=("mpi",),
                   help="mpi: data-parallel training over the processes of an mpiexec run (needs sega-core[mpi]); "
                   "each process trains on its share of every batch, rank 0 alone prints and writes files")
    progress = t.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None,
                          help="report each epoch: a bar on a terminal, else one line per epoch "
                          "(default: a bar on a terminal, nothing elsewhere)")
    progress.add_argument("--no-progress", dest="progress", action="store_false", help="never report epochs")
    o = p.add_argument_group("output")
    o.add_argument("--save", metavar="PATH", help="write the trained model to PATH (checked before training)")
    o.add_argument("--plot", metavar="PNG", help="write the training curves to a PNG file (needs matplotlib; checked before training)")
    o.add_argument("-q", "--quiet", action="store_true", help="print only the final scores")
    return p


# ---- the command --------------------------------------------------------------------------


def run(args) -> int:
    """Train, report, optionally save and plot; 0 on success."""
    from ..backends import get_backend
    from .outputs import check_outputs, check_plotting

    # What can fail without the data is checked first, so a mistake never costs a training run:
    # the backend, then every file the run will write and what writing it needs.
    get_backend(args.backend)
    dist = _distributed(args)
    root = dist is None or dist.is_root
    if not root:  # rank 0 alone prints and writes files
        args.save = args.plot = None
        args.quiet, args.progress = True, False
    check_outputs(save=args.save, plot=args.plot)
    if args.plot:
        check_plotting()
    for option, value in (("--test-size", args.test_size), ("--validation-split", args.validation_split)):
        if not 0 <= value < 1:
            raise InputError(f"{option} must be in [0, 1), got {value}")

    out = (lambda *a, **k: None) if args.quiet else print
    table = D.load_data(args.data, target=args.target, need_target=True, header=args.header)
    if table.y is None:
        raise InputError(f"{table.source!r} has no target to train on")
    task = D.infer_task(table.y, args.task, table.builtin, table.target_name)
    table.y = D.training_targets(table.y, task)
    parts = split(table, task, args)
    imputer = _imputer(table, parts["train"], args.impute)
    X = table.X if imputer is None else imputer.apply(table.X)
    model = build_model(args, table, X.shape[1:], task, imputer)

    what = "regression" if task == "regress" else f"{model.n_outputs} classes"
    n_val = len(parts.get("validation", ()))
    out(f"training the {args.model} model on {table.builtin or table.source}: {len(parts['train'])} train / "
        f"{n_val} validation / {len(parts['test'])} test samples, {int(np.prod(X.shape[1:]))} features, {what}")
    history, seconds = _train(model, X, table.y, parts, args)

    # Scored now, with the weights training ended with: after early stopping those of the best
    # epoch, which the history's last entries are not.
    rows = [(name, model.evaluate(X[idx], table.y[idx])) for name, idx in parts.items() if len(idx)]
    out()
    model.summary(print_fn=out)
    stopped = f", stopped early (best epoch {history.best_epoch})" if history.stopped_early else ""
    out(f"trained {history.epochs} epochs in {seconds:.1f} s on backend {model.backend.name!r}{stopped}")
    out()
    out(score_table(rows, task))
    out()
    test = dict(rows).get("test")
    if test is not None and root:
        if task == "regress":
            print(f"test r2: {test['r2']:.4f}")
            print(f"test mae: {test['mae']:.4g}")
        else:
            print(f"test accuracy: {test['accuracy']:.4f}")
    if args.save:
        model.save(args.save)
        out(f"saved model to {args.save}")
    if args.plot:
        model.plot_metrics(args.plot)
        out(f"wrote training curves to {args.plot}")
    return 0


def _distributed(args):
    """The run's :class:`~sega_core.distributed.DataParallel` for ``--distributed mpi``, else ``None``."""
    if getattr(args, "distributed", None) is None:
        return None
    from ..distributed import DataParallel

    try:
        args.distributed_model = DataParallel()
    except ImportError as exc:
        raise InputError(str(exc)) from None
    return args.distributed_model


def split(table: D.Table, task: str, args) -> dict[str, np.ndarray]:
    """Row indices of the ``train``, ``validation`` and ``test`` parts, seeded, per class for
    classifiers (each class keeps a sample in ``train``, so the model learns every label)."""
    stratify = table.y if task == "classify" else None
    rest, test = D.train_test_indices(len(table.y), args.test_size, args.seed, stratify)
    fraction = args.validation_split
    if args.early_stopping is not None and not fraction:
        fraction = 0.1  # early stopping watches a validation loss
    if not fraction:
        return {"train": rest, "test": test}
    keep, held = D.train_test_indices(len(rest), fraction, args.seed + 1,
                                      None if stratify is None else stratify[rest], option="--validation-split")
    return {"train": rest[keep], "validation": rest[held], "test": test}


def _imputer(table: D.Table, train_rows: np.ndarray, strategy: str | None):
    """The imputation fitted on the training rows, or None after checking nothing is missing."""
    from .impute import Imputer, check_complete

    if strategy is None:
        check_complete(table, "fill them in, or pass --impute mean (or median) to fill them from the training part")
        return None
    return Imputer.fit(table.take(train_rows), strategy)


def build_model(args, table: D.Table, data_shape: tuple[int, ...], task: str, imputer):
    """The untrained network for ``args``, taking raw samples of ``data_shape``, with the
    command-line metadata it will be saved with."""
    from ..nn.model import NeuralNetwork
    from .metadata import CliMetadata
    from .presets import build_layers

    preset = args.model
    defaults = PRESET_DEFAULTS[preset]
    hidden = int_list(args.layers if args.layers is not None else defaults["layers"], "--layers", allow_empty=preset not in SEQUENCE_PRESETS)
    filters = int_list(args.filters, "--filters") if preset == "cnn" else []
    shape = sample_shape(tuple(data_shape), preset, args.image_shape, args.sequence_shape)
    regressor = task == "regress"
    n_out = 1 if regressor else len(np.unique(table.y))
    if n_out < 2 and not regressor:
        raise InputError(f"the target {table.target_name!r} has a single class ({table.y[0]!r}); classification needs at least 2")
    layers = build_layers(preset, tuple(data_shape), shape, hidden=hidden, filters=filters, n_out=n_out,
                          activation=args.activation, dropout=args.dropout, regressor=regressor,
                          standardize=args.standardize)
    model = NeuralNetwork(layers, reg_lambda=args.l2, regressor=regressor, standardize_target=regressor,
                          backend=args.backend, dtype=args.dtype, seed=args.seed, input_shape=tuple(data_shape),
                          distributed=getattr(args, "distributed_model", None))
    meta = CliMetadata(
        feature_names=list(table.feature_names),
        target_name=table.target_name,
        dataset=table.builtin or table.source,
        split={"test_size": args.test_size, "seed": args.seed, "stratified": not regressor},
        imputation=None if imputer is None else imputer.to_config(),
    )
    model.extra_config = {"cli": meta.to_config()}
    return model


def _train(model, X, y, parts, args):
    """Train on the ``train`` part, watching ``validation``; the history and the seconds taken."""
    defaults = PRESET_DEFAULTS[args.model]
    fit, val = parts["train"], parts.get("validation")
    started = time.perf_counter()
    # A diverging run is reported below as one line; numpy's overflow warnings would only
    # bury that line under backend source lines.
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            history = model.train(
                X[fit],
                y[fit],
                X_val=None if val is None else X[val],
                y_val=None if val is None else y[val],
                optimizer=args.optimizer,
                lr=args.lr,
                epochs=defaults["epochs"] if args.epochs is None else args.epochs,
                batch_size=args.batch_size,
                lr_scheduler=args.lr_scheduler,
                early_stopping_patience=args.early_stopping,
                progress=args.progress,
            )
    except FloatingPointError as exc:
        raise SegaError(f"{exc} (e.g. --lr {_smaller_lr(args.lr)})") from None
    return history, time.perf_counter() - started


def score_table(rows, task: str) -> str:
    """The final table: one row per part. Classifiers show loss and accuracy; regressors show
    mse, mae (both in the target's own units) and r2."""
    columns = ("mse", "mae", "r2") if task == "regress" else ("loss", "accuracy")
    cells = [("", *columns)] + [(name, *(f"{scores[c]:.4f}" for c in columns)) for name, scores in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns) + 1)]
    return "\n".join("  ".join([f"{r[0]:<{widths[0]}}"] + [f"{v:>{w}}" for v, w in zip(r[1:], widths[1:])]) for r in cells)


def _smaller_lr(lr) -> str:
    return f"{(lr or 1e-3) / 10:g}"
