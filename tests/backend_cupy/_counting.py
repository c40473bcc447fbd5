"""Count what a GPU would do, on the CPU emulation: kernel launches and host synchronisations.

``counting_backend(workdir)`` is the cupy backend's own implementation modules on the CPU
emulation of cupy (``_cuda_emulator.py``), wrapped as a sega ``Backend`` whose arrays are
:class:`DeviceArray` -- NumPy arrays that stand for cupy arrays and report to a
:class:`Counter` every operation that would be a stream operation on a GPU, and every one that
would make the host wait for the device:

* a **launch** is each call of one of the backend's CUDA kernels (elementwise, reduction, raw);
  each GEMM (``matmul``, ``@``); each NumPy operation on device arrays that computes (ufuncs and
  their reductions, ``take``, ``stack``, ``copy``, ``astype``, ``argmax``, ``fill``, an
  assignment into a slice, ``zeros``...). Views (``reshape``, ``.T``, basic slicing) are free, as
  they are in cupy. One cupy call is one launch: cupy's reductions are one kernel each.
* a **host sync** is each device-to-host copy (the backend's ``to_host``), each conversion of a
  device array to a Python value (``float()``, ``int()``, ``bool()``, ``if x:``, ``.item()``,
  ``.tolist()``, ``repr``) and each host wait on an event or a stream -- what makes cupy wait for
  the GPU;
* a **host-to-device copy** is each ``to_device`` and each ``ndarray.set``.

Every event records the first caller outside this file, NumPy and the emulator, so a count can
say where it happened (``Counter.where``). The numbers model the real backend's launches as
cupy issues them; the GPU proof (``benchmarks/gpu/prove.sh``) checks them against CUPTI's count
on a real device.
"""

from __future__ import annotations

import collections
import sys
import types
from pathlib import Path

import numpy as np

_EMULATION = sys.modules.get("sega_cupy_tests_emulation")
if _EMULATION is None:  # loaded on its own (benchmarks/gpu/launch_counts.py): load the helper too
    import importlib.util

    _spec = importlib.util.spec_from_file_location("sega_cupy_tests_emulation", Path(__file__).with_name("_emulation.py"))
    _EMULATION = importlib.util.module_from_spec(_spec)
    sys.modules["sega_cupy_tests_emulation"] = _EMULATION
    _spec.loader.exec_module(_EMULATION)

_SKIP_FILES = (str(Path(__file__).resolve()), str(Path(_EMULATION.__file__).resolve()),
               str(Path(__file__).with_name("_cuda_emulator.py").resolve()))
_NUMPY_DIR = str(Path(np.__file__).resolve().parent)


def _caller() -> str:
    """``path:line (function)`` of the first frame outside NumPy and the counting machinery."""
    frame = sys._getframe(2)
    while frame is not None:
        path = frame.f_code.co_filename
        if path not in _SKIP_FILES and not path.startswith(_NUMPY_DIR) and not path.startswith("<"):
            return f"{_short(path)}:{frame.f_lineno} ({frame.f_code.co_name})"
        frame = frame.f_back
    return "?"


def _short(path: str) -> str:
    parts = Path(path).parts
    for anchor in ("sega_core", "sega_backend_cupy", "tests", "benchmarks"):
        if anchor in parts:
            return "/".join(parts[parts.index(anchor):])
    return Path(path).name


class Counter:
    """What the device would have done: launches, host syncs and host-to-device copies."""

    def __init__(self) -> None:
        self.enabled = True
        self.reset()

    def reset(self) -> None:
        """Forget every event."""
        self.launches: list[tuple[str, str]] = []
        self.syncs: list[tuple[str, str]] = []
        self.uploads: list[tuple[str, str]] = []

    def launch(self, name: str) -> None:
        if self.enabled:
            self.launches.append((name, _caller()))

    def sync(self, name: str) -> None:
        if self.enabled:
            self.syncs.append((name, _caller()))

    def upload(self, name: str) -> None:
        if self.enabled:
            self.uploads.append((name, _caller()))

    def mark(self) -> tuple[int, int, int]:
        """Positions in the three logs, for :meth:`since`."""
        return len(self.launches), len(self.syncs), len(self.uploads)

    def since(self, mark) -> dict:
        """The events after ``mark``: ``{"launches": [...], "syncs": [...], "uploads": [...]}``."""
        a, b, c = mark
        return {"launches": self.launches[a:], "syncs": self.syncs[b:], "uploads": self.uploads[c:]}

    def paused(self):
        """A context in which nothing is counted (test set-up, reading results)."""
        counter = self

        class _Paused:
            def __enter__(self):
                self.was = counter.enabled
                counter.enabled = False

            def __exit__(self, *exc):
                counter.enabled = self.was

        return _Paused()


def where(events) -> collections.Counter:
    """How many events came from each place (``path:line (function)``)."""
    return collections.Counter(place for _, place in events)


def by_name(events) -> collections.Counter:
    """How many events of each kind (kernel or operation name)."""
    return collections.Counter(name for name, _ in events)


#: NumPy functions that only make views, read metadata or allocate without writing: free.
_FREE_FUNCTIONS = {
    "reshape", "transpose", "swapaxes", "moveaxis", "squeeze", "expand_dims", "broadcast_to", "atleast_1d",
    "atleast_2d", "atleast_3d", "shape", "ndim", "size", "result_type", "may_share_memory", "shares_memory",
    "empty_like", "iscomplexobj", "isrealobj", "split", "array_split", "broadcast_arrays", "ravel",
}


def _host(value):
    """``value`` with every DeviceArray inside replaced by its plain NumPy view."""
    if isinstance(value, DeviceArray):
        return value.view(np.ndarray)
    if isinstance(value, (list, tuple)):
        return type(value)(_host(v) for v in value)
    if isinstance(value, dict):
        return {k: _host(v) for k, v in value.items()}
    return value


def _device(value, counter):
    """Results back as DeviceArrays (a NumPy scalar becomes a 0-d array, as cupy returns)."""
    if isinstance(value, DeviceArray):
        return value
    if isinstance(value, np.ndarray):
        out = value.view(DeviceArray)
        out._counter = counter
        return out
    if isinstance(value, np.generic):
        out = np.asarray(value).view(DeviceArray)
        out._counter = counter
        return out
    if isinstance(value, tuple):
        return tuple(_device(v, counter) for v in value)
    if isinstance(value, list):
        return [_device(v, counter) for v in value]
    return value


def _advanced(index) -> bool:
    """Whether ``index`` gathers or scatters (an array or list inside), rather than slices."""
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, (np.ndarray, list)) for i in items)


class DeviceArray(np.ndarray):
    """A NumPy array standing for a cupy array: its operations are counted (module docstring)."""

    __array_priority__ = 100.0
    _counter: Counter | None = None

    def __array_finalize__(self, obj):
        self._counter = getattr(obj, "_counter", None)

    # -- operations that run on the device --------------------------------------------------
    def _count(self, name):
        counter = self._counter
        if counter is not None:
            counter.launch(name)
        return counter

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        counter = self._count("gemm" if ufunc is np.matmul else f"{ufunc.__name__}" + ("" if method == "__call__" else f".{method}"))
        if "out" in kwargs:
            kwargs["out"] = _host(kwargs["out"])
        result = getattr(ufunc, method)(*_host(inputs), **kwargs)
        return _device(result, counter)

    def __array_function__(self, func, types_, args, kwargs):
        name = func.__name__
        counter = self._counter
        if name not in _FREE_FUNCTIONS and counter is not None:
            counter.launch("gemm" if name in ("matmul", "dot") else name)
        return _device(func(*_host(args), **_host(kwargs)), counter)

    def _plain(self):
        return self.view(np.ndarray)

    def argmax(self, *args, **kwargs):
        return _device(self._plain().argmax(*args, **_host(kwargs)), self._count("argmax"))

    def argmin(self, *args, **kwargs):
        return _device(self._plain().argmin(*args, **_host(kwargs)), self._count("argmin"))

    def mean(self, *args, **kwargs):
        return _device(self._plain().mean(*args, **_host(kwargs)), self._count("mean"))

    def var(self, *args, **kwargs):
        return _device(self._plain().var(*args, **_host(kwargs)), self._count("var"))

    def std(self, *args, **kwargs):
        return _device(self._plain().std(*args, **_host(kwargs)), self._count("std"))

    def dot(self, other, out=None):
        return _device(self._plain().dot(_host(other), out=_host(out)), self._count("gemm"))

    def clip(self, *args, **kwargs):
        return _device(self._plain().clip(*_host(args), **_host(kwargs)), self._count("clip"))

    def cumsum(self, *args, **kwargs):
        return _device(self._plain().cumsum(*args, **_host(kwargs)), self._count("cumsum"))

    def copy(self, order="C"):
        return _device(self._plain().copy(order), self._count("copy"))

    def astype(self, dtype, order="K", casting="unsafe", subok=True, copy=True):
        if not copy and np.dtype(dtype) == self.dtype:
            return self
        return _device(self._plain().astype(dtype, order=order, casting=casting, copy=copy), self._count("astype"))

    def fill(self, value):
        self._count("fill")
        self._plain().fill(value)

    def nonzero(self):
        counter = self._count("nonzero")
        if counter is not None:
            counter.sync("nonzero (the result's size)")
        return _device(self._plain().nonzero(), counter)

    def __getitem__(self, index):
        if isinstance(index, DeviceArray) and index.dtype == np.bool_:
            counter = self._count("boolean mask")
            if counter is not None:
                counter.sync("boolean mask (the result's size)")
            return _device(self._plain()[_host(index)], counter)
        if _advanced(index):
            return _device(self._plain()[_host(index)], self._count("gather"))
        result = super().__getitem__(index)
        return result if isinstance(result, np.ndarray) else _device(result, self._counter)

    def __setitem__(self, index, value):
        self._count("scatter" if _advanced(index) else "copy into")
        self._plain()[_host(index)] = _host(value)

    # -- operations that make the host wait for the device ----------------------------------
    def _sync(self, name):
        if self._counter is not None:
            self._counter.sync(name)
        return self._plain()

    def __float__(self):
        return float(self._sync("float()"))

    def __int__(self):
        return int(self._sync("int()"))

    def __index__(self):
        return self._sync("index").__index__()

    def __bool__(self):
        return bool(self._sync("bool()"))

    def __complex__(self):
        return complex(self._sync("complex()"))

    def item(self, *args):
        return self._sync(".item()").item(*args)

    def tolist(self):
        return self._sync(".tolist()").tolist()

    def __iter__(self):
        return iter(self._sync("iteration"))

    def __repr__(self):
        return "Device" + repr(self._sync("repr()"))

    def __str__(self):
        return str(self._sync("str()"))

    def __format__(self, spec):
        return format(self._sync("format()"), spec)

    def __reduce__(self):
        raise TypeError("a DeviceArray stands for GPU memory and cannot be pickled")


def _device_xp(counter: Counter):
    """NumPy as the core sees it on the GPU: allocations are device arrays, each counted."""
    xp = types.ModuleType("counted_numpy")

    def __getattr__(name):
        return getattr(np, name)

    xp.__getattr__ = __getattr__

    def allocator(fn, launches):
        def make(*args, **kwargs):
            if launches:
                counter.launch(fn.__name__)
            out = fn(*_host(args), **_host(kwargs))
            return _device(out, counter)

        make.__name__ = fn.__name__
        return make

    for name in ("zeros", "ones", "full", "arange", "zeros_like", "ones_like", "full_like", "eye"):
        setattr(xp, name, allocator(getattr(np, name), True))
    for name in ("empty", "empty_like"):
        setattr(xp, name, allocator(getattr(np, name), False))

    def asarray(a, dtype=None, **kwargs):
        if isinstance(a, DeviceArray) and (dtype is None or np.dtype(dtype) == a.dtype):
            return a
        if isinstance(a, DeviceArray):
            return a.astype(dtype)
        counter.upload("asarray")
        return _device(np.array(a, dtype=dtype, copy=True), counter)

    def array(a, dtype=None, copy=True, **kwargs):
        if not isinstance(a, DeviceArray):
            return asarray(a, dtype)
        counter.launch("copy")
        return _device(np.array(a.view(np.ndarray), dtype=dtype, copy=True), counter)

    def ascontiguousarray(a, dtype=None):
        # NumPy's own does not dispatch on its argument: it would hand back a plain array.
        if not isinstance(a, DeviceArray):
            return asarray(np.ascontiguousarray(a, dtype=dtype))
        if a.flags.c_contiguous and (dtype is None or np.dtype(dtype) == a.dtype):
            return a
        counter.launch("ascontiguousarray")
        return _device(np.ascontiguousarray(a.view(np.ndarray), dtype=dtype), counter)

    xp.asarray, xp.array, xp.ascontiguousarray = asarray, array, ascontiguousarray
    xp.ndarray = np.ndarray
    return xp


def _counted_cupy(fake, counter: Counter):
    """The emulator's fake cupy with every kernel call counted and every result a DeviceArray."""
    wrapped = types.ModuleType("cupy")
    wrapped.__dict__.update(vars(fake))

    class ElementwiseKernel(fake.ElementwiseKernel):
        def __call__(self, *args, **kwargs):
            counter.launch(self.name)
            return _device(super().__call__(*_host(args), **kwargs), counter)

    class ReductionKernel(fake.ReductionKernel):
        def __call__(self, *args, **kwargs):
            counter.launch(self.name)
            return _device(super().__call__(*_host(args), **kwargs), counter)

    class RawModule(fake.RawModule):
        def get_function(self, name):
            kernel = super().get_function(name)

            def launch(grid, block, args, **kwargs):
                counter.launch(name.split("<")[0])
                return kernel(grid, block, tuple(_host(list(args))), **kwargs)

            return launch

    class Generator:
        def __init__(self, seed):
            self._inner = fake.random.default_rng(seed)

        def random(self, size=None, dtype=np.float64, out=None):
            counter.launch("random")
            return _device(self._inner.random(size, dtype=dtype), counter)

    wrapped.ElementwiseKernel, wrapped.ReductionKernel, wrapped.RawModule = ElementwiseKernel, ReductionKernel, RawModule
    wrapped.random = types.SimpleNamespace(default_rng=Generator, Generator=Generator)
    xp = _device_xp(counter)
    for name in ("empty", "empty_like", "zeros", "ascontiguousarray"):
        setattr(wrapped, name, getattr(xp, name))

    def to_device(x):
        counter.upload("to_device")
        return _device(np.array(x, copy=True), counter)

    def to_host(x):
        counter.sync("to_host")
        return np.array(_host(x), copy=True)

    class ndarray(DeviceArray):
        """A device array made as ``cupy.ndarray(shape, dtype)``, filled by ``set``."""

        def __new__(cls, shape, dtype=float):
            out = fake.ndarray(shape, dtype).view(cls)
            out._counter = counter
            return out

        def set(self, arr, stream=None):
            counter.upload("set")
            fake.cuda.h2d(self.view(np.ndarray), arr, stream)

    wrapped.ndarray = ndarray
    fake.cuda.host_waits = counter.sync
    wrapped.asarray = lambda x, dtype=None: to_device(np.asarray(x, dtype=dtype))
    wrapped.asnumpy = to_host
    return wrapped, xp


def counting_backend(workdir: Path, name: str = "cupy-counted"):
    """``(backend, counter)``: the cupy backend on the emulation, every launch and sync counted."""
    emulator = _EMULATION.load_emulator_module()
    counter = Counter()
    fake, xp = _counted_cupy(emulator.make_fake_cupy(Path(workdir)), counter)
    functions, _ = _EMULATION.import_against(fake)
    impl = _EMULATION.namespace(functions, xp, name=name)
    return _EMULATION.as_backend(impl, name), counter
