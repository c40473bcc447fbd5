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
    """Base class: ``lr`` is public and schedulers change it between epochs (or batches).

    Every optimizer takes Keras's gradient clipping, applied on the device to the whole
    gradient before the update, in one step call (nothing waits for the host):
    ``clipnorm`` rescales each parameter array's gradient to at most that L2 norm,
    ``global_clipnorm`` the whole gradient (one norm over every array; not together with
    ``clipnorm``), and ``clipvalue`` clips each element to ``[-clipvalue, clipvalue]``.
    """

    name = "optimizer"
    _n_state = 0

    def __init__(self, lr: float, clipnorm=None, global_clipnorm=None, clipvalue=None) -> None:
        self.lr = check_learning_rate(lr)
        self.clipnorm = _clip("clipnorm", clipnorm)
        self.global_clipnorm = _clip("global_clipnorm", global_clipnorm)
        self.clipvalue = _clip("clipvalue", clipvalue)
        if self.clipnorm is not None and self.global_clipnorm is not None:
            raise InputError("give clipnorm (per parameter array) or global_clipnorm (all of them), not both")
        self._state = None
        self.steps = 0

    def bind(self, backend, size: int, dtype, segments=()) -> None:
        """Allocate the optimizer state for ``size`` parameters on ``backend``.

        ``segments`` are the ``(offset, size)`` of each parameter array in the flat buffer
        (``clipnorm`` clips each one's gradient on its own).
        """
        self._kernels, self._xp = backend.kernels, backend.xp
        self._state = [backend.xp.zeros(size, dtype=dtype) for _ in range(self._n_state)]
        self._segments = list(segments) or [(0, size)]
        self._clips = self.clipnorm is not None or self.global_clipnorm is not None or self.clipvalue is not None
        self.steps = 0

    def step(self, param, grad) -> None:
        """Apply one update to the flat parameter buffer, in place (``grad`` may be clipped in place)."""
        self.steps += 1
        if self._clips:
            self._clip_gradient(grad)
        self._update(param, grad)

    def _update(self, param, grad) -> None:
        raise NotImplementedError

    def _clip_gradient(self, grad) -> None:
        xp = self._xp
        tiny = np.finfo(grad.dtype).tiny
        if self.global_clipnorm is not None:
            grad *= xp.minimum(1, self.global_clipnorm / xp.maximum(xp.sqrt(grad @ grad), tiny))
        if self.clipnorm is not None:
            for offset, size in self._segments:
                part = grad[offset : offset + size]
                part *= xp.minimum(1, self.clipnorm / xp.maximum(xp.sqrt(part @ part), tiny))
        if self.clipvalue is not None:
            xp.clip(grad, -self.clipvalue, self.clipvalue, out=grad)

    def get_config(self) -> dict:
        """A JSON-able description (name and hyper-parameters)."""
        config = {"name": self.name, "lr": self.lr}
        for key in ("clipnorm", "global_clipnorm", "clipvalue"):
            if getattr(self, key) is not None:
                config[key] = getattr(self, key)
        return config

    def state_arrays(self) -> list:
        """The state arrays (device), in a fixed order: momentum, moments..."""
        return list(self._state or [])

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


def _clip(name: str, value):
    return None if value is None else check_number(name, value, 0, low_open=True)


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum."""

    name = "sgd"
    _n_state = 1

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False, *, clipnorm=None,
                 global_clipnorm=None, clipvalue=None) -> None:
        super().__init__(lr, clipnorm, global_clipnorm, clipvalue)
        self.momentum = _fraction("momentum", momentum)
        if not isinstance(nesterov, (bool, np.bool_)):
            raise InputError(f"nesterov must be True or False, got {nesterov!r}")
        if nesterov and self.momentum == 0:
            raise InputError("Nesterov momentum needs momentum > 0")
        self.nesterov = bool(nesterov)

    def _update(self, param, grad) -> None:
        self._kernels.sgd_update(param, grad, self._state[0], self.lr, self.momentum, self.nesterov)

    def get_config(self) -> dict:
        """Name and hyper-parameters."""
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam with bias correction."""

    name = "adam"
    _n_state = 2

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8, *, clipnorm=None,
                 global_clipnorm=None, clipvalue=None) -> None:
        super().__init__(lr, clipnorm, global_clipnorm, clipvalue)
        self.beta1, self.beta2 = _fraction("beta1", beta1), _fraction("beta2", beta2)
        self.eps = _epsilon(eps)

    def _update(self, param, grad) -> None:
        m, v = self._state
        self._kernels.adam_update(param, grad, m, v, self.steps, self.lr, self.beta1, self.beta2, self.eps)

    def get_config(self) -> dict:
        """Name and hyper-parameters."""
        return {**super().get_config(), "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}


class Adadelta(Optimizer):
    """Adadelta; ``lr`` scales the step (1.0 is Zeiler's original rule)."""

    name = "adadelta"
    _n_state = 2

    def __init__(self, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6, *, clipnorm=None, global_clipnorm=None,
                 clipvalue=None) -> None:
        super().__init__(lr, clipnorm, global_clipnorm, clipvalue)
        self.rho, self.eps = _fraction("rho", rho), _epsilon(eps)

    def _update(self, param, grad) -> None:
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
