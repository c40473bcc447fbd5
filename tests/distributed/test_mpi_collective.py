"""Collective tests of data-parallel training: every process runs each test, in step.

It runs only under an MPI launcher: ``mpiexec -n 2 python -m pytest`` in ``.ci/run``, and from a
plain ``pytest`` run through ``test_mpi_runs.py``, which starts it so, so that MPI is never
initialised inside the main test process (other tests fork). Each test compares the distributed
model with a single-process model trained in the same process on the same data, so whatever the
process count, they must agree.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("mpi4py")
if not (os.environ.get("PMI_SIZE") or os.environ.get("OMPI_COMM_WORLD_SIZE")):
    pytest.skip("collective tests run under mpiexec (test_mpi_runs.py starts them so)", allow_module_level=True)

from sega_core import (  # noqa: E402
    BatchNormalization,
    Callback,
    CSVLogger,
    Dense,
    Dropout,
    InputError,
    ModelCheckpoint,
    NeuralNetwork,
    Normalization,
)
from sega_core.distributed import DataParallel, DistributedError  # noqa: E402
from sega_core.nn.data import Batches  # noqa: E402

DIST = DataParallel(timeout=120)
RANK, SIZE = DIST.rank, DIST.size


def _data(n=203, features=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, features)) * 3 + 1, rng.integers(0, 3, n), rng.random(n) + 0.5


def _layers(dropout=0.3):
    layers = [Normalization(), Dense(16, activation="relu")]
    return layers + ([Dropout(dropout)] if dropout else []) + [Dense(3)]


def _pair(backend="numpy", dtype="float32", dropout=0.3, **kwargs):
    """The distributed model and its single-process twin."""
    return tuple(NeuralNetwork(_layers(dropout), seed=1, reg_lambda=0.01, backend=backend, dtype=dtype, distributed=d, **kwargs)
                 for d in (DIST, None))


def _assert_same(dist_model, single, tol=2e-6):
    np.testing.assert_allclose(dist_model.params.host_copy(), single.params.host_copy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(dist_model.params.state_copy(), single.params.state_copy(), rtol=tol, atol=tol)
    for key in single.history:
        np.testing.assert_allclose(dist_model.history[key], single.history[key], rtol=1e-5, atol=1e-6, err_msg=key)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_any_process_count_trains_what_one_process_trains(backend):
    X, y, w = _data()
    kwargs = dict(sample_weight=w, class_weight={0: 1.0, 1: 2.0, 2: 0.5}, epochs=3, batch_size=25, verbose=0,
                  validation_data=(X[:60], y[:60]))  # 25 rows do not divide among 2 processes; 203 % 25 = 3 rows last
    models = _pair(backend)
    calls = DIST.allreduce_calls
    for model in models:
        model.train(X, y, **kwargs)
    _assert_same(*models)
    assert DIST.allreduce_calls - calls == 3 * 9  # one gradient sum per step: 9 batches of 203 rows, 3 epochs


def test_a_last_batch_smaller_than_the_process_count_leaves_shards_empty_and_still_agrees():
    X, y, _ = _data(n=2 * 16 + 1)  # the last batch has one row: every process but rank 0 has none of it
    models = _pair(dropout=0.5)
    for model in models:
        model.train(X, y, epochs=2, batch_size=16, verbose=0)
    _assert_same(*models)


def test_float64_agrees_to_double_precision():
    X, y, w = _data()
    models = _pair(dtype="float64")
    for model in models:
        model.train(X, y, sample_weight=w, epochs=2, batch_size=32, verbose=0)
    _assert_same(*models, tol=1e-12)


def test_out_of_core_data_trains_alike_on_every_process_count(tmp_path):
    dask_array = pytest.importorskip("dask.array")
    X, y, _ = _data(n=301)
    path = tmp_path / f"x{RANK}.npy"  # the same data; each process's own file, as on nodes without shared disks
    np.save(path, X.astype(np.float32))
    for data in (path, np.load(path, mmap_mode="r"), dask_array.from_array(X, chunks=(70, 6))):
        models = _pair()
        for model in models:
            model.train(data, y, epochs=2, batch_size=20, verbose=0)
        _assert_same(*models)


def test_evaluate_and_predict_score_shares_and_give_every_process_the_whole_result():
    X, y, w = _data(n=101)
    models = _pair(dropout=0)
    for model in models:
        model.train(X, y, epochs=1, batch_size=16, verbose=0)
    scores = [m.evaluate(X, y, sample_weight=w) for m in models]
    for key in scores[1]:
        assert scores[0][key] == pytest.approx(scores[1][key], rel=1e-5)
    np.testing.assert_array_equal(models[0].predict(X), models[1].predict(X))
    np.testing.assert_allclose(models[0].predict_proba(X[:3]), models[1].predict_proba(X[:3]), rtol=1e-6)


def test_regressor_metrics_are_reduced_over_the_processes():
    X, _, _ = _data(n=90)
    y = X @ np.arange(6.0) + 3
    models = [NeuralNetwork([6, 8, 1], regressor=True, standardize_target=True, seed=2, distributed=d) for d in (DIST, None)]
    for model in models:
        model.train(X, y, epochs=2, batch_size=10, verbose=0)
    _assert_same(*models)
    got, want = models[0].evaluate(X, y), models[1].evaluate(X, y)
    assert got == pytest.approx(want, rel=1e-5)


def test_each_process_streams_its_own_batches_weighted_by_their_size():
    X, y, _ = _data(n=120)
    starts = range(0, 120, 24)
    # Rank r's batches are its shares of the global batches: the single process's batches exactly.
    mine = [(X[s:s + 24][DIST.share(24)[0]:DIST.share(24)[1]], y[s:s + 24][DIST.share(24)[0]:DIST.share(24)[1]])
            for s in starts]
    models = _pair(dropout=0, input_shape=(6,))
    for model in models:
        model.layers[0].adapt(X)  # batches cannot fit the statistics: fit them first
    models[0].train(Batches(mine), epochs=2, verbose=0)
    models[1].train(X, y, epochs=2, batch_size=24, shuffle=False, verbose=0)
    _assert_same(*models)


@pytest.mark.skipif(SIZE < 2, reason="needs several processes")
def test_processes_running_out_of_batches_at_different_steps_all_raise():
    X, y, _ = _data(n=40)
    batches = [(X[i:i + 8], y[i:i + 8]) for i in range(0, 8 * (3 + (RANK == 0)), 8)]
    model = NeuralNetwork([Dense(4, activation="relu"), Dense(3)], seed=0, distributed=DIST)
    with pytest.raises(DistributedError, match="ran out of batches at step 4"):
        model.train(Batches(batches), epochs=1, verbose=0)


@pytest.mark.skipif(SIZE < 2, reason="needs several processes")
@pytest.mark.parametrize("difference, message", [
    ("samples", "the number of samples"),
    ("layers", "the model's layers"),
    ("dtype", "the dtype"),
    ("batch", "batch_size"),
    ("targets", r"the targets and sample weights \(a checksum\)"),  # each process given its own part
])
def test_processes_given_different_models_or_data_all_raise_the_same_error(difference, message):
    X, y, _ = _data(n=60)
    odd = RANK == 1
    if difference == "targets" and odd:
        X, y = X[::-1], y[::-1]
    n = 59 if difference == "samples" and odd else 60
    layers = [Dense(5 if difference == "layers" and odd else 4, activation="relu"), Dense(3)]
    dtype = "float64" if difference == "dtype" and odd else "float32"
    batch = 8 if difference == "batch" and odd else 10
    model = NeuralNetwork(layers, seed=0, dtype=dtype, distributed=DIST)
    with pytest.raises(InputError, match=f"processes disagree on {message}"):
        model.train(X[:n], y[:n], epochs=1, batch_size=batch, verbose=0)


@pytest.mark.skipif(SIZE < 2, reason="needs several processes")
def test_a_batch_smaller_than_the_process_count_is_refused():
    X, y, _ = _data(n=20)
    model = NeuralNetwork([6, 4, 3], seed=0, distributed=DIST)
    with pytest.raises(InputError, match=f"batch_size 1 is smaller than the {SIZE} processes"):
        model.train(X, y, epochs=1, batch_size=1, verbose=0)


@pytest.mark.skipif(SIZE < 2, reason="needs several processes")
def test_processes_whose_weights_drift_apart_are_caught_after_the_epoch():
    class Nudge(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if RANK == 1:
                self.model.params.param[0] += 1.0

    X, y, _ = _data(n=40)
    model = NeuralNetwork([6, 4, 3], seed=0, distributed=DIST)
    with pytest.raises(DistributedError, match="after epoch 1 the processes' parameters differ"):
        model.train(X, y, epochs=2, batch_size=10, verbose=0, callbacks=[Nudge()])


def test_only_rank_0_writes_checkpoints_logs_models_and_plots(tmp_path):
    pytest.importorskip("matplotlib")
    X, y, _ = _data(n=40)
    folder = tmp_path / f"rank{RANK}"
    folder.mkdir()
    checkpoint, log = ModelCheckpoint(folder / "model-{epoch}.npz", monitor="loss"), CSVLogger(folder / "log.csv")
    model = NeuralNetwork([6, 4, 3], seed=0, distributed=DIST)
    model.train(X, y, epochs=2, batch_size=10, verbose=2, callbacks=[checkpoint, log])
    model.save(folder / "model.npz")
    model.plot_metrics(folder / "curves.png")
    written = sorted(p.name for p in folder.iterdir())
    assert written == (["curves.png", "log.csv", "model-1.npz", "model-2.npz", "model.npz"] if RANK == 0 else [])
    predicted = model.predict(X)  # collective: every process calls it
    if RANK == 0:
        np.testing.assert_array_equal(NeuralNetwork.load(folder / "model.npz").predict(X), predicted)


def test_batch_normalization_trains_with_shard_statistics_and_agrees_after_each_epoch():
    X, y, _ = _data(n=80)
    model = NeuralNetwork([Dense(8), BatchNormalization(), Dense(3)], seed=0, distributed=DIST)
    model.train(X, y, epochs=2, batch_size=16, verbose=0)
    mine = np.concatenate([model.params.host_copy(), model.params.state_copy()])
    everyone = DIST.allgather(mine)
    assert (everyone == everyone[0]).all()
