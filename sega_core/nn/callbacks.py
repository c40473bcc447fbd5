"""Callbacks: code that runs at fixed points of training (Keras's protocol, kept small).

A callback subclasses :class:`Callback` and overrides what it needs::

    class Printer(Callback):
        def on_epoch_end(self, epoch, logs):
            print(epoch, logs["loss"])

    model.train(X, y, epochs=10, callbacks=[Printer()])

``epoch`` counts from 0 over every ``train`` call of the model (the history's index). ``logs``
holds the epoch's record (``loss``, ``accuracy`` or ``mae``, ``lr``, and ``val_*`` with
validation data) as Python floats. :meth:`Callback.on_batch_end` is called only for callbacks
that override it; its ``logs`` holds the batch's loss as a 0-d array of the backend (reading it
as a float waits for the device), so training without such a callback does no per-batch work
for callbacks at all. Setting ``model.stop_training = True`` ends training after the epoch.
"""

from __future__ import annotations

import csv
import math
import os
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import InputError


class Callback:
    """Base class: every method does nothing; ``model`` and ``params`` are set before training."""

    model = None
    params: dict = {}

    def set_model(self, model) -> None:
        """Attach the model being trained."""
        self.model = model

    def set_params(self, params: dict) -> None:
        """Training parameters: ``epochs`` (of this call), ``steps`` (batches per epoch),
        ``metrics`` (the names each epoch's logs will hold)."""
        self.params = params

    def on_train_begin(self, logs=None) -> None:
        """Before the first epoch: check arguments here, so mistakes fail before any work."""

    def on_train_end(self, logs=None) -> None:
        """After the last epoch, and also when training stops on an error."""

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        """Before each epoch."""

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        """After each epoch, with its record."""

    def on_batch_end(self, batch: int, logs=None) -> None:
        """After each optimizer step (only called on callbacks that override it)."""


def _monitor_mode(monitor: str, mode: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise InputError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode != "auto":
        return mode
    return "max" if any(word in monitor for word in ("acc", "r2", "f1", "precision", "recall")) else "min"


def _check_monitor(callback: Callback, monitor: str) -> None:
    names = callback.params.get("metrics", ())
    if monitor not in names:
        hint = " (validation metrics need validation_data or validation_split)" if monitor.startswith("val_") else ""
        raise InputError(
            f"{type(callback).__name__} monitors {monitor!r}, which this training does not record{hint}; "
            f"it records: {', '.join(names)}"
        )


class _Monitor:
    """Tracks the best value of one logged quantity."""

    def __init__(self, monitor: str, mode: str, min_delta: float) -> None:
        if not isinstance(monitor, str) or not monitor:
            raise InputError(f"monitor must be the name of a logged quantity (e.g. 'val_loss'), got {monitor!r}")
        if isinstance(min_delta, bool) or not isinstance(min_delta, (int, float, np.integer, np.floating)) \
                or not 0 <= min_delta < math.inf:
            raise InputError(f"min_delta must be a finite number >= 0, got {min_delta!r}")
        self.monitor, self.mode, self.min_delta = monitor, _monitor_mode(monitor, mode), float(min_delta)
        self.best = math.inf if self.mode == "min" else -math.inf

    def improved(self, logs) -> bool:
        value = logs[self.monitor]
        better = value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta
        if better:
            self.best = value
        return better


def _positive_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    With ``restore_best_weights`` the model ends with the weights (and normalisation
    statistics) of its best epoch. ``mode`` ``"auto"`` minimises losses and errors and
    maximises accuracies, R^2 and F1.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 0, min_delta: float = 0.0,
                 restore_best_weights: bool = False, mode: str = "auto") -> None:
        self._monitor = _Monitor(monitor, mode, min_delta)
        self.patience = _positive_int("patience", patience, 0)
        self.restore_best_weights = bool(restore_best_weights)
        self.monitor = monitor

    def on_train_begin(self, logs=None):
        """Check the monitored name; reset the count."""
        _check_monitor(self, self.monitor)
        self.wait, self.best_weights, self.stopped_epoch = 0, None, None

    def on_epoch_end(self, epoch, logs=None):
        """Count epochs without improvement; stop after ``patience`` of them."""
        if self._monitor.improved(logs):
            self.wait = 0
            self.model.history.best_epoch = epoch + 1
            if self.restore_best_weights:
                self.best_weights = self.model.params.snapshot()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            self.model.history.stopped_early = True

    def on_train_end(self, logs=None):
        """Restore the best epoch's weights when asked."""
        if self.restore_best_weights and self.best_weights is not None:
            self.model.params.restore_snapshot(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model (through its atomic model-file writer) after epochs.

    ``filepath`` may hold ``{epoch}`` and logged names, e.g. ``"ckpt-{epoch:03d}-{val_loss:.3f}.npz"``
    (``epoch`` counts from 1). With ``save_best_only`` a file is written only when ``monitor``
    improves. The optimizer's state is saved too, so training can resume from the file.
    """

    def __init__(self, filepath, monitor: str = "val_loss", save_best_only: bool = False, mode: str = "auto") -> None:
        self.filepath = os.fspath(filepath)
        self.monitor, self.save_best_only = monitor, bool(save_best_only)
        self._monitor = _Monitor(monitor, mode, 0.0)
        self.last_saved: str | None = None

    def _path(self, epoch: int, logs: dict) -> Path:
        try:
            return Path(self.filepath.format(epoch=epoch + 1, **logs))
        except (KeyError, IndexError, ValueError) as exc:
            raise InputError(f"ModelCheckpoint filepath {self.filepath!r} cannot be formatted: {exc}") from None

    def on_train_begin(self, logs=None):
        """Check the monitored name, the path's placeholders and its folder."""
        if self.save_best_only:
            _check_monitor(self, self.monitor)
        sample = self._path(0, dict.fromkeys(self.params.get("metrics", ()), 0.0))
        _check_folder(sample, "ModelCheckpoint")

    def on_epoch_end(self, epoch, logs=None):
        """Write the model (when it improved, with ``save_best_only``)."""
        if self.save_best_only and not self._monitor.improved(logs):
            return
        path = self._path(epoch, logs)
        self.model.save(path)
        self.last_saved = str(path)


class CSVLogger(Callback):
    """Write each epoch's record as a row of a CSV file (``epoch`` counts from 1)."""

    def __init__(self, filename, separator: str = ",", append: bool = False) -> None:
        self.filename, self.separator, self.append = Path(os.fspath(filename)), separator, bool(append)
        self._file = self._writer = None

    def on_train_begin(self, logs=None):
        """Open the file (checked before any epoch runs)."""
        _check_folder(self.filename, "CSVLogger")
        keep = self.append and self.filename.exists() and self.filename.stat().st_size > 0
        self._file = open(self.filename, "a" if keep else "w", newline="", encoding="utf-8")
        self._writer = None
        self._has_header = keep

    def on_epoch_end(self, epoch, logs=None):
        """Append the row and flush it, so the file is current while training runs."""
        row = {"epoch": epoch + 1, **logs}
        if self._writer is None:
            self._writer = csv.DictWriter(self._file, fieldnames=list(row), delimiter=self.separator)
            if not self._has_header:
                self._writer.writeheader()
        self._writer.writerow(row)
        self._file.flush()

    def on_train_end(self, logs=None):
        """Close the file."""
        if self._file is not None:
            self._file.close()
            self._file = None


class LearningRateScheduler(Callback):
    """Set the learning rate before each epoch to ``schedule(epoch, lr)`` (epoch from 0)."""

    def __init__(self, schedule: Callable[[int, float], float]) -> None:
        if not callable(schedule):
            raise InputError(f"LearningRateScheduler needs a function schedule(epoch, lr) -> lr, got {schedule!r}")
        self.schedule = schedule

    def on_epoch_begin(self, epoch, logs=None):
        """Ask the schedule for this epoch's rate."""
        lr = self.schedule(epoch, self.model.optimizer.lr)
        if isinstance(lr, bool) or not isinstance(lr, (int, float, np.integer, np.floating)) or not 0 < lr < math.inf:
            raise InputError(f"the learning-rate schedule returned {lr!r} for epoch {epoch}; it must return a finite number > 0")
        self.model.optimizer.lr = float(lr)


class TerminateOnNaN(Callback):
    """Stop training quietly, with the last finite weights, when the loss or a parameter is not finite.

    Without it, that ends training with :class:`~sega_core.errors.TrainingDivergedError`. The
    check is once per epoch (a per-batch check would wait for the device every batch).
    """


class ProgressLogger(Callback):
    """Report each epoch: a bar on a terminal (tqdm), else one line per epoch on stderr."""

    #: Short names, so a bar's readout fits an 80-column terminal.
    SHORT = {"accuracy": "acc", "val_accuracy": "val_acc"}

    def __init__(self, bar: bool) -> None:
        self.bar_wanted = bar

    def _readout(self, logs) -> str:
        return " ".join(f"{self.SHORT.get(k, k)}={_compact(v)}" for k, v in logs.items() if k != "lr")

    def on_train_begin(self, logs=None):
        """Start the bar (tqdm, when installed) or the line count."""
        self._bar, self._done = None, 0
        if self.bar_wanted:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                return
            self._bar = tqdm(total=self.params["epochs"], leave=True, bar_format="{n_fmt}/{total_fmt} {bar:8} {elapsed} {desc}")

    def on_epoch_end(self, epoch, logs=None):
        """Advance the bar, or print the epoch's line."""
        self._done += 1
        if self._bar is not None:
            self._bar.set_description_str(self._readout(logs), refresh=False)
            self._bar.update(1)
        else:
            print(f"epoch {self._done}/{self.params['epochs']}  {self._readout(logs)}", file=sys.stderr, flush=True)

    def on_train_end(self, logs=None):
        """Close the bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _compact(value: float) -> str:
    """Three significant digits, an exponent without its padding (``1.23e4``, ``5e-7``)."""
    mantissa, e, exponent = f"{value:.3g}".partition("e")
    return mantissa + (e + str(int(exponent)) if e else "")


def progress_logger(verbose) -> ProgressLogger | None:
    """The logger for ``verbose``: ``None`` (a bar on a terminal, else nothing), 0, 1 (a bar on
    a terminal, else lines) or 2 (one line per epoch)."""
    if verbose is not None and (isinstance(verbose, bool) or verbose not in (0, 1, 2)):
        raise InputError(f"verbose must be 0 (silent), 1 (progress bar) or 2 (one line per epoch), got {verbose!r}")
    interactive = sys.stderr.isatty()
    if verbose == 0 or (verbose is None and not interactive):
        return None
    return ProgressLogger(bar=interactive and verbose != 2)


def _check_folder(path: Path, owner: str) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise InputError(f"{owner} path {str(path)!r} is a directory; give a file name")
    if not folder.is_dir():
        raise InputError(f"{owner} folder {str(folder)!r} does not exist; create it first")


def check_callbacks(callbacks) -> list[Callback]:
    """``callbacks`` as a list of :class:`Callback` objects."""
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback):
        return [callbacks]
    try:
        items = list(callbacks)
    except TypeError:
        items = None
    if items is None or not all(isinstance(c, Callback) for c in items):
        raise InputError(f"callbacks must be a list of Callback objects (EarlyStopping, ModelCheckpoint...), got {callbacks!r}")
    return items
