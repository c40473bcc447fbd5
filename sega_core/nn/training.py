"""The training loop: one optimizer step per mini-batch, data kept on the backend's device.

Per batch it does only array work: gather the batch on the device, forward, fused loss (with
the batch's sample weights, if any), backward, L2, one optimizer kernel. The loss (with the L2
penalty at the weights the batch saw), the metric and a check that every parameter is still
finite accumulate on the device and come back to the host together once per epoch, so a GPU
backend synchronises once per epoch. Callbacks run between epochs; only those that ask for
batches are called per batch.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import TrainingDivergedError
from .callbacks import Callback, TerminateOnNaN
from .optimizers import make_optimizer
from .schedulers import LR_FLOOR, make_scheduler
from .validation import check_batch_size, check_epochs


class History(dict):
    """Per-epoch training records: ``history["loss"]``, ``["accuracy"]``, ``["lr"]``, ``["val_loss"]``...

    A dict of lists (one value per epoch, accumulated over every ``train`` call of a model), so
    ``history["loss"]`` and Keras's ``history.history["loss"]`` both work. ``epochs`` is how many
    ran in all; ``stopped_early`` and ``best_epoch`` (1-based, over all calls) are set by early
    stopping; ``diverged`` when :class:`~sega_core.nn.callbacks.TerminateOnNaN` stopped training.
    """

    epochs = 0
    stopped_early = False
    best_epoch: int | None = None
    diverged = False

    @property
    def history(self) -> "History":
        """This object itself (Keras's ``History.history``)."""
        return self

    @property
    def epoch(self) -> list[int]:
        """The 0-based index of every recorded epoch (Keras's ``History.epoch``)."""
        return list(range(self.epochs))


def _metric_name(model) -> str:
    return "mae" if model.regressor else "accuracy"


def _batch_metric(model, out, yb, wb, unit):
    """A device scalar to sum over batches: (weighted) correct predictions, or absolute error in
    target units, per sample."""
    xp = model.backend.xp
    if model.regressor:
        err = xp.abs(out - yb)
        per_sample = (err if unit is None else err * unit).sum(axis=1) / out.shape[1]
    else:
        decided = model._head.decision(out)
        if model.loss.name == "bce_with_logits":
            per_sample = (decided == (yb >= 0.5)).sum(axis=1) / out.shape[1]
        else:
            per_sample = decided == (yb if yb.ndim == 1 else yb.argmax(axis=1))
    return per_sample.sum() if wb is None else (per_sample * wb).sum()


def _bind_optimizer(model, optimizer, lr):
    """The model's optimizer (``optimizer=None``: kept from the last call, else Adam), with ``lr``."""
    if optimizer is None and model.optimizer is not None:
        return make_optimizer(model.optimizer, lr)
    opt = make_optimizer("adam" if optimizer is None else optimizer, lr)
    if opt is not model.optimizer or getattr(opt, "_state", None) is None:
        opt.bind(model.backend, model.params.size, model.dtype, model.params.segments)
    return opt


def _overrides(callback: Callback, method: str) -> bool:
    return getattr(type(callback), method) is not getattr(Callback, method)


# Divergence is detected once per epoch and reported as one error; NumPy's overflow warnings
# from inside the kernels would only bury it.
@np.errstate(over="ignore", invalid="ignore", divide="ignore")
def fit_loop(model, X, y, w, validation, *, optimizer, lr, epochs, batch_size, lr_scheduler, callbacks,
             shuffle, track_metrics) -> "History":
    """Run training epochs on ``model``; return its (accumulated) :class:`History`.

    ``w`` is ``None`` or the per-sample weights; ``validation`` is ``None`` or checked
    ``(X, y, weights or None)``.
    """
    epochs = check_epochs(epochs)
    batch_size = check_batch_size(batch_size)
    backend, params = model.backend, model.params
    opt = _bind_optimizer(model, optimizer, lr)
    scheduler = make_scheduler(lr_scheduler) if lr_scheduler is not None else model.lr_scheduler
    model.optimizer, model.lr_scheduler = opt, scheduler
    if scheduler is not None:
        scheduler.bind(opt)

    xp, to_device = backend.xp, backend.to_device
    Xd, yd = to_device(X), to_device(y)
    wd = None if w is None else to_device(w.astype(model.dtype))
    n = len(X)
    total_weight = float(n if w is None else w.sum())
    forward, backward, loss_fn = model._forward, model._backward, model._head.loss
    lam, step = model.reg_lambda, opt.step
    param, grad, weights = params.param, params.grad, params.weights
    scaler = model.target_scaler
    unit = to_device(scaler.scale.astype(model.dtype)) if scaler is not None else None
    metric = _metric_name(model)
    history = model.history if model.history is not None else History()
    model.history = history
    names = ["loss"] + ([metric] if track_metrics else []) + ["lr"]
    if validation is not None:
        names += ["val_loss", "val_" + metric]
    callbacks = list(callbacks)
    quiet_on_nan = any(isinstance(c, TerminateOnNaN) for c in callbacks)
    per_batch = [c for c in callbacks if _overrides(c, "on_batch_end")]
    schedule = scheduler if scheduler is not None and scheduler.per_batch else None
    starts = range(0, n, batch_size)
    for callback in callbacks:
        callback.set_model(model)
        callback.set_params({"epochs": epochs, "steps": len(starts), "metrics": names})
    model.stop_training = False
    begun = []
    try:
        for callback in callbacks:
            callback.on_train_begin()
            begun.append(callback)
        for _ in range(epochs):
            epoch = history.epochs
            for callback in callbacks:
                callback.on_epoch_begin(epoch)
            before = params.snapshot()
            model._begin_epoch(epoch)
            order = to_device(np.random.default_rng([model.seed, 1, epoch]).permutation(n)) if shuffle else None
            total_loss = xp.zeros((), dtype=np.float64)
            total_metric = xp.zeros((), dtype=np.float64)
            for index, start in enumerate(starts):
                stop = min(start + batch_size, n)
                if order is None:
                    xb, yb = Xd[start:stop], yd[start:stop]
                    wb = None if wd is None else wd[start:stop]
                else:
                    idx = order[start:stop]
                    xb, yb = xp.take(Xd, idx, axis=0), xp.take(yd, idx, axis=0)
                    wb = None if wd is None else xp.take(wd, idx, axis=0)
                if schedule is not None:
                    opt.lr = max(schedule.lr_at(opt.steps), LR_FLOOR)
                out = forward(xb, True)
                loss, g = loss_fn(out, yb, wb)
                backward(g)
                if lam:
                    # The penalty at the weights this batch saw: the loss the step minimises.
                    loss = loss + 0.5 * lam * (weights @ weights)
                    params.add_l2_gradient(lam)
                step(param, grad)
                total_loss += loss * (stop - start)
                if track_metrics:
                    total_metric += _batch_metric(model, out, yb, wb, unit)
                if per_batch:
                    for callback in per_batch:
                        callback.on_batch_end(index, {"size": stop - start, "loss": loss})
            sums = backend.to_host(xp.stack([total_loss, total_metric, params.all_finite().astype(np.float64)]))
            record = {"loss": float(sums[0]) / n}
            if not (math.isfinite(record["loss"]) and sums[2]):
                params.restore(before)
                model.optimizer = None  # its moments hold the non-finite values too
                if quiet_on_nan:
                    history.diverged = True
                    break
                raise TrainingDivergedError(_divergence_message(model, opt, epoch + 1, record["loss"], y))
            if track_metrics:
                record[metric] = float(sums[1]) / total_weight
            record["lr"] = opt.lr
            if validation is not None:
                scores = model._evaluate_arrays(*validation)
                record["val_loss"] = scores["loss"]
                record["val_" + metric] = scores[metric]
            for key, value in record.items():
                history.setdefault(key, []).append(value)
            history.epochs += 1
            if scheduler is not None:
                scheduler.step(epoch, record.get("val_loss", record["loss"]))
            for callback in callbacks:
                callback.on_epoch_end(epoch, dict(record))
            if model.stop_training:
                break
    finally:
        for callback in begun:
            callback.on_train_end()
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
