"""The model's output head: where its classification activation is applied, exactly once.

Cross-entropy and binary cross-entropy are computed by fused, numerically stable kernels that
take *logits* and apply softmax or sigmoid themselves. What a model outputs decides how the loss
meets it:

``"logits"``
    The model's last operation is something else (a linear or ReLU output layer, say): its
    outputs are logits, as for PyTorch's ``CrossEntropyLoss``/``BCEWithLogitsLoss``.
    Probabilities are the head activation of the outputs.
``"fused"``
    The output layer's own activation is the head activation (``Dense(10, activation="softmax")``
    with cross-entropy, ``Conv2D(1, 3, activation="sigmoid")`` + ``Flatten()`` with binary
    cross-entropy): the model runs that layer without its activation and the loss kernel applies
    it, fused. At inference the layer applies it as usual.
``"probabilities"``
    The model's last operation is the head activation but it cannot be split off (the last step
    of an ``RNN(activation="sigmoid")``, a Dropout after a sigmoid layer, or a pooling of sigmoid
    outputs, whose maxima and means are probabilities but not a sigmoid of anything): the outputs are
    probabilities, turned into logits (``log p``, or ``log p - log(1 - p)``) for the loss kernel,
    whose gradient is taken back through that map. Probabilities are clipped to
    ``[eps, 1 - eps]`` there, as Keras does for probability outputs.

Nothing is stored on the layers: the head is the model's, and a layer object cannot hold state
another model depends on.
"""

from __future__ import annotations

import math

import numpy as np

from .activations import activation_kernels
from .layers import RNN, AvgPool2D, Dropout, Flatten, GlobalAvgPool2D, Layer, MaxPool2D, Reshape
from .layers.base import ActivatedLayer

#: Layers that leave an elementwise activation's meaning unchanged after it (sigmoid commutes
#: with a reshape; Dropout is the identity at inference but not in training).
_SHAPE_ONLY = (Flatten, Reshape)

#: Layers whose outputs are maxima or means of their inputs: after a sigmoid they are still
#: probabilities (a softmax's are not, pooled over its own axis's neighbours).
_POOLING = (MaxPool2D, AvgPool2D, GlobalAvgPool2D)


def _final_activation(layer: Layer) -> str | None:
    if isinstance(layer, ActivatedLayer):
        return layer.activation
    if isinstance(layer, RNN):
        return layer.activation
    return None


class Head:
    """The output policy of one built model (see the module docstring)."""

    def __init__(self, layers: list[Layer], loss, backend, dtype) -> None:
        self.activation = {"cross_entropy": "softmax", "bce_with_logits": "sigmoid"}.get(loss.name)
        self.mode, self.index = "logits", None
        self._xp = backend.xp
        self._eps = float(np.finfo(dtype).eps)
        self._loss_kernel = loss.kernel(backend.kernels)
        kernels = activation_kernels(backend.kernels, self.activation) if self.activation else None
        self._forward = kernels[0] if kernels else None
        if self.activation is None:
            self.mode = "values"
            return
        after = []
        for index in range(len(layers) - 1, -1, -1):
            layer = layers[index]
            passes_probabilities = self.activation == "sigmoid" and isinstance(layer, _POOLING)
            if isinstance(layer, _SHAPE_ONLY + (Dropout,)) or passes_probabilities:
                after.append(layer)
                continue
            if _final_activation(layer) != self.activation:
                return
            # Softmax runs over the last axis: over the model's outputs only when every other axis
            # has length 1 (a Dense; a convolution's (1, 1, K) output).
            over_outputs = self.activation == "sigmoid" or math.prod(layer.output_shape[:-1]) == 1
            if not over_outputs:
                return  # a softmax over another axis than the outputs': those are not probabilities
            if isinstance(layer, ActivatedLayer) and not any(isinstance(a, (Dropout,) + _POOLING) for a in after):
                self.mode, self.index = "fused", index
            else:
                self.mode = "probabilities"
            return

    @property
    def outputs_are_probabilities(self) -> bool:
        """Whether the model's inference outputs are already probabilities."""
        return self.mode == "probabilities"

    def loss(self, out, target, weight=None):
        """``(mean loss, d loss / d out)`` for the training pass's outputs ``out``; ``weight`` is
        ``None`` or one weight per sample."""
        if self.mode != "probabilities":
            return self._loss_kernel(out, target, weight)
        xp, eps = self._xp, self._eps
        p = xp.clip(out, eps, 1 - eps)
        if self.activation == "softmax":
            loss, dlogits = self._loss_kernel(xp.log(p), target, weight)
            return loss, dlogits / p
        loss, dlogits = self._loss_kernel(xp.log(p) - xp.log1p(-p), target, weight)
        return loss, dlogits / (p * (1 - p))

    def probabilities(self, out):
        """Probabilities from inference outputs (fused mode: outputs of the activation-free pass)."""
        if self.mode in ("values", "probabilities"):
            return out
        return self._forward(out)

    def inference_loss(self, out, target, weight=None):
        """The mean loss of inference outputs (same conventions as :meth:`probabilities`)."""
        return self.loss(out, target, weight)[0]

    def decision(self, out):
        """Device predictions from inference outputs: class indices, or 0/1 for binary outputs."""
        if self.activation == "sigmoid":
            return out >= (0.5 if self.mode == "probabilities" else 0)
        return out.argmax(axis=1)
