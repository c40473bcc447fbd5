"""Row-wise CUDA kernels: softmax forward/backward and fused softmax cross-entropy.

One warp (32 threads) owns one row: its lanes stride over the columns and combine their partial
maxima and sums with warp shuffles, so a row of any length is one pass of one launch, with no
shared memory and no second kernel. The source is templated on the float type and compiled once
per process (lazily, on first use) for float and double through ``name_expressions``.
"""

from __future__ import annotations

import functools

import numpy as np

from ._cupy import cupy

_SOURCE = r"""
template <typename T>
__device__ __forceinline__ T sega_warp_max(T v) {
    for (int offset = 16; offset > 0; offset >>= 1) {
        const T other = __shfl_xor_sync(0xffffffffu, v, offset);
        v = other > v ? other : v;
    }
    return v;
}

template <typename T>
__device__ __forceinline__ T sega_warp_sum(T v) {
    for (int offset = 16; offset > 0; offset >>= 1) {
        v += __shfl_xor_sync(0xffffffffu, v, offset);
    }
    return v;
}

// Row maximum m and lse = log(sum(exp(z - m))): log_softmax(z) = (z - m) - lse.
template <typename T>
__device__ __forceinline__ void sega_row_logsumexp(const T* zr, int cols, int lane, T& m, T& lse) {
    T mx = zr[0];
    for (int c = lane; c < cols; c += 32) {
        const T v = zr[c];
        mx = v > mx ? v : mx;
    }
    mx = sega_warp_max(mx);
    T s = (T)0;
    for (int c = lane; c < cols; c += 32) {
        s += exp(zr[c] - mx);
    }
    s = sega_warp_sum(s);
    m = mx;
    lse = log(s);
}

// The whole warp leaves together (row is uniform across a warp), so every shuffle that runs
// has all 32 lanes present, as the full mask promises.
#define SEGA_ROW_PROLOGUE                                                        \
    const long long row = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5; \
    const int lane = threadIdx.x & 31;                                           \
    if (row >= rows) return;

template <typename T>
__global__ void sega_softmax_forward(const T* __restrict__ z, T* __restrict__ y, long long rows, int cols) {
    SEGA_ROW_PROLOGUE
    const T* zr = z + row * cols;
    T* yr = y + row * cols;
    T mx = zr[0];
    for (int c = lane; c < cols; c += 32) {
        const T v = zr[c];
        mx = v > mx ? v : mx;
    }
    mx = sega_warp_max(mx);
    T s = (T)0;
    for (int c = lane; c < cols; c += 32) {
        const T e = exp(zr[c] - mx);
        yr[c] = e;
        s += e;
    }
    s = sega_warp_sum(s);
    // Each lane rescales only the entries it wrote itself: no synchronisation needed.
    for (int c = lane; c < cols; c += 32) {
        yr[c] = yr[c] / s;
    }
}

template <typename T>
__global__ void sega_softmax_backward(const T* __restrict__ dy, const T* __restrict__ y, T* __restrict__ dz,
                                      long long rows, int cols) {
    SEGA_ROW_PROLOGUE
    const long long off = row * cols;
    T s = (T)0;
    for (int c = lane; c < cols; c += 32) {
        s += dy[off + c] * y[off + c];
    }
    s = sega_warp_sum(s);
    for (int c = lane; c < cols; c += 32) {
        dz[off + c] = y[off + c] * (dy[off + c] - s);
    }
}

// Integer labels: grad = (softmax - onehot) / rows; row_loss = -log_softmax[label].
template <typename T>
__global__ void sega_sce_labels(const T* __restrict__ z, const long long* __restrict__ labels,
                                T* __restrict__ grad, T* __restrict__ row_loss, long long rows, int cols) {
    SEGA_ROW_PROLOGUE
    const T* zr = z + row * cols;
    T* gr = grad + row * cols;
    T m, lse;
    sega_row_logsumexp(zr, cols, lane, m, lse);
    const long long label = labels[row];
    const T count = (T)rows;
    for (int c = lane; c < cols; c += 32) {
        T p = exp((zr[c] - m) - lse);
        if (c == label) p -= (T)1;
        gr[c] = p / count;
    }
    if (lane == 0) {
        // An out-of-range label poisons the loss (NaN) instead of reading out of bounds.
        row_loss[row] = (label >= 0 && label < cols) ? -((zr[label] - m) - lse) : sqrt((T)-1);
    }
}

// Probability (or one-hot) targets: grad = (softmax - p) / rows; row_loss = -sum(p * log_softmax).
template <typename T>
__global__ void sega_sce_probs(const T* __restrict__ z, const T* __restrict__ target,
                               T* __restrict__ grad, T* __restrict__ row_loss, long long rows, int cols) {
    SEGA_ROW_PROLOGUE
    const T* zr = z + row * cols;
    const T* tr = target + row * cols;
    T* gr = grad + row * cols;
    T m, lse;
    sega_row_logsumexp(zr, cols, lane, m, lse);
    const T count = (T)rows;
    T acc = (T)0;
    for (int c = lane; c < cols; c += 32) {
        const T lp = (zr[c] - m) - lse;
        const T p = tr[c];
        acc += p * lp;
        gr[c] = (exp(lp) - p) / count;
    }
    acc = sega_warp_sum(acc);
    if (lane == 0) row_loss[row] = -acc;
}
"""

KERNELS = ("sega_softmax_forward", "sega_softmax_backward", "sega_sce_labels", "sega_sce_probs")

_C_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}

#: Rows per block: 8 warps of 32 threads.
ROWS_PER_BLOCK = 8


@functools.lru_cache(maxsize=None)
def _module():
    # RawModule compiles on first get_function, once per process (and NVRTC output is cached
    # on disk by cupy), never per call.
    expressions = [f"{name}<{ctype}>" for name in KERNELS for ctype in _C_TYPES.values()]
    return cupy.RawModule(code=_SOURCE, name_expressions=expressions)


@functools.lru_cache(maxsize=None)
def kernel(name: str, dtype):
    """The compiled kernel ``name`` for float dtype ``dtype`` (float32 or float64)."""
    try:
        ctype = _C_TYPES[np.dtype(dtype)]
    except KeyError:
        raise TypeError(f"the cupy backend computes in float32 or float64, got {np.dtype(dtype)}") from None
    return _module().get_function(f"{name}<{ctype}>")


def launch(name: str, dtype, rows: int, args: tuple) -> None:
    """Run row kernel ``name`` over ``rows`` rows; ``args`` are its arguments after the arrays'
    pointers, already typed (``np.int64`` rows, ``np.int32`` cols)."""
    if rows == 0:
        return
    blocks = (rows + ROWS_PER_BLOCK - 1) // ROWS_PER_BLOCK
    kernel(name, dtype)((blocks,), (32 * ROWS_PER_BLOCK,), args)
