"""The ``sega train --model`` presets: the network that takes a data set's raw samples.

Every preset is ``[Normalization (unless --no-standardize), Reshape (when the preset wants
another sample shape), preset layers, Dense stack]``, the Dense stack and its output head built
by :func:`sega_core.nn.model.dense_stack` and :func:`~sega_core.nn.model.default_output_activation`
as the Python API builds them, so the saved model takes raw features wherever it is loaded.
"""

from __future__ import annotations

import math

from ..errors import InputError

#: Per-preset defaults: hidden sizes and epochs that train the built-in datasets in seconds.
PRESET_DEFAULTS = {
    "mlp": {"layers": "128,64", "epochs": 30},
    "cnn": {"layers": "64", "epochs": 10},
    "rnn": {"layers": "64", "epochs": 30},
    "lstm": {"layers": "64", "epochs": 30},
    "gru": {"layers": "64", "epochs": 30},
}

#: Presets whose first layer reads sequences (T, F); its units are the first --layers entry.
SEQUENCE_PRESETS = ("rnn", "lstm", "gru")


def int_list(text: str | None, option: str, allow_empty: bool = False) -> list[int]:
    """``"128,64"`` -> ``[128, 64]``; a readable error otherwise."""
    if text is None or text.strip() in ("", "none"):
        if allow_empty:
            return []
        raise InputError(f"{option} needs comma-separated positive integers, got {text!r}")
    try:
        values = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise InputError(f"{option} needs comma-separated positive integers (e.g. 128,64), got {text!r}") from None
    if (not values and not allow_empty) or any(v < 1 for v in values):
        raise InputError(f"{option} needs comma-separated positive integers (e.g. 128,64), got {text!r}")
    return values


def sample_shape(data_shape: tuple[int, ...], preset: str, image_shape: str | None, sequence_shape: str | None) -> tuple[int, ...]:
    """The per-sample shape the preset's first layer takes, for samples of ``data_shape``."""
    n_features = math.prod(data_shape)
    if preset == "mlp":
        return (n_features,)
    given = image_shape if preset == "cnn" else sequence_shape  # the other presets read sequences
    option = "--image-shape" if preset == "cnn" else "--sequence-shape"
    want = 3 if preset == "cnn" else 2
    if given:
        shape = tuple(int_list(given, option))
        if len(shape) != want:
            raise InputError(f"{option} needs {want} comma-separated sizes ({'C,H,W' if want == 3 else 'T,F'}), got {given!r}")
    elif len(data_shape) == want:
        shape = tuple(data_shape)
    elif preset == "cnn" and len(data_shape) == 2:
        shape = (1, *data_shape)
    else:
        side = math.isqrt(n_features)
        if side * side != n_features:
            raise InputError(
                f"the {preset} model needs {'images' if preset == 'cnn' else 'sequences'}, but the data has "
                f"{n_features} features, not a square number; give {option} "
                f"{'C,H,W' if preset == 'cnn' else 'T,F'}"
            )
        shape = (1, side, side) if preset == "cnn" else (side, side)
    if math.prod(shape) != n_features:
        raise InputError(f"{option} {','.join(map(str, shape))} holds {math.prod(shape)} values, but samples have {n_features} features")
    return shape


def build_layers(preset: str, data_shape: tuple[int, ...], shape: tuple[int, ...], *, hidden: list[int],
                 filters: list[int], n_out: int, activation: str | None, dropout: float, regressor: bool,
                 standardize: bool) -> list:
    """Layer objects taking raw samples of ``data_shape``, seen by the preset as ``shape``."""
    from ..nn.activations import canonical_activation
    from ..nn.layers import GRU, LSTM, RNN, Conv2D, Flatten, MaxPool2D, Normalization, Reshape
    from ..nn.layers.recurrent import RNN_ACTIVATIONS
    from ..nn.model import default_output_activation, dense_stack

    layers = []
    if standardize:
        # One mean and variance per input value, whatever the samples' shape (a pixel, a step's feature).
        layers.append(Normalization() if len(data_shape) == 1 else Normalization(axis=tuple(range(1, len(data_shape) + 1))))
    if tuple(shape) != tuple(data_shape):
        layers.append(Reshape(shape))
    given = activation
    activation = canonical_activation(activation or "relu")
    if preset == "cnn":
        height, width = shape[1:]
        for f in filters:
            # LeNet's pattern: each convolution keeps the resolution, a 2x2 max pool halves it
            # ("same" padding keeps an odd row), while the image is 8 pixels or more: below that
            # a pool throws away more than it saves (digits' 8x8 images: 0.91 test accuracy
            # pooling after both convolutions, 0.96 after the first only).
            layers.append(Conv2D(f, 3, padding=1, activation=activation))
            if min(height, width) >= 8:
                layers.append(MaxPool2D(2, padding="same"))
                height, width = -(-height // 2), -(-width // 2)
        layers.append(Flatten())
    elif preset in SEQUENCE_PRESETS:
        if not hidden:
            raise InputError(f"the {preset} model needs --layers with at least its units (e.g. 64)")
        if preset == "rnn":
            # tanh unless asked otherwise: a ReLU recurrence easily blows up over long sequences.
            if given is not None and given.lower() not in RNN_ACTIVATIONS:
                raise InputError(f"the rnn layer takes --activation {', '.join(RNN_ACTIVATIONS)}, got {given!r}")
            layers.append(RNN(hidden[0], activation=(given or "tanh").lower()))
        else:
            layers.append((LSTM if preset == "lstm" else GRU)(hidden[0]))
        hidden = hidden[1:]
    activations = [activation] * len(hidden) + [default_output_activation(n_out, regressor)]
    return layers + dense_stack(hidden, n_out, activations, dropout)

