"""Compile every custom kernel of the cupy backend with NVRTC, exactly as cupy would generate it.

Needs cupy and NVRTC (``pip install cupy-cuda12x nvidia-cuda-nvrtc-cu12``) but no GPU, so a
developer without one can still check that the CUDA source is accepted. Also checks that the
float32 instantiations do no float64 arithmetic (an unsuffixed ``0.5`` would silently promote).

cupy's code generator is internal API: when this cupy's differs from the one this test was
written against, the test skips (the GPU suite compiles the kernels for real anyway).
"""

from __future__ import annotations

import importlib.util
import re

import numpy as np
import pytest

if importlib.util.find_spec("cupy") is None:
    pytest.skip("cupy is not installed: the NVRTC compile check needs it (no GPU needed)", allow_module_level=True)

# Kernel parameters typed T that are passed Python scalars (the rest are arrays).
SCALAR_T = {"alpha", "rate", "scale", "count", "lr", "mu", "b1", "one_minus_b1", "b2", "one_minus_b2",
            "step_size", "inv_bias2", "eps", "rho", "one_minus_rho", "delta"}
ARCH = "-arch=compute_90"  # the H100


@pytest.fixture(scope="module")
def toolkit():
    try:
        import cupy
        import cupy._core._kernel as K
        import cupy._core._reduction as R
        import cupy._core.core as core
        import cupy.cuda.compiler as C
        from cupy._core import _carray, _scalar

        C._get_nvrtc_version()
    except Exception as exc:  # no NVRTC library, or a cupy without these internals
        pytest.skip(f"NVRTC is not usable here ({type(exc).__name__}: {exc})")
    return cupy, K, R, core, C, _carray, _scalar


def _kernels():
    from sega_backend_cupy import activations, conv, dropout, losses, optimizers, rnn

    import cupy._core._kernel as K
    import cupy._core._reduction as R

    found = []
    for module in (activations, conv, rnn, dropout, losses, optimizers):
        for value in vars(module).values():
            candidates = [value]
            if isinstance(value, dict):
                candidates = [k for v in value.values() for k in (v if isinstance(v, tuple) else (v,))]
            found += [k for k in candidates if isinstance(k, (K.ElementwiseKernel, R.ReductionKernel))]
    return found


def _generate(toolkit, kernel, dtype):
    cupy, K, R, core, C, _carray, _scalar = toolkit
    ndarray_kind, indexer_kind, scalar_kind = 1, 2, 3

    def info(p):
        t = np.dtype(p.dtype) if p.dtype is not None else dtype
        if p.raw:
            return K._ArgInfo(ndarray_kind, cupy.ndarray, t, 1, True, True)
        if p.dtype is not None or p.name in SCALAR_T:
            return K._ArgInfo(scalar_kind, _scalar.CScalar, t, 0, True, True)
        return K._ArgInfo(ndarray_kind, cupy.ndarray, t, 1, True, True)

    if isinstance(kernel, K.ElementwiseKernel):
        params = kernel.in_params + kernel.out_params + K._get_param_info("CIndexer _ind", False)
        infos = tuple(info(p) for p in kernel.in_params + kernel.out_params)
        infos += (K._ArgInfo(indexer_kind, _carray.Indexer, None, 1, True, True),)
        return K._get_elementwise_kernel_code(infos, K._TypeMap((("T", dtype),)), params, kernel.operation, kernel.name, kernel.preamble)
    params = (
        kernel.in_params
        + kernel.out_params
        + K._get_param_info("CIndexer _in_ind, CIndexer _out_ind", False)
        + K._get_param_info("int32 _block_stride", True)
    )
    infos = tuple(info(p) for p in kernel.in_params) + (
        K._ArgInfo(ndarray_kind, cupy.ndarray, dtype, 0, True, True),
        K._ArgInfo(indexer_kind, _carray.Indexer, None, 1, True, True),
        K._ArgInfo(indexer_kind, _carray.Indexer, None, 0, True, True),
        K._ArgInfo(scalar_kind, _scalar.CScalar, np.dtype(np.int32), 0, True, True),
    )
    type_map = K._TypeMap((("T", dtype), ("IndexT", np.int32)))
    return R._ReductionKernel_get_cached_function_code(
        len(kernel.in_params), len(kernel.out_params), params, infos, type_map, kernel.name, 512,
        kernel.reduce_type, kernel.identity, kernel.map_expr, kernel.reduce_expr, kernel.post_map_expr,
        kernel.preamble, (),
    )


def _ptx(toolkit, source, name, options, name_expressions=None):
    C = toolkit[4]
    program = C._NVRTCProgram(source, name + ".cu", name_expressions=name_expressions, method="ptx")
    ptx, _ = program.compile(options=options)
    return ptx.decode() if isinstance(ptx, bytes) else ptx


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_cupy_kernel_compiles(toolkit, dtype):
    core = toolkit[3]
    headers = "".join(f"#include <{h}>\n" for h in core._cupy_header_list)
    options = tuple(core.assemble_cupy_compiler_options(())) + (ARCH,)
    kernels = _kernels()
    assert len(kernels) >= 40
    for kernel in kernels:
        try:
            source = _generate(toolkit, kernel, np.dtype(dtype))
        except (AttributeError, TypeError) as exc:
            pytest.skip(f"this cupy's internal kernel code generator differs ({exc})")
        ptx = _ptx(toolkit, headers + source, kernel.name, options)
        if dtype == np.float32:
            assert not re.search(r"\.f64\b", ptx), f"{kernel.name} does float64 arithmetic in its float32 version"


def test_row_kernels_compile(toolkit):
    from sega_backend_cupy import _rowwise

    names = [f"{n}<{t}>" for n in _rowwise.KERNELS for t in ("float", "double")]
    _ptx(toolkit, _rowwise._SOURCE, "rowwise", ("-std=c++17", ARCH), names)
    floats = [f"{n}<float>" for n in _rowwise.KERNELS]
    ptx = _ptx(toolkit, _rowwise._SOURCE, "rowwise_float", ("-std=c++17", ARCH), floats)
    assert not re.search(r"\.f64\b", ptx), "a float32 row kernel does float64 arithmetic"
