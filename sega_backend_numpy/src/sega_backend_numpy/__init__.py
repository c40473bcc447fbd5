"""sega's NumPy backend: the reference implementation of every kernel hook.

Every other backend is tested against this one, and CPU backends fall back to it for any kernel
they do not implement. Vectorised NumPy throughout; float32 and float64; no promotion.
"""

__version__ = "0.1.0"
