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
#: Sets kept per slot by :func:`workspaces` (a training run needs two: full and last batch; more
#: for several layers of one kind with different shapes).
MAX_SETS_PER_SLOT = 8


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


def workspaces(slot: str, shapes: tuple[tuple[int, ...], ...], dtype) -> tuple[np.ndarray, ...]:
    """Scratch arrays of ``shapes`` for ``slot``, kept as a set: one lookup when the same shapes
    come back (a kernel's every batch), where :func:`workspace` would make one per array."""
    dtype = np.dtype(dtype)
    sets = getattr(_local, "sets", None)
    if sets is None:
        sets = _local.sets = {}
    key = (slot, shapes, dtype.char)
    found = sets.get(key)
    if found is None:
        same_slot = [k for k in sets if k[0] == slot]
        if len(same_slot) >= MAX_SETS_PER_SLOT:
            del sets[same_slot[0]]  # the oldest (dicts keep insertion order)
        found = sets[key] = tuple(np.empty(shape, dtype) for shape in shapes)
    return found


def release_workspaces() -> None:
    """Drop this thread's scratch buffers (they are re-created when next needed)."""
    _local.buffers = {}
    _local.sets = {}
