"""The training path goes through the dispatch table only: no pluggy hook call per batch."""

import cProfile
import pstats

import numpy as np
import pluggy

from sega_core import NeuralNetwork


def test_training_makes_no_pluggy_calls(monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 8))
    y = rng.integers(0, 3, size=256)
    model = NeuralNetwork([8, 16, 3], seed=0, backend="numpy")
    calls = []
    original = pluggy.HookCaller.__call__

    def counting(self, *args, **kwargs):
        calls.append(self.name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pluggy.HookCaller, "__call__", counting)
    model.train(X, y, epochs=3, batch_size=16, progress=False)
    assert calls == []


def test_profile_of_an_epoch_shows_kernels_not_plugin_machinery():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(512, 16))
    y = rng.integers(0, 4, size=512)
    model = NeuralNetwork([16, 32, 4], seed=0, backend="numpy")
    profiler = cProfile.Profile()
    profiler.enable()
    model.train(X, y, epochs=2, batch_size=16, progress=False)
    profiler.disable()
    files = {key[0] for key in pstats.Stats(profiler).stats}
    assert not [f for f in files if "pluggy" in f]
    assert any(f.endswith("sega_backend_numpy/dense.py") for f in files)
