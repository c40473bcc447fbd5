"""Ctrl-C during training with the numba backend: delivered at random points, many times, it
interrupts training within a second, and the next ``train`` in the same process works."""

from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

_CHILD = textwrap.dedent(
    """
    import faulthandler
    import signal
    import sys
    import numpy as np
    import sega_core
    from sega_backend_numba import _parallel

    faulthandler.register(signal.SIGUSR1)  # the parent asks for every thread's stack if it hangs
    _parallel.MIN_WORK_PER_SHARE = 1  # every kernel shared out between threads
    rng = np.random.default_rng(0)
    images, labels = rng.standard_normal((256, 2, 12, 12)).astype(np.float32), rng.integers(0, 3, 256)
    sequences = rng.standard_normal((256, 9, 5)).astype(np.float32)
    models = [
        (sega_core.NeuralNetwork([sega_core.Conv2D(6, 3, padding=1, activation="relu"), sega_core.Flatten(),
                                  sega_core.Dense(3)], backend="numba", seed=0), images),
        (sega_core.NeuralNetwork([sega_core.RNN(16), sega_core.Dense(3)], backend="numba", seed=0), sequences),
    ]
    for model, X in models:  # compile before the first interruption
        model.train(X[:64], labels[:64], epochs=1, batch_size=32, progress=False)
    print("ready", flush=True)
    for round_, line in enumerate(sys.stdin):
        model, X = models[round_ % 2]
        try:
            print("started", flush=True)
            model.train(X, labels, epochs=10**6, batch_size=32, progress=False)
            print("finished", flush=True)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
        history = model.train(X[:64], labels[:64], epochs=1, batch_size=32, progress=False)
        print("ok" if np.isfinite(history["loss"][-1]) else "not finite", flush=True)
    """
)


class _Child:
    def __init__(self):
        self.process = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        # A thread reads the lines as they come: select() on the pipe would miss a line that an
        # earlier readline() already took into the file object's buffer.
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.strip())

    def line(self, timeout: float) -> str | None:
        """The child's next line, or None if none came within ``timeout`` seconds."""
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            return None

    def stacks(self) -> str:
        """Every thread's stack in the child (it prints them on SIGUSR1), then its error output."""
        self.process.send_signal(signal.SIGUSR1)
        time.sleep(2)
        return self.close()

    def close(self) -> str:
        self.process.stdin.close()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        return self.process.stderr.read()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")
def test_ctrl_c_at_random_points_interrupts_training_within_a_second_and_training_works_after():
    child = _Child()
    slow: list[float] = []
    try:
        assert child.line(600) == "ready", child.close()
        chooser = random.Random(os.getpid())
        for round_ in range(24):
            child.process.stdin.write("go\n")
            assert child.line(30) == "started"
            time.sleep(chooser.uniform(0.0, 0.4))
            sent = time.perf_counter()
            os.kill(child.process.pid, signal.SIGINT)
            reply = child.line(10)
            waited = time.perf_counter() - sent
            assert reply == "interrupted", (round_, reply, reply is None and child.stacks())
            if waited > 1.0:
                slow.append(waited)
            reply = child.line(60)
            assert reply == "ok", (round_, reply, reply is None and child.stacks())
    finally:
        errors = child.close()
    assert child.process.returncode == 0, errors
    assert not slow, f"interruptions that took more than a second: {slow}"
