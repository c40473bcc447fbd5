"""CUDA snippets shared by the kernels that apply an activation inside a larger fused kernel.

``ACTIVATE[name]`` turns the pre-activation ``a`` into the output ``h`` (both of the kernel's
type ``T``); ``DERIVATIVE[name]`` is d activation / d a written with the output ``h`` (exact
for these four functions, so a backward pass needs only the saved outputs). The formulas are
those of the NumPy reference: the sigmoid only ever exponentiates a non-positive number.
"""

from __future__ import annotations

ACTIVATE = {
    "tanh": "h = tanh(a);",
    "relu": "h = a < (T)0 ? (T)0 : a;",
    "sigmoid": "const T e_ = exp(-fabs(a)); h = a >= (T)0 ? (T)1 / ((T)1 + e_) : e_ / ((T)1 + e_);",
    "linear": "h = a;",
}

DERIVATIVE = {
    "tanh": "((T)1 - h * h)",
    "relu": "(h > (T)0 ? (T)1 : (T)0)",
    "sigmoid": "(h * ((T)1 - h))",
    "linear": "((T)1)",
}


def check_activation(activation: str) -> None:
    """Raise the reference's ``ValueError`` for an activation the recurrent kernels lack."""
    if activation not in ACTIVATE:
        raise ValueError(f"unknown recurrent activation {activation!r}")
