"""Layer types: Dense, Conv2D, pooling, RNN, LSTM, GRU, Flatten, Reshape, Dropout, Normalization, BatchNormalization."""

from __future__ import annotations

from ...errors import ModelFileError
from .base import Layer, ParamSpec
from .conv import Conv2D
from .dense import Dense
from .normalization import BatchNormalization, Normalization
from .pooling import (
    AveragePooling2D,
    AvgPool2D,
    GlobalAveragePooling2D,
    GlobalAvgPool2D,
    MaxPool2D,
    MaxPooling2D,
)
from .recurrent import GRU, LSTM, RNN
from .reshape import Dropout, Flatten, Reshape

LAYER_TYPES = {
    cls.kind: cls
    for cls in (
        Dense, Conv2D, MaxPool2D, AvgPool2D, GlobalAvgPool2D, RNN, LSTM, GRU, Flatten, Reshape, Dropout,
        Normalization, BatchNormalization,
    )
}


def layer_from_config(kind: str, config: dict) -> Layer:
    """Rebuild a layer saved with :meth:`Layer.get_config`."""
    cls = LAYER_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ModelFileError(f"unknown layer type {kind!r} in model file; known: {', '.join(LAYER_TYPES)}")
    if not isinstance(config, dict):
        raise ModelFileError(f"the configuration of a {kind} layer must be a JSON object, got {type(config).__name__}")
    return cls.from_config(config)


__all__ = [
    "GRU",
    "LAYER_TYPES",
    "LSTM",
    "AveragePooling2D",
    "AvgPool2D",
    "BatchNormalization",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "GlobalAveragePooling2D",
    "GlobalAvgPool2D",
    "Layer",
    "MaxPool2D",
    "MaxPooling2D",
    "Normalization",
    "ParamSpec",
    "RNN",
    "Reshape",
    "layer_from_config",
]
