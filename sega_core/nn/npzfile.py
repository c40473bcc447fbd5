"""Read ``.npz`` archives from untrusted sources: what they declare is checked before data is read.

``np.load`` believes an archive: a member's header may announce an array of any size, and a
deflated member may expand a thousandfold. :class:`NpzArchive` reads the zip's directory first
and refuses members it was not told to expect, encrypted or unusually compressed members, and
sizes that contradict each other or expand absurdly. It then reads each ``.npy`` header (shape,
dtype, memory order) on its own, with a bounded length, so the caller can compare it with what
it expects before one byte of data is read. Object arrays are refused: nothing is unpickled.
"""

from __future__ import annotations

import io
import math
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

#: The first bytes of every ``.npy`` file.
NPY_MAGIC = b"\x93NUMPY"
#: A ``.npy`` header longer than this is refused (NumPy's own default bound).
MAX_HEADER_CHARS = 10_000
#: Members up to this size may be compressed any amount (a zeroed buffer deflates ~1000:1).
SMALL_MEMBER_BYTES = 1 << 20
#: Larger ones may expand at most this much; float weights deflate barely (about 1.1:1).
MAX_EXPANSION = 100

_HEADER_READERS = {1: np.lib.format.read_array_header_1_0, 2: np.lib.format.read_array_header_2_0}
_LENGTH_FORMATS = {1: "<H", 2: "<I"}
_COMPRESSIONS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
#: What zipfile and zlib raise on a damaged archive.
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, struct.error, NotImplementedError)
_CHUNK_BYTES = 1 << 20


class ArchiveError(Exception):
    """The archive is not what the caller expects; the message says what, without the file's path."""


@dataclass(frozen=True)
class ArrayHeader:
    """What a member's ``.npy`` header declares."""

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    #: Bytes of the member before its data (magic, version, header).
    data_offset: int

    @property
    def size(self) -> int:
        """Number of items (exact: Python ints never overflow)."""
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """Bytes of data the header announces."""
        return self.size * self.dtype.itemsize


class NpzArchive:
    """An ``.npz`` file opened for checked reading of the members ``allowed`` (names without ``.npy``).

    The zip's directory is checked on opening: every member must be one of ``allowed``, those in
    ``required`` must be there, and each member's sizes must be plausible. Use as a context
    manager, then :meth:`header` and :meth:`read`. Problems raise :class:`ArchiveError`.
    """

    def __init__(self, path, allowed: Iterable[str], required: Iterable[str] = ()) -> None:
        path = Path(path)
        try:
            with open(path, "rb") as fh:
                start = fh.read(len(NPY_MAGIC))
                file_bytes = os.fstat(fh.fileno()).st_size
            if start == NPY_MAGIC:
                raise ArchiveError("it holds a single .npy array, not an .npz archive")
            self._zip = zipfile.ZipFile(path)
        except _ZIP_ERRORS as exc:
            raise ArchiveError(f"it is not a readable .npz (zip) archive ({_describe(exc)})") from None
        try:
            self._infos = self._check_directory(set(allowed), set(required), file_bytes)
        except BaseException:
            self._zip.close()
            raise

    def _check_directory(self, allowed: set, required: set, file_bytes: int) -> dict[str, zipfile.ZipInfo]:
        infos: dict[str, zipfile.ZipInfo] = {}
        for info in self._zip.infolist():
            name = info.filename[: -len(".npy")] if info.filename.endswith(".npy") else None
            if name not in allowed:
                raise ArchiveError(f"it holds an unexpected member {info.filename!r} (expected only {_listing(allowed)})")
            if name in infos:
                raise ArchiveError(f"it holds member {info.filename!r} twice")
            if info.flag_bits & 0x1:
                raise ArchiveError(f"member {name!r} is encrypted")
            if info.compress_type not in _COMPRESSIONS:
                raise ArchiveError(f"member {name!r} uses zip compression method {info.compress_type}; only stored and deflated members are read")
            if info.header_offset + info.compress_size > file_bytes:
                raise ArchiveError(f"member {name!r} extends past the end of the file (truncated?)")
            if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
                raise ArchiveError(f"member {name!r} is stored uncompressed but declares two different sizes")
            if info.file_size > SMALL_MEMBER_BYTES and info.file_size > MAX_EXPANSION * info.compress_size:
                raise ArchiveError(
                    f"member {name!r} would expand from {info.compress_size} to {info.file_size} bytes, "
                    f"more than {MAX_EXPANSION} times (a zip bomb?)"
                )
            infos[name] = info
        missing = sorted(required - set(infos))
        if missing:
            raise ArchiveError(f"it lacks the member(s) {', '.join(map(repr, missing))}")
        return infos

    def __enter__(self) -> "NpzArchive":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying file."""
        self._zip.close()

    @property
    def names(self) -> tuple[str, ...]:
        """The members present (without ``.npy``)."""
        return tuple(self._infos)

    def header(self, name: str) -> ArrayHeader:
        """The header of member ``name``; reads only its first bytes."""
        info = self._member(name)
        try:
            with self._zip.open(info) as fh:
                return _read_header(fh, name, info.file_size)
        except _ZIP_ERRORS as exc:
            raise ArchiveError(f"member {name!r} is corrupt ({_describe(exc)})") from None

    def read(self, name: str, dtype, shape: Sequence[int | None], max_items: int | None = None) -> np.ndarray:
        """Member ``name`` as a new C-ordered array of ``dtype`` in native byte order.

        Its header must declare ``dtype`` (either byte order) and a shape matching ``shape``,
        where ``None`` stands for any length on that axis; ``max_items`` bounds its size. Only
        then is its data read, in chunks, straight into the result; the CRC is checked.
        """
        info = self._member(name)
        want = np.dtype(dtype).newbyteorder("=")
        try:
            with self._zip.open(info) as fh:
                header = _read_header(fh, name, info.file_size)
                _check_header(name, header, want, tuple(shape), max_items)
                out = np.empty(header.shape, dtype=want)
                _read_into(fh, memoryview(out.reshape(-1).view(np.uint8)), name)
                if fh.read(1):  # also makes zipfile check the CRC, if the last read did not
                    raise ArchiveError(f"member {name!r} holds more bytes than its header declares")
        except _ZIP_ERRORS as exc:
            raise ArchiveError(f"member {name!r} is corrupt ({_describe(exc)})") from None
        if not header.dtype.isnative:
            out.byteswap(inplace=True)
        return out

    def _member(self, name: str) -> zipfile.ZipInfo:
        info = self._infos.get(name)
        if info is None:
            raise ArchiveError(f"it lacks the member {name!r}")
        return info


def _read_exact(fh, n: int, name: str, what: str) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise ArchiveError(f"member {name!r} ends inside its {what} (truncated?)")
    return data


def _read_header(fh, name: str, member_bytes: int) -> ArrayHeader:
    """Parse a ``.npy`` header from ``fh`` after bounding its length; check it against the member's size."""
    prefix = _read_exact(fh, len(NPY_MAGIC) + 2, name, ".npy magic")
    if prefix[: len(NPY_MAGIC)] != NPY_MAGIC:
        raise ArchiveError(f"member {name!r} is not a .npy array")
    major = prefix[len(NPY_MAGIC)]
    if major not in _HEADER_READERS:
        raise ArchiveError(f"member {name!r} is a .npy array of format version {major}, which is not read here")
    length_format = _LENGTH_FORMATS[major]
    length_bytes = _read_exact(fh, struct.calcsize(length_format), name, ".npy header")
    (length,) = struct.unpack(length_format, length_bytes)
    if length > MAX_HEADER_CHARS:
        raise ArchiveError(f"member {name!r} has a .npy header of {length} bytes, more than {MAX_HEADER_CHARS}")
    raw = prefix + length_bytes + _read_exact(fh, length, name, ".npy header")
    buffer = io.BytesIO(raw)
    np.lib.format.read_magic(buffer)
    try:
        shape, fortran_order, dtype = _HEADER_READERS[major](buffer, max_header_size=MAX_HEADER_CHARS)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        # NumPy's own message would suggest allow_pickle; say only what is wrong.
        raise ArchiveError(f"member {name!r} has a malformed .npy header") from None
    if any(s < 0 for s in shape):
        raise ArchiveError(f"member {name!r} declares a negative shape {shape}")
    header = ArrayHeader(tuple(shape), dtype, bool(fortran_order), len(raw))
    if dtype.hasobject:
        raise ArchiveError(f"member {name!r} holds Python objects; only numeric arrays are read")
    if header.data_offset + header.nbytes != member_bytes:
        raise ArchiveError(
            f"member {name!r} declares {header.nbytes} bytes of data (shape {header.shape}, {dtype}) "
            f"but holds {member_bytes - header.data_offset}"
        )
    return header


def _check_header(name: str, header: ArrayHeader, want: np.dtype, shape: tuple, max_items: int | None) -> None:
    if header.fortran_order:
        raise ArchiveError(f"member {name!r} is stored in Fortran order; only C order is read")
    if header.dtype.newbyteorder("=") != want:
        raise ArchiveError(f"member {name!r} holds {header.dtype} values where {want} is expected")
    if len(header.shape) != len(shape) or any(w is not None and w != s for w, s in zip(shape, header.shape)):
        expected = "(" + ", ".join("any" if w is None else str(w) for w in shape) + ("," if len(shape) == 1 else "") + ")"
        raise ArchiveError(f"member {name!r} has shape {header.shape} where {expected} is expected")
    if max_items is not None and header.size > max_items:
        raise ArchiveError(f"member {name!r} holds {header.size} items, more than the {max_items} allowed")


def _read_into(fh, target: memoryview, name: str) -> None:
    position, total = 0, len(target)
    while position < total:
        chunk = fh.read(min(_CHUNK_BYTES, total - position))
        if not chunk:
            raise ArchiveError(f"member {name!r} ends inside its data (truncated?)")
        target[position : position + len(chunk)] = chunk
        position += len(chunk)


def _listing(names) -> str:
    return ", ".join(f"{n}.npy" for n in sorted(names))


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
