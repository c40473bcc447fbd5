"""Atomic writes: permissions as a plain open() gives them, flushed before the rename, clear
errors naming the user's path, and no temporary file left behind whatever happens."""

from __future__ import annotations

import os
import stat

import pytest

from sega_core.errors import OutputPathError, SegaError
from sega_core.nn import atomic
from sega_core.nn.atomic import atomic_path, check_output_path

POSIX = os.name == "posix"


def _write(path, data=b"new"):
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    """``umask(value)`` sets the process umask for this test; the old one comes back after."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


@pytest.mark.skipif(not POSIX, reason="POSIX permissions")
@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_a_new_file_gets_the_mode_a_plain_open_would_give(tmp_path, umask, mask):
    umask(mask)
    with open(tmp_path / "plain", "w"):
        pass
    _write(tmp_path / "atomic")
    assert _mode(tmp_path / "atomic") == _mode(tmp_path / "plain") == 0o666 & ~mask


@pytest.mark.skipif(not POSIX, reason="POSIX permissions")
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o600])
def test_a_resave_keeps_the_mode_of_the_file_it_replaces(tmp_path, umask, mode):
    umask(0o077)
    path = tmp_path / "m.npz"
    path.write_bytes(b"old")
    os.chmod(path, mode)
    _write(path)
    assert path.read_bytes() == b"new" and _mode(path) == mode


def test_the_file_is_flushed_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", stat.S_ISDIR(os.fstat(fd).st_mode)))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.path.getsize(src)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    _write(tmp_path / "m.npz", b"12345")
    expected = [("fsync", False), ("replace", 5)] + ([("fsync", True)] if POSIX else [])
    assert events == expected
    assert (tmp_path / "m.npz").read_bytes() == b"12345"


def _one_line_naming(info, path):
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    assert ".tmp" not in message  # never the hidden temporary file
    assert isinstance(info.value, SegaError) and isinstance(info.value, OSError)
    return message


def test_a_folder_as_target_says_to_give_a_file_name(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(OutputPathError) as info:
        _write(folder)
    assert "it is a folder; give a file name inside it" in _one_line_naming(info, folder)
    assert list(folder.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_missing_folder_says_to_create_it(tmp_path):
    path = tmp_path / "no" / "such" / "m.npz"
    with pytest.raises(OutputPathError) as info:
        _write(path)
    message = _one_line_naming(info, path)
    assert f"folder {str(path.parent)!r} does not exist; create it first" in message
    assert list(tmp_path.iterdir()) == []


def test_a_file_in_place_of_the_folder_is_named(tmp_path):
    (tmp_path / "afile").write_text("x")
    path = tmp_path / "afile" / "m.npz"
    with pytest.raises(OutputPathError) as info:
        check_output_path(path)
    assert "is not a folder" in _one_line_naming(info, path)


@pytest.mark.skipif(not POSIX or os.geteuid() == 0, reason="POSIX permissions; root may write anywhere")
def test_a_read_only_folder_is_reported_before_writing(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    os.chmod(folder, 0o500)
    try:
        with pytest.raises(OutputPathError) as info:
            _write(folder / "m.npz")
        assert "no permission" in _one_line_naming(info, folder / "m.npz")
    finally:
        os.chmod(folder, 0o700)


def test_a_failing_temporary_file_is_reported_with_the_users_path(tmp_path, monkeypatch):
    real_open = os.open

    def refusing_open(path, flags, mode=0o777, **kw):
        if str(path).endswith(".tmp"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, mode, **kw)

    monkeypatch.setattr(os, "open", refusing_open)
    with pytest.raises(OutputPathError) as info:
        _write(tmp_path / "m.npz")
    assert "Permission denied" in _one_line_naming(info, tmp_path / "m.npz")


def test_a_failing_rename_is_reported_with_the_users_path_and_cleaned_up(tmp_path, monkeypatch):
    def refusing_replace(src, dst):
        raise IsADirectoryError(21, "Is a directory", str(src), None, str(dst))

    monkeypatch.setattr(os, "replace", refusing_replace)
    with pytest.raises(OutputPathError) as info:
        _write(tmp_path / "m.npz")
    assert "Is a directory" in _one_line_naming(info, tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit, OSError("disk full"), ValueError("bad")])
def test_the_temporary_file_is_removed_on_every_exception(tmp_path, exc):
    path = tmp_path / "m.npz"
    path.write_bytes(b"previous")
    with pytest.raises(type(exc) if isinstance(exc, BaseException) else exc):
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"half")
            raise exc
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]
    assert path.read_bytes() == b"previous"


def test_an_interrupted_fsync_also_cleans_up(tmp_path, monkeypatch):
    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _write(tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == []


def test_temporary_names_never_clobber_an_existing_file(tmp_path, monkeypatch):
    tokens = iter(["aaaaaaaa", "aaaaaaaa", "bbbbbbbb"])
    monkeypatch.setattr(atomic.secrets, "token_hex", lambda n: next(tokens))
    squatter = tmp_path / ".m.npz.aaaaaaaa.tmp"
    squatter.write_bytes(b"someone else's")
    _write(tmp_path / "m.npz")  # takes the second name it tries, not the taken one
    assert squatter.read_bytes() == b"someone else's"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".m.npz.aaaaaaaa.tmp", "m.npz"]
