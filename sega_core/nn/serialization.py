"""Model files: architecture as JSON and weights as arrays in one ``.npz``, never pickle.

The file holds ``config`` (a JSON document, stored as bytes), ``params`` (the flat parameter
buffer in float32 or float64) and ``state`` (the flat buffer of non-trainable arrays, such as a
Normalization layer's statistics; format version 2). The config also holds the class labels and
the target scaling a model learnt, so a loaded model takes raw data. Loading uses ``allow_pickle=False``, so a model file cannot run
code. Weights are host arrays, so a model saved on any backend loads on any other.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import ModelFileError
from .atomic import atomic_path
from .layers import layer_from_config
from .targets import TargetScaler, classes_from_config, classes_to_config

FORMAT = "sega-model"
FORMAT_VERSION = 2
#: Versions this sega reads: 1 lacks ``state``, class labels and target scaling.
READABLE_VERSIONS = (1, 2)


def model_config(model) -> dict:
    """The JSON-able description of a built model (everything but the weights)."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "sega_version": __version__,
        "model_class": type(model).__name__,
        "dtype": model.dtype.name,
        "regressor": model.regressor,
        "standardize_target": model.standardize_target,
        "classes": classes_to_config(model.classes_),
        "target_scaler": model.target_scaler.to_config() if model.target_scaler is not None else None,
        "reg_lambda": model.reg_lambda,
        "seed": model.seed,
        "loss": model.loss.to_config(),
        "input_shape": list(model.input_shape),
        "layers": [{"kind": layer.kind, "config": layer.get_config()} for layer in model.layers],
        "history": {k: list(map(float, v)) for k, v in (model.history or {}).items()},
        "extra": getattr(model, "extra_config", {}) or {},
    }


def save_model(model, path) -> None:
    """Write ``model`` to ``path`` atomically (``.npz`` is appended by nothing: the name is kept)."""
    if not getattr(model, "_built", False):
        raise ModelFileError("cannot save a model that has not been built; train it (or give input_shape=) first")
    config = json.dumps(model_config(model)).encode("utf-8")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(
                fh,
                config=np.frombuffer(config, dtype=np.uint8),
                params=model.params.host_copy(),
                state=model.params.state_copy(),
            )


def read_model_file(path) -> tuple[dict, np.ndarray, np.ndarray | None]:
    """Read and check a model file; return (config, flat params, flat state or None)."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {str(path)!r} not found")
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):  # a bare .npy array
            raise ModelFileError(f"{str(path)!r} is not a sega model file (it holds a single array, not an archive)")
        with data:
            config = json.loads(bytes(data["config"]).decode("utf-8"))
            params = np.array(data["params"])
            state = np.array(data["state"]) if "state" in data.files else None
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{str(path)!r} is not a sega model file or is corrupt ({type(exc).__name__}: {exc})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFileError(f"{str(path)!r} is not a sega model file")
    if config.get("format_version") not in READABLE_VERSIONS:
        raise ModelFileError(
            f"{str(path)!r} uses model format version {config.get('format_version')} (written by sega "
            f"{config.get('sega_version')}); this sega {__version__} reads version {FORMAT_VERSION}"
        )
    return config, params, state


def load_model(path, backend=None, cls=None):
    """Rebuild a saved model on ``backend`` (default backend when ``None``)."""
    from .model import NeuralNetwork

    fixed = getattr(cls, "backend_name", "") if isinstance(cls, type) else ""
    if fixed:  # BaseBackendNeuralNetwork.load(...) and the like: the class fixes the backend
        if backend not in (None, fixed):
            raise TypeError(f"{cls.__name__} always runs on backend {fixed!r}; use NeuralNetwork.load(path, backend=...)")
        backend = fixed
    config, params, state = read_model_file(path)
    try:
        if not isinstance(config["input_shape"], list) or not config["input_shape"]:
            raise ModelFileError(f"input_shape must be a non-empty list, got {config['input_shape']!r}")
        layers = [layer_from_config(entry["kind"], entry["config"]) for entry in config["layers"]]
        model = NeuralNetwork(
            layers,
            reg_lambda=config["reg_lambda"],
            loss_function=config["loss"],
            regressor=config["regressor"],
            backend=backend,
            dtype=config["dtype"],
            seed=config["seed"],
            input_shape=config["input_shape"],
            standardize_target=config.get("standardize_target", False),
        )
        model.classes_ = classes_from_config(config.get("classes"))
        scaler = config.get("target_scaler")
        model.target_scaler = TargetScaler.from_config(scaler) if scaler is not None else None
    except (KeyError, TypeError, ValueError, ModelFileError) as exc:  # InputError is a ValueError
        raise ModelFileError(f"{str(path)!r} has an invalid architecture section: {exc}") from None
    if params.shape != (model.params.size,) or params.dtype != model.dtype:
        raise ModelFileError(
            f"{str(path)!r} holds {params.size} {params.dtype} parameters but its architecture needs "
            f"{model.params.size} {model.dtype}; the file is corrupt"
        )
    model.params.restore(params)
    if model.params.state_size:
        if state is None or state.shape != (model.params.state_size,) or state.dtype != model.dtype:
            raise ModelFileError(
                f"{str(path)!r} holds no or wrong statistics (state) for its architecture, which needs "
                f"{model.params.state_size} {model.dtype} values; the file is corrupt"
            )
        model.params.restore_state(state)
    from .training import History

    model.history = History(config.get("history", {}))
    model.extra_config = config.get("extra", {})
    if cls is not None and cls is not NeuralNetwork and isinstance(cls, type) and issubclass(cls, NeuralNetwork):
        model.__class__ = cls
    return model
