"""How the numba backend shares work out between threads: split kernels agree with the reference
(conv and RNN splits are in test_kernels.py), the compute context holds every BLAS to one thread
(SciPy's included) and gives it back, kernels outside a context stay on the calling thread,
forked children and numba's workqueue layer are safe, concurrent models are independent, and
the numba cache is the backend's own."""

from __future__ import annotations

import multiprocessing
import sys
import threading

import numpy as np
import pytest

import sega_core

DTYPES = (np.float32, np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7, 5, 3), (1, 4, 2), (2, 9, 1), (64, 33, 10), (40, 6, 2)])
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
    # Forward by rows of x; backward cut both ways (rows of dw, rows of dx), at most 3 shares;
    # a product that cannot be cut runs on the calling thread, without a parallel launch.
    assert split_everything == [p for p in (min(3, n), min(3, n, k)) if p > 1]


def test_dense_weight_gradient_into_a_strided_buffer(ref, nb, close, split_everything):
    rng = np.random.default_rng(5)
    x, w, dy = rng.standard_normal((9, 6)), rng.standard_normal((6, 4)), rng.standard_normal((9, 4))
    dw = np.full((4, 6), np.nan).T  # Fortran-ordered: the shares cannot write it directly
    db = np.empty(4)
    want = [np.empty_like(w), np.empty(4)]
    ref.dense_backward(dy, x, w, *want, False)
    nb.dense_backward(dy, x, w, dw, db, False)
    close(dw, want[0], np.float64)
    close(db, want[1], np.float64)


def test_small_dense_products_stay_on_the_calling_thread(nb, parallel_calls):
    x = np.ones((16, 64), np.float32)
    w = np.ones((64, 32), np.float32)
    with sega_core.get_backend("numba").compute_context():
        nb.dense_forward(x, w, np.zeros(32, np.float32))
        nb.dense_backward(np.ones((16, 32), np.float32), x, w, np.empty_like(w), np.empty(32, np.float32), True)
    assert parallel_calls == []


def test_kernels_outside_a_compute_context_run_as_one_share(ref, nb, close, parallel_calls):
    """Outside a context BLAS may run threads of its own: the batch is not shared out as well."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 8, 16, 16)).astype(np.float32)
    w = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    b = np.zeros(16, np.float32)
    close(nb.conv2d_forward(x, w, b, 1, 1)[0], ref.conv2d_forward(x, w, b, 1, 1)[0], np.float32)
    assert parallel_calls == [1]
    with sega_core.get_backend("numba").compute_context():
        nb.conv2d_forward(x, w, b, 1, 1)
    from sega_backend_numba import _parallel

    assert parallel_calls[1] == min(_parallel.thread_count(), 64)


def test_the_context_holds_every_blas_to_one_thread_scipys_included_and_restores_them(run_python):
    """In a fresh process (SciPy's BLAS not loaded yet: the case a limit set too early misses)."""
    out = run_python(
        """
        import os, sys
        from threadpoolctl import threadpool_info
        import sega_core
        backend = sega_core.get_backend("numba")
        print("scipy loaded before:", "scipy.linalg.cython_blas" in sys.modules)
        with backend.compute_context():
            inside = [(i["filepath"], i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"]
            with backend.compute_context():
                pass
            still = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
        after = [(i["filepath"], i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"]
        print("scipy blas held:", any("scipy" in path and n == 1 for path, n in inside))
        print("all held:", all(n == 1 for _, n in inside), all(n == 1 for n in still))
        print("restored:", all(n == min(2, os.cpu_count()) for _, n in after), len(after) >= 2)
        """,
        OPENBLAS_NUM_THREADS="2",
    )
    assert out.split("\n")[:4] == ["scipy loaded before: False", "scipy blas held: True", "all held: True True",
                                   "restored: True True"]


def test_the_blas_setting_is_restored_by_the_last_of_overlapping_users():
    from sega_backend_numba._blas import BlasHold

    class FakeBlas:
        threads = 4

        def get_num_threads(self):
            return self.threads

        def set_num_threads(self, n):
            self.threads = n

    fake = FakeBlas()
    hold = BlasHold(lambda: [fake])
    inside, leave = threading.Event(), threading.Event()

    def other_thread():
        with hold:
            inside.set()
            leave.wait(10)

    worker = threading.Thread(target=other_thread)
    with hold:
        worker.start()
        assert inside.wait(10)
        with hold:
            assert fake.threads == 1 and hold.held
    assert fake.threads == 1 and hold.held  # the other thread is still inside
    leave.set()
    worker.join(10)
    assert fake.threads == 4 and not hold.held


def test_share_count_follows_numbas_thread_count(nb, run_python):
    from sega_backend_numba import _parallel

    with sega_core.get_backend("numba").compute_context():
        assert _parallel.shares(1000, _parallel.MIN_WORK_PER_SHARE) == min(_parallel.thread_count(), 1000)
        assert _parallel.shares(1000, 1) == 1  # too little work
        assert _parallel.shares(1, 1 << 40) == 1
    assert _parallel.shares(1000, _parallel.MIN_WORK_PER_SHARE) == 1  # outside a context
    assert _parallel.shares(1000, _parallel.MIN_WORK_PER_SHARE, blas=False) == min(_parallel.thread_count(), 1000)
    out = run_python(
        """
        import numba, sega_core
        from sega_backend_numba import _parallel
        with sega_core.get_backend("numba").compute_context():
            print(_parallel.shares(1000, _parallel.MIN_WORK_PER_SHARE), numba.get_num_threads())
        """,
        NUMBA_NUM_THREADS="1",
    )
    assert out.split() == ["1", "1"]


def _conv_in_child(queue):
    backend = sega_core.get_backend("numba")
    x = np.ones((4, 2, 5, 5), np.float32)
    with backend.compute_context():
        y, _ = backend.kernels.conv2d_forward(x, np.ones((3, 2, 3, 3), np.float32), np.zeros(3, np.float32), 1, 1)
    queue.put(float(y[0, 0, 2, 2]))


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method is Linux-only here")
def test_a_forked_child_of_a_parent_that_ran_parallel_kernels_still_works(nb, split_everything):
    """GNU OpenMP (numba's omp layer) kills a forked child at its first parallel launch when the
    parent had launched one: the child must run its shares in turn instead."""
    nb.conv2d_forward(np.ones((4, 2, 5, 5), np.float32), np.ones((3, 2, 3, 3), np.float32),
                      np.zeros(3, np.float32), 1, 1)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_conv_in_child, args=(queue,))
    child.start()
    child.join(120)
    assert child.exitcode == 0
    assert queue.get(timeout=5) == 18.0


_TWO_MODELS = """
    import threading
    import numpy as np
    import sega_core
    from sega_backend_numba import _parallel
    _parallel.MIN_WORK_PER_SHARE = 1
    rng = np.random.default_rng(3)
    X = rng.standard_normal((96, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 3, 96)

    def make():
        return sega_core.NeuralNetwork(
            layers=[sega_core.Conv2D(4, 3, padding=1, activation="relu"), sega_core.Flatten(), sega_core.Dense(3)],
            backend="numba", seed=0)

    def fit(model):
        model.train(X, y, epochs=3, batch_size=32, optimizer="adam", lr=1e-2, progress=False)

    alone = make()
    fit(alone)
    models = [make(), make()]
    threads = [threading.Thread(target=fit, args=(m,)) for m in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    want = alone.predict_proba(X)
    print(all(np.allclose(m.predict_proba(X), want, rtol=1e-5, atol=1e-6) for m in models), _parallel._layer)
"""


@pytest.mark.parametrize("layer", ["default", "workqueue"])
def test_models_trained_in_two_threads_at_once_match_sequential_training(layer, run_python):
    """Every kernel shared out, two models training at once (numba's workqueue layer aborts the
    process when two threads launch parallel regions at once: the backend must not let them)."""
    env = {} if layer == "default" else {"NUMBA_THREADING_LAYER": layer}
    out = run_python(_TWO_MODELS, **env)
    same, used = out.split()
    assert same == "True"
    if layer == "workqueue":
        assert used == "workqueue"


def test_the_backend_leaves_the_environment_and_other_codes_numba_cache_alone(tmp_path, run_python):
    module = tmp_path / "users_module.py"
    module.write_text("import numba\n\n@numba.njit(cache=True)\ndef twice(x):\n    return 2 * x\n")
    out = run_python(
        f"""
        import os, sys
        import numpy as np
        import numba, sega_core
        backend = sega_core.get_backend("numba")
        with backend.compute_context():
            backend.kernels.relu_forward(np.ones(3, np.float32))
        sys.path.insert(0, {str(tmp_path)!r})
        import users_module
        users_module.twice(2)
        from sega_backend_numba import _cachedir
        print("NUMBA_CACHE_DIR" in os.environ, repr(numba.config.CACHE_DIR), _cachedir.CACHE.enabled)
        """,
        NUMBA_CACHE_DIR=None,
        XDG_CACHE_HOME=str(tmp_path / "xdg"),
    )
    assert out.split() == ["False", "''", "True"]
    # The user's function was cached where numba puts it by default, next to its source.
    assert any(p.name.startswith("users_module.twice") for p in (tmp_path / "__pycache__").iterdir())
    from sega_backend_numba._cachedir import source_fingerprint

    ours = tmp_path / "xdg" / "sega" / "numba" / source_fingerprint()
    assert any(ours.rglob("*_activations*.nbi")) and not any(ours.rglob("users_module*"))


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


def test_each_thread_has_its_own_scratch():
    from sega_backend_numba import _workspace

    mine = _workspace.workspaces("test_threads", ((4,),), np.float32)[0]
    theirs = []
    worker = threading.Thread(target=lambda: theirs.append(_workspace.workspaces("test_threads", ((4,),), np.float32)[0]))
    worker.start()
    worker.join()
    assert theirs[0] is not mine and not np.shares_memory(theirs[0], mine)
