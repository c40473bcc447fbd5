"""Hyper-parameter searches spread over a Dask cluster (joblib's "dask" backend) find what the
sequential search finds."""

from __future__ import annotations

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
pytest.importorskip("sklearn")

from joblib import parallel_backend  # noqa: E402
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV  # noqa: E402

from sega_core.estimators import SegaClassifier, SegaRegressor  # noqa: E402


@pytest.fixture(scope="module")
def client():
    # In-process workers (threads), one thread each: the test's cluster; a real one is reached
    # the same way, with Client("tcp://scheduler:8786").
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        yield client


def _same_search(sequential, clustered):
    for key in ("mean_test_score", "std_test_score", "rank_test_score"):
        np.testing.assert_allclose(clustered.cv_results_[key], sequential.cv_results_[key], rtol=1e-12, err_msg=key)
    assert clustered.best_params_ == sequential.best_params_


def test_grid_search_on_a_dask_cluster_equals_the_sequential_search(client):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 5))
    y = (X[:, 0] + X[:, 1] ** 2 > 1).astype(int)
    search = lambda: GridSearchCV(SegaClassifier(epochs=15, batch_size=16, random_state=0, backend="numpy"),  # noqa: E731
                                  {"hidden_layer_sizes": [(4,), (16,)], "lr": [1e-3, 1e-2]}, cv=3)
    sequential = search().fit(X, y)
    with parallel_backend("dask"):
        clustered = search().set_params(n_jobs=-1).fit(X, y)
    _same_search(sequential, clustered)
    np.testing.assert_array_equal(clustered.predict(X), sequential.predict(X))


def test_randomized_search_of_a_regressor_on_a_dask_cluster_equals_the_sequential_search(client):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(90, 4))
    y = X @ np.array([1.0, -2.0, 0.5, 3.0]) + 10
    search = lambda: RandomizedSearchCV(SegaRegressor(epochs=10, random_state=0, backend="numpy"),  # noqa: E731
                                        {"hidden_layer_sizes": [(8,), (8, 8), (32,)], "reg_lambda": [0.0, 1e-3, 1e-2]},
                                        n_iter=4, cv=3, random_state=0)
    sequential = search().fit(X, y)
    with parallel_backend("dask"):
        clustered = search().set_params(n_jobs=-1).fit(X, y)
    _same_search(sequential, clustered)
