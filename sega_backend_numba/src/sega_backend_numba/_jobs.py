"""Work that a team thread runs entirely in compiled code: a job is one row of integers.

A worker of the team (:mod:`._team`) that is handed a Python function has to take the GIL
before it can start, and the thread that handed it over holds the GIL until it enters its own
compiled share: on the development machine the worker started 20 us after the caller, on
every split, and an RNN batch makes two. A job instead describes a compiled share by the
addresses and sizes of its arrays, so a worker spinning in compiled code picks it up and runs
it at once, without the GIL; the caller runs its own share through the same :func:`run_job`.

Rows hold raw addresses: whoever makes a job keeps its arrays alive and unchanged in shape
until the job has run, and checks their shapes and dtypes first (nothing is checked here).
All arrays must be C-contiguous and of one dtype. The rows are made in compiled code too
(making them in Python, reading each array's address through ``ctypes``, cost 8 us a job).
"""

from __future__ import annotations

import numpy as np
from numba import carray, types
from numba.extending import intrinsic

from ._jit import jit
from ._recurrence import backward_share, forward_share

#: Integers in a job row.
JOB_WORDS = 24
#: Job kinds (word 0). Negative kinds are the team's own (a Python function to run).
RNN_FORWARD_F32, RNN_FORWARD_F64, RNN_BACKWARD_F32, RNN_BACKWARD_F64 = 1, 2, 3, 4


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
def rnn_forward_jobs(address, x, wx, wh, b, hs, rec, code, parts):
    """The jobs of :func:`._recurrence.forward_share` for the batch cut into ``parts`` ranges of
    sequences (rows of ``rec``, an (N, H) scratch array, are each range's own)."""
    n, steps, f = x.shape
    h = wh.shape[0]
    jobs = np.zeros((parts, JOB_WORDS), np.int64)
    for k in range(parts):
        lo, hi = _cut(k, n, parts)
        job = jobs[k]
        job[0] = RNN_FORWARD_F32 if hs.itemsize == 4 else RNN_FORWARD_F64
        job[1], job[2], job[3], job[4], job[5], job[6], job[7], job[8] = address, code, lo, hi, n, steps, f, h
        job[9], job[10], job[11], job[12], job[13] = x.ctypes.data, wx.ctypes.data, wh.ctypes.data, b.ctypes.data, hs.ctypes.data
        job[14] = rec.ctypes.data + lo * h * rec.itemsize
    return jobs


@jit()
def rnn_backward_jobs(address, dhs, x, wx, wht, hs, das, carry, dwx, dwh, db, dx, need_dx, code, parts):
    """The jobs of :func:`._recurrence.backward_share` for the batch cut into ``parts`` ranges;
    ``carry`` is (N, H) scratch. Part k writes its weight and bias gradients into ``dwx[k]``,
    ``dwh[k]`` and ``db[k]`` (zeroed here) for the caller to add up."""
    n, steps, f = x.shape
    h = wht.shape[0]
    jobs = np.zeros((parts, JOB_WORDS), np.int64)
    for k in range(parts):
        lo, hi = _cut(k, n, parts)
        db[k, :] = 0
        job = jobs[k]
        job[0] = RNN_BACKWARD_F32 if hs.itemsize == 4 else RNN_BACKWARD_F64
        job[1], job[2], job[3], job[4], job[5], job[6], job[7], job[8] = address, code, lo, hi, n, steps, f, h
        job[9], job[10], job[11], job[12], job[13] = dhs.ctypes.data, x.ctypes.data, wx.ctypes.data, wht.ctypes.data, hs.ctypes.data
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
                   carray(_pointer(job[12], dtype), (h, h)), carray(_pointer(job[13], dtype), (n, steps, h)),
                   carray(_pointer(job[14], dtype), (n, steps, h)), carray(_pointer(job[15], dtype), (hi - lo, h)),
                   carray(_pointer(job[16], dtype), (f, h)), carray(_pointer(job[17], dtype), (h, h)),
                   carray(_pointer(job[18], dtype), (h,)), dx, need_dx, code, lo, hi)


@jit()
def run_job(job):
    """Run the job described by the row ``job`` (see the module docstring)."""
    kind = job[0]
    if kind == RNN_FORWARD_F32:
        _run_rnn_forward(job, np.float32)
    elif kind == RNN_FORWARD_F64:
        _run_rnn_forward(job, np.float64)
    elif kind == RNN_BACKWARD_F32:
        _run_rnn_backward(job, np.float32)
    elif kind == RNN_BACKWARD_F64:
        _run_rnn_backward(job, np.float64)
