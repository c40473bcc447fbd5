"""The checked .npz reader on its own: named members with expected dtypes and shapes."""

from __future__ import annotations

import numpy as np
import pytest

from sega_core.nn.npzfile import ArchiveError, ArrayHeader, NpzArchive


@pytest.fixture
def archive_path(tmp_path):
    path = tmp_path / "a.npz"
    np.savez(path, weights=np.arange(6, dtype=np.float32).reshape(2, 3), counts=np.arange(4, dtype=np.int64))
    return path


def test_members_are_read_after_their_headers_match(archive_path):
    with NpzArchive(archive_path, allowed={"weights", "counts", "extra"}, required={"weights"}) as archive:
        assert sorted(archive.names) == ["counts", "weights"]
        header = archive.header("weights")
        assert header == ArrayHeader((2, 3), np.dtype("<f4"), False, header.data_offset)
        assert header.size == 6 and header.nbytes == 24
        weights = archive.read("weights", np.float32, (2, None))
        counts = archive.read("counts", np.int64, (None,), max_items=4)
    np.testing.assert_array_equal(weights, np.arange(6, dtype=np.float32).reshape(2, 3))
    assert weights.flags.writeable and weights.flags.c_contiguous
    np.testing.assert_array_equal(counts, np.arange(4))


@pytest.mark.parametrize("dtype, shape, max_items, message", [
    (np.float64, (2, 3), None, "holds float32 values where float64 is expected"),
    (np.float32, (3, 2), None, "has shape (2, 3) where (3, 2) is expected"),
    (np.float32, (None,), None, "has shape (2, 3) where (any,) is expected"),
    (np.float32, (2, None), 5, "holds 6 items, more than the 5 allowed"),
])
def test_a_member_that_is_not_as_expected_is_refused(archive_path, dtype, shape, max_items, message):
    with NpzArchive(archive_path, allowed={"weights", "counts"}) as archive:
        with pytest.raises(ArchiveError) as info:
            archive.read("weights", dtype, shape, max_items=max_items)
    assert str(info.value) == f"member 'weights' {message}"


def test_unexpected_and_missing_members_are_named(archive_path):
    with pytest.raises(ArchiveError, match=r"unexpected member 'counts.npy' \(expected only weights.npy\)"):
        NpzArchive(archive_path, allowed={"weights"})
    with pytest.raises(ArchiveError, match="lacks the member\\(s\\) 'state'"):
        NpzArchive(archive_path, allowed={"weights", "counts", "state"}, required={"state"})
    with NpzArchive(archive_path, allowed={"weights", "counts", "state"}) as archive:
        with pytest.raises(ArchiveError, match="lacks the member 'state'"):
            archive.header("state")


def test_a_deflated_archive_reads_the_same(tmp_path):
    path = tmp_path / "c.npz"
    values = np.random.default_rng(0).normal(size=1000)
    np.savez_compressed(path, values=values)
    with NpzArchive(path, allowed={"values"}) as archive:
        np.testing.assert_array_equal(archive.read("values", np.float64, (1000,)), values)


def test_a_bare_npy_file_and_a_non_zip_say_what_they_are(tmp_path):
    np.save(tmp_path / "a.npy", np.ones(3))
    with pytest.raises(ArchiveError, match="single .npy array"):
        NpzArchive(tmp_path / "a.npy", allowed={"a"})
    (tmp_path / "t.npz").write_text("text")
    with pytest.raises(ArchiveError, match=r"not a readable .npz \(zip\) archive \(BadZipFile"):
        NpzArchive(tmp_path / "t.npz", allowed={"a"})
