"""Fixtures for the cupy backend's tests: the kernels under test, on the GPU or emulated on CPU.

``impl`` is parametrised twice:

* ``"gpu"``: the real backend, ``sega_core.get_backend("cupy")``. Skipped only when the
  plugin's own probe finds no CUDA device (driver missing or zero devices); with a device, a
  missing or broken cupy is a failure, not a skip.
* ``"cpu-emulation"``: the backend's own implementation modules imported against a CPU
  stand-in for cupy (``_cuda_emulator.py``) that runs the backend's CUDA kernel source compiled
  with g++. Skipped only when no g++ is installed. The real modules in ``sys.modules`` are left
  untouched: the emulated copies are imported privately and the originals restored.

Both expose the same interface (``kernels``, ``to_device``, ``to_host``, ``make_rng``, ``xp``,
``is_gpu``), so every agreement test runs unchanged on either; ``backend`` wraps either as a
sega ``Backend`` for whole models and the core's conformance suite.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from sega_core.backends.dispatch import KERNEL_HOOKS, SERVICE_HOOKS
from sega_core.backends.lazy import RESOLVE_ATTRIBUTE

GPU_SKIP_REASON = "no CUDA device: the CuPy GPU checks need one"
EMULATION_SKIP_REASON = "no C++ compiler (g++): the CPU emulation of the CUDA kernels needs one"

_IMPLEMENTATION_PREFIX = "sega_backend_cupy."
_LIGHT_MODULES = {"sega_backend_cupy.plugin", "sega_backend_cupy.probe"}


def _load_emulator_module():
    path = Path(__file__).with_name("_cuda_emulator.py")
    spec = importlib.util.spec_from_file_location("sega_cupy_tests_cuda_emulator", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lazy_targets() -> dict[str, str]:
    """Every hook the plugin declares -> its ``"module:function"`` target (no import)."""
    from sega_backend_cupy import plugin

    targets = {}
    for hook in KERNEL_HOOKS + SERVICE_HOOKS:
        stub = getattr(plugin, hook, None)
        resolver = getattr(stub, RESOLVE_ATTRIBUTE, None)
        if resolver is not None:
            targets[hook] = resolver.args[0]
    return targets


@contextlib.contextmanager
def _private_imports(fake_cupy):
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


def emulated_backend(workdir: Path):
    """The cupy backend's kernels running on the CPU emulation of cupy."""
    emulator = _load_emulator_module()
    fake = emulator.make_fake_cupy(workdir)
    functions = {}
    with _private_imports(fake):
        for hook, target in lazy_targets().items():
            module_name, _, attribute = target.partition(":")
            functions[hook] = getattr(importlib.import_module(module_name), attribute)
    kernels = types.SimpleNamespace(**{h[len("sega_"):]: functions[h] for h in KERNEL_HOOKS})
    return types.SimpleNamespace(
        name="cpu-emulation",
        kernels=kernels,
        # Arrays are NumPy arrays here; the core's glue (concatenate, take...) is NumPy's.
        xp=np,
        array_module=functions["sega_array_module"](),
        to_device=functions["sega_to_device"],
        to_host=functions["sega_to_host"],
        make_rng=functions["sega_make_rng"],
        is_gpu=False,
    )


def gpu_backend():
    """The real cupy backend, or a failure that says what is missing when a device exists."""
    import sega_core

    try:
        backend = sega_core.get_backend("cupy")
    except sega_core.BackendUnavailableError as exc:
        pytest.fail(f"a CUDA device is present but the cupy backend cannot be used: {exc}")
    backend.is_gpu = True
    return backend


@pytest.fixture(scope="session")
def reference():
    """The NumPy reference backend's kernel table."""
    import sega_core

    return sega_core.get_backend("numpy").kernels


@pytest.fixture(scope="session", params=["cpu-emulation", "gpu"])
def impl(request, tmp_path_factory):
    """The cupy backend's kernels under test (see the module docstring)."""
    if request.param == "gpu":
        from sega_backend_cupy.probe import cuda_device_problem

        problem = cuda_device_problem()
        if problem is not None:
            pytest.skip(f"{GPU_SKIP_REASON} ({problem})")
        return gpu_backend()
    if shutil.which("g++") is None:
        pytest.skip(EMULATION_SKIP_REASON)
    return emulated_backend(tmp_path_factory.mktemp("cuda_emulation"))


@pytest.fixture(scope="session")
def backend(impl):
    """``impl`` as a sega ``Backend``, for models and the conformance suite: the real one on the
    GPU; on the emulation, one built from the emulated kernels (not a registered plugin)."""
    if impl.is_gpu:
        return impl
    from sega_core.backends.dispatch import Backend, KernelTable

    kernels = vars(impl.kernels)
    services = {"sega_to_device": impl.to_device, "sega_to_host": impl.to_host, "sega_make_rng": impl.make_rng}
    info = {"name": "cupy-emulated", "version": "0", "hook_api": "1.0", "device": "cpu"}
    return Backend("cupy-emulated", info, impl.xp, KernelTable(kernels, dict.fromkeys(kernels, "cupy")), services)


@pytest.fixture
def host_rng():
    """A fixed NumPy generator for test inputs."""
    return np.random.default_rng(20240607)
