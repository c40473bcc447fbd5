"""Keep plugins written against an older hook signature working, with a ``DeprecationWarning``.

Two kinds of change to a hook's arguments need help (adding one needs none: implementations may
take fewer arguments than the specification and the core passes only those they name):

* **Renaming** ``old -> new`` (``DEPRECATED_ARGUMENTS[hook][old] = new``). pluggy checks an
  implementation's argument names against the specification when the plugin is registered, so
  an implementation still saying ``old`` would be rejected before the core ever saw it. The
  registry therefore passes every plugin through :func:`translate_plugin` first: an
  implementation using an old name is replaced by a generated function with the new names that
  calls the original with the old ones, and the plugin is registered as a proxy module holding
  those functions. The warning is given when the backend is resolved (first used), naming the
  hook, the old and the new argument names.
* **Removing** ``old`` (``DEPRECATED_ARGUMENTS[hook][old] = None``). During the deprecation
  period the argument stays in the specification, so implementations that take it keep being
  called with it; they get the warning. Implementations that no longer take it are already
  fine. When the next major hook API drops the argument, the entry goes too.
"""

from __future__ import annotations

import keyword
import types
import warnings
from typing import Any, Callable

from .. import hookspecs
from .lazy import RESOLVE_ATTRIBUTE, resolve

#: Attribute on a generated wrapper: ``{old_name: new_name}`` for the names it translates.
RENAMED_ATTRIBUTE = "__sega_renamed__"
#: Attribute on a generated wrapper: the plugin's own function (not ``__wrapped__``, which
#: pluggy would follow to read the argument names, finding the old ones again).
ORIGINAL_ATTRIBUTE = "__sega_original__"

_IMPL_MARKER = hookspecs.PROJECT_NAME + "_impl"


def _argument_names(function: Callable) -> tuple[str, ...]:
    """The positional argument names pluggy will see (it unwraps ``__wrapped__`` as well)."""
    import inspect

    code = inspect.unwrap(function).__code__
    names = tuple(code.co_varnames[: code.co_argcount])
    return names[1:] if inspect.ismethod(function) else names  # a bound method's ``self``


def _renaming_function(hook: str, function: Callable, names: tuple[str, ...], renamed: dict[str, str]) -> Callable:
    """A function taking ``names`` with old names replaced by new ones, calling ``function``."""
    new_names = [renamed.get(n, n) for n in names]
    for name in new_names + list(names):
        # The names come from hookspecs and from a function's code object; check anyway, since
        # they are pasted into generated source.
        if not name.isidentifier() or keyword.iskeyword(name):
            raise ValueError(f"cannot translate argument name {name!r} of {hook}")
    call = ", ".join(f"{old}={new}" for old, new in zip(names, new_names))
    source = f"def {hook}({', '.join(new_names)}):\n    return _original({call})\n"
    namespace: dict[str, Any] = {"_original": function}
    exec(compile(source, f"<sega deprecated-argument shim for {hook}>", "exec"), namespace)  # noqa: S102
    wrapper = namespace[hook]
    wrapper.__doc__ = function.__doc__
    wrapper.__module__ = getattr(function, "__module__", None)
    setattr(wrapper, RENAMED_ATTRIBUTE, {old: renamed[old] for old in names if old in renamed})
    setattr(wrapper, ORIGINAL_ATTRIBUTE, function)
    return wrapper


def translate_function(hook: str, function: Callable) -> Callable:
    """Return ``function``, or a wrapper with current argument names if it uses renamed ones.

    Raises ``ValueError`` if the function uses an old name together with its replacement.
    """
    renamed = {old: new for old, new in hookspecs.DEPRECATED_ARGUMENTS.get(hook, {}).items() if new is not None}
    if not renamed:
        return function
    names = _argument_names(function)
    old = [n for n in names if n in renamed]
    if not old:
        return function
    clash = [n for n in old if renamed[n] in names]
    if clash:
        raise ValueError(
            f"{hook} takes both {clash[0]!r} and its new name {renamed[clash[0]]!r}; keep only {renamed[clash[0]]!r}"
        )
    wrapper = _renaming_function(hook, function, names, renamed)
    if getattr(function, RESOLVE_ATTRIBUTE, None) is not None:
        # A lazy kernel: the real kernel (imported when the backend is resolved) takes the old
        # names too, so translate it as well.
        setattr(wrapper, RESOLVE_ATTRIBUTE, lambda: _renaming_function(hook, resolve(function), names, renamed))
    # The hookimpl options (tryfirst, ...) travel with the function pluggy inspects.
    opts = getattr(function, _IMPL_MARKER, None)
    if opts is not None:
        setattr(wrapper, _IMPL_MARKER, opts)
    return wrapper


def translate_plugin(plugin: Any) -> Any:
    """Return ``plugin`` itself, or a proxy module whose deprecated-name hooks are translated.

    Only attributes carrying the ``@hookimpl`` marker and named after a hook with renamed
    arguments are looked at; a plugin that uses no old name is returned unchanged.
    """
    replaced: dict[str, Callable] = {}
    for hook, renames in hookspecs.DEPRECATED_ARGUMENTS.items():
        if not any(new is not None for new in renames.values()):
            continue
        function = getattr(plugin, hook, None)
        if function is None or getattr(function, _IMPL_MARKER, None) is None:
            continue
        translated = translate_function(hook, function)
        if translated is not function:
            replaced[hook] = translated
    if not replaced:
        return plugin
    proxy = types.ModuleType(
        getattr(plugin, "__name__", type(plugin).__name__),
        f"{plugin!r} with hook implementations translated from deprecated argument names",
    )
    for attribute in dir(plugin):
        value = getattr(plugin, attribute, None)
        if attribute.startswith(hookspecs.PROJECT_NAME + "_") and getattr(value, _IMPL_MARKER, None) is not None:
            setattr(proxy, attribute, replaced.get(attribute, value))
    setattr(proxy, ORIGINAL_ATTRIBUTE, plugin)
    return proxy


def warn_deprecated(hook: str, function: Callable, argnames: tuple[str, ...], owner: str, stacklevel: int) -> None:
    """Warn if ``function`` (an implementation of ``hook``) uses a renamed or removed argument."""
    messages = []
    for old, new in getattr(function, RENAMED_ATTRIBUTE, {}).items():
        messages.append(f"argument {old!r} of {hook} was renamed {new!r}")
    for old, new in hookspecs.DEPRECATED_ARGUMENTS.get(hook, {}).items():
        if new is None and old in argnames:
            messages.append(f"argument {old!r} of {hook} is deprecated and will be removed")
    if messages:
        major = int(hookspecs.HOOK_API_VERSION.split(".")[0]) + 1
        warnings.warn(
            f"sega backend {owner!r}: " + "; ".join(messages) + f"; update the plugin: hook API {major}.0 will "
            "no longer accept the old form",
            DeprecationWarning,
            stacklevel=stacklevel + 1,
        )
