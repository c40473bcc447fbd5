"""The numba backend's thread team: split dense kernels agree with the reference (conv and RNN
splits are in test_kernels.py), BLAS is held to one thread inside the team and given back
afterwards, errors propagate, forks and concurrent models work, and NUMBA_NUM_THREADS is obeyed."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import sega_core

DTYPES = (np.float32, np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7, 5, 3), (1, 4, 2), (2, 9, 1), (64, 33, 10)])
@pytest.mark.parametrize("need_dx", [True, False])
def test_split_dense_matches_reference(ref, nb, close, split_everything, shape, need_dx, dtype):
    n, k, m = shape
    rng = np.random.default_rng(2)
    x = rng.standard_normal((n, k)).astype(dtype)
    w = rng.standard_normal((k, m)).astype(dtype)
    b = rng.standard_normal(m).astype(dtype)
    close(nb.dense_forward(x, w, b), ref.dense_forward(x, w, b), dtype)
    dy = rng.standard_normal((n, m)).astype(dtype)
    g0 = [np.empty_like(w), np.empty_like(b)]
    g1 = [np.full_like(w, np.nan), np.full_like(b, np.nan)]
    dx0 = ref.dense_backward(dy, x, w, *g0, need_dx)
    dx1 = nb.dense_backward(dy, x, w, *g1, need_dx)
    for got, want in zip(g1, g0):
        close(got, want, dtype)
    if need_dx:
        close(dx1, dx0, dtype)
    else:
        assert dx1 is None
    # Each product is cut along its output's longer side, into at most 3 slices.
    backward = min(3, max(k, m), max(n, k) if need_dx else 3)
    assert split_everything.calls == [min(3, max(n, m)), backward]


def test_small_dense_products_stay_on_the_calling_thread(nb, team_calls):
    """Below OpenBLAS's own threading threshold no thread is woken and nothing is split."""
    x = np.ones((16, 64), np.float32)
    w = np.ones((64, 32), np.float32)
    nb.dense_forward(x, w, np.zeros(32, np.float32))
    nb.dense_backward(np.ones((16, 32), np.float32), x, w, np.empty_like(w), np.empty(32, np.float32), True)
    assert team_calls == []


def test_blas_is_single_threaded_inside_and_restored_after():
    from sega_backend_numba import _team

    blas = _team.BlasThreads()
    if not blas.found:
        pytest.skip("threadpoolctl finds no BLAS library in this NumPy build")
    before = [c.get_num_threads() for c in blas.controllers]
    crew = _team.Team(2, blas)
    seen = crew.run(lambda: [c.get_num_threads() for c in blas.controllers], [(), ()])
    assert seen == [[1] * len(before)] * 2
    assert [c.get_num_threads() for c in blas.controllers] == before


def test_blas_count_is_restored_by_the_last_of_overlapping_users():
    from sega_backend_numba import _team

    class FakeBlas:
        threads = 4

        def get_num_threads(self):
            return self.threads

        def set_num_threads(self, n):
            self.threads = n

    fake = FakeBlas()
    blas = _team.BlasThreads([fake])
    with blas:
        with blas:
            assert fake.threads == 1
        assert fake.threads == 1
    assert fake.threads == 4


def test_errors_propagate_and_the_team_keeps_working():
    from sega_backend_numba import _team

    crew = _team.Team(3, _team.BlasThreads())

    def body(i):
        if i == 2:
            raise ValueError(f"part {i} failed")
        return i * 10

    with pytest.raises(ValueError, match="part 2 failed"):
        crew.run(body, [(0,), (1,), (2,)])
    assert crew.run(body, [(0,), (1,), (5,)]) == [0, 10, 50]


def test_a_team_of_one_runs_everything_on_the_calling_thread():
    from sega_backend_numba import _team

    crew = _team.Team(1, _team.BlasThreads())
    assert crew.ranges(100, 1 << 30) == [(0, 100)]
    assert crew.run(lambda: threading.get_ident(), [()]) == [threading.get_ident()]


def test_ranges_cover_the_batch_evenly_and_give_each_thread_enough_work():
    from sega_backend_numba import _team

    crew = _team.Team(4, _team.BlasThreads())
    big = _team.MIN_MACS_PER_THREAD
    assert crew.ranges(10, big) == [(0, 2), (2, 5), (5, 7), (7, 10)]
    assert crew.ranges(3, big) == [(0, 1), (1, 2), (2, 3)]
    assert crew.ranges(10, big // 4) == [(0, 5), (5, 10)]
    assert crew.ranges(3, big // 4) == [(0, 3)]
    assert crew.shares(100 * big, most=2) == 2


def test_team_size_follows_numba_num_threads():
    code = "from sega_backend_numba import _team; print(_team.team().size)"
    for threads in ("1", "3"):
        env = dict(os.environ, NUMBA_NUM_THREADS=threads)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == threads


def _conv_in_child(queue):
    backend = sega_core.get_backend("numba")
    x = np.ones((4, 2, 5, 5), np.float32)
    y, _ = backend.kernels.conv2d_forward(x, np.ones((3, 2, 3, 3), np.float32), np.zeros(3, np.float32), 1, 1)
    queue.put(float(y[0, 0, 2, 2]))


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method is Linux-only here")
def test_a_forked_child_gets_a_fresh_team(nb, split_everything):
    """Worker threads do not survive fork; the child must start its own instead of waiting on them."""
    nb.conv2d_forward(np.ones((4, 2, 5, 5), np.float32), np.ones((3, 2, 3, 3), np.float32),
                      np.zeros(3, np.float32), 1, 1)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_conv_in_child, args=(queue,))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert queue.get(timeout=5) == 18.0
    assert split_everything.calls == [3]


def test_models_trained_in_two_threads_at_once_match_sequential_training(split_everything):
    """Both models' kernels share the one team (every product split, see the fixture)."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((96, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 3, 96)

    def make():
        return sega_core.NeuralNetwork(
            layers=[sega_core.Conv2D(4, 3, padding=1, activation="relu"), sega_core.Flatten(), sega_core.Dense(3)],
            backend="numba", seed=0)

    def fit(model):
        model.train(X, y, epochs=2, batch_size=32, optimizer="adam", lr=1e-2, progress=False)

    alone = make()
    fit(alone)
    models = [make(), make()]
    threads = [threading.Thread(target=fit, args=(m,)) for m in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for m in models:
        np.testing.assert_allclose(m.predict_proba(X), alone.predict_proba(X), rtol=1e-5, atol=1e-6)


def test_cblas_gemm_is_found_in_numpys_openblas():
    """NumPy's wheels ship a 64-bit-integer OpenBLAS: the compiled RNN loops must find its gemm."""
    import ctypes

    from sega_backend_numba import _cblas, _team

    # scipy (loaded by scikit-learn in other tests) brings a second, 32-bit-integer OpenBLAS.
    openblas = [c for c in _team.team().blas.controllers if c.internal_api == "openblas"]
    if not any(_cblas._symbols(c) is not None for c in openblas):
        pytest.skip("NumPy's BLAS here is not a 64-bit-integer OpenBLAS; the RNN uses its Python loop")
    found = _cblas.addresses()
    assert set(found) == {np.dtype(np.float32), np.dtype(np.float64)}
    assert all(isinstance(a, int) and a > 0 for a in found.values())
    assert ctypes.c_void_p(found[np.dtype(np.float32)]).value != ctypes.c_void_p(found[np.dtype(np.float64)]).value


@pytest.mark.parametrize("dtype", DTYPES)
def test_cblas_gemm_matches_numpy(dtype):
    from sega_backend_numba import _cblas

    address = _cblas.addresses().get(np.dtype(dtype))
    if address is None:
        pytest.skip("no 64-bit-integer OpenBLAS gemm found; nothing calls it")
    rng = np.random.default_rng(4)
    a = rng.standard_normal((7, 3)).astype(dtype)
    b = rng.standard_normal((5, 3)).astype(dtype)
    c = np.full((7, 5), np.nan, dtype)
    _cblas._product(address, a, b, c)
    np.testing.assert_allclose(c, a @ b.T, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_an_openblas_with_32_bit_integers_is_not_used():
    """Its gemm takes other argument types than the compiled call passes: it must be refused."""
    from sega_backend_numba import _cblas

    class Lib:
        def __init__(self):
            self.scipy_openblas_get_config64_ = lambda: b"OpenBLAS 0.3.31 DYNAMIC_ARCH SkylakeX"

    class Controller:
        _symbol_prefix, _symbol_suffix = "scipy_", "64_"
        dynlib = Lib()

    assert _cblas._symbols(Controller()) is None


def test_a_split_inside_a_split_runs_in_turn_instead_of_waiting_on_itself():
    from sega_backend_numba import _team

    crew = _team.Team(2, _team.BlasThreads())

    def inner(i):
        return (i, threading.get_ident())

    def outer(i):
        return crew.run(inner, [(10 * i,), (10 * i + 1,)])

    first, second = crew.run(outer, [(0,), (1,)])
    assert [r[0] for r in first] == [0, 1] and [r[0] for r in second] == [10, 11]
    # The worker's own split ran both halves on the worker itself.
    assert second[0][1] == second[1][1] != threading.get_ident()


def test_workers_that_went_to_sleep_are_woken_for_compiled_jobs_and_python_work(ref, close, split_everything):
    """After SPIN_SECONDS without work a worker raises its asleep flag and blocks; whoever posts
    next must wake it, for a compiled job (the RNN's shares) as for a Python function."""
    import time

    from sega_backend_numba import _rnn

    crew = split_everything.team
    rng = np.random.default_rng(3)
    x = rng.standard_normal((7, 4, 3)).astype(np.float32)
    wx, wh = rng.standard_normal((3, 5)).astype(np.float32), (rng.standard_normal((5, 5)) * 0.4).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    want, _ = ref.rnn_forward(x, wx, wh, b, "tanh")
    for pause in (0.0, 0.05, 0.0, 0.05):
        time.sleep(pause)
        if pause:
            assert crew._asleep[1:].all(), "idle workers should have gone to sleep"
        got, _ = _rnn.rnn_forward(x, wx, wh, b, "tanh")
        close(got, want, np.float32)
        time.sleep(pause)
        assert crew.run(lambda i: (i, threading.get_ident()), [(0,), (1,), (2,)])[2][0] == 2
    assert split_everything.calls == [3, 3, 3, 3]  # every forward pass was split three ways


def test_a_team_in_use_by_another_thread_runs_a_kernel_in_turn_instead_of_waiting():
    from sega_backend_numba import _team

    crew = _team.Team(2, _team.BlasThreads())
    entered, release = threading.Event(), threading.Event()

    def hold(i):
        if i == 0:
            entered.set()
            release.wait(5)
        return threading.get_ident()

    holder = threading.Thread(target=crew.run, args=(hold, [(0,), (1,)]))
    holder.start()
    assert entered.wait(5)
    try:
        # The workers are busy with the other thread's kernel: both parts run here, at once.
        assert crew.run(lambda: threading.get_ident(), [(), ()]) == [threading.get_ident()] * 2
    finally:
        release.set()
        holder.join(5)


def test_an_interrupted_caller_waits_for_its_workers_before_raising(monkeypatch):
    """Workers use the caller's arrays: Ctrl-C while the caller waits must not let it return
    (and free them) before the workers are done."""
    import time

    from sega_backend_numba import _team

    crew = _team.Team(2, _team.BlasThreads(), spin_seconds=1e-5)
    finished = []

    def body(i):
        if i == 1:
            threading.Event().wait(0.05)  # not time.sleep, which the test interrupts below
            finished.append(i)
        return i

    crew.run(body, [(0,), (0,)])  # start the worker
    real_sleep, interrupts = time.sleep, []

    def interrupted_sleep(seconds):
        if not interrupts:
            interrupts.append(seconds)
            raise KeyboardInterrupt
        real_sleep(seconds)

    monkeypatch.setattr(_team.time, "sleep", interrupted_sleep)
    with pytest.raises(KeyboardInterrupt):
        crew.run(body, [(0,), (1,)])
    assert interrupts and finished == [1]
    monkeypatch.setattr(_team.time, "sleep", real_sleep)
    assert crew.run(body, [(0,), (0,)]) == [0, 0]  # and the team still works


def test_workspace_sets_are_reused_per_shape_and_bounded():
    from sega_backend_numba import _workspace

    first = _workspace.workspaces("test_set", ((2, 3), (4,)), np.float32)
    assert [a.shape for a in first] == [(2, 3), (4,)] and all(a.dtype == np.float32 for a in first)
    assert all(a is b for a, b in zip(first, _workspace.workspaces("test_set", ((2, 3), (4,)), np.float32)))
    other = _workspace.workspaces("test_set", ((5, 3), (4,)), np.float32)
    assert other[0].shape == (5, 3) and other[0] is not first[0]
    assert _workspace.workspaces("test_set", ((2, 3), (4,)), np.float64)[0].dtype == np.float64
    for k in range(_workspace.MAX_SETS_PER_SLOT):
        _workspace.workspaces("test_set", ((k + 10,),), np.float32)
    again = _workspace.workspaces("test_set", ((2, 3), (4,)), np.float32)
    assert again[0] is not first[0]  # the oldest sets were dropped
    assert sum(1 for key in _workspace._local.sets if key[0] == "test_set") <= _workspace.MAX_SETS_PER_SLOT
