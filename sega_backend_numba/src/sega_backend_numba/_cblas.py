"""Matrix products called from compiled code: NumPy's own OpenBLAS ``cblas_?gemm``, by address.

The recurrent layer's time loop alternates a small product with a small elementwise pass, 55
times per batch. Driven from Python, every step pays a NumPy call, a numba dispatch and two GIL
hand-overs, and with two threads running their own halves of the batch the GIL hand-overs
queue up. :func:`gemm` lets a compiled loop call BLAS itself, so a thread runs its whole time
loop in one compiled call without the GIL.

The function is found in the OpenBLAS that NumPy loaded (threadpoolctl knows which file that
is): ``cblas_sgemm``/``cblas_dgemm`` with the library's symbol prefix and suffix. Only 64-bit
integer builds are used (their configuration string says ``USE64BITINT``; NumPy's wheels ship
one), so the argument types below are exactly the library's, and each address is checked on a
small product against ``np.matmul`` before it is used. Anything else (another BLAS, a 32-bit
integer build, a failed check) leaves :func:`addresses` empty and the callers on their Python
loops, which give the same results.
"""

from __future__ import annotations

import ctypes

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ._jit import jit

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112


@intrinsic
def gemm(typingctx, address, trans_a, trans_b, m, n, k, a, a_offset, lda, b, b_offset, ldb, beta, c, c_offset, ldc):
    """``C = A @ B + beta * C`` (row-major, ``A``/``B`` transposed as asked) by the cblas gemm at
    ``address``; each matrix starts ``*_offset`` elements into its array, rows ``ld*`` apart."""
    if not (isinstance(a, types.Array) and a.dtype in (types.float32, types.float64)
            and b.dtype == a.dtype and c.dtype == a.dtype):
        return None
    integer = types.intp
    sig = types.void(integer, integer, integer, integer, integer, integer, a, integer, integer,
                     b, integer, integer, a.dtype, c, integer, integer)

    def codegen(context, builder, signature, args):
        real = context.get_value_type(signature.args[6].dtype)
        i32, i64 = ir.IntType(32), ir.IntType(64)
        pointer = real.as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [i32, i32, i32, i64, i64, i64, real, pointer, i64,
                                               pointer, i64, real, pointer, i64])
        (addr, ta, tb, m_, n_, k_, a_, a_off, lda_, b_, b_off, ldb_, beta_, c_, c_off, ldc_) = args

        def at(value, index, offset):
            array = context.make_array(signature.args[index])(context, builder, value)
            return builder.gep(array.data, [offset])

        fn = builder.inttoptr(addr, fnty.as_pointer())
        builder.call(fn, [ir.Constant(i32, ROW_MAJOR), builder.trunc(ta, i32), builder.trunc(tb, i32),
                          m_, n_, k_, ir.Constant(real, 1.0), at(a_, 6, a_off), lda_, at(b_, 9, b_off),
                          ldb_, beta_, at(c_, 13, c_off), ldc_])
        return context.get_dummy_value()

    return sig, codegen


@jit()
def _product(address, a, b, c):
    """``c = a @ b.T`` through :func:`gemm` (the self-check)."""
    gemm(address, NO_TRANS, TRANS, a.shape[0], b.shape[0], a.shape[1], a, 0, a.shape[1], b, 0, b.shape[1],
         c.dtype.type(0), c, 0, c.shape[1])


def _symbols(controller) -> tuple[str, str] | None:
    """(prefix, suffix) of an OpenBLAS with 64-bit integers, else None."""
    prefix = getattr(controller, "_symbol_prefix", None)
    suffix = getattr(controller, "_symbol_suffix", None)
    candidates = [(prefix, suffix)] if prefix is not None and suffix is not None else []
    candidates += [("scipy_", "64_"), ("", "64_"), ("", "")]
    for prefix, suffix in candidates:
        try:
            config = getattr(controller.dynlib, f"{prefix}openblas_get_config{suffix}")
        except AttributeError:
            continue
        config.restype = ctypes.c_char_p
        config.argtypes = []
        if b"USE64BITINT" in (config() or b""):
            return prefix, suffix
        return None
    return None


def _checked(address: int, dtype) -> bool:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 5)).astype(dtype)
    b = rng.standard_normal((4, 5)).astype(dtype)
    c = np.full((3, 4), np.nan, dtype)
    _product(address, a, b, c)
    return bool(np.allclose(c, a @ b.T, rtol=1e-5, atol=1e-5))


def _find() -> dict:
    from ._team import team

    for controller in team().blas.controllers:
        if getattr(controller, "internal_api", None) != "openblas":
            continue
        symbols = _symbols(controller)
        if symbols is None:
            continue
        prefix, suffix = symbols
        found = {}
        for dtype, letter in ((np.float32, "s"), (np.float64, "d")):
            try:
                fn = getattr(controller.dynlib, f"{prefix}cblas_{letter}gemm{suffix}")
            except AttributeError:
                break
            address = ctypes.cast(fn, ctypes.c_void_p).value
            if not address or not _checked(address, dtype):
                break
            found[np.dtype(dtype)] = address
        else:
            return found
    return {}


_addresses: dict | None = None


def addresses() -> dict:
    """``{np.dtype: address of cblas_?gemm}`` for float32 and float64, or ``{}`` (see above)."""
    global _addresses
    if _addresses is None:
        _addresses = _find()
    return _addresses
