"""Waiting a few hundred microseconds for a counter to change, without the GIL and without sleeping.

Handing a kernel's share to a sleeping thread and hearing back from it costs two thread wake-ups:
60-90 us per split on the development machine, a third to a half of what a (64, 512) @ (512, 256)
product takes on one core (190 us). So the team's threads (:mod:`._team`) first *spin* on a counter for a short while
before they block: a worker that finished one share is still watching when the next kernel posts
its share, and the calling thread is watching when a worker finishes. This is what OpenBLAS's and
OpenMP's own workers do between calls; the spin here is bounded (:data:`SPIN_SECONDS`), runs
compiled and without the GIL (so it never slows the thread doing the work), and executes the
processor's spin-wait hint each round (``pause`` on x86, ``yield`` on ARM) so that a hyperthread
sibling loses little to it.

A thread that has spun for :data:`SPIN_SECONDS` in vain goes to sleep on a queue; the team's
hand-shake (:mod:`._team`: an "asleep" flag and sequentially consistent loads and stores from
:func:`load_seq_cst`/:func:`store_seq_cst`) makes sure whoever posts work next wakes it.
"""

from __future__ import annotations

import platform
import time

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._jit import jit

#: How long a thread spins before it goes to sleep.
SPIN_SECONDS = 300e-6

#: The LLVM intrinsic of the spin-wait hint, and its arguments (numba's JIT takes no inline asm).
_HINT = {"x86_64": ("llvm.x86.sse2.pause", ()), "amd64": ("llvm.x86.sse2.pause", ()),
         "aarch64": ("llvm.aarch64.hint", (1,)), "arm64": ("llvm.aarch64.hint", (1,))}.get(platform.machine().lower())


def _atomic_load(ordering):
    @intrinsic
    def load(typingctx, counters, index):
        sig = types.int64(counters, types.intp)

        def codegen(context, builder, signature, args):
            array = context.make_array(signature.args[0])(context, builder, args[0])
            return builder.load_atomic(builder.gep(array.data, [args[1]]), ordering=ordering, align=8)

        return sig, codegen

    return load


def _atomic_store(ordering):
    @intrinsic
    def store(typingctx, counters, index, value):
        sig = types.void(counters, types.intp, types.int64)

        def codegen(context, builder, signature, args):
            array = context.make_array(signature.args[0])(context, builder, args[0])
            builder.store_atomic(args[2], builder.gep(array.data, [args[1]]), ordering=ordering, align=8)
            return context.get_dummy_value()

        return sig, codegen

    return store


#: ``counters[index]`` read atomically (acquire), so the compiler re-reads it every round.
load_acquire = _atomic_load("acquire")
#: ``counters[index] = value`` written atomically (release): what came before is visible first.
store_release = _atomic_store("release")
#: Sequentially consistent versions, for the two-flag hand-shake of a thread going to sleep
#: (store one flag, then read the other: acquire/release alone would let the read pass the store).
load_seq_cst = _atomic_load("seq_cst")
store_seq_cst = _atomic_store("seq_cst")


@intrinsic
def _spin_hint(typingctx):
    """The processor's spin-wait hint (nothing where none is known)."""
    sig = types.void()

    def codegen(context, builder, signature, args):
        if _HINT is not None:
            name, immediates = _HINT
            i32 = ir.IntType(32)
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i32] * len(immediates)), name)
            builder.call(fn, [ir.Constant(i32, v) for v in immediates])
        return context.get_dummy_value()

    return sig, codegen


@jit()
def spin_while_equal(counters, index, value, rounds):
    """Spin until ``counters[index] != value`` (True) or for ``rounds`` rounds (False)."""
    for _ in range(rounds):
        if load_acquire(counters, index) != value:
            return True
        _spin_hint()
    return False


def rounds_for(seconds: float) -> int:
    """Spin rounds that take about ``seconds`` on this machine (measured once)."""
    probe = np.zeros(1, np.int64)
    spin_while_equal(probe, 0, 0, 1)  # compile or load before timing
    rounds = 20_000
    start = time.perf_counter()
    spin_while_equal(probe, 0, 0, rounds)
    per_round = max((time.perf_counter() - start) / rounds, 1e-10)
    return max(1, int(seconds / per_round))
