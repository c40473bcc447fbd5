"""Optimizers: hyper-parameters and state; the update rule itself is a backend kernel.

The model keeps all parameters in one flat buffer, so a step is one kernel call for the whole
model, whatever its number of layers.
"""

from __future__ import annotations

import inspect

import numpy as np

from ..errors import InputError
from .validation import check_learning_rate, check_number


class Optimizer:
    """Base class: ``lr`` is public and schedulers change it between epochs."""

    name = "optimizer"

    def __init__(self, lr: float) -> None:
        self.lr = check_learning_rate(lr)
        self._state = None

    def bind(self, backend, size: int, dtype) -> None:
        """Allocate the optimizer state for ``size`` parameters on ``backend``."""
        self._kernels = backend.kernels
        self._state = [backend.xp.zeros(size, dtype=dtype) for _ in range(self._n_state)]
        self.steps = 0

    def step(self, param, grad) -> None:
        """Apply one update to the flat parameter buffer, in place."""
        raise NotImplementedError

    def get_config(self) -> dict:
        """A JSON-able description (name and hyper-parameters)."""
        return {"name": self.name, "lr": self.lr}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum."""

    name = "sgd"
    _n_state = 1

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False) -> None:
        super().__init__(lr)
        self.momentum = _fraction("momentum", momentum)
        if not isinstance(nesterov, (bool, np.bool_)):
            raise InputError(f"nesterov must be True or False, got {nesterov!r}")
        if nesterov and self.momentum == 0:
            raise InputError("Nesterov momentum needs momentum > 0")
        self.nesterov = bool(nesterov)

    def step(self, param, grad) -> None:
        """One SGD step."""
        self.steps += 1
        self._kernels.sgd_update(param, grad, self._state[0], self.lr, self.momentum, self.nesterov)

    def get_config(self) -> dict:
        """Name and hyper-parameters."""
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam with bias correction."""

    name = "adam"
    _n_state = 2

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
        super().__init__(lr)
        self.beta1, self.beta2 = _fraction("beta1", beta1), _fraction("beta2", beta2)
        self.eps = _epsilon(eps)

    def step(self, param, grad) -> None:
        """One Adam step."""
        self.steps += 1
        m, v = self._state
        self._kernels.adam_update(param, grad, m, v, self.steps, self.lr, self.beta1, self.beta2, self.eps)

    def get_config(self) -> dict:
        """Name and hyper-parameters."""
        return {**super().get_config(), "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}


class Adadelta(Optimizer):
    """Adadelta; ``lr`` scales the step (1.0 is Zeiler's original rule)."""

    name = "adadelta"
    _n_state = 2

    def __init__(self, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6) -> None:
        super().__init__(lr)
        self.rho, self.eps = _fraction("rho", rho), _epsilon(eps)

    def step(self, param, grad) -> None:
        """One Adadelta step."""
        self.steps += 1
        sq, acc = self._state
        self._kernels.adadelta_update(param, grad, sq, acc, self.lr, self.rho, self.eps)

    def get_config(self) -> dict:
        """Name and hyper-parameters."""
        return {**super().get_config(), "rho": self.rho, "eps": self.eps}


def _fraction(name: str, value) -> float:
    """A decay rate or momentum: in [0, 1)."""
    return check_number(name, value, 0, 1, high_open=True)


def _epsilon(value) -> float:
    """The term that keeps a division finite: a positive finite number."""
    return check_number("eps", value, 0, low_open=True)


OPTIMIZERS = {cls.name: cls for cls in (SGD, Adam, Adadelta)}


def make_optimizer(spec, lr: float | None = None) -> Optimizer:
    """An optimizer from a name (``"adam"``), a config dict (``{"name": "sgd", "momentum": 0.9}``),
    or an instance (returned as is, with ``lr``, when given, replacing its learning rate)."""
    if spec is None:
        spec = "adam"
    if lr is not None:
        lr = check_learning_rate(lr)
    if isinstance(spec, Optimizer):
        if lr is not None:
            spec.lr = lr
        return spec
    if isinstance(spec, dict):
        options = dict(spec)
        if "name" not in options:
            raise InputError(
                f'an optimizer dict needs "name" (one of {", ".join(OPTIMIZERS)}), e.g. {{"name": "adam", "lr": 0.001}}; '
                f"got {spec!r}"
            )
        cls = _lookup(options.pop("name"))
        valid = [p for p in inspect.signature(cls).parameters]
        unknown = sorted(str(k) for k in options if k not in valid)
        if unknown:
            raise InputError(f"optimizer {cls.name!r} has no option(s) {', '.join(unknown)}; its options: name, {', '.join(valid)}")
        if lr is not None:
            options["lr"] = lr
        return cls(**options)
    if isinstance(spec, str):
        return _lookup(spec)(**({} if lr is None else {"lr": lr}))
    raise InputError(f"optimizer must be a name or an Optimizer, got {type(spec).__name__}")


def _lookup(name: str):
    cls = OPTIMIZERS.get(str(name).strip().lower())
    if cls is None:
        raise InputError(f"unknown optimizer {name!r}; valid names: {', '.join(OPTIMIZERS)}")
    return cls
