"""Learning-rate schedulers, stepped once per epoch by the training loop."""

from __future__ import annotations

import math

from ..errors import InputError
from .validation import check_int, check_number


class LRScheduler:
    """Base class: ``step(epoch, metric)`` is called after each epoch and may change ``optimizer.lr``."""

    def bind(self, optimizer) -> None:
        """Attach to the optimizer whose ``lr`` this scheduler drives."""
        self.optimizer = optimizer
        self.base_lr = optimizer.lr

    def step(self, epoch: int, metric: float | None = None) -> None:
        """Update the learning rate after ``epoch`` (0-based) given the monitored ``metric``."""
        raise NotImplementedError


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs."""

    def __init__(self, step_size: int = 10, gamma: float = 0.1) -> None:
        self.step_size = check_int("step_size", step_size, 1, owner="StepLR")
        self.gamma = check_number("gamma", gamma, 0, low_open=True, owner="StepLR")

    def step(self, epoch, metric=None):
        """``lr = base_lr * gamma ** ((epoch + 1) // step_size)``."""
        self.optimizer.lr = self.base_lr * self.gamma ** ((epoch + 1) // self.step_size)


class ExponentialLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` after every epoch."""

    def __init__(self, gamma: float = 0.95) -> None:
        self.gamma = check_number("gamma", gamma, 0, low_open=True, owner="ExponentialLR")

    def step(self, epoch, metric=None):
        """``lr = base_lr * gamma ** (epoch + 1)``."""
        self.optimizer.lr = self.base_lr * self.gamma ** (epoch + 1)


class ReduceLROnPlateau(LRScheduler):
    """Multiply the learning rate by ``factor`` when the monitored loss stops improving.

    The monitored value is the validation loss when there is validation data, else the
    training loss. ``patience`` epochs without a relative improvement of ``threshold`` trigger
    a reduction, floored at ``min_lr``.
    """

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


SCHEDULERS = {"step": StepLR, "exponential": ExponentialLR, "plateau": ReduceLROnPlateau}


def make_scheduler(spec) -> LRScheduler | None:
    """A scheduler from a name (``"step"``, ``"exponential"``, ``"plateau"``) or an instance."""
    if spec is None or isinstance(spec, LRScheduler):
        return spec
    cls = SCHEDULERS.get(str(spec).strip().lower())
    if cls is None:
        raise InputError(f"unknown lr_scheduler {spec!r}; valid names: {', '.join(SCHEDULERS)}")
    return cls()
