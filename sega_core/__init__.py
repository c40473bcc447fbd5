"""sega: a small neural-network library with pluggable compute backends.

Pick a backend by installing one extra (``pip install "sega-core[numba]"``), then::

    from sega_core import NeuralNetwork
    model = NeuralNetwork(layers=[64, 32, 10], backend="numba")
"""

from __future__ import annotations

__version__ = "0.1.0"

from .backends import (  # noqa: E402
    Backend,
    KernelTable,
    get_backend,
    lazy_kernel,
    list_backends,
    refresh_backends,
    use_backend,
)
from .errors import (  # noqa: E402
    BackendError,
    BackendUnavailableError,
    InputError,
    ModelFileError,
    NoBackendInstalledError,
    NotFittedError,
    OutputPathError,
    SegaError,
    SegaPluginWarning,
    TrainingDivergedError,
    UnknownBackendError,
)
from .hookspecs import HOOK_API_VERSION, hookimpl  # noqa: E402
from .nn.callbacks import (  # noqa: E402
    Callback,
    CSVLogger,
    EarlyStopping,
    LearningRateScheduler,
    ModelCheckpoint,
    TerminateOnNaN,
)
from .nn.layers import (  # noqa: E402
    GRU,
    LSTM,
    RNN,
    AveragePooling2D,
    AvgPool2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    GlobalAvgPool2D,
    MaxPool2D,
    MaxPooling2D,
    Normalization,
    Reshape,
)
from .nn.data import Batches  # noqa: E402
from .nn.losses import Huber  # noqa: E402
from .nn.model import NeuralNetwork  # noqa: E402
from .nn.optimizers import SGD, Adadelta, Adam  # noqa: E402
from .nn.presets import BaseBackendNeuralNetwork, CuPyBackendNeuralNetwork, NumbaBackendNeuralNetwork  # noqa: E402
from .nn.schedulers import CosineDecay, ExponentialLR, ReduceLROnPlateau, StepLR  # noqa: E402
from .nn.serialization import load_model  # noqa: E402

__all__ = [
    "GRU",
    "LSTM",
    "AveragePooling2D",
    "AvgPool2D",
    "BatchNormalization",
    "GlobalAveragePooling2D",
    "GlobalAvgPool2D",
    "MaxPool2D",
    "MaxPooling2D",
    "Callback",
    "CSVLogger",
    "EarlyStopping",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "TerminateOnNaN",
    "RNN",
    "SGD",
    "Adadelta",
    "Adam",
    "BaseBackendNeuralNetwork",
    "Batches",
    "Conv2D",
    "CosineDecay",
    "CuPyBackendNeuralNetwork",
    "Dense",
    "Dropout",
    "ExponentialLR",
    "Flatten",
    "Huber",
    "NeuralNetwork",
    "Normalization",
    "NumbaBackendNeuralNetwork",
    "ReduceLROnPlateau",
    "Reshape",
    "StepLR",
    "load_model",
    "HOOK_API_VERSION",
    "Backend",
    "BackendError",
    "BackendUnavailableError",
    "InputError",
    "KernelTable",
    "ModelFileError",
    "NoBackendInstalledError",
    "NotFittedError",
    "OutputPathError",
    "SegaError",
    "SegaPluginWarning",
    "TrainingDivergedError",
    "UnknownBackendError",
    "get_backend",
    "hookimpl",
    "lazy_kernel",
    "list_backends",
    "refresh_backends",
    "use_backend",
]
