"""sega benchmarks: four training workloads (an MLP on digits, a large MLP, a CNN, an RNN), timed against PyTorch and scikit-learn.

Run ``python benchmarks/run.py --help`` (every framework and backend in its own subprocess)
and ``python benchmarks/extras.py --help`` (import time, Numba compile time, per-batch
overhead, the GEMM floor, profiles). See ``benchmarks/README.md`` for the latest numbers.
"""
