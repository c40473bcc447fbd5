"""Loss functions: names, options, and which output activation each pairs with.

A loss is applied by a backend kernel that returns the *mean* loss and its gradient. The two
classification losses work on logits: when the model's output activation is the matching one
(softmax for cross-entropy, sigmoid for binary cross-entropy) the model skips that activation in
training, so it is applied exactly once, inside the fused, numerically stable kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError

LOSSES = ("cross_entropy", "bce_with_logits", "mse", "mae", "huber")

_ALIASES = {
    "crossentropy": "cross_entropy",
    "categorical_crossentropy": "cross_entropy",
    "categorical_cross_entropy": "cross_entropy",
    "sparse_categorical_crossentropy": "cross_entropy",
    "ce": "cross_entropy",
    "log_loss": "cross_entropy",
    "bce": "bce_with_logits",
    "binary_crossentropy": "bce_with_logits",
    "binary_cross_entropy": "bce_with_logits",
    "mean_squared_error": "mse",
    "squared_error": "mse",
    "mean_absolute_error": "mae",
    "absolute_error": "mae",
    "huber_loss": "huber",
}

#: The output activation each loss is fused with (applied inside the loss kernel).
FUSED_ACTIVATION = {"cross_entropy": "softmax", "bce_with_logits": "sigmoid"}


@dataclass(frozen=True)
class Loss:
    """A loss by name, with its option (``delta`` for Huber)."""

    name: str
    delta: float = 1.0

    @property
    def is_classification(self) -> bool:
        """Whether the loss expects class labels."""
        return self.name in FUSED_ACTIVATION

    def kernel(self, kernels):
        """The backend function ``f(pred, target, weight) -> (mean loss, grad)``; ``weight`` is
        ``None`` or one weight per sample."""
        if self.name == "cross_entropy":
            return kernels.softmax_cross_entropy
        if self.name == "bce_with_logits":
            return kernels.bce_with_logits
        if self.name == "huber":
            fn, delta = kernels.huber, float(self.delta)
            return lambda pred, target, weight=None: fn(pred, target, delta, weight)
        return getattr(kernels, self.name)

    def to_config(self) -> dict:
        """A JSON-able description."""
        return {"name": self.name, "delta": self.delta}


def Huber(delta: float = 1.0) -> Loss:  # noqa: N802 (reads like a class at call sites)
    """The Huber loss with threshold ``delta``."""
    if not delta > 0:
        raise InputError(f"Huber delta must be > 0, got {delta!r}")
    return Loss("huber", float(delta))


def make_loss(spec) -> Loss:
    """A :class:`Loss` from a name, a config dict or a Loss."""
    if isinstance(spec, Loss):
        return spec
    if isinstance(spec, dict):
        return make_loss(spec["name"]) if spec["name"] != "huber" else Huber(spec.get("delta", 1.0))
    if not isinstance(spec, str):
        raise InputError(f"loss_function must be a name, got {type(spec).__name__}; valid names: {', '.join(LOSSES)}")
    key = spec.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in LOSSES:
        raise InputError(f"unknown loss function {spec!r}; valid names: {', '.join(LOSSES)}")
    return Loss(key)
