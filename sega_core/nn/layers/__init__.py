"""Layer types: Dense, Conv2D, RNN, Flatten, Reshape, Dropout, Normalization."""

from __future__ import annotations

from ...errors import ModelFileError
from .base import Layer, ParamSpec
from .conv import Conv2D
from .dense import Dense
from .normalization import Normalization
from .recurrent import RNN
from .reshape import Dropout, Flatten, Reshape

LAYER_TYPES = {cls.kind: cls for cls in (Dense, Conv2D, RNN, Flatten, Reshape, Dropout, Normalization)}


def layer_from_config(kind: str, config: dict) -> Layer:
    """Rebuild a layer saved with :meth:`Layer.get_config`."""
    cls = LAYER_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ModelFileError(f"unknown layer type {kind!r} in model file; known: {', '.join(LAYER_TYPES)}")
    if not isinstance(config, dict):
        raise ModelFileError(f"the configuration of a {kind} layer must be a JSON object, got {type(config).__name__}")
    return cls.from_config(config)


__all__ = [
    "LAYER_TYPES",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "Layer",
    "Normalization",
    "ParamSpec",
    "RNN",
    "Reshape",
    "layer_from_config",
]
