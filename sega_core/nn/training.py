"""The training loop: one optimizer step per mini-batch, data kept on the backend's device.

Per batch it does only array work: gather the batch on the device, forward, fused loss,
backward, L2, one optimizer kernel. The loss (with the L2 penalty at the weights the batch saw),
the metric and a check that every parameter is still finite accumulate on the device and come
back to the host together once per epoch, so a GPU backend synchronises once per epoch.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from ..errors import InputError, TrainingDivergedError
from .optimizers import make_optimizer
from .schedulers import make_scheduler
from .validation import check_batch_size, check_epochs


class History(dict):
    """Per-epoch training records: ``history["loss"]``, ``["accuracy"]``, ``["lr"]``, ``["val_loss"]``...

    A plain dict of lists (one value per epoch, accumulated over every ``train`` call of a
    model) with ``epochs`` (how many ran in all) and ``stopped_early``/``best_epoch`` (1-based,
    counted over all calls) when early stopping was used.
    """

    epochs = 0
    stopped_early = False
    best_epoch: int | None = None


#: Short names for the progress readout (a bar on an 80-column terminal).
_SHORT = {"accuracy": "acc", "val_accuracy": "val_acc"}


def _readout(record) -> str:
    return "  ".join(f"{_SHORT.get(k, k)}={v:.3g}" for k, v in record.items() if k != "lr")


def _progress(enabled, epochs):
    """A bar on a terminal, one line per epoch elsewhere (a log, a CI job), or nothing."""
    interactive = sys.stderr.isatty()
    if enabled is False or (enabled is None and not interactive):
        return None
    if interactive:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            pass
        else:
            return _Bar(tqdm(total=epochs, leave=True, bar_format="epoch {n_fmt}/{total_fmt} {bar:8} {elapsed} {postfix}"))
    return _Lines(epochs)


class _Bar:
    def __init__(self, bar):
        self.bar = bar

    def epoch_done(self, record):
        self.bar.set_postfix_str(_readout(record), refresh=False)
        self.bar.update(1)

    def close(self):
        self.bar.close()


class _Lines:
    """One line per epoch on stderr (Keras's ``verbose=2``)."""

    def __init__(self, total):
        self.total, self.n = total, 0

    def epoch_done(self, record):
        self.n += 1
        print(f"epoch {self.n}/{self.total}  {_readout(record)}", file=sys.stderr, flush=True)

    def close(self):
        pass


def _metric_name(model) -> str:
    return "mae" if model.regressor else "accuracy"


def _batch_metric(model, out, yb, unit):
    """A device scalar to sum over batches: correct predictions, or absolute error in target units."""
    xp = model.backend.xp
    if model.regressor:
        err = xp.abs(out - yb)
        return (err if unit is None else err * unit).sum() / out.shape[1]
    decided = model._head.decision(out)
    if model.loss.name == "bce_with_logits":
        return (decided == (yb >= 0.5)).sum() / out.shape[1]
    truth = yb if yb.ndim == 1 else yb.argmax(axis=1)
    return (decided == truth).sum()


def _bind_optimizer(model, optimizer, lr):
    if model.optimizer is None or optimizer is not None and optimizer is not model.optimizer:
        opt = make_optimizer(optimizer, lr)
        opt.bind(model.backend, model.params.size, model.dtype)
    else:
        opt = make_optimizer(model.optimizer, lr)
    return opt


# Divergence is detected once per epoch and reported as one error; NumPy's overflow warnings
# from inside the kernels would only bury it.
@np.errstate(over="ignore", invalid="ignore", divide="ignore")
def fit_loop(model, X, y, X_val, y_val, *, optimizer, lr, epochs, batch_size, lr_scheduler, patience,
             min_delta, shuffle, progress, track_metrics) -> History:
    """Run training epochs on ``model``; return its (accumulated) :class:`History`."""
    epochs = check_epochs(epochs)
    batch_size = check_batch_size(batch_size)
    if patience is not None and (isinstance(patience, bool) or not isinstance(patience, (int, np.integer)) or patience < 1):
        raise InputError(f"early_stopping_patience must be an int >= 1 or None, got {patience!r}")
    if isinstance(min_delta, bool) or not isinstance(min_delta, (int, float, np.integer, np.floating)) or not 0 <= min_delta < math.inf:
        raise InputError(f"early_stopping_min_delta must be a finite number >= 0, got {min_delta!r}")
    backend, params = model.backend, model.params
    opt = _bind_optimizer(model, optimizer, lr)
    scheduler = make_scheduler(lr_scheduler)
    model.optimizer = opt
    if scheduler is not None:
        scheduler.bind(opt)

    xp, to_device = backend.xp, backend.to_device
    Xd, yd = to_device(X), to_device(y)
    n = len(X)
    rng = np.random.default_rng(model.seed + 1 + opt.steps)
    forward, backward, loss_fn = model._forward, model._backward, model._head.loss
    lam, step = model.reg_lambda, opt.step
    param, grad, weights = params.param, params.grad, params.weights
    scaler = model.target_scaler
    unit = to_device(scaler.scale.astype(model.dtype)) if scaler is not None else None
    metric = _metric_name(model)
    history = model.history if model.history is not None else History()
    model.history = history
    done_before = history.epochs
    best, best_params, waited = math.inf, None, 0
    bar = _progress(progress, epochs)
    starts = range(0, n, batch_size)
    try:
        for epoch in range(epochs):
            before = params.snapshot()
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
                    # The penalty at the weights this batch saw: the loss the step minimises.
                    loss = loss + 0.5 * lam * (weights @ weights)
                    params.add_l2_gradient(lam)
                step(param, grad)
                total_loss += loss * (stop - start)
                if track_metrics:
                    total_metric += _batch_metric(model, out, yb, unit)
            sums = backend.to_host(xp.stack([total_loss, total_metric, params.all_finite().astype(np.float64)]))
            record = {"loss": float(sums[0]) / n}
            if not (math.isfinite(record["loss"]) and sums[2]):
                params.restore(before)
                model.optimizer = None  # its moments hold the non-finite values too
                raise TrainingDivergedError(_divergence_message(model, opt, done_before + epoch + 1, record["loss"], y))
            if track_metrics:
                record[metric] = float(sums[1]) / n
            record["lr"] = opt.lr
            if X_val is not None:
                scores = model._evaluate_arrays(X_val, y_val)
                record["val_loss"] = scores["loss"]
                record["val_" + metric] = scores[metric]
            for key, value in record.items():
                history.setdefault(key, []).append(value)
            history.epochs += 1
            monitored = record.get("val_loss", record["loss"])
            if scheduler is not None:
                scheduler.step(epoch, monitored)
            if bar is not None:
                bar.epoch_done(record)
            if patience is not None:
                if monitored < best - min_delta:
                    best, best_params, waited = monitored, params.snapshot(), 0
                    history.best_epoch = history.epochs
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


def _divergence_message(model, opt, epoch: int, loss: float, y) -> str:
    """Why training stopped, and the likely causes in the order worth trying."""
    causes = [f"lower the learning rate (lr={opt.lr:g})"]
    if model.reg_lambda:
        causes.append(f"lower reg_lambda ({model.reg_lambda:g})")
    if model.regressor and model.target_scaler is None:
        largest = float(np.abs(y).max()) if len(y) else 0.0
        if largest > 100:
            causes.append(f"scale the targets (the largest |y| is {largest:.3g}; standardize_target=True does it)")
    return (
        f"training diverged in epoch {epoch}: the loss is {loss:g} and the parameters are no longer all finite; "
        f"the model keeps the weights from before that epoch. Try to " + ", or ".join(causes)
    )
