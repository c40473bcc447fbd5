"""A CPU stand-in for the parts of cupy the cupy backend uses, to check its kernels without a GPU.

``make_fake_cupy(workdir)`` returns a module that looks like ``cupy`` to the backend's
implementation modules: arrays are NumPy arrays, GEMMs and reductions are NumPy's, and the
user-defined kernels -- ``ElementwiseKernel``, ``ReductionKernel`` and ``RawModule`` -- run the
backend's *own CUDA source text*, compiled as C++ with g++:

* an elementwise kernel's operation runs in a loop over ``i``, its non-raw arguments bound by
  reference per element (scalars broadcast), its raw arguments as plain pointers, ``T`` the
  float type -- the same binding cupy generates;
* a reduction kernel's ``map_expr``/``reduce_expr``/``post_map_expr`` run as a serial
  reduction over every element, with ``_in_ind.size()``, ``_out_ind.size()`` and
  ``_type_reduce`` defined as cupy defines them;
* a raw module's kernels run each CUDA thread as a fiber (``ucontext``): the 32 lanes of a warp
  take turns in one OS thread and meet at every ``__shfl_xor_sync``, which exchanges their
  values; warps and blocks run one after another. A warp whose lanes do not all reach the same
  shuffle (some returned early) is reported as an error.

It also enforces cupy's typing rules that matter here: every array bound to a ``T`` parameter
must have the same dtype (cupy raises ``TypeError`` otherwise), Python scalars are cast to the
parameter's type, and output arrays must have the loop's shape.

Streams and events (``cupy.cuda``) are emulated so that ordering mistakes show up as wrong data:
work on the null stream (the default compute stream) runs at once, but a host-to-device copy
issued on any other stream is *deferred*. Its destination holds garbage (NaN, or the smallest
integer) from the start, and the copy reads its source only when the GPU would have to have run
it: when an event recorded after it is waited on by the null stream or synchronised by the host,
or its stream is synchronised. A consumer that forgets to wait reads garbage; a host that
rewrites a pinned buffer before the copy out of it has run sends the new contents instead.
``cuda.host_waits`` (a callable, or ``None``) is told of every host wait on the device.

What it cannot show: NVRTC accepting the source (it is compiled by g++ with a few CUDA keywords
defined away), real warp scheduling, cuBLAS, device memory reuse, and speed. Those need the GPU run.
"""

from __future__ import annotations

import ctypes
import hashlib
import re
import subprocess
import types
from pathlib import Path

import numpy as np

_C_TYPES = {
    np.dtype(np.float32): "float",
    np.dtype(np.float64): "double",
    np.dtype(np.int32): "int",
    np.dtype(np.int64): "long long",
    np.dtype(np.bool_): "bool",
}
_NAMED_TYPES = {"int32": np.int32, "int64": np.int64, "float32": np.float32, "float64": np.float64, "bool": np.bool_}
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

_PRELUDE = r"""
#include <cmath>
#include <cstdint>
#include <utility>
using namespace std;
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__
"""

_THREADS = r"""
#include <ucontext.h>
#include <functional>
#include <memory>
// CUDA threads as fibers: the 32 lanes of a warp run in this OS thread, one at a time, and
// switch only inside __shfl_xor_sync, which is a barrier for the whole warp. Warps and blocks
// run one after another (the kernels emulated here share nothing between warps).
struct sega_dim3 { unsigned x = 0, y = 0, z = 0; };
sega_dim3 threadIdx, blockIdx, blockDim, gridDim;
static int sega_error = 0;

struct SegaLane {
    ucontext_t ctx;
    std::unique_ptr<char[]> stack;
    bool done = false;
};
struct SegaWarp {
    ucontext_t scheduler;
    SegaLane lanes[32];
    int current = 0;
    unsigned first_thread = 0;
    alignas(16) unsigned char slots[32 * 16];
};
static SegaWarp* sega_warp = nullptr;
static std::function<void()> sega_body;
static const size_t SEGA_STACK = 256 * 1024;

static void sega_yield() {
    SegaWarp* w = sega_warp;
    swapcontext(&w->lanes[w->current].ctx, &w->scheduler);
}

static void sega_lane_entry() {
    sega_body();
    sega_warp->lanes[sega_warp->current].done = true;
}  // returns to the scheduler through uc_link

template <typename T>
T __shfl_xor_sync(unsigned, T v, int lane_mask) {
    const int lane = sega_warp->current;
    reinterpret_cast<T*>(sega_warp->slots)[lane] = v;
    sega_yield();  // every lane has written its value
    const T r = reinterpret_cast<T*>(sega_warp->slots)[lane ^ lane_mask];
    sega_yield();  // every lane has read before anyone writes again
    return r;
}

static void sega_run_warp(SegaWarp& w, unsigned lanes) {
    for (unsigned l = 0; l < lanes; ++l) {
        SegaLane& lane = w.lanes[l];
        if (!lane.stack) lane.stack.reset(new char[SEGA_STACK]);
        lane.done = false;
        getcontext(&lane.ctx);
        lane.ctx.uc_stack.ss_sp = lane.stack.get();
        lane.ctx.uc_stack.ss_size = SEGA_STACK;
        lane.ctx.uc_link = &w.scheduler;
        makecontext(&lane.ctx, sega_lane_entry, 0);
    }
    for (;;) {
        unsigned finished = 0;
        for (unsigned l = 0; l < lanes; ++l) {
            if (w.lanes[l].done) { ++finished; continue; }
            w.current = (int)l;
            threadIdx.x = w.first_thread + l;
            swapcontext(&w.scheduler, &w.lanes[l].ctx);
            if (w.lanes[l].done) ++finished;
        }
        if (finished == lanes) return;
        if (finished != 0 || lanes != 32) {  // some lanes wait at a shuffle the others never reach
            sega_error = 1;
            return;
        }
    }
}

template <typename... A, size_t... I>
void sega_call(void (*k)(A...), void** args, std::index_sequence<I...>) {
    k(*reinterpret_cast<A*>(args[I])...);
}

template <typename... A>
int sega_launch(void (*k)(A...), unsigned grid, unsigned block, void** args) {
    sega_error = 0;
    blockDim.x = block; gridDim.x = grid;
    static SegaWarp warp;
    sega_warp = &warp;
    sega_body = [k, args] { sega_call(k, args, std::index_sequence_for<A...>{}); };
    for (unsigned b = 0; b < grid && !sega_error; ++b) {
        blockIdx.x = b;
        for (unsigned first = 0; first < block && !sega_error; first += 32) {
            warp.first_thread = first;
            sega_run_warp(warp, block - first < 32 ? block - first : 32);
        }
    }
    return sega_error;
}
"""


def _parse_params(text: str):
    """cupy's parameter list syntax -> [(raw, type, name)]."""
    out = []
    for part in text.split(","):
        words = part.split()
        if not words:
            continue
        raw = "raw" in words[:-2]
        out.append((raw, words[-2], words[-1]))
    return out


def _compile(workdir: Path, source: str, tag: str) -> ctypes.CDLL:
    digest = hashlib.sha1(source.encode()).hexdigest()[:16]
    cpp = workdir / f"{tag}_{digest}.cpp"
    lib = workdir / f"{tag}_{digest}.so"
    if not lib.exists():
        cpp.write_text(source)
        cmd = ["g++", "-std=c++20", "-O1", "-shared", "-fPIC", "-pthread", "-o", str(lib), str(cpp)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"g++ rejected the emulated kernel source ({cpp}):\n{done.stderr[-6000:]}")
    return ctypes.CDLL(str(lib))


class _Emulator:
    """Collects kernels as the backend defines them; compiles them together on first use."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.pending: list = []
        self.libs: dict = {}
        self.counter = 0

    def register(self, kernel) -> str:
        self.counter += 1
        symbol = f"k{self.counter}_{kernel.name}"
        self.pending.append((symbol, kernel))
        return symbol

    def function(self, symbol: str, dtype) -> ctypes._CFuncPtr:
        if symbol not in self.libs:
            units = [_PRELUDE]
            for sym, kernel in self.pending:
                units.append(kernel.cpp(sym))
            lib = _compile(self.workdir, "\n".join(units), "elementwise")
            for sym, _ in self.pending:
                self.libs[sym] = lib
            self.pending = []
        fn = getattr(self.libs[symbol], f"{symbol}_{_C_TYPES[np.dtype(dtype)].replace(' ', '_')}")
        fn.restype = None
        fn.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_longlong), ctypes.c_longlong]
        return fn


def _c_type(ptype: str) -> str:
    return "T" if len(ptype) == 1 else _C_TYPES[np.dtype(_NAMED_TYPES[ptype])]


def _bind_arguments(params, args, dtype, shape):
    """Pointers and strides for the C call, cupy's typing rules applied.

    Returns ``(keep, ptrs, strides, write_back)``: ``keep`` holds every buffer alive for the
    call; a strided (non-contiguous) array runs through a contiguous copy -- cupy indexes it
    through its strides, with the same result -- and ``write_back`` lists the (copy, original)
    pairs to copy back afterwards, for arrays the kernel may write.
    """
    keep, ptrs, strides, write_back = [], [], [], []
    for (raw, ptype, name), arg in zip(params, args):
        want = dtype if len(ptype) == 1 else np.dtype(_NAMED_TYPES[ptype])
        if isinstance(arg, np.ndarray):
            if arg.dtype != want:
                raise TypeError(f"Type is mismatched. {name} {arg.dtype} {want}")
            if not raw and arg.shape != shape:
                raise ValueError(f"emulator: argument {name} has shape {arg.shape}, the loop {shape}")
            buffer = arg
            if not arg.flags.c_contiguous:
                buffer = np.ascontiguousarray(arg)
                write_back.append((buffer, arg))
            keep.append(buffer)
            strides.append(1)
        else:
            keep.append(np.array([arg], dtype=want))  # a Python scalar, cast like cupy does
            strides.append(0)
        ptrs.append(keep[-1].ctypes.data)
    return keep, ptrs, strides, write_back


def _write_back(pairs):
    for buffer, original in pairs:
        original[...] = buffer


def _pack(ptrs, strides):
    return (ctypes.c_void_p * len(ptrs))(*ptrs), (ctypes.c_longlong * len(strides))(*strides)


def _float_type(params, args):
    for (_, ptype, _), arg in zip(params, args):
        if len(ptype) == 1 and isinstance(arg, np.ndarray):
            return arg.dtype
    raise TypeError("emulator: cannot decide T")


def _garbage(a: np.ndarray) -> None:
    """Fill ``a`` with what unwritten device memory would show: NaN, or the smallest integer."""
    a[...] = np.nan if a.dtype.kind in "fc" else (np.iinfo(a.dtype).min if a.dtype.kind in "iu" else 1)


def _make_cuda() -> types.SimpleNamespace:
    """The emulated ``cupy.cuda``: streams whose copies are deferred, events, pinned memory."""
    cuda = types.SimpleNamespace(host_waits=None)

    class Event:
        def __init__(self, block=False, disable_timing=False, interprocess=False):
            self.stream, self.mark = None, 0

        @property
        def done(self):
            return self.stream is None or self.stream.started >= self.mark

        def _reach(self):
            if self.stream is not None:
                self.stream._run_to(self.mark)

        def synchronize(self):
            if cuda.host_waits is not None:
                cuda.host_waits("Event.synchronize")
            self._reach()

    class Stream:
        def __init__(self, null=False, non_blocking=False, ptr=0):
            self.immediate = null
            self.queue, self.issued, self.started = [], 0, 0

        def enqueue(self, operation):
            if self.immediate:
                operation()
                return
            self.queue.append(operation)
            self.issued += 1

        def _run_to(self, mark):
            while self.started < mark:
                operation = self.queue.pop(0)
                self.started += 1  # before running it: a wait inside may come back to this stream
                operation()

        def record(self, event=None):
            event = Event() if event is None else event
            event.stream, event.mark = (None, 0) if self.immediate else (self, self.issued)
            return event

        def wait_event(self, event):
            # The null stream's next work runs at once, so what it waits for must run now; any
            # other stream waits in its queue.
            self.enqueue(event._reach)

        def synchronize(self):
            if cuda.host_waits is not None:
                cuda.host_waits("Stream.synchronize")
            self._run_to(self.issued)

        def __enter__(self):
            current.append(self)
            return self

        def __exit__(self, *exc):
            current.pop()

    Stream.null = Stream(null=True)
    current = [Stream.null]

    def h2d(dst, src, stream=None):
        """Copy host ``src`` into ``dst`` on ``stream`` (or the current one), deferred off the null stream."""
        if dst.shape != src.shape or dst.dtype != src.dtype:
            raise ValueError(f"emulator: set: {src.shape} {src.dtype} into {dst.shape} {dst.dtype}")
        (stream or current[-1]).enqueue(lambda: np.copyto(dst, src))

    cuda.Event, cuda.Stream, cuda.h2d = Event, Stream, h2d
    cuda.get_current_stream = lambda: current[-1]
    cuda.alloc_pinned_memory = bytearray
    return cuda


def make_fake_cupy(workdir: Path) -> types.ModuleType:
    """A module standing in for ``cupy`` (see the module docstring)."""
    emulator = _Emulator(workdir)

    class ElementwiseKernel:
        def __init__(self, in_params, out_params, operation, name="kernel", **kwargs):
            self.ins, self.outs = _parse_params(in_params), _parse_params(out_params)
            self.operation, self.name = operation, name
            self.symbol = emulator.register(self)

        def cpp(self, symbol):
            lines = ["template <typename T>", f"static void {symbol}_impl(void** _p, const long long* _s, long long _n) {{"]
            loop = []
            for k, (raw, ptype, name) in enumerate(self.ins + self.outs):
                ctype = _c_type(ptype)
                const = "const " if k < len(self.ins) else ""
                if raw:
                    lines.append(f"    {const}{ctype}* {name} = ({const}{ctype}*)_p[{k}];")
                else:
                    loop.append(f"        {const}{ctype}& {name} = (({const}{ctype}*)_p[{k}])[i * _s[{k}]];")
            lines.append("    for (long long i = 0; i < _n; ++i) {")
            lines += loop
            lines.append("        {\n" + self.operation + "\n        }")
            lines.append("    }")
            lines.append("}")
            for ctype in ("float", "double"):
                lines.append(
                    f'extern "C" void {symbol}_{ctype}(void** p, const long long* s, long long n) '
                    f"{{ {symbol}_impl<{ctype}>(p, s, n); }}"
                )
            return "\n".join(lines)

        def __call__(self, *args, size=None):
            nin, nall = len(self.ins), len(self.ins) + len(self.outs)
            if len(args) not in (nin, nall):
                raise TypeError(f"Wrong number of arguments for {self.name!r}")
            params = self.ins + self.outs
            given_outs = list(args[nin:])
            dtype = _float_type(self.outs + self.ins, given_outs + list(args[:nin]))
            shapes = {a.shape for (raw, _, _), a in zip(params, args) if not raw and isinstance(a, np.ndarray)}
            if size is not None and not shapes:
                shapes = {(int(size),)}  # cupy: every argument raw, the loop size given
            if len(shapes) != 1:
                raise ValueError(f"emulator: {self.name}: non-raw arrays must share one shape, got {shapes}")
            shape = shapes.pop()
            if not given_outs:
                for raw, ptype, name in self.outs:
                    if raw:
                        raise ValueError("Output array size is Undecided")
                    given_outs.append(np.empty(shape, dtype=dtype if len(ptype) == 1 else _NAMED_TYPES[ptype]))
            full = list(args[:nin]) + given_outs
            keep, ptrs, strides, write_back = _bind_arguments(params, full, dtype, shape)
            count = int(np.prod(shape))
            if count:
                emulator.function(self.symbol, dtype)(*_pack(ptrs, strides), count)
            _write_back(write_back)
            del keep
            return given_outs[0] if len(given_outs) == 1 else tuple(given_outs)

    class ReductionKernel:
        def __init__(self, in_params, out_params, map_expr, reduce_expr, post_map_expr, identity, name="reduce_kernel", **kw):
            self.ins, self.outs = _parse_params(in_params), _parse_params(out_params)
            self.map_expr, self.reduce_expr, self.post_map_expr = map_expr, reduce_expr, post_map_expr
            self.identity, self.name = identity, name
            self.symbol = emulator.register(self)

        def cpp(self, symbol):
            lines = ["template <typename T>", f"static void {symbol}_impl(void** _p, const long long* _s, long long _n) {{"]
            lines.append("    typedef T _type_reduce;")
            lines.append("    struct Ind { long long s; long long size() const { return s; } } _in_ind{_n}, _out_ind{1};")
            lines.append(f"    _type_reduce _acc = _type_reduce({self.identity});")
            lines.append("    for (long long _j = 0; _j < _n; ++_j) {")
            for k, (raw, ptype, name) in enumerate(self.ins):
                ctype = _c_type(ptype)
                lines.append(f"        const {ctype}& {name} = ((const {ctype}*)_p[{k}])[_j * _s[{k}]];")
            lines.append(f"        const _type_reduce _mapped = static_cast<_type_reduce>({self.map_expr});")
            lines.append(f"        {{ const _type_reduce a = _acc, b = _mapped; _acc = ({self.reduce_expr}); }}")
            lines.append("    }")
            (_, ptype, oname) = self.outs[0]
            lines.append(f"    {_c_type(ptype)}& {oname} = *(({_c_type(ptype)}*)_p[{len(self.ins)}]);")
            lines.append(f"    {{ const _type_reduce a = _acc; {self.post_map_expr}; }}")
            lines.append("}")
            for ctype in ("float", "double"):
                lines.append(
                    f'extern "C" void {symbol}_{ctype}(void** p, const long long* s, long long n) '
                    f"{{ {symbol}_impl<{ctype}>(p, s, n); }}"
                )
            return "\n".join(lines)

        def __call__(self, *args, axis=None):
            if axis is not None or len(args) != len(self.ins):
                raise NotImplementedError("emulator: full reductions with inputs only")
            dtype = _float_type(self.ins, args)
            shapes = {a.shape for a in args if isinstance(a, np.ndarray)}
            if len(shapes) != 1:
                raise ValueError(f"emulator: {self.name}: arrays must share one shape, got {shapes}")
            shape = shapes.pop()
            out = np.empty((), dtype=dtype)
            keep, ptrs, strides, _ = _bind_arguments(self.ins, list(args), dtype, shape)
            keep_out, out_ptrs, out_strides, _ = _bind_arguments(self.outs, [out], dtype, ())
            emulator.function(self.symbol, dtype)(*_pack(ptrs + out_ptrs, strides + out_strides), int(np.prod(shape)))
            del keep, keep_out
            return out

    class RawKernel:
        def __init__(self, fn, name):
            self.fn, self.name = fn, name

        def __call__(self, grid, block, args):
            holders = []
            for a in args:
                if isinstance(a, np.ndarray):
                    # A raw pointer ignores strides, on the GPU too: the caller must pass
                    # contiguous arrays, so a strided one is a bug worth reporting.
                    if not a.flags.c_contiguous:
                        raise ValueError(f"emulator: {self.name}: array arguments must be C-contiguous")
                    holders.append(ctypes.c_void_p(a.ctypes.data))
                elif isinstance(a, np.generic):
                    holders.append(np.ctypeslib.as_ctypes_type(a.dtype)(a.item()))
                else:
                    raise TypeError(f"emulator: {self.name}: pass numpy scalars to raw kernels, got {type(a).__name__}")
            argv = (ctypes.c_void_p * len(holders))(*[ctypes.addressof(h) for h in holders])
            (gx,), (bx,) = tuple(grid), tuple(block)
            if self.fn(gx, bx, argv) != 0:
                raise RuntimeError(f"emulator: {self.name}: a warp's lanes did not all meet at a shuffle")
            del args

    class RawModule:
        def __init__(self, code=None, *, name_expressions=(), options=(), **kwargs):
            self.code, self.names = code, list(name_expressions)
            self.lib = None

        def get_function(self, name):
            if self.lib is None:
                shims = [
                    f'extern "C" int sega_shim_{k}(unsigned g, unsigned b, void** a) '
                    f"{{ return sega_launch(&{expr}, g, b, a); }}"
                    for k, expr in enumerate(self.names)
                ]
                self.lib = _compile(workdir, _PRELUDE + _THREADS + self.code + "\n" + "\n".join(shims), "rawmodule")
            fn = getattr(self.lib, f"sega_shim_{self.names.index(name)}")
            fn.restype = ctypes.c_int
            fn.argtypes = [ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(ctypes.c_void_p)]
            return RawKernel(fn, name)

    class _Generator:
        def __init__(self, seed):
            self._rng = np.random.default_rng(seed)

        def random(self, size=None, dtype=np.float64, out=None):
            return self._rng.random(size, dtype=dtype)

    cuda = _make_cuda()

    class ndarray(np.ndarray):
        """An array allocated as ``cupy.ndarray(shape, dtype)``: garbage until written; ``set`` copies."""

        def __new__(cls, shape, dtype=float):
            out = np.ndarray.__new__(cls, shape, dtype)
            _garbage(out)
            return out

        def set(self, arr, stream=None):
            cuda.h2d(self.view(np.ndarray), arr, stream)

    fake = types.ModuleType("cupy")
    fake.__doc__ = "CPU stand-in for cupy (tests only)"
    fake.ElementwiseKernel = ElementwiseKernel
    fake.ReductionKernel = ReductionKernel
    fake.RawModule = RawModule
    fake.ndarray = ndarray
    fake.cuda = cuda
    for name in ("float32", "float64", "int32", "int64", "empty", "empty_like", "zeros", "ascontiguousarray", "matmul", "sum",
                 "broadcast_to", "sqrt"):
        setattr(fake, name, getattr(np, name))
    fake.asarray = lambda x, dtype=None: np.array(x, dtype=dtype, copy=True)
    fake.asnumpy = lambda x: np.asarray(x)
    fake.random = types.SimpleNamespace(default_rng=_Generator)
    fake.is_fake = True
    return fake


def kernel_names(source: str) -> list[str]:
    """Names of the template kernels in a RawModule source (for sanity checks)."""
    return re.findall(r"__global__\s+void\s+(\w+)", source)
