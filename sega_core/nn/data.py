"""Where a model's data come from: arrays in memory, arrays read a block at a time, or batches.

``train``, ``evaluate`` and ``predict`` take any of:

in-memory arrays
    NumPy arrays and everything :func:`~sega_core.nn.validation.host_array` reads (tensors,
    frames, lists). Training copies them to the backend's device once (the fast path); an ``X``
    already there (a CuPy array, or a CUDA tensor through DLPack, on the CuPy backend) is checked
    and used in place, its batches cut on the device.
out-of-core arrays
    an ``np.memmap``, the path of a ``.npy`` file (a ``str`` or ``PathLike`` ending in ``.npy``),
    or a Dask array. ``X`` is read a block of rows at a time (about :data:`BLOCK_BYTES`), checked
    and converted to the model's dtype per block, and never copied whole; the targets and sample
    weights (one value per sample) are read into memory. A memmap or ``.npy`` file whose rows are
    contiguous is read with plain file reads, so the pages read do not stay mapped into the
    process (its resident memory stays at a few blocks, whatever the file's size). A Dask array is
    computed block by block (blocks follow its chunks along axis 0). The next block is read in a
    background thread while the current one trains.

    Shuffling shuffles the order of the blocks and the rows within each block (both seeded by
    the model's seed and the epoch), not the rows across the whole array: a global permutation
    would read every batch's rows from all over the file. Consecutive rows of the file therefore
    tend to share batches; shuffle the file once beforehand if its rows are sorted (by class,
    say). Blocks reach the device one at a time (one copy per block; batches are cut on the
    device), through the backend's ``stream_to_device``: on CuPy the next block is copied from
    pinned host memory on a copy stream of its own while the current block trains. The disk
    read overlaps too, in the reader thread.
batches
    an iterator or generator of ``(X, y)`` or ``(X, y, sample_weight)`` batches, any iterable
    object that is not array-like (a PyTorch ``DataLoader``, say), or :class:`Batches` around
    any iterable (a list of batches). They are used in the order given, each one step (shuffling
    is the iterable's job; ``shuffle`` has no effect). Each epoch iterates the object afresh; an
    iterator that can be read once serves one epoch, or ``steps_per_epoch`` batches per epoch
    from where the last epoch stopped. With ``steps_per_epoch``, a re-iterable object too runs
    on from where the last epoch stopped, starting a new pass whenever one ends (as Keras does),
    so every batch is used in turn whatever the two counts. Its length (``len``, ``steps_per_epoch`` or
    ``Batches(steps=...)``) is the number of steps callbacks and progress bars are told. A
    classifier learns its classes from the first batch unless it knows them (labels ``0..n-1``
    need none); target standardisation and Normalization statistics need the whole data up front,
    so with batches they must already be fitted. For ``predict``, batches are ``X`` alone.

With a distributed model (:mod:`sega_core.distributed`), arrays of any kind are the global data
set, the same on every process, each process reading only its share; batches are each process's
own.
"""

from __future__ import annotations

import itertools
import math
import mmap
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..errors import InputError
from .validation import check_float_range, check_lengths, host_array

#: Bytes of ``X`` one block of an out-of-core array holds (at least one batch of rows).
BLOCK_BYTES = 32 << 20


class Batches:
    """An iterable of ``(X, y[, sample_weight])`` batches (or of ``X`` batches, for ``predict``), and
    its length when known: ``model.train(Batches(batch_list), epochs=5)``.

    Needed only where the iterable would otherwise read as data (a list or tuple of batches);
    iterators, generators and loader objects are taken as batches as they are.
    """

    def __init__(self, iterable, steps: int | None = None) -> None:
        self.iterable = iterable
        self.steps = steps  # None: one pass per epoch (its length, when it has one)


# ---- what kind of data -------------------------------------------------------------------


def is_batches(X) -> bool:
    """Whether ``X`` is an iterable of batches rather than an array-like."""
    if isinstance(X, Batches):
        return True
    if isinstance(X, (np.ndarray, np.generic, list, tuple, str, bytes, dict, os.PathLike)) or X is None:
        return False
    if any(hasattr(X, name) for name in ("shape", "__array__", "__dlpack__", "__array_interface__", "to_numpy")):
        return False
    return hasattr(X, "__iter__") or hasattr(X, "__next__")


def is_out_of_core(X) -> bool:
    """Whether ``X`` is read in blocks: a memmap, a ``.npy`` path or a Dask array."""
    return isinstance(X, np.memmap) or _is_npy_path(X) or _is_dask(X)


def _is_npy_path(X) -> bool:
    return isinstance(X, (str, os.PathLike)) and os.fspath(X).endswith(".npy")


def _is_dask(X) -> bool:
    return type(X).__module__.startswith("dask.") and hasattr(X, "chunks") and hasattr(X, "compute")


# ---- out-of-core arrays -------------------------------------------------------------------


class ArrayReader:
    """Rows of an out-of-core array, read one contiguous block at a time."""

    def __init__(self, X, name: str = "X") -> None:
        self.name = name
        self._file = self._dask = self._array = None
        if _is_npy_path(X):
            path = os.fspath(X)
            if not os.path.isfile(path):
                raise InputError(f"{name} names {path!r}, which is not a file; give the path of a .npy file")
            try:
                X = np.load(path, mmap_mode="r", allow_pickle=False)
            except (ValueError, OSError) as exc:
                raise InputError(f"{name} ({path!r}) could not be read as a .npy array: {exc}") from None
        if _is_dask(X):
            self._dask = X
        else:
            self._array = X
            self._file = _file_region(X)
        self.shape, self.dtype = tuple(int(s) for s in X.shape), np.dtype(X.dtype)
        if self.dtype.kind not in "biuf":
            raise InputError(f"{name} must hold numbers (bool, int or float), got dtype {self.dtype}")
        if len(self.shape) < 2 or self.shape[0] == 0:
            raise InputError(f"{name} must have one row per sample and at least one sample, got shape {self.shape}")
        self._handle = None

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def row_bytes(self) -> int:
        """Bytes of one row."""
        return self.dtype.itemsize * math.prod(self.shape[1:])

    def blocks(self, rows: int, start: int = 0, stop: int | None = None) -> list[tuple[int, int]]:
        """``(start, stop)`` of blocks of about ``rows`` rows covering ``[start, stop)`` (a Dask
        array's are cut at its chunks)."""
        stop = self.shape[0] if stop is None else stop
        cuts = list(range(start, stop, max(1, rows))) + [stop]
        if self._dask is not None:
            edges = np.cumsum((0,) + tuple(self._dask.chunks[0]))
            inner = [int(e) for e in edges if start < e < stop]
            cuts = sorted(set([start, stop] + inner))
            cuts = [c for a, b in zip(cuts, cuts[1:]) for c in range(a, b, max(1, rows))] + [stop]
        return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` as a new host array of the file's dtype."""
        if self._dask is not None:
            return np.asarray(self._dask[start:stop].compute())
        out = np.empty((stop - start,) + self.shape[1:], dtype=self.dtype)
        if self._file is None:
            out[...] = self._array[start:stop]
            return out
        path, offset = self._file
        if self._handle is None:
            self._handle = open(path, "rb", buffering=0)  # noqa: SIM115 (closed by close())
        view, done = memoryview(out.reshape(-1).view(np.uint8)), 0
        self._handle.seek(offset + start * self.row_bytes)
        while done < len(view):
            got = self._handle.readinto(view[done:])
            if not got:
                raise InputError(f"{self.name}: the file {path!r} ended before row {stop}; it was shortened after opening")
            done += got
        return out

    def read_checked(self, start: int, stop: int, dtype) -> np.ndarray:
        """:meth:`read`, checked finite and within ``dtype``'s range, as ``dtype``."""
        block = self.read(start, stop)
        name = f"{self.name} rows {start}..{stop - 1}"
        if block.dtype.kind == "f" and not np.isfinite(block).all():
            bad = int(block.size - np.count_nonzero(np.isfinite(block)))
            raise InputError(f"{name} contain {bad} NaN or infinite value(s); clean or impute them first")
        check_float_range(block, dtype, name)
        return block.astype(dtype, copy=False)

    def close(self) -> None:
        """Close the file this reader opened, if any."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _file_region(X) -> tuple[str, int] | None:
    """``(path, byte offset of row 0)`` where a memmap's rows can be read from its file with plain
    reads (C-contiguous, opened shared: ``r``, ``r+`` or ``w+``), else ``None`` (read through the map).

    NumPy maps the file from ``offset`` rounded down to the allocation granularity; a view keeps
    its parent's ``offset`` and mapping, so its rows start at that mapping's start plus its
    pointer's distance from the mapping's first byte.
    """
    mapping, path = getattr(X, "_mmap", None), getattr(X, "filename", None)
    if mapping is None or path is None or getattr(X, "mode", None) not in ("r", "r+", "w+") or not X.flags.c_contiguous:
        return None
    try:
        base = np.frombuffer(mapping, dtype=np.uint8).ctypes.data
    except (BufferError, ValueError, TypeError):
        return None
    start = X.offset - X.offset % mmap.ALLOCATIONGRANULARITY
    return os.fspath(path), int(start + X.ctypes.data - base)


def prefetched(read, items):
    """``read(item)`` for each item, the next one read in a background thread meanwhile."""
    items = list(items)
    if len(items) < 2:
        yield from (read(item) for item in items)
        return
    with ThreadPoolExecutor(1, thread_name_prefix="sega-read") as pool:
        future = pool.submit(read, items[0])
        for item in items[1:]:
            current = future.result()
            future = pool.submit(read, item)
            yield current
        yield future.result()


# ---- sources --------------------------------------------------------------------------------


class Arrays:
    """Checked host arrays: features, targets as the loss takes them, weights or ``None``."""

    kind = "memory"

    def __init__(self, X: np.ndarray, y: np.ndarray | None, w: np.ndarray | None) -> None:
        self.X, self.y, self.w = X, y, w
        self.n = len(X)
        self.steps = None

    def total_weight(self) -> float:
        """The weight of an epoch's samples."""
        return float(self.n if self.w is None else self.w.sum())

    def split(self, fraction: float, seed: int):
        """``(training part, held-out part)``, ``fraction`` of the rows held out at random."""
        n_val = max(1, int(round(self.n * fraction)))
        if n_val >= self.n:
            raise InputError("validation_split leaves no training samples")
        perm = np.random.default_rng(seed).permutation(self.n)
        keep, held = perm[n_val:], perm[:n_val]
        take = (lambda a, rows: None if a is None else a[rows])
        for part, rows in (("held-out", held), ("training", keep)):
            if self.w is not None and not self.w[rows].sum() > 0:
                raise InputError(f"the {len(rows)} {part} samples of validation_split={fraction!r} all weigh 0; "
                                 "give more samples a weight, hold out a larger fraction (validation_fraction in the "
                                 "scikit-learn estimators), or pass validation_data")
        return Arrays(self.X[keep], self.y[keep], take(self.w, keep)), Arrays(self.X[held], self.y[held], take(self.w, held))

    def host_chunks(self, rows: int, start: int, stop: int):
        """Host ``(X, y, w)`` chunks of ``rows`` rows over ``[start, stop)``."""
        for a in range(start, stop, rows):
            b = min(a + rows, stop)
            yield self.X[a:b], None if self.y is None else self.y[a:b], None if self.w is None else self.w[a:b]

    def close(self) -> None:
        """Nothing to release."""


class Blocks(Arrays):
    """An out-of-core ``X`` (an :class:`ArrayReader`) with in-memory targets and weights."""

    kind = "blocks"

    def __init__(self, reader: ArrayReader, y, w, dtype) -> None:
        super().__init__(reader, y, w)
        self.reader, self.dtype = reader, np.dtype(dtype)

    def split(self, fraction, seed):
        """Refused: holding out random rows would mean reading the whole array for them."""
        raise InputError("validation_split needs X in memory; with a memmap, .npy file or Dask array pass "
                         "validation_data=(X_val, y_val) instead")

    def block_rows(self, batch_size: int = 1) -> int:
        """Rows per block: :data:`BLOCK_BYTES` of them, and at least one batch."""
        return max(int(batch_size), BLOCK_BYTES // max(1, self.reader.row_bytes))

    def host_chunks(self, rows: int, start: int, stop: int):
        """Checked host ``(X, y, w)`` chunks of at most ``rows`` rows over ``[start, stop)``, read ahead."""
        def read(bounds):
            a, b = bounds
            return (self.reader.read_checked(a, b, self.dtype), None if self.y is None else self.y[a:b],
                    None if self.w is None else self.w[a:b])

        yield from prefetched(read, self.reader.blocks(rows, start, stop))

    def batches(self, model, epoch: int, batch_size: int, shuffle: bool, dist):
        """One epoch's ``(xb, yb, wb, rows, global rows)`` on the device (this process's shard of
        each global batch when ``dist``): blocks in a shuffled order, rows shuffled within each."""
        xp = model.backend.xp
        bounds = self.reader.blocks(self.block_rows(batch_size))
        rng = np.random.default_rng([model.seed, 1, epoch])
        if shuffle:
            bounds = [bounds[i] for i in rng.permutation(len(bounds))]
        plan = [(a, b, rng.permutation(b - a) if shuffle else None) for a, b in bounds]

        def read(item):
            a, b, perm = item
            X = self.reader.read_checked(a, b, self.dtype)
            y = self.y[a:b]
            w = None if self.w is None else self.w[a:b].astype(self.dtype)
            if perm is not None:  # here, in the reader thread: batches are then slices
                X, y, w = X[perm], y[perm], None if w is None else w[perm]
            return X, y, w

        pieces, have = [], 0
        for block in model.backend.stream_to_device(prefetched(read, plan)):
            pos, size = 0, len(block[1])
            while pos < size:
                take = min(batch_size - have, size - pos)
                pieces.append((block, pos, pos + take))
                pos, have = pos + take, have + take
                if have == batch_size:
                    yield _cut(pieces, have, dist, xp)
                    pieces, have = [], 0
        if have:
            yield _cut(pieces, have, dist, xp)

    def close(self) -> None:
        """Close the reader's file."""
        self.reader.close()


def _cut(pieces, total: int, dist, xp):
    """``(xb, yb, wb, rows, total)``: this process's shard of a global batch made of ``pieces``
    (``(arrays, lo, hi)`` row ranges of device blocks, in batch order)."""
    a, b = (0, total) if dist is None else dist.share(total)
    parts, offset = [], 0
    for arrays, lo, hi in pieces:
        s, e = max(a - offset, 0), min(b - offset, hi - lo)
        if s < e:
            parts.append(tuple(None if arr is None else arr[lo + s : lo + e] for arr in arrays))
        offset += hi - lo
    if not parts:
        return None, None, None, 0, total
    if len(parts) == 1:
        xb, yb, wb = parts[0]
    else:
        xb, yb = xp.concatenate([p[0] for p in parts]), xp.concatenate([p[1] for p in parts])
        wb = None if parts[0][2] is None else xp.concatenate([p[2] for p in parts])
    return xb, yb, wb, b - a, total


_END = object()


class Stream:
    """An iterable of batches; each is checked and converted as it arrives."""

    kind = "stream"

    def __init__(self, model, iterable, steps=None, class_weight=None, targets: bool = True, fit: bool = False) -> None:
        if isinstance(iterable, Batches):
            steps = iterable.steps if steps is None else steps
            iterable = iterable.iterable
        given = steps is not None
        if steps is None and hasattr(iterable, "__len__"):
            steps = len(iterable)
            if steps == 0:
                raise InputError("the batches are empty: the iterable gave no batch")
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1):
            raise InputError(f"steps_per_epoch must be an int >= 1 or None, got {steps!r}")
        self.model, self.iterable, self.steps = model, iterable, None if steps is None else int(steps)
        self.class_weight, self.targets, self.fit = class_weight, targets, fit
        self.one_shot = iter(iterable) is iterable
        # A re-iterable object with a given steps_per_epoch runs on from where the last epoch
        # stopped, starting a new pass when one ends, so every batch is used in turn.
        self.cycle = given and not self.one_shot
        self._iterator = iter(iterable)
        first = next(self._iterator, None)
        if first is None:
            raise InputError("the batches are empty: the iterable gave no batch")
        self._first = self.checked(first)  # builds the model, learns the classes
        self.n = None
        self.w = None
        self.rows = self.weight = 0

    def checked(self, item):
        """One batch as checked host arrays ``(X, y, w)``."""
        model = self.model
        if self.targets:
            if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
                raise InputError(f"each batch must be a tuple (X, y) or (X, y, sample_weight), got {type(item).__name__}")
            X = model._features(item[0], "X batch")
            y = model._targets(item[1], "y batch", fit=self.fit)
            check_lengths(X, y, "X batch", "y batch")
            w = model._sample_weights(y, item[2] if len(item) == 3 else None, self.class_weight, len(X),
                                      "sample_weight batch")
            return X, y, w
        return model._features(item[0] if isinstance(item, tuple) else item, "X batch"), None, None

    def _items(self, epoch_iterator):
        return epoch_iterator if self.steps is None else itertools.islice(epoch_iterator, self.steps)

    def _cycled_items(self):
        """``steps`` checked batches from where the last epoch stopped, passes restarted."""
        produced = 0
        if self._first is not None:
            first, self._first = self._first, None
            produced = 1
            yield first
        while produced < self.steps:
            item = next(self._iterator, _END)
            if item is _END:
                self._iterator = iter(self.iterable)
                item = next(self._iterator, _END)
                if item is _END:
                    raise InputError("the batches ran out: a new pass over the iterable gave no batch")
            produced += 1
            yield self.checked(item)

    def epoch_items(self):
        """This epoch's checked batches."""
        if self.cycle:
            yield from self._cycled_items()
            return
        if self._first is not None:
            first, self._first = self._first, None
            yield first
            remaining = None if self.steps is None else self.steps - 1
            source = self._iterator if remaining is None else itertools.islice(self._iterator, remaining)
            yield from (self.checked(item) for item in source)
            return
        if not self.one_shot:
            self._iterator = iter(self.iterable)
        count = 0
        for item in self._items(self._iterator):
            count += 1
            yield self.checked(item)
        if count == 0:
            raise InputError("the batches ran out: an iterator can be read once, so it serves one epoch, or "
                             "steps_per_epoch batches per epoch; pass a re-iterable object (a list in Batches, a "
                             "DataLoader) or a longer iterator")

    def host_chunks(self, rows, start, stop):
        """Every batch of one pass (this process's own)."""
        yield from self.epoch_items()

    def batches(self, model, epoch, batch_size, shuffle, dist):
        """One epoch's device batches ``(xb, yb, wb, rows, global rows)``; with ``dist``, every step
        agrees on the global batch's size and on whether any process has run out."""
        self.rows = self.weight = 0

        def counted():
            for X, y, w in self.epoch_items():
                self.rows += len(X)
                self.weight += float(len(X) if w is None else w.sum())
                yield X, y, None if w is None else w.astype(model.dtype)

        step = 0
        # The processes agree on each step as the step is taken, not as the backend reads the
        # next batch ahead, so every process makes the same collective calls in the same order.
        for xb, yb, wb in model.backend.stream_to_device(counted()):
            total = len(xb)
            if dist is not None:
                total = _agree_step(dist, len(xb), step)
            step += 1
            yield xb, yb, wb, len(xb), total
        if dist is not None:
            _agree_step(dist, 0, step)

    def total_weight(self) -> float:
        """The weight of the last epoch's samples."""
        return self.weight

    def split(self, fraction, seed):
        """Refused: there is no whole data set to hold rows out of."""
        raise InputError("validation_split needs X in memory; with batches pass validation_data instead")

    def close(self) -> None:
        """Nothing to release."""


def _agree_step(dist, rows: int, step: int) -> int:
    """The global batch's rows at ``step``; ``0`` when every process has run out, an error when some have."""
    table = dist.allgather([rows, rows > 0], f"step {step + 1}'s batch sizes")
    having = int(table[:, 1].sum())
    if 0 < having < dist.size:
        from ..distributed import DistributedError

        done = [r for r in range(dist.size) if not table[r, 1]]
        error = DistributedError(
            f"process(es) {done} ran out of batches at step {step + 1} while the others had more; every process's "
            "iterable must give the same number of batches per epoch (or set steps_per_epoch)"
        )
        error.agreed = True
        raise error
    return int(table[:, 0].sum())


# ---- building sources from user arguments ---------------------------------------------------


def training_data(model, X, y, sample_weight, class_weight, steps_per_epoch):
    """The training data as a source (:class:`Arrays`, :class:`Blocks` or :class:`Stream`)."""
    if is_batches(X):
        if y is not None:
            raise InputError("X is an iterable of (X, y) batches, so y must be left out (the batches hold the targets)")
        if sample_weight is not None:
            raise InputError("with batches, give sample weights inside them: (X, y, sample_weight)")
        if isinstance(class_weight, str):
            raise InputError("class_weight='balanced' needs every label up front; with batches give a dict {label: weight}")
        _refuse_whole_data_fits(model)
        return Stream(model, X, steps_per_epoch, class_weight, fit=True)
    if steps_per_epoch is not None:
        raise InputError("steps_per_epoch applies to batches from an iterable; arrays are one pass per epoch")
    if y is None:
        raise InputError("y is None; pass an array of targets, or X as an iterable of (X, y) batches")
    if is_out_of_core(X):
        reader = features_reader(model, X)
        yh, w = model._fitted_targets(host_array(y, "y"), sample_weight, class_weight, len(reader))
        return Blocks(reader, yh, w, model.dtype)
    Xh = model._features(X)
    yh, w = model._fitted_targets(y, sample_weight, class_weight, len(Xh))
    return Arrays(Xh, yh, w)


def evaluation_data(model, X, y=None, sample_weight=None, names=("X", "y", "sample_weight"), targets: bool = True):
    """Data to score (``targets``: with ``y``, or batches holding it) or to predict, as a source."""
    x_name, y_name, w_name = names
    if is_batches(X):
        if y is not None or sample_weight is not None:
            raise InputError(f"{x_name} is an iterable of batches, so {y_name} and {w_name} must be left out "
                             "(the batches hold them)")
        return Stream(model, X, None, targets=targets)
    if targets and y is None:
        raise InputError(f"{y_name} is None; pass an array of targets, or {x_name} as an iterable of (X, y) batches")
    if is_out_of_core(X):
        reader = features_reader(model, X, x_name)
        if not targets:
            return Blocks(reader, None, None, model.dtype)
        yh = model._targets(host_array(y, y_name), y_name)
        check_lengths(reader, yh, x_name, y_name)
        return Blocks(reader, yh, model._sample_weights(yh, sample_weight, None, len(reader), w_name), model.dtype)
    Xh = model._features(X, x_name)
    if not targets:
        return Arrays(Xh, None, None)
    yh = model._targets(y, y_name)
    check_lengths(Xh, yh, x_name, y_name)
    return Arrays(Xh, yh, model._sample_weights(yh, sample_weight, None, len(Xh), w_name))


def features_reader(model, X, name: str = "X") -> ArrayReader:
    """An :class:`ArrayReader` of ``X``, its sample shape checked against the model (built from it if need be)."""
    reader = ArrayReader(X, name)
    shape = reader.shape[1:]
    if not model._built:
        model._build(shape)
    elif shape != tuple(model.input_shape):
        raise InputError(f"{name} has samples of shape {shape}, but the model expects {tuple(model.input_shape)}")
    return reader


def _refuse_whole_data_fits(model) -> None:
    """What must be fitted from the whole data before training cannot be, from batches."""
    from .layers import Normalization

    if model.standardize_target and model.target_scaler is None:
        raise InputError("standardize_target fits the target scaling from all targets before training, which batches "
                         "cannot give; scale the targets yourself, or train on arrays")
    if model._built and any(isinstance(layer, Normalization) and not layer.adapted for layer in model.layers):
        raise InputError("a Normalization layer fits its statistics from the whole data before training, which batches "
                         "cannot give; pass Normalization(mean=..., variance=...), or train on arrays")


# ---- statistics over chunks ------------------------------------------------------------------


def moments(chunks, reduce_axes) -> tuple[float, np.ndarray, np.ndarray]:
    """``(count, mean, M2)`` in float64 over ``chunks`` along ``reduce_axes`` (keepdims), combined
    chunk by chunk (Chan et al.'s pairwise update, as accurate as a two-pass variance)."""
    count, mean, m2 = 0.0, None, None
    for chunk in chunks:
        chunk = np.asarray(chunk, dtype=np.float64)
        n = float(np.prod([chunk.shape[a] for a in reduce_axes]))
        if n == 0:
            continue
        c_mean = chunk.mean(axis=reduce_axes, keepdims=True)
        c_m2 = ((chunk - c_mean) ** 2).sum(axis=reduce_axes, keepdims=True)
        count, mean, m2 = combine((count, mean, m2), (n, c_mean, c_m2))
    return count, mean, m2


def combine(a, b):
    """Two ``(count, mean, M2)`` summaries as one."""
    (na, ma, sa), (nb, mb, sb) = a, b
    if na == 0:
        return b
    if nb == 0:
        return a
    n = na + nb
    delta = mb - ma
    return n, ma + delta * (nb / n), sa + sb + delta**2 * (na * nb / n)
