"""Times sega models: one ``model.train(..., epochs=1)`` call per epoch on one backend.

The optimizer state persists across ``train`` calls on the same model (the first call passes
``optimizer="adam", lr=1e-3``; later calls pass ``optimizer=None`` so the same Adam continues).
Each call is timed whole with ``time.perf_counter``; the time spent inside the epoch loop itself
is also taken from a progress-bar stand-in that the training loop updates once per epoch, so
the per-call overhead (input checks, optimizer lookup, the host-to-device copy on a GPU) is
visible as ``seconds - inner_seconds``.
"""

from __future__ import annotations

import time

import numpy as np

from .workloads import Dataset, get_workload, sega_layers


class _EpochClock:
    """Stands in for the progress bar: records when the training loop finishes each epoch."""

    def __init__(self, sync):
        self._sync = sync
        self.start = time.perf_counter()
        self.marks: list[float] = []

    def set_postfix(self, values):  # noqa: D102 - progress-bar protocol
        pass

    def update(self, n=1):  # noqa: D102
        self._sync()
        self.marks.append(time.perf_counter())

    def close(self):  # noqa: D102
        pass


class SegaRunner:
    """Train a sega model of workload ``workload`` on ``backend``, one epoch per :meth:`epoch` call."""

    framework = "sega"

    def __init__(self, workload: str, data: Dataset, backend, seed: int = 0, track_metrics: bool = False):
        """``backend``: a backend's name, or a ``Backend`` object (the GPU dry run's emulated cupy)."""
        import sega_core
        from sega_core.nn import training

        self.workload = get_workload(workload)
        self.data = data
        self.backend_name = backend
        self.track_metrics = track_metrics
        self.model = sega_core.NeuralNetwork(layers=sega_layers(workload), backend=backend, dtype="float32", seed=seed)
        self._sync = _synchronizer(self.model.backend)
        self._training = training
        self._clock: _EpochClock | None = None
        # Time the epoch loop from inside the one train() call, through the progress-bar hook;
        # without that private hook only whole-call times are reported.
        self._hooked = hasattr(training, "_progress_bar")
        self._epochs_done = 0

    def _make_clock(self, enabled, epochs):
        self._clock = _EpochClock(self._sync)
        return self._clock

    def epoch(self) -> dict:
        """Train one epoch; return ``seconds`` (the whole train call) and ``inner_seconds``."""
        first = self._epochs_done == 0
        kwargs = dict(optimizer="adam", lr=1e-3) if first else dict(optimizer=None, lr=None)
        original = getattr(self._training, "_progress_bar", None)
        if self._hooked:
            self._training._progress_bar = self._make_clock
        self._clock = None
        try:
            self._sync()
            t0 = time.perf_counter()
            self.model.train(
                self.data.X_train,
                self.data.y_train,
                epochs=1,
                batch_size=self.workload.batch_size,
                progress=False,
                track_metrics=self.track_metrics,
                **kwargs,
            )
            self._sync()
            t1 = time.perf_counter()
        finally:
            if self._hooked:
                self._training._progress_bar = original
        self._epochs_done += 1
        inner = None
        if self._clock is not None and self._clock.marks:
            inner = self._clock.marks[0] - self._clock.start
        return {"seconds": t1 - t0, "inner_seconds": inner, "loss": float(self.model.history["loss"][-1])}

    def accuracy(self) -> float:
        """Accuracy on the held-out test split."""
        pred = self.model.predict(self.data.X_test)
        return float(np.mean(pred == self.data.y_test))

    def device_memory(self) -> dict:
        """Bytes held by the device memory pool (CuPy backend), else nothing."""
        if self.model.backend.device == "cpu":
            return {}
        try:
            import cupy

            return {"gpu_pool_bytes": int(cupy.get_default_memory_pool().total_bytes())}
        except Exception:  # pragma: no cover - GPU only
            return {}


def _synchronizer(backend):
    """A function that waits for the backend's device (a no-op on the CPU)."""
    if backend.device == "cpu":
        return lambda: None
    try:
        import cupy
    except ImportError:  # pragma: no cover - GPU only
        return lambda: None
    return lambda: cupy.cuda.Device().synchronize()
