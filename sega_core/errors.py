"""Exceptions and warnings raised by sega. Every message says what was wrong and what to do."""

from __future__ import annotations


class SegaError(Exception):
    """Base class of every error sega raises on purpose."""


class BackendError(SegaError):
    """A backend could not be found, loaded or used."""


class NoBackendInstalledError(BackendError):
    """No backend distribution is installed at all."""

    def __init__(self) -> None:
        super().__init__(
            'no backend installed; install one with pip install "sega-core[numpy]" '
            '(or "sega-core[numba]", "sega-core[cupy]")'
        )


class UnknownBackendError(BackendError, ValueError):
    """The requested backend name matches no installed backend."""


class BackendUnavailableError(BackendError):
    """The backend is installed but cannot run here (missing library, no device...)."""


class PluginLoadError(BackendError):
    """A backend plugin failed to import or to register (raised only in strict mode)."""


class SegaPluginWarning(UserWarning):
    """A backend plugin was skipped or is misbehaving; the core carries on without it."""


class InputError(SegaError, ValueError):
    """Data or arguments given to a model are malformed (shapes, values, names...)."""


class NotFittedError(SegaError, AttributeError):
    """The model was used before it was trained or built."""


class ModelFileError(SegaError):
    """A model file is missing, corrupt, or written by an incompatible version."""


class TrainingDivergedError(SegaError, FloatingPointError):
    """Training produced non-finite parameters or loss; the model keeps its last finite weights."""


class OutputPathError(SegaError, OSError):
    """A file cannot be written where asked: its folder is missing, a folder is in the way, no permission."""
