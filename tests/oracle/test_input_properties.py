"""Property test over the model API's inputs: any array either works or is an InputError.

For classifier and regressor models on the NumPy backend, ``train``, ``predict``,
``predict_proba`` and ``evaluate`` are given arrays of any dtype (bools, ints, float16/32/64,
long double, complex, text, numeric text, bytes, objects, dates and durations), any shape (0-d,
empty, 1-D, a wrong feature count, 3-D and 4-D) and any values (NaN, infinities, values beyond
float32's range, subnormals) as features and as targets. Each call must either

- work, and then give finite results of the documented shapes (labels the model was trained
  on, probability rows summing to 1, finite losses and weights), the same results as for the
  float64 array the user means; or
- raise :class:`sega_core.InputError`,

never another exception, and never a silent wrong answer: complex numbers with an imaginary
part, dates, durations and non-numeric text must be refused, and so must a float64 value that a
float32 model would turn into an infinity; numeric text may be refused, or converted with a
warning saying so. (Text labels of a classifier are labels, learned as its classes.)

The one other error allowed is :class:`~sega_core.errors.TrainingDivergedError` from ``train``
on data of huge magnitude (|value| > 1e6), where diverging is the honest outcome.
"""

from __future__ import annotations

import math
import numbers
import warnings
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import sega_core  # noqa: E402
from sega_core import RNN, Conv2D, Dense, Flatten, InputError, NeuralNetwork  # noqa: E402

try:
    from sega_core.errors import TrainingDivergedError
except ImportError:  # pragma: no cover
    TrainingDivergedError = FloatingPointError

N_FEATURES = 3
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,  # the same examples on every run (CI), none stored on disk
    database=None,
    # No shrinking: a failure is reported as found, so a broken build still runs in seconds.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)

# ---- the models --------------------------------------------------------------------------------

#: name -> (a function building fresh layers, other constructor arguments, per-sample input shape)
MODELS = {
    "multiclass": (lambda: [N_FEATURES, 4, 3], {}, (N_FEATURES,)),
    "binary": (lambda: [N_FEATURES, 4, 1], {}, (N_FEATURES,)),
    "multilabel": (lambda: [Dense(4, "relu"), Dense(2)], {"loss_function": "bce_with_logits", "input_shape": (N_FEATURES,)},
                   (N_FEATURES,)),
    "regressor": (lambda: [N_FEATURES, 4, 1], {"regressor": True}, (N_FEATURES,)),
    "regressor2": (lambda: [N_FEATURES, 4, 2], {"regressor": True}, (N_FEATURES,)),
    "unbuilt": (lambda: [Dense(4, "relu"), Dense(3)], {}, (N_FEATURES,)),  # built from the first training data
    # Sequences (N, T, F) and images (N, C, H, W): 3-D and 4-D inputs are the right ones here.
    "rnn_binary": (lambda: [RNN(3), Dense(1)], {"input_shape": (2, N_FEATURES)}, (2, N_FEATURES)),
    "cnn_regressor": (lambda: [Conv2D(2, 2), Flatten(), Dense(1)], {"regressor": True, "input_shape": (1, 3, 3)},
                      (1, 3, 3)),
}
DTYPES = ["float32", "float64"]


def sample_shape(name):
    return MODELS[name][2]


def make_model(name: str, dtype: str) -> NeuralNetwork:
    layers, kwargs, _ = MODELS[name]
    return NeuralNetwork(layers(), backend="numpy", dtype=dtype, seed=0, **kwargs)


def is_regressor(name):
    return "regressor" in name


def valid_targets(name: str, n: int, rng) -> np.ndarray:
    if name in ("multiclass", "unbuilt"):
        return np.arange(n) % 3
    if name in ("binary", "rnn_binary"):
        return np.arange(n) % 2
    if name == "multilabel":
        return rng.integers(0, 2, (n, 2))
    if name in ("regressor", "cnn_regressor"):
        return rng.normal(0, 1, n)
    return rng.normal(0, 1, (n, 2))


_TRAINED: dict = {}


def trained(name: str, dtype: str) -> NeuralNetwork:
    """A model trained once on valid data (predict and evaluate must not change it)."""
    key = (name, dtype)
    if key not in _TRAINED:
        rng = np.random.default_rng(0)
        model = make_model(name, dtype)
        model.train(rng.normal(0, 1, (8,) + sample_shape(name)), valid_targets(name, 8, rng), epochs=1, batch_size=4,
                    progress=False)
        _TRAINED[key] = model
    return _TRAINED[key]


# ---- arrays of any kind ------------------------------------------------------------------------

F32_MAX = float(np.finfo(np.float32).max)
SPECIAL = [0.0, -0.0, 1.0, -2.5, 5e-324, 1e-300, 1e-45, 65504.0, 1e6, 1e30, 3e38, 1e39, 1e300, -1e300,
           math.nan, math.inf, -math.inf]
REAL = st.one_of(st.floats(-10, 10, allow_nan=False), st.sampled_from(SPECIAL))
ORDINARY = st.floats(-10, 10, allow_nan=False)

KINDS = ["bool", "int8", "int64", "uint64", "float16", "float32", "float64", "longdouble", "complex64",
         "complex128", "text", "numeric_text", "bytes", "object_numbers", "object_mixed", "datetime64",
         "timedelta64", "nested_lists"]


NUMERIC_KINDS = ["bool", "int8", "int64", "uint64", "float16", "float32", "float64", "longdouble", "object_numbers"]


def _shapes(n_rows, sample):
    """The right shape ``(n,) + sample`` half of the time, else any other: 0-d, empty, 1-D, a
    wrong feature count, 2-D to 4-D. ``sample=None``: targets (1-D or 2-D, any width)."""
    n = st.integers(1, 6) if n_rows is None else st.just(n_rows)
    if sample is None:
        right = st.one_of(st.tuples(n), st.tuples(n, st.integers(1, 4)))
    else:
        right = st.tuples(n).map(lambda t: t + tuple(sample))
    f = st.integers(1, 4)
    odd = st.one_of(
        st.just(()),
        st.just((0,)),
        st.tuples(st.just(0), f),
        st.tuples(n),
        st.tuples(n, st.sampled_from([0, 1, 2, 4, 5])),
        st.tuples(n, f, st.integers(1, 3)),
        st.tuples(n, st.integers(1, 2), st.integers(1, 3), st.integers(1, 3)),
    )
    return st.one_of(right, odd)


def _elements(kind, clean=False):
    """Values for an array of ``kind``; ``clean``: ordinary ones only (no NaN, infinities, extremes)."""
    if clean and kind in ("float16", "float32", "float64", "longdouble", "numeric_text", "object_numbers"):
        return ORDINARY if kind != "numeric_text" else st.builds(repr, ORDINARY)
    if clean and kind in ("int64", "uint64"):
        return st.integers(0, 5)
    if kind == "bool":
        return st.booleans()
    if kind in ("int8",):
        return st.integers(-128, 127)
    if kind == "int64":
        return st.one_of(st.integers(-5, 5), st.integers(-(2**63), 2**63 - 1))
    if kind == "uint64":
        return st.one_of(st.integers(0, 5), st.integers(0, 2**64 - 1))
    if kind in ("float16", "float32", "float64", "longdouble"):
        return REAL
    if kind.startswith("complex"):
        return st.builds(complex, ORDINARY, st.one_of(st.just(0.0), ORDINARY))
    if kind == "text":
        return st.one_of(st.sampled_from(["a", "cat", "", "NA", "nan", "?"]), st.text(max_size=3))
    if kind == "numeric_text":
        return st.builds(repr, REAL)
    if kind == "bytes":
        return st.binary(max_size=3)
    if kind == "object_numbers":
        return st.one_of(ORDINARY, st.integers(-5, 5), st.builds(Fraction, st.integers(-9, 9), st.integers(1, 9)),
                         st.builds(lambda x: Decimal(repr(x)), ORDINARY), st.just(10**400), st.just(2**70),
                         st.sampled_from(SPECIAL))
    if kind == "object_mixed":
        return st.one_of(ORDINARY, st.none(), st.text(max_size=2), st.builds(complex, ORDINARY, ORDINARY),
                         st.just([1, 2]), st.just({}))
    if kind in ("datetime64", "timedelta64"):
        return st.integers(-(10**9), 10**9)
    raise ValueError(kind)


@st.composite
def any_array(draw, n_rows=None, sample=(N_FEATURES,)):
    """An array of any dtype and shape; ``n_rows``/``sample`` make the right shape likelier."""
    kind = draw(st.one_of(st.sampled_from(NUMERIC_KINDS), st.sampled_from(KINDS)))  # numbers half of the time
    shape = draw(_shapes(n_rows, sample))
    size = math.prod(shape)
    if kind == "nested_lists":  # ragged
        return [[1.0, 2.0], [3.0]] if draw(st.booleans()) else [[1.0, [2.0]], [3.0, 4.0]]
    clean = draw(st.sampled_from([True, True, False]))
    values = draw(st.lists(_elements(kind, clean=clean), min_size=size, max_size=size))
    if kind in ("datetime64", "timedelta64"):
        return np.array(values, dtype=f"{kind}[s]").reshape(shape)
    if kind in ("text", "numeric_text"):
        return np.array(values, dtype=str).reshape(shape)
    if kind == "bytes":
        return np.array(values, dtype=bytes).reshape(shape)
    if kind.startswith("object"):
        arr = np.empty(size, dtype=object)
        for i, v in enumerate(values):
            arr[i] = v
        return arr.reshape(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # float16 overflow: it becomes inf, which is fine here
        if kind in ("int64", "uint64"):
            return np.array(values, dtype=object).astype(kind).reshape(shape)
        return np.array(values, dtype=kind).reshape(shape)


# ---- what the user means ---------------------------------------------------------------------


def meant(a):
    """The float64 array a user means by ``a``, or None where there is none: text, dates,
    durations, complex numbers with an imaginary part, ragged lists, None, values beyond float64."""
    try:
        arr = np.asarray(a)
    except (ValueError, TypeError):
        return None
    kind = arr.dtype.kind
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind in "biuf":
            out = arr.astype(np.float64)
            return None if (np.isinf(out) & ~np.isinf(arr)).any() else out
        if kind == "c":
            return arr.real.astype(np.float64) if not np.any(arr.imag) else None
        if kind == "O":
            flat = []
            for v in arr.flat:
                if not isinstance(v, numbers.Real) and not isinstance(v, Decimal):
                    return None
                try:
                    flat.append(float(v))
                except (OverflowError, ValueError, TypeError):
                    return None
            return np.array(flat, dtype=np.float64).reshape(arr.shape)
        if kind == "U":  # numeric text: its numbers, but only with a message (see converted_text)
            try:
                return arr.astype(np.float64)
            except (ValueError, OverflowError):
                return None
    return None  # other text, bytes, dates, durations


def is_text(a) -> bool:
    """Text arrays: numeric text may be converted, but only with a warning saying so."""
    try:
        return np.asarray(a).dtype.kind in "US"
    except (ValueError, TypeError):
        return False


def must_refuse_values(values, dtype) -> bool:
    """Whether meant values can only be refused: NaN/inf, or beyond a float32 model's range."""
    if values is None or values.size == 0:
        return True
    if not np.isfinite(values).all():
        return True
    return dtype == "float32" and float(np.abs(values).max()) > F32_MAX


def x_shape_ok(model_name, shape, built=True) -> bool:
    if len(shape) < 2 or shape[0] == 0:
        return False
    if model_name == "unbuilt" and not built:
        return len(shape) == 2 and shape[1] > 0
    return tuple(shape[1:]) == sample_shape(model_name)


def n_rows(a) -> int:
    try:
        arr = np.asarray(a)
    except (ValueError, TypeError):
        return 2
    return arr.shape[0] if arr.ndim else 1


def huge(*arrays) -> bool:
    for a in arrays:
        v = meant(a)
        if v is None or (v.size and not np.isfinite(v).all()) or (v.size and float(np.abs(v).max()) > 1e6):
            return True
    return False


def outcome(fn, allow_divergence=False, text=False):
    """``("ok", result)`` or ``("refused", error)``; any other exception propagates (a failure).

    ``text``: the input is text; accepting it is right only with a warning that it was
    converted (the "clear message"), so ``ok`` without one fails here.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = fn()
        except InputError as exc:
            return "refused", exc
        except TrainingDivergedError as exc:
            if allow_divergence:
                return "diverged", exc
            raise
    assert not text or any(issubclass(w.category, UserWarning) for w in caught), (
        "numeric text was converted to numbers without a warning saying so")
    return "ok", result


def describe(a) -> str:
    try:
        arr = np.asarray(a)
        return f"{arr.dtype} array of shape {arr.shape}: {np.array2string(arr.ravel()[:6], threshold=6)}"
    except Exception:  # noqa: BLE001
        return repr(a)[:80]


# ---- checks on what works ----------------------------------------------------------------------


def check_predictions(model, name, X, labels_seen):
    """Results of predict/predict_proba on features the model accepted: finite, documented shapes."""
    pred = model.predict(X)
    n = n_rows(X)
    if is_regressor(name):
        want = (n,) if model.n_outputs == 1 else (n, model.n_outputs)
        assert pred.shape == want, f"predict shape {pred.shape}, expected {want}"
        assert np.isfinite(pred.astype(np.float64)).all(), f"predict gave non-finite values {pred} for {describe(X)}"
        return pred
    proba = model.predict_proba(X)
    n_cols = 2 if model.n_outputs == 1 else model.n_outputs
    assert proba.shape == (n, n_cols), f"predict_proba shape {proba.shape}, expected {(n, n_cols)}"
    assert np.isfinite(proba).all(), f"predict_proba gave non-finite values {proba} for {describe(X)}"
    assert ((proba >= 0) & (proba <= 1)).all()
    if name == "multilabel":
        assert pred.shape == (n, 2) and set(np.unique(pred)) <= {0, 1}, f"multi-label predict gave {pred}"
    else:
        assert pred.shape == (n,), f"predict shape {pred.shape}, expected {(n,)}"
        np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)
        bad = [p for p in pred.tolist() if p not in labels_seen]
        assert not bad, f"predict gave {bad[:3]}, not among the labels {sorted(labels_seen, key=repr)[:5]}"
    return pred


def labels_of(model, y) -> set:
    """The labels a classifier trained on ``y`` may predict: its classes, which are class
    indices 0..n-1, or labels taken from ``y``."""
    n_classes = 2 if model.n_outputs == 1 else model.n_outputs
    classes = getattr(model, "classes_", None)
    if classes is None or np.array_equal(classes, np.arange(len(classes))):
        return set(range(n_classes))
    seen = set(np.asarray(y).ravel().tolist())
    strays = [c for c in classes.tolist() if c not in seen]
    assert not strays, f"the model's classes {strays} are not among the training labels"
    assert len(classes) == n_classes
    return set(classes.tolist())


def weights_of(model):
    return [w.copy() for w in model.get_weights()]


# ---- the properties, as checks on one input ----------------------------------------------------


def divergence_allowed(a, dtype) -> bool:
    """Training may diverge (TrainingDivergedError) on values of huge magnitude that the model's
    dtype still holds; values it cannot hold must be refused instead."""
    v = meant(a)
    return v is not None and huge(a) and not must_refuse_values(v, dtype)


def check_train_features(name, dtype, X):
    """``train(X, valid y)`` works (as on the float64 array meant) or is an InputError."""
    rng = np.random.default_rng(1)
    n = n_rows(X)
    y = valid_targets(name, max(n, 1), rng)
    model = make_model(name, dtype)
    status, result = outcome(lambda: model.train(X, y, epochs=1, batch_size=2, progress=False),
                             allow_divergence=divergence_allowed(X, dtype), text=is_text(X))
    values = meant(X)
    shape_ok = values is not None and x_shape_ok(name, values.shape, built=False) and n >= 1
    if status != "ok":
        assert not (shape_ok and not must_refuse_values(values, dtype) and np.asarray(X).dtype.kind in "biuf"
                    and not huge(X)), f"valid features refused: {describe(X)}: {result}"
        return
    assert values is not None, f"train accepted {describe(X)}, which holds no numbers a user could mean"
    assert shape_ok, f"train accepted features of shape {values.shape}"
    assert not must_refuse_values(values, dtype), f"train accepted {describe(X)} in a {dtype} model"
    assert all(math.isfinite(v) for v in result["loss"]), f"history loss {result['loss']}"
    assert all(np.isfinite(w).all() for w in model.get_weights())
    # Exactly what training on the float64 array meant gives.
    reference = make_model(name, dtype)
    reference.train(values, y, epochs=1, batch_size=2, progress=False)
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b, err_msg=f"training on {describe(X)} differs from training on its values")


def check_train_targets(name, dtype, y):
    """``train(valid X, y)`` works (finite, predicting only its classes) or is an InputError."""
    X = np.random.default_rng(2).normal(0, 1, (6,) + sample_shape(name))
    model = make_model(name, dtype)
    status, result = outcome(lambda: model.train(X, y, epochs=1, batch_size=4, progress=False),
                             allow_divergence=divergence_allowed(y, dtype), text=is_regressor(name) and is_text(y))
    arr = None if isinstance(y, list) else np.asarray(y)
    if status != "ok":
        if arr is not None and arr.dtype.kind in "iuf" and arr.shape == np.shape(valid_targets(name, 6, np.random.default_rng(0))):
            v = arr.astype(np.float64)
            if is_regressor(name) and np.isfinite(v).all() and np.abs(v).max() <= 1e6:
                raise AssertionError(f"valid regression targets refused: {describe(y)}: {result}")
        return
    assert arr is not None, f"train accepted ragged targets {y!r}"
    kind = arr.dtype.kind
    assert kind not in "cmM", f"train accepted targets {describe(y)} (complex numbers, dates or durations)"
    assert all(math.isfinite(v) for v in result["loss"]), f"history loss {result['loss']} for targets {describe(y)}"
    assert all(np.isfinite(w).all() for w in model.get_weights())
    if is_regressor(name):
        values = meant(y)
        assert values is not None, f"a regressor accepted targets {describe(y)}, which hold no numbers"
        assert not must_refuse_values(values, dtype), f"a {dtype} regressor accepted targets {describe(y)}"
        reference = make_model(name, dtype)
        reference.train(X, values, epochs=1, batch_size=4, progress=False)
        for a, b in zip(model.get_weights(), reference.get_weights()):
            np.testing.assert_array_equal(a, b, err_msg=f"training on targets {describe(y)} differs from their values")
        check_predictions(model, name, X, None)
    else:
        check_predictions(model, name, X, labels_of(model, y))


def check_predict(name, dtype, X):
    """``predict``/``predict_proba`` on a trained model: finite, documented shapes, the same as on
    the float64 array meant, or an InputError; the model is left unchanged."""
    model = trained(name, dtype)
    before = weights_of(model)
    labels = labels_of(model, valid_targets(name, 8, np.random.default_rng(0)))
    status, result = outcome(lambda: check_predictions(model, name, X, labels), text=is_text(X))
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b, err_msg="predict changed the weights")
    values = meant(X)
    if status != "ok":
        ok = values is not None and x_shape_ok(name, values.shape) and not must_refuse_values(values, dtype)
        assert not (ok and np.asarray(X).dtype.kind in "biuf" and float(np.abs(values).max()) <= 1e6), (
            f"valid features refused: {describe(X)}: {result}")
        return
    assert values is not None, f"predict accepted {describe(X)}, which holds no numbers a user could mean"
    assert x_shape_ok(name, values.shape), f"predict accepted features of shape {values.shape}"
    assert not must_refuse_values(values, dtype), f"predict accepted {describe(X)} in a {dtype} model"
    np.testing.assert_array_equal(result, model.predict(values),
                                  err_msg=f"predict on {describe(X)} differs from predict on its values")


def check_evaluate(name, dtype, X, y):
    """``evaluate(X, y)`` gives finite scores (the loss with L2; accuracy in [0, 1]) or an InputError."""
    model = trained(name, dtype)
    before = weights_of(model)
    status, result = outcome(lambda: model.evaluate(X, y), text=is_text(X) or (is_regressor(name) and is_text(y)))
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b, err_msg="evaluate changed the weights")
    if status != "ok":
        return
    values = meant(X)
    assert values is not None and not must_refuse_values(values, dtype), f"evaluate accepted features {describe(X)}"
    assert not isinstance(y, list) and np.asarray(y).dtype.kind not in "cmM", f"evaluate accepted targets {describe(y)}"
    if is_regressor(name):
        target = meant(y)
        assert target is not None and not must_refuse_values(target, dtype), (
            f"a {dtype} regressor's evaluate accepted targets {describe(y)}")
    bad = {k: v for k, v in result.items() if not (isinstance(v, float) and math.isfinite(v))}
    assert not bad, f"evaluate gave non-finite scores {bad} for X {describe(X)}, y {describe(y)}"
    if not is_regressor(name):
        assert 0 <= result["accuracy"] <= 1


# ---- random inputs (hypothesis) ----------------------------------------------------------------


def model_and(strategy_for):
    """A model name with a strategy drawn for that model (e.g. features of its sample shape)."""
    return st.sampled_from(list(MODELS)).flatmap(lambda name: st.tuples(st.just(name), strategy_for(name)))


@SETTINGS
@given(case=model_and(lambda name: any_array(n_rows=5, sample=sample_shape(name))), dtype=st.sampled_from(DTYPES))
def test_train_with_any_features(case, dtype):
    check_train_features(case[0], dtype, case[1])


@SETTINGS
@given(name=st.sampled_from(list(MODELS)), dtype=st.sampled_from(DTYPES), y=any_array(n_rows=6, sample=None))
def test_train_with_any_targets(name, dtype, y):
    check_train_targets(name, dtype, y)


@SETTINGS
@given(case=model_and(lambda name: any_array(sample=sample_shape(name))), dtype=st.sampled_from(DTYPES))
def test_predict_with_any_features(case, dtype):
    check_predict(case[0], dtype, case[1])


@SETTINGS
@given(case=model_and(lambda name: any_array(n_rows=4, sample=sample_shape(name))), dtype=st.sampled_from(DTYPES),
       y=any_array(n_rows=4, sample=None), valid_y=st.booleans())
def test_evaluate_with_any_features_and_targets(case, dtype, y, valid_y):
    name, X = case
    if valid_y:
        y = valid_targets(name, 4, np.random.default_rng(3))
    check_evaluate(name, dtype, X, y)


# ---- chosen inputs: each failure the random search found, and the edges it must keep covering ----

_X = np.random.default_rng(4).normal(0, 1, (4, N_FEATURES))


def _obj(*rows):
    arr = np.empty((len(rows), len(rows[0])), dtype=object)
    for i, row in enumerate(rows):
        for j, v in enumerate(row):
            arr[i, j] = v
    return arr


KNOWN = {
    # features
    "predict_object_int_beyond_float64": ("predict", "multiclass", "float32", _obj([0.0, 10**400, 0.0]), None),
    "train_object_int_beyond_float64": ("train_X", "regressor", "float64", _obj([0.0, 10**400, 0.0], [1, 2, 3]), None),
    "predict_float32_max_overflows_inside": ("predict", "multiclass", "float32", np.array([[0, 0, 3e38]], np.float32), None),
    "predict_float64_beyond_float32": ("predict", "multiclass", "float32", np.array([[0, 0, 1e300]]), None),
    "predict_complex_zero_imaginary": ("predict", "binary", "float64", _X.astype(complex), None),
    "predict_complex": ("predict", "binary", "float64", _X + 1j, None),
    "predict_numeric_text": ("predict", "regressor", "float64", _X.astype(str), None),
    "predict_datetime": ("predict", "multiclass", "float64", np.zeros((2, 3), "datetime64[s]"), None),
    "predict_object_fractions": ("predict", "multiclass", "float64", _obj([Fraction(1, 3), Decimal("0.5"), 2]), None),
    "predict_object_none": ("predict", "multiclass", "float64", _obj([None, 1.0, 2.0]), None),
    "predict_bool": ("predict", "binary", "float32", _X > 0, None),
    "predict_uint64_max": ("predict", "regressor", "float32", np.full((1, 3), 2**64 - 1, np.uint64), None),
    "predict_float16_inf": ("predict", "binary", "float32", np.array([[np.inf, 0, 0]], np.float16), None),
    "predict_longdouble_beyond_float64": ("predict", "regressor", "float64",
                                          np.array([[1, 2, 3]], np.longdouble) * np.longdouble(1e300) ** 2, None),
    "predict_0d": ("predict", "multiclass", "float32", np.array(1.0), None),
    "predict_empty_rows": ("predict", "multiclass", "float32", np.zeros((0, 3)), None),
    "predict_1d": ("predict", "multiclass", "float32", np.zeros(3), None),
    "predict_wrong_feature_count": ("predict", "multiclass", "float32", np.zeros((2, 4)), None),
    "predict_4d": ("predict", "multiclass", "float32", np.zeros((2, 1, 3, 1)), None),
    "train_unbuilt_3d": ("train_X", "unbuilt", "float32", np.zeros((5, 3, 2)), None),
    "train_unbuilt_no_features": ("train_X", "unbuilt", "float32", np.zeros((5, 0)), None),
    "predict_rnn_2d": ("predict", "rnn_binary", "float32", np.zeros((2, 6)), None),
    "predict_rnn_sequences": ("predict", "rnn_binary", "float64", np.ones((2, 2, 3)), None),
    "predict_cnn_3d": ("predict", "cnn_regressor", "float32", np.zeros((2, 3, 3)), None),
    "train_cnn_images_float16": ("train_X", "cnn_regressor", "float32", np.ones((5, 1, 3, 3), np.float16), None),
    # targets
    "train_regressor_ragged_targets": ("train_y", "regressor", "float32", None, [[1.0, [2.0]], [3.0, 4.0]]),
    "train_regressor_float64_beyond_float32": ("train_y", "regressor", "float32", None, np.full(6, 1e300)),
    "evaluate_regressor_float64_beyond_float32": ("evaluate", "regressor", "float32", _X, np.full(4, 1e300)),
    "train_regressor_complex_targets": ("train_y", "regressor", "float64", None, np.arange(6) + 1j),
    "train_regressor_text_targets": ("train_y", "regressor", "float64", None, np.array(["1.5"] * 6)),
    "train_classifier_object_int_beyond_float64": ("train_y", "multiclass", "float32", None,
                                                   np.full((6, 1, 1), 10**400, dtype=object)),
    "train_classifier_huge_int_labels": ("train_y", "binary", "float32", None, np.array([10**400, 0] * 3, dtype=object)),
    "train_classifier_text_labels": ("train_y", "multiclass", "float32", None, np.array(["a", "b", "c"] * 2)),
    "train_classifier_nan_label": ("train_y", "binary", "float32", None, np.array([0, 1, np.nan, 0, 1, 0])),
    "train_classifier_datetime_labels": ("train_y", "binary", "float64", None, (np.arange(6) % 2).astype("datetime64[s]")),
    "train_classifier_complex_labels": ("train_y", "binary", "float64", None, np.array([0, 1, 0, 1, 0, 1]) + 1j),
    "evaluate_unseen_label": ("evaluate", "multiclass", "float32", _X, np.array([0, 1, 2, 7])),
    "evaluate_ragged_targets": ("evaluate", "multiclass", "float32", _X, [[0], [1, 2], [0], [1]]),
}


@pytest.mark.parametrize("case", list(KNOWN), ids=list(KNOWN))
def test_known_inputs(case):
    op, name, dtype, X, y = KNOWN[case]
    if op == "predict":
        check_predict(name, dtype, X)
    elif op == "train_X":
        check_train_features(name, dtype, X)
    elif op == "train_y":
        check_train_targets(name, dtype, y)
    else:
        check_evaluate(name, dtype, X, y)
