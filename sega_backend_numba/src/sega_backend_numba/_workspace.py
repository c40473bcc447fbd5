"""Scratch buffers reused from one kernel call to the next (per thread).

A fresh multi-megabyte NumPy array costs a page fault per 4 KiB page the first time it is
written, and those faults can cost as much as the arithmetic. Buffers that never leave a kernel
(im2col chunks, the RNN's per-step products) are therefore kept here and reused. They are
thread-local, so models trained in different threads never share one.
"""

from __future__ import annotations

import threading

import numpy as np

_local = threading.local()


def workspace(slot: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """A C-contiguous scratch array of ``shape`` and ``dtype`` for ``slot`` (contents undefined).

    Each slot holds one buffer that grows to the largest size asked for. Two live scratch arrays
    must use different slots.
    """
    dtype = np.dtype(dtype)
    size = 1
    for s in shape:
        size *= int(s)
    buffers = getattr(_local, "buffers", None)
    if buffers is None:
        buffers = _local.buffers = {}
    key = (slot, dtype.char)
    buf = buffers.get(key)
    if buf is None or buf.size < size:
        buf = buffers[key] = np.empty(max(size, 1), dtype)
    return buf[:size].reshape(shape)


def release_workspaces() -> None:
    """Drop this thread's scratch buffers (they are re-created when next needed)."""
    _local.buffers = {}
