"""Forward + backward time of the pooling, LSTM and GRU kernels, numba against the NumPy
reference, on the shapes of the LeNet-style and sequence workloads (batch 64).

Each kernel pair runs inside its backend's compute context (as in training: the numba backend
holds BLAS to one thread and shares the batch out), after a warm-up call that compiles it; the
median of the repeats is reported::

    python benchmarks/layer_kernels.py [--repeats 30] [--only lstm,gru]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import sega_core

NO_PADDING = ((0, 0), (0, 0))


def _pool_case(op, shape, pool):
    def setup(rng):
        return (rng.standard_normal(shape).astype(np.float32),)

    def step(k, x):
        y, ctx = getattr(k, f"{op}_forward")(x, pool, pool, NO_PADDING)
        getattr(k, f"{op}_backward")(y, x, pool, pool, NO_PADDING, ctx)

    return f"{op} {shape} pool {pool}", setup, step


def _gated_case(name, n, t, f, h):
    gates, biases = (4, 1) if name == "lstm" else (3, 2)

    def setup(rng):
        x = rng.standard_normal((n, t, f)).astype(np.float32)
        wx = (rng.standard_normal((f, gates * h)) * 0.1).astype(np.float32)
        wh = (rng.standard_normal((h, gates * h)) * 0.1).astype(np.float32)
        bs = [np.zeros(gates * h, np.float32) for _ in range(biases)]
        dhs = np.zeros((n, t, h), np.float32)
        dhs[:, -1] = rng.standard_normal((n, h))
        return x, wx, wh, bs, dhs

    def step(k, x, wx, wh, bs, dhs):
        grads = [np.empty_like(a) for a in (wx, wh, *bs)]
        if name == "lstm":
            hs, ctx = k.lstm_forward(x, wx, wh, *bs)
            k.lstm_backward(dhs, x, wx, wh, hs, ctx, *grads, True)
        else:
            hs, ctx = k.gru_forward(x, wx, wh, *bs, True)
            k.gru_backward(dhs, x, wx, wh, *bs, True, hs, ctx, *grads, True)

    return f"{name} N={n} T={t} F={f} H={h}", setup, step


CASES = [
    _pool_case("maxpool2d", (64, 6, 24, 24), (2, 2)),
    _pool_case("maxpool2d", (64, 16, 8, 8), (2, 2)),
    _pool_case("maxpool2d", (64, 16, 28, 28), (2, 2)),
    _pool_case("maxpool2d", (64, 32, 14, 14), (2, 2)),
    _pool_case("avgpool2d", (64, 6, 24, 24), (2, 2)),
    _gated_case("lstm", 64, 28, 28, 128),
    _gated_case("gru", 64, 28, 28, 128),
]


def _median_seconds(backend, step, args, repeats):
    with backend.compute_context():
        step(backend.kernels, *args)  # compiles (numba) and warms the scratch buffers
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            step(backend.kernels, *args)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Print one row per case: milliseconds on each backend and numpy / numba."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--only", default="", help="comma-separated case prefixes (default: every case)")
    args = parser.parse_args()
    prefixes = tuple(p for p in args.only.split(",") if p)
    backends = [sega_core.get_backend(name) for name in ("numpy", "numba")]
    print(f"{'case (float32, forward + backward)':<44} {'numpy ms':>9} {'numba ms':>9} {'ratio':>6}")
    for label, setup, step in CASES:
        if prefixes and not label.startswith(prefixes):
            continue
        inputs = setup(np.random.default_rng(0))
        ref, fast = (_median_seconds(b, step, inputs, args.repeats) for b in backends)
        print(f"{label:<44} {ref * 1e3:9.2f} {fast * 1e3:9.2f} {ref / fast:6.2f}")


if __name__ == "__main__":
    main()
