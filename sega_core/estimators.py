"""scikit-learn estimators backed by sega: :class:`SegaClassifier` and :class:`SegaRegressor`.

They follow scikit-learn's estimator contract (they pass ``check_estimator``), so they work in
``Pipeline``, ``cross_val_score`` and ``GridSearchCV``, which is the way to tune sega's
hyper-parameters::

    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sega_core.estimators import SegaClassifier

    pipe = make_pipeline(StandardScaler(), SegaClassifier(epochs=50, random_state=0))
    search = GridSearchCV(pipe, {"segaclassifier__hidden_layer_sizes": [(16,), (64,)]}, cv=3)
    search.fit(X, y)

This module needs scikit-learn (``pip install "sega-core[sklearn]"``); ``import sega_core`` does
not import it, so the core stays usable without the extra.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from numbers import Integral

import numpy as np

#: The oldest scikit-learn with ``validate_data``; the ``sklearn`` extra requires it.
SKLEARN_MIN = (1, 6)
try:
    import sklearn
except ImportError as exc:
    raise ImportError(
        'sega_core.estimators needs scikit-learn >= 1.6, which is not installed; install it with pip install "sega-core[sklearn]"'
    ) from exc
# An older scikit-learn would fail below on a missing name; say which version is there instead.
_SKLEARN_FOUND = tuple(int(part) for part in re.findall(r"\d+", sklearn.__version__)[:2])
if _SKLEARN_FOUND < SKLEARN_MIN:
    raise ImportError(
        f"sega_core.estimators needs scikit-learn >= 1.6, but found {sklearn.__version__}; "
        'upgrade it with pip install --upgrade "scikit-learn>=1.6"'
    )
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin  # noqa: E402
from sklearn.utils import check_random_state  # noqa: E402
from sklearn.utils.multiclass import check_classification_targets  # noqa: E402
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data  # noqa: E402

from .nn.model import NeuralNetwork
from .nn.optimizers import Optimizer
from .nn.validation import host_array

__all__ = ["SegaClassifier", "SegaRegressor"]

# Inputs are converted to float64 by scikit-learn's validation (ints, lists, object arrays of
# numbers...) and float32 is kept as is; the network then casts to its own ``dtype``.
_FLOAT_DTYPES = (np.float64, np.float32)


class _SegaEstimator(BaseEstimator):
    """Shared parameters, network construction, training and pickling.

    ``__init__`` only stores its arguments (scikit-learn's rule: ``clone`` and ``set_params``
    rely on it); every check happens in :meth:`fit`.
    """

    def __init__(
        self,
        hidden_layer_sizes=(32,),
        activation="relu",
        dropout_rate=0.0,
        reg_lambda=0.0,
        optimizer="adam",
        lr=None,
        epochs=200,
        batch_size=32,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        backend=None,
        dtype="float64",
        random_state=None,
        verbose=False,
        warm_start=False,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.dropout_rate = dropout_rate
        self.reg_lambda = reg_lambda
        self.optimizer = optimizer
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.backend = backend
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    # ---- fitting ----------------------------------------------------------------------------

    def _hidden_sizes(self) -> list[int]:
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, Integral) and not isinstance(sizes, bool):
            sizes = (sizes,)
        try:
            sizes = list(sizes)
        except TypeError:
            sizes = None
        if sizes is None or not all(isinstance(s, Integral) and not isinstance(s, bool) and s >= 1 for s in sizes):
            raise ValueError(
                f"hidden_layer_sizes must be a tuple of positive ints (e.g. (64, 32)), got {self.hidden_layer_sizes!r}"
            )
        return [int(s) for s in sizes]

    def _network(self, n_features: int, n_outputs: int, output_activation: str, regressor: bool) -> NeuralNetwork:
        """A fresh, untrained network for this estimator's parameters.

        The network itself learns the class labels (classifier) or the target scaling
        (regressor), as every sega model does, so ``model_`` saved and loaded on its own
        predicts the same labels and values as the estimator.
        """
        hidden = self._hidden_sizes()
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        return NeuralNetwork(
            layers=[n_features, *hidden, n_outputs],
            activations=[self.activation] * len(hidden) + [output_activation],
            dropout_rate=self.dropout_rate,
            reg_lambda=self.reg_lambda,
            regressor=regressor,
            standardize_target=regressor,
            backend=self.backend,
            dtype=self.dtype,
            seed=seed,
        )

    def _reusable(self, n_features: int, n_outputs: int) -> bool:
        """Whether ``fit`` continues the fitted network (``warm_start`` and the same shapes)."""
        model = getattr(self, "model_", None)
        return bool(self.warm_start) and model is not None and model.input_shape == (n_features,) \
            and model.n_outputs == n_outputs

    def _train_network(self, X: np.ndarray, y: np.ndarray, n_outputs: int, output_activation: str, regressor: bool,
                       *, sample_weight=None, epochs=None, continued: bool = False, early=None):
        """Train a fresh network (or, ``continued``, the fitted one with its optimizer state) on X, y
        and the checked ``sample_weight`` (see :func:`_sample_weight`)."""
        if continued:
            model = self.model_
        else:
            model = self._network(X.shape[1], n_outputs, output_activation, regressor)
        early = bool(self.early_stopping) if early is None else early
        if early and len(X) < 2:
            raise ValueError(
                "early_stopping holds out validation samples and needs at least 2 samples; got n_samples = 1"
            )
        optimizer = self.optimizer
        if isinstance(optimizer, Optimizer):
            # A fresh copy: fit must not change (or bind to a backend) one of its parameters.
            optimizer = optimizer.get_config()
        history = model.train(
            X,
            y,
            sample_weight=sample_weight,
            # A continued network keeps its optimizer's state (None); a new one starts from ours.
            optimizer=None if continued and model.optimizer is not None else optimizer,
            lr=self.lr,
            epochs=self.epochs if epochs is None else epochs,
            batch_size=self.batch_size,
            early_stopping_patience=self.n_iter_no_change if early else None,
            validation_split=self.validation_fraction if early else 0.0,
            # A progress bar per fit would flood GridSearchCV / cross_val_score output.
            verbose=1 if self.verbose else 0,
        )
        self.model_ = model
        self.history_ = {key: list(values) for key, values in history.items()}
        self.loss_curve_ = list(history.get("loss", []))
        self.n_iter_ = int(history.epochs)
        return self

    def _check_X(self, X, method: str):
        """``X`` validated for ``method`` and the array namespace its output goes back to (see :meth:`_namespace`)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=_float_dtypes(X))
        space = _namespace(X)
        if sklearn.get_config()["array_api_dispatch"]:
            here, fitted = None if space is None else _describe(*space), getattr(self, "_fit_namespace", None)
            if here != fitted:
                raise ValueError(
                    f"Inputs passed to {type(self).__name__}.{method}() must use the same namespace and the same device "
                    f"as those passed to fit(): fit had {fitted or 'numpy'}, {method} has {here or 'numpy'}; convert X "
                    "first, or fit again"
                )
        return X, space

    def _remember_namespace(self, X) -> None:
        """Record the namespace and device of the training ``X`` (``None``: NumPy's), which predictions must share."""
        space = _namespace(X)
        self._fit_namespace = None if space is None else _describe(*space)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # With scikit-learn's array-API dispatch on, X of any namespace (PyTorch, CuPy...) is read
        # in place where the backend's device holds it (once copied otherwise) and predictions come
        # back in X's namespace and on its device; fitted arrays stay NumPy's (classes_ only).
        tags.array_api_support = True
        return tags

    # ---- pickling ---------------------------------------------------------------------------

    def __getstate__(self):
        # The network holds its backend (modules, compiled kernels), which cannot be pickled:
        # store it as the bytes of a sega model file instead, which is backend-independent.
        # A copy: the base class may hand back the live ``__dict__``, which must keep its model.
        state = dict(super().__getstate__())
        model = state.pop("model_", None)
        if model is not None:
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "model.sega")
                model.save(path)
                with open(path, "rb") as fh:
                    state["_model_file_bytes"] = fh.read()
        return state

    def __setstate__(self, state):
        state = dict(state)
        blob = state.pop("_model_file_bytes", None)
        super().__setstate__(state)
        if blob is not None:
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "model.sega")
                with open(path, "wb") as fh:
                    fh.write(blob)
                self.model_ = NeuralNetwork.load(path, backend=self.backend)


def _sample_weight(sample_weight, X):
    """``sample_weight`` checked as scikit-learn checks it (one non-negative weight per sample, not
    all zero), as a float64 host array averaging 1; ``None`` stays ``None``.

    A batch's loss is the sum of its weighted losses over its size (Keras's rule); weights that
    average 1 make a whole-data batch's loss the weighted mean, so that a weight of 2 acts as the
    sample repeated and only the weights' ratios matter, whatever the optimizer.
    """
    if sample_weight is None:
        return None
    checked = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
    weight = host_array(checked, "sample_weight").astype(np.float64)
    top = weight.max(initial=0.0)
    if not top > 0:  # older scikit-learn lets all-zero weights through
        raise ValueError("Sample weights must contain at least one non-zero number.")
    weight = weight / top  # first: the sum of huge weights would overflow
    return weight * (len(weight) / weight.sum())


_FITTED = ("model_", "classes_", "n_outputs_", "n_features_in_", "feature_names_in_", "_fit_namespace", "history_",
           "loss_curve_", "n_iter_")


@contextlib.contextmanager
def _forgotten_if_refused(estimator, first: bool):
    """Around a first ``partial_fit``: if it fails, the estimator is left unfitted, not holding
    a network that never trained (which ``predict`` would use silently)."""
    try:
        yield
    except BaseException:
        if first:
            for name in _FITTED:
                estimator.__dict__.pop(name, None)
        raise


def _namespace(X):
    """``(xp, device)`` of ``X`` while scikit-learn's array-API dispatch is on and ``X`` is not a NumPy
    array, else ``None`` (results are NumPy's, as they always are without dispatch)."""
    if not sklearn.get_config()["array_api_dispatch"]:
        return None
    from sklearn.utils._array_api import get_namespace_and_device

    xp, _, device = get_namespace_and_device(X)
    return None if xp.__name__.split(".")[-1] == "numpy" or isinstance(X, np.ndarray) else (xp, device)


def _float_dtypes(X):
    """The float dtypes validation keeps (others become float64), in ``X``'s namespace under array-API dispatch."""
    if not sklearn.get_config()["array_api_dispatch"]:
        return _FLOAT_DTYPES
    from sklearn.utils._array_api import get_namespace

    xp, _ = get_namespace(X)
    return (xp.float64, xp.float32)


def _describe(xp, device) -> str:
    return f"{xp.__name__} on {device}"


def _give_back(result: np.ndarray, space):
    """``result`` in the namespace and on the device of the input (``space``); NumPy's without one.

    Labels that are not numbers (text classes) stay a NumPy array: no array-API namespace holds them.
    """
    if space is None or result.dtype.kind not in "biuf":
        return result
    xp, device = space
    return xp.asarray(result, device=device)


class SegaClassifier(ClassifierMixin, _SegaEstimator):
    """A multi-layer perceptron classifier trained by sega, with the scikit-learn API.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(32,)
        Units of each hidden Dense layer; ``()`` gives multinomial logistic regression.
    activation : str, default="relu"
        Hidden activation: ``relu``, ``leaky_relu``, ``tanh``, ``sigmoid`` or ``linear``.
    dropout_rate : float, default=0.0
        Dropout after each hidden layer, in [0, 1).
    reg_lambda : float, default=0.0
        L2 penalty ``0.5 * reg_lambda * sum(W**2)`` on the weights.
    optimizer : str, dict or Optimizer, default="adam"
        ``adam``, ``sgd`` or ``adadelta``, a config dict such as ``{"name": "sgd", "momentum": 0.9}``,
        or an optimizer object (each fit trains with a copy of it).
    lr : float or None, default=None
        Learning rate; None keeps the optimizer's own (a dict's or object's ``lr``, else its
        default: Adam 1e-3, SGD 0.01, Adadelta 1.0).
    epochs : int, default=200
        Passes over the training data (fewer with early stopping).
    batch_size : int, default=32
        Samples per optimizer step.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data and stop after ``n_iter_no_change`` epochs
        without improvement of its loss, keeping the best weights.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=10
    backend : str or None, default=None
        sega backend name (``numpy``, ``numba``, ``cupy``...); ``None`` uses the default.
    dtype : {"float64", "float32"}, default="float64"
        Precision of the weights and arithmetic. float64 is the default because scikit-learn's
        contract (and its checks) expects a sample's prediction not to depend, beyond ~1e-7,
        on which other samples are predicted with it; float32 matrix products differ in the
        last bits between batch shapes. Choose float32 for speed when that does not matter.
        The classifier's probabilities come back in this dtype; a regressor's predictions are
        float64, as scikit-learn requires of regressors.
    random_state : int, RandomState or None, default=None
        Seeds the initial weights, dropout and shuffling.
    verbose : bool, default=False
        Show a progress bar per epoch.
    warm_start : bool, default=False
        ``fit`` continues the fitted network (its weights and optimizer state) when the data's
        shape and classes match, instead of starting afresh. :meth:`partial_fit` always continues.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels seen in ``fit`` (any sortable type, strings included).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Present when ``X`` had string column names (a DataFrame).
    model_ : sega_core.NeuralNetwork
        The trained network; it knows ``classes_`` too, so saved on its own it predicts labels.
    history_ : dict of lists
        Per-epoch training records (``loss``, ``accuracy``, ``val_loss``...).
    loss_curve_ : list of float
    n_iter_ : int
        Epochs actually run.
    """

    def fit(self, X, y, sample_weight=None):
        """Train on ``X`` (n_samples, n_features) and labels ``y``; return ``self``.

        ``sample_weight`` (n_samples,) weighs each sample's loss; only the weights' ratios matter,
        and an integer weight acts as the sample repeated that many times.
        """
        X, y = validate_data(self, X, y, dtype=_float_dtypes(X))
        y = host_array(y, "y")  # labels are encoded on the host; X goes to the network as it is
        check_classification_targets(y)
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes to train; got 1 class ({classes[0]!r})"
            )
        weight = _sample_weight(sample_weight, X)
        if weight is not None and len(weighed := np.unique(y[weight > 0])) < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes with a sample_weight above 0; "
                             f"got 1 class ({weighed[0]!r})")
        continued = self._reusable(X.shape[1], len(classes))
        if self.warm_start and hasattr(self, "classes_") and not np.array_equal(classes, self.classes_):
            raise ValueError(
                f"warm_start continues a model trained on the classes {list(self.classes_)}; y holds {list(classes)}"
            )
        # Softmax over one output per class, binary problems included: predict_proba then
        # needs no special case, and predict is always the argmax of predict_proba.
        self._train_network(X, y, len(classes), "softmax", regressor=False, sample_weight=weight,
                            continued=continued)
        self.classes_ = self.model_.classes_
        self._remember_namespace(X)
        return self

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch over ``X, y``, continuing the network (and its optimizer) from earlier calls.

        The first call needs ``classes``, every label the model will ever see, since one batch
        may not hold them all. ``sample_weight`` as in :meth:`fit`. No early stopping.
        """
        first = not hasattr(self, "model_")
        with _forgotten_if_refused(self, first):
            X, y = validate_data(self, X, y, dtype=_float_dtypes(X), reset=first)
            y = host_array(y, "y")
            check_classification_targets(y)
            if first:
                self._remember_namespace(X)
                if classes is None:
                    raise ValueError("classes must be passed on the first call to partial_fit")
                classes = np.unique(classes)
                if len(classes) < 2:
                    raise ValueError(f"{type(self).__name__} needs at least 2 classes, got {list(classes)}")
                self.model_ = self._network(X.shape[1], len(classes), "softmax", regressor=False)
                self.model_.classes_ = self.classes_ = classes
            elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
                raise ValueError(
                    f"classes {list(np.unique(classes))} differ from those of the first partial_fit {list(self.classes_)}")
            return self._train_network(X, y, len(self.classes_), "softmax", regressor=False,
                                       sample_weight=_sample_weight(sample_weight, X),
                                       epochs=1, continued=True, early=False)

    def _proba(self, X, method: str):
        """Host probabilities of ``X`` and the namespace the result goes back to."""
        X, space = self._check_X(X, method)
        proba = np.asarray(self.model_.predict_proba(X), dtype=np.float64)
        # Renormalised in float64 so rows sum to 1 to double precision, not float32's.
        proba /= proba.sum(axis=1, keepdims=True)
        return proba.astype(self.model_.dtype, copy=False), space

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), columns in the order of ``classes_``."""
        return _give_back(*self._proba(X, "predict_proba"))

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`."""
        proba, space = self._proba(X, "predict_log_proba")
        with np.errstate(divide="ignore"):
            return _give_back(np.log(proba), space)

    def predict(self, X):
        """The most probable label of each sample (values from ``classes_``)."""
        proba, space = self._proba(X, "predict")  # first: it raises NotFittedError before classes_ is read
        return _give_back(self.classes_[np.argmax(proba, axis=1)], space)


class SegaRegressor(RegressorMixin, _SegaEstimator):
    """A multi-layer perceptron regressor trained by sega, with the scikit-learn API.

    Takes the same parameters as :class:`SegaClassifier`; the output layer is linear and the
    loss is mean squared error. Targets are standardised internally (mean 0, variance 1 per
    output) and predictions mapped back, so the default learning rate suits targets of any
    scale; ``loss_curve_`` is therefore in standardised units. ``y`` may have several columns
    (multi-output regression).

    Attributes
    ----------
    n_features_in_ : int
    n_outputs_ : int
    model_ : sega_core.NeuralNetwork
        The trained network (trained on standardised targets, predicting in the target's units).
    history_ : dict of lists
    loss_curve_ : list of float
    n_iter_ : int
    """

    def fit(self, X, y, sample_weight=None):
        """Train on ``X`` (n_samples, n_features) and numeric targets ``y`` (n_samples[, n_outputs]);
        ``sample_weight`` (n_samples,) weighs each sample's squared error and the target scaling,
        as in :meth:`SegaClassifier.fit`."""
        X, y = validate_data(self, X, y, dtype=_float_dtypes(X), y_numeric=True, multi_output=True)
        y2 = host_array(y, "y").astype(np.float64).reshape(len(y), -1)
        weight = _sample_weight(sample_weight, X)
        self._train_network(X, y2, y2.shape[1], "linear", regressor=True, sample_weight=weight,
                            continued=self._reusable(X.shape[1], y2.shape[1]))
        self.n_outputs_ = y2.shape[1]
        self._remember_namespace(X)
        return self

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``X, y``, continuing the network (and its optimizer) from earlier calls.

        The target scaling is fitted from the first call's targets. ``sample_weight`` as in
        :meth:`fit`. No early stopping.
        """
        first = not hasattr(self, "model_")
        with _forgotten_if_refused(self, first):
            X, y = validate_data(self, X, y, dtype=_float_dtypes(X), y_numeric=True, multi_output=True, reset=first)
            y2 = host_array(y, "y").astype(np.float64).reshape(len(y), -1)
            if first:
                self._remember_namespace(X)
                self.n_outputs_ = y2.shape[1]
                self.model_ = self._network(X.shape[1], self.n_outputs_, "linear", regressor=True)
            elif y2.shape[1] != self.n_outputs_:
                raise ValueError(f"y has {y2.shape[1]} outputs but the model was started with {self.n_outputs_}")
            return self._train_network(X, y2, self.n_outputs_, "linear", regressor=True,
                                       sample_weight=_sample_weight(sample_weight, X),
                                       epochs=1, continued=True, early=False)

    def predict(self, X):
        """Predicted targets: shape (n_samples,) for one output, else (n_samples, n_outputs)."""
        X, space = self._check_X(X, "predict")
        # float64 whatever the dtype: scikit-learn's contract for regressors' predictions.
        values = np.asarray(self.model_.predict(X), dtype=np.float64)
        return _give_back(values.reshape(len(values), -1)[:, 0] if self.n_outputs_ == 1 else values, space)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
