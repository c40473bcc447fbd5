"""The conformance checks: plain functions that take a backend and raise ``AssertionError``.

Each check is a :class:`BackendCheck` with an id (``"dense_backward-float32"``), the hooks it
exercises, and a function. Kernel checks run the backend's kernel and the NumPy reference on the
same random inputs of awkward shapes (batch 1, odd sizes, stride 2, padding 0 and 2, non-square
images, sequences of length 1) in float32 and float64, and also check the parts of the contract
a comparison of values would miss: the result's array type, shape and dtype, that inputs are not
modified, that ``dw``/``db`` are overwritten through the views they are (and nothing around them
is touched), and that optimizers update in place. Gradient checks compare every backward kernel
with finite differences of the backend's own forward kernel in float64. Model checks train small
networks that must learn, compare a float64 training run with the NumPy reference's, and round
trip saved models between the backend and NumPy.

This module needs no pytest; :mod:`sega_core.testing` wraps it for pytest.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import tempfile
import zlib
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from .. import hookspecs
from ..backends import Backend, get_backend, list_backends

#: Both dtypes every kernel must support.
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

#: ``(rtol, atol)`` for comparisons with the reference. ``atol`` is relative to the largest
#: magnitude of the expected array (at least 1), so sums of many terms whose result cancels to
#: near zero do not fail on rounding; float32 allows for a different summation order.
TOLERANCES = {
    np.dtype(np.float32): (2e-4, 2e-5),
    np.dtype(np.float64): (1e-7, 1e-10),
}

#: Finite-difference step and agreement asked of float64 gradient checks.
FD_STEP = 1e-6
FD_TOLERANCE = (1e-5, 1e-7)
#: At most this many coordinates of each array are perturbed in a gradient check.
FD_SAMPLES = 24

#: The hook names of the contract (every ``sega_*`` specification in :mod:`sega_core.hookspecs`).
HOOK_NAMES: tuple[str, ...] = tuple(
    name
    for name, obj in vars(hookspecs).items()
    if name.startswith("sega_") and callable(obj) and hasattr(obj, hookspecs.PROJECT_NAME + "_spec")
)

REFERENCE = "numpy"


@dataclasses.dataclass(frozen=True)
class BackendCheck:
    """One conformance check.

    ``id`` is unique (``name`` plus the dtype for per-dtype checks); ``hooks`` are the hook
    specifications it exercises; ``function(backend)`` raises ``AssertionError`` on failure.
    """

    id: str
    name: str
    hooks: tuple[str, ...]
    function: Callable[[Backend], None]
    description: str = ""

    def __call__(self, backend: Backend | str) -> None:
        """Run the check on ``backend`` (a :class:`~sega_core.Backend` or a backend name)."""
        self.function(get_backend(backend) if isinstance(backend, str) else backend)

    def bind(self, backend_name: str) -> "BoundCheck":
        """This check with its backend fixed; the backend is resolved only when it runs."""
        return BoundCheck(self, backend_name)


@dataclasses.dataclass(frozen=True)
class BoundCheck:
    """A check and the name of the backend it will run on: call it with no arguments."""

    check: BackendCheck
    backend_name: str

    def __call__(self) -> None:
        """Resolve the backend (so an unusable one fails this check, not collection) and run."""
        self.check(get_backend(self.backend_name))

    def __repr__(self) -> str:
        return f"<check {self.check.id} on {self.backend_name!r}>"


_CHECKS: list[BackendCheck] = []


def backend_checks() -> list[BackendCheck]:
    """Every conformance check, in a stable order."""
    return list(_CHECKS)


def _register(name: str, hooks: Iterable[str], per_dtype: bool = True, variants: dict | None = None):
    """Register ``function(backend, **kwargs)`` as one check, or one per dtype / variant."""
    hooks = tuple(hooks)
    unknown = [h for h in hooks if h not in HOOK_NAMES]
    if unknown:  # a typo here would make the coverage meta-test lie
        raise ValueError(f"check {name!r} names unknown hooks {unknown}")

    def decorate(function: Callable) -> Callable:
        doc = inspect.getdoc(function) or ""
        cases = variants or {"": {}}
        for suffix, kwargs in cases.items():
            base = f"{name}-{suffix}" if suffix else name
            if per_dtype:
                for dtype in DTYPES:
                    _CHECKS.append(
                        BackendCheck(
                            f"{base}-{dtype.name}",
                            name,
                            hooks,
                            functools.partial(function, dtype=dtype, **kwargs),
                            doc,
                        )
                    )
            else:
                _CHECKS.append(BackendCheck(base, name, hooks, functools.partial(function, **kwargs), doc))
        return function

    return decorate


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _describe(dtype=None, **parts) -> str:
    text = []
    for key, value in parts.items():
        if value is None:
            continue
        if isinstance(value, np.ndarray):
            text.append(f"{key}{tuple(value.shape)}")
        else:
            text.append(f"{key}={value!r}")
    if dtype is not None:
        text.append(np.dtype(dtype).name)
    return " ".join(text)


class Harness:
    """Glue between a backend under test, the NumPy reference and host arrays."""

    def __init__(self, backend: Backend, dtype=None, seed: int = 0) -> None:
        self.backend = backend
        self.dtype = np.dtype(dtype) if dtype is not None else None
        self.ref = get_backend(REFERENCE).kernels
        self.kernels = backend.kernels
        self.rng = np.random.default_rng(seed)
        self.array_type = type(backend.to_device(np.zeros(2)))
        rtol, atol = TOLERANCES[self.dtype] if self.dtype is not None else TOLERANCES[DTYPES[1]]
        self.rtol, self.atol = rtol, atol

    # ---- data ---------------------------------------------------------------------------

    def normal(self, *shape, scale: float = 1.0) -> np.ndarray:
        """Standard normal host array of the harness dtype."""
        return (self.rng.standard_normal(shape) * scale).astype(self.dtype)

    def uniform(self, *shape, low: float = 0.0, high: float = 1.0) -> np.ndarray:
        """Uniform host array of the harness dtype."""
        return self.rng.uniform(low, high, size=shape).astype(self.dtype)

    def dev(self, host: np.ndarray):
        """A device copy of ``host`` (a copy even for CPU backends, whose to_device may alias)."""
        return self.backend.to_device(np.array(host, copy=True, order="C"))

    def host(self, array, what: str) -> np.ndarray:
        """A host copy of a backend array, after checking it is one."""
        assert isinstance(array, self.array_type), (
            f"{what}: expected an array of the backend's array module ({self.array_type.__name__}), "
            f"got {type(array).__name__}"
        )
        out = self.backend.to_host(array)
        assert isinstance(out, np.ndarray), f"to_host returned {type(out).__name__}, not a numpy.ndarray"
        return np.array(out, copy=True)

    # ---- assertions ---------------------------------------------------------------------

    def close(self, actual: np.ndarray, expected: np.ndarray, what: str, rtol=None, atol=None) -> None:
        """Host arrays: same shape and dtype, values within the dtype's tolerance."""
        expected = np.asarray(expected)
        assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}"
        assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype}, expected {expected.dtype}"
        rtol = self.rtol if rtol is None else rtol
        atol = self.atol if atol is None else atol
        scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * scale, err_msg=what)

    def expect(self, result, expected: np.ndarray, what: str) -> np.ndarray:
        """A backend result equals the reference's (array type, shape, dtype, values)."""
        actual = self.host(result, what)
        self.close(actual, expected, what)
        return actual

    def unchanged(self, device_array, original: np.ndarray, what: str) -> None:
        """The kernel did not modify an input it had no right to modify."""
        now = np.asarray(self.backend.to_host(device_array))
        assert now.shape == original.shape and np.array_equal(now, original, equal_nan=True), (
            f"{what} was modified by the kernel; only dw/db-like outputs, optimizer state and dy may be"
        )

    def grad_buffer(self, *shapes):
        """Views into one flat device buffer prefilled with garbage, like the model's gradients.

        Returns ``(flat, views, layout, garbage)``: ``layout`` lists ``(offset, size)`` of each
        view, with a guard element before, between and after them; ``garbage`` is the host copy
        of the prefill, for :meth:`check_grad_buffer`.
        """
        layout, offset = [], 1
        for shape in shapes:
            size = int(np.prod(shape))
            layout.append((offset, size))
            offset += size + 1
        garbage = self.rng.uniform(500.0, 1000.0, size=offset).astype(self.dtype)
        flat = self.dev(garbage)
        views = [flat[o : o + n].reshape(shape) for (o, n), shape in zip(layout, shapes)]
        return flat, views, layout, garbage

    def check_grad_buffer(self, flat, layout, garbage, expected: list[np.ndarray], names: list[str], what: str):
        """The views were overwritten with ``expected`` and the guards left alone."""
        now = np.asarray(self.backend.to_host(flat))
        guard = np.ones(now.shape, bool)
        for (o, n), exp, name in zip(layout, expected, names):
            guard[o : o + n] = False
            got = now[o : o + n].reshape(exp.shape)
            want = exp.astype(self.dtype)
            prefill = garbage[o : o + n].reshape(exp.shape)
            if np.array_equal(got, prefill) and not np.allclose(want, prefill):
                raise AssertionError(
                    f"{what}: {name} was not written: it still holds the garbage it was prefilled with. "
                    "Write the result into the array given (out=..., or [...] = ...), do not rebind the name"
                )
            scale = max(1.0, float(np.max(np.abs(want))))
            # float32 garbage near 1000 leaves ~1e-4 of rounding in got - prefill: scale for it.
            if not np.allclose(got, want, self.rtol, self.atol * scale) and np.allclose(
                got - prefill, want, self.rtol, self.atol * max(scale, float(np.max(np.abs(prefill))))
            ):
                raise AssertionError(f"{what}: the gradient was added to {name}'s previous contents; overwrite it instead")
            self.close(got, want, f"{what}: {name}")
        assert np.array_equal(now[guard], garbage[guard]), f"{what}: wrote outside the {'/'.join(names)} views"


def _seed(check_name: str) -> int:
    return zlib.crc32(check_name.encode())


def _no_overflow(what: str, kernel: Callable, *args):
    """Call ``kernel`` with NumPy's floating-point errors raised (a naive ``exp`` overflows).

    Only NumPy code notices ``errstate``; compiled or GPU kernels are judged on finite results.
    """
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            return kernel(*args)
    except FloatingPointError as exc:
        raise AssertionError(f"{what}: floating-point error ({exc}); the kernel must be stable for large |input|") from exc


# --------------------------------------------------------------------------------------------
# Identity, availability and services
# --------------------------------------------------------------------------------------------


@_register("backend_info", ["sega_backend_info"], per_dtype=False)
def check_backend_info(backend: Backend) -> None:
    """``sega_backend_info`` names the backend, its version, the hook API it speaks, its device."""
    info = backend.info
    for key in ("name", "version", "hook_api", "device"):
        assert isinstance(info.get(key), str) and info[key], f"sega_backend_info lacks a non-empty str {key!r}: {info}"
    assert info["name"] == backend.name, f"sega_backend_info names {info['name']!r}, but the backend is {backend.name!r}"
    assert info["hook_api"].split(".")[0] == hookspecs.HOOK_API_VERSION.split(".")[0]
    assert isinstance(info.get("description", ""), str)


@_register("backend_available", ["sega_backend_available"], per_dtype=False)
def check_backend_available(backend: Backend) -> None:
    """The backend reports itself available (it resolved, so it must) in ``list_backends()``."""
    entry = next((b for b in list_backends() if b["name"] == backend.name), None)
    assert entry is not None, f"{backend.name!r} is missing from list_backends()"
    assert entry["status"] == "ok" and entry["reason"] is None, f"list_backends() says {entry['status']}: {entry['reason']}"
    assert "missing" not in entry["kernels"].values(), f"kernels without an implementation: {entry['kernels']}"


@_register("array_module", ["sega_array_module", "sega_to_device", "sega_to_host"], per_dtype=False)
def check_array_module(backend: Backend) -> None:
    """The array module offers the NumPy-API glue the core uses on backend arrays."""
    h = Harness(backend, np.float64, _seed("array_module"))
    xp = backend.xp
    x = h.normal(5, 3)
    d = h.dev(x)
    h.close(h.host(xp.zeros((2, 3), dtype=np.float32), "xp.zeros"), np.zeros((2, 3), np.float32), "xp.zeros")
    h.close(h.host(xp.zeros_like(d), "xp.zeros_like"), np.zeros_like(x), "xp.zeros_like")
    h.close(h.host(xp.concatenate([d, d]), "xp.concatenate"), np.concatenate([x, x]), "xp.concatenate")
    idx = h.backend.to_device(np.array([4, 0, 2], dtype=np.int64))
    h.close(h.host(xp.take(d, idx, axis=0), "xp.take"), x[[4, 0, 2]], "xp.take")
    h.close(h.host(xp.abs(d), "xp.abs"), np.abs(x), "xp.abs")
    h.close(h.host(xp.ascontiguousarray(d[:, 1]), "xp.ascontiguousarray"), x[:, 1].copy(), "xp.ascontiguousarray")
    np.testing.assert_array_equal(h.host(d.argmax(axis=1), "argmax"), x.argmax(axis=1))
    h.close(h.host(d.reshape(3, 5), "reshape"), x.reshape(3, 5), "reshape")


@_register("to_device_to_host", ["sega_to_device", "sega_to_host"])
def check_to_device_to_host(backend: Backend, dtype) -> None:
    """Host -> device -> host keeps shape, dtype and values, for floats and integer labels."""
    h = Harness(backend, dtype, _seed("to_device"))
    for host in (h.normal(1), h.normal(3, 5), h.normal(2, 3, 4, 5), np.arange(7, dtype=np.int64)):
        d = backend.to_device(np.array(host))
        assert isinstance(d, h.array_type), f"to_device returned {type(d).__name__}"
        assert tuple(d.shape) == host.shape and d.dtype == host.dtype, "to_device changed shape or dtype"
        back = backend.to_host(d)
        assert isinstance(back, np.ndarray), f"to_host returned {type(back).__name__}, not numpy.ndarray"
        assert back.dtype == host.dtype and np.array_equal(back, host), "host -> device -> host changed the array"


@_register("make_rng", ["sega_make_rng", "sega_dropout_forward"], per_dtype=False)
def check_make_rng(backend: Backend) -> None:
    """Generators made from one seed give one dropout mask; other seeds give other masks."""
    h = Harness(backend, np.float32, _seed("make_rng"))
    x = h.dev(np.ones((40, 50), np.float32))
    masks = [h.host(backend.kernels.dropout_forward(x, 0.5, backend.make_rng(s))[1], "mask") for s in (3, 3, 4)]
    assert np.array_equal(masks[0], masks[1]), "two generators made from the same seed gave different dropout masks"
    assert not np.array_equal(masks[0], masks[2]), "generators made from different seeds gave the same dropout mask"


@_register("compute_context", ["sega_compute_context"], per_dtype=False)
def check_compute_context(backend: Backend) -> None:
    """The compute context nests, may be entered from several threads at once, and kernels run
    inside it give the same results as outside it."""
    import threading

    h = Harness(backend, np.float64, _seed("compute_context"))
    x, w, b = h.normal(6, 5), h.normal(5, 4), h.normal(4)
    outside = h.host(backend.kernels.dense_forward(h.dev(x), h.dev(w), h.dev(b)), "dense_forward")
    errors: list[BaseException] = []

    def run():
        try:
            with backend.compute_context():
                with backend.compute_context():
                    inside = h.host(backend.kernels.dense_forward(h.dev(x), h.dev(w), h.dev(b)), "dense_forward")
            h.close(inside, outside, "dense_forward inside the compute context")
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    with backend.compute_context():
        for t in threads:
            t.start()
        run()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


@_register("stream_to_device", ["sega_stream_to_device", "sega_to_device", "sega_to_host"], per_dtype=False)
def check_stream_to_device(backend: Backend) -> None:
    """Chunks of host arrays reach the device whole and in order (``None`` and device arrays as
    they are), the chunks read at most one ahead of what was handed over, and a consumer may
    stop early."""
    h = Harness(backend, np.float32, _seed("stream_to_device"))
    kept = h.dev(h.normal(4, 2))
    chunks = [(h.normal(n, 3), np.arange(n, dtype=np.int64), None if i % 2 else h.normal(n).astype(np.float64))
              for i, n in enumerate((5, 17, 0, 1, 40, 3, 64, 2))]
    chunks.insert(3, (h.normal(6, 3), kept, None))
    read = []

    def source():
        for chunk in chunks:
            read.append(chunk)
            yield chunk

    handed = 0
    for got in backend.stream_to_device(source()):
        assert len(read) <= handed + 2, f"stream_to_device read {len(read)} chunks before handing over chunk {handed + 1}"
        expected = chunks[handed]
        assert isinstance(got, tuple) and len(got) == len(expected), f"chunk {handed}: got {got!r:.80}"
        for j, (a, e) in enumerate(zip(got, expected)):
            what = f"stream_to_device chunk {handed} entry {j}"
            if e is None or (e is kept and backend.holds(kept)):
                assert a is e, f"{what}: None and device arrays must be handed over as they are"
            else:
                actual = h.host(a, what)
                assert actual.dtype == e.dtype and np.array_equal(actual, e), f"{what} differs from the host array"
        handed += 1
    assert handed == len(chunks), f"stream_to_device handed over {handed} chunks of {len(chunks)}"
    stream = backend.stream_to_device(iter(chunks))
    first = h.host(next(stream)[0], "the first chunk of a stream stopped early")
    if hasattr(stream, "close"):
        stream.close()
    assert np.array_equal(first, chunks[0][0]), "the first chunk of a stream stopped early differs"


# --------------------------------------------------------------------------------------------
# Dense
# --------------------------------------------------------------------------------------------

_DENSE_CASES = ((1, 1, 1), (1, 7, 3), (5, 13, 1), (33, 17, 9))


@_register("dense_forward", ["sega_dense_forward"])
def check_dense_forward(backend: Backend, dtype) -> None:
    """``x @ w + b`` against the reference; inputs untouched."""
    h = Harness(backend, dtype, _seed("dense_forward"))
    for n, i, o in _DENSE_CASES:
        x, w, b = h.normal(n, i), h.normal(i, o), h.normal(o)
        what = "dense_forward " + _describe(dtype, x=x, w=w)
        dx, dw, db = h.dev(x), h.dev(w), h.dev(b)
        h.expect(h.kernels.dense_forward(dx, dw, db), h.ref.dense_forward(x.copy(), w.copy(), b.copy()), what)
        for arr, orig, name in ((dx, x, "x"), (dw, w, "w"), (db, b, "b")):
            h.unchanged(arr, orig, f"{what}: {name}")


@_register("dense_backward", ["sega_dense_backward"])
def check_dense_backward(backend: Backend, dtype) -> None:
    """dw, db overwritten through views of a garbage-filled buffer; dx returned only if asked."""
    h = Harness(backend, dtype, _seed("dense_backward"))
    for n, i, o in _DENSE_CASES:
        for need_dx in (True, False):
            x, w, dy = h.normal(n, i), h.normal(i, o), h.normal(n, o)
            what = "dense_backward " + _describe(dtype, x=x, w=w, need_dx=need_dx)
            ew, eb = np.empty_like(w), np.empty(o, dtype)
            edx = h.ref.dense_backward(dy.copy(), x.copy(), w.copy(), ew, eb, True)
            flat, (vw, vb), layout, garbage = h.grad_buffer(w.shape, (o,))
            ddx, ddw = h.dev(x), h.dev(w)
            result = h.kernels.dense_backward(h.dev(dy), ddx, ddw, vw, vb, need_dx)
            h.check_grad_buffer(flat, layout, garbage, [ew, eb], ["dw", "db"], what)
            if need_dx:
                h.expect(result, edx, what + ": dx")
            else:
                assert result is None, f"{what}: need_dx=False must return None"
            h.unchanged(ddx, x, f"{what}: x")
            h.unchanged(ddw, w, f"{what}: w")


# --------------------------------------------------------------------------------------------
# Conv2D
# --------------------------------------------------------------------------------------------

#: (N, C, H, W, F, K, stride, padding): 1x1 kernels, stride 2 on odd sizes, padding 0 and 2,
#: non-square images, a kernel as large as the image.
_CONV_CASES = (
    (1, 1, 5, 5, 1, 1, 1, 0),
    (2, 3, 7, 5, 4, 3, 2, 0),
    (1, 3, 6, 9, 2, 3, 1, 2),
    (3, 5, 8, 8, 3, 5, 2, 2),
    (2, 1, 4, 7, 3, 2, 2, 1),
    (1, 2, 3, 3, 1, 3, 1, 0),
    # Hook API 1.2: rectangular kernels, strides per axis, padding per side.
    (2, 2, 6, 7, 3, (2, 3), (1, 2), ((0, 1), (1, 0))),
    (1, 3, 5, 5, 2, (3, 1), 2, ((1, 1), (0, 0))),
    (2, 1, 4, 4, 2, 2, (2, 1), ((0, 1), (0, 1))),
)


def _conv_inputs(h: Harness, case):
    n, c, hh, ww, f, k, stride, padding = case
    kh, kw = (k, k) if isinstance(k, int) else k
    return h.normal(n, c, hh, ww), h.normal(f, c, kh, kw, scale=0.5), h.normal(f), stride, padding


@_register("conv2d_forward", ["sega_conv2d_forward"])
def check_conv2d_forward(backend: Backend, dtype) -> None:
    """Cross-correlation output against the reference, returned as ``(y, ctx)``."""
    h = Harness(backend, dtype, _seed("conv2d_forward"))
    for case in _CONV_CASES:
        x, w, b, stride, padding = _conv_inputs(h, case)
        what = "conv2d_forward " + _describe(dtype, x=x, w=w, stride=stride, padding=padding)
        expected, _ = h.ref.conv2d_forward(x.copy(), w.copy(), b.copy(), stride, padding)
        dx, dw, db = h.dev(x), h.dev(w), h.dev(b)
        result = h.kernels.conv2d_forward(dx, dw, db, stride, padding)
        assert isinstance(result, tuple) and len(result) == 2, f"{what}: must return (y, ctx)"
        h.expect(result[0], expected, what)
        for arr, orig, name in ((dx, x, "x"), (dw, w, "w"), (db, b, "b")):
            h.unchanged(arr, orig, f"{what}: {name}")


@_register("conv2d_backward", ["sega_conv2d_forward", "sega_conv2d_backward"])
def check_conv2d_backward(backend: Backend, dtype) -> None:
    """Gradients from the backend's own forward ``ctx``; dw/db overwritten; dx only if asked."""
    h = Harness(backend, dtype, _seed("conv2d_backward"))
    for case in _CONV_CASES:
        for need_dx in (True, False):
            x, w, b, stride, padding = _conv_inputs(h, case)
            what = "conv2d_backward " + _describe(dtype, x=x, w=w, stride=stride, padding=padding, need_dx=need_dx)
            dx_dev, dw_dev = h.dev(x), h.dev(w)
            y, ctx = h.kernels.conv2d_forward(dx_dev, dw_dev, h.dev(b), stride, padding)
            dy = h.normal(*y.shape)
            ew, eb = np.empty_like(w), np.empty_like(b)
            edx = h.ref.conv2d_backward(dy.copy(), x.copy(), w.copy(), stride, padding, None, ew, eb, True)
            flat, (vw, vb), layout, garbage = h.grad_buffer(w.shape, b.shape)
            result = h.kernels.conv2d_backward(h.dev(dy), dx_dev, dw_dev, stride, padding, ctx, vw, vb, need_dx)
            h.check_grad_buffer(flat, layout, garbage, [ew, eb], ["dw", "db"], what)
            if need_dx:
                h.expect(result, edx, what + ": dx")
            else:
                assert result is None, f"{what}: need_dx=False must return None"
            h.unchanged(dx_dev, x, f"{what}: x")
            h.unchanged(dw_dev, w, f"{what}: w")


# --------------------------------------------------------------------------------------------
# RNN
# --------------------------------------------------------------------------------------------

#: (N, T, F, H): batch 1, sequence length 1, odd sizes.
_RNN_CASES = ((1, 1, 1, 1), (2, 1, 3, 4), (1, 6, 2, 3), (4, 7, 5, 6))
RNN_ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")


def _rnn_inputs(h: Harness, case):
    n, t, f, hidden = case
    # Small recurrent weights keep linear and relu recurrences bounded over the sequence.
    return (
        h.normal(n, t, f),
        h.normal(f, hidden, scale=0.6),
        h.normal(hidden, hidden, scale=0.5 / np.sqrt(hidden)),
        h.normal(hidden, scale=0.3),
    )


@_register("rnn_forward", ["sega_rnn_forward"])
def check_rnn_forward(backend: Backend, dtype) -> None:
    """Every state of the recurrence against the reference, for every activation."""
    h = Harness(backend, dtype, _seed("rnn_forward"))
    for case in _RNN_CASES:
        for act in RNN_ACTIVATIONS:
            x, wx, wh, b = _rnn_inputs(h, case)
            what = "rnn_forward " + _describe(dtype, x=x, wh=wh, activation=act)
            expected, _ = h.ref.rnn_forward(x.copy(), wx.copy(), wh.copy(), b.copy(), act)
            devs = [h.dev(a) for a in (x, wx, wh, b)]
            result = h.kernels.rnn_forward(*devs, act)
            assert isinstance(result, tuple) and len(result) == 2, f"{what}: must return (hs, ctx)"
            h.expect(result[0], expected, what)
            for arr, orig, name in zip(devs, (x, wx, wh, b), ("x", "wx", "wh", "b")):
                h.unchanged(arr, orig, f"{what}: {name}")


@_register("rnn_backward", ["sega_rnn_forward", "sega_rnn_backward"])
def check_rnn_backward(backend: Backend, dtype) -> None:
    """BPTT from the backend's own forward; dwx/dwh/db overwritten; dx only if asked."""
    h = Harness(backend, dtype, _seed("rnn_backward"))
    for ci, case in enumerate(_RNN_CASES):
        for ai, act in enumerate(RNN_ACTIVATIONS):
            need_dx = (ci + ai) % 2 == 0
            x, wx, wh, b = _rnn_inputs(h, case)
            devs = [h.dev(a) for a in (x, wx, wh, b)]
            hs_dev, ctx = h.kernels.rnn_forward(*devs, act)
            hs = h.host(hs_dev, "rnn_forward hs")
            dhs = h.normal(*hs.shape)
            if ai % 2:  # the layer returning its last state only: zero gradient elsewhere
                dhs[:, :-1] = 0
            what = "rnn_backward " + _describe(dtype, x=x, wh=wh, activation=act, need_dx=need_dx)
            ewx, ewh, eb = np.empty_like(wx), np.empty_like(wh), np.empty_like(b)
            edx = h.ref.rnn_backward(dhs.copy(), x.copy(), wx.copy(), wh.copy(), hs.copy(), act, None, ewx, ewh, eb, True)
            flat, (vwx, vwh, vb), layout, garbage = h.grad_buffer(wx.shape, wh.shape, b.shape)
            dhs_dev = h.dev(dhs)
            result = h.kernels.rnn_backward(dhs_dev, devs[0], devs[1], devs[2], hs_dev, act, ctx, vwx, vwh, vb, need_dx)
            h.check_grad_buffer(flat, layout, garbage, [ewx, ewh, eb], ["dwx", "dwh", "db"], what)
            if need_dx:
                h.expect(result, edx, what + ": dx")
            else:
                assert result is None, f"{what}: need_dx=False must return None"
            for arr, orig, name in zip(devs[:3], (x, wx, wh), ("x", "wx", "wh")):
                h.unchanged(arr, orig, f"{what}: {name}")
            h.unchanged(hs_dev, hs, f"{what}: hs")
            h.unchanged(dhs_dev, dhs, f"{what}: dhs (the layer reuses it)")


# --------------------------------------------------------------------------------------------
# Pooling (hook API 1.2)
# --------------------------------------------------------------------------------------------

#: (x shape, pool, stride, padding): windows that do not divide the input, stride != pool,
#: overlapping windows, asymmetric padding, batch 1, one channel, a window as large as the image.
_POOL_CASES = (
    ((2, 3, 6, 6), (2, 2), (2, 2), ((0, 0), (0, 0))),
    ((1, 1, 7, 5), (2, 2), (2, 2), ((0, 0), (0, 0))),
    ((2, 2, 7, 6), (3, 3), (2, 2), ((1, 1), (1, 1))),
    ((1, 2, 5, 7), (2, 3), (1, 2), ((0, 1), (1, 1))),
    ((3, 1, 4, 4), (4, 4), (4, 4), ((0, 0), (0, 0))),
    ((1, 2, 5, 5), (3, 2), (1, 1), ((1, 1), (0, 1))),
)


def _check_pooling(backend: Backend, dtype, op: str, backward_too: bool) -> None:
    h = Harness(backend, dtype, _seed(f"{op}"))
    forward, backward = getattr(h.kernels, f"{op}_forward"), getattr(h.kernels, f"{op}_backward")
    ref_forward, ref_backward = getattr(h.ref, f"{op}_forward"), getattr(h.ref, f"{op}_backward")
    for shape, pool, stride, padding in _POOL_CASES:
        x = h.normal(*shape)
        x.reshape(-1)[::7] = x.reshape(-1)[1]  # ties inside windows
        what = f"{op} " + _describe(dtype, x=x, pool=pool, stride=stride, padding=padding)
        expected, ref_ctx = ref_forward(x.copy(), pool, stride, padding)
        xd = h.dev(x)
        result = forward(xd, pool, stride, padding)
        assert isinstance(result, tuple) and len(result) == 2, f"{what}: must return (y, ctx)"
        h.expect(result[0], expected, what)
        h.unchanged(xd, x, f"{what}: x")
        if not backward_too:
            continue
        dy = h.normal(*expected.shape)
        dyd = h.dev(dy)
        h.expect(backward(dyd, xd, pool, stride, padding, result[1]), ref_backward(dy.copy(), x.copy(), pool, stride,
                                                                                   padding, ref_ctx), what + ": dx")
        h.unchanged(xd, x, f"{what}: x")


@_register("maxpool2d_forward", ["sega_maxpool2d_forward"])
def check_maxpool2d_forward(backend: Backend, dtype) -> None:
    """Max pooling against the reference, ties included (the first maximum wins)."""
    _check_pooling(backend, dtype, "maxpool2d", backward_too=False)


@_register("maxpool2d_backward", ["sega_maxpool2d_forward", "sega_maxpool2d_backward"])
def check_maxpool2d_backward(backend: Backend, dtype) -> None:
    """Max pooling's gradient (to each window's first maximum) against the reference."""
    _check_pooling(backend, dtype, "maxpool2d", backward_too=True)


@_register("avgpool2d_forward", ["sega_avgpool2d_forward"])
def check_avgpool2d_forward(backend: Backend, dtype) -> None:
    """Average pooling (padding excluded from the count) against the reference."""
    _check_pooling(backend, dtype, "avgpool2d", backward_too=False)


@_register("avgpool2d_backward", ["sega_avgpool2d_forward", "sega_avgpool2d_backward"])
def check_avgpool2d_backward(backend: Backend, dtype) -> None:
    """Average pooling's gradient against the reference."""
    _check_pooling(backend, dtype, "avgpool2d", backward_too=True)


# --------------------------------------------------------------------------------------------
# Batch normalization (hook API 1.2)
# --------------------------------------------------------------------------------------------

_BATCHNORM_SHAPES = ((2, 3), (7, 1), (1, 4, 3, 2), (3, 2, 5, 5))


@_register("batchnorm_forward", ["sega_batchnorm_forward"])
def check_batchnorm_forward(backend: Backend, dtype) -> None:
    """Training (batch statistics, running ones updated in place) and inference (nothing
    modified) against the reference."""
    _check_batchnorm(backend, dtype, backward_too=False)


@_register("batchnorm_backward", ["sega_batchnorm_forward", "sega_batchnorm_backward"])
def check_batchnorm_backward(backend: Backend, dtype) -> None:
    """The training gradients (dgamma, dbeta overwritten; dx only if asked) against the reference."""
    _check_batchnorm(backend, dtype, backward_too=True)


def _check_batchnorm(backend: Backend, dtype, backward_too: bool) -> None:
    h = Harness(backend, dtype, _seed("batchnorm"))
    for shape in _BATCHNORM_SHAPES:
        c = shape[1]
        x = h.normal(*shape, scale=2.0) + 0.5
        gamma, beta = h.normal(c), h.normal(c)
        mean, var = h.normal(c), h.uniform(c, low=0.5, high=2.0)
        what = "batchnorm " + _describe(dtype, x=x)
        devs = [h.dev(a) for a in (x, gamma, beta)]
        rm, rv = h.dev(mean), h.dev(var)
        y, _ = h.kernels.batchnorm_forward(*devs, rm, rv, 0.9, 1e-3, False)
        h.expect(y, h.ref.batchnorm_forward(x.copy(), gamma, beta, mean.copy(), var.copy(), 0.9, 1e-3, False)[0],
                 what + " inference")
        h.unchanged(rm, mean, what + " inference: running_mean")
        h.unchanged(rv, var, what + " inference: running_var")
        erm, erv = mean.copy(), var.copy()
        ey, ectx = h.ref.batchnorm_forward(x.copy(), gamma, beta, erm, erv, 0.9, 1e-3, True)
        y, ctx = h.kernels.batchnorm_forward(*devs, rm, rv, 0.9, 1e-3, True)
        h.expect(y, ey, what + " training")
        h.expect(rm, erm, what + " training: running_mean updated in place")
        h.expect(rv, erv, what + " training: running_var updated in place")
        if not backward_too:
            continue
        dy = h.normal(*shape)
        edg, edb = np.empty_like(gamma), np.empty_like(beta)
        edx = h.ref.batchnorm_backward(dy.copy(), x.copy(), gamma, ectx, edg, edb, True)
        for need_dx in (True, False):
            flat, (vg, vb), layout, garbage = h.grad_buffer(gamma.shape, beta.shape)
            result = h.kernels.batchnorm_backward(h.dev(dy), devs[0], devs[1], ctx, vg, vb, need_dx)
            h.check_grad_buffer(flat, layout, garbage, [edg, edb], ["dgamma", "dbeta"], what)
            if need_dx:
                h.expect(result, edx, what + ": dx")
            else:
                assert result is None, f"{what}: need_dx=False must return None"
        for arr, orig, name in zip(devs, (x, gamma, beta), ("x", "gamma", "beta")):
            h.unchanged(arr, orig, f"{what}: {name}")


# --------------------------------------------------------------------------------------------
# LSTM and GRU (hook API 1.2)
# --------------------------------------------------------------------------------------------


def _gated_inputs(h: Harness, case, gates: int, biases: int):
    n, t, f, hidden = case
    return [h.normal(n, t, f), h.normal(f, gates * hidden, scale=0.6),
            h.normal(hidden, gates * hidden, scale=0.5 / np.sqrt(hidden))] + [h.normal(gates * hidden, scale=0.3)
                                                                             for _ in range(biases)]


def _gated_variants():
    """(name, gates, biases, extra arguments after the weights)."""
    return [("lstm", 4, 1, ()), ("gru", 3, 2, (True,)), ("gru", 3, 2, (False,))]


@_register("lstm_forward", ["sega_lstm_forward"])
def check_lstm_forward(backend: Backend, dtype) -> None:
    """Every LSTM state against the reference (batch 1, sequence length 1, odd sizes)."""
    _check_gated(backend, dtype, "lstm", backward_too=False)


@_register("lstm_backward", ["sega_lstm_forward", "sega_lstm_backward"])
def check_lstm_backward(backend: Backend, dtype) -> None:
    """LSTM BPTT from the backend's own forward: weight gradients overwritten, dx only if
    asked, dhs left as it is."""
    _check_gated(backend, dtype, "lstm", backward_too=True)


@_register("gru_forward", ["sega_gru_forward"])
def check_gru_forward(backend: Backend, dtype) -> None:
    """Every GRU state, with the reset gate after and before the recurrent product."""
    _check_gated(backend, dtype, "gru", backward_too=False)


@_register("gru_backward", ["sega_gru_forward", "sega_gru_backward"])
def check_gru_backward(backend: Backend, dtype) -> None:
    """GRU BPTT (both reset placements): weight gradients overwritten, dx only if asked, dhs
    left as it is."""
    _check_gated(backend, dtype, "gru", backward_too=True)


def _check_gated(backend: Backend, dtype, kind: str, backward_too: bool) -> None:
    h = Harness(backend, dtype, _seed(f"{kind}_gates"))
    for ci, case in enumerate(_RNN_CASES):
        for vi, (name, gates, biases, extra) in enumerate(_gated_variants()):
            if name != kind:
                continue
            arrays = _gated_inputs(h, case, gates, biases)
            what = f"{name}{list(extra)} " + _describe(dtype, x=arrays[0], wh=arrays[2])
            forward, backward = getattr(h.kernels, f"{name}_forward"), getattr(h.kernels, f"{name}_backward")
            expected, ectx = getattr(h.ref, f"{name}_forward")(*[a.copy() for a in arrays], *extra)
            devs = [h.dev(a) for a in arrays]
            result = forward(*devs, *extra)
            assert isinstance(result, tuple) and len(result) == 2, f"{what}: must return (hs, ctx)"
            hs_dev, ctx = result
            hs = h.expect(hs_dev, expected, what)
            if not backward_too:
                continue
            dhs = h.normal(*hs.shape)
            if vi % 2:
                dhs[:, :-1] = 0
            need_dx = (ci + vi) % 2 == 0
            params = arrays[1:]
            egrads = [np.empty_like(a) for a in params]
            host = [a.copy() for a in arrays]
            if name == "gru":
                edx = h.ref.gru_backward(dhs.copy(), *host, *extra, hs.copy(), ectx, *egrads, True)
            else:
                edx = h.ref.lstm_backward(dhs.copy(), *host[:3], hs.copy(), ectx, *egrads, True)
            flat, views, layout, garbage = h.grad_buffer(*[a.shape for a in params])
            dhs_dev = h.dev(dhs)
            if name == "gru":
                out = backward(dhs_dev, *devs, *extra, hs_dev, ctx, *views, need_dx)
            else:
                out = backward(dhs_dev, *devs[:3], hs_dev, ctx, *views, need_dx)
            names = ["dwx", "dwh"] + (["dbx", "dbh"] if name == "gru" else ["db"])
            h.check_grad_buffer(flat, layout, garbage, egrads, names, what)
            if need_dx:
                h.expect(out, edx, what + ": dx")
            else:
                assert out is None, f"{what}: need_dx=False must return None"
            h.unchanged(dhs_dev, dhs, f"{what}: dhs (the layer reuses it)")
            for arr, orig in zip(devs, arrays):
                h.unchanged(arr, orig, f"{what}: an input")


# --------------------------------------------------------------------------------------------
# Dropout
# --------------------------------------------------------------------------------------------


@_register("dropout_forward", ["sega_dropout_forward", "sega_make_rng"])
def check_dropout_forward(backend: Backend, dtype) -> None:
    """Mask values are 0 or 1/(1-rate), the drop rate near ``rate``, ``y == x * mask``, x untouched."""
    h = Harness(backend, dtype, _seed("dropout_forward"))
    for shape in ((1, 1), (60, 41), (2, 3, 5, 4)):
        for rate in (0.0, 0.25, 0.5, 0.9):
            x = h.normal(*shape)
            what = "dropout_forward " + _describe(dtype, x=x, rate=rate)
            dx = h.dev(x)
            result = h.kernels.dropout_forward(dx, rate, backend.make_rng(11))
            assert isinstance(result, tuple) and len(result) == 2, f"{what}: must return (y, mask)"
            y = h.host(result[0], what + ": y")
            mask = h.host(result[1], what + ": mask")
            assert y.shape == x.shape and mask.shape == x.shape, f"{what}: y {y.shape}, mask {mask.shape}"
            assert y.dtype == dtype and mask.dtype == dtype, f"{what}: y {y.dtype}, mask {mask.dtype}"
            keep = np.float64(1.0) / (1.0 - rate)
            kept = mask != 0
            h.close(mask[kept].astype(np.float64), np.full(int(kept.sum()), keep), what + ": kept mask values",
                    rtol=1e-6, atol=0)
            h.close(y, x * mask, what + ": y == x * mask")
            if x.size > 1000:
                p = 1.0 - rate
                sd = np.sqrt(p * (1 - p) / x.size)
                assert abs(kept.mean() - p) <= 6 * sd + 1e-9, f"{what}: kept {kept.mean():.3f} of elements, expected {p:.3f}"
            if rate == 0.0:
                assert kept.all(), f"{what}: rate 0 dropped elements"
            h.unchanged(dx, x, f"{what}: x")


@_register("dropout_backward", ["sega_dropout_backward"])
def check_dropout_backward(backend: Backend, dtype) -> None:
    """``dy * mask`` against the reference."""
    h = Harness(backend, dtype, _seed("dropout_backward"))
    for shape in ((1, 1), (7, 9), (2, 3, 5, 4)):
        dy = h.normal(*shape)
        mask = ((h.rng.random(shape) >= 0.3) / 0.7).astype(dtype)
        what = "dropout_backward " + _describe(dtype, dy=dy)
        dmask = h.dev(mask)
        h.expect(h.kernels.dropout_backward(h.dev(dy), dmask), h.ref.dropout_backward(dy.copy(), mask.copy()), what)
        h.unchanged(dmask, mask, f"{what}: mask")


# --------------------------------------------------------------------------------------------
# Activations
# --------------------------------------------------------------------------------------------

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "softmax", "linear")
_ACT_SHAPES = ((1, 1), (5, 7), (2, 3, 4, 5))
_LEAKY_ALPHAS = (0.01, 0.3)


def _activation_input(h: Harness, shape) -> np.ndarray:
    """Normal values with exact zeros (derivative conventions) and large magnitudes (overflow)."""
    z = h.normal(*shape, scale=3.0)
    flat = z.reshape(-1)
    flat[::5] = 0.0
    if flat.size >= 4:
        flat[1], flat[3] = 1000.0, -1000.0  # exp(1000) overflows even float64
    return z


def _act_args(name: str, alpha: float | None) -> tuple:
    return (alpha,) if name == "leaky_relu" else ()


def _register_activation(name: str) -> None:
    alphas = _LEAKY_ALPHAS if name == "leaky_relu" else (None,)
    forward_hook, backward_hook = f"sega_{name}_forward", f"sega_{name}_backward"

    def forward(backend: Backend, dtype) -> None:
        h = Harness(backend, dtype, _seed(forward_hook))
        kernel, ref = getattr(h.kernels, f"{name}_forward"), getattr(h.ref, f"{name}_forward")
        for shape in _ACT_SHAPES:
            for alpha in alphas:
                z = _activation_input(h, shape)
                what = f"{name}_forward " + _describe(dtype, z=z, alpha=alpha)
                dz = h.dev(z)
                result = _no_overflow(what, kernel, dz, *_act_args(name, alpha))
                actual = h.expect(result, ref(z.copy(), *_act_args(name, alpha)), what)
                assert np.isfinite(actual).all(), f"{what}: non-finite output for large |z|"
                h.unchanged(dz, z, f"{what}: z")

    def backward(backend: Backend, dtype) -> None:
        h = Harness(backend, dtype, _seed(backward_hook))
        kernel, ref = getattr(h.kernels, f"{name}_backward"), getattr(h.ref, f"{name}_backward")
        ref_forward = getattr(h.ref, f"{name}_forward")
        for shape in _ACT_SHAPES:
            for alpha in alphas:
                z, dy = _activation_input(h, shape), h.normal(*shape)
                y = np.array(ref_forward(z.copy(), *_act_args(name, alpha)))
                what = f"{name}_backward " + _describe(dtype, z=z, alpha=alpha)
                dz, dyv = h.dev(z), h.dev(y)
                h.expect(kernel(h.dev(dy), dz, dyv, *_act_args(name, alpha)), ref(dy.copy(), z.copy(), y.copy(), *_act_args(name, alpha)), what)
                h.unchanged(dz, z, f"{what}: z")
                h.unchanged(dyv, y, f"{what}: y")

    forward.__doc__ = f"``{forward_hook}`` against the reference, including zeros and |z| = 1000."
    backward.__doc__ = f"``{backward_hook}`` against the reference, including the derivative at 0."
    _register(f"{name}_forward", [forward_hook])(forward)
    _register(f"{name}_backward", [backward_hook])(backward)


for _name in ACTIVATIONS:
    _register_activation(_name)


# --------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------


def _check_loss(h: Harness, kernel_name: str, args_host: tuple, what: str) -> None:
    """Run one loss kernel without and with sample weights (one of them 0 where there are
    several samples): ``(loss, grad)`` with a 0-d loss of the input dtype; inputs untouched."""
    n = args_host[0].shape[0]
    weight = h.uniform(n, low=0.1, high=3.0)
    if n > 1:
        weight[1] = 0.0
    for label, w in (("", None), (" weighted", weight)):
        _check_one_loss(h, kernel_name, args_host + (w,), what + label)


def _check_one_loss(h: Harness, kernel_name: str, args_host: tuple, what: str) -> None:
    devs = [h.dev(a) if isinstance(a, np.ndarray) else a for a in args_host]
    exp_loss, exp_grad = getattr(h.ref, kernel_name)(*[a.copy() if isinstance(a, np.ndarray) else a for a in args_host])
    result = _no_overflow(what, getattr(h.kernels, kernel_name), *devs)
    assert isinstance(result, tuple) and len(result) == 2, f"{what}: must return (loss, grad)"
    loss = h.host(result[0], what + ": loss (a 0-d array of the backend's array module)")
    assert loss.shape == (), f"{what}: loss has shape {loss.shape}; it must be a 0-d array (the batch mean)"
    h.close(loss, np.asarray(exp_loss), what + ": loss")
    grad = h.expect(result[1], exp_grad, what + ": grad")
    assert np.isfinite(loss) and np.isfinite(grad).all(), f"{what}: non-finite loss or gradient"
    for arr, orig in zip(devs, args_host):
        if isinstance(orig, np.ndarray):
            h.unchanged(arr, orig, f"{what}: an input")


def _classification_logits(h: Harness, n: int, c: int) -> np.ndarray:
    logits = h.normal(n, c, scale=2.0)
    if n > 2:  # a row of extreme logits: log-sum-exp must not overflow
        logits[1] = 0
        logits[1, 0], logits[1, -1] = 1000.0, -1000.0
    return logits


@_register("softmax_cross_entropy", ["sega_softmax_cross_entropy"])
def check_softmax_cross_entropy(backend: Backend, dtype) -> None:
    """Integer (int64 and int32), one-hot and soft targets; extreme logits stay finite."""
    h = Harness(backend, dtype, _seed("softmax_cross_entropy"))
    for n, c in ((1, 2), (7, 3), (16, 10)):
        logits = _classification_logits(h, n, c)
        labels = h.rng.integers(0, c, size=n)
        soft = h.rng.dirichlet(np.ones(c), size=n).astype(dtype)
        for kind, target in (
            ("int64", labels.astype(np.int64)),
            ("int32", labels.astype(np.int32)),
            ("one-hot", np.eye(c, dtype=dtype)[labels]),
            ("soft", soft),
        ):
            _check_loss(h, "softmax_cross_entropy", (logits, target), "softmax_cross_entropy "
                        + _describe(dtype, logits=logits, target=kind))


@_register("bce_with_logits", ["sega_bce_with_logits"])
def check_bce_with_logits(backend: Backend, dtype) -> None:
    """0/1 and probability targets, one or several outputs; extreme logits stay finite."""
    h = Harness(backend, dtype, _seed("bce_with_logits"))
    for n, k in ((1, 1), (9, 1), (5, 4)):
        logits = h.normal(n, k, scale=2.0)
        if logits.size > 2:
            logits.reshape(-1)[:2] = (1000.0, -1000.0)
        for kind, target in (
            ("0/1", h.rng.integers(0, 2, size=(n, k)).astype(dtype)),
            ("probabilities", h.uniform(n, k)),
        ):
            _check_loss(h, "bce_with_logits", (logits, target), "bce_with_logits " + _describe(dtype, logits=logits, target=kind))


_REGRESSION_SHAPES = ((1, 1), (6, 1), (4, 3))


@_register("mse", ["sega_mse"])
def check_mse(backend: Backend, dtype) -> None:
    """Mean squared error and its gradient against the reference."""
    h = Harness(backend, dtype, _seed("mse"))
    for shape in _REGRESSION_SHAPES:
        pred, target = h.normal(*shape), h.normal(*shape)
        _check_loss(h, "mse", (pred, target), "mse " + _describe(dtype, pred=pred))


@_register("mae", ["sega_mae"])
def check_mae(backend: Backend, dtype) -> None:
    """Mean absolute error, including a residual of exactly 0 (gradient 0 there)."""
    h = Harness(backend, dtype, _seed("mae"))
    for shape in _REGRESSION_SHAPES:
        pred, target = h.normal(*shape), h.normal(*shape)
        target.reshape(-1)[0] = pred.reshape(-1)[0]
        _check_loss(h, "mae", (pred, target), "mae " + _describe(dtype, pred=pred))


@_register("huber", ["sega_huber"])
def check_huber(backend: Backend, dtype) -> None:
    """Huber loss on both sides of ``delta``, for several deltas."""
    h = Harness(backend, dtype, _seed("huber"))
    for shape in _REGRESSION_SHAPES:
        for delta in (1.0, 0.5, 2.5):
            pred, target = h.normal(*shape, scale=2.0), h.normal(*shape)
            _check_loss(h, "huber", (pred, target, delta), "huber " + _describe(dtype, pred=pred, delta=delta))


# --------------------------------------------------------------------------------------------
# Optimizers
# --------------------------------------------------------------------------------------------

_OPT_SIZES = (1, 17, 1001)


def _check_optimizer(h: Harness, kernel_name: str, n_state: int, hyper: dict, steps: int, what: str,
                     compare_state: bool = True, step_arg: bool = False) -> None:
    """Run ``steps`` updates on the backend and the reference; everything must change in place.

    ``hyper`` lists the scalar arguments after the state arrays (and ``step``), in order.
    """
    for size in _OPT_SIZES:
        param = h.normal(size)
        state = [np.zeros(size, h.dtype) for _ in range(n_state)]
        d_param, d_state = h.dev(param), [h.dev(s) for s in state]
        case = f"{what} size={size} {h.dtype.name}"
        for step in range(1, steps + 1):
            grad = h.normal(size)
            d_grad = h.dev(grad)
            # Positional, in the specification's order, as the core calls kernels.
            scalars = ([step] if step_arg else []) + list(hyper.values())
            getattr(h.ref, kernel_name)(param, grad.copy(), *state, *scalars)
            getattr(h.kernels, kernel_name)(d_param, d_grad, *d_state, *scalars)
            h.close(np.asarray(h.backend.to_host(d_param)), param,
                    f"{case} step {step}: param (must be updated in place)")
            if compare_state:
                for i, (d, s) in enumerate(zip(d_state, state)):
                    h.close(np.asarray(h.backend.to_host(d)), s, f"{case} step {step}: state array {i} (updated in place)")
            h.unchanged(d_grad, grad, f"{case}: grad")


@_register("sgd_update", ["sega_sgd_update"])
def check_sgd_update(backend: Backend, dtype) -> None:
    """Plain SGD, momentum and Nesterov momentum over three steps, in place."""
    h = Harness(backend, dtype, _seed("sgd_update"))
    for momentum, nesterov in ((0.0, False), (0.9, False), (0.9, True)):
        hyper = {"lr": 0.1, "momentum": momentum, "nesterov": nesterov}
        _check_optimizer(h, "sgd_update", 1, hyper, 3, f"sgd_update momentum={momentum} nesterov={nesterov}",
                         compare_state=momentum != 0)


@_register("adam_update", ["sega_adam_update"])
def check_adam_update(backend: Backend, dtype) -> None:
    """Adam with bias correction over four steps, two sets of betas, in place."""
    h = Harness(backend, dtype, _seed("adam_update"))
    for beta1, beta2 in ((0.9, 0.999), (0.5, 0.9)):
        hyper = {"lr": 0.01, "beta1": beta1, "beta2": beta2, "eps": 1e-8}
        _check_optimizer(h, "adam_update", 2, hyper, 4, f"adam_update betas=({beta1}, {beta2})", step_arg=True)


@_register("adadelta_update", ["sega_adadelta_update"])
def check_adadelta_update(backend: Backend, dtype) -> None:
    """Adadelta over three steps, in place."""
    h = Harness(backend, dtype, _seed("adadelta_update"))
    for lr, rho in ((1.0, 0.9), (0.5, 0.95)):
        hyper = {"lr": lr, "rho": rho, "eps": 1e-6}
        _check_optimizer(h, "adadelta_update", 2, hyper, 3, f"adadelta_update lr={lr} rho={rho}")


# --------------------------------------------------------------------------------------------
# Gradient checks: the backend's backward kernels against finite differences of its own forward
# kernels, in float64.
# --------------------------------------------------------------------------------------------


def _sample(h: Harness, size: int) -> np.ndarray:
    return np.arange(size) if size <= FD_SAMPLES else h.rng.choice(size, FD_SAMPLES, replace=False)


def _fd_compare(h: Harness, objective: Callable[[list], float], arrays: list[np.ndarray], analytic: list[np.ndarray],
                names: list[str], what: str) -> None:
    """Central differences of ``objective(arrays)`` against ``analytic`` gradients, per array."""
    rtol, atol = FD_TOLERANCE
    for array, grad, name in zip(arrays, analytic, names):
        if grad is None:
            continue
        flat = array.reshape(-1)
        coords = _sample(h, flat.size)
        numeric = np.empty(len(coords))
        for j, idx in enumerate(coords):
            saved = flat[idx]
            flat[idx] = saved + FD_STEP
            up = objective(arrays)
            flat[idx] = saved - FD_STEP
            down = objective(arrays)
            flat[idx] = saved
            numeric[j] = (up - down) / (2 * FD_STEP)
        got = np.asarray(grad, dtype=np.float64).reshape(-1)[coords]
        scale = max(1.0, float(np.max(np.abs(numeric))))
        np.testing.assert_allclose(got, numeric, rtol=rtol, atol=atol * scale,
                                   err_msg=f"{what}: d/d{name} disagrees with finite differences of the forward kernel")


@_register("gradient_dense", ["sega_dense_forward", "sega_dense_backward"], per_dtype=False)
def check_gradient_dense(backend: Backend) -> None:
    """Dense backward against finite differences of dense forward (float64)."""
    h = Harness(backend, np.float64, _seed("gradient_dense"))
    k = h.kernels
    for n, i, o in ((1, 3, 2), (4, 5, 3)):
        x, w, b, r = h.normal(n, i), h.normal(i, o), h.normal(o), h.normal(n, o)

        def objective(arrs):
            return float(np.sum(h.host(k.dense_forward(*[h.dev(a) for a in arrs]), "y") * r))

        dw, db = h.dev(np.zeros_like(w)), h.dev(np.zeros_like(b))
        dx = h.host(k.dense_backward(h.dev(r), h.dev(x), h.dev(w), dw, db, True), "dx")
        _fd_compare(h, objective, [x, w, b], [dx, h.host(dw, "dw"), h.host(db, "db")], ["x", "w", "b"],
                    "gradient_dense " + _describe(None, x=x, w=w))


@_register("gradient_conv2d", ["sega_conv2d_forward", "sega_conv2d_backward"], per_dtype=False)
def check_gradient_conv2d(backend: Backend) -> None:
    """Conv2D backward against finite differences of conv2d forward (float64)."""
    h = Harness(backend, np.float64, _seed("gradient_conv2d"))
    k = h.kernels
    for case in ((2, 2, 5, 4, 3, 3, 2, 1), (1, 3, 4, 6, 2, 2, 1, 0), (1, 1, 3, 3, 2, 3, 1, 2),
                 (1, 2, 5, 6, 2, (3, 2), (2, 1), ((1, 0), (0, 1)))):
        x, w, b, stride, padding = _conv_inputs(h, case)
        xd, wd = h.dev(x), h.dev(w)
        y, ctx = k.conv2d_forward(xd, wd, h.dev(b), stride, padding)
        r = h.normal(*y.shape)

        def objective(arrs):
            return float(np.sum(h.host(k.conv2d_forward(*[h.dev(a) for a in arrs], stride, padding)[0], "y") * r))

        dw, db = h.dev(np.zeros_like(w)), h.dev(np.zeros_like(b))
        dx = h.host(k.conv2d_backward(h.dev(r), xd, wd, stride, padding, ctx, dw, db, True), "dx")
        _fd_compare(h, objective, [x, w, b], [dx, h.host(dw, "dw"), h.host(db, "db")], ["x", "w", "b"],
                    "gradient_conv2d " + _describe(None, x=x, w=w, stride=stride, padding=padding))


@_register("gradient_rnn", ["sega_rnn_forward", "sega_rnn_backward"], per_dtype=False)
def check_gradient_rnn(backend: Backend) -> None:
    """RNN backward (BPTT) against finite differences of rnn forward (float64), smooth activations."""
    h = Harness(backend, np.float64, _seed("gradient_rnn"))
    k = h.kernels
    for case in ((2, 4, 3, 5), (1, 1, 2, 3)):
        for act in ("tanh", "sigmoid", "linear"):
            x, wx, wh, b = _rnn_inputs(h, case)
            devs = [h.dev(a) for a in (x, wx, wh, b)]
            hs, ctx = k.rnn_forward(*devs, act)
            r = h.normal(*hs.shape)

            def objective(arrs):
                return float(np.sum(h.host(k.rnn_forward(*[h.dev(a) for a in arrs], act)[0], "hs") * r))

            dwx, dwh, db = (h.dev(np.zeros_like(a)) for a in (wx, wh, b))
            dx = h.host(k.rnn_backward(h.dev(r), devs[0], devs[1], devs[2], hs, act, ctx, dwx, dwh, db, True), "dx")
            _fd_compare(h, objective, [x, wx, wh, b], [dx, h.host(dwx, "dwx"), h.host(dwh, "dwh"), h.host(db, "db")],
                        ["x", "wx", "wh", "b"], "gradient_rnn " + _describe(None, x=x, activation=act))


@_register("gradient_pooling", ["sega_maxpool2d_forward", "sega_maxpool2d_backward", "sega_avgpool2d_forward",
                                "sega_avgpool2d_backward"], per_dtype=False)
def check_gradient_pooling(backend: Backend) -> None:
    """Pooling backward against finite differences of its forward (float64, no ties)."""
    h = Harness(backend, np.float64, _seed("gradient_pooling"))
    for op in ("maxpool2d", "avgpool2d"):
        forward, backward = getattr(h.kernels, f"{op}_forward"), getattr(h.kernels, f"{op}_backward")
        for shape, pool, stride, padding in _POOL_CASES[2:4]:
            x = h.normal(*shape)
            y, ctx = forward(h.dev(x), pool, stride, padding)
            r = h.normal(*h.host(y, "y").shape)

            def objective(arrs):
                return float(np.sum(h.host(forward(h.dev(arrs[0]), pool, stride, padding)[0], "y") * r))

            dx = h.host(backward(h.dev(r), h.dev(x), pool, stride, padding, ctx), "dx")
            _fd_compare(h, objective, [x], [dx], ["x"], f"gradient_{op} " + _describe(None, x=x, pool=pool))


@_register("gradient_batchnorm", ["sega_batchnorm_forward", "sega_batchnorm_backward"], per_dtype=False)
def check_gradient_batchnorm(backend: Backend) -> None:
    """Batch normalization's training gradients against finite differences (float64)."""
    h = Harness(backend, np.float64, _seed("gradient_batchnorm"))
    for shape in ((5, 3), (2, 3, 2, 2)):
        c = shape[1]
        x, gamma, beta = h.normal(*shape), h.normal(c), h.normal(c)
        r = h.normal(*shape)

        def run(arrs):
            return h.kernels.batchnorm_forward(*[h.dev(a) for a in arrs], h.dev(np.zeros(c)), h.dev(np.ones(c)),
                                               0.9, 1e-3, True)

        def objective(arrs):
            return float(np.sum(h.host(run(arrs)[0], "y") * r))

        _, ctx = run([x, gamma, beta])
        dg, db = h.dev(np.zeros(c)), h.dev(np.zeros(c))
        dx = h.host(h.kernels.batchnorm_backward(h.dev(r), h.dev(x), h.dev(gamma), ctx, dg, db, True), "dx")
        _fd_compare(h, objective, [x, gamma, beta], [dx, h.host(dg, "dgamma"), h.host(db, "dbeta")],
                    ["x", "gamma", "beta"], "gradient_batchnorm " + _describe(None, x=x))


@_register("gradient_recurrent_gates", ["sega_lstm_forward", "sega_lstm_backward", "sega_gru_forward",
                                        "sega_gru_backward"], per_dtype=False)
def check_gradient_recurrent_gates(backend: Backend) -> None:
    """LSTM and GRU backward against finite differences of their forward (float64)."""
    h = Harness(backend, np.float64, _seed("gradient_recurrent_gates"))
    for case in ((2, 3, 3, 4), (1, 1, 2, 3)):
        for name, gates, biases, extra in _gated_variants():
            arrays = _gated_inputs(h, case, gates, biases)
            forward, backward = getattr(h.kernels, f"{name}_forward"), getattr(h.kernels, f"{name}_backward")
            devs = [h.dev(a) for a in arrays]
            hs, ctx = forward(*devs, *extra)
            r = h.normal(*h.host(hs, "hs").shape)

            def objective(arrs):
                return float(np.sum(h.host(forward(*[h.dev(a) for a in arrs], *extra)[0], "hs") * r))

            grads = [h.dev(np.zeros_like(a)) for a in arrays[1:]]
            if name == "gru":
                dx = backward(h.dev(r), *devs, *extra, hs, ctx, *grads, True)
            else:
                dx = backward(h.dev(r), *devs[:3], hs, ctx, *grads, True)
            _fd_compare(h, objective, arrays, [h.host(dx, "dx")] + [h.host(g, "grad") for g in grads],
                        ["x", "wx", "wh", "bx", "bh"] if name == "gru" else ["x", "wx", "wh", "b"],
                        f"gradient_{name}{list(extra)} " + _describe(None, x=arrays[0]))


@_register("gradient_activations", [f"sega_{a}_{d}" for a in ACTIVATIONS for d in ("forward", "backward")],
           per_dtype=False)
def check_gradient_activations(backend: Backend) -> None:
    """Each activation's backward against finite differences of its forward (float64)."""
    h = Harness(backend, np.float64, _seed("gradient_activations"))
    for name in ACTIVATIONS:
        fwd, bwd = getattr(h.kernels, f"{name}_forward"), getattr(h.kernels, f"{name}_backward")
        for alpha in (_LEAKY_ALPHAS if name == "leaky_relu" else (None,)):
            extra = _act_args(name, alpha)
            z = h.normal(3, 5, scale=2.0)
            z[np.abs(z) < 0.05] = 0.5  # keep finite differences away from the kinks at 0
            r = h.normal(3, 5)

            def objective(arrs):
                return float(np.sum(h.host(fwd(h.dev(arrs[0]), *extra), "y") * r))

            y = fwd(h.dev(z), *extra)
            dz = h.host(bwd(h.dev(r), h.dev(z), y, *extra), "dz")
            _fd_compare(h, objective, [z], [dz], ["z"], f"gradient_activations {name} alpha={alpha}")


@_register("gradient_losses", ["sega_softmax_cross_entropy", "sega_bce_with_logits", "sega_mse", "sega_mae", "sega_huber"],
           per_dtype=False)
def check_gradient_losses(backend: Backend) -> None:
    """Each loss's gradient against finite differences of its own loss value (float64)."""
    h = Harness(backend, np.float64, _seed("gradient_losses"))
    k = h.kernels
    n, c = 5, 4
    labels = h.rng.integers(0, c, size=n)
    pred, target = h.normal(n, c), h.normal(n, c)
    resid = pred - target
    # Keep MAE away from |r| = 0 and Huber away from |r| = delta, where the loss has kinks.
    pred[np.abs(resid) < 0.05] += 0.2
    resid = pred - target
    pred[np.abs(np.abs(resid) - 1.0) < 0.05] += 0.2
    weight = h.dev(h.uniform(n, low=0.1, high=3.0))
    cases = [
        ("softmax_cross_entropy", h.normal(n, c, scale=2.0), h.backend.to_device(labels.astype(np.int64)), (None,)),
        ("softmax_cross_entropy", h.normal(n, c, scale=2.0), h.dev(h.rng.dirichlet(np.ones(c), size=n)), (weight,)),
        ("bce_with_logits", h.normal(n, c, scale=2.0), h.dev(h.uniform(n, c)), (None,)),
        ("bce_with_logits", h.normal(n, c, scale=2.0), h.dev(h.uniform(n, c)), (weight,)),
        ("mse", pred, h.dev(target), (weight,)),
        ("mae", pred, h.dev(target), (None,)),
        ("huber", pred, h.dev(target), (1.0, weight)),
    ]
    for name, first, target_dev, extra in cases:
        kernel = getattr(k, name)

        def objective(arrs):
            return float(h.host(kernel(h.dev(arrs[0]), target_dev, *extra)[0], "loss"))

        grad = h.host(kernel(h.dev(first), target_dev, *extra)[1], "grad")
        _fd_compare(h, objective, [first.copy()], [grad], ["input"], f"gradient_losses {name}")


# --------------------------------------------------------------------------------------------
# Whole models: training must learn, float64 training must follow the reference, save/load.
# --------------------------------------------------------------------------------------------


def _blobs(seed: int, n: int = 240, features: int = 4, classes: int = 3):
    """Well separated Gaussian blobs: a problem any working network solves in a few epochs."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=4.0, size=(classes, features))
    y = rng.integers(0, classes, size=n)
    return centers[y] + rng.normal(size=(n, features)), y


def _bars(seed: int, n: int = 160, size: int = 6):
    """Images of one vertical (class 0) or horizontal (class 1) bar, with noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    X = rng.normal(scale=0.2, size=(n, 1, size, size))
    pos = rng.integers(0, size, size=n)
    for i in range(n):
        if y[i]:
            X[i, 0, pos[i], :] += 1.0
        else:
            X[i, 0, :, pos[i]] += 1.0
    return X, y


def _sequences(seed: int, n: int = 200, t: int = 5):
    """Sequences whose label is the sign of their sum."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, t, 1))
    return X, (X.sum(axis=(1, 2)) > 0).astype(np.int64)


_MLP_HOOKS = ["sega_dense_forward", "sega_dense_backward", "sega_relu_forward", "sega_relu_backward",
              "sega_softmax_forward", "sega_softmax_cross_entropy", "sega_dropout_forward",
              "sega_dropout_backward", "sega_make_rng", "sega_adam_update", "sega_to_device", "sega_to_host",
              "sega_array_module"]


@_register("training_mlp", _MLP_HOOKS)
def check_training_mlp(backend: Backend, dtype) -> None:
    """A dense network with dropout learns separable blobs (Adam)."""
    from ..nn.model import NeuralNetwork

    X, y = _blobs(0)
    model = NeuralNetwork([4, 16, 3], dropout_rate=0.1, backend=backend, dtype=dtype, seed=0)
    history = model.train(X, y, epochs=25, batch_size=32, lr=0.01, progress=False)
    assert history["loss"][-1] < history["loss"][0], f"the loss did not decrease: {history['loss']}"
    accuracy = model.evaluate(X, y)["accuracy"]
    assert accuracy >= 0.95, f"a small MLP reached only {accuracy:.3f} training accuracy on separable blobs"
    proba = model.predict_proba(X[:5])
    assert proba.dtype == dtype and np.allclose(proba.sum(axis=1), 1, atol=1e-5)


@_register("training_conv", ["sega_conv2d_forward", "sega_conv2d_backward", "sega_tanh_forward",
                             "sega_tanh_backward", "sega_bce_with_logits", "sega_sgd_update"], per_dtype=False)
def check_training_conv(backend: Backend) -> None:
    """A convolutional network learns to tell vertical from horizontal bars (SGD + momentum)."""
    from ..nn.layers import Conv2D, Dense, Flatten
    from ..nn.model import NeuralNetwork
    from ..nn.optimizers import SGD

    X, y = _bars(1)
    model = NeuralNetwork([Conv2D(4, 3, padding=1, activation="tanh"), Conv2D(4, 3, stride=2, activation="tanh"),
                           Flatten(), Dense(1)], backend=backend, seed=0)
    model.train(X, y, epochs=20, batch_size=16, optimizer=SGD(lr=0.05, momentum=0.9), progress=False)
    accuracy = model.evaluate(X, y)["accuracy"]
    assert accuracy >= 0.95, f"a small conv net reached only {accuracy:.3f} training accuracy on bar images"


@_register("training_rnn", ["sega_rnn_forward", "sega_rnn_backward", "sega_sigmoid_forward",
                            "sega_sigmoid_backward", "sega_leaky_relu_forward", "sega_leaky_relu_backward",
                            "sega_adam_update"], per_dtype=False)
def check_training_rnn(backend: Backend) -> None:
    """A recurrent network learns the sign of a sequence's sum."""
    from ..nn.layers import RNN, Dense
    from ..nn.model import NeuralNetwork

    X, y = _sequences(2)
    model = NeuralNetwork([RNN(8), Dense(8, activation="leaky_relu"), Dense(2, activation="softmax")],
                          backend=backend, seed=0)
    model.train(X, y, epochs=40, batch_size=20, lr=0.03, progress=False)
    accuracy = model.evaluate(X, y)["accuracy"]
    assert accuracy >= 0.93, f"a small RNN reached only {accuracy:.3f} training accuracy on sequence sums"


@_register("training_regression", ["sega_dense_forward", "sega_dense_backward", "sega_sigmoid_forward",
                                   "sega_sigmoid_backward", "sega_mse", "sega_huber", "sega_mae",
                                   "sega_adadelta_update"], per_dtype=False)
def check_training_regression(backend: Backend) -> None:
    """A regressor fits a smooth function with Adadelta, under MSE and Huber losses."""
    from ..nn.model import NeuralNetwork
    from ..nn.optimizers import Adadelta

    rng = np.random.default_rng(3)
    X = rng.uniform(-1, 1, size=(200, 2))
    y = X[:, 0] - 0.5 * X[:, 1] + 0.3
    for loss in ("mse", "huber"):
        model = NeuralNetwork([2, 8, 1], activations=["sigmoid", "linear"], regressor=True, loss_function=loss,
                              backend=backend, seed=0)
        model.train(X, y, epochs=40, batch_size=20, optimizer=Adadelta(lr=1.0), progress=False)
        r2 = model.evaluate(X, y)["r2"]
        assert r2 >= 0.9, f"a small regressor ({loss}) reached only R^2 = {r2:.3f} on a linear function"


@_register("training_matches_numpy", ["sega_dense_forward", "sega_dense_backward", "sega_tanh_forward",
                                      "sega_tanh_backward", "sega_softmax_cross_entropy", "sega_sgd_update"],
           per_dtype=False)
def check_training_matches_numpy(backend: Backend) -> None:
    """In float64, a few epochs on this backend follow the NumPy reference step for step."""
    from ..nn.model import NeuralNetwork
    from ..nn.optimizers import SGD

    X, y = _blobs(4, n=96)
    runs = []
    for name in (backend, REFERENCE):
        model = NeuralNetwork([4, 8, 3], activations=["tanh", "softmax"], backend=name, dtype="float64", seed=5)
        history = model.train(X, y, epochs=4, batch_size=16, optimizer=SGD(lr=0.1, momentum=0.9, nesterov=True),
                              progress=False)
        runs.append((history["loss"], model.get_weights()))
    (loss_b, weights_b), (loss_r, weights_r) = runs
    np.testing.assert_allclose(loss_b, loss_r, rtol=1e-8, err_msg="per-epoch losses differ from the reference's")
    for wb, wr in zip(weights_b, weights_r):
        np.testing.assert_allclose(wb, wr, rtol=1e-7, atol=1e-9, err_msg="trained weights differ from the reference's")


@_register("save_load", ["sega_to_device", "sega_to_host", "sega_dense_forward", "sega_softmax_forward"])
def check_save_load(backend: Backend, dtype) -> None:
    """A model saved on this backend loads on NumPy and back, with identical weights and predictions."""
    from ..nn.model import NeuralNetwork

    X, y = _blobs(5, n=64)
    model = NeuralNetwork([4, 6, 3], backend=backend, dtype=dtype, seed=1)
    model.train(X, y, epochs=2, batch_size=16, progress=False)
    rtol, atol = TOLERANCES[np.dtype(dtype)]
    with tempfile.TemporaryDirectory() as tmp:
        here, there = Path(tmp) / "here.npz", Path(tmp) / "there.npz"
        model.save(here)
        on_numpy = NeuralNetwork.load(here, backend=REFERENCE)
        on_numpy.save(there)
        again = NeuralNetwork.load(there, backend=backend)
    for loaded, label in ((on_numpy, "saved on this backend, loaded on numpy"), (again, "and back again")):
        assert loaded.dtype == np.dtype(dtype), f"{label}: dtype {loaded.dtype}"
        for w0, w1 in zip(model.get_weights(), loaded.get_weights()):
            assert w1.dtype == w0.dtype and np.array_equal(w0, w1), f"{label}: weights changed"
        np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), rtol=rtol, atol=atol * 10,
                                   err_msg=f"{label}: predictions differ")
        assert np.array_equal(loaded.predict(X), model.predict(X)) or (
            np.mean(loaded.predict(X) == model.predict(X)) > 0.98
        ), f"{label}: predicted labels differ"
    assert again.backend.name == backend.name


def checks_by_hook() -> dict[str, list[str]]:
    """For each hook of the contract, the ids of the checks that exercise it."""
    out: dict[str, list[str]] = {h: [] for h in HOOK_NAMES}
    for check in _CHECKS:
        for hook in check.hooks:
            out[hook].append(check.id)
    return out


def describe_checks() -> list[dict[str, Any]]:
    """Id, hooks and description of every check (for documentation and listings)."""
    return [{"id": c.id, "hooks": list(c.hooks), "description": c.description} for c in _CHECKS]
