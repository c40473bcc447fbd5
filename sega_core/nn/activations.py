"""Activation names, their aliases, and the kernels that implement them."""

from __future__ import annotations

from typing import Callable

from ..errors import InputError

#: The activations every backend implements, by canonical name.
ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "softmax", "linear")

_ALIASES = {
    "none": "linear",
    "identity": "linear",
    "leakyrelu": "leaky_relu",
    "leaky-relu": "leaky_relu",
    "logistic": "sigmoid",
}

DEFAULT_LEAKY_ALPHA = 0.01


def canonical_activation(name: str | None) -> str:
    """Return the canonical activation name for ``name`` (``None`` means linear)."""
    if name is None:
        return "linear"
    if not isinstance(name, str):
        raise InputError(f"activation must be a name, got {type(name).__name__}; valid names: {', '.join(ACTIVATIONS)}")
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in ACTIVATIONS:
        raise InputError(f"unknown activation {name!r}; valid names: {', '.join(ACTIVATIONS)}")
    return key


def activation_kernels(kernels, name: str, alpha: float = DEFAULT_LEAKY_ALPHA) -> tuple[Callable, Callable] | None:
    """The (forward(z), backward(dy, z, y)) pair for ``name`` from a kernel table.

    Returns ``None`` for the linear activation, which layers skip entirely.
    """
    if name == "linear":
        return None
    forward = getattr(kernels, f"{name}_forward")
    backward = getattr(kernels, f"{name}_backward")
    if name == "leaky_relu":
        a = float(alpha)
        return (lambda z: forward(z, a)), (lambda dy, z, y: backward(dy, z, y, a))
    return forward, backward
