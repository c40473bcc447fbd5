"""The out-of-tree example backend, built and installed like a real third-party distribution.

Builds wheels of sega-core, sega-backend-numpy and examples/third_party_backend, installs them
into a scratch virtual environment (third-party requirements come from uv's cache or PyPI),
then, in that environment: the backend is listed with its own kernels and numpy fallbacks, a
model trains with it, and the conformance suite passes on it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "third_party_backend"
OWN_KERNELS = {"relu_forward", "relu_backward", "sgd_update"}

pytestmark = pytest.mark.skipif(shutil.which("uv") is None, reason="needs uv to build wheels and make a scratch venv")


def _env() -> dict:
    """The environment without this test run's virtual env or sega settings leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEGA_", "PYTHON", "VIRTUAL_ENV", "UV_PROJECT"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _run(args, cwd, env=None, timeout=180) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env or _env(), capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, f"{' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    """A fresh venv with the three wheels and pytest installed; returns its python."""
    root = tmp_path_factory.mktemp("third_party")
    dist = root / "dist"
    # Wheels, not the source folders: uv caches builds of local folders by pyproject.toml's
    # mtime, so installing a folder could reuse a stale build of sega-core.
    for source in (REPO, REPO / "sega_backend_numpy", EXAMPLE):
        _run(["uv", "build", "--wheel", "--quiet", "--out-dir", dist, source], cwd=root)
    wheels = sorted(dist.glob("*.whl"))
    assert {w.name.split("-")[0] for w in wheels} == {"sega_core", "sega_backend_numpy", "sega_backend_example"}
    venv = root / "venv"
    _run(["uv", "venv", "--quiet", "--python", sys.executable, venv], cwd=root)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    _run(["uv", "pip", "install", "--quiet", "--python", python, *wheels, "pytest"], cwd=root)
    return python


def _backends(python: Path, cwd: Path) -> list[dict]:
    """``sega backends --json`` in the scratch venv.

    Falls back to ``sega_core.list_backends()`` while the ``sega`` command is not part of
    sega-core yet (its entry point names ``sega_core.cli:main``).
    """
    sega = python.parent / ("sega.exe" if os.name == "nt" else "sega")
    probe = "try:\n import sega_core.cli as c; print(callable(getattr(c, 'main', None)))\nexcept ImportError: print(False)"
    if _run([python, "-c", probe], cwd).stdout.strip() == "True":
        data = json.loads(_run([sega, "backends", "--json"], cwd).stdout)
        return data["backends"] if isinstance(data, dict) else data
    code = "import json, sega_core; print(json.dumps(sega_core.list_backends()))"
    return json.loads(_run([python, "-c", code], cwd).stdout)


def test_example_is_listed_with_its_own_kernels_and_numpy_fallbacks(scratch, tmp_path):
    backends = {b["name"]: b for b in _backends(scratch, tmp_path)}
    assert set(backends) == {"numpy", "example"}, backends
    example = backends["example"]
    assert example["status"] == "ok", example
    assert example["distribution"] == "sega-backend-example" and example["version"] == "0.1.0"
    kernels = example["kernels"]
    assert {k for k, v in kernels.items() if v == "example"} == OWN_KERNELS
    assert all(v == "numpy" for k, v in kernels.items() if k not in OWN_KERNELS), kernels


def test_example_trains_a_model(scratch, tmp_path):
    code = """
import json
import numpy as np
from sega_core import NeuralNetwork, get_backend
rng = np.random.default_rng(0)
X = rng.normal(size=(300, 4))
y = (X[:, 0] - X[:, 1] > 0).astype(int)
model = NeuralNetwork([4, 16, 2], backend="example", seed=0)
model.train(X, y, epochs=30, batch_size=32, optimizer="sgd", lr=0.1, progress=False)
print(json.dumps({"accuracy": model.evaluate(X, y)["accuracy"],
                  "sources": get_backend("example").kernels.sources}))
"""
    result = json.loads(_run([scratch, "-c", code], tmp_path).stdout)
    assert result["accuracy"] >= 0.95, result
    assert {k for k, v in result["sources"].items() if v == "example"} == OWN_KERNELS


def test_conformance_suite_passes_on_the_example(scratch, tmp_path):
    # Run from a scratch folder: the installed sega_core must be the one under test, and the
    # repository's pytest configuration must not apply.
    env = _env() | {"SEGA_TEST_BACKEND": "example"}
    proc = _run([scratch, "-m", "pytest", "--pyargs", "sega_core.testing", "-q", "-p", "no:cacheprovider"], tmp_path, env)
    assert " passed" in proc.stdout and "failed" not in proc.stdout, proc.stdout
    # The example's own test module, which uses parametrize_with_backend_checks.
    shutil.copytree(EXAMPLE / "tests", tmp_path / "example_tests")
    proc = _run([scratch, "-m", "pytest", tmp_path / "example_tests", "-q", "-p", "no:cacheprovider"], tmp_path)
    assert " passed" in proc.stdout and "failed" not in proc.stdout, proc.stdout
