"""The one place the implementation modules import cupy from.

The availability probe cannot import cupy (listing backends must stay light), so a wheel built
for another CUDA version, or a broken install, is first noticed here, when the backend is
resolved. Turn that into sega's usual "installed but unavailable" error instead of a bare
ImportError from deep inside cupy.
"""

from __future__ import annotations

try:
    import cupy
except Exception as exc:  # ImportError, or a CUDA library failing to load at import time
    from sega_core.errors import BackendUnavailableError

    raise BackendUnavailableError(
        f"backend 'cupy' is installed but unavailable: cupy failed to import "
        f"({type(exc).__name__}: {exc}); install the cupy wheel matching your CUDA driver "
        "(pip install cupy-cuda12x, or cupy-cuda13x)"
    ) from exc

__all__ = ["cupy", "contiguous", "matmul_into"]


def contiguous(x):
    """``x`` as a C-contiguous array (itself when it already is: no copy, no launch)."""
    return x if x.flags.c_contiguous else cupy.ascontiguousarray(x)


def matmul_into(a, b, out) -> None:
    """Write the matrix product ``a @ b`` into ``out`` (any shape holding the same elements).

    ``out`` is a view into the model's flat gradient buffer. When it is contiguous (always, from
    the core) cuBLAS writes straight into it; otherwise the product goes through a temporary so
    the view is still overwritten in place.
    """
    if out.flags.c_contiguous:
        cupy.matmul(a, b, out=out.reshape(a.shape[0], b.shape[1]))
    else:
        out[...] = cupy.matmul(a, b).reshape(out.shape)
