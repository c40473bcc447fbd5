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

So every kernel here that multiplies matrices runs under :meth:`Team.run` (a Python body per
part) or :meth:`Team.run_jobs` (compiled jobs, :mod:`._jobs`, which the workers run without
taking the GIL): the batch is cut into one contiguous range of samples per thread, each thread
(the calling one included) runs the kernel's body on its range with its own scratch buffers,
and BLAS is held to one thread for the duration, so there are never more busy threads than
cores. The team has ``NUMBA_NUM_THREADS`` threads (numba's setting, by default the CPUs this
process may use).

numba's own ``parallel=True`` is not used: its thread pool would be a second pool beside this
one, and most kernels here are short Python bodies around NumPy's BLAS calls, which only Python
threads can run side by side (the RNN's time loop, which does call BLAS from compiled code, see
:mod:`._cblas`, runs one such loop per team thread).

If the BLAS library cannot be found to be held to one thread (threadpoolctl knows OpenBLAS, MKL,
BLIS and FlexiBLAS), the team has one thread: splitting the batch under a multi-threaded BLAS
would run more threads than there are cores.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from queue import SimpleQueue

import numba
import numpy as np

from ._jit import jit
from ._jobs import JOB_WORDS, run_job
from ._spin import SPIN_SECONDS, load_seq_cst, rounds_for, spin_while_equal, store_release, store_seq_cst


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

    A kernel hands the team either compiled jobs (:meth:`run_jobs`, rows of :mod:`._jobs`) or a
    Python function with one argument tuple per part (:meth:`run`). Each worker has one slot: the
    caller writes the job there and bumps the worker's ``posted`` count; the worker, spinning on
    that count in compiled code (:func:`_work`), runs a compiled job at once without the GIL and
    bumps its ``done`` count, or returns to Python for a Python function. A worker that has spun
    for :data:`._spin.SPIN_SECONDS` with nothing to do raises its ``asleep`` flag and blocks on
    its wake-up queue; whoever posts to it then sees the flag and wakes it. The caller, having
    run part 0 itself, spins on the ``done`` counts likewise, then sleeps in short naps.

    One kernel at a time has the workers: a kernel that finds them busy (another thread's model
    is training, or a kernel already running on a worker splits again) runs its parts in turn on
    its own thread instead of waiting.
    """

    def __init__(self, size: int, blas: BlasThreads, spin_seconds: float = SPIN_SECONDS):
        self.size = max(1, int(size))
        self.blas = blas
        self.spin_seconds = spin_seconds
        self._rounds = 0
        # Per worker i (index 0 unused: the caller): jobs posted and finished, the asleep flag,
        # the job's row, and for Python work the function, its arguments and its outcome.
        self._posted = np.zeros(self.size, np.int64)
        self._done = np.zeros(self.size, np.int64)
        self._asleep = np.zeros(self.size, np.int64)
        self._jobs = np.zeros((self.size, JOB_WORDS), np.int64)
        self._python: list = [None] * self.size
        self._outcomes: list = [None] * self.size
        self._wake: list[SimpleQueue] = []
        self._busy = threading.Lock()
        self._start_lock = threading.Lock()

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

        At most ``size`` parts; part 0 runs on the calling thread. Exceptions propagate (the
        first one, after every part has finished).
        """
        with self.blas:
            if len(parts) == 1 or not self._busy.acquire(blocking=False):
                return [body(*p) for p in parts]
            results, error, posted = [None] * len(parts), None, 1
            try:
                try:
                    for i in range(1, self._check(len(parts))):
                        self._python[i] = (body, parts[i])
                        self._jobs[i, 0] = PYTHON_JOB
                        # Counted before it is posted: an interruption in between must still
                        # wait for this worker (a worker with nothing posted is found done).
                        posted = i + 1
                        self._post(i)
                    results[0] = body(*parts[0])
                except BaseException as exc:  # wait for the workers before raising
                    error = exc
                error = self._wait(posted) or error
                for i in range(1, posted):
                    outcome, self._outcomes[i] = self._outcomes[i], None
                    if outcome is None:  # interrupted before it was posted
                        continue
                    ok, value = outcome
                    if ok:
                        results[i] = value
                    elif error is None:
                        error = value
            finally:
                self._busy.release()
            if error is not None:
                raise error
            return results

    def run_jobs(self, jobs: np.ndarray, blas: bool = True) -> None:
        """Run the compiled jobs ``jobs`` (one row each, see :mod:`._jobs`) in parallel, BLAS
        single-threaded meanwhile (unless ``blas`` is False: the jobs make no BLAS call); row 0
        on the calling thread."""
        with self.blas if blas else contextlib.nullcontext():
            if len(jobs) == 1 or not self._busy.acquire(blocking=False):
                run_in_turn(jobs)
                return
            error, posted = None, 1
            try:
                try:
                    self._check(len(jobs))
                    posted = len(jobs)  # before posting: see run()
                    sleepers = post_jobs(self._jobs, self._posted, self._asleep, jobs)
                    for i in range(1, len(jobs)):
                        if sleepers >> i & 1:
                            self._wake[i - 1].put(None)
                    if run_first_then_wait(jobs, self._done, self._posted, self._rounds):
                        return
                except BaseException as exc:
                    error = exc
                error = self._wait(posted) or error
            finally:
                self._busy.release()
            if error is not None:
                raise error

    def _check(self, parts: int) -> int:
        if parts > self.size:
            raise ValueError(f"{parts} parts for a team of {self.size} threads")
        self._start_workers()
        return parts

    def _post(self, i: int) -> None:
        if post(self._posted, self._asleep, i):
            self._wake[i - 1].put(None)

    def _wait(self, parts: int) -> BaseException | None:
        """Wait until workers 1..parts-1 have finished their jobs. Never raises: the jobs use the
        caller's arrays, so an interruption (Ctrl-C) meanwhile is returned, to be raised after."""
        interrupted = None
        for i in range(1, parts):
            target = self._posted[i]
            if not spin_while_equal(self._done, i, target - 1, self._rounds):
                while self._done[i] != target:
                    try:
                        time.sleep(NAP_SECONDS)
                    except BaseException as exc:
                        interrupted = interrupted or exc
        return interrupted

    def _start_workers(self) -> None:
        if len(self._wake) < self.size - 1:
            with self._start_lock:
                if not self._rounds:
                    self._rounds = rounds_for(self.spin_seconds)
                while len(self._wake) < self.size - 1:
                    wake: SimpleQueue = SimpleQueue()
                    index = len(self._wake) + 1
                    threading.Thread(target=self._serve, args=(wake, index), daemon=True,
                                     name=f"sega-numba-{index}").start()
                    self._wake.append(wake)

    def _serve(self, wake: SimpleQueue, index: int) -> None:
        finished = False
        while True:
            status = _work(self._posted, self._done, self._asleep, self._jobs, index, self._rounds, finished)
            finished = False
            if status == _ASLEEP:
                wake.get()
                self._asleep[index] = 0
                continue
            body, part = self._python[index]
            self._python[index] = None
            try:
                self._outcomes[index] = (True, body(*part))
            except BaseException as exc:
                self._outcomes[index] = (False, exc)
            finished = True  # _work counts it done, from compiled code, before it spins again


#: Word 0 of a worker's slot when it holds a Python function (else a compiled runner's address).
PYTHON_JOB = 0
#: How long the caller sleeps between looks once it has spun in vain for a worker's result.
NAP_SECONDS = 20e-6
_ASLEEP, _PYTHON = 0, 1


@jit()
def post(posted, asleep, i):
    """Count one more job posted to worker ``i``; True if it is asleep (it must then be woken)."""
    store_seq_cst(posted, i, posted[i] + 1)
    return load_seq_cst(asleep, i) != 0


@jit()
def post_jobs(slots, posted, asleep, jobs):
    """Put jobs 1, 2, ... in workers 1, 2, ...'s slots and post them; return a bit mask of the
    workers that are asleep."""
    sleepers = 0
    for i in range(1, jobs.shape[0]):
        for w in range(jobs.shape[1]):  # a loop: slice assignment costs numba 2 s to compile
            slots[i, w] = jobs[i, w]
        if post(posted, asleep, i):
            sleepers |= 1 << i
    return sleepers


@jit()
def run_first_then_wait(jobs, done, posted, rounds):
    """Run job 0, then spin until the workers have finished the others (False if they are
    still at it after ``rounds`` rounds each)."""
    run_job(jobs[0])
    for i in range(1, jobs.shape[0]):
        if not spin_while_equal(done, i, posted[i] - 1, rounds):
            return False
    return True


@jit()
def run_in_turn(jobs):
    """Run every job on this thread, one after another."""
    for k in range(jobs.shape[0]):
        run_job(jobs[k])


@jit()
def _work(posted, done, asleep, jobs, i, rounds, finished):
    """Worker ``i``'s loop, without the GIL: count a finished Python job done, then run compiled
    jobs as they are posted; return to run a Python one, or when it is time to sleep."""
    if finished:
        store_release(done, i, done[i] + 1)
    while True:
        taken = done[i]
        if spin_while_equal(posted, i, taken, rounds):
            if jobs[i, 0] == PYTHON_JOB:
                return _PYTHON
            run_job(jobs[i])
            store_release(done, i, taken + 1)
            continue
        # Raise the flag, then look again: a job posted meanwhile is either seen here or its
        # poster sees the flag and wakes this thread (both sides use sequentially consistent
        # operations, so they cannot both miss).
        store_seq_cst(asleep, i, 1)
        if load_seq_cst(posted, i) != taken:
            store_seq_cst(asleep, i, 0)
            continue
        return _ASLEEP


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
