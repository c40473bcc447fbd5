"""Synchronous data-parallel training over MPI: the same script on one process or on many.

Opt in per model, explicitly::

    model = NeuralNetwork([784, 512, 256, 10], seed=0, distributed="mpi")   # or DataParallel(...)
    model.train(X, y, epochs=10, batch_size=128)          # run as: mpiexec -n 4 python train.py

Nothing here happens because mpi4py is importable: a model is distributed only when built with
``distributed=``. It needs ``pip install "sega-core[mpi]"`` (mpi4py and the MPICH wheel, whose
``mpiexec`` is installed next to ``python``).

What every process does
    Each process passes the *same* data set (an array, a ``.npy`` path, a memmap, a Dask array)
    and reads only its rows. Every global batch of ``batch_size`` rows, chosen by the same seeded
    shuffle everywhere, is cut into one contiguous shard per process (``numpy.array_split``: when
    the batch does not divide evenly the first shards have one row more). Each process computes
    the gradient of its shard, weighted by its share of the batch (the loss kernels give a mean
    over their rows, so a shard's gradient is scaled by ``rows / batch rows``; sample and class
    weights stay per sample), then one ``Allreduce`` of the model's flat gradient buffer sums the
    shares and the optimizer step runs identically everywhere. The result is the single
    process's with the same ``batch_size``, within float rounding, whatever the process count:
    dropout draws each global batch's mask whole and keeps its shard's rows, so the masks are the
    single process's too. A batch with fewer rows than processes (only ever an epoch's last)
    leaves some shards empty: those processes contribute a zero gradient.

    An iterable of batches is different: each process's iterable gives that process's own batches
    (its shard of the stream); a step's batches make the global batch, weighted by their sizes.

At the start
    The processes compare what they were given (model layout, dtype, seed, data size, a checksum
    of the targets and sample weights, batch size, epochs...) and all raise the same one-line
    error if they differ: processes each given their own part of the data, say. Normalization layers fit
    their statistics from the whole data set, each process summarising its own share of the rows
    and the summaries combined exactly. Then rank 0's parameters and statistics are broadcast.

Every epoch
    One small collective sums the epoch's loss and metric and compares a checksum of every
    process's parameters; a mismatch raises :class:`DistributedError` everywhere. Models with
    ``BatchNormalization`` normalise each shard by its own batch statistics (as PyTorch's
    ``DistributedDataParallel`` without ``SyncBatchNorm``), so they do depend on the process count;
    their running statistics are averaged over the processes each epoch.

Only rank 0 reports progress, runs the callbacks that write files (``ModelCheckpoint``,
``CSVLogger``) and writes the model's files (``save``, ``save_safetensors``, ``export_onnx``
and ``plot_metrics`` write nothing on the other ranks); every process runs the other
callbacks, with the same logs, so early stopping and learning-rate schedules decide alike.
``evaluate`` and ``predict`` of a distributed model are collective too: every process calls
them with the same data, scores its share of the rows, and every process gets the whole result.

Failures
    An exception inside a distributed training step is printed with the failing rank and ends
    every process (``MPI_Abort``): the others would otherwise wait forever in the next collective.
    A process that waits longer than ``timeout`` seconds (default 300, or ``SEGA_MPI_TIMEOUT``)
    for the others in any collective does the same, naming where it waited. A process that dies
    is reported by ``mpiexec``, which stops the rest. Before aborting, a process waits (up to 30
    s) until the launcher has read its output, so the message always reaches the user.

GPU (CuPy) backends
    The gradient goes through host memory: copied to the host, summed by MPI, copied back (two
    copies of the parameters' size per step). ``DataParallel(cuda_aware=True)`` hands the device
    buffer to MPI directly, for an MPI built with CUDA support (the MPICH wheel is not); NCCL
    (``cupyx.distributed``) is not used.
"""

from __future__ import annotations

import array
import os
import stat
import sys
import time
import traceback
import zlib

import numpy as np

from .errors import InputError, SegaError

#: Seconds a process waits for the others in one collective before it stops every process.
DEFAULT_TIMEOUT = 300.0
#: Most seconds an aborting process waits for the launcher to read its last output.
OUTPUT_WAIT = 30.0

__all__ = ["DataParallel", "DistributedError", "resolve", "writes_files"]


class DistributedError(SegaError):
    """The processes of a distributed run disagree, or one of them failed."""


def _import_mpi():
    try:
        from mpi4py import MPI
    except ImportError:
        raise ImportError('distributed="mpi" needs mpi4py and an MPI runtime; install them with pip install "sega-core[mpi]"') \
            from None
    return MPI


class DataParallel:
    """Data parallelism over an MPI communicator (``distributed="mpi"`` is ``DataParallel()``).

    ``comm``: an mpi4py communicator (default ``MPI.COMM_WORLD``). ``timeout``: seconds a process
    waits in a collective before it stops every process with a message (default
    ``SEGA_MPI_TIMEOUT`` or 300). ``cuda_aware``: give device (CuPy) buffers to MPI directly,
    for an MPI built with CUDA support; otherwise they go through host memory.

    ``allreduce_seconds`` and ``allreduce_calls`` count the gradient reductions (for benchmarks).
    """

    def __init__(self, comm=None, *, timeout: float | None = None, cuda_aware: bool = False) -> None:
        self._MPI = _import_mpi()
        self.comm = self._MPI.COMM_WORLD if comm is None else comm
        self.rank, self.size = int(self.comm.Get_rank()), int(self.comm.Get_size())
        if timeout is None:
            timeout = float(os.environ.get("SEGA_MPI_TIMEOUT", DEFAULT_TIMEOUT))
        if not timeout > 0:
            raise InputError(f"timeout must be a number of seconds > 0, got {timeout!r}")
        self.timeout = float(timeout)
        self.cuda_aware = bool(cuda_aware)
        self.allreduce_seconds = 0.0
        self.allreduce_calls = 0

    @property
    def is_root(self) -> bool:
        """Whether this is rank 0, the process that reports and writes files."""
        return self.rank == 0

    def __repr__(self) -> str:
        return f"DataParallel(rank={self.rank}, size={self.size}, timeout={self.timeout:g})"

    # ---- rows -------------------------------------------------------------------------------

    def share(self, n: int) -> tuple[int, int]:
        """``(start, stop)`` of this process's contiguous share of ``n`` rows (``numpy.array_split``'s cut)."""
        base, extra = divmod(int(n), self.size)
        start = self.rank * base + min(self.rank, extra)
        return start, start + base + (self.rank < extra)

    # ---- collectives ------------------------------------------------------------------------

    def _wait(self, request, what: str) -> None:
        """Complete a non-blocking collective, or stop every process after ``timeout`` seconds."""
        if request.Test():
            return
        deadline = time.monotonic() + self.timeout
        spins = 0
        # Spinning, as MPI's own blocking calls do: the partner's data arrive in pieces that only
        # move while this process keeps asking.
        while not request.Test():
            spins += 1
            if spins % 4096 == 0 and time.monotonic() > deadline:
                self.abort(
                    f"process {self.rank} of {self.size} waited {self.timeout:g} s for the others at {what}; one of them "
                    "failed, hung, or did not make the same call (every process must call train, evaluate and "
                    "predict of a distributed model)"
                )

    def allreduce_(self, buf, what: str = "a sum", backend=None):
        """Sum ``buf`` over the processes, in place: a host array, or a device array of ``backend``
        (through host memory unless ``cuda_aware``)."""
        MPI = self._MPI
        if isinstance(buf, np.ndarray) or self.cuda_aware:
            if not isinstance(buf, np.ndarray):
                _synchronize(buf)
            self._wait(self.comm.Iallreduce(MPI.IN_PLACE, buf, op=MPI.SUM), what)
            return buf
        host = np.ascontiguousarray(backend.to_host(buf))
        self._wait(self.comm.Iallreduce(MPI.IN_PLACE, host, op=MPI.SUM), what)
        buf[...] = backend.to_device(host)
        return buf

    def allreduce_gradient(self, grad, backend) -> None:
        """The step's one collective: sum the flat gradient buffer in place, timed."""
        started = time.perf_counter()
        self.allreduce_(grad, "the gradient sum", backend)
        self.allreduce_seconds += time.perf_counter() - started
        self.allreduce_calls += 1

    def broadcast_(self, buf, what: str = "a broadcast", backend=None):
        """Overwrite ``buf`` with rank 0's, in place: a host array or a device array of ``backend``."""
        if isinstance(buf, np.ndarray):
            self._wait(self.comm.Ibcast(buf, root=0), what)
            return buf
        host = np.ascontiguousarray(backend.to_host(buf))
        self._wait(self.comm.Ibcast(host, root=0), what)
        buf[...] = backend.to_device(host)
        return buf

    def allgather(self, values, what: str = "an exchange") -> np.ndarray:
        """Every process's float64 vector ``values``, as rows of a (size, len) array."""
        mine = np.ascontiguousarray(values, dtype=np.float64).ravel()
        out = np.empty((self.size, mine.size), dtype=np.float64)
        self._wait(self.comm.Iallgather(mine, out), what)
        return out

    def gather_rows(self, rows: np.ndarray, what: str = "gathering results") -> np.ndarray:
        """Every process's ``rows`` (same trailing shape and dtype), concatenated in rank order."""
        rows = np.ascontiguousarray(rows)
        counts = self.allgather([rows.shape[0]], what)[:, 0].astype(np.int64)
        out = np.empty((int(counts.sum()),) + rows.shape[1:], dtype=rows.dtype)
        per_row = int(np.prod(rows.shape[1:], dtype=np.int64)) * rows.dtype.itemsize
        sizes = counts * per_row
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        self._wait(self.comm.Iallgatherv(rows.view(np.uint8).ravel() if rows.size else np.empty(0, np.uint8),
                                         [out.view(np.uint8).ravel() if out.size else np.empty(0, np.uint8), sizes, offsets,
                                          self._MPI.BYTE]), what)
        return out

    def check_same(self, facts: dict, what: str) -> None:
        """Raise the same :class:`InputError` on every process when ``facts`` (name -> number) differ."""
        names = list(facts)
        table = self.allgather([float(facts[n]) for n in names], f"comparing {what}")
        for column, name in enumerate(names):
            values = table[:, column]
            if not (values == values[0]).all():
                shown = ", ".join(f"rank {r}: {_number(v)}" for r, v in enumerate(values[:8]))
                error = InputError(
                    f"the {self.size} processes disagree on {name} ({shown}); every process must build the same model "
                    f"and pass the same data and arguments to {what}"
                )
                error.agreed = True  # every process saw the same table and raises the same error
                raise error

    def abort(self, message: str, code: int = 1):
        """Print ``message`` (and the exception being handled, if any) and stop every process."""
        if sys.exc_info()[0] is not None:
            traceback.print_exc(file=sys.stderr)
        print(f"sega: {message}; stopping every process (MPI_Abort)", file=sys.stderr, flush=True)
        try:
            sys.stdout.flush()  # progress printed before, in its buffer
        except (AttributeError, OSError, ValueError):
            pass
        _wait_until_read((1, 2), OUTPUT_WAIT)
        self.comm.Abort(code)
        # MPICH's MPI_Abort can return once the launcher has the request; this process must
        # not carry on (raise into user code, save files) while the launcher ends the job.
        os._exit(code)


def _unread_bytes(fd: int) -> int:
    """Bytes written to ``fd`` that its reader has not taken yet (pipes and sockets; 0 otherwise)."""
    try:
        import fcntl
        import termios

        mode = os.fstat(fd).st_mode
        if stat.S_ISFIFO(mode):
            request = termios.FIONREAD  # on a pipe: bytes in its buffer, asked from either end
        elif stat.S_ISSOCK(mode):
            request = termios.TIOCOUTQ  # bytes sent that the peer has not read
        else:
            return 0  # files and terminals are written synchronously
        count = array.array("i", [0])
        fcntl.ioctl(fd, request, count)
    except (ImportError, OSError, AttributeError):
        return 0
    return count[0]


def _wait_until_read(fds, limit: float) -> None:
    """Wait until the launcher has read what this process wrote to ``fds``, at most ``limit`` s.

    MPI_Abort ends the whole job at once. MPICH's launcher relays a process's output and its
    abort request through the same proxy, which handles the abort first when both are waiting,
    and ``mpiexec`` exits on the abort: output still in the pipe then is lost, and on a busy
    machine (the proxy not scheduled for a while) that was the very message saying why the run
    stopped. Once the proxy has read the pipe, it relays the output before the abort.
    """
    deadline = time.monotonic() + limit
    waiting = [fd for fd in fds if _unread_bytes(fd)]
    while waiting and time.monotonic() < deadline:
        time.sleep(0.01)
        waiting = [fd for fd in waiting if _unread_bytes(fd)]
    # Launchers that relay output and the abort along different paths (Open MPI's daemons)
    # get a moment to pass the output on once read.
    time.sleep(0.2)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.17g}"


def _synchronize(buf) -> None:
    """Wait for the device work that writes ``buf`` (MPI reads device memory directly)."""
    module = sys.modules.get(type(buf).__module__.partition(".")[0])
    cuda = getattr(module, "cuda", None)
    if cuda is not None and hasattr(cuda, "get_current_stream"):
        cuda.get_current_stream().synchronize()


def resolve(spec) -> DataParallel | None:
    """The model's ``distributed=`` argument as a :class:`DataParallel` (or ``None``)."""
    if spec is None or spec is False:
        return None
    if isinstance(spec, DataParallel):
        return spec
    if isinstance(spec, str):
        if spec.strip().lower() == "mpi":
            return DataParallel()
        raise InputError(f"distributed must be None, 'mpi' or a sega_core.distributed.DataParallel, got {spec!r}")
    if type(spec).__module__.startswith("mpi4py") and hasattr(spec, "Get_rank"):
        return DataParallel(spec)
    raise InputError(f"distributed must be None, 'mpi' or a sega_core.distributed.DataParallel, got {spec!r}")


def writes_files(model) -> bool:
    """Whether this process writes ``model``'s files (saves, exports, plots): every process,
    except the ranks after 0 of a distributed model, which holds the same model everywhere."""
    dist = getattr(model, "distributed", None)
    return dist is None or dist.is_root


def checksum(*arrays) -> int:
    """A CRC-32 of the host arrays' bytes (``None`` skipped): cheap evidence that processes were
    given the same data, not each its own part of it."""
    crc = 0
    for array in arrays:
        if array is not None:
            crc = zlib.crc32(np.ascontiguousarray(array), crc)
    return crc


def model_signature(model) -> dict:
    """Numbers that identical models share: sizes, dtype, seed and a checksum of the layer layout."""
    layout = repr([(type(layer).__name__, sorted(layer.get_config().items()) if hasattr(layer, "get_config") else None)
                   for layer in model.layers]) + repr((model.loss, model.reg_lambda, model.input_shape))
    return {
        "the model's layers": zlib.crc32(layout.encode()),
        "the parameter count": model.params.size,
        "the dtype": model.dtype.itemsize,
        "the backend's device": zlib.crc32(model.backend.device.encode()),
        "the seed": model.seed,
    }


class ShardedDraws:
    """A dropout layer's generator that draws the whole global batch's numbers and hands this
    process its rows, so a shard's mask equals those rows of the single process's mask.

    Every process draws the same numbers (same seed, same epoch), so the generators stay in step.
    ``rows`` is ``(global rows, start, stop)`` of the batch being computed.
    """

    def __init__(self, rng) -> None:
        self._rng = rng
        self.rows = (0, 0, 0)

    def random(self, shape, dtype=np.float64, *args, **kwargs):
        """Uniform draws for the global batch; this process's rows of them."""
        total, start, stop = self.rows
        full = self._rng.random((total,) + tuple(shape[1:]), dtype=dtype, *args, **kwargs)
        return full[start:stop]

    def __getattr__(self, name):
        return getattr(self._rng, name)
