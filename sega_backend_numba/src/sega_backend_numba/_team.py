"""The backend's threads: a kernel's batch split across one thread per core, BLAS single-threaded.

Why not let BLAS thread each matrix product and run the compiled loops on one thread (what this
backend did first): measured on the 2-core development machine,

* a (64, 128) @ (128, 128) product, one RNN time step, takes 23 us with one OpenBLAS thread and
  40 us with two: below a few million multiply-adds, handing work to a second BLAS thread costs
  more than it saves, and an RNN makes 55 such products per batch;
* the compiled im2col/col2im loops between the products ran on one core while OpenBLAS's idle
  workers spun on the other (they spin for a while after every product before they sleep), so
  half the machine idled or fought for the cache during a convolution;
* split by samples across two threads, each running im2col, single-threaded products and col2im
  on its own half, a 64-image batch of W3's convolutions takes 15 ms instead of 22-26 ms.

So every kernel here that multiplies matrices runs under :meth:`Team.run`: the batch is cut into
one contiguous range of samples per thread, each thread (the calling one included) runs the
kernel's body on its range with its own scratch buffers, and BLAS is held to one thread for the
duration, so there are never more busy threads than cores. The team has ``NUMBA_NUM_THREADS``
threads (numba's setting, by default the CPUs this process may use).

numba's own ``parallel=True`` is not used: its thread pool would be a second pool beside this
one, and most kernels here are short Python bodies around NumPy's BLAS calls, which only Python
threads can run side by side (the RNN's time loop, which does call BLAS from compiled code, see
:mod:`._cblas`, runs one such loop per team thread).

If the BLAS library cannot be found to be held to one thread (threadpoolctl knows OpenBLAS, MKL,
BLIS and FlexiBLAS), the team has one thread: splitting the batch under a multi-threaded BLAS
would run more threads than there are cores.
"""

from __future__ import annotations

import os
import threading
from queue import SimpleQueue

import numba
import numpy as np

from ._spin import SPIN_SECONDS, rounds_for, signal_then_spin, spin_while_equal


class BlasThreads:
    """Hold the BLAS libraries loaded in this process (NumPy's, and scipy's if it was already
    loaded when the team started) to one thread while any kernel of the team runs.

    Re-entrant and thread-safe: the first kernel to enter saves the thread count and sets it to
    one, the last to leave restores what was saved. Setting the count is a plain C call (about
    1 us), cheap enough to do around every kernel rather than for the whole of training, which
    would change the thread count behind the user's back between calls.
    """

    def __init__(self, controllers=None):
        self._controllers = controllers
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: list[int] = []

    @property
    def controllers(self) -> list:
        """threadpoolctl's controllers of the BLAS libraries loaded in this process."""
        if self._controllers is None:
            self._controllers = _find_blas()
        return self._controllers

    @property
    def found(self) -> bool:
        """Whether a BLAS library was found whose thread count can be set."""
        return bool(self.controllers)

    def __enter__(self):
        with self._lock:
            if self._depth == 0:
                self._saved = [c.get_num_threads() for c in self.controllers]
                for c, n in zip(self.controllers, self._saved):
                    if n != 1:
                        c.set_num_threads(1)
            self._depth += 1
        return self

    def __exit__(self, *exc):
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                for c, n in zip(self.controllers, self._saved):
                    if n != 1:
                        c.set_num_threads(n)


def _find_blas() -> list:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        return []
    return list(ThreadpoolController().select(user_api="blas").lib_controllers)


#: Multiply-adds (or equivalent work) a thread must get for a split to pay for handing it over:
#: a hand-over costs about 20 us, and each extra worker starts a little later than the last
#: (each takes the GIL in turn to begin), so a share should be several times that: 4 M
#: multiply-adds take 40-80 us on one core at BLAS speed.
MIN_MACS_PER_THREAD = 1 << 22


def cut(n: int, parts: int) -> list[tuple[int, int]]:
    """``[lo, hi)`` ranges cutting ``range(n)`` into ``parts`` near-equal contiguous parts."""
    bounds = [(i * n) // parts for i in range(parts + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


class Team:
    """``size`` threads (the caller and ``size - 1`` workers) that run one kernel's parts at once.

    Each worker has a queue of shares; after finishing one it spins for a moment (see
    :mod:`._spin`) watching its count of posted shares before it blocks on the queue, and the
    calling thread likewise spins on the workers' "done" flags before it blocks on the replies.
    """

    def __init__(self, size: int, blas: BlasThreads, spin_seconds: float = SPIN_SECONDS):
        self.size = max(1, int(size))
        self.blas = blas
        self.spin_seconds = spin_seconds
        self._queues: list[SimpleQueue] = []
        # Shares posted to worker i, in slot i; only written under _post_lock.
        self._posted = np.zeros(self.size, np.int64)
        self._post_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._rounds = 0
        self._local = threading.local()

    def shares(self, macs: int, most: int | None = None) -> int:
        """Threads worth using for ``macs`` multiply-adds: each must get at least
        :data:`MIN_MACS_PER_THREAD`, and no more than ``most`` (the items there are to cut)."""
        shares = min(self.size, int(macs) // MIN_MACS_PER_THREAD)
        if most is not None:
            shares = min(shares, most)
        return max(1, shares)

    def ranges(self, n: int, macs_per_item: int) -> list[tuple[int, int]]:
        """``[lo, hi)`` ranges cutting ``range(n)`` into near-equal parts, one per thread worth
        using for ``n`` items of ``macs_per_item`` multiply-adds each."""
        return cut(n, self.shares(n * macs_per_item, n))

    def run(self, body, parts: list[tuple]) -> list:
        """``[body(*p) for p in parts]``, the parts in parallel and BLAS single-threaded meanwhile.

        At most ``size`` parts. Part 0 runs on the calling thread. Exceptions propagate (the
        first one, after every part has finished). A kernel that is already running on a worker
        runs its parts in turn.
        """
        with self.blas:
            if len(parts) == 1 or getattr(self._local, "worker", False):
                return [body(*p) for p in parts]
            if len(parts) > self.size:
                raise ValueError(f"{len(parts)} parts for a team of {self.size} threads")
            queues = self._workers()
            reply: SimpleQueue = SimpleQueue()
            done = np.zeros(len(parts), np.int64)  # done[i] = 1 once part i's reply is queued
            with self._post_lock:
                for i in range(1, len(parts)):
                    queues[i - 1].put((body, parts[i], reply, done, i))
                    self._posted[i] += 1
            results = [None] * len(parts)
            error = None
            try:
                results[0] = body(*parts[0])
            except BaseException as exc:  # wait for the workers before raising
                error = exc
            for i in range(1, len(parts)):
                spin_while_equal(done, i, 0, self._rounds)
            for _ in range(1, len(parts)):
                index, ok, value = reply.get()
                if ok:
                    results[index] = value
                elif error is None:
                    error = value
            if error is not None:
                raise error
            return results

    def _workers(self) -> list[SimpleQueue]:
        if len(self._queues) < self.size - 1:
            with self._start_lock:
                if not self._rounds:
                    self._rounds = rounds_for(self.spin_seconds)
                while len(self._queues) < self.size - 1:
                    queue: SimpleQueue = SimpleQueue()
                    index = len(self._queues) + 1
                    threading.Thread(target=self._serve, args=(queue, index), daemon=True,
                                     name=f"sega-numba-{index}").start()
                    self._queues.append(queue)
        return self._queues

    def _serve(self, queue: SimpleQueue, index: int) -> None:
        self._local.worker = True
        taken = 0
        spin_while_equal(self._posted, index, taken, self._rounds)
        while True:
            body, part, reply, done, slot = queue.get()
            taken += 1
            try:
                result = (slot, True, body(*part))
            except BaseException as exc:
                result = (slot, False, exc)
            reply.put(result)
            # Raise the flag from compiled code without the GIL, so the caller, spinning on it,
            # does not then wait for this thread to hand the GIL back.
            signal_then_spin(done, slot, self._posted, index, taken, self._rounds)


def _team_size(blas: BlasThreads) -> int:
    if not blas.found:
        return 1
    return int(numba.config.NUMBA_NUM_THREADS)


_team: Team | None = None


def team() -> Team:
    """The process's team, created on first use (``NUMBA_NUM_THREADS`` threads)."""
    global _team
    if _team is None:
        blas = BlasThreads()
        _team = Team(_team_size(blas), blas)
    return _team


def _forget_team() -> None:
    # A forked child has none of its parent's worker threads: start afresh when next needed.
    global _team
    _team = None


if hasattr(os, "register_at_fork"):  # POSIX only; Windows has no fork
    os.register_at_fork(after_in_child=_forget_team)
