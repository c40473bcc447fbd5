"""Training's extras cost no host synchronisation per batch on the CuPy backend: gradient clipping,
sample and class weights, a per-batch schedule (warm-up then cosine decay) and a callback that asks
for every batch leave the host waiting on the device a fixed number of times per epoch, however
many batches the epoch has.

Counted on the CPU emulation (``_counting.py``: every device-to-host copy and every conversion of
a device value to a Python number is a synchronisation).
"""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pytest

from sega_core import NeuralNetwork
from sega_core.nn import layers as L
from sega_core.nn.callbacks import Callback, CSVLogger, EarlyStopping
from sega_core.nn.optimizers import SGD, Adam
from sega_core.nn.schedulers import CosineDecay

RNG = np.random.default_rng(5)
X = RNG.normal(size=(64, 5)).astype(np.float32)
Y = RNG.integers(0, 3, 64)


@pytest.fixture(scope="module")
def counted(tmp_path_factory):
    """``(backend, counter)``: the cupy backend on the counting emulation."""
    if shutil.which("g++") is None:
        pytest.skip("no C++ compiler (g++): the CPU emulation of the CUDA kernels needs one")
    counting = sys.modules["sega_cupy_tests_emulation"].load_sibling("_counting.py")
    return counting.counting_backend(tmp_path_factory.mktemp("syncs_per_epoch"))


class _EveryBatch(Callback):
    """A callback that asks for every batch and keeps what it is given (device values included)."""

    def __init__(self):
        self.seen = []

    def on_batch_end(self, batch, logs=None):
        self.seen.append(logs)


def _syncs_of_one_epoch(backend, counter, batch_size, optimizer, tmp_path, **options):
    model = NeuralNetwork([L.Dense(8, activation="relu"), L.Dense(3)], backend=backend, seed=2)
    callbacks = [_EveryBatch(), EarlyStopping("val_loss", patience=3), CSVLogger(tmp_path / f"log{batch_size}.csv")]
    model.train(X, Y, epochs=1, batch_size=batch_size, verbose=0, optimizer=optimizer, validation_data=(X[:16], Y[:16]),
                callbacks=callbacks, **options)  # builds, binds the optimizer, compiles: not counted
    mark = counter.mark()
    model.train(X, Y, epochs=1, batch_size=batch_size, verbose=0, validation_data=(X[:16], Y[:16]), callbacks=callbacks,
                **options)
    assert len(callbacks[0].seen) == 2 * (64 // batch_size)
    return len(counter.since(mark)["syncs"])


@pytest.mark.parametrize("optimizer", [lambda: Adam(clipnorm=0.5, clipvalue=0.1), lambda: SGD(global_clipnorm=1.0)],
                         ids=["clipnorm+clipvalue", "global_clipnorm"])
def test_the_syncs_of_an_epoch_do_not_grow_with_its_batches(counted, optimizer, tmp_path):
    backend, counter = counted
    options = dict(class_weight="balanced", sample_weight=RNG.uniform(0.5, 2, 64),
                   lr_scheduler=CosineDecay(0.0, decay_steps=40, warmup_steps=4, warmup_target=0.05))
    few = _syncs_of_one_epoch(backend, counter, 32, optimizer(), tmp_path, **options)
    many = _syncs_of_one_epoch(backend, counter, 4, optimizer(), tmp_path, **options)
    assert many == few
