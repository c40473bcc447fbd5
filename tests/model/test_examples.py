"""The scripts in examples/ run, each in a fresh interpreter.

examples/seed/ holds the three examples of the fixed-backend classes as first published,
unchanged except for the import line. The CuPy one needs a CUDA device: without one it must stop
with a clear "backend 'cupy' is ... unavailable" error, and with one it must run.

The other scripts are the documentation's gallery, on real data; each checks its own results
(accuracy, agreement between the command line and Python) and says what it shows.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SEED_DOC = Path("/work/shared/seed.md")


def run_example(name: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``examples/<name>`` with ``args`` in a fresh interpreter, on the default backend."""
    env = dict(os.environ)
    env.pop("SEGA_BACKEND", None)
    env["MPLBACKEND"] = "Agg"
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def cuda_device_present() -> bool:
    """Whether a CUDA device can be seen here (through CuPy if installed, else nvidia-smi)."""
    if importlib.util.find_spec("cupy") is not None:
        probe = "import cupy; print(cupy.cuda.runtime.getDeviceCount())"
        result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
        if result.returncode == 0 and result.stdout.strip().isdigit():
            return int(result.stdout.strip()) > 0
    smi = shutil.which("nvidia-smi")
    if smi:
        result = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=60)
        return result.returncode == 0 and "GPU" in result.stdout
    return False


HAS_CUDA = cuda_device_present()


def predictions_printed(stdout: str) -> list[int]:
    """The labels printed by ``print(predictions)`` (a NumPy array of 100 ints)."""
    return [int(v) for v in re.findall(r"-?\d+", stdout)]


SEED_SCRIPTS = {"Base": "seed/base_backend.py", "Numba": "seed/numba_backend.py", "CuPy": "seed/cupy_backend.py"}


@pytest.mark.parametrize("title", list(SEED_SCRIPTS))
def test_seed_examples_are_copied_with_only_the_import_changed(title):
    script = (EXAMPLES / SEED_SCRIPTS[title]).read_text()
    assert script.splitlines()[0] == f"from sega_core import {title}BackendNeuralNetwork"
    if not SEED_DOC.exists():
        pytest.skip(f"{SEED_DOC} is not on this machine")
    blocks = dict(re.findall(r"### (\w+) Backend Example\n```python\n(.*?)```", SEED_DOC.read_text(), re.S))
    original = blocks[title]
    assert script == original.replace("from sega_learn.neural_networks import", "from sega_core import")


def test_base_backend_example_runs():
    result = run_example("seed/base_backend.py")
    assert result.returncode == 0, result.stderr
    labels = predictions_printed(result.stdout)
    assert len(labels) == 100 and all(0 <= v < 10 for v in labels)


def test_numba_backend_example_runs():
    if importlib.util.find_spec("numba") is None:
        pytest.skip("numba is not installed here")
    result = run_example("seed/numba_backend.py")
    assert result.returncode == 0, result.stderr
    labels = predictions_printed(result.stdout)
    assert len(labels) == 100 and all(0 <= v < 10 for v in labels)


@pytest.mark.skipif(HAS_CUDA, reason="a CUDA device is present, so the CuPy example runs instead of failing")
def test_cupy_example_without_a_gpu_fails_with_a_clear_message():
    result = run_example("seed/cupy_backend.py", timeout=120)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert re.match(r"sega_core\.errors\.BackendUnavailableError: backend 'cupy' is .*unavailable", last), result.stderr
    # The reason is spelled out after the colon (no CUDA device, driver or cupy package...).
    assert len(last.split("unavailable", 1)[1].strip(" :")) > 5, last
    assert result.stdout == ""


@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device on this machine: the CuPy example needs an NVIDIA GPU")
def test_cupy_example_runs_on_a_gpu():
    result = run_example("seed/cupy_backend.py")
    assert result.returncode == 0, result.stderr
    labels = predictions_printed(result.stdout)
    assert len(labels) == 100 and all(0 <= v < 10 for v in labels)


#: Each gallery script and a line its output must hold (the scripts assert their own scores).
GALLERY = {
    "mnist_cnn.py": "test accuracy",
    "lstm_sequences.py": "test accuracy",
    "tabular_classification.py": "sega train's model in Python",
    "tabular_regression.py": "ridge: R^2",
    "grid_search_pipeline.py": "best parameters",
}


def test_the_gallery_is_every_script_in_examples():
    scripts = {p.name for p in EXAMPLES.glob("*.py")}
    assert scripts == set(GALLERY), "a script in examples/ is not run here, or a gallery entry has no script"


@pytest.mark.parametrize("script", list(GALLERY))
def test_gallery_example_runs(script, tmp_path):
    for module in ("sklearn", "mlxtend", "matplotlib"):
        pytest.importorskip(module)
    if script == "lstm_sequences.py" and importlib.util.find_spec("numba") is None:
        pytest.skip("numba is not installed here")
    args = (str(tmp_path / "curves.png"),) if script == "mnist_cnn.py" else ()
    result = run_example(script, *args, timeout=180)
    assert result.returncode == 0, result.stderr
    assert GALLERY[script] in result.stdout, result.stdout
    if args:
        assert (tmp_path / "curves.png").stat().st_size > 0
