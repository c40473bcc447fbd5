"""Work that a team thread runs entirely in compiled code: a job is one row of integers.

A worker of the team (:mod:`._team`) that is handed a Python function has to take the GIL
before it can start, and the thread that handed it over holds the GIL until it enters its own
compiled share: on the development machine the worker started 20 us after the caller, on
every split, and an RNN batch makes two. A job instead describes a compiled share by the
addresses and sizes of its arrays, so a worker spinning in compiled code picks it up and runs
it at once, without the GIL; the caller runs its own share through the same :func:`run_job`.
Word 0 of a row is the address of a compiled C-callable function that runs it (:func:`runner`),
so the team's loops stay generic and only the kernels a model uses are ever compiled.

Rows hold raw addresses: whoever makes a job keeps its arrays alive and unchanged in shape
until the job has run, and checks their shapes and dtypes first (nothing is checked here).
All arrays must be C-contiguous and of one dtype. The rows are made in compiled code too
(making them in Python, reading each array's address through ``ctypes``, cost 8 us a job).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import carray, cfunc, types
from numba.extending import intrinsic

from ._jit import CACHE, jit
from ._recurrence import backward_share, forward_share
from ._updates import update_range

#: Integers in a job row. Word 0 is the address of the compiled function that runs the job
#: (0: none, the team's mark for a Python function); it is called with the row's address.
JOB_WORDS = 24
_RUNNER_TYPE = types.void(types.CPointer(types.int64))


@intrinsic
def _pointer(typingctx, address, dtype):
    """``address`` as a pointer to ``dtype`` (a NumPy scalar type)."""
    if not isinstance(dtype, types.NumberClass):
        return None
    pointee = dtype.instance_type
    sig = types.CPointer(pointee)(address, dtype)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

    return sig, codegen


@jit()
def _cut(k, n, parts):
    # Part k of range(n) cut into near-equal parts, as _team.cut does.
    return k * n // parts, (k + 1) * n // parts


@jit()
def rnn_forward_jobs(runner, address, x, wx, wh, b, hs, rec, code, parts):
    """The jobs of :func:`._recurrence.forward_share` for the batch cut into ``parts`` ranges of
    sequences (rows of ``rec``, an (N, H) scratch array, are each range's own); ``runner`` is
    :func:`runner` ``("rnn_forward", dtype)``."""
    n, steps, f = x.shape
    h = wh.shape[0]
    jobs = np.zeros((parts, JOB_WORDS), np.int64)
    for k in range(parts):
        lo, hi = _cut(k, n, parts)
        job = jobs[k]
        job[0] = runner
        job[1], job[2], job[3], job[4], job[5], job[6], job[7], job[8] = address, code, lo, hi, n, steps, f, h
        job[9], job[10], job[11] = x.ctypes.data, wx.ctypes.data, wh.ctypes.data
        job[12], job[13] = b.ctypes.data, hs.ctypes.data
        job[14] = rec.ctypes.data + lo * h * rec.itemsize
    return jobs


@jit()
def rnn_backward_jobs(runner, address, dhs, x, wx, wh, hs, das, carry, wht, dwx, dwh, db, dx, need_dx, code, parts):
    """The jobs of :func:`._recurrence.backward_share` for the batch cut into ``parts`` ranges;
    ``carry`` is (N, H) scratch. Part k writes its weight and bias gradients into ``dwx[k]``,
    ``dwh[k]`` and ``db[k]`` (zeroed here) for the caller to add up, and uses ``wht[k]`` (H, H)
    for its copy of ``wh.T``."""
    n, steps, f = x.shape
    h = wh.shape[0]
    jobs = np.zeros((parts, JOB_WORDS), np.int64)
    for k in range(parts):
        lo, hi = _cut(k, n, parts)
        for j in range(h):  # a loop: slice assignment is slow to compile
            db[k, j] = 0
        job = jobs[k]
        job[0] = runner
        job[1], job[2], job[3], job[4], job[5], job[6], job[7], job[8] = address, code, lo, hi, n, steps, f, h
        job[9], job[10], job[11] = dhs.ctypes.data, x.ctypes.data, wx.ctypes.data
        job[12], job[13], job[20] = wht[k].ctypes.data, hs.ctypes.data, wh.ctypes.data
        job[14], job[15] = das.ctypes.data, carry.ctypes.data + lo * h * carry.itemsize
        job[16], job[17], job[18] = dwx[k].ctypes.data, dwh[k].ctypes.data, db[k].ctypes.data
        job[19] = dx.ctypes.data if need_dx else 0
    return jobs


@jit()
def _run_rnn_forward(job, dtype):
    address, code, lo, hi, n, steps, f, h = job[1], job[2], job[3], job[4], job[5], job[6], job[7], job[8]
    forward_share(address, carray(_pointer(job[9], dtype), (n, steps, f)), carray(_pointer(job[10], dtype), (f, h)),
                  carray(_pointer(job[11], dtype), (h, h)), carray(_pointer(job[12], dtype), (h,)),
                  carray(_pointer(job[13], dtype), (n, steps, h)), carray(_pointer(job[14], dtype), (hi - lo, h)),
                  code, lo, hi)


@jit()
def _run_rnn_backward(job, dtype):
    address, code, lo, hi, n, steps, f, h = job[1], job[2], job[3], job[4], job[5], job[6], job[7], job[8]
    x = carray(_pointer(job[10], dtype), (n, steps, f))
    need_dx = job[19] != 0
    # Without an input gradient the kernel never touches dx: x stands in for its type.
    dx = carray(_pointer(job[19], dtype), (n, steps, f)) if need_dx else x
    backward_share(address, carray(_pointer(job[9], dtype), (n, steps, h)), x, carray(_pointer(job[11], dtype), (f, h)),
                   carray(_pointer(job[20], dtype), (h, h)), carray(_pointer(job[12], dtype), (h, h)),
                   carray(_pointer(job[13], dtype), (n, steps, h)),
                   carray(_pointer(job[14], dtype), (n, steps, h)), carray(_pointer(job[15], dtype), (hi - lo, h)),
                   carray(_pointer(job[16], dtype), (f, h)), carray(_pointer(job[17], dtype), (h, h)),
                   carray(_pointer(job[18], dtype), (h,)), dx, need_dx, code, lo, hi)


@jit()
def update_jobs(runner, kind, param, grad, s1, s2, coef, parts):
    """The jobs of :func:`._updates.update_range` for the buffers cut into ``parts`` ranges."""
    jobs = np.zeros((parts, JOB_WORDS), np.int64)
    for k in range(parts):
        lo, hi = _cut(k, param.size, parts)
        job = jobs[k]
        job[0], job[1], job[2], job[3], job[4] = runner, kind, lo, hi, param.size
        job[5], job[6], job[7], job[8] = param.ctypes.data, grad.ctypes.data, s1.ctypes.data, s2.ctypes.data
        job[9] = coef.ctypes.data
    return jobs


@jit()
def _run_update(job, dtype):
    n = job[4]
    update_range(job[1], carray(_pointer(job[5], dtype), (n,)), carray(_pointer(job[6], dtype), (n,)),
                 carray(_pointer(job[7], dtype), (n,)), carray(_pointer(job[8], dtype), (n,)),
                 carray(_pointer(job[9], np.float64), (8,)), job[2], job[3])


# One plain module-level function per (kind, dtype), spelled out on purpose. Made by a factory,
# each would be a closure, and numba keys a cached closure by its pickled cells, which differ from
# process to process: every new process compiled the runner again (0.3-0.6 s) and added one more
# entry to the cache directory (measured). The dtype must be a compile-time constant, so that
# only the kernels of the dtypes a model uses are ever compiled.
def _update_f32(job):
    _run_update(carray(job, (JOB_WORDS,)), np.float32)


def _update_f64(job):
    _run_update(carray(job, (JOB_WORDS,)), np.float64)


def _rnn_forward_f32(job):
    _run_rnn_forward(carray(job, (JOB_WORDS,)), np.float32)


def _rnn_forward_f64(job):
    _run_rnn_forward(carray(job, (JOB_WORDS,)), np.float64)


def _rnn_backward_f32(job):
    _run_rnn_backward(carray(job, (JOB_WORDS,)), np.float32)


def _rnn_backward_f64(job):
    _run_rnn_backward(carray(job, (JOB_WORDS,)), np.float64)


_RUNNERS = {("rnn_forward", "f4"): _rnn_forward_f32, ("rnn_forward", "f8"): _rnn_forward_f64,
            ("rnn_backward", "f4"): _rnn_backward_f32, ("rnn_backward", "f8"): _rnn_backward_f64,
            ("update", "f4"): _update_f32, ("update", "f8"): _update_f64}
_compiled: dict = {}


def runner(name: str, dtype) -> int:
    """The address of the compiled function that runs ``name`` jobs in ``dtype``, compiled (or
    loaded from the cache) on first use, so only the kernels a model uses are ever compiled."""
    key = (name, np.dtype(dtype).str[1:])
    compiled = _compiled.get(key)
    if compiled is None:
        compiled = _compiled[key] = cfunc(_RUNNER_TYPE, cache=CACHE.enabled, error_model="numpy")(_RUNNERS[key])
    return compiled.address


@intrinsic
def run_job(typingctx, job):
    """Run the job in the row ``job``: call the function at ``job[0]`` with the row's address."""
    if not (isinstance(job, types.Array) and job.dtype == types.int64):
        return None
    sig = types.void(job)

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        fnty = ir.FunctionType(ir.VoidType(), [data.type])
        builder.call(builder.inttoptr(builder.load(data), fnty.as_pointer()), [data])
        return context.get_dummy_value()

    return sig, codegen
