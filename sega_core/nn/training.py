"""The training loop: one optimizer step per mini-batch, data kept on the backend's device.

Per batch it does only array work: gather the batch on the device, forward, fused loss,
backward, L2, one optimizer kernel. The loss and metric accumulate on the device and come back
to the host once per epoch, so a GPU backend never synchronises per batch.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from ..errors import InputError
from .optimizers import make_optimizer
from .schedulers import make_scheduler
from .validation import check_batch_size, check_epochs


class History(dict):
    """Per-epoch training records: ``history["loss"]``, ``["accuracy"]``, ``["lr"]``, ``["val_loss"]``...

    A plain dict of lists (one value per epoch) with ``epochs`` (how many ran) and
    ``stopped_early``/``best_epoch`` when early stopping was used.
    """

    epochs = 0
    stopped_early = False
    best_epoch: int | None = None


def _progress_bar(enabled, epochs):
    if enabled is False or (enabled is None and not sys.stderr.isatty()):
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _TextProgress(epochs) if enabled else None
    return tqdm(total=epochs, unit="epoch", leave=True, dynamic_ncols=True)


class _TextProgress:
    """Fallback progress: one line per epoch on stderr when tqdm is not installed."""

    def __init__(self, total):
        self.total, self.n = total, 0

    def update(self, n=1):
        self.n += n

    def set_postfix(self, values):
        text = "  ".join(f"{k}={v:.4g}" for k, v in values.items())
        print(f"epoch {self.n + 1}/{self.total}  {text}", file=sys.stderr)

    def close(self):
        pass


def _metric_name(model) -> str:
    return "mae" if model.regressor else "accuracy"


def _batch_metric(model, out, yb):
    """A device scalar to sum over batches: correct predictions, or absolute error."""
    xp = model.backend.xp
    if model.regressor:
        return xp.abs(out - yb).sum() / out.shape[1]
    if model.loss.name == "bce_with_logits":
        # ``out`` is always the input of the loss kernel's own sigmoid (logits, whatever the
        # output layer's activation), and sigmoid(l) >= 0.5 exactly when l >= 0.
        hits = ((out >= 0) == (yb >= 0.5)).sum()
        return hits / out.shape[1]
    truth = yb if yb.ndim == 1 else yb.argmax(axis=1)
    return (out.argmax(axis=1) == truth).sum()


def fit_loop(model, X, y, X_val, y_val, *, optimizer, lr, epochs, batch_size, lr_scheduler, patience,
             min_delta, shuffle, progress, track_metrics) -> History:
    """Run training epochs on ``model``; return its :class:`History`."""
    epochs = check_epochs(epochs)
    batch_size = check_batch_size(batch_size)
    if patience is not None and (not isinstance(patience, int) or patience < 1):
        raise InputError(f"early_stopping_patience must be an int >= 1 or None, got {patience!r}")
    backend, params = model.backend, model.params
    if model.optimizer is None or optimizer is not None and optimizer is not model.optimizer:
        opt = make_optimizer(optimizer, lr)
        opt.bind(backend, params.size, model.dtype)
    else:
        opt = model.optimizer
        if lr is not None:
            opt.lr = float(lr)
    model.optimizer = opt
    scheduler = make_scheduler(lr_scheduler)
    if scheduler is not None:
        scheduler.bind(opt)

    xp, to_device = backend.xp, backend.to_device
    Xd, yd = to_device(X), to_device(y)
    n = len(X)
    rng = np.random.default_rng(model.seed + 1 + opt.steps)
    forward, backward, loss_fn = model._forward, model._backward, model._loss_kernel
    lam, step = model.reg_lambda, opt.step
    param, grad = params.param, params.grad
    metric = _metric_name(model)
    history = History(loss=[], **{metric: []}, lr=[])
    if X_val is not None:
        history["val_loss"], history["val_" + metric] = [], []
    best, best_params, waited = math.inf, None, 0
    bar = _progress_bar(progress, epochs)
    starts = range(0, n, batch_size)
    try:
        for epoch in range(epochs):
            order = to_device(rng.permutation(n)) if shuffle else None
            total_loss = xp.zeros((), dtype=np.float64)
            total_metric = xp.zeros((), dtype=np.float64)
            for start in starts:
                stop = min(start + batch_size, n)
                if order is None:
                    xb, yb = Xd[start:stop], yd[start:stop]
                else:
                    idx = order[start:stop]
                    xb, yb = xp.take(Xd, idx, axis=0), xp.take(yd, idx, axis=0)
                out = forward(xb, True)
                loss, g = loss_fn(out, yb)
                backward(g)
                if lam:
                    params.add_l2_gradient(lam)
                step(param, grad)
                total_loss += loss * (stop - start)
                if track_metrics:
                    total_metric += _batch_metric(model, out, yb)
            record = {"loss": float(total_loss) / n + model._penalty()}
            if track_metrics:
                record[metric] = float(total_metric) / n
            record["lr"] = opt.lr
            if X_val is not None:
                scores = model.evaluate(X_val, y_val)
                record["val_loss"] = scores["loss"]
                record["val_" + metric] = scores[metric]
            for key, value in record.items():
                history.setdefault(key, []).append(value)
            history.epochs = epoch + 1
            if not math.isfinite(record["loss"]):
                raise FloatingPointError(
                    f"training diverged at epoch {epoch + 1} (loss {record['loss']}); lower the learning rate"
                )
            monitored = record.get("val_loss", record["loss"])
            if scheduler is not None:
                scheduler.step(epoch, monitored)
            if bar is not None:
                bar.set_postfix({k: v for k, v in record.items() if k != "lr"})
                bar.update(1)
            if patience is not None:
                if monitored < best - min_delta:
                    best, best_params, waited = monitored, params.snapshot(), 0
                    history.best_epoch = epoch + 1
                else:
                    waited += 1
                    if waited >= patience:
                        history.stopped_early = True
                        break
    finally:
        if bar is not None:
            bar.close()
    if best_params is not None:
        params.restore(best_params)
    return history
