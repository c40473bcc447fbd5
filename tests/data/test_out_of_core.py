"""Training, evaluating and predicting on data that is not in memory: memmaps, .npy paths,
Dask arrays and iterables of batches."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from sega_core import Callback, Dense, InputError, NeuralNetwork, Normalization
from sega_core.nn import data as D
from sega_core.nn.data import ArrayReader, Batches


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 40 float64 rows of 6 features, so small arrays span several blocks."""
    monkeypatch.setattr(D, "BLOCK_BYTES", 40 * 6 * 8)


def _data(n=203):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 6)) * 3 + 1, rng.integers(0, 3, n)


def _model(**kwargs):
    return NeuralNetwork([Normalization(), Dense(16, activation="relu"), Dense(3)], seed=1, dtype="float64", **kwargs)


def _sources(X, tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, X)
    yield "path", path
    yield "str path", str(path)
    yield "memmap", np.load(path, mmap_mode="r")
    dask_array = pytest.importorskip("dask.array")
    yield "dask", dask_array.from_array(X, chunks=(50, 6))


def test_out_of_core_arrays_train_evaluate_and_predict_as_the_array_in_memory(tmp_path, small_blocks):
    X, y = _data()
    reference = _model()
    reference.train(X, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    for name, source in _sources(X, tmp_path):
        model = _model()
        model.train(source, y, epochs=2, batch_size=16, shuffle=False, verbose=0, validation_data=(source, y))
        np.testing.assert_allclose(model.params.host_copy(), reference.params.host_copy(), rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(model.params.state_copy(), reference.params.state_copy(), rtol=1e-12, err_msg=name)
        assert model.evaluate(source, y) == pytest.approx(reference.evaluate(X, y), rel=1e-12), name
        np.testing.assert_array_equal(model.predict(source), reference.predict(X), err_msg=name)


def test_shuffling_an_out_of_core_array_visits_every_row_once_in_shuffled_blocks(tmp_path, small_blocks):
    n = 203
    rows = np.arange(n, dtype=np.float64)
    path = tmp_path / "x.npy"
    np.save(path, np.repeat(rows[:, None], 6, axis=1))
    model = NeuralNetwork([6, 1], regressor=True, seed=3, dtype="float64", backend="numpy")
    source = D.Blocks(ArrayReader(path), rows.reshape(-1, 1), None, np.float64)
    epochs = []
    for epoch in range(2):
        seen = np.concatenate([yb[:, 0] for _, yb, _, _, _ in source.batches(model, epoch, 16, True, None)])
        np.testing.assert_array_equal(np.sort(seen), rows)  # each row exactly once
        epochs.append(seen)
        blocks = seen // 40  # 40 rows per block: a block's rows arrive together, in a shuffled order
        assert (np.diff(blocks) != 0).sum() == 5
        assert list(dict.fromkeys(blocks)) != sorted(set(blocks)) or not np.array_equal(seen, np.sort(seen))
    assert not np.array_equal(epochs[0], epochs[1])  # each epoch its own order


def test_a_memmap_is_read_by_file_reads_from_its_offset_views_included(tmp_path):
    X = np.arange(50 * 4, dtype=np.float32).reshape(50, 4)
    path = tmp_path / "raw.bin"
    with open(path, "wb") as fh:
        fh.write(b"x" * 100)  # a header of an odd size: the mapping starts before the data
        fh.write(X.tobytes())
    mm = np.memmap(path, dtype=np.float32, mode="r", offset=100, shape=(50, 4))
    for view, expected in ((mm, X), (mm[7:], X[7:])):
        reader = ArrayReader(view)
        assert reader._file is not None
        np.testing.assert_array_equal(reader.read(3, 11), expected[3:11])
        reader.close()
    private = np.memmap(path, dtype=np.float32, mode="c", offset=100, shape=(50, 4))
    private[0] = -1  # a copy-on-write change lives only in the mapping: read through it
    reader = ArrayReader(private)
    assert reader._file is None and reader.read(0, 1)[0, 0] == -1


def test_a_non_finite_block_is_refused_naming_its_rows(tmp_path, small_blocks):
    X, y = _data()
    X[123, 2] = np.nan
    path = tmp_path / "x.npy"
    np.save(path, X)
    with pytest.raises(InputError, match=r"X rows 120\.\.159 contain 1 NaN or infinite value\(s\)"):
        NeuralNetwork([6, 8, 3], dtype="float64").train(path, y, epochs=1, verbose=0, shuffle=False)


def test_out_of_core_mistakes_are_one_line_errors(tmp_path):
    X, y = _data()
    path = tmp_path / "x.npy"
    np.save(path, X)
    with pytest.raises(InputError, match="validation_split needs X in memory"):
        _model().train(path, y, epochs=1, validation_split=0.2, verbose=0)
    with pytest.raises(InputError, match="is not a file"):
        _model().train(tmp_path / "missing.npy", y, epochs=1, verbose=0)
    with pytest.raises(InputError, match="X has 203 samples but y has 200"):
        _model().train(path, y[:200], epochs=1, verbose=0)
    model = _model()
    model.train(X, y, epochs=1, verbose=0)
    np.save(tmp_path / "wide.npy", np.zeros((5, 7)))
    with pytest.raises(InputError, match=r"samples of shape \(7,\), but the model expects \(6,\)"):
        model.predict(tmp_path / "wide.npy")


def test_batches_from_a_list_train_as_the_same_rows_in_memory_without_shuffling():
    X, y = _data(96)
    batches = [(X[i:i + 16], y[i:i + 16]) for i in range(0, 96, 16)]
    models = [NeuralNetwork([6, 8, 3], seed=0, dtype="float64") for _ in range(2)]
    models[0].train(Batches(batches), epochs=3, verbose=0)
    models[1].train(X, y, epochs=3, batch_size=16, shuffle=False, verbose=0)
    np.testing.assert_allclose(models[0].params.host_copy(), models[1].params.host_copy(), rtol=1e-12)
    assert models[0].history["loss"] == pytest.approx(models[1].history["loss"], rel=1e-12)
    assert models[0].evaluate(Batches(batches)) == pytest.approx(models[1].evaluate(X, y), rel=1e-12)
    np.testing.assert_array_equal(models[0].predict(iter([X[:10], X[10:]])), models[1].predict(X))


def test_an_iterator_serves_one_epoch_or_steps_per_epoch_batches_per_epoch():
    X, y = _data(64)

    def forever():
        for i in itertools.cycle(range(0, 64, 16)):
            yield X[i:i + 16], y[i:i + 16], np.ones(16)

    class Steps(Callback):
        def on_train_begin(self, logs=None):
            self.steps = self.params["steps"]

    steps = Steps()
    model = NeuralNetwork([6, 8, 3], seed=0)
    history = model.train(forever(), epochs=3, steps_per_epoch=4, verbose=0, callbacks=[steps])
    assert history.epochs == 3 and steps.steps == 4
    once = ((X[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16))
    with pytest.raises(InputError, match="the batches ran out: an iterator can be read once"):
        NeuralNetwork([6, 8, 3], seed=0).train(once, epochs=2, verbose=0)


@pytest.mark.parametrize("steps", [3, 6])
def test_with_steps_per_epoch_a_list_of_batches_runs_on_across_epochs_and_uses_every_batch(steps):
    X, y = _data(64)
    batches = [(X[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]
    cycled = NeuralNetwork([6, 8, 3], seed=0, dtype="float64")
    cycled.train(Batches(batches, steps=steps), epochs=2, verbose=0)
    assert cycled.optimizer.steps == 2 * steps
    # The same steps, in the same order, over the list repeated.
    straight = NeuralNetwork([6, 8, 3], seed=0, dtype="float64")
    straight.train(Batches((batches * 3)[: 2 * steps]), epochs=1, verbose=0)
    np.testing.assert_allclose(cycled.params.host_copy(), straight.params.host_copy(), rtol=1e-12)


def test_an_empty_list_of_batches_says_so():
    with pytest.raises(InputError, match=r"^the batches are empty: the iterable gave no batch$"):
        NeuralNetwork([6, 3]).train(Batches([]), epochs=1, verbose=0)


def test_batches_refuse_what_needs_the_whole_data_up_front():
    X, y = _data(32)
    batches = Batches([(X[:16], y[:16]), (X[16:], y[16:])])
    with pytest.raises(InputError, match="Normalization layer fits its statistics from the whole data"):
        NeuralNetwork([Normalization(), Dense(3)], input_shape=(6,)).train(batches, epochs=1, verbose=0)
    with pytest.raises(InputError, match="standardize_target fits the target scaling"):
        NeuralNetwork([6, 1], regressor=True, standardize_target=True).train(batches, epochs=1, verbose=0)
    with pytest.raises(InputError, match="class_weight='balanced' needs every label up front"):
        NeuralNetwork([6, 3]).train(batches, epochs=1, class_weight="balanced", verbose=0)
    with pytest.raises(InputError, match="y must be left out"):
        NeuralNetwork([6, 3]).train(batches, y, epochs=1, verbose=0)
    with pytest.raises(InputError, match=r"each batch must be a tuple \(X, y\)"):
        NeuralNetwork([6, 3]).train(Batches([X]), epochs=1, verbose=0)
    with pytest.raises(InputError, match="steps_per_epoch applies to batches"):
        NeuralNetwork([6, 3]).train(X, y, epochs=1, steps_per_epoch=2, verbose=0)
