"""Data chunks to the GPU one chunk ahead of the compute (hook ``sega_stream_to_device``).

The core hands the backend an epoch's chunks -- a block of an out-of-core array, or a batch of a
stream, as ``(X, y, sample_weight)`` host arrays -- one at a time. Chunk i+1 is copied while the
kernels of chunk i run: its arrays are packed into a page-locked (pinned) host buffer, from which
the GPU copies on a stream of its own without the host waiting, and the compute stream is told to
wait for that copy (an event) before the chunk is handed over. Two pinned buffers take turns.
"""

from __future__ import annotations

import numpy as np

from ._cupy import cupy

#: Each array of a chunk starts at a multiple of this many bytes of its pinned buffer.
_ALIGN = 256


class _Slot:
    """One pinned host buffer and the event recorded after the last copy that reads it."""

    def __init__(self) -> None:
        self.memory = None
        self.size = 0
        self.copied = None

    def take(self, nbytes: int) -> np.ndarray:
        """The buffer as bytes (at least ``nbytes``), once the host may write into it."""
        # The copy queued from this buffer two chunks ago may not have run yet: the host must
        # not overwrite what it still reads. A wait on that copy alone (the copy stream, not
        # the compute), once per chunk, which has long finished when the copies keep up.
        self.wait()
        if self.memory is None or nbytes > self.size:
            self.size = max(nbytes, _ALIGN)
            self.memory = cupy.cuda.alloc_pinned_memory(self.size)
        return np.frombuffer(self.memory, np.uint8, self.size)

    def wait(self) -> None:
        """Make the host wait until the last copy out of this buffer has run."""
        if self.copied is not None:
            self.copied.synchronize()
            self.copied = None


def _event():
    return cupy.cuda.Event(disable_timing=True)


def _issue(chunk, slot: _Slot, copier, compute):
    """Start copying ``chunk``'s host arrays on ``copier``; ``(its device tuple, the copy's event)``."""
    hosts = [None if a is None or isinstance(a, cupy.ndarray) else np.asarray(a) for a in chunk]
    starts, end = [], 0
    for a in hosts:
        starts.append(end)
        if a is not None:
            end += -(-a.nbytes // _ALIGN) * _ALIGN
    buffer = slot.take(end)
    # Device memory the pool hands out below may have been freed by arrays whose last kernels
    # are still queued on the compute stream; the copy must not write into it before they ran.
    copier.wait_event(compute.record(_event()))
    out = []
    for entry, host, start in zip(chunk, hosts, starts):
        if host is None:  # None, or already on the device
            out.append(entry)
            continue
        staged = buffer[start : start + host.nbytes].view(host.dtype).reshape(host.shape)
        staged[...] = host
        device = cupy.ndarray(host.shape, host.dtype)
        if device.size:
            device.set(staged, stream=copier)
        out.append(device)
    slot.copied = copier.record(_event())
    return tuple(out), slot.copied


def stream_to_device(chunks):
    """Each tuple of host arrays of ``chunks`` as device arrays, the next one's copy started
    before this one is yielded, so that it overlaps the compute on this one."""
    compute = cupy.cuda.get_current_stream()
    copier = cupy.cuda.Stream(non_blocking=True)
    slots = (_Slot(), _Slot())
    ahead = None
    try:
        for i, chunk in enumerate(chunks):
            issued = _issue(chunk, slots[i % 2], copier, compute)
            if ahead is not None:
                yield _handed_over(ahead, compute)
            ahead = issued
        if ahead is not None:
            yield _handed_over(ahead, compute)
    finally:
        # Pinned memory goes back to cupy's pool when the slots are dropped, and a copy still
        # reading it would then race whoever is given it next. Also keeps a chunk not handed
        # over (the consumer stopped early) from being freed while its copy writes into it.
        for slot in slots:
            slot.wait()


def _handed_over(issued, compute):
    """The chunk's device arrays, the compute stream ordered after their copy (no host wait)."""
    arrays, copied = issued
    compute.wait_event(copied)
    return arrays
