"""Model files: architecture as JSON and weights as arrays in one ``.npz``, never pickle.

The file holds ``config`` (a JSON document, stored as bytes), ``params`` (the flat parameter
buffer in float32 or float64) and ``state`` (the flat buffer of non-trainable arrays, such as a
Normalization layer's statistics; format version 2). The config also holds the class labels and
the target scaling a model learnt, so a loaded model takes raw data. Saved with its optimizer
(the default), a file also holds ``optimizer_state`` and the config the optimizer's settings and
step count, the scheduler's settings and state, and how many epochs ran: training resumed from
the file continues exactly as if it had not stopped. Weights are host arrays, so
a model saved on any backend loads on any other.

Loading never unpickles and trusts nothing a file declares: the archive's members and sizes, the
config's size and nesting, and the parameter count its architecture implies are all checked
against each other before an array is read or a model is built.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np

from .. import __version__
from ..backends import get_backend
from ..errors import ModelFileError
from .atomic import atomic_path
from .layers import layer_from_config
from .npzfile import ArchiveError, NpzArchive
from .targets import TargetScaler, classes_dtype_to_config, classes_from_config, classes_to_config
from .validation import canonical_dtype

FORMAT = "sega-model"
FORMAT_VERSION = 2
#: Versions this sega reads: 1 lacks ``state``, class labels and target scaling.
READABLE_VERSIONS = (1, 2)
#: The arrays of a model file: the JSON config as bytes, the parameters, the state (version 2),
#: and the optimizer's state arrays one after another (when saved with the optimizer).
MEMBERS = ("config", "params", "state", "optimizer_state")
#: Bounds on the JSON config. A config is a few KB; a long training history adds about 100 bytes
#: an epoch, so 1 MiB leaves room for thousands of epochs while capping what parsing may cost.
MAX_CONFIG_BYTES = 1 << 20
MAX_CONFIG_DEPTH = 32
MAX_CONFIG_CONTAINERS = 10_000

#: A JSON string (escapes included), and an array or object holding no other one.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_JSON_INNERMOST = re.compile(rb"\[[^\[\]{}]*\]|\{[^\[\]{}]*\}")


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
        "classes_dtype": classes_dtype_to_config(model.classes_),
        "target_scaler": model.target_scaler.to_config() if model.target_scaler is not None else None,
        "reg_lambda": model.reg_lambda,
        "seed": model.seed,
        "loss": model.loss.to_config(),
        "input_shape": list(model.input_shape),
        "layers": [{"kind": layer.kind, "config": layer.get_config()} for layer in model.layers],
        "history": {k: list(map(float, v)) for k, v in (model.history or {}).items()},
        "history_meta": _history_meta(model.history),
        "extra": getattr(model, "extra_config", {}) or {},
    }


def _history_meta(history) -> dict:
    if history is None:
        return {}
    return {"epochs": history.epochs, "best_epoch": history.best_epoch, "stopped_early": history.stopped_early,
            "diverged": history.diverged}


def _training_config(model) -> dict | None:
    """The optimizer's settings and step count, and the scheduler's settings and state."""
    opt = model.optimizer
    if opt is None or opt.state_arrays() is None:
        return None
    sched = model.lr_scheduler
    return {
        "optimizer": {**opt.get_config(), "steps": opt.steps},
        "scheduler": None if sched is None else {"config": sched.get_config(), "state": sched.get_state()},
    }


def save_model(model, path, include_optimizer: bool = True) -> None:
    """Write ``model`` to ``path`` atomically (``.npz`` is appended by nothing: the name is kept).

    ``include_optimizer`` also saves the optimizer's and scheduler's state, to resume training.
    """
    if not getattr(model, "_built", False):
        raise ModelFileError("cannot save a model that has not been built; train it (or give input_shape=) first")
    config = model_config(model)
    arrays = {"params": model.params.host_copy(), "state": model.params.state_copy()}
    training = _training_config(model) if include_optimizer else None
    if training is not None:
        config["training"] = training
        state = [model.backend.to_host(a) for a in model.optimizer.state_arrays()]
        arrays["optimizer_state"] = np.concatenate(state) if state else np.zeros(0, dtype=model.dtype)
    raw = json.dumps(config).encode("utf-8")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, config=np.frombuffer(raw, dtype=np.uint8), **arrays)


def read_model_file(path) -> tuple[dict, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Read and check a model file; return (config, flat params, flat state or None, optimizer state or None).

    Safe on untrusted files: every size the file declares is checked against the others before
    anything of that size is read (see :mod:`.npzfile`), so a crafted file costs a few MB at most.
    """
    path = Path(path)
    if path.is_dir():
        raise ModelFileError(f"model file {str(path)!r} is a folder; give the path of a .npz file saved by sega")
    if not path.is_file():
        raise ModelFileError(f"model file {str(path)!r} not found")
    try:
        with NpzArchive(path, allowed=MEMBERS, required=("config", "params")) as archive:
            config = parse_config(archive.read("config", np.uint8, (None,), max_items=MAX_CONFIG_BYTES))
            _check_format(config, path)
            dtype, n_params, n_state = declared_sizes(config, path)
            stored = archive.header("params")
            if stored.shape != (n_params,):
                raise ModelFileError(
                    f"{str(path)!r} declares an architecture of {n_params} parameters but stores an array "
                    f"of shape {stored.shape}; the file is corrupt"
                )
            params = archive.read("params", dtype, (n_params,))
            state = archive.read("state", dtype, (n_state,)) if "state" in archive.names else None
            n_optimizer = _optimizer_state_size(config, n_params, path)
            optimizer_state = None
            if n_optimizer is not None and "optimizer_state" in archive.names:
                optimizer_state = archive.read("optimizer_state", dtype, (n_optimizer,))
    except ArchiveError as exc:
        raise ModelFileError(f"{str(path)!r} is not a sega model file or is corrupt: {exc}") from None
    if state is None and n_state:
        raise ModelFileError(f"{str(path)!r} lacks the statistics (state) its architecture needs; the file is corrupt")
    return config, params, state, optimizer_state


def _optimizer_state_size(config: dict, n_params: int, path) -> int | None:
    """The length the saved optimizer state must have (``None``: the file holds no optimizer)."""
    from .optimizers import OPTIMIZERS

    training = config.get("training")
    if training is None:
        return None
    try:
        return OPTIMIZERS[training["optimizer"]["name"]]._n_state * n_params
    except (KeyError, TypeError) as exc:
        raise ModelFileError(f"{str(path)!r} has an invalid training section: {_one_line(exc)}") from None


def parse_config(raw: np.ndarray) -> dict:
    """The JSON document in ``raw`` (bytes as uint8), refused if nested too deeply or too branchy.

    The checks run on the bytes before ``json.loads`` builds anything, so a crafted config costs
    memory in proportion to its (bounded) size, never more.
    """
    text = raw.tobytes()
    skeleton = _JSON_STRING.sub(b'""', text)  # brackets inside strings are not structure
    too_much = ArchiveError(
        f"its config nests more than {MAX_CONFIG_DEPTH} levels deep or holds more than "
        f"{MAX_CONFIG_CONTAINERS} arrays and objects"
    )
    if skeleton.count(b"[") + skeleton.count(b"{") > MAX_CONFIG_CONTAINERS:
        raise too_much
    for _ in range(MAX_CONFIG_DEPTH + 1):  # peel the innermost arrays and objects, a level a pass
        skeleton, found = _JSON_INNERMOST.subn(b"0", skeleton)
        if not found:
            break
    else:
        raise too_much
    if any(c in skeleton for c in b"[]{}"):
        raise ArchiveError("its config is not valid JSON (unbalanced brackets)")
    try:
        config = json.loads(text.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ArchiveError(f"its config is not valid JSON ({type(exc).__name__}: {exc})") from None
    if not isinstance(config, dict):
        raise ArchiveError("its config is not a JSON object")
    return config


def _check_format(config: dict, path: Path) -> None:
    if config.get("format") != FORMAT:
        raise ModelFileError(f"{str(path)!r} is not a sega model file")
    if config.get("format_version") not in READABLE_VERSIONS:
        raise ModelFileError(
            f"{str(path)!r} uses model format version {config.get('format_version')!r} (written by sega "
            f"{config.get('sega_version')!r}); this sega {__version__} reads version {FORMAT_VERSION}"
        )


def declared_sizes(config: dict, path) -> tuple[np.dtype, int, int]:
    """The dtype and the (trainable, state) scalar counts that ``config``'s architecture needs.

    The layers are rebuilt and their shapes chained from ``input_shape`` without allocating any
    parameter, and the counts are exact Python ints (no overflow), so a file declaring a huge
    architecture is caught by comparing these with its arrays' headers.
    """
    try:
        dtype = canonical_dtype(config["dtype"])
        shape = config["input_shape"]
        if not isinstance(shape, list) or not shape or not all(type(s) is int and s >= 1 for s in shape):
            raise ModelFileError(f"input_shape must be a non-empty list of positive ints, got {shape!r}")
        if not isinstance(config["layers"], list):
            raise ModelFileError("layers must be a list")
        layers = [layer_from_config(entry["kind"], entry["config"]) for entry in config["layers"]]
        shape = tuple(shape)
        for layer in layers:
            shape = layer.build(shape)
        trainable = sum(math.prod(spec.shape) for layer in layers for spec in layer.param_specs())
        state = sum(math.prod(spec.shape) for layer in layers for spec in layer.state_specs())
    except (KeyError, TypeError, ValueError, ModelFileError) as exc:  # InputError is a ValueError
        raise ModelFileError(f"{str(path)!r} has an invalid architecture section: {_one_line(exc)}") from None
    return dtype, trainable, state


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, KeyError):  # str(KeyError) is the bare key
        return f"it lacks the key {exc.args[0]!r}"
    return " ".join(str(exc).split())


def load_model(path, backend=None, cls=None):
    """Rebuild a saved model on ``backend`` (default backend when ``None``)."""
    from .model import NeuralNetwork

    fixed = getattr(cls, "backend_name", "") if isinstance(cls, type) else ""
    if fixed:  # BaseBackendNeuralNetwork.load(...) and the like: the class fixes the backend
        if backend not in (None, fixed):
            raise TypeError(f"{cls.__name__} always runs on backend {fixed!r}; use NeuralNetwork.load(path, backend=...)")
        backend = fixed
    # First: a misspelt backend= is the caller's mistake, not the file's.
    backend = get_backend(backend)
    config, params, state, optimizer_state = read_model_file(path)
    try:
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
        model.classes_ = classes_from_config(config.get("classes"), config.get("classes_dtype"))
        _check_classes(model)
        scaler = config.get("target_scaler")
        model.target_scaler = TargetScaler.from_config(scaler) if scaler is not None else None
    except (KeyError, TypeError, ValueError, ModelFileError) as exc:  # InputError is a ValueError
        raise ModelFileError(f"{str(path)!r} has an invalid architecture section: {_one_line(exc)}") from None
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

    try:
        model.history = _history(config, History)
        model.extra_config = config.get("extra", {})
        if not isinstance(model.extra_config, dict):
            raise TypeError(f"extra is a {type(model.extra_config).__name__}, not a mapping")
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{str(path)!r} has an invalid history section: {_one_line(exc)}") from None
    if optimizer_state is not None:
        try:
            _restore_training(model, config["training"], optimizer_state)
        except (KeyError, TypeError, ValueError) as exc:  # InputError is a ValueError
            raise ModelFileError(f"{str(path)!r} has an invalid training section: {_one_line(exc)}") from None
    if cls is not None and cls is not NeuralNetwork and isinstance(cls, type) and issubclass(cls, NeuralNetwork):
        model.__class__ = cls
    return model


def _check_classes(model) -> None:
    """A classifier's labels: one per class (two for sigmoid outputs), sorted and distinct as
    ``np.unique`` gives them, which is how training stores them."""
    classes = model.classes_
    if classes is None:
        return
    want = model._n_classes()
    if model.regressor or len(classes) != want:
        raise ValueError(f"{len(classes)} class labels for a {'regressor' if model.regressor else f'model of {want} classes'}")
    if not np.array_equal(np.unique(classes), classes):
        raise ValueError("the class labels are not sorted and distinct")


def _history(config: dict, history_class):
    """The saved training history: lists of numbers by name, and its epoch count and flags."""
    values, meta = config.get("history", {}), config.get("history_meta") or {}
    if not isinstance(values, dict) or not isinstance(meta, dict):
        raise TypeError("history and history_meta must be mappings")
    for name, series in values.items():
        if not isinstance(series, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in series):
            raise TypeError(f"history {name!r} is not a list of numbers")
    history = history_class(values)
    epochs = meta.get("epochs", len(values.get("loss", [])))
    best = meta.get("best_epoch")
    if not (isinstance(epochs, int) and not isinstance(epochs, bool) and epochs >= 0):
        raise ValueError(f"epochs must be a count, got {epochs!r}")
    if best is not None and not (isinstance(best, int) and not isinstance(best, bool)):
        raise ValueError(f"best_epoch must be an epoch number, got {best!r}")
    history.epochs, history.best_epoch = epochs, best
    history.stopped_early = bool(meta.get("stopped_early", False))
    history.diverged = bool(meta.get("diverged", False))
    return history


def _restore_training(model, training: dict, optimizer_state: np.ndarray) -> None:
    """Rebuild the saved optimizer (state and step count) and scheduler on ``model``."""
    from .optimizers import make_optimizer
    from .schedulers import make_scheduler

    settings = dict(training["optimizer"])
    steps = settings.pop("steps")
    opt = make_optimizer(settings)
    opt.bind(model.backend, model.params.size, model.dtype, model.params.segments)
    for i, array in enumerate(opt.state_arrays()):
        array[...] = model.backend.to_device(np.ascontiguousarray(optimizer_state[i * model.params.size : (i + 1) * model.params.size]))
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"the optimizer's step count must be an int >= 0, got {steps!r}")
    opt.steps = steps
    model.optimizer = opt
    saved = training.get("scheduler")
    if saved is not None:
        scheduler = make_scheduler(saved["config"])
        scheduler.bind(opt)
        scheduler.set_state(saved["state"])
        model.lr_scheduler = scheduler
