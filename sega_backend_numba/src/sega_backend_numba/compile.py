"""Compile numba kernels now instead of at first use.

Kernels compile lazily, on their first call, and are then cached on disk (see
:mod:`sega_backend_numba._cachedir`), so this is only needed to move the one-off compile time out
of the first training epoch (``NumbaBackendNeuralNetwork(compile_numba=True)`` compiles the groups
its layers need, :func:`groups_for`) or to fill the cache ahead of time, e.g. when building a
container image::

    python -c "from sega_backend_numba.compile import compile_all; compile_all(('float32', 'float64'))"
"""

from __future__ import annotations

import time
from typing import Callable, Iterable

import numpy as np


def _conv(dtype):
    from . import _conv

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 5, 5)).astype(dtype)
    w = rng.standard_normal((3, 2, 3, 3)).astype(dtype)
    b = np.zeros(3, dtype)
    # Stride 1 and any other stride have kernels of their own.
    for stride in (1, 2):
        y, ctx = _conv.conv2d_forward(x, w, b, stride, 1)
        _conv.conv2d_backward(y, x, w, stride, 1, ctx, np.empty_like(w), np.empty_like(b), True)


def _rnn(dtype):
    from . import _rnn

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4)).astype(dtype)
    wx = rng.standard_normal((4, 5)).astype(dtype)
    wh = rng.standard_normal((5, 5)).astype(dtype)
    b = np.zeros(5, dtype)
    # Each activation has kernels of its own (see _recurrence): the two common ones are compiled
    # here, sigmoid and linear on first use.
    for activation in ("tanh", "relu"):
        hs, ctx = _rnn.rnn_forward(x, wx, wh, b, activation)
        _rnn.rnn_backward(hs, x, wx, wh, hs, activation, ctx, np.empty_like(wx), np.empty_like(wh),
                          np.empty_like(b), True)


def _pooling(dtype):
    """Max and average pooling, forward and backward, with padding and overlapping windows."""
    from . import _pooling

    x = np.random.default_rng(0).standard_normal((2, 2, 5, 5)).astype(dtype)
    for op in ("maxpool2d", "avgpool2d"):
        y, ctx = getattr(_pooling, f"{op}_forward")(x, (3, 3), (2, 2), ((1, 1), (1, 1)))
        getattr(_pooling, f"{op}_backward")(y, x, (3, 3), (2, 2), ((1, 1), (1, 1)), ctx)


def _gated(dtype):
    """The LSTM, and the GRU with the reset gate after the recurrent product (PyTorch's and
    Keras's default; the other placement has kernels of its own, compiled on first use)."""
    from . import _gates

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4)).astype(dtype)
    for gates, biases in ((4, 1), (3, 2)):
        wx = rng.standard_normal((4, gates * 5)).astype(dtype)
        wh = rng.standard_normal((5, gates * 5)).astype(dtype)
        bs = [np.zeros(gates * 5, dtype) for _ in range(biases)]
        grads = [np.empty_like(a) for a in (wx, wh, *bs)]
        if gates == 4:
            hs, ctx = _gates.lstm_forward(x, wx, wh, *bs)
            _gates.lstm_backward(hs, x, wx, wh, hs, ctx, *grads, True)
        else:
            hs, ctx = _gates.gru_forward(x, wx, wh, *bs, True)
            _gates.gru_backward(hs, x, wx, wh, *bs, True, hs, ctx, *grads, True)


def _activation(name, *extra):
    def run(dtype):
        """Forward and backward of one activation on a small matrix."""
        from . import _activations

        z = np.linspace(-2, 2, 12, dtype=dtype).reshape(3, 4)
        y = getattr(_activations, f"{name}_forward")(z, *extra)
        getattr(_activations, f"{name}_backward")(z, z, y, *extra)

    return run


def _dropout(dtype):
    from . import _dropout

    x = np.ones((3, 4), dtype)
    y, mask = _dropout.dropout_forward(x, 0.5, np.random.default_rng(0))
    _dropout.dropout_backward(y, mask)


def _loss(dtype):
    """Softmax cross-entropy against labels and against target rows."""
    from . import _losses

    logits = np.linspace(-1, 1, 6, dtype=dtype).reshape(2, 3)
    _losses.softmax_cross_entropy(logits, np.array([0, 2]))
    _losses.softmax_cross_entropy(logits, np.eye(3, dtype=dtype)[[0, 2]])


def _optimizer(name):
    def run(dtype):
        """One update of a small flat parameter array."""
        from . import _optimizers

        p, g, s1, s2 = (np.full(8, 0.5, dtype) for _ in range(4))
        if name == "sgd":
            _optimizers.sgd_update(p, g, s1, 0.1, 0.9, False)
        elif name == "adam":
            _optimizers.adam_update(p, g, s1, s2, 1, 0.001, 0.9, 0.999, 1e-8)
        else:
            _optimizers.adadelta_update(p, g, s1, s2, 1.0, 0.9, 1e-6)

    return run


#: (name, compile function) for every group of kernels, in the order they are compiled.
TASKS: tuple[tuple[str, Callable], ...] = (
    ("conv2d", _conv),
    ("rnn", _rnn),
    ("pooling", _pooling),
    ("lstm_gru", _gated),
    ("relu", _activation("relu")),
    ("leaky_relu", _activation("leaky_relu", 0.01)),
    ("sigmoid", _activation("sigmoid")),
    ("tanh", _activation("tanh")),
    ("softmax", _activation("softmax")),
    ("dropout", _dropout),
    ("softmax_cross_entropy", _loss),
    ("sgd", _optimizer("sgd")),
    ("adam", _optimizer("adam")),
    ("adadelta", _optimizer("adadelta")),
)


#: Layer kinds whose kernels are a group of their own (others run on shared kernels or NumPy).
_LAYER_GROUPS = {
    "conv2d": "conv2d",
    "rnn": "rnn",
    "lstm": "lstm_gru",
    "gru": "lstm_gru",
    "maxpool2d": "pooling",
    "avgpool2d": "pooling",
    "globalavgpool2d": "pooling",
    "dropout": "dropout",
}
#: Groups every trained model may call: the loss, and the optimizers (chosen only at ``train``).
_ALWAYS = ("softmax_cross_entropy", "sgd", "adam", "adadelta")


def groups_for(layer_kinds: Iterable[str], activations: Iterable[str] = ()) -> list[str]:
    """The kernel groups (names of :data:`TASKS`) a model with these layer kinds and activation
    names calls, in compile order. The layer groups are most of the compile time (a convolution's
    kernels take over ten seconds cold), so a model compiles only its own."""
    wanted = {_LAYER_GROUPS[k] for k in layer_kinds if k in _LAYER_GROUPS}
    wanted.update(a for a in activations if a in dict(TASKS))
    wanted.update(_ALWAYS)
    return [name for name, _ in TASKS if name in wanted]


def compile_all(
    dtypes: Iterable[str] = ("float32",),
    progress: Callable[[int, int, str], None] | None = None,
    groups: Iterable[str] | None = None,
) -> dict[str, float]:
    """Compile (or load from the disk cache) the backend's kernels for ``dtypes``: every group of
    :data:`TASKS`, or only those named in ``groups`` (see :func:`groups_for`).

    Each kernel group is run once on tiny inputs of each dtype (``"float32"``, ``"float64"``).
    After each group, ``progress(done, total, name)`` is called if given, ``name`` being like
    ``"conv2d float32"``. Returns the seconds each group took, by that same name: close to zero
    for a group whose machine code was already in the cache.
    """
    kinds = []
    for dtype in dtypes:
        kind = np.dtype(dtype)
        if kind not in (np.float32, np.float64):
            raise ValueError(f"numba kernels are compiled for float32 and float64, not {kind.name!r}")
        kinds.append(kind)
    tasks = TASKS
    if groups is not None:
        chosen = set(groups)
        unknown = chosen - {name for name, _ in TASKS}
        if unknown:
            raise ValueError(f"unknown kernel groups {sorted(unknown)}; known: {', '.join(n for n, _ in TASKS)}")
        tasks = tuple((name, task) for name, task in TASKS if name in chosen)
    total = len(kinds) * len(tasks)
    timings: dict[str, float] = {}
    done = 0
    for kind in kinds:
        for name, task in tasks:
            start = time.perf_counter()
            task(kind)
            label = f"{name} {kind.name}"
            timings[label] = time.perf_counter() - start
            done += 1
            if progress is not None:
                progress(done, total, label)
    return timings
