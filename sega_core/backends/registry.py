"""Finding, validating and keeping backend plugins.

Backends come from the ``sega.backends`` entry-point group (or :meth:`BackendRegistry.register`
for tests and embedders). Loading is isolated: a plugin that fails to import, implements a hook
that does not exist, was written for another major hook-API version, or implements half of a
kernel family is reported -- with a :class:`SegaPluginWarning` and in :func:`list_backends` --
and skipped; the core carries on. ``SEGA_STRICT_PLUGINS=1`` turns those reports into exceptions.
``SEGA_DISABLE_PLUGINS=name,name`` skips the named entry points without importing them.
"""

from __future__ import annotations

import os
import threading
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from .. import hookspecs
from ..errors import (
    BackendUnavailableError,
    NoBackendInstalledError,
    PluginLoadError,
    SegaPluginWarning,
    UnknownBackendError,
)
from .deprecation import translate_plugin
from .dispatch import KERNEL_HOOKS, Backend, check_families, incomplete_reason, missing_hooks, resolve_backend

ENTRY_POINT_GROUP = "sega.backends"
REFERENCE_BACKEND = "numpy"
STRICT_ENV = "SEGA_STRICT_PLUGINS"
DISABLE_ENV = "SEGA_DISABLE_PLUGINS"

#: pip lines for the backends this project ships, used in "not installed" messages.
KNOWN_BACKENDS = {
    "numpy": 'pip install "sega-core[numpy]"',
    "numba": 'pip install "sega-core[numba]"',
    "cupy": 'pip install "sega-core[cupy]" cupy-cuda12x',
}


@dataclass
class BackendRecord:
    """What the core knows of one backend plugin, whether or not it loaded."""

    name: str
    distribution: str | None = None
    version: str | None = None
    status: str = "ok"  # "ok", "unavailable" or "failed"
    reason: str | None = None
    plugin: Any = None
    info: dict = field(default_factory=dict)
    implemented: tuple[str, ...] = ()

    @property
    def device(self) -> str:
        """Where the backend's arrays live (``"cpu"`` unless its info says otherwise)."""
        return str(self.info.get("device", "cpu"))


def _strict() -> bool:
    return os.environ.get(STRICT_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def _disabled() -> set[str]:
    return {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}


def _major(version: str) -> str:
    return str(version).split(".", 1)[0]


def _plugin_call(function):
    """Run code a plugin supplies; return ``(result, None)``, or ``(None, what it raised)``.

    Anything but Ctrl-C is the plugin's failure: a plugin that calls ``sys.exit()`` while it is
    imported or probed must be skipped like any broken plugin, not end the user's program.
    """
    try:
        return function(), None
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        return None, exc


class BackendRegistry:
    """Every backend plugin known to this process, and the resolved backends built from them."""

    def __init__(self, group: str = ENTRY_POINT_GROUP, autoload: bool = True) -> None:
        self.group = group
        self.autoload = autoload
        self._lock = threading.RLock()
        self._reset()

    def _reset(self) -> None:
        self.plugin_manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.plugin_manager.add_hookspecs(hookspecs)
        self._records: dict[str, BackendRecord] = {}
        self._resolved: dict[str, Backend] = {}
        self._loaded = False
        self._scanning = False

    # ---- loading --------------------------------------------------------------------------

    def _ensure_loaded(self) -> None:
        if self._loaded:  # set only once a scan has finished, so this read needs no lock
            return
        with self._lock:  # other threads wait here until the scan is over
            # The RLock lets the scanning thread back in: a plugin whose import reaches back into
            # the registry sees the backends loaded so far and must not start a second scan.
            if self._loaded or self._scanning:
                return
            self._scanning = True
            try:
                if self.autoload:
                    self._load_entry_points()
            except BaseException:
                # Strict mode raised half-way through. Keeping what had loaded would make the
                # next call succeed silently with a partial set of backends: start over instead.
                self._reset()
                raise
            else:
                self._loaded = True
            finally:
                self._scanning = False

    def _load_entry_points(self) -> None:
        disabled = _disabled()
        for ep in sorted(metadata.entry_points(group=self.group), key=lambda e: e.name):
            if ep.name in disabled:
                continue
            dist = getattr(ep, "dist", None)
            dist_name = dist.metadata["Name"] if dist is not None else None
            dist_version = dist.version if dist is not None else None
            plugin, exc = _plugin_call(ep.load)
            if exc is not None:  # a broken plugin must not take the core down
                self._fail(
                    BackendRecord(ep.name, dist_name, dist_version),
                    f"failed to import {ep.value!r}: {type(exc).__name__}: {exc}",
                    exc,
                )
                continue
            self._add(plugin, ep.name, dist_name, dist_version)

    def register(self, plugin: Any, name: str | None = None) -> BackendRecord:
        """Register a backend object or module by hand (tests, embedders, notebooks).

        Returns its record; a plugin that fails validation is recorded as ``failed`` (or raises
        :class:`PluginLoadError` in strict mode), exactly as one found through an entry point.
        """
        self._ensure_loaded()
        with self._lock:
            return self._add(plugin, name, None, None)

    def unregister(self, name: str) -> None:
        """Forget the backend ``name`` (and its resolved dispatch table)."""
        with self._lock:
            record = self._records.pop(name, None)
            self._resolved.pop(name, None)
            # Fallback tables of other backends may hold this one's kernels.
            if name == REFERENCE_BACKEND:
                self._resolved.clear()
            if record is not None and record.plugin is not None:
                if self.plugin_manager.is_registered(record.plugin):
                    self.plugin_manager.unregister(record.plugin)

    def _add(self, plugin, name, dist_name, dist_version) -> BackendRecord:
        record = BackendRecord(name or "?", dist_name, dist_version, plugin=plugin)
        if name is not None and name in self._records:
            other = self._records[name]
            return self._fail(
                record,
                f"backend name {name!r} is already taken by {other.distribution or 'another plugin'}",
            )
        try:
            # Hooks that still use a renamed argument are translated first: pluggy would reject
            # them (see .deprecation); the warning comes when the backend is resolved.
            plugin = record.plugin = translate_plugin(plugin)
            self.plugin_manager.register(plugin, name=f"sega-backend:{name or id(plugin)}")
        except Exception as exc:  # pluggy's validation: wrong argument names and the like
            return self._fail(record, f"invalid hook implementation: {exc}", exc)
        try:
            self.plugin_manager.check_pending()
        except Exception as exc:  # a misspelt hook would otherwise be ignored silently
            self.plugin_manager.unregister(plugin)
            return self._fail(record, f"implements an unknown hook: {exc}", exc)

        impls = self.hookimpls(plugin)
        problem = None
        info = None
        if "sega_backend_info" not in impls:
            problem = "does not implement sega_backend_info"
        else:
            info, exc = _plugin_call(lambda: dict(impls["sega_backend_info"].function()))
            if exc is not None:
                problem = f"sega_backend_info raised {type(exc).__name__}: {exc}"
        if problem is None:
            record.info = info
            declared = str(info.get("name", ""))
            if name is None:
                record.name = name = declared
            if not declared or declared != name:
                problem = f"declares the name {declared!r} but is registered as {name!r}"
            elif _major(info.get("hook_api", "?")) != _major(hookspecs.HOOK_API_VERSION):
                problem = (
                    f"was written for sega hook API {info.get('hook_api', '?')}, but this "
                    f"sega-core speaks hook API {hookspecs.HOOK_API_VERSION}; upgrade the "
                    f"plugin or install a sega-core of the matching major version"
                )
            elif "sega_backend_available" not in impls:
                problem = "does not implement sega_backend_available"
            else:
                problem = check_families(impls)
        if problem is not None:
            self.plugin_manager.unregister(plugin)
            return self._fail(record, problem)

        record.version = record.version or str(info.get("version", "?"))
        record.implemented = tuple(h for h in KERNEL_HOOKS if h in impls)
        self._records[name] = record
        return record

    def _fail(self, record: BackendRecord, reason: str, exc: BaseException | None = None):
        # pluggy's validation messages span several lines; the listing, the warning and
        # `sega: error: ...` each show a reason on one line.
        reason = " ".join(str(reason).split())
        record.status, record.reason, record.plugin = "failed", reason, None
        label = record.name + (f" ({record.distribution} {record.version})" if record.distribution else "")
        if _strict():
            raise PluginLoadError(f"sega backend plugin {label} {reason}") from exc
        warnings.warn(
            f"sega backend plugin {label} was skipped: {reason} (set {STRICT_ENV}=1 to raise)",
            SegaPluginWarning,
            stacklevel=3,
        )
        if record.name not in self._records:
            self._records[record.name] = record
        return record

    # ---- queries --------------------------------------------------------------------------

    def hookimpls(self, plugin) -> dict[str, pluggy.HookImpl]:
        """The hook implementations ``plugin`` registered, by hook name."""
        found = {}
        for caller in self.plugin_manager.get_hookcallers(plugin) or ():
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin:
                    found[caller.name] = impl
        return found

    def records(self) -> list[BackendRecord]:
        """Every backend seen, sorted by name, with its availability probed now."""
        self._ensure_loaded()
        with self._lock:
            records = sorted(self._records.values(), key=lambda r: r.name)
        for record in records:
            if record.status != "failed":
                reason = self._probe(record)
                if reason is None:
                    # get() refuses a backend that lacks hooks nothing can stand in for (a GPU
                    # backend's missing kernels); the listing must not call it "ok".
                    missing = missing_hooks(self.hookimpls(record.plugin), self._reference_for(record),
                                            record.info.get("hook_api"))
                    if missing:
                        reason = incomplete_reason(record.device, missing)
                record.status, record.reason = ("ok", None) if reason is None else ("unavailable", reason)
        return records

    def names(self) -> list[str]:
        """Names of the backends that loaded (available or not)."""
        self._ensure_loaded()
        with self._lock:  # another thread may be registering a backend
            return sorted(n for n, r in self._records.items() if r.status != "failed")

    def _probe(self, record: BackendRecord) -> str | None:
        reason, exc = _plugin_call(self.hookimpls(record.plugin)["sega_backend_available"].function)
        if exc is not None:
            return f"its availability probe raised {type(exc).__name__}: {exc}"
        return None if reason is None else str(reason)

    def get(self, name: str) -> Backend:
        """The resolved backend ``name``; raises a clear error if unknown or unusable."""
        resolved = self._resolved.get(name)
        if resolved is not None:
            return resolved
        self._ensure_loaded()
        with self._lock:
            if name in self._resolved:
                return self._resolved[name]
            record = self._records.get(name)
            if record is None:
                raise self._unknown(name)
            if record.status == "failed":
                raise BackendUnavailableError(f"backend {name!r} failed to load: {record.reason}")
            reason = self._probe(record)
            if reason is not None:
                raise BackendUnavailableError(f"backend {name!r} is installed but unavailable: {reason}")
            reference = self._reference_for(record)
            backend = resolve_backend(name, record.info, self.hookimpls(record.plugin), reference)
            self._resolved[name] = backend
            return backend

    def _reference_for(self, record: BackendRecord) -> dict[str, pluggy.HookImpl] | None:
        """The reference's implementations ``record`` may fall back on (CPU backends only)."""
        if record.name == REFERENCE_BACKEND or record.device != "cpu":
            return None
        ref = self._records.get(REFERENCE_BACKEND)
        if ref is None or ref.status == "failed":
            return None
        return self.hookimpls(ref.plugin)

    def _unknown(self, name: str) -> Exception:
        installed = self.names()
        if not installed:
            return NoBackendInstalledError()
        hint = KNOWN_BACKENDS.get(name)
        message = f"unknown backend {name!r}; installed backends: {', '.join(installed)}"
        if hint:
            message += f". Install it with {hint}"
        return UnknownBackendError(message)


_registry: BackendRegistry | None = None
_registry_lock = threading.Lock()


def get_registry() -> BackendRegistry:
    """The process-wide registry, created (and entry points scanned) on first use."""
    global _registry
    if _registry is None:
        with _registry_lock:
            if _registry is None:
                _registry = BackendRegistry()
    return _registry


def refresh_backends() -> BackendRegistry:
    """Forget every loaded backend and scan the entry points again (after a pip install)."""
    global _registry
    with _registry_lock:
        _registry = BackendRegistry()
    return _registry


def list_backends() -> list[dict]:
    """Describe every backend: name, distribution, version, status, reason, kernel coverage.

    ``status`` is ``"ok"``, ``"unavailable"`` (``reason`` says why) or ``"failed"`` (the plugin
    could not be loaded; ``reason`` holds the error). ``kernels`` maps each kernel to where it
    comes from: the backend's own name, ``"numpy"`` for a fallback to the reference, or
    ``"missing"``.
    """
    registry = get_registry()
    out = []
    records = registry.records()
    reference = next((r for r in records if r.name == REFERENCE_BACKEND and r.status != "failed"), None)
    for record in records:
        kernels = {}
        if record.status != "failed":
            for hook in KERNEL_HOOKS:
                kernel = hook[len("sega_"):]
                if hook in record.implemented:
                    kernels[kernel] = record.name
                elif record.device == "cpu" and reference is not None and hook in reference.implemented:
                    kernels[kernel] = REFERENCE_BACKEND
                else:
                    kernels[kernel] = "missing"
        out.append(
            {
                "name": record.name,
                "distribution": record.distribution,
                "version": record.version,
                "device": record.device if record.status != "failed" else None,
                "status": record.status,
                "reason": record.reason,
                "description": record.info.get("description", ""),
                "kernels": kernels,
            }
        )
    return out
