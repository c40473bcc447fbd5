"""The backend's services: its array module, host/device copies and random generators."""

from __future__ import annotations

from ._cupy import cupy


def array_module():
    """Arrays are cupy arrays (device memory of the current CUDA device)."""
    return cupy


def to_device(x):
    """Copy the host array ``x`` to the GPU, keeping its shape and dtype."""
    return cupy.asarray(x)


def to_host(x):
    """Copy the device array ``x`` back to a NumPy array (this synchronises, by nature)."""
    return cupy.asnumpy(x)


def make_rng(seed):
    """A ``cupy.random.Generator`` seeded with ``seed``: dropout masks are drawn on the GPU."""
    return cupy.random.default_rng(seed)
