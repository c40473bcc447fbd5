"""Out-of-core blocks and streamed batches reach the GPU one chunk ahead (``staging.py``).

On the CPU emulation a copy on the copy stream is deferred until the GPU would have to have run
it (``_cuda_emulator.py``), so the two ordering mistakes staging can make show up as wrong data:
handing a chunk over before the compute stream waits for its copy (garbage, read too early), and
rewriting a pinned buffer before the copy out of it has run (the next chunk's data, sent too
late). Each is shown to be caught by breaking the staging code on purpose.
"""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pytest

from sega_core import Batches, Dense, NeuralNetwork
from sega_core.nn import data as D

_emulation = sys.modules["sega_cupy_tests_emulation"]

#: Chunk sizes: empty first, growing, shrinking, one row -- the pinned buffers grow and are reused.
SIZES = (0, 5, 17, 3, 0, 40, 1, 40, 9, 33, 2, 64, 7)


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    """``(fake cupy, staging module)``: ``staging.py`` imported against the emulation."""
    if shutil.which("g++") is None:
        pytest.skip("no C++ compiler (g++): the CPU emulation of the CUDA kernels needs one")
    fake = _emulation.load_emulator_module().make_fake_cupy(tmp_path_factory.mktemp("staging"))
    _, modules = _emulation.import_against(fake, ["sega_backend_cupy.staging"])
    return fake, modules["sega_backend_cupy.staging"]


def _chunks(seed=0):
    """Host ``(X, y, w)`` chunks of :data:`SIZES` rows; ``w`` is ``None`` in every other one."""
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(n, 3)).astype(np.float32), rng.integers(0, 5, n),
             None if i % 2 else rng.uniform(0.5, 2, n).astype(np.float32)) for i, n in enumerate(SIZES)]


def _read_as_handed_over(fake, stream):
    """Each chunk read as soon as it is yielded, the compute on the null stream (runs at once)."""
    return [tuple(None if a is None else np.array(a) for a in chunk) for chunk in stream]


def _read_after_a_slow_compute(fake, stream):
    """The compute on a stream of its own that runs only at the end: the host races ahead, so
    the copies run as late as the GPU may run them."""
    with fake.cuda.Stream(non_blocking=True) as compute:
        chunks = list(stream)
        compute.synchronize()
    return [tuple(None if a is None else np.array(a) for a in chunk) for chunk in chunks]


CONSUMERS = {"read-as-handed-over": _read_as_handed_over, "slow-compute": _read_after_a_slow_compute}


def _same(got, expected):
    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected)):
        assert len(g) == len(e), i
        for a, b in zip(g, e):
            if b is None:
                assert a is None, i
            else:
                assert a.dtype == b.dtype and a.shape == b.shape, i
                np.testing.assert_array_equal(a, b, err_msg=f"chunk {i}")


@pytest.mark.parametrize("consumer", CONSUMERS)
def test_every_chunk_arrives_as_it_was_on_the_host(emulated, consumer):
    fake, staging = emulated
    expected = _chunks()
    _same(CONSUMERS[consumer](fake, staging.stream_to_device(iter(_chunks()))), expected)


def test_the_next_chunk_is_copied_before_this_one_is_handed_over(emulated):
    fake, staging = emulated
    given = []

    def chunks():
        for chunk in _chunks():
            given.append(len(chunk[0]))
            yield chunk

    stream = staging.stream_to_device(chunks())
    for i, _ in enumerate(stream):
        assert len(given) == min(i + 2, len(SIZES)), "staging must read exactly one chunk ahead"


def test_a_chunk_handed_over_without_the_compute_waiting_holds_garbage(emulated, monkeypatch):
    fake, staging = emulated
    monkeypatch.setattr(staging, "_handed_over", lambda issued, compute: issued[0])
    got = _read_as_handed_over(fake, staging.stream_to_device(iter(_chunks())))
    assert np.isnan(got[1][0]).all() and (got[1][1] == np.iinfo(np.int64).min).all()


def test_a_pinned_buffer_rewritten_before_its_copy_ran_sends_the_wrong_chunk(emulated, monkeypatch):
    fake, staging = emulated
    monkeypatch.setattr(staging._Slot, "wait", lambda self: None)
    got = _read_after_a_slow_compute(fake, staging.stream_to_device(iter(_chunks())))
    with pytest.raises(AssertionError):
        _same(got, _chunks())


def test_a_consumer_that_stops_early_leaves_no_copy_behind(emulated, monkeypatch):
    fake, staging = emulated
    waits = []
    monkeypatch.setattr(fake.cuda, "host_waits", waits.append)
    stream = staging.stream_to_device(iter(_chunks()))
    next(stream)
    second = next(stream)
    before = len(waits)
    stream.close()  # the third chunk's copy was issued, not handed over: closing waits for it
    assert waits[before:] == ["Event.synchronize"] * 2  # each pinned buffer's last copy
    np.testing.assert_array_equal(second[0], _chunks()[1][0])


# ---- whole models --------------------------------------------------------------------------

N, FEATURES, BATCH = 48, 6, 8


def _task():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(N, FEATURES)).astype(np.float32)
    return X, (X[:, :3].sum(1) > X[:, 3:].sum(1)).astype(np.int64), rng.uniform(0.5, 2, N)


def _trained(backend, source, **options):
    model = NeuralNetwork([Dense(8, activation="relu"), Dense(2)], seed=3, dtype="float32", backend=backend)
    model.train(source, epochs=3, verbose=0, lr=3e-2, **options)
    return model


def test_out_of_core_training_matches_numpy(backend, tmp_path, monkeypatch):
    monkeypatch.setattr(D, "BLOCK_BYTES", 10 * FEATURES * 4)  # blocks of 10 rows: batches span blocks
    X, y, w = _task()
    path = tmp_path / "x.npy"
    np.save(path, X)
    for source in (path, np.load(path, mmap_mode="r")):
        got = _trained(backend, source, y=y, sample_weight=w, batch_size=BATCH)
        want = _trained("numpy", source, y=y, sample_weight=w, batch_size=BATCH)
        np.testing.assert_allclose(got.params.host_copy(), want.params.host_copy(), rtol=1e-4, atol=1e-6)


def test_training_on_batches_matches_numpy(backend):
    X, y, w = _task()
    batches = [(X[a : a + BATCH], y[a : a + BATCH], w[a : a + BATCH]) for a in range(0, N, BATCH)]
    batches[-1] = batches[-1][:2]  # one batch without weights
    got = _trained(backend, Batches(batches))
    want = _trained("numpy", Batches(batches))
    np.testing.assert_allclose(got.params.host_copy(), want.params.host_copy(), rtol=1e-4, atol=1e-6)


def _epoch_events(counting, path, y, w, batch_size):
    """The host syncs and uploads of the second of two out-of-core epochs."""
    backend, counter = counting
    with counter.paused():
        model = NeuralNetwork([Dense(8, activation="relu"), Dense(2)], seed=3, dtype="float32", backend=backend)
        model.train(path, y, sample_weight=w, epochs=1, verbose=0, batch_size=batch_size)
    mark = counter.mark()
    model.train(path, y, sample_weight=w, epochs=1, verbose=0, batch_size=batch_size)
    return counter.since(mark)


def test_an_out_of_core_epoch_waits_for_copies_once_per_block_not_per_batch(counting, tmp_path, monkeypatch):
    from sega_cupy_tests_counting import by_name, where

    monkeypatch.setattr(D, "BLOCK_BYTES", 16 * FEATURES * 4)  # 3 blocks of 16 rows
    X, y, w = _task()
    path = tmp_path / "x.npy"
    np.save(path, X)
    many, few = (_epoch_events(counting, path, y, w, size) for size in (4, 16))
    waits = by_name(many["syncs"])
    assert waits["Event.synchronize"] == 3, where(many["syncs"])
    assert by_name(many["uploads"])["set"] == 3 * 3  # X, y and w of each block
    assert len(many["syncs"]) == len(few["syncs"]), where(many["syncs"])
