"""Write files atomically: a temporary file in the same folder, flushed to disk, then one rename."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path
from typing import Iterator

from ..errors import OutputPathError

#: Tries at a fresh temporary name before giving up (as many as tempfile.mkstemp makes).
_NAME_TRIES = 10000


def check_output_path(path) -> Path:
    """Raise :class:`OutputPathError` now if ``path`` cannot become a file; return it as a Path.

    For callers that want to fail before long work (training) rather than when saving its result.
    """
    target = Path(path)
    folder = target.parent
    if target.is_dir():
        raise OutputPathError(f"cannot write {str(target)!r}: it is a folder; give a file name inside it, e.g. {str(target / 'model.npz')!r}")
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise OutputPathError(f"cannot write {str(target)!r}: folder {str(folder)!r} {what}; create it first or choose another path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputPathError(f"cannot write {str(target)!r}: no permission to create files in folder {str(folder)!r}")
    return target


def _create_temporary(target: Path) -> tuple[int, Path]:
    # Not tempfile.mkstemp: it always creates mode 0600, and the file becomes the user's file.
    # Mode 0666 here lets the OS apply the umask, as a plain open(path, "w") would.
    for _ in range(_NAME_TRIES):
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue
        except OSError as exc:
            raise OutputPathError(f"cannot write {str(target)!r}: {exc.strerror}") from None
    raise OutputPathError(f"cannot write {str(target)!r}: no free temporary name in {str(target.parent)!r}")


def _fsync_folder(folder: Path) -> None:
    # Makes the rename itself durable. Windows cannot open a folder; there the rename is flushed
    # with the file system's metadata anyway.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, else it is removed.

    Readers never see a half-written file and a failure (Ctrl-C included) leaves nothing behind.
    The new file gets the mode a plain ``open(path, "w")`` would give it, or the mode of the
    file it replaces; it is flushed to disk before the rename, and the folder after it. A target
    that cannot be written raises :class:`OutputPathError` naming ``path``.
    """
    target = check_output_path(path)
    fd, tmp = _create_temporary(target)
    try:
        with contextlib.suppress(FileNotFoundError):
            mode = stat.S_IMODE(os.stat(target).st_mode)
            os.chmod(tmp, mode)  # a re-save keeps the permissions the user gave the file
        yield tmp
        # The caller wrote through its own handle; fsync through ours flushes the same file.
        os.fsync(fd)
        os.close(fd)
        fd = -1
        try:
            os.replace(tmp, target)
        except OSError as exc:  # e.g. a folder created at the target's name meanwhile
            raise OutputPathError(f"cannot write {str(target)!r}: {exc.strerror}") from None
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_folder(target.parent)
