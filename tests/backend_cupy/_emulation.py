"""The cupy backend's own implementation modules imported against a CPU stand-in for cupy.

Shared by this folder's ``conftest.py`` (the ``cpu-emulation`` side of every agreement test),
the launch and host-synchronisation counters (``_counting.py``) and the GPU proof's dry run.
Loaded by path (the test folders are not packages): ``load_sibling("_emulation.py")``.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import types
from pathlib import Path

import numpy as np

from sega_core.backends.dispatch import KERNEL_HOOKS, OPTIONAL_SERVICE_HOOKS, SERVICE_HOOKS
from sega_core.backends.lazy import RESOLVE_ATTRIBUTE

HERE = Path(__file__).resolve().parent
_IMPLEMENTATION_PREFIX = "sega_backend_cupy."
_LIGHT_MODULES = {"sega_backend_cupy.plugin", "sega_backend_cupy.probe"}


def load_sibling(filename: str, name: str | None = None):
    """Import ``filename`` from this folder as a module of its own (cached in ``sys.modules``)."""
    name = name or f"sega_cupy_tests_{Path(filename).stem.lstrip('_')}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / filename)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load_emulator_module():
    """``_cuda_emulator.py``, the CPU stand-in for cupy."""
    return load_sibling("_cuda_emulator.py", "sega_cupy_tests_cuda_emulator")


def lazy_targets() -> dict[str, str]:
    """Every hook the plugin declares -> its ``"module:function"`` target (no import)."""
    from sega_backend_cupy import plugin

    targets = {}
    for hook in KERNEL_HOOKS + SERVICE_HOOKS + OPTIONAL_SERVICE_HOOKS:
        stub = getattr(plugin, hook, None)
        resolver = getattr(stub, RESOLVE_ATTRIBUTE, None)
        if resolver is not None:
            targets[hook] = resolver.args[0]
    return targets


@contextlib.contextmanager
def private_imports(fake_cupy):
    """Import the implementation modules with ``cupy`` bound to ``fake_cupy``, then put every
    module (and the package's attributes) back as they were."""
    import sega_backend_cupy as package

    def ours(name):
        return name == "cupy" or name.startswith("cupy.") or (
            name.startswith(_IMPLEMENTATION_PREFIX) and name not in _LIGHT_MODULES
        )

    saved = {name: mod for name, mod in sys.modules.items() if ours(name)}
    saved_attrs = dict(vars(package))
    for name in saved:
        del sys.modules[name]
    sys.modules["cupy"] = fake_cupy
    try:
        yield
    finally:
        for name in [n for n in sys.modules if ours(n)]:
            del sys.modules[name]
        sys.modules.update(saved)
        for key in [k for k in vars(package) if k not in saved_attrs]:
            delattr(package, key)
        for key, value in saved_attrs.items():
            setattr(package, key, value)


def import_against(fake_cupy, modules=()) -> tuple[dict, dict]:
    """``(hook -> function, module name -> module)``: every hook's implementation, and the
    extra implementation ``modules`` asked for, imported with ``cupy`` bound to ``fake_cupy``."""
    functions, loaded = {}, {}
    with private_imports(fake_cupy):
        for hook, target in lazy_targets().items():
            module_name, _, attribute = target.partition(":")
            functions[hook] = getattr(importlib.import_module(module_name), attribute)
        for name in modules:
            loaded[name] = importlib.import_module(name)
    return functions, loaded


def namespace(functions: dict, xp, name: str = "cpu-emulation", modules: dict | None = None):
    """The interface the agreement tests use (``kernels``, ``to_device``, ``xp``, ``is_gpu``...)."""
    kernels = types.SimpleNamespace(**{h[len("sega_"):]: functions[h] for h in KERNEL_HOOKS})
    return types.SimpleNamespace(
        name=name,
        kernels=kernels,
        xp=xp,
        array_module=functions["sega_array_module"](),
        to_device=functions["sega_to_device"],
        to_host=functions["sega_to_host"],
        make_rng=functions["sega_make_rng"],
        stream_to_device=functions.get("sega_stream_to_device"),
        modules=modules or {},
        is_gpu=False,
    )


def emulated_backend(workdir: Path, modules=()):
    """The cupy backend's kernels running on the CPU emulation of cupy.

    ``modules`` names implementation modules (``"sega_backend_cupy.dense"``...) to import too,
    for tests of functions that are not hooks; they are in ``.modules``.
    """
    fake = load_emulator_module().make_fake_cupy(workdir)
    functions, loaded = import_against(fake, modules)
    # Arrays are NumPy arrays here; the core's glue (concatenate, take...) is NumPy's.
    return namespace(functions, np, modules=loaded)


def as_backend(impl, name: str = "cupy-emulated"):
    """An emulated ``impl`` wrapped as a sega ``Backend`` (not a registered plugin)."""
    from sega_core.backends.dispatch import Backend, KernelTable

    kernels = vars(impl.kernels)
    services = {"sega_to_device": impl.to_device, "sega_to_host": impl.to_host, "sega_make_rng": impl.make_rng,
                "sega_stream_to_device": impl.stream_to_device}
    info = {"name": name, "version": "0", "hook_api": "1.0", "device": "cpu"}
    return Backend(name, info, impl.xp, KernelTable(kernels, dict.fromkeys(kernels, "cupy")), services)
