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

import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

GPU_SKIP_REASON = "no CUDA device: the CuPy GPU checks need one"
EMULATION_SKIP_REASON = "no C++ compiler (g++): the CPU emulation of the CUDA kernels needs one"


def _load_emulation():
    """``_emulation.py`` (the test folders are not packages), one module per process."""
    name = "sega_cupy_tests_emulation"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("_emulation.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_emulation = _load_emulation()


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
    return _emulation.emulated_backend(tmp_path_factory.mktemp("cuda_emulation"))


@pytest.fixture(scope="session")
def backend(impl):
    """``impl`` as a sega ``Backend``, for models and the conformance suite: the real one on the
    GPU; on the emulation, one built from the emulated kernels (not a registered plugin)."""
    if impl.is_gpu:
        return impl
    return _emulation.as_backend(impl)


@pytest.fixture(scope="session")
def counting(tmp_path_factory):
    """``(backend, counter)``: the cupy backend on the counting emulation (``_counting.py``), which
    records every kernel launch and host synchronisation a GPU would see."""
    if shutil.which("g++") is None:
        pytest.skip(EMULATION_SKIP_REASON)
    return _emulation.load_sibling("_counting.py").counting_backend(tmp_path_factory.mktemp("counting"))


@pytest.fixture
def host_rng():
    """A fixed NumPy generator for test inputs."""
    return np.random.default_rng(20240607)
