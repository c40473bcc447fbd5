"""Layer types: Dense, Conv2D, RNN, Flatten, Dropout."""

from __future__ import annotations

from ...errors import ModelFileError
from .base import Layer, ParamSpec
from .conv import Conv2D
from .dense import Dense
from .recurrent import RNN
from .reshape import Dropout, Flatten

LAYER_TYPES = {cls.kind: cls for cls in (Dense, Conv2D, RNN, Flatten, Dropout)}


def layer_from_config(kind: str, config: dict) -> Layer:
    """Rebuild a layer saved with :meth:`Layer.get_config`."""
    cls = LAYER_TYPES.get(kind)
    if cls is None:
        raise ModelFileError(f"unknown layer type {kind!r} in model file; known: {', '.join(LAYER_TYPES)}")
    return cls(**config)


__all__ = ["LAYER_TYPES", "Conv2D", "Dense", "Dropout", "Flatten", "Layer", "ParamSpec", "RNN", "layer_from_config"]
