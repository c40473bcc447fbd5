"""Checks on user data and arguments: every malformed input gets an InputError that says what to do."""

from __future__ import annotations

import math
import numbers
import os

import numpy as np

from ..errors import InputError

DTYPES = {"float32": np.float32, "float64": np.float64}

# ---- numbers ------------------------------------------------------------------------------------


def _is_real(value) -> bool:
    """A real number, Python's or NumPy's, that is not a bool (True is an int to Python)."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _bounds_text(low, high, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low == 0 and low_open:
        return "a positive number (finite)"
    if low is not None:
        return f"a finite number {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"a finite number {'<' if high_open else '<='} {high:g}"
    return "a finite number"


def _refuse(name: str, expected: str, value, owner: str | None) -> InputError:
    lead = f"{owner} needs {name} to be" if owner else f"{name} must be"
    return InputError(f"{lead} {expected}, got {value!r}")


def check_number(name: str, value, low=None, high=None, *, low_open: bool = False, high_open: bool = False,
                 owner: str | None = None) -> float:
    """``value`` as a float, after checking it is a finite real number within the bounds.

    Python and NumPy numbers are accepted; bools, strings, NaN and infinities are not. ``low``
    and ``high`` are inclusive unless ``low_open``/``high_open``. A refusal is a one-line
    :class:`InputError`: ``"{name} must be in [0, 1), got 'x'"``, or with ``owner``
    ``"{owner} needs {name} to be ..."``.
    """
    try:
        number = float(value) if _is_real(value) else math.nan
    except OverflowError:  # an int beyond float's range
        number = math.nan
    ok = math.isfinite(number)
    if ok and low is not None:
        ok = number > low if low_open else number >= low
    if ok and high is not None:
        ok = number < high if high_open else number <= high
    if not ok:
        raise _refuse(name, _bounds_text(low, high, low_open, high_open), value, owner)
    return number


def check_int(name: str, value, low: int | None = None, *, owner: str | None = None) -> int:
    """``value`` as an int >= ``low`` (Python or NumPy ints; not bools, not floats such as 2.0)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or (low is not None and value < low):
        raise _refuse(name, "an int" + (f" >= {low}" if low is not None else ""), value, owner)
    return int(value)


def check_learning_rate(lr, name: str = "learning rate") -> float:
    """A finite learning rate > 0."""
    return check_number(name, lr, 0, low_open=True)


# ---- model arguments -----------------------------------------------------------------------------


def check_dropout_rate(value, name: str = "dropout_rate") -> float:
    """The fraction of units dropped: a number in [0, 1)."""
    return check_number(name, value, 0, 1, high_open=True)


def check_reg_lambda(value, name: str = "reg_lambda") -> float:
    """The L2 penalty's factor: a finite number >= 0."""
    return check_number(name, value, 0)


def check_seed(value, name: str = "seed") -> int | None:
    """``None`` (a fresh seed each time) or an int >= 0."""
    return None if value is None else check_int(name, value, 0)


def check_input_shape(value, name: str = "input_shape") -> tuple[int, ...]:
    """The shape of one sample: a non-empty sequence of ints >= 1, e.g. ``(64,)`` or ``(1, 28, 28)``."""
    try:
        items = tuple(value) if not isinstance(value, (str, bytes)) else None
    except TypeError:
        items = None
    if not items or any(isinstance(s, (bool, np.bool_)) or not isinstance(s, numbers.Integral) or s < 1 for s in items):
        raise InputError(f"{name} must be a tuple of ints >= 1 (the shape of one sample, e.g. (64,)), got {value!r}")
    return tuple(int(s) for s in items)


#: Arrays of the parameters' size a model keeps: weights and gradients from the start, and an
#: optimizer's state while training (Adam keeps two, the most of the optimizers here).
BUILD_COPIES = 2
TRAIN_COPIES = 4


def physical_memory() -> int | None:
    """This machine's memory in bytes, where the OS says (``None`` elsewhere, e.g. Windows)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_model_memory(n_params: int, dtype, available: int | None = None) -> None:
    """Refuse, saying how much memory it needs, a model too large to build in ``available`` bytes.

    ``available`` defaults to the machine's memory (:func:`physical_memory`); where that is
    unknown nothing is refused. A model is refused when its weights and gradients alone exceed
    it; the message also gives the weights alone and what training with Adam would need.
    """
    if available is None:
        available = physical_memory()
    itemsize = canonical_dtype(dtype).itemsize
    weights = int(n_params) * itemsize
    if available is None or weights * BUILD_COPIES <= available:
        return
    raise InputError(
        f"this model has {int(n_params):,} parameters: {_bytes(weights)} of {np.dtype(dtype).name} for the weights alone, "
        f"{_bytes(weights * BUILD_COPIES)} with their gradients and about {_bytes(weights * TRAIN_COPIES)} to train with "
        f"Adam, but this machine has {_bytes(available)} of memory; use fewer or smaller layers"
    )


def _bytes(n: int) -> str:
    units = ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB")
    power = min(int(math.log(n, 1024)) if n >= 1 else 0, len(units) - 1)
    return f"{n / 1024**power:.1f} {units[power]}"


# ---- data ---------------------------------------------------------------------------------------


def canonical_dtype(dtype) -> np.dtype:
    """float32 or float64; anything else is refused (there is no silent promotion)."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.name not in DTYPES:
        raise InputError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return dt


#: DLPack device types whose memory NumPy reads in place: the CPU, and host memory pinned by
#: CUDA or ROCm (kDLCPU, kDLCUDAHost, kDLROCMHost).
_DLPACK_HOST_DEVICES = (1, 3, 11)
_DLPACK_DEVICE_NAMES = {2: "CUDA", 4: "OpenCL", 7: "Vulkan", 8: "Metal", 9: "VPI", 10: "ROCm", 13: "CUDA managed",
                        14: "oneAPI"}


def host_array(a, name: str = "X") -> np.ndarray:
    """``a`` as a NumPy array of its own dtype: without a copy where its memory is on the host,
    with one copy from a device.

    Arrays of other frameworks (anything with ``__dlpack__``: PyTorch tensors, CuPy and JAX
    arrays) come through DLPack, read in place on the host and copied once to it from a GPU.
    Frames (pandas, polars) come through their ``to_numpy``; anything else (lists, objects with
    ``__array__`` or ``__array_namespace__``) through ``np.asarray``. A device array that
    cannot be copied to the host is a one-line :class:`InputError`.
    """
    if isinstance(a, (np.ndarray, np.generic)):
        return np.asarray(a)
    if hasattr(a, "__dlpack__"):
        return _from_dlpack(a, name)
    if hasattr(a, "to_numpy"):  # pandas and polars frames and series
        a = a.to_numpy()
    try:
        return np.asarray(a)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise InputError(f"{name} could not be read as an array: {' '.join(str(exc).split())}") from None


def device_array(backend, a):
    """``a`` as one of ``backend``'s device arrays without a copy, or ``None`` where it is not one.

    Only a backend whose arrays are not NumPy's (CuPy's) takes data here: its own arrays as they
    are, and other frameworks' arrays on a device (a PyTorch CUDA tensor) through its
    ``from_dlpack``, sharing their memory. Everything else comes through :func:`host_array`.
    """
    if backend.device_array_type is None:
        return None
    if backend.holds(a):
        return a
    from_dlpack = getattr(backend.xp, "from_dlpack", None)
    if from_dlpack is None or not hasattr(a, "__dlpack__") or _dlpack_device(a) in _DLPACK_HOST_DEVICES:
        return None
    try:
        arr = from_dlpack(_detached(a))
    except (BufferError, RuntimeError, TypeError, ValueError, NotImplementedError, AttributeError):
        return None  # another device or a dtype the backend lacks: the host path copies or says why
    return arr if backend.holds(arr) else None


def _detached(a):
    """PyTorch refuses to export a tensor that autograd tracks; ``detach()`` shares its memory."""
    if getattr(a, "requires_grad", False) and callable(getattr(a, "detach", None)):
        return a.detach()
    return a


def _dlpack_device(a) -> int:
    """The DLPack device type ``a`` says it lives on (the CPU's where it cannot say: from_dlpack decides)."""
    try:
        return int(a.__dlpack_device__()[0]) if hasattr(a, "__dlpack_device__") else 1
    except Exception:
        return 1


def _from_dlpack(a, name: str) -> np.ndarray:
    a = _detached(a)
    device = _dlpack_device(a)
    kind = f"{type(a).__module__.partition('.')[0]}.{type(a).__name__}"
    if device in _DLPACK_HOST_DEVICES:
        try:
            return np.from_dlpack(a)
        except (BufferError, RuntimeError, TypeError, ValueError) as exc:
            raise InputError(
                f"{name} ({kind}) could not be read as a NumPy array ({' '.join(str(exc).split()).rstrip('.')}); "
                "convert it to float32 or float64 first"
            ) from None
    try:
        # DLPack 1.0 (NumPy >= 2.1): the producer copies its array to the host, once.
        return np.from_dlpack(a, device="cpu", copy=True)
    except (BufferError, RuntimeError, TypeError, ValueError, NotImplementedError):
        pass
    try:
        if kind == "cupy.ndarray":  # CuPy refuses implicit copies (__array__); get() is its copy to the host
            return a.get()
        if hasattr(a, "__array__"):  # e.g. JAX copies its arrays to the host there
            return np.asarray(a)
    except (BufferError, RuntimeError, TypeError, ValueError):
        pass
    where = _DLPACK_DEVICE_NAMES.get(device, f"DLPack device type {device}")
    raise InputError(
        f"{name} ({kind}) is on a {where} device and could not be copied to the host; move it there first (e.g. tensor.cpu())"
    )


def _as_numeric(a, name: str) -> np.ndarray:
    if a is None:
        raise InputError(f"{name} is None; pass an array")
    arr = host_array(a, name)
    _refuse_non_numbers(arr, name)
    if arr.dtype.kind not in "biuf":
        try:
            arr = arr.astype(np.float64)
        except OverflowError:
            raise InputError(f"{name} holds integers beyond float64's range (about 1.8e308); scale them down first") from None
        except (ValueError, TypeError):
            raise InputError(
                f"{name} must be numeric, got values of dtype {arr.dtype} (e.g. {_example(arr)}); "
                "encode text or categories as numbers first"
            ) from None
    _check_not_empty(arr, name)
    return arr


def _example(arr: np.ndarray, limit: int = 60) -> str:
    """The first value of ``arr`` for an error message: on one line, and short."""
    text = " ".join(repr(arr.ravel()[:1].tolist()[0]).split()) if arr.size else "nothing"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_not_empty(arr, name: str) -> None:
    if arr.ndim == 0:
        raise InputError(f"{name} must be an array of samples, got a single value ({_example(arr)})")
    if arr.shape[0] == 0 or arr.size == 0:
        raise InputError(f"{name} is empty (shape {arr.shape}); pass at least one sample")


def _refuse_non_numbers(arr: np.ndarray, name: str) -> None:
    """Refuse what NumPy would convert to floats silently and wrongly: complex numbers (the
    imaginary part dropped), dates and durations, and text that happens to parse as numbers."""
    kind = arr.dtype.kind
    if kind == "O":  # judge an object array by the first element that is text or complex
        odd = next((v for v in arr.flat if isinstance(v, (str, bytes, complex, np.complexfloating))), None)
        kind = "O" if odd is None else "U" if isinstance(odd, (str, bytes)) else "c"
    if kind == "c":
        raise InputError(
            f"{name} holds complex numbers (dtype {arr.dtype}); complex data not supported: "
            "pass the real and imaginary parts as separate real features"
        )
    if kind in "mM":
        raise InputError(
            f"{name} holds dates or durations (dtype {arr.dtype}); convert them to numbers first, "
            "e.g. seconds since a reference date"
        )
    if kind in "US":
        raise InputError(
            f"{name} holds text (dtype {arr.dtype}) but must be numeric; convert it first, e.g. {name}.astype(float) "
            "for numeric strings, or encode categories as numbers"
        )


def check_float_range(arr: np.ndarray, dtype, name: str = "X") -> None:
    """Refuse values finite in ``arr``'s dtype that would become infinite in ``dtype`` (float32)."""
    dtype = np.dtype(dtype)
    if arr.dtype.kind != "f" or arr.dtype.itemsize <= dtype.itemsize or arr.size == 0:
        return
    _check_peak(max(abs(float(arr.max())), abs(float(arr.min()))), dtype, name)


def _check_peak(peak: float, dtype: np.dtype, name: str) -> None:
    """Refuse data whose largest magnitude ``peak`` is beyond ``dtype``'s range."""
    limit = float(np.finfo(dtype).max)
    if peak > limit:
        raise InputError(
            f"{name} holds values up to {peak:.3g} in magnitude, beyond {dtype.name}'s range (about {limit:.3g}); "
            f"scale the data down (e.g. standardise it) or build the model with dtype=\"float64\""
        )


def _check_finite(arr: np.ndarray, name: str) -> None:
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise _non_finite(int(np.size(arr) - np.count_nonzero(np.isfinite(arr))), name)


def _non_finite(bad: int, name: str) -> InputError:
    return InputError(f"{name} contains {bad} NaN or infinite value(s); clean or impute them first")


def _check_rows(arr, name: str) -> None:
    """One sample per row: a 1-D array is refused, saying how to reshape it."""
    if arr.ndim == 1:
        raise InputError(
            f"{name} must have one row per sample, got a 1-D array of shape {arr.shape}; "
            f"use {name}.reshape(-1, 1) for one feature or {name}.reshape(1, -1) for one sample"
        )


def _check_sample_shape(arr, sample_shape: tuple | None, name: str) -> None:
    if sample_shape is not None and tuple(arr.shape[1:]) != tuple(sample_shape):
        if len(sample_shape) == 1 and arr.ndim == 2:
            raise InputError(f"{name} has {arr.shape[1]} features, but the model expects {sample_shape[0]}")
        raise InputError(
            f"{name} has samples of shape {tuple(arr.shape[1:])}, but the model expects {tuple(sample_shape)}"
        )


def check_features(X, dtype: np.dtype, sample_shape: tuple | None = None, name: str = "X") -> np.ndarray:
    """Return ``X`` as a C-contiguous array of ``dtype``, checked for shape and finiteness.

    ``sample_shape`` is the per-sample shape the model expects, once it is known.
    """
    arr = _as_numeric(X, name)
    _check_rows(arr, name)
    _check_finite(arr, name)
    check_float_range(arr, dtype, name)
    _check_sample_shape(arr, sample_shape, name)
    return np.ascontiguousarray(arr, dtype=dtype)


def check_device_features(backend, arr, dtype: np.dtype, sample_shape: tuple | None = None, name: str = "X"):
    """:func:`check_features` for one of ``backend``'s device arrays (see :func:`device_array`), on the device.

    The same checks and messages, without copying ``arr`` to the host: finiteness and range come
    from one reduction (its minimum and maximum: two numbers back), and a C-contiguous array of
    ``dtype`` is ``arr`` itself.
    """
    _refuse_non_numbers(arr, name)
    if arr.dtype.kind not in "biuf":
        raise InputError(f"{name} must be numeric, got values of dtype {arr.dtype}; convert it to float32 or float64 first")
    _check_not_empty(arr, name)
    _check_rows(arr, name)
    if arr.dtype.kind == "f":
        xp = backend.xp
        low, high = (float(v) for v in backend.to_host(xp.stack([arr.min(), arr.max()])))
        if not (math.isfinite(low) and math.isfinite(high)):  # NaN or inf reach the extremes
            raise _non_finite(int(arr.size) - int(xp.count_nonzero(xp.isfinite(arr))), name)
        if arr.dtype.itemsize > np.dtype(dtype).itemsize:
            _check_peak(max(abs(low), abs(high)), np.dtype(dtype), name)
    _check_sample_shape(arr, sample_shape, name)
    return backend.xp.ascontiguousarray(arr, dtype=dtype)


def check_lengths(X: np.ndarray, y: np.ndarray, x_name="X", y_name="y") -> None:
    """X and y must hold the same number of samples."""
    if len(X) != len(y):
        raise InputError(f"{x_name} has {len(X)} samples but {y_name} has {len(y)}; they must match")


def check_classification_targets(y, n_outputs: int, loss: str, dtype: np.dtype, name: str = "y") -> np.ndarray:
    """Labels for a classifier, in the form its loss kernel takes.

    Cross-entropy: integer class indices (N,) in [0, n_outputs) -> int64, or probability rows
    (N, n_outputs) -> dtype. Binary cross-entropy: 0/1 labels (N,) or (N, n_outputs) -> dtype,
    shaped (N, n_outputs).
    """
    arr = _as_numeric(y, name)
    _check_finite(arr, name)
    if arr.ndim == 2 and arr.shape[1] == 1 and n_outputs != 1:
        arr = arr[:, 0]
    if arr.ndim == 1:
        if arr.dtype.kind == "f" and not np.all(arr == np.round(arr)):
            raise InputError(
                f"{name} holds non-integer values (e.g. {arr[arr != np.round(arr)][0]!r}), which look like a "
                "regression target; pass integer class labels, or build the model with regressor=True"
            )
        labels = arr.astype(np.int64)
        high = 2 if loss == "bce_with_logits" else n_outputs
        bad = (labels < 0) | (labels >= high)
        if bad.any():
            raise InputError(
                f"{name} has label {labels[bad][0]} outside the model's {high} classes (0..{high - 1}); "
                "check the output layer size or re-encode the labels"
            )
        if loss == "bce_with_logits":
            if n_outputs != 1:
                raise InputError(f"{name} is 1-D but the binary model has {n_outputs} outputs; pass (N, {n_outputs}) 0/1 labels")
            return np.ascontiguousarray(labels.reshape(-1, 1), dtype=dtype)
        return np.ascontiguousarray(labels)
    if arr.ndim == 2 and arr.shape[1] == n_outputs:
        if loss == "bce_with_logits":
            if ((arr < 0) | (arr > 1)).any():
                raise InputError(f"{name} for binary cross-entropy must be in [0, 1]")
        elif ((arr < 0).any()) or not np.allclose(arr.sum(1), 1, atol=1e-3):
            raise InputError(f"{name} rows must be one-hot or class probabilities summing to 1")
        return np.ascontiguousarray(arr, dtype=dtype)
    raise InputError(
        f"{name} has shape {arr.shape}; a classifier with {n_outputs} outputs expects labels of shape (N,) "
        f"or one-hot rows of shape (N, {n_outputs})"
    )


def check_regression_targets(y, n_outputs: int, dtype: np.dtype, name: str = "y") -> np.ndarray:
    """Targets for a regressor as (N, n_outputs) of ``dtype``."""
    raw = host_array(y, name)
    if raw.dtype.kind in "bOSU":
        raise InputError(
            f"{name} holds {'booleans' if raw.dtype.kind == 'b' else 'text'}, which look like class labels; "
            "a regressor needs numeric targets (or build a classifier: regressor=False)"
        )
    arr = _as_numeric(raw, name)
    _check_finite(arr, name)
    check_float_range(arr, dtype, name)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2 or arr.shape[1] != n_outputs:
        raise InputError(f"{name} has shape {arr.shape}; the regressor has {n_outputs} output(s)")
    return np.ascontiguousarray(arr, dtype=dtype)


def check_batch_size(batch_size) -> int:
    """A positive int."""
    return check_int("batch_size", batch_size, 1)


def check_epochs(epochs) -> int:
    """A non-negative int."""
    return check_int("epochs", epochs, 0)
