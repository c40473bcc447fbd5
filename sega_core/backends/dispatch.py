"""Resolve a backend's hook implementations, once, into a plain table of kernels.

The training loop calls ``backend.kernels.dense_forward(x, w, b)``: an attribute lookup and a
plain function call. Pluggy is consulted only here, when a backend is first used.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from typing import Any, Callable

import numpy as np
import pluggy

from .. import hookspecs
from ..errors import BackendError, BackendUnavailableError
from .deprecation import warn_deprecated
from .lazy import resolve

_SERVICE_HOOKS = (
    "sega_backend_info",
    "sega_backend_available",
    "sega_array_module",
    "sega_to_device",
    "sega_to_host",
    "sega_make_rng",
    "sega_compute_context",
    "sega_stream_to_device",
)

#: Every kernel hook, in the order of ``hookspecs``: the rows of a dispatch table.
KERNEL_HOOKS: tuple[str, ...] = tuple(
    name
    for name, obj in vars(hookspecs).items()
    if name.startswith("sega_") and callable(obj) and name not in _SERVICE_HOOKS
)

#: Hooks a backend may leave out whatever its device: the core then does without them.
OPTIONAL_SERVICE_HOOKS = ("sega_compute_context", "sega_stream_to_device")

#: Hooks a backend needs besides kernels; a CPU backend may take them from the reference.
SERVICE_HOOKS = tuple(h for h in _SERVICE_HOOKS[2:] if h not in OPTIONAL_SERVICE_HOOKS)

#: Kernel families: implemented together or not at all (a forward may hand ``ctx`` to its
#: backward; an activation's derivative must match its forward).
FAMILIES: tuple[tuple[str, str], ...] = tuple(
    (name, name[: -len("_forward")] + "_backward")
    for name in KERNEL_HOOKS
    if name.endswith("_forward")
)

_SPEC_ARGS = {name: tuple(inspect.signature(getattr(hookspecs, name)).parameters) for name in KERNEL_HOOKS + SERVICE_HOOKS + OPTIONAL_SERVICE_HOOKS}


def spec_arguments(hook: str) -> tuple[str, ...]:
    """The argument names of ``hook``'s specification, in order."""
    return _SPEC_ARGS[hook]


def check_families(impls: dict[str, Any]) -> str | None:
    """Return a complaint if ``impls`` holds one half of a kernel family, else ``None``."""
    for forward, backward in FAMILIES:
        if (forward in impls) != (backward in impls):
            have, lack = (forward, backward) if forward in impls else (backward, forward)
            return f"implements {have} without {lack}; kernel families must be implemented together"
    return None


class KernelTable:
    """The kernels of one backend, as plain attributes (``table.dense_forward(...)``).

    Attribute names are the hook names without their ``sega_`` prefix. ``sources`` maps each
    kernel to the backend whose implementation was chosen.
    """

    __slots__ = tuple(h[len("sega_"):] for h in KERNEL_HOOKS) + ("sources",)

    def __init__(self, kernels: dict[str, Callable], sources: dict[str, str]) -> None:
        for name, fn in kernels.items():
            setattr(self, name, fn)
        self.sources = dict(sources)

    def __repr__(self) -> str:
        own = sum(1 for s in self.sources.values() if s != "numpy")
        return f"<KernelTable {len(self.sources)} kernels, {own} not from numpy>"


class Backend:
    """A usable backend: its identity, array module, host/device copies and kernel table."""

    def __init__(self, name: str, info: dict, xp: Any, kernels: KernelTable, services: dict[str, Callable]):
        self.name = name
        self.info = dict(info)
        self.device = str(info.get("device", "cpu"))
        self.xp = xp
        self.kernels = kernels
        self.to_device: Callable = services["sega_to_device"]
        self.to_host: Callable = services["sega_to_host"]
        self.make_rng: Callable = services["sega_make_rng"]
        context = services.get("sega_compute_context")
        #: ``with backend.compute_context():`` around a train/predict/evaluate call.
        self.compute_context: Callable = (lambda: context() or contextlib.nullcontext()) if context else contextlib.nullcontext
        #: ``backend.stream_to_device(chunks)``: tuples of host arrays in, tuples of device arrays out.
        self.stream_to_device: Callable = services.get("sega_stream_to_device") or self._chunks_to_device

    def _chunks_to_device(self, chunks):
        """Each tuple's arrays copied as it is asked for (no stream hook): nothing read ahead."""
        for chunk in chunks:
            yield tuple(None if a is None else self.as_device(a) for a in chunk)

    @functools.cached_property
    def device_array_type(self) -> type | None:
        """The type of this backend's arrays where they are not NumPy's (``cupy.ndarray``), else ``None``."""
        kind = type(self.xp.empty(0))
        return None if kind is np.ndarray else kind

    def holds(self, a) -> bool:
        """Whether ``a`` is already one of this backend's device arrays (data it uses where they are)."""
        kind = self.device_array_type
        return kind is not None and isinstance(a, kind)

    def as_device(self, a):
        """``a`` on the device: itself where :meth:`holds` says it is there, else ``to_device(a)``."""
        return a if self.holds(a) else self.to_device(a)

    def __repr__(self) -> str:
        return f"<sega Backend {self.name!r} ({self.device})>"


def _adapt(hook: str, impl: pluggy.HookImpl, owner: str, fallback: Callable | None = None) -> Callable:
    """The implementation's function, wrapped only if it takes fewer arguments than the spec.

    An implementation that uses a deprecated argument name reaches here already translated to
    the current names (see :mod:`.deprecation`); this is where its backend gets the warning.
    One that leaves out an argument added later (``hookspecs.OPTIONAL_ARGUMENTS``) is called
    only while that argument is ``None``; otherwise the call goes to ``fallback`` (the NumPy
    reference's kernel, for a CPU backend) or fails with an error naming what is missing.
    """
    warn_deprecated(hook, impl.function, impl.argnames, owner, stacklevel=4)
    try:
        function = resolve(impl.function)
    except Exception as exc:
        # A lazy kernel's module is imported only now; its failure must reach the user as a
        # sega error naming the backend and the hook, not as a bare ImportError from deep inside.
        raise BackendUnavailableError(
            f"backend {owner!r} cannot be used: importing the kernel behind {hook} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    spec = spec_arguments(hook)
    wanted = tuple(impl.argnames)
    if wanted == spec:
        return function
    positions = [spec.index(a) for a in wanted]
    names = impl.argnames
    added = hookspecs.OPTIONAL_ARGUMENTS.get(hook, {})
    unsupported = [(spec.index(a), a) for a in added if a not in wanted]

    def adapted(*args):
        for i, name in unsupported:
            if i < len(args) and args[i] is not None:
                if fallback is not None:
                    return fallback(*args)
                raise BackendError(
                    f"backend {owner!r} cannot do this: its {hook} does not take {name!r} (added in hook API "
                    f"{added[name]}); use another backend, or upgrade the plugin"
                )
        return function(**{n: args[i] for n, i in zip(names, positions)})

    adapted.__name__ = adapted.__qualname__ = hook
    adapted.__wrapped__ = function
    return adapted


def _version(text) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in str(text).split("."))
    except ValueError:
        return (0,)


def newer_hooks(hook_api) -> set[str]:
    """Kernel hooks added after hook API version ``hook_api`` (a backend written for it may lack them)."""
    have = _version(hook_api)
    return {hook for hook, added in hookspecs.ADDED_HOOKS.items() if _version(added) > have}


def missing_hooks(impls: dict[str, Any], reference: dict[str, Any] | None, hook_api=None) -> list[str]:
    """Kernel and service hooks found neither in ``impls`` nor in ``reference`` (if given),
    leaving out those added after the backend's ``hook_api``."""
    optional = newer_hooks(hook_api) if hook_api is not None else set()
    return [h for h in KERNEL_HOOKS + SERVICE_HOOKS
            if h not in impls and (reference is None or h not in reference) and h not in optional]


def _unavailable(hook: str, owner: str, hook_api) -> Callable:
    """A table entry for a kernel a backend written for an older hook API does not have."""

    def kernel(*args, **kwargs):
        raise BackendError(
            f"backend {owner!r} (written for hook API {hook_api}) has no {hook}, added in hook API "
            f"{hookspecs.ADDED_HOOKS[hook]}; this model needs it: use another backend, or upgrade the plugin"
        )

    kernel.__name__ = kernel.__qualname__ = hook
    return kernel


def incomplete_reason(device: str, missing: list[str]) -> str:
    """Why a backend lacking the hooks ``missing`` cannot be used, and what would fix it."""
    if device == "cpu":
        fix = "install the NumPy reference backend (pip install sega-backend-numpy) for fallbacks"
    else:
        fix = f"a backend on device {device!r} must implement every kernel itself"
    return f"it lacks {', '.join(missing)}; {fix}"


def resolve_backend(
    name: str,
    info: dict,
    impls: dict[str, pluggy.HookImpl],
    reference: dict[str, pluggy.HookImpl] | None,
) -> Backend:
    """Build the :class:`Backend` for ``name`` from its hook implementations.

    ``reference`` holds the NumPy reference's implementations for a CPU backend's fallbacks
    (``None`` for the reference itself and for non-CPU backends, which must be complete).
    """
    device = str(info.get("device", "cpu"))
    chosen: dict[str, Callable] = {}
    sources: dict[str, str] = {}
    missing = missing_hooks(impls, reference, info.get("hook_api"))
    if missing:
        # Checked before any kernel is adapted, so nothing lazy is imported for a refused backend.
        raise BackendError(f"backend {name!r} cannot be used: {incomplete_reason(device, missing)}")
    for hook in KERNEL_HOOKS + SERVICE_HOOKS:
        if hook in impls:
            fallback = None
            if reference and hook in reference and hook in hookspecs.OPTIONAL_ARGUMENTS:
                fallback = _adapt(hook, reference[hook], "numpy")
            chosen[hook], sources[hook] = _adapt(hook, impls[hook], name, fallback), name
        elif reference and hook in reference:
            chosen[hook], sources[hook] = _adapt(hook, reference[hook], "numpy"), "numpy"
        else:  # added after the backend's hook API (missing_hooks let it through)
            chosen[hook], sources[hook] = _unavailable(hook, name, info.get("hook_api")), "missing"
    for hook in OPTIONAL_SERVICE_HOOKS:  # a backend's own, never the reference's
        if hook in impls:
            chosen[hook] = _adapt(hook, impls[hook], name)
    xp = chosen.pop("sega_array_module")()
    kernels = KernelTable(
        {h[len("sega_"):]: chosen[h] for h in KERNEL_HOOKS},
        {h[len("sega_"):]: sources[h] for h in KERNEL_HOOKS},
    )
    return Backend(name, info, xp, kernels, chosen)
