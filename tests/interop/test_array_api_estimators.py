"""The estimators declare array-API support, and scikit-learn's own array-API checks hold them to it:
with ``array_api_dispatch`` on, PyTorch tensors in give the results NumPy arrays give, in PyTorch's
namespace and on the tensor's device; mixed namespaces for X and y work; predicting from another
namespace than fit's is refused as scikit-learn asks.

scikit-learn's dispatch needs ``SCIPY_ARRAY_API=1`` before SciPy is imported, so the checks run in
a fresh interpreter. Namespaces that are not installed (CuPy without a GPU, array-api-strict) are
skipped by scikit-learn itself; PyTorch's CPU checks must run and pass.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("torch")

_SCRIPT = r"""
import json, sys
from functools import partial
from unittest import SkipTest
from sklearn.utils._array_api import NamespaceAndDevice
from sklearn.utils.estimator_checks import (_yield_array_api_checks, check_array_api_mixed_inputs,
                                            check_array_api_same_namespace)
from sega_core.estimators import SegaClassifier, SegaRegressor

# scikit-learn mixes namespaces and checks the refusal of another one with CUDA tensors and
# array-api-strict only; the same checks with CPU tensors and NumPy arrays:
torch, numpy = NamespaceAndDevice("torch", "cpu"), NamespaceAndDevice("numpy", None)
on_cpu = [partial(check_array_api_mixed_inputs, X_ns_and_device=torch, other_ns_and_device=numpy),
          partial(check_array_api_mixed_inputs, X_ns_and_device=numpy, other_ns_and_device=torch),
          partial(check_array_api_same_namespace, array_namespace="torch", device_name="cpu")]
results = {}
for estimator in (SegaClassifier(hidden_layer_sizes=(8,), epochs=5), SegaRegressor(hidden_layer_sizes=(8,), epochs=5)):
    for check in list(_yield_array_api_checks(estimator)) + on_cpu:
        key = type(estimator).__name__ + " " + check.func.__name__ + " " + json.dumps(
            {k: str(v) for k, v in sorted(check.keywords.items())})
        try:
            check(type(estimator).__name__, estimator)
            results[key] = "passed"
        except SkipTest as exc:
            results[key] = "skipped: " + str(exc)
        except Exception as exc:
            results[key] = f"FAILED: {type(exc).__name__}: {exc}"
print(json.dumps(results))
"""


def test_the_estimators_tag_array_api_support():
    from sega_core.estimators import SegaClassifier, SegaRegressor

    assert SegaClassifier().__sklearn_tags__().array_api_support is True
    assert SegaRegressor().__sklearn_tags__().array_api_support is True


def test_scikit_learns_array_api_checks_pass_with_pytorch_tensors():
    env = dict(os.environ, SCIPY_ARRAY_API="1")
    run = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(run.stdout.strip().splitlines()[-1])
    failed = {key: value for key, value in results.items() if value.startswith("FAILED")}
    assert not failed, json.dumps(failed, indent=1)
    ran_on_torch = [key for key, value in results.items() if value == "passed" and "torch" in key]
    # Per estimator: the float32 and float64 checks on the CPU, X and y in different namespaces, and
    # the refusal of another namespace at predict.
    for name in ("SegaClassifier", "SegaRegressor"):
        assert sum(key.startswith(name + " check_array_api_input ") for key in ran_on_torch) >= 2, results
        assert any(key.startswith(name + " check_array_api_mixed_inputs") for key in ran_on_torch), results
        assert any(key.startswith(name + " check_array_api_same_namespace") for key in ran_on_torch), results
