"""The cupy backend on the CPU emulation of CUDA that its tests use (``tests/backend_cupy``).

For the GPU benchmark's dry run (``run.py --gpu --emulate``) and the launch counts: the backend's
own implementation modules run against a CPU stand-in for cupy whose kernels are the backend's
CUDA source compiled with g++. Nothing here is fast; it only has to be the same code path.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from pathlib import Path

TESTS = Path(__file__).resolve().parents[2] / "tests" / "backend_cupy"
#: Where g++ puts the compiled kernels (reused by every process of a run; keyed by source hash).
WORKDIR_VARIABLE = "SEGA_CUDA_EMULATION_DIR"


def _emulation():
    name = "sega_cupy_tests_emulation"  # the name the tests' conftest gives it
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, TESTS / "_emulation.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def workdir() -> Path:
    """The folder of compiled kernels: ``$SEGA_CUDA_EMULATION_DIR``, else one per user in the temp folder."""
    folder = os.environ.get(WORKDIR_VARIABLE) or os.path.join(tempfile.gettempdir(), f"sega-cuda-emulation-{os.getuid()}")
    Path(folder).mkdir(parents=True, exist_ok=True)
    return Path(folder)


def emulated_cupy_backend():
    """The cupy backend's kernels on the CPU emulation, as a sega ``Backend`` named ``cupy-emulated``."""
    emulation = _emulation()
    return emulation.as_backend(emulation.emulated_backend(workdir()))


def counting_cupy_backend():
    """``(backend, counter)``: the same, counting every kernel launch and host synchronisation."""
    return _emulation().load_sibling("_counting.py").counting_backend(workdir())
