"""Whole runs under ``mpiexec -n 2``, started from the test: the collective tests, failures that
end every process with a message instead of hanging, and ``sega train --distributed mpi``
printing and saving once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("mpi4py")


def _mpiexec() -> str:
    beside = Path(sys.executable).with_name("mpiexec")  # the MPICH wheel installs it next to python
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if found is None:
        pytest.skip("no mpiexec: install the MPI runtime with pip install \"sega-core[mpi]\"")
    return found


def _run(args, tmp_path, timeout=180, **env):
    environment = {**os.environ, "SEGA_MPI_TIMEOUT": "60", **env}
    return subprocess.run([_mpiexec(), "-n", "2", *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=timeout, env=environment)


def _script(tmp_path, body: str) -> str:
    path = tmp_path / "job.py"
    path.write_text(textwrap.dedent("""\
        import time
        import numpy as np
        from sega_core import Callback, NeuralNetwork
        rng = np.random.default_rng(0)
        X, y = rng.normal(size=(200, 6)), rng.integers(0, 3, 200)
        model = NeuralNetwork([6, 8, 3], seed=0, distributed="mpi")
        rank = model.distributed.rank
    """) + textwrap.dedent(body))
    return str(path)


def test_the_collective_tests_pass_on_two_processes(tmp_path):
    here = Path(__file__).parent
    result = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(here.parent.parent),
                   str(here / "test_mpi_collective.py")], tmp_path, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert result.stdout.count(" passed") == 2 and " failed" not in result.stdout  # one summary per process


def test_an_error_on_one_process_stops_every_process_with_its_message(tmp_path):
    job = _script(tmp_path, """
        class Boom(Callback):
            def on_epoch_end(self, epoch, logs=None):
                if rank == 1 and epoch == 1:
                    raise RuntimeError("disk full on rank 1")
        model.train(X, y, epochs=50, batch_size=10, verbose=0, callbacks=[Boom()])
        print("finished", flush=True)
    """)
    result = _run([sys.executable, job], tmp_path)
    assert result.returncode != 0
    assert "process 1 of 2 failed in training: RuntimeError: disk full on rank 1" in result.stderr
    assert "stopping every process (MPI_Abort)" in result.stderr
    assert "finished" not in result.stdout


def test_a_process_that_dies_is_reported_and_the_others_stopped(tmp_path):
    job = _script(tmp_path, """
        import os, signal
        class Die(Callback):
            def on_epoch_end(self, epoch, logs=None):
                if rank == 1 and epoch == 1:
                    os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's out-of-memory killer does
        model.train(X, y, epochs=50, batch_size=10, verbose=0, callbacks=[Die()])
        print("finished", flush=True)
    """)
    result = _run([sys.executable, job], tmp_path)  # rank 0 waits at most 60 s; mpiexec stops it at once
    assert result.returncode != 0
    assert "Killed (signal 9)" in result.stdout + result.stderr  # mpiexec's report
    assert "finished" not in result.stdout


def test_a_process_that_never_joins_is_reported_after_the_timeout(tmp_path):
    job = _script(tmp_path, """
        if rank == 1:
            time.sleep(120)  # hung: never reaches train
        model.train(X, y, epochs=1, batch_size=10, verbose=0)
    """)
    result = _run([sys.executable, job], tmp_path, SEGA_MPI_TIMEOUT="3")
    assert result.returncode != 0
    assert "process 0 of 2 waited 3 s for the others at comparing train" in result.stderr


def test_the_message_arrives_even_when_the_launcher_is_slow_to_read_it(tmp_path):
    # MPICH's proxy relays a process's output and its abort request, the abort first when both
    # wait; on a busy machine it may not run between the message and MPI_Abort. Stopping it for
    # two seconds makes that certain.
    job = _script(tmp_path, """
        import os, signal, subprocess
        class Boom(Callback):
            def on_epoch_end(self, epoch, logs=None):
                if rank == 0:
                    launcher = os.getppid()
                    with open(f"/proc/{launcher}/comm") as fh:
                        if fh.read().strip() != "hydra_pmi_proxy":
                            raise RuntimeError("no MPICH proxy to stop")
                    os.kill(launcher, signal.SIGSTOP)
                    subprocess.Popen(["sh", "-c", f"sleep 2; kill -CONT {launcher}"], start_new_session=True)
                    raise RuntimeError("out of memory on rank 0")
        model.train(X, y, epochs=3, batch_size=10, verbose=0, callbacks=[Boom()])
    """)
    result = _run([sys.executable, job], tmp_path)
    if "no MPICH proxy to stop" in result.stderr or not Path("/proc/self/comm").exists():
        pytest.skip("needs MPICH's hydra launcher on Linux, whose proxy the test stops")
    assert result.returncode != 0
    assert "process 0 of 2 failed in training: RuntimeError: out of memory on rank 0" in result.stderr


def test_sega_train_runs_data_parallel_printing_and_saving_once(tmp_path):
    sega = Path(sys.executable).with_name("sega")
    result = _run([str(sega), "train", "iris", "--distributed", "mpi", "--epochs", "5", "--save", "model.npz"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("test accuracy:") == 1
    assert (tmp_path / "model.npz").exists()
    single = subprocess.run([str(sega), "train", "iris", "--epochs", "5", "-q"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=180)
    assert single.stdout.strip() in result.stdout  # the same test accuracy as one process
