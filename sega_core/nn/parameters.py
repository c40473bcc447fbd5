"""All of a model's parameters in one flat buffer, and its gradients in another.

Layers see reshaped views. Weights come first and biases after, so L2 regularisation is one
operation on a prefix and an optimizer step is one kernel call for the whole model. Initial
values are drawn on the host from the seed, so every backend starts from the same weights.
"""

from __future__ import annotations

import math

import numpy as np


def layer_seed(seed: int, index: int) -> int:
    """A per-layer seed for layer randomness (dropout), independent across layers."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


class ParameterBuffer:
    """Flat parameter and gradient buffers on the backend, with per-layer views.

    Non-trainable arrays that layers keep (normalisation statistics) live in a third flat
    buffer, ``state``, saved and loaded with the parameters but never touched by an optimizer.
    """

    def __init__(self, layers, backend, dtype, seed: int, values: np.ndarray | None = None) -> None:
        rng = np.random.default_rng(seed)
        entries = []
        for index, layer in enumerate(layers):
            for spec in layer.param_specs():
                init = spec.init(rng, spec.shape) if values is None else None
                entries.append((index, spec, init))
        ordered = [e for e in entries if e[1].role == "weight"] + [e for e in entries if e[1].role != "weight"]
        self.size = int(sum(int(np.prod(e[1].shape)) for e in ordered))
        self.n_weights = int(sum(int(np.prod(e[1].shape)) for e in ordered if e[1].role == "weight"))
        self._layout = []
        host = np.empty(self.size, dtype=dtype)
        offset = 0
        for index, spec, init in ordered:
            n = int(np.prod(spec.shape))
            if init is not None:
                host[offset : offset + n] = init.ravel()
            self._layout.append((index, spec, offset, n))
            offset += n
        if values is not None:
            host[:] = values
        self.backend = backend
        self.param = backend.to_device(host)
        self.grad = backend.xp.zeros_like(self.param)
        self.weights, self.weight_grads = self.param[: self.n_weights], self.grad[: self.n_weights]
        state_host, self._state_layout = _state_values(layers, dtype)
        self.state = backend.to_device(state_host)
        self.state_size = int(state_host.size)
        views: dict[int, tuple[dict, dict, dict]] = {i: ({}, {}, {}) for i in range(len(layers))}
        for index, spec, offset, n in self._layout:
            views[index][0][spec.name] = self.param[offset : offset + n].reshape(spec.shape)
            views[index][1][spec.name] = self.grad[offset : offset + n].reshape(spec.shape)
        for index, spec, offset, n in self._state_layout:
            views[index][2][spec.name] = self.state[offset : offset + n].reshape(spec.shape)
        for index, layer in enumerate(layers):
            params, grads, state = views[index]
            layer.bind(backend, params, grads, layer_seed(seed, index), state)

    @property
    def segments(self) -> list[tuple[int, int]]:
        """``(offset, size)`` of every parameter array in the flat buffer."""
        return [(offset, n) for _, _, offset, n in self._layout]

    def l2_penalty(self, lam: float) -> float:
        """``0.5 * lam * sum(W**2)`` over the weights (biases excluded)."""
        if lam == 0 or self.n_weights == 0:
            return 0.0
        return 0.5 * lam * float(self.weights @ self.weights)

    def add_l2_gradient(self, lam: float) -> None:
        """Add ``lam * W`` to the weights' gradient, in place."""
        if lam:
            self.weight_grads += lam * self.weights

    def state_copy(self) -> np.ndarray:
        """The flat non-trainable state as a new host array."""
        return np.array(self.backend.to_host(self.state), copy=True)

    def restore_state(self, values: np.ndarray) -> None:
        """Copy a host array into the non-trainable state, in place."""
        self.state[...] = self.backend.to_device(np.ascontiguousarray(values, dtype=self.state.dtype))

    def all_finite(self):
        """A 0-d device boolean: every parameter is finite (one reduction, no host sync)."""
        return self.backend.xp.isfinite(self.param).all()

    def host_copy(self) -> np.ndarray:
        """The flat parameters as a new host array."""
        return np.array(self.backend.to_host(self.param), copy=True)

    def snapshot(self):
        """Device copies of the parameters and of the non-trainable state (normalisation
        statistics), for :meth:`restore_snapshot`: the epoch early stopping keeps, the epoch a
        divergence returns to. Weights without their statistics would predict differently."""
        return self.param.copy(), self.state.copy()

    def restore_snapshot(self, snapshot) -> None:
        """Copy a :meth:`snapshot` back into the parameters and the state, in place."""
        param, state = snapshot
        self.param[...] = param
        self.state[...] = state

    def restore(self, snapshot) -> None:
        """Copy a snapshot (device array) or host array back into the parameters, in place."""
        if isinstance(snapshot, np.ndarray) and self.backend.device != "cpu":
            snapshot = self.backend.to_device(snapshot)
        self.param[...] = snapshot

    def _slots(self, trainable_only: bool) -> list[tuple[str, int, object, int, int]]:
        """``(buffer, layer index, spec, offset, size)`` in :meth:`host_arrays` order: layer by
        layer, each layer's parameters (weights before biases) then its state arrays."""
        slots = [("param", index, spec, o, n) for index, spec, o, n in self._layout]
        if not trainable_only:
            slots += [("state", index, spec, o, n) for index, spec, o, n in self._state_layout]
        return sorted(slots, key=lambda e: (e[1], e[0] == "state"))  # stable: keeps W before b

    def host_arrays(self, trainable_only: bool = False) -> list[np.ndarray]:
        """Host copies of every array, in layer order: each layer's parameters, then (unless
        ``trainable_only``) its non-trainable state, as Keras's ``get_weights`` lists them."""
        flats = {"param": self.host_copy(), "state": self.state_copy()}
        return [flats[buf][o : o + n].reshape(spec.shape) for buf, _, spec, o, n in self._slots(trainable_only)]

    def set_host_arrays(self, arrays) -> bool:
        """Copy arrays laid out as :meth:`host_arrays` returns them (with or without the state)
        into the parameters and the state; whether the state was given.

        Every array is checked (count, shapes, finiteness) before anything is written, so a
        refused call leaves the model as it was.
        """
        from ..errors import InputError
        from .validation import check_float_range, host_array

        try:
            arrays = list(arrays)
        except TypeError:
            raise InputError(f"set_weights needs a list of arrays (as get_weights returns), got {type(arrays).__name__}") from None
        full, trainable = self._slots(False), self._slots(True)
        if len(arrays) not in (len(full), len(trainable)):
            counts = f"{len(full)} arrays" + ("" if len(full) == len(trainable) else f" (or {len(trainable)} without the state)")
            raise InputError(f"set_weights needs {counts}, as get_weights returns, got {len(arrays)}")
        slots = full if len(arrays) == len(full) else trainable
        flats = {"param": self.host_copy(), "state": self.state_copy()}
        for i, ((buf, index, spec, offset, n), value) in enumerate(zip(slots, arrays)):
            name = f"weight {i} ({spec.name} of layer {index})"
            arr = host_array(value, name)
            if arr.shape != tuple(spec.shape):
                raise InputError(f"{name} must have shape {tuple(spec.shape)}, got {arr.shape}")
            if arr.dtype.kind not in "biuf" or not np.isfinite(arr).all():
                raise InputError(f"{name} must hold finite numbers")
            check_float_range(arr, flats[buf].dtype, name)  # a float64 value beyond float32's would become inf
            flats[buf][offset : offset + n] = arr.ravel()
        self.restore(flats["param"])
        if slots is full:
            self.restore_state(flats["state"])
        return slots is full


def _state_values(layers, dtype) -> tuple[np.ndarray, list]:
    """Initial values and layout (layer index, spec, offset, size) of the layers' state arrays."""
    layout, parts, offset = [], [], 0
    for index, layer in enumerate(layers):
        for spec in layer.state_specs():
            n = int(np.prod(spec.shape))
            parts.append(np.asarray(spec.init(None, spec.shape), dtype=dtype).ravel())
            layout.append((index, spec, offset, n))
            offset += n
    return (np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)), layout


def count_parameters(layers) -> tuple[int, int]:
    """(trainable, state) scalar counts of built layers, without allocating anything."""
    # math.prod: Python ints, which np.prod would wrap around for absurd declared shapes.
    trainable = sum(math.prod(s.shape) for layer in layers for s in layer.param_specs())
    state = sum(math.prod(s.shape) for layer in layers for s in layer.state_specs())
    return trainable, state
