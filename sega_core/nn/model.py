"""The model: a stack of layers trained on one backend through its kernel table."""

from __future__ import annotations

import math
import threading
import weakref
from typing import Sequence

import numpy as np

from ..backends import get_backend
from ..distributed import resolve as resolve_distributed
from ..distributed import writes_files
from ..errors import InputError, NotFittedError
from . import data as D
from . import metrics as M
from .activations import canonical_activation
from .head import Head
from .layers import Conv2D, Dense, Dropout, Layer, Normalization
from .layers.pooling import check_channels_first
from .losses import FUSED_ACTIVATION, Loss, make_loss
from .parameters import ParameterBuffer, count_parameters
from .targets import TargetScaler, encode_labels, fit_classes, raw_labels, sample_weights
from .callbacks import EarlyStopping, check_callbacks, progress_logger
from .training import History, fit_loop
from .validation import (
    canonical_dtype,
    check_dropout_rate,
    check_input_shape,
    check_model_memory,
    check_reg_lambda,
    check_seed,
    check_classification_targets,
    check_device_features,
    check_features,
    check_float_range,
    check_regression_targets,
    device_array,
)

#: Layers that take (C, H, W) images: the model's input to one is checked for a channels-last look.
_IMAGE_KINDS = frozenset({"conv2d", "maxpool2d", "avgpool2d", "globalavgpool2d"})

#: Most samples per forward pass at inference (keeps matrix products large).
PREDICT_CHUNK = 4096

#: Bytes of intermediate values one inference chunk may need: a convolution's im2col matrix is
#: K*K times its input, so chunks are sized by work, not by a fixed sample count.
PREDICT_CHUNK_BYTES = 64 << 20


class NeuralNetwork:
    """A feed-forward network of Dense, Conv2D, RNN, Flatten, Reshape, Dropout and Normalization layers.

    Build it from sizes, ``NeuralNetwork(layers=[64, 32, 10])`` (the first size is the number of
    input features; hidden layers use ReLU), or from layer objects,
    ``NeuralNetwork(layers=[Conv2D(8, 3, padding=1), Flatten(), Dense(10)])`` (the input shape is
    taken from the first training data, or from ``input_shape``). A layer object belongs to one
    model: it holds that model's weights.

    Defaults follow the task: several outputs -> softmax + cross-entropy; one output -> sigmoid +
    binary cross-entropy on logits; ``regressor=True`` -> linear output + mean squared error. The
    classification losses are fused with their output activation, which is applied exactly once
    whatever layer ends the model (see :mod:`sega_core.nn.head`).

    Classifiers learn their class labels from the first training targets (any numbers or text;
    integer labels ``0..n-1`` are their own indices), save them with the model, and ``predict``
    returns them. ``standardize_target=True`` (regressors) trains on targets scaled to mean 0 and
    standard deviation 1 per output and maps predictions back. A ``Normalization`` layer fits its
    statistics from the first training data. So a saved model takes raw data in and gives
    labels or values in the data's own units out, wherever it is loaded.

    ``reg_lambda`` adds ``0.5 * reg_lambda * sum(W**2)`` over every weight (not biases) to the
    loss and ``reg_lambda * W`` to its gradient. ``dtype`` is float32 unless float64 is asked for.
    ``seed`` fixes the initial weights (identical on every backend), dropout and shuffling.

    ``distributed="mpi"`` (or a :class:`sega_core.distributed.DataParallel`) trains data-parallel
    over the processes of an ``mpiexec`` run: every process builds the same model and calls
    ``train``, ``evaluate`` and ``predict`` with the same data; see :mod:`sega_core.distributed`.
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
        standardize_target: bool = False,
        distributed=None,
    ) -> None:
        self.backend = get_backend(backend)
        self.distributed = resolve_distributed(distributed)
        self.dtype = canonical_dtype(dtype)
        self.regressor = _flag("regressor", regressor)
        self.standardize_target = _flag("standardize_target", standardize_target)
        if self.standardize_target and not self.regressor:
            raise InputError("standardize_target applies to regressors; build the model with regressor=True")
        self.reg_lambda = check_reg_lambda(reg_lambda)
        self.dropout_rate = check_dropout_rate(dropout_rate)
        self.seed = int(np.random.SeedSequence().entropy % (2**31)) if seed is None else check_seed(seed)
        self._loss_spec = loss_function
        if loss_function is not None:
            make_loss(loss_function)  # a bad name fails here, not at the first train
        self.layers, sizes_input = self._make_layers(layers, activations)
        self.history: History | None = None
        self.optimizer = None
        self.lr_scheduler = None
        self.stop_training = False
        self.classes_: np.ndarray | None = None
        self.target_scaler: TargetScaler | None = None
        self.extra_config: dict = {}
        self._built = False
        self._training_begun = None
        self._train_lock = threading.Lock()
        shape = input_shape if input_shape is not None else sizes_input
        self._claim_layers()
        if shape is not None:
            self._build(check_input_shape(shape))

    # ---- construction -----------------------------------------------------------------------

    def _make_layers(self, layers, activations):
        if isinstance(layers, (Layer, int, str)) or not isinstance(layers, Sequence) or len(layers) == 0:
            raise InputError("layers must be a non-empty list of sizes ([64, 32, 10]) or of layer objects")
        if all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in layers):
            return self._layers_from_sizes([int(s) for s in layers], activations), (int(layers[0]),)
        if not all(isinstance(layer, Layer) for layer in layers):
            raise InputError("layers must be all sizes (ints) or all layer objects (Dense, Conv2D, RNN, Flatten, Dropout...)")
        if activations is not None:
            raise InputError("activations= applies to size lists; give layer objects their own activation")
        if self.dropout_rate > 0:
            raise InputError("dropout_rate= applies to size lists; add Dropout(rate) layers to a layer list")
        return list(layers), None

    def _layers_from_sizes(self, sizes, activations):
        if len(sizes) < 2 or any(s < 1 for s in sizes):
            raise InputError(f"layer sizes must be >= 1 and at least two of them (input, output), got {sizes}")
        n_dense = len(sizes) - 1
        if activations is None:
            activations = ["relu"] * (n_dense - 1) + [self._default_output_activation(sizes[-1])]
        elif isinstance(activations, str) or not isinstance(activations, Sequence) or len(activations) != n_dense:
            raise InputError(
                f"activations must list one name per layer after the input ({n_dense} for sizes {sizes}), got {activations!r}"
            )
        return dense_stack(sizes[1:-1], sizes[-1], [canonical_activation(a) for a in activations], self.dropout_rate)

    def _default_output_activation(self, n_out: int) -> str:
        return default_output_activation(n_out, self.regressor, self._loss_spec)

    def _claim_layers(self) -> None:
        """Make this model the owner of its layer objects (each holds one model's weights)."""
        seen = set()
        for layer in self.layers:
            if id(layer) in seen:
                raise InputError(f"{layer!r} appears twice in the layer list; each position needs its own layer object")
            seen.add(id(layer))
            owner = layer._owner() if layer._owner is not None else None
            if owner is not None and owner is not self:
                raise InputError(
                    f"{layer!r} already belongs to another model, whose weights it holds; create new layer objects "
                    "for each model"
                )
        for layer in self.layers:
            layer._owner = weakref.ref(self)

    def _build(self, input_shape: tuple[int, ...]) -> None:
        shape = input_shape
        first = self.layers[0]
        if len(shape) == 3 and first.kind in _IMAGE_KINDS:
            check_channels_first(type(first).__name__, shape)
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
        trainable, state = count_parameters(self.layers)
        check_model_memory(trainable + state, self.dtype)
        self.params = ParameterBuffer(self.layers, self.backend, self.dtype, self.seed)
        self._head = Head(self.layers, self.loss, self.backend, self.dtype)
        self._random_layers = [layer for layer in self.layers if hasattr(layer, "begin_epoch")]
        self._head_index = self._head.index
        self._built = True

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

    def _features(self, X, name="X"):
        """``X`` checked, as the model's dtype: a host array, or where ``X`` is already on the backend's
        device (a CuPy array on the CuPy backend), a device array checked there and not copied."""
        shape = self.input_shape if self._built else None
        on_device = device_array(self.backend, X)
        if on_device is None:
            arr = check_features(X, self.dtype, shape, name=name)
        else:
            arr = check_device_features(self.backend, on_device, self.dtype, shape, name=name)
        if not self._built:
            self._build(tuple(arr.shape[1:]))
        return arr

    def _n_classes(self) -> int:
        return 2 if self.loss.name == "bce_with_logits" else self.n_outputs

    def _targets(self, y, name="y", fit=False, weight=None) -> np.ndarray:
        """Targets as the loss kernel takes them: class indices or rows, or scaled values.

        With ``fit`` (training), a classifier without classes learns them from ``y`` and a
        regressor with ``standardize_target`` learns its scaling (weighted by ``weight``).
        """
        if self.regressor:
            values = check_regression_targets(y, self.n_outputs, np.dtype(np.float64), name)
            if self.standardize_target:
                if self.target_scaler is None:
                    if not fit:
                        raise NotFittedError("this model standardises its targets but has not been trained yet")
                    self.target_scaler = TargetScaler.fit(values, weight)
                values = self.target_scaler.transform(values)
            check_float_range(values, self.dtype, name)
            return np.ascontiguousarray(values, dtype=self.dtype)
        # One label per sample: 1-D, or a column for cross-entropy (whose 2-D targets are
        # otherwise probability rows); a binary model's (N, 1) targets are probabilities.
        labels = raw_labels(y, squeeze_column=self.loss.name == "cross_entropy") if (
            self.loss.name == "cross_entropy" or self.n_outputs == 1) else None
        if labels is not None and labels.size:
            if self.classes_ is None and fit:
                self.classes_ = fit_classes(labels, self._n_classes(), name)
            if self.classes_ is not None and not np.array_equal(self.classes_, np.arange(len(self.classes_))):
                y = encode_labels(labels, self.classes_, name)
        return check_classification_targets(y, self.n_outputs, self.loss.name, self.dtype, name)

    def _adapt(self, data) -> None:
        """Fit every Normalization layer that has no statistics yet, from its input on the training
        data (a source of :mod:`sega_core.nn.data`).

        Arrays in memory on one process: the statistics of the whole input at once. Out-of-core
        data, or a distributed model: summaries of chunks (each process's share of the rows),
        combined exactly, so the input never needs to be in memory whole.
        """
        to_host, to_device = self.backend.to_host, self.backend.as_device
        for index, layer in enumerate(self.layers):
            if not isinstance(layer, Normalization) or layer.adapted:
                continue
            if data.kind == "memory" and self.distributed is None:
                X = data.X
                inputs = [to_host(self._infer(to_device(X[s : s + c]), stop=index)) for s, c in self._chunks(len(X))]
                layer.adapt(np.concatenate(inputs))
                continue
            if data.kind == "stream":
                D._refuse_whole_data_fits(self)
            start, stop = (0, data.n) if self.distributed is None else self.distributed.share(data.n)
            chunks = (to_host(self._infer(to_device(X), stop=index))
                      for X, _, _ in data.host_chunks(self._chunk_size(), start, stop))
            reduce = (0,) + tuple(i + 1 for i, s in enumerate(layer._stat_shape) if s == 1)
            summary = D.moments(chunks, reduce)
            if self.distributed is not None:
                shape = layer._stat_shape
                size = math.prod(shape)
                mine = np.concatenate([[summary[0]], *(np.broadcast_to(a, (1, *shape)).ravel() if a is not None
                                                        else np.zeros(size) for a in summary[1:])])
                table = self.distributed.allgather(mine, "fitting the Normalization statistics")
                summary = (0.0, None, None)
                for row in table:  # in rank order on every process: the same result everywhere
                    summary = D.combine(summary, (row[0], row[1 : 1 + size].reshape(1, *shape),
                                                  row[1 + size :].reshape(1, *shape)))
            count, mean, m2 = summary
            layer._store(mean[0], m2[0] / count)

    # ---- forward / backward -----------------------------------------------------------------

    def _forward(self, x, training: bool):
        head = self._head_index
        for i, layer in enumerate(self.layers):
            x = layer.forward(x, training, False) if i == head else layer.forward(x, training)
        return x

    def _infer(self, x, stop: int | None = None):
        """Inference outputs (the head layer without its activation in fused mode); pure."""
        head = self._head_index
        for i, layer in enumerate(self.layers[:stop]):
            x = layer.infer(x, False) if i == head else layer.infer(x)
        return x

    def _backward(self, grad) -> None:
        layers = self.layers
        for i in range(len(layers) - 1, -1, -1):
            grad = layers[i].backward(grad, i > 0)

    def _chunks(self, n: int):
        """``(start, size)`` of inference chunks over ``n`` samples."""
        step = self._chunk_size()
        return [(s, min(step, n - s)) for s in range(0, n, step)]

    def _chunk_size(self) -> int:
        """Samples per inference pass so the largest per-layer intermediate stays bounded."""
        per_sample = max(math.prod(self.input_shape), 1)
        for layer in self.layers:
            size = math.prod(layer.output_shape)
            if isinstance(layer, Conv2D):  # im2col rows: one per output pixel, C*KH*KW wide
                size = math.prod(layer.output_shape[1:]) * layer.input_shape[0] * math.prod(layer._kernel)
            per_sample = max(per_sample, size)
        return int(min(PREDICT_CHUNK, max(1, PREDICT_CHUNK_BYTES // (per_sample * self.dtype.itemsize))))

    def _inference(self, data):
        """``(device outputs, host y or None, host w or None)`` per chunk of ``data`` (a source of
        :mod:`sega_core.nn.data`), outputs checked finite; a distributed model's own share of the rows.

        At least one chunk comes out for arrays (an empty one, with ``None`` outputs, where this
        process's share is empty), so results always have their shape.
        """
        to_device = self.backend.as_device
        n = data.n
        start, stop = (0, n) if self.distributed is None or n is None else self.distributed.share(n)
        rows = self._chunk_size() if data.kind != "blocks" else max(self._chunk_size(), data.block_rows())
        empty = True
        for X, y, w in data.host_chunks(rows, start, stop):
            for s, c in self._chunks(len(X)) if data.kind != "memory" else ((0, len(X)),):
                x = X[s : s + c]
                with np.errstate(over="ignore", invalid="ignore"):  # reported in one line
                    out = self._infer(to_device(x))
                self._check_outputs(out, x)
                empty = False
                yield out, None if y is None else y[s : s + c], None if w is None else w[s : s + c]
        if empty and n is not None:
            yield None, None if data.y is None else data.y[0:0], None if data.w is None else data.w[0:0]

    def _host_outputs(self, X, transform, empty_shape) -> np.ndarray:
        """``transform`` of the inference outputs of raw ``X`` as one host array, in chunks; a
        distributed model computes its share of an array's rows and gathers the others'."""
        data = D.evaluation_data(self, X, targets=False)
        try:
            parts = [np.zeros(empty_shape) if out is None else self.backend.to_host(transform(out))
                     for out, _, _ in self._inference(data)]
        finally:
            data.close()
        host = parts[0] if len(parts) == 1 else np.concatenate(parts)
        if self.distributed is not None and data.kind != "stream":
            host = self.distributed.gather_rows(host, "gathering the predictions")
        return host

    def _check_outputs(self, out, X) -> None:
        """Refuse non-finite outputs: a prediction from them would be silently wrong."""
        finite = self.backend.to_host(self.backend.xp.isfinite(out).all(axis=1))
        if not finite.all():
            largest = float(abs(X).max())  # X on the host or the device
            raise InputError(
                f"the model's outputs are not finite for {int((~finite).sum())} of {len(finite)} samples: values overflow "
                f"inside the network (the largest |X| is {largest:.3g}); scale the inputs down"
                + (" or build the model with dtype='float64'" if self.dtype == np.float32 else "")
            )

    def _penalty(self) -> float:
        return self.params.l2_penalty(self.reg_lambda)

    def _loss_and_grad(self, X, y):
        """Mean loss (with L2) and a host copy of the flat gradient, in eval mode (tests)."""
        Xh, yh = self._features(X), self._targets(y)
        out = self._forward(self.backend.as_device(Xh), False)
        loss, g = self._head.loss(out, self.backend.to_device(yh))
        self._backward(g)
        self.params.add_l2_gradient(self.reg_lambda)
        return float(loss) + self._penalty(), self.backend.to_host(self.params.grad).copy()

    # ---- public API -------------------------------------------------------------------------

    def train(
        self,
        X,
        y=None,
        *,
        epochs: int = 100,
        batch_size: int = 32,
        validation_data=None,
        validation_split: float = 0.0,
        optimizer=None,
        lr: float | None = None,
        lr_scheduler=None,
        callbacks=None,
        class_weight=None,
        sample_weight=None,
        shuffle: bool = True,
        verbose: int | None = None,
        early_stopping_patience: int | None = None,
        early_stopping_min_delta: float = 0.0,
        X_val=None,
        y_val=None,
        progress: bool | None = None,
        track_metrics: bool = True,
        steps_per_epoch: int | None = None,
    ) -> History:
        """Train with one optimizer step per mini-batch; return the model's history.

        Everything after ``y`` is a keyword. ``validation_data`` is ``(X_val, y_val)`` or
        ``(X_val, y_val, sample_weight_val)``; ``validation_split`` holds out that fraction of
        the training data instead (``X_val=``/``y_val=`` are kept as another spelling). With
        validation data the history also holds ``val_loss`` and the validation metric.

        ``optimizer`` is ``"adam"``, ``"sgd"``, ``"adadelta"``, a config dict or an optimizer
        object (a new one starts from a fresh state); ``None`` keeps the model's optimizer from
        its last ``train`` call, so training continues where it stopped (Adam if there is none).
        ``lr`` overrides its learning rate. ``lr_scheduler`` is ``"step"``, ``"exponential"``,
        ``"plateau"`` or a scheduler object, stepped after each epoch (``None`` keeps the
        model's). ``callbacks`` is a list of :class:`~sega_core.nn.callbacks.Callback`.

        ``class_weight`` (a dict ``{label: weight}`` or ``"balanced"``) and ``sample_weight``
        (one weight per sample) scale each sample's loss and gradient; the reported loss and
        metric are weighted too.

        ``verbose``: 0 silent, 1 a progress bar (one line per epoch when stderr is not a
        terminal), 2 one line per epoch; by default a bar on a terminal and nothing elsewhere
        (``progress=True``/``False`` is the same as 1/0). ``early_stopping_patience`` is
        ``EarlyStopping(patience=..., restore_best_weights=True)`` on the validation loss (the
        training loss without validation data).

        The history accumulates over calls. If the parameters stop being finite, training
        stops with :class:`~sega_core.errors.TrainingDivergedError` and the weights of the last
        good epoch (or quietly, with :class:`~sega_core.nn.callbacks.TerminateOnNaN`).

        Data that do not fit in memory: ``X`` may be an ``np.memmap``, the path of a ``.npy``
        file or a Dask array (read a block at a time; shuffling shuffles the blocks' order and
        the rows within each block), or an iterable of ``(X, y[, sample_weight])`` batches with
        ``y`` left out (``steps_per_epoch`` batches per epoch, if given); see
        :mod:`sega_core.nn.data`. A distributed model (``distributed="mpi"``) trains on its share
        of every batch on each process; see :mod:`sega_core.distributed`.
        """
        if not self._train_lock.acquire(blocking=False):
            raise InputError("this model is already training in another thread; predict and evaluate may run meanwhile")
        try:
            return self._train(
                X, y, validation=_validation_arguments(validation_data, X_val, y_val), validation_split=validation_split,
                class_weight=class_weight, sample_weight=sample_weight, verbose=_verbosity(verbose, progress),
                patience=early_stopping_patience, min_delta=early_stopping_min_delta, callbacks=callbacks,
                optimizer=optimizer, lr=lr, epochs=epochs, batch_size=batch_size, lr_scheduler=lr_scheduler,
                shuffle=shuffle, track_metrics=track_metrics, steps_per_epoch=steps_per_epoch,
            )
        finally:
            self._train_lock.release()

    fit = train

    def _train(self, X, y, *, validation, validation_split, class_weight, sample_weight, verbose, patience,
               min_delta, callbacks, steps_per_epoch, **options) -> History:
        # A call refused before training starts must teach the model nothing: not the shape of
        # its X, nor the classes or the target scaling of its y, which would bind later calls.
        before = self._built, getattr(self, "input_shape", None), self.classes_, self.target_scaler
        self._training_begun = sources = None
        try:
            sources = data, checked_validation, callbacks = self._prepare_training(
                X, y, validation, validation_split, class_weight, sample_weight, verbose, patience, min_delta, callbacks,
                steps_per_epoch)
            with self.backend.compute_context():
                self.history = fit_loop(self, data, checked_validation, callbacks=callbacks, **options)
        except BaseException:
            if not self._training_begun:
                for source in (sources or ())[:2]:
                    if source is not None:
                        source.close()
                self._built, self.input_shape, self.classes_, self.target_scaler = before
            raise
        return self.history

    def _prepare_training(self, X, y, validation, validation_split, class_weight, sample_weight, verbose, patience,
                          min_delta, callbacks, steps_per_epoch):
        """The checked training data, validation data and callbacks of a ``train`` call."""
        data = D.training_data(self, X, y, sample_weight, class_weight, steps_per_epoch)
        try:
            callbacks = check_callbacks(callbacks)
            if validation is not None:
                if validation_split:
                    raise InputError("give validation_data or validation_split, not both")
                validation = D.evaluation_data(self, validation[0], validation[1], validation[2],
                                               names=("X_val", "y_val", "sample_weight_val"))
            elif validation_split:
                if isinstance(validation_split, bool) or not isinstance(validation_split, (int, float, np.floating)) \
                        or not 0 < validation_split < 1:
                    raise InputError(f"validation_split must be in (0, 1), got {validation_split!r}")
                data, validation = data.split(validation_split, self.seed + 7)
            if patience is not None:
                monitor = "val_loss" if validation is not None else "loss"
                if isinstance(patience, bool) or not isinstance(patience, (int, np.integer)) or patience < 1:
                    raise InputError(f"early_stopping_patience must be an int >= 1 or None, got {patience!r}")
                callbacks.append(EarlyStopping(monitor, patience, min_delta, restore_best_weights=True))
            logger = progress_logger(verbose)
            if logger is not None:
                callbacks.append(logger)
        except BaseException:
            data.close()
            raise
        return data, validation, callbacks

    def _fitted_targets(self, y, sample_weight, class_weight, n):
        """``(targets, weights)`` of ``n`` training samples, checked. A regressor's weights come
        first, since they weigh its target scaling; a classifier's need its labels
        (``class_weight``). What ``y`` teaches the model is forgotten again if the call is
        refused (see :meth:`_train`)."""
        if self.regressor:
            weight = self._sample_weights(None, sample_weight, class_weight, n)
            if weight is not None and hasattr(y, "__len__") and len(y) != n:
                raise InputError(f"X has {n} samples but y has {len(y)}; they must match")
            yh = self._targets(y, fit=True, weight=weight)
        else:
            yh = self._targets(y, fit=True)
            weight = None
        if len(yh) != n:
            raise InputError(f"X has {n} samples but y has {len(yh)}; they must match")
        if not self.regressor:
            weight = self._sample_weights(yh, sample_weight, class_weight, n)
        return yh, weight

    def _sample_weights(self, yh, sample_weight, class_weight, n, name="sample_weight"):
        """Per-sample weights from ``sample_weight`` and ``class_weight`` (None: all ones)."""
        labels = None
        if class_weight is not None:
            if not self.regressor and yh.ndim == 2 and yh.shape[1] == 1 and np.isin(yh, (0, 1)).all():
                labels = yh[:, 0].astype(np.int64)  # a one-output binary model's 0/1 column
            elif not self.regressor and yh.ndim == 1:
                labels = yh
            else:
                raise InputError("class_weight needs a classifier trained on one class label per sample")
        return sample_weights(sample_weight, class_weight, labels, self.classes_, n, name)

    def _begin_epoch(self, epoch: int) -> None:
        """Give layers with randomness a generator of their own for ``epoch``, so an epoch's
        dropout masks depend only on the seed and the epoch (training resumes exactly)."""
        for layer in self._random_layers:
            layer.begin_epoch(epoch)

    def _require_built(self):
        if not self._built:
            raise NotFittedError("this model has not been built yet; call train(X, y) first")

    def _probabilities(self, X):
        """Host probabilities (N, outputs) of raw ``X``."""
        with self.backend.compute_context():
            return self._host_outputs(X, self._head.probabilities, (0, self.n_outputs)).astype(self.dtype, copy=False)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, (N, n_classes), columns in the order of ``classes_``.

        A one-output binary model gives (N, 2): ``[1 - p, p]``.
        """
        if self.regressor:
            raise InputError("predict_proba is for classifiers; this model is a regressor (use predict)")
        self._require_built()
        p = self._probabilities(X)
        if self.loss.name == "bce_with_logits" and self.n_outputs == 1:
            return np.hstack([1 - p, p])
        return p

    def predict(self, X) -> np.ndarray:
        """Class labels (classifier) or values (regressor: (N,) for one output), raw data in.

        Labels are those the model was trained on (``classes_``); a multi-label binary model
        gives (N, outputs) 0/1 labels.
        """
        self._require_built()
        with self.backend.compute_context():
            if self.regressor:
                values = self._host_outputs(X, lambda out: out, (0, self.n_outputs)).astype(self.dtype, copy=False)
                if self.target_scaler is not None:
                    values = self.target_scaler.inverse(values)
                return values[:, 0] if self.n_outputs == 1 else values
            shape = (0,) if self.loss.name == "cross_entropy" else (0, self.n_outputs)
            decided = self._host_outputs(X, self._head.decision, shape).astype(np.int64)
        if decided.ndim == 2:
            if decided.shape[1] > 1:
                return decided
            decided = decided[:, 0]
        return decided if self.classes_ is None else self.classes_[decided]

    def evaluate(self, X, y=None, sample_weight=None) -> dict[str, float]:
        """Loss and metrics on (X, y) in eval mode (no dropout), with raw labels or values.

        Classifiers: ``loss``, ``accuracy``, and macro ``precision``, ``recall``, ``f1``.
        Regressors: ``loss`` (in the units the network trains on, L2 included, as in the
        history) and ``mse``, ``mae``, ``r2`` in the target's own units. ``sample_weight``
        weights every one of them.

        ``X`` may be out of core (a memmap, ``.npy`` path or Dask array, read in blocks) or an
        iterable of ``(X, y[, sample_weight])`` batches with ``y`` left out (see
        :mod:`sega_core.nn.data`). A distributed model scores its share on every process and
        every process gets the scores of the whole data.
        """
        self._require_built()
        data = D.evaluation_data(self, X, y, sample_weight)
        try:
            return self._evaluate_data(data)
        finally:
            data.close()

    def _evaluate_data(self, data) -> dict[str, float]:
        """:meth:`evaluate` on a source of :mod:`sega_core.nn.data` (targets as the loss kernel takes them)."""
        to_device, to_host = self.backend.to_device, self.backend.to_host
        total, count, outputs, truths, weights = 0.0, 0, [], [], []
        with self.backend.compute_context():
            for out, yc, wc in self._inference(data):
                if out is None:  # this process's share is empty: results of the right shapes
                    out = self.backend.xp.zeros((0, self.n_outputs), dtype=self.dtype)
                else:
                    wb = None if wc is None else to_device(wc.astype(self.dtype))
                    total += float(self._head.inference_loss(out, to_device(yc), wb)) * len(yc)
                count += len(yc)
                outputs.append(to_host(out) if self.regressor else to_host(self._head.decision(out)))
                truths.append(yc)
                weights.append(wc)
        pred, yh = np.concatenate(outputs), np.concatenate(truths)
        w = None if weights[0] is None else np.concatenate(weights)
        if self.distributed is not None:
            total, count = (float(v) for v in self.distributed.allgather([total, count], "summing the scores").sum(axis=0))
            pred, yh = self.distributed.gather_rows(pred), self.distributed.gather_rows(yh)
            w = None if w is None else self.distributed.gather_rows(w)
        result = {"loss": total / count + self._penalty()}
        if self.regressor:
            truth = yh.astype(np.float64)
            if self.target_scaler is not None:
                pred, truth = self.target_scaler.inverse(pred), self.target_scaler.inverse(truth)
            result.update(M.regression_metrics(truth, pred, w))
            return result
        pred = pred.astype(np.int64)
        truth = yh if yh.ndim == 1 else (yh.argmax(1) if self.loss.name == "cross_entropy" else (yh >= 0.5).astype(np.int64))
        truth = truth.reshape(pred.shape)
        result["accuracy"] = M.accuracy(truth, pred, w)
        if pred.ndim == 1 or pred.shape[1] == 1:
            p, r, f = M.precision_recall_f1(truth.ravel(), pred.ravel(), max(2, self.n_outputs), w)
            result.update(precision=p, recall=r, f1=f)
        return result

    def summary(self, print_fn=print) -> str:
        """A table of layers, output shapes and parameter counts; printed and returned. As in
        Keras, a layer's count includes its non-trainable statistics, and the total is split
        into trainable and non-trainable."""
        if not self._built:
            raise NotFittedError("the model is not built yet: give input_shape= or train it first")
        rows = [("Layer", "Output shape", "Params")]
        for layer in self.layers:
            act = getattr(layer, "activation", None)
            name = type(layer).__name__ + (f" ({act})" if act and act != "linear" else "")
            rows.append((name, "(N, " + ", ".join(map(str, layer.output_shape)) + ")", f"{layer.n_params + layer.n_state:,}"))
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        line = "-" * (sum(widths) + 4)
        text = [f"NeuralNetwork on backend {self.backend.name!r}, {self.dtype.name}, input {self.input_shape}", line]
        for i, row in enumerate(rows):
            text.append(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}")
            if i == 0:
                text.append(line)
        size, state = self.params.size, self.params.state_size
        text += [line, f"Total params: {size + state:,} (trainable {size:,}, non-trainable {state:,})   "
                       f"loss: {self.loss.name}   L2: {self.reg_lambda}"]
        out = "\n".join(text)
        if print_fn is not None:
            print_fn(out)
        return out

    def plot_metrics(self, path) -> None:
        """Write the training curves (loss and metric, with validation) to a PNG file (for a
        distributed model, on rank 0 only)."""
        from .plotting import plot_history

        if not self.history:
            raise NotFittedError("no training history to plot; call train(X, y) first")
        if writes_files(self):
            plot_history(self.history, path)

    def save(self, path, include_optimizer: bool = True) -> None:
        """Save architecture, weights, statistics and labels to ``path`` (a .npz without pickle), atomically.

        With ``include_optimizer`` (the default) the optimizer's and scheduler's state are saved
        too, so ``load`` then ``train`` continues exactly where training stopped. A distributed
        model writes on rank 0 only (every process holds the same model).
        """
        from .serialization import save_model

        if writes_files(self):
            save_model(self, path, include_optimizer)

    @classmethod
    def load(cls, path, backend=None) -> "NeuralNetwork":
        """Load a model saved by :meth:`save`, on ``backend`` (default: the current default)."""
        from .serialization import load_model

        return load_model(path, backend=backend, cls=cls)

    def get_weights(self, trainable_only: bool = False) -> list[np.ndarray]:
        """Host copies of every array of the model, layer by layer, as Keras lists them: each
        layer's parameters (weights before biases), then its non-trainable statistics
        (BatchNormalization's moving mean and variance, Normalization's mean and variance), which
        a copy of the model needs to predict the same. ``trainable_only`` leaves those out (the
        arrays an optimizer updates, as PyTorch's ``parameters()``)."""
        self._require_built()
        return self.params.host_arrays(trainable_only)

    def set_weights(self, weights) -> None:
        """Replace the model's arrays; ``weights`` is laid out as :meth:`get_weights` returns it,
        with the statistics (all replaced) or with ``trainable_only`` (the statistics kept)."""
        self._require_built()
        if self.params.set_host_arrays(weights):
            for layer in self.layers:
                if layer.state_specs() and hasattr(layer, "adapted"):
                    layer.adapted = True  # given statistics: training must not fit them again

    def export_onnx(self, path, opset: int | None = None, dtype=None):
        """Write the inference model to ``path`` as a standard ONNX graph; return the ``onnx.ModelProto``.

        Outputs ``label`` and ``probabilities`` (classifiers) or ``values`` (regressors), as
        ``predict``/``predict_proba`` give them, for a batch of any size. Needs the ``onnx``
        package (``pip install "sega-core[onnx]"``); see :mod:`sega_core.export.onnx_export`.
        A distributed model writes on rank 0 only; every process gets the graph.
        """
        from ..export.onnx_export import build_onnx, export_onnx

        if not writes_files(self):
            return build_onnx(self, opset, dtype)
        return export_onnx(self, path, opset=opset, dtype=dtype)

    def state_dict(self, format: str = "torch") -> dict[str, np.ndarray]:
        """The weights (and statistics) as ``{name: host array}``; see :func:`sega_core.export.weights.state_dict`.

        ``format="torch"``: PyTorch's names and layouts (``"0.weight"`` is a Dense's ``W.T``)
        for a ``torch.nn.Sequential`` with one module per layer; ``"sega"``: sega's own.
        """
        from ..export.weights import state_dict

        return state_dict(self, format)

    def save_safetensors(self, path, format: str = "torch") -> None:
        """Write :meth:`state_dict` to a ``.safetensors`` file, atomically (needs ``sega-core[safetensors]``);
        a distributed model writes on rank 0 only."""
        from ..export.weights import save_safetensors

        if writes_files(self):
            save_safetensors(self, path, format)

    def load_weights(self, source) -> None:
        """Replace the weights from a ``.safetensors`` path or a ``{name: array}`` dict, in either
        :meth:`state_dict` format (a PyTorch ``state_dict()`` included); every shape is checked first."""
        from ..export.weights import load_weights

        load_weights(self, source)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(layers={self.layers!r}, backend={self.backend.name!r}, dtype={self.dtype.name!r})"


def default_output_activation(n_out: int, regressor: bool, loss=None) -> str:
    """The output activation of a model built from sizes: the one its loss is fused with."""
    if regressor:
        return "linear"
    if loss is not None:
        fused = FUSED_ACTIVATION.get(make_loss(loss).name)
        if fused:
            return fused
    return "sigmoid" if n_out == 1 else "softmax"


def dense_stack(hidden: Sequence[int], n_out: int, activations: Sequence[str], dropout_rate: float = 0.0) -> list[Layer]:
    """Dense layers of ``hidden`` units then ``n_out``, one activation each, Dropout after each hidden one."""
    layers: list[Layer] = []
    for units, act in zip(hidden, activations):
        layers.append(Dense(units, activation=act))
        if dropout_rate > 0:
            layers.append(Dropout(dropout_rate))
    layers.append(Dense(n_out, activation=activations[len(hidden)]))
    return layers


def _flag(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _validation_arguments(validation_data, X_val, y_val):
    """``(X, y, weights or None)`` from ``validation_data`` or ``X_val``/``y_val``; ``None`` without."""
    if (X_val is None) != (y_val is None):
        raise InputError("pass both X_val and y_val, or neither")
    if X_val is not None:
        if validation_data is not None:
            raise InputError("give validation_data or X_val/y_val, not both")
        return (X_val, y_val, None)
    if validation_data is None:
        return None
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
        raise InputError("validation_data must be a tuple (X_val, y_val) or (X_val, y_val, sample_weight_val)")
    return tuple(validation_data) + (None,) * (3 - len(validation_data))


def _verbosity(verbose, progress):
    """``verbose``, with the older ``progress`` flag read as 1 (True) or 0 (False)."""
    if progress is not None:
        if verbose is not None:
            raise InputError("give verbose or progress, not both (progress=True is verbose=1)")
        return 1 if progress else 0
    return verbose
