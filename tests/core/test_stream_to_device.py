"""How out-of-core blocks and streamed batches reach the device: through a backend's own
``sega_stream_to_device`` when it has one, else one ``to_device`` per array as each chunk is
needed, the batches' iterator never read ahead."""

from __future__ import annotations

import numpy as np
import pytest

import sega_core
from sega_core import Batches, Callback, Dense, NeuralNetwork
from sega_core.nn import data as D


class _Counted:
    """An iterator of batches that counts how many it has given."""

    def __init__(self, batches):
        self._batches = iter(batches)
        self.given = 0

    def __iter__(self):
        return self

    def __next__(self):
        item = next(self._batches)
        self.given += 1
        return item


class _ReadsPerStep(Callback):
    """How many batches the iterator had given at the end of each step."""

    def __init__(self, source):
        self.source, self.seen = source, []

    def on_batch_end(self, batch, logs=None):
        self.seen.append(self.source.given)


def _batches(n=6, rows=8, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(rows, 4)).astype(np.float32), rng.integers(0, 3, rows), rng.uniform(0.5, 2, rows))
            for _ in range(n)]


def _model(backend="numpy"):
    return NeuralNetwork([Dense(5, activation="relu"), Dense(3)], seed=4, dtype="float32", backend=backend)


def test_without_the_hook_chunks_are_copied_as_asked_for_never_ahead():
    backend = sega_core.get_backend("numpy")
    chunks = _Counted([(np.ones(3), None, np.zeros(2, np.int64)), (np.arange(2.0), np.ones(1), None)])
    stream = backend.stream_to_device(chunks)
    assert chunks.given == 0
    first = next(stream)
    assert chunks.given == 1
    assert first[1] is None and np.array_equal(first[0], np.ones(3)) and first[2].dtype == np.int64
    second = next(stream)
    assert chunks.given == 2 and second[2] is None and np.array_equal(second[0], np.arange(2.0))
    assert next(stream, "end") == "end"


def test_training_on_batches_reads_each_batch_when_its_step_comes():
    source = _Counted(_batches())
    watch = _ReadsPerStep(source)
    _model().train(source, epochs=1, verbose=0, callbacks=[watch])
    assert watch.seen == [1, 2, 3, 4, 5, 6]


def _recording_plugin(make_plugin, calls):
    """A CPU backend whose stream hook records each tuple it is given, then copies it."""

    def stream_to_device(chunks):
        for chunk in chunks:
            calls.append(tuple(None if a is None else len(a) for a in chunk))
            yield tuple(None if a is None else np.array(a, copy=True) for a in chunk)

    return make_plugin("streamer", stream_to_device=stream_to_device)


def test_a_backend_s_stream_hook_carries_blocks_and_batches(global_backend, plugin, tmp_path, monkeypatch):
    calls = []
    global_backend(_recording_plugin(plugin, calls), "streamer")
    assert sega_core.get_backend("streamer").stream_to_device is not sega_core.get_backend("numpy").stream_to_device

    batches = _batches()
    X, y = np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])
    w = np.concatenate([b[2] for b in batches])
    own, reference = _model("streamer"), _model()
    own.train(Batches(batches), epochs=2, verbose=0)
    reference.train(Batches(batches), epochs=2, verbose=0)
    np.testing.assert_array_equal(own.params.host_copy(), reference.params.host_copy())
    assert calls == [(8, 8, 8)] * 12

    calls.clear()
    monkeypatch.setattr(D, "BLOCK_BYTES", 20 * 4 * 4)  # blocks of 20 rows: 48 rows in 3 blocks
    path = tmp_path / "x.npy"
    np.save(path, X)
    own, reference = _model("streamer"), _model()
    own.train(path, y, sample_weight=w, epochs=2, batch_size=8, verbose=0)
    reference.train(path, y, sample_weight=w, epochs=2, batch_size=8, verbose=0)
    np.testing.assert_array_equal(own.params.host_copy(), reference.params.host_copy())
    assert sorted(calls) == [(8, 8, 8)] * 2 + [(20, 20, 20)] * 4  # block order is shuffled


@pytest.mark.parametrize("hook_api", ["1.2", "1.3"])
def test_the_hook_is_optional(global_backend, plugin, hook_api):
    global_backend(plugin("nostream", hook_api=hook_api), "nostream")
    model = _model("nostream")
    model.train(Batches(_batches()), epochs=1, verbose=0)
    reference = _model()
    reference.train(Batches(_batches()), epochs=1, verbose=0)
    np.testing.assert_array_equal(model.params.host_copy(), reference.params.host_copy())
