"""Entry point of the numba backend (work in progress)."""

from sega_core.hookspecs import HOOK_API_VERSION, hookimpl

from . import __version__


@hookimpl
def sega_backend_info():
    """Identify the numba backend."""
    return {"name": "numba", "version": __version__, "hook_api": HOOK_API_VERSION, "device": "cpu"}


@hookimpl
def sega_backend_available():
    """Not implemented yet."""
    return "work in progress"
