"""sega's CuPy backend: every kernel hook on an NVIDIA GPU.

Dense layers and the im2col convolution run on cuBLAS GEMMs; activations, losses, dropout and
the optimizer updates are fused CUDA kernels (one launch each, compiled once per process); losses
stay on the device as 0-d arrays, so training never waits on the host. ``plugin`` (the entry
point) and ``probe`` import neither cupy nor the kernel modules: listing backends stays cheap
and works where cupy is not installed.
"""

__version__ = "0.1.0"
