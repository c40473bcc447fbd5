"""Time spent inside a backend's kernels: wrap every entry of its kernel table with a timer.

Models look kernels up in ``backend.kernels`` when they are built (activations, the loss) or at
every call (layers, the optimizer), so wrap the table *before* building a model, and build a
fresh model after :func:`unwrap` to time without the wrappers.
"""

from __future__ import annotations

import time


class KernelTimer:
    """Calls and seconds per kernel of one backend's table while installed."""

    def __init__(self, backend):
        self.table = backend.kernels
        self.calls: dict[str, int] = {}
        self.seconds: dict[str, float] = {}
        self._originals: dict = {}

    def wrap(self) -> "KernelTimer":
        """Replace every kernel of the table by a timing wrapper around it."""
        perf = time.perf_counter
        for name in self.table.sources:
            fn = getattr(self.table, name, None)
            if fn is None or name in self._originals:
                continue
            self._originals[name] = fn
            self.calls[name], self.seconds[name] = 0, 0.0

            def timed(*args, _fn=fn, _name=name, **kwargs):
                t = perf()
                out = _fn(*args, **kwargs)
                self.seconds[_name] += perf() - t
                self.calls[_name] += 1
                return out

            timed.__name__ = timed.__qualname__ = f"timed_{name}"
            setattr(self.table, name, timed)
        return self

    def unwrap(self) -> None:
        """Put the original kernels back."""
        for name, fn in self._originals.items():
            setattr(self.table, name, fn)
        self._originals.clear()

    def reset(self) -> None:
        """Zero the counters."""
        for name in self.calls:
            self.calls[name], self.seconds[name] = 0, 0.0

    def total_seconds(self) -> float:
        """Seconds spent inside kernels since the last reset."""
        return sum(self.seconds.values())

    def report(self) -> dict:
        """``{kernel: {"calls", "seconds"}}`` for the kernels that were called, slowest first."""
        used = [(n, self.calls[n], self.seconds[n]) for n in self.calls if self.calls[n]]
        return {n: {"calls": c, "seconds": s} for n, c, s in sorted(used, key=lambda r: -r[2])}
