"""Learning-rate schedulers: per epoch (step, exponential, plateau) or per batch (cosine decay).

A scheduler belongs to the model it trains (like its optimizer) and is saved with it: its
configuration and state, so training resumed from a model file follows the same schedule.
"""

from __future__ import annotations

import math

from ..errors import InputError
from .validation import check_int, check_number


class LRScheduler:
    """Base class: ``step(epoch, metric)`` is called after each epoch and may change ``optimizer.lr``.

    ``base_lr`` is the optimizer's rate when the scheduler was first bound to it; binding it to
    the same optimizer again (a later ``train`` call) keeps it.
    """

    #: Called before every batch (:meth:`lr_at`) instead of after every epoch.
    per_batch = False
    name = "scheduler"
    optimizer = None
    base_lr: float | None = None

    def bind(self, optimizer) -> None:
        """Attach to the optimizer whose ``lr`` this scheduler drives."""
        if optimizer is not self.optimizer:
            self.optimizer, self.base_lr = optimizer, optimizer.lr

    def step(self, epoch: int, metric: float | None = None) -> None:
        """Update the learning rate after ``epoch`` (0-based) given the monitored ``metric``."""
        raise NotImplementedError

    def get_config(self) -> dict:
        """Name and constructor arguments (JSON-able)."""
        return {"name": self.name}

    def get_state(self) -> dict:
        """What the scheduler learnt while training (JSON-able)."""
        return {"base_lr": self.base_lr}

    def set_state(self, state: dict) -> None:
        """Restore :meth:`get_state`'s output (after :meth:`bind`)."""
        self.base_lr = check_number("base_lr", state["base_lr"], 0, low_open=True)


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs."""

    name = "step"

    def __init__(self, step_size: int = 10, gamma: float = 0.1) -> None:
        self.step_size = check_int("step_size", step_size, 1, owner="StepLR")
        self.gamma = check_number("gamma", gamma, 0, low_open=True, owner="StepLR")

    def step(self, epoch, metric=None):
        """``lr = base_lr * gamma ** ((epoch + 1) // step_size)``."""
        self.optimizer.lr = self.base_lr * self.gamma ** ((epoch + 1) // self.step_size)

    def get_config(self):
        """Name, step size and factor."""
        return {"name": self.name, "step_size": self.step_size, "gamma": self.gamma}


class ExponentialLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` after every epoch."""

    name = "exponential"

    def __init__(self, gamma: float = 0.95) -> None:
        self.gamma = check_number("gamma", gamma, 0, low_open=True, owner="ExponentialLR")

    def step(self, epoch, metric=None):
        """``lr = base_lr * gamma ** (epoch + 1)``."""
        self.optimizer.lr = self.base_lr * self.gamma ** (epoch + 1)

    def get_config(self):
        """Name and factor."""
        return {"name": self.name, "gamma": self.gamma}


class ReduceLROnPlateau(LRScheduler):
    """Multiply the learning rate by ``factor`` when the monitored loss stops improving.

    The monitored value is the validation loss when there is validation data, else the
    training loss. ``patience`` epochs without a relative improvement of ``threshold`` trigger
    a reduction, floored at ``min_lr``.
    """

    name = "plateau"

    def __init__(self, factor: float = 0.1, patience: int = 10, threshold: float = 1e-4, min_lr: float = 0.0) -> None:
        owner = "ReduceLROnPlateau"
        self.factor = check_number("factor", factor, 0, 1, low_open=True, high_open=True, owner=owner)
        self.patience = check_int("patience", patience, 0, owner=owner)
        self.threshold = check_number("threshold", threshold, 0, 1, high_open=True, owner=owner)
        self.min_lr = check_number("min_lr", min_lr, 0, owner=owner)
        self.best, self.bad_epochs = math.inf, 0

    def step(self, epoch, metric=None):
        """Count epochs without improvement of ``metric``; reduce after ``patience`` of them."""
        if metric is None:
            return
        if metric < self.best * (1 - self.threshold):
            self.best, self.bad_epochs = metric, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs > self.patience:
            self.optimizer.lr = max(self.optimizer.lr * self.factor, self.min_lr)
            self.bad_epochs = 0

    def get_config(self):
        """Name and settings."""
        return {"name": self.name, "factor": self.factor, "patience": self.patience, "threshold": self.threshold,
                "min_lr": self.min_lr}

    def get_state(self):
        """The best value seen and the epochs since."""
        return {**super().get_state(), "best": None if math.isinf(self.best) else self.best, "bad_epochs": self.bad_epochs}

    def set_state(self, state):
        """Restore the best value and the count."""
        super().set_state(state)
        self.best = math.inf if state["best"] is None else check_number("best", state["best"])
        self.bad_epochs = check_int("bad_epochs", state["bad_epochs"], 0)


class CosineDecay(LRScheduler):
    """Warm-up then cosine decay, set before every batch (Keras's ``CosineDecay``).

    Without ``warmup_target`` the rate decays from ``initial_lr``. With it, the rate rises
    linearly from ``initial_lr`` to ``warmup_target`` over ``warmup_steps`` batches, then decays
    from ``warmup_target``. The decay follows half a cosine over ``decay_steps`` batches down to
    ``alpha`` times its start, and stays there. Its position is the optimizer's step count, so
    it is saved with the optimizer and resumes where it stopped.
    """

    per_batch = True
    name = "cosine"

    def __init__(self, initial_lr: float, decay_steps: int, warmup_steps: int = 0, warmup_target=None,
                 alpha: float = 0.0) -> None:
        owner = "CosineDecay"
        self.initial_lr = check_number("initial_lr", initial_lr, 0, owner=owner)
        self.decay_steps = check_int("decay_steps", decay_steps, 1, owner=owner)
        self.warmup_steps = check_int("warmup_steps", warmup_steps, 0, owner=owner)
        self.warmup_target = None if warmup_target is None else check_number(
            "warmup_target", warmup_target, 0, low_open=True, owner=owner)
        self.alpha = check_number("alpha", alpha, 0, 1, owner=owner)
        if self.warmup_target is None and self.initial_lr == 0:
            raise InputError("CosineDecay needs initial_lr > 0 (or a warmup_target to rise to)")
        if self.warmup_steps and self.warmup_target is None:
            raise InputError("CosineDecay warmup_steps needs a warmup_target to warm up to")

    def lr_at(self, step: int) -> float:
        """The rate for the batch after ``step`` optimizer steps."""
        start = self.initial_lr
        if self.warmup_target is not None:
            if step < self.warmup_steps:
                return start + (self.warmup_target - start) * step / self.warmup_steps
            start, step = self.warmup_target, step - self.warmup_steps
        fraction = min(step, self.decay_steps) / self.decay_steps
        return start * ((1 - self.alpha) * 0.5 * (1 + math.cos(math.pi * fraction)) + self.alpha)

    def bind(self, optimizer):
        """Attach, and set the rate of the next batch."""
        super().bind(optimizer)
        optimizer.lr = max(self.lr_at(optimizer.steps), LR_FLOOR)

    def step(self, epoch, metric=None):
        """Nothing per epoch: the rate changes per batch."""

    def get_config(self):
        """Name and settings."""
        return {"name": self.name, "initial_lr": self.initial_lr, "decay_steps": self.decay_steps,
                "warmup_steps": self.warmup_steps, "warmup_target": self.warmup_target, "alpha": self.alpha}


#: The smallest rate handed to an optimizer: a schedule may reach 0, which the kernels take
#: but the optimizer's own check (a rate > 0) would refuse.
LR_FLOOR = 1e-30


SCHEDULERS = {cls.name: cls for cls in (StepLR, ExponentialLR, ReduceLROnPlateau, CosineDecay)}


def make_scheduler(spec) -> LRScheduler | None:
    """A scheduler from a name (``"step"``, ``"exponential"``, ``"plateau"``), a config dict
    (``{"name": "step", "step_size": 5}``) or an instance."""
    if spec is None or isinstance(spec, LRScheduler):
        return spec
    if isinstance(spec, dict):
        options = dict(spec)
        cls = _lookup(options.pop("name", None))
        try:
            return cls(**options)
        except TypeError as exc:
            raise InputError(f"lr_scheduler {cls.name!r}: {exc}") from None
    if not isinstance(spec, str):
        raise InputError(f"lr_scheduler must be a name, a dict or a scheduler object, got {type(spec).__name__}")
    cls = _lookup(spec)
    if cls is CosineDecay:
        raise InputError("the cosine schedule needs its settings: lr_scheduler=CosineDecay(initial_lr, decay_steps, ...)")
    return cls()


def _lookup(name):
    cls = SCHEDULERS.get(str(name).strip().lower()) if name is not None else None
    if cls is None:
        raise InputError(f"unknown lr_scheduler {name!r}; valid names: {', '.join(SCHEDULERS)}")
    return cls
