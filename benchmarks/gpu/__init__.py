"""The GPU proof (``prove.sh``) and what it needs off the GPU: the CuPy backend on the CPU
emulation of CUDA, and the launch and host-synchronisation counts of a training batch."""
