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

from ..errors import InputError, TrainingDivergedError
from .callbacks import Callback, CSVLogger, ModelCheckpoint, ProgressLogger, TerminateOnNaN
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


#: Callbacks that report or write files: a distributed model runs them on rank 0 only.
ROOT_ONLY_CALLBACKS = (ProgressLogger, ModelCheckpoint, CSVLogger)


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


def _check_last_batch(model, n: int, batch_size: int) -> None:
    """Refuse, before the first step, data whose last batch would leave a BatchNormalization
    one value per channel (batch size 1, or a remainder of one sample, after Dense): it would
    fail mid-epoch, after some of the epoch's steps, naming a batch size that is not the cause."""
    last = n % batch_size or batch_size
    for layer in model.layers:
        if layer.kind == "batchnormalization" and layer.values_per_channel(last) < 2:
            fits = [b for b in range(min(max(batch_size, 2), n), 1, -1) if layer.values_per_channel(n % b or b) >= 2]
            if batch_size == 1 or not fits:
                advice = "use a batch size > 1" if fits else "it needs at least 2 training samples"
                raise InputError(f"BatchNormalization needs more than one value per feature in training; {advice}")
            raise InputError(
                f"{n} training samples in batches of {batch_size} leave a last batch of 1 sample, and "
                f"BatchNormalization cannot normalise one value per feature in training: use batch_size={fits[0]}, "
                "or drop a sample"
            )


# Divergence is detected once per epoch and reported as one error; NumPy's overflow warnings
# from inside the kernels would only bury it.
@np.errstate(over="ignore", invalid="ignore", divide="ignore")
def fit_loop(model, data, validation, *, optimizer, lr, epochs, batch_size, lr_scheduler, callbacks,
             shuffle, track_metrics) -> "History":
    """Run training epochs on ``model``; return its (accumulated) :class:`History`.

    ``data`` and ``validation`` (or ``None``) are sources from :mod:`sega_core.nn.data`: checked
    arrays in memory (copied to the device once, the fast path), an out-of-core array read a
    block at a time, or batches. A distributed model (:mod:`sega_core.distributed`) trains on
    its shard of every batch and sums the gradients over the processes before each step.
    """
    epochs = check_epochs(epochs)
    batch_size = check_batch_size(batch_size)
    backend, params = model.backend, model.params
    dist = model.distributed
    opt = _bind_optimizer(model, optimizer, lr)
    scheduler = make_scheduler(lr_scheduler) if lr_scheduler is not None else model.lr_scheduler
    n = data.n
    if data.kind != "stream" and dist is None:
        _check_last_batch(model, n, batch_size)
    # Every argument is checked: from here on the call trains (what came before may be undone).
    model._training_begun = True
    model.optimizer, model.lr_scheduler = opt, scheduler
    if scheduler is not None:
        scheduler.bind(opt)

    xp, to_device = backend.xp, backend.to_device
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
    if dist is not None and not dist.is_root:
        # Rank 0 alone reports and writes files; every process runs the rest, with the same logs.
        callbacks = [c for c in callbacks if not isinstance(c, ROOT_ONLY_CALLBACKS)]
    quiet_on_nan = any(isinstance(c, TerminateOnNaN) for c in callbacks)
    per_batch = [c for c in callbacks if _overrides(c, "on_batch_end")]
    schedule = scheduler if scheduler is not None and scheduler.per_batch else None
    steps = data.steps if data.kind == "stream" else math.ceil(n / batch_size)
    for callback in callbacks:
        callback.set_model(model)
        callback.set_params({"epochs": epochs, "steps": steps, "metrics": names})
    model.stop_training = False
    begun = []
    try:
        if dist is not None:
            _start_distributed(model, data, validation, epochs=epochs, batch_size=batch_size, shuffle=shuffle)
        else:
            model._adapt(data)
        if data.kind == "memory":
            Xd, yd = backend.as_device(data.X), to_device(data.y)
            wd = None if data.w is None else to_device(data.w.astype(model.dtype))
        total_weight = data.total_weight() if data.kind != "stream" else None
        # Dropout masks: a shard of a global batch draws the whole batch's and keeps its rows; a
        # process's own batches (a stream) draw from a generator of their own.
        shards = [] if dist is None or data.kind == "stream" else _shard_draws(model)
        for callback in callbacks:
            callback.on_train_begin()
            begun.append(callback)
        for _ in range(epochs):
            epoch = history.epochs
            for callback in callbacks:
                callback.on_epoch_begin(epoch)
            before = params.snapshot()
            model._begin_epoch(epoch)
            if shards:
                shards = _shard_draws(model)
            elif dist is not None and data.kind == "stream":
                _rank_draws(model, epoch)
            if data.kind != "memory":
                batches = data.batches(model, epoch, batch_size, shuffle, dist)
            else:
                order = to_device(np.random.default_rng([model.seed, 1, epoch]).permutation(n)) if shuffle else None
                batches = (_memory_batches if dist is None else _sharded_batches)(xp, Xd, yd, wd, order, n, batch_size, dist)
            total_loss = xp.zeros((), dtype=np.float64)
            total_metric = xp.zeros((), dtype=np.float64)
            for index, (xb, yb, wb, rows, total) in enumerate(batches):
                if schedule is not None:
                    opt.lr = max(schedule.lr_at(opt.steps), LR_FLOOR)
                if dist is None:
                    out = forward(xb, True)
                    loss, g = loss_fn(out, yb, wb)
                    backward(g)
                else:
                    out, loss = _shard_gradient(model, xb, yb, wb, rows, total, shards)
                if lam:
                    # The penalty at the weights this batch saw: the loss the step minimises.
                    loss = loss + 0.5 * lam * (weights @ weights)
                    params.add_l2_gradient(lam)
                step(param, grad)
                total_loss += loss * rows
                if track_metrics and out is not None:
                    total_metric += _batch_metric(model, out, yb, wb, unit)
                if per_batch:
                    for callback in per_batch:
                        callback.on_batch_end(index, {"size": rows, "loss": loss})
            checks = [total_loss, total_metric, params.all_finite().astype(np.float64)]
            if dist is None:
                sums = backend.to_host(xp.stack(checks))
                seen = n if n is not None else data.rows
                weight = total_weight if total_weight is not None else data.total_weight()
            else:
                sums, seen, weight = _epoch_sums(model, data, checks, total_weight, epoch)
            record = {"loss": float(sums[0]) / seen}
            if not (math.isfinite(record["loss"]) and sums[2]):
                params.restore_snapshot(before)
                model.optimizer = None  # its moments hold the non-finite values too
                if quiet_on_nan:
                    history.diverged = True
                    break
                error = TrainingDivergedError(_divergence_message(model, opt, epoch + 1, record["loss"], data.y))
                error.agreed = True  # decided on summed values: every process raises it alike
                raise error
            if track_metrics:
                record[metric] = float(sums[1]) / weight
            record["lr"] = opt.lr
            if validation is not None:
                scores = model._evaluate_data(validation)
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
    except BaseException as exc:
        if dist is not None and dist.size > 1 and not getattr(exc, "agreed", False):
            # The other processes are (or soon will be) waiting in a collective this one will
            # never join: stop them all rather than let them hang.
            dist.abort(f"process {dist.rank} of {dist.size} failed in training: {type(exc).__name__}: {exc}")
        raise
    finally:
        for callback in begun:
            callback.on_train_end()
        data.close()
        if validation is not None:
            validation.close()
    return history


def _memory_batches(xp, Xd, yd, wd, order, n, batch_size, dist):
    """One epoch's batches of device arrays held whole: slices, or gathers in ``order``."""
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        if order is None:
            yield Xd[start:stop], yd[start:stop], None if wd is None else wd[start:stop], stop - start, stop - start
        else:
            idx = order[start:stop]
            yield (xp.take(Xd, idx, axis=0), xp.take(yd, idx, axis=0), None if wd is None else xp.take(wd, idx, axis=0),
                   stop - start, stop - start)


def _sharded_batches(xp, Xd, yd, wd, order, n, batch_size, dist):
    """:func:`_memory_batches` cut to this process's contiguous shard of every global batch."""
    for start in range(0, n, batch_size):
        total = min(batch_size, n - start)
        a, b = dist.share(total)
        if a == b:
            yield None, None, None, 0, total
        elif order is None:
            lo, hi = start + a, start + b
            yield Xd[lo:hi], yd[lo:hi], None if wd is None else wd[lo:hi], b - a, total
        else:
            idx = order[start + a : start + b]
            yield (xp.take(Xd, idx, axis=0), xp.take(yd, idx, axis=0), None if wd is None else xp.take(wd, idx, axis=0),
                   b - a, total)


def _shard_gradient(model, xb, yb, wb, rows: int, total: int, shards):
    """Forward and backward on this process's shard, then the one gradient sum over the processes.

    The loss kernels return the mean over their rows, so the shard's output gradient is scaled
    by its share of the global batch: the sum over the processes is then the global batch's mean
    gradient. Returns ``(outputs or None, shard loss)``; an empty shard contributes zeros.
    """
    dist, params = model.distributed, model.params
    if rows:
        if shards:
            a, b = dist.share(total)
            for draws in shards:
                draws.rows = (total, a, b)
        out = model._forward(xb, True)
        loss, g = model._head.loss(out, yb, wb)
        if rows != total:
            g = g * (rows / total)
        model._backward(g)
    else:
        out, loss = None, 0.0
        params.grad.fill(0)
    dist.allreduce_gradient(params.grad, model.backend)
    return out, loss


def _shard_draws(model) -> list:
    """Wrap each dropout layer's generator of this epoch so it draws whole global batches
    (:class:`~sega_core.distributed.ShardedDraws`); the wrappers, whose rows each step sets."""
    from ..distributed import ShardedDraws

    wrapped = []
    for layer in model._random_layers:
        layer._rng = ShardedDraws(layer._rng)
        wrapped.append(layer._rng)
    return wrapped


def _rank_draws(model, epoch: int) -> None:
    """Give each dropout layer a generator of this process's own for ``epoch`` (its batches are its own)."""
    for layer in model._random_layers:
        seed = np.random.SeedSequence([layer._seed, epoch, model.distributed.rank]).generate_state(1)[0]
        layer._rng = model.backend.make_rng(int(seed))


def _epoch_sums(model, data, checks, total_weight, epoch: int):
    """Summed ``(loss, metric, all finite)``, samples and weight of an epoch over the processes, after
    checking that every process still holds the same parameters (and averaging BatchNormalization's
    running statistics, which each process gathers from its own shards)."""
    from ..distributed import DistributedError
    from .layers import BatchNormalization

    dist, params, backend, xp = model.distributed, model.params, model.backend, model.backend.xp
    wide = params.param.astype(np.float64)
    local = backend.to_host(xp.stack(checks + [wide.sum(), xp.abs(wide).sum()]))
    stream = data.kind == "stream"
    table = dist.allgather(list(local) + ([data.rows, data.total_weight()] if stream else []), f"the end of epoch {epoch + 1}")
    if not ((table[:, 3] == table[0, 3]).all() and (table[:, 4] == table[0, 4]).all()):
        error = DistributedError(
            f"after epoch {epoch + 1} the processes' parameters differ (checksums {', '.join(f'{v:.17g}' for v in table[:, 3])}); "
            "every process must run the same training (no process may change the weights on its own)"
        )
        error.agreed = True
        raise error
    if any(isinstance(layer, BatchNormalization) for layer in model.layers):
        dist.allreduce_(params.state, "averaging the running statistics", backend)
        params.state[...] = params.state / dist.size
    sums = table[:, :3].sum(axis=0)
    sums[2] = table[:, 2].min()
    if stream:
        return sums, table[:, 5].sum(), table[:, 6].sum()
    return sums, data.n, total_weight


def _start_distributed(model, data, validation, *, epochs, batch_size, shuffle) -> None:
    """Check that every process was given the same model, data and arguments; fit Normalization
    statistics from every process's share; give every process rank 0's parameters and statistics."""
    from ..distributed import checksum, model_signature

    dist, params, backend = model.distributed, model.params, model.backend
    facts = model_signature(model)
    facts.update({
        "the data's kind": ("memory", "blocks", "stream").index(data.kind),
        "the number of samples": -1 if data.n is None else data.n,
        "sample weights (given or not)": data.w is not None,
        "the targets and sample weights (a checksum)": 0 if data.kind == "stream" else checksum(data.y, data.w),
        "batch_size": batch_size,
        "epochs": epochs,
        "shuffle": bool(shuffle),
        "the validation data's size": -2 if validation is None else (-1 if validation.n is None else validation.n),
    })
    dist.check_same(facts, "train")
    if dist.size > 1 and batch_size < dist.size and data.kind != "stream":
        error = InputError(f"batch_size {batch_size} is smaller than the {dist.size} processes: every process needs at "
                           f"least one sample of each batch; use batch_size >= {dist.size}")
        error.agreed = True
        raise error
    model._adapt(data)
    dist.broadcast_(params.param, "the initial parameters", backend)
    if params.state_size:
        dist.broadcast_(params.state, "the initial statistics", backend)


def _divergence_message(model, opt, epoch: int, loss: float, y) -> str:
    """Why training stopped, and the likely causes in the order worth trying."""
    causes = [f"lower the learning rate (lr={opt.lr:g})"]
    if model.reg_lambda:
        causes.append(f"lower reg_lambda ({model.reg_lambda:g})")
    if model.regressor and model.target_scaler is None:
        largest = float(np.abs(y).max()) if y is not None and len(y) else 0.0
        if largest > 100:
            causes.append(f"scale the targets (the largest |y| is {largest:.3g}; standardize_target=True does it)")
    return (
        f"training diverged in epoch {epoch}: the loss is {loss:g} and the parameters are no longer all finite; "
        f"the model keeps the weights from before that epoch. Try to " + ", or ".join(causes)
    )
