"""The model: a stack of layers trained on one backend through its kernel table."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..backends import get_backend
from ..errors import InputError, NotFittedError
from . import metrics as M
from .activations import activation_kernels, canonical_activation
from .layers import Dense, Dropout, Flatten, Layer
from .layers.base import ActivatedLayer
from .losses import FUSED_ACTIVATION, Loss, make_loss
from .parameters import ParameterBuffer
from .training import History, fit_loop
from .validation import (
    canonical_dtype,
    check_classification_targets,
    check_features,
    check_lengths,
    check_regression_targets,
)

#: Most samples per forward pass at inference (keeps matrix products large).
PREDICT_CHUNK = 4096

#: Bytes of intermediate values one inference chunk may need: a convolution's im2col matrix is
#: K*K times its input, so chunks are sized by work, not by a fixed sample count.
PREDICT_CHUNK_BYTES = 64 << 20


class NeuralNetwork:
    """A feed-forward network of Dense, Conv2D, RNN, Flatten and Dropout layers.

    Build it from sizes, ``NeuralNetwork(layers=[64, 32, 10])`` (the first size is the number of
    input features; hidden layers use ReLU), or from layer objects,
    ``NeuralNetwork(layers=[Conv2D(8, 3, padding=1), Flatten(), Dense(10)])`` (the input shape is
    taken from the first training data, or from ``input_shape``).

    Defaults follow the task: several outputs -> softmax + cross-entropy; one output -> sigmoid +
    binary cross-entropy on logits; ``regressor=True`` -> linear output + mean squared error. The
    classification losses are fused with their output activation, which is applied exactly once.

    ``reg_lambda`` adds ``0.5 * reg_lambda * sum(W**2)`` over every weight (not biases) to the
    loss and ``reg_lambda * W`` to its gradient. ``dtype`` is float32 unless float64 is asked for.
    ``seed`` fixes the initial weights (identical on every backend), dropout and shuffling.
    """

    def __init__(
        self,
        layers: Sequence,
        dropout_rate: float = 0.0,
        reg_lambda: float = 0.0,
        activations: Sequence[str] | None = None,
        loss_function=None,
        regressor: bool = False,
        backend=None,
        dtype="float32",
        seed: int | None = None,
        input_shape: Sequence[int] | None = None,
    ) -> None:
        self.backend = get_backend(backend)
        self.dtype = canonical_dtype(dtype)
        self.regressor = bool(regressor)
        self.reg_lambda = _non_negative("reg_lambda", reg_lambda)
        self.dropout_rate = float(dropout_rate)
        if not 0 <= self.dropout_rate < 1:
            raise InputError(f"dropout_rate must be in [0, 1), got {dropout_rate!r}")
        self.seed = int(np.random.SeedSequence().entropy % (2**31)) if seed is None else int(seed)
        self._loss_spec = loss_function
        self.layers, sizes_input = self._make_layers(layers, activations)
        self.history: History | None = None
        self.optimizer = None
        self._built = False
        shape = input_shape if input_shape is not None else sizes_input
        if shape is not None:
            self._build(tuple(int(s) for s in shape))

    # ---- construction -----------------------------------------------------------------------

    def _make_layers(self, layers, activations):
        if isinstance(layers, (Layer, int)) or not isinstance(layers, Sequence) or len(layers) == 0:
            raise InputError("layers must be a non-empty list of sizes ([64, 32, 10]) or of layer objects")
        if all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in layers):
            return self._layers_from_sizes([int(s) for s in layers], activations), (int(layers[0]),)
        if not all(isinstance(layer, Layer) for layer in layers):
            raise InputError("layers must be all sizes (ints) or all layer objects (Dense, Conv2D, RNN, Flatten, Dropout)")
        if activations is not None:
            raise InputError("activations= applies to size lists; give layer objects their own activation")
        built = list(layers)
        if self.dropout_rate > 0:
            raise InputError("dropout_rate= applies to size lists; add Dropout(rate) layers to a layer list")
        return built, None

    def _layers_from_sizes(self, sizes, activations):
        if len(sizes) < 2 or any(s < 1 for s in sizes):
            raise InputError(f"layer sizes must be >= 1 and at least two of them (input, output), got {sizes}")
        n_dense = len(sizes) - 1
        if activations is None:
            activations = ["relu"] * (n_dense - 1) + [self._default_output_activation(sizes[-1])]
        elif isinstance(activations, str) or len(activations) != n_dense:
            raise InputError(
                f"activations must list one name per layer after the input ({n_dense} for sizes {sizes}), got {activations!r}"
            )
        built: list[Layer] = []
        for i, (units, act) in enumerate(zip(sizes[1:], activations)):
            built.append(Dense(units, activation=act))
            if self.dropout_rate > 0 and i < n_dense - 1:
                built.append(Dropout(self.dropout_rate))
        return built

    def _default_output_activation(self, n_out: int) -> str:
        if self.regressor:
            return "linear"
        if self._loss_spec is not None:
            fused = FUSED_ACTIVATION.get(make_loss(self._loss_spec).name)
            if fused:
                return fused
        return "sigmoid" if n_out == 1 else "softmax"

    def _build(self, input_shape: tuple[int, ...]) -> None:
        shape = input_shape
        for layer in self.layers:
            shape = layer.build(shape)
        if len(shape) != 1:
            raise InputError(
                f"the last layer outputs samples of shape {shape}; end the model with a Dense layer "
                "(after Flatten, or an RNN without return_sequences)"
            )
        self.input_shape = input_shape
        self.n_outputs = shape[0]
        self.loss = self._choose_loss()
        last = self._output_layer()
        last_act = last.activation if isinstance(last, ActivatedLayer) else "linear"
        self._head = FUSED_ACTIVATION.get(self.loss.name)
        if isinstance(last, ActivatedLayer):
            # The loss kernel applies the head activation itself: skip it in the layer.
            last.logits_only = last_act == self._head
        self.params = ParameterBuffer(self.layers, self.backend, self.dtype, self.seed)
        head = activation_kernels(self.backend.kernels, self._head) if self._head else None
        self._head_forward = head[0] if head else None
        self._loss_kernel = self.loss.kernel(self.backend.kernels)
        self._built = True

    def _output_layer(self) -> Layer:
        """The layer whose activation is the model's output activation.

        Trailing Dropout layers (and Flatten layers that receive flat samples) leave the
        activation's meaning unchanged, so the head fused with the loss is the one before them.
        """
        for layer in reversed(self.layers):
            if isinstance(layer, Dropout) or isinstance(layer, Flatten) and len(layer.input_shape) == 1:
                continue
            return layer
        return self.layers[-1]

    def _choose_loss(self) -> Loss:
        n = self.n_outputs
        if self._loss_spec is not None:
            loss = make_loss(self._loss_spec)
        elif self.regressor:
            loss = make_loss("mse")
        else:
            loss = make_loss("bce_with_logits" if n == 1 else "cross_entropy")
        if self.regressor and loss.is_classification:
            raise InputError(f"loss {loss.name!r} is for classification; a regressor needs mse, mae or huber")
        if not self.regressor and not loss.is_classification:
            raise InputError(
                f"loss {loss.name!r} is for regression; build the model with regressor=True, "
                "or use cross_entropy / bce_with_logits"
            )
        if loss.name == "cross_entropy" and n < 2:
            raise InputError("cross_entropy needs at least 2 outputs; use one output with bce_with_logits for binary tasks")
        return loss

    # ---- data -------------------------------------------------------------------------------

    def _features(self, X, name="X") -> np.ndarray:
        if not self._built:
            arr = check_features(X, self.dtype, name=name)
            self._build(tuple(arr.shape[1:]))
            return arr
        return check_features(X, self.dtype, self.input_shape, name=name)

    def _targets(self, y, name="y") -> np.ndarray:
        if self.regressor:
            return check_regression_targets(y, self.n_outputs, self.dtype, name)
        return check_classification_targets(y, self.n_outputs, self.loss.name, self.dtype, name)

    # ---- forward / backward -----------------------------------------------------------------

    def _forward(self, x, training: bool):
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    def _backward(self, grad) -> None:
        layers = self.layers
        for i in range(len(layers) - 1, -1, -1):
            grad = layers[i].backward(grad, i > 0)

    def _outputs(self, X: np.ndarray):
        """Head-applied outputs (probabilities or values) as a device array, in chunks."""
        to_device, xp = self.backend.to_device, self.backend.xp
        parts = []
        chunk = self._chunk_size()
        for start in range(0, len(X), chunk):
            out = self._forward(to_device(X[start : start + chunk]), False)
            parts.append(self._head_forward(out) if self._head_forward is not None else out)
        return parts[0] if len(parts) == 1 else xp.concatenate(parts)

    def _chunk_size(self) -> int:
        """Samples per inference pass so the largest per-layer intermediate stays bounded."""
        per_sample = max(math.prod(self.input_shape), 1)
        for layer in self.layers:
            size = math.prod(layer.output_shape)
            if hasattr(layer, "kernel_size"):  # im2col rows: one per output pixel, C*K*K wide
                size = math.prod(layer.output_shape[1:]) * layer.input_shape[0] * layer.kernel_size**2
            per_sample = max(per_sample, size)
        return int(min(PREDICT_CHUNK, max(1, PREDICT_CHUNK_BYTES // (per_sample * self.dtype.itemsize))))

    def _penalty(self) -> float:
        return self.params.l2_penalty(self.reg_lambda)

    def _loss_and_grad(self, X, y):
        """Mean loss (with L2) and a host copy of the flat gradient, in eval mode (tests)."""
        Xh, yh = self._features(X), self._targets(y)
        out = self._forward(self.backend.to_device(Xh), False)
        loss, g = self._loss_kernel(out, self.backend.to_device(yh))
        self._backward(g)
        self.params.add_l2_gradient(self.reg_lambda)
        return float(loss) + self._penalty(), self.backend.to_host(self.params.grad).copy()

    # ---- public API -------------------------------------------------------------------------

    def train(
        self,
        X,
        y,
        X_val=None,
        y_val=None,
        optimizer="adam",
        lr: float | None = None,
        epochs: int = 100,
        batch_size: int = 32,
        lr_scheduler=None,
        early_stopping_patience: int | None = None,
        early_stopping_min_delta: float = 0.0,
        shuffle: bool = True,
        progress: bool | None = None,
        validation_split: float = 0.0,
        track_metrics: bool = True,
    ) -> History:
        """Train with one optimizer step per mini-batch; return the per-epoch history.

        ``optimizer`` is ``"adam"``, ``"sgd"``, ``"adadelta"`` or an optimizer object; ``lr``
        overrides its learning rate. ``lr_scheduler`` is ``"step"``, ``"exponential"``,
        ``"plateau"`` or a scheduler object, stepped after each epoch. With validation data
        (``X_val``/``y_val`` or ``validation_split``) the history also holds ``val_loss`` and
        the validation metric; ``early_stopping_patience`` stops after that many epochs without
        improvement of the monitored loss and restores the best weights. ``progress`` shows a
        progress bar (default: only when stderr is a terminal).
        """
        Xh = self._features(X)
        yh = self._targets(y)
        check_lengths(Xh, yh)
        if X_val is None and validation_split:
            if not 0 < validation_split < 1:
                raise InputError(f"validation_split must be in (0, 1), got {validation_split!r}")
            n_val = max(1, int(round(len(Xh) * validation_split)))
            if n_val >= len(Xh):
                raise InputError("validation_split leaves no training samples")
            perm = np.random.default_rng(self.seed + 7).permutation(len(Xh))
            Xh, Xv, yh, yv = Xh[perm[n_val:]], Xh[perm[:n_val]], yh[perm[n_val:]], yh[perm[:n_val]]
        elif (X_val is None) != (y_val is None):
            raise InputError("pass both X_val and y_val, or neither")
        elif X_val is not None:
            Xv, yv = self._features(X_val, "X_val"), self._targets(y_val, "y_val")
            check_lengths(Xv, yv, "X_val", "y_val")
        else:
            Xv = yv = None
        with self.backend.compute_context():
            self.history = fit_loop(
            self,
            Xh,
            yh,
            Xv,
            yv,
            optimizer=optimizer,
            lr=lr,
            epochs=epochs,
            batch_size=batch_size,
            lr_scheduler=lr_scheduler,
            patience=early_stopping_patience,
            min_delta=early_stopping_min_delta,
            shuffle=shuffle,
            progress=progress,
            track_metrics=track_metrics,
            )
        return self.history

    fit = train

    def _require_built(self):
        if not self._built or self.history is None and not getattr(self, "_loaded", False):
            if not self._built:
                raise NotFittedError("this model has not been built yet; call train(X, y) first")

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, (N, n_classes); a one-output binary model gives (N, 2)."""
        if self.regressor:
            raise InputError("predict_proba is for classifiers; this model is a regressor (use predict)")
        self._require_built()
        with self.backend.compute_context():
            p = self.backend.to_host(self._outputs(self._features(X)))
        if self.loss.name == "bce_with_logits" and self.n_outputs == 1:
            return np.hstack([1 - p, p])
        return p

    def predict(self, X) -> np.ndarray:
        """Class labels (classifier) or predicted values (regressor: (N,) for one output)."""
        self._require_built()
        with self.backend.compute_context():
            out = self._outputs(self._features(X))
        if self.regressor:
            values = self.backend.to_host(out)
            return values[:, 0] if self.n_outputs == 1 else values
        if self.loss.name == "bce_with_logits":
            labels = self.backend.to_host(out >= 0.5).astype(np.int64)
            return labels[:, 0] if self.n_outputs == 1 else labels
        return self.backend.to_host(out.argmax(axis=1)).astype(np.int64)

    def evaluate(self, X, y) -> dict[str, float]:
        """Loss and metrics on (X, y).

        Classifiers: ``loss``, ``accuracy``, and macro ``precision``, ``recall``, ``f1``.
        Regressors: ``loss``, ``mse``, ``mae``, ``r2``.
        """
        self._require_built()
        Xh, yh = self._features(X), self._targets(y)
        check_lengths(Xh, yh)
        with self.backend.compute_context():
            result = {"loss": self._mean_loss(Xh, yh)}
        pred = self.predict(Xh)
        if self.regressor:
            result.update(M.regression_metrics(yh, pred))
            return result
        truth = yh if yh.ndim == 1 else (yh.argmax(1) if self.loss.name == "cross_entropy" else yh.astype(np.int64))
        if self.loss.name == "bce_with_logits":
            truth = truth.reshape(pred.shape)
        classes = max(2, self.n_outputs)
        result["accuracy"] = M.accuracy(truth, pred)
        if pred.ndim == 1:
            p, r, f = M.precision_recall_f1(truth, pred, classes)
            result.update(precision=p, recall=r, f1=f)
        return result

    def _mean_loss(self, Xh: np.ndarray, yh: np.ndarray) -> float:
        """Mean loss over a dataset in eval mode (chunked), L2 penalty included."""
        to_device = self.backend.to_device
        total = 0.0
        chunk = self._chunk_size()
        for start in range(0, len(Xh), chunk):
            xb, yb = Xh[start : start + chunk], yh[start : start + chunk]
            loss, _ = self._loss_kernel(self._forward(to_device(xb), False), to_device(yb))
            total += float(loss) * len(xb)
        return total / len(Xh) + self._penalty()

    def summary(self, print_fn=print) -> str:
        """A table of layers, output shapes and parameter counts; printed and returned."""
        if not self._built:
            raise NotFittedError("the model is not built yet: give input_shape= or train it first")
        rows = [("Layer", "Output shape", "Params")]
        for layer in self.layers:
            act = getattr(layer, "activation", None)
            name = type(layer).__name__ + (f" ({act})" if act and act != "linear" else "")
            rows.append((name, "(N, " + ", ".join(map(str, layer.output_shape)) + ")", f"{layer.n_params:,}"))
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        line = "-" * (sum(widths) + 4)
        text = [f"NeuralNetwork on backend {self.backend.name!r}, {self.dtype.name}, input {self.input_shape}", line]
        for i, row in enumerate(rows):
            text.append(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}")
            if i == 0:
                text.append(line)
        text += [line, f"Total params: {self.params.size:,}   loss: {self.loss.name}   L2: {self.reg_lambda}"]
        out = "\n".join(text)
        if print_fn is not None:
            print_fn(out)
        return out

    def plot_metrics(self, path) -> None:
        """Write the training curves (loss and metric, with validation) to a PNG file."""
        from .plotting import plot_history

        if not self.history:
            raise NotFittedError("no training history to plot; call train(X, y) first")
        plot_history(self.history, path)

    def save(self, path) -> None:
        """Save architecture and weights to ``path`` (a .npz without pickle), atomically."""
        from .serialization import save_model

        save_model(self, path)

    @classmethod
    def load(cls, path, backend=None) -> "NeuralNetwork":
        """Load a model saved by :meth:`save`, on ``backend`` (default: the current default)."""
        from .serialization import load_model

        return load_model(path, backend=backend, cls=cls)

    def get_weights(self) -> list[np.ndarray]:
        """Host copies of every parameter array, layer by layer."""
        self._require_built()
        return self.params.host_arrays()

    def set_weights(self, weights) -> None:
        """Replace every parameter array; ``weights`` is laid out as :meth:`get_weights` returns."""
        self._require_built()
        self.params.set_host_arrays(weights)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(layers={self.layers!r}, backend={self.backend.name!r}, dtype={self.dtype.name!r})"


def _non_negative(name: str, value) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0 or math.isnan(value):
        raise InputError(f"{name} must be a number >= 0, got {value!r}")
    return float(value)
