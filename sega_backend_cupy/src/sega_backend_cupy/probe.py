"""Can the cupy backend run here? Answered without importing cupy.

Listing backends calls this, and importing cupy costs a second or more (and must not happen just
because sega was imported), so the probe only asks importlib whether cupy is installed and then
talks to the CUDA driver through ctypes: load ``libcuda.so.1``, ``cuInit(0)``,
``cuDeviceGetCount``. Every step can be replaced by a fake for unit tests.

``cuInit`` honours ``CUDA_VISIBLE_DEVICES`` exactly as cupy will, so "no device" here means cupy
would find none either.
"""

from __future__ import annotations

import ctypes
import importlib.util
import sys
from typing import Any, Callable

#: Shown when the cupy package is missing (the pip line names the wheel for CUDA 12 drivers).
CUPY_MISSING = (
    "cupy is not installed; install it with pip install cupy-cuda12x "
    "(or cupy-cuda13x to match your CUDA driver)"
)

#: The CUDA driver library, by platform (cupy has no macOS build, so macOS never finds one).
DRIVER_LIBRARY = "nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1"

NO_DRIVER = f"no CUDA driver found ({DRIVER_LIBRARY} could not be loaded)"
NO_DEVICE = "no CUDA device found"

#: CUresult codes worth a readable name in a message (from cuda.h).
_CUDA_ERRORS = {
    3: "CUDA_ERROR_NOT_INITIALIZED",
    35: "CUDA_ERROR_INSUFFICIENT_DRIVER",
    100: "CUDA_ERROR_NO_DEVICE",
    101: "CUDA_ERROR_INVALID_DEVICE",
    304: "CUDA_ERROR_OPERATING_SYSTEM",
    999: "CUDA_ERROR_UNKNOWN",
}
_CUDA_SUCCESS = 0
_CUDA_ERROR_NO_DEVICE = 100


def cupy_installed(find_spec: Callable[[str], Any] | None = None) -> bool:
    """Whether the ``cupy`` package can be imported (looked up, not imported)."""
    find = importlib.util.find_spec if find_spec is None else find_spec
    try:
        return find("cupy") is not None
    except (ImportError, ValueError):  # a broken or half-removed install counts as missing
        return False


def _error_text(call: str, status: int) -> str:
    name = _CUDA_ERRORS.get(status, "")
    return f"{call} returned error {status}" + (f" ({name})" if name else "")


def cuda_device_problem(load_library: Callable[[str], Any] | None = None) -> str | None:
    """Return why no CUDA device can be used here, or ``None`` when at least one can.

    ``load_library`` stands in for :class:`ctypes.CDLL` (tests pass a fake driver).
    """
    load = ctypes.CDLL if load_library is None else load_library
    try:
        driver = load(DRIVER_LIBRARY)
    except OSError:
        return NO_DRIVER
    try:
        cu_init = driver.cuInit
        cu_device_get_count = driver.cuDeviceGetCount
    except AttributeError:
        return f"the CUDA driver library {DRIVER_LIBRARY} lacks cuInit/cuDeviceGetCount"
    try:
        status = int(cu_init(0))
        if status == _CUDA_ERROR_NO_DEVICE:
            return NO_DEVICE
        if status != _CUDA_SUCCESS:
            return f"the CUDA driver could not be initialised: {_error_text('cuInit', status)}"
        count = ctypes.c_int(0)
        status = int(cu_device_get_count(ctypes.pointer(count)))
    except Exception as exc:  # a probe must never raise; say what went wrong instead
        return f"the CUDA driver probe failed: {type(exc).__name__}: {exc}"
    if status != _CUDA_SUCCESS:
        return f"could not count CUDA devices: {_error_text('cuDeviceGetCount', status)}"
    if count.value < 1:
        return NO_DEVICE
    return None


def unavailable_reason(
    find_spec: Callable[[str], Any] | None = None,
    load_library: Callable[[str], Any] | None = None,
) -> str | None:
    """Why the cupy backend cannot run here (cupy missing first, then driver, then device)."""
    if not cupy_installed(find_spec):
        return CUPY_MISSING
    return cuda_device_problem(load_library)
