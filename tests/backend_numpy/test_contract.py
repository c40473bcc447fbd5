"""The parts of the hook contract that values alone do not show, for every NumPy kernel.

* dtype: float32 in, float32 out (losses' 0-d arrays and optimizer state included), and no
  float64 temporary on the way (a spy array records every ufunc result computed from the
  inputs); float64 in, float64 out.
* in place: ``dw``/``db``/``dwx``/``dwh`` are overwritten, not accumulated, through views into a
  flat buffer whose neighbours stay untouched; optimizers update ``param`` and their state in
  place, through such views too; no other argument changes (``dy``/``dhs`` may).
"""

from __future__ import annotations

import numpy as np
import pytest

from sega_core.backends.dispatch import KERNEL_HOOKS, spec_arguments

DTYPES = [np.float32, np.float64]
GRAD_BUFFERS = {"dw", "db", "dwx", "dwh", "dgamma", "dbeta", "dbx", "dbh"}
#: Arguments a kernel may write to besides gradient buffers (the specification allows it).
SCRATCH = {"dy", "dhs"}
#: Statistics a kernel updates in place (the specification allows it).
RUNNING_STATE = {"batchnorm_forward": ("running_mean", "running_var")}
OPTIMIZER_STATE = {
    "sgd_update": ("param", "velocity"),
    "adam_update": ("param", "m", "v"),
    "adadelta_update": ("param", "sq_avg", "acc_delta"),
}
GARBAGE = 1e30  # prefilled in gradient buffers: any accumulation shows


def _a(rng, dtype, *shape, low=None):
    if low is not None:
        return rng.uniform(low, 1.0, size=shape).astype(dtype)
    return rng.normal(size=shape).astype(dtype)


def build_case(kernels, name: str, dtype, rng) -> dict:
    """Arguments (by specification name) for kernel ``name`` in ``dtype``; scalars stay Python."""
    a = lambda *shape, **kw: _a(rng, dtype, *shape, **kw)  # noqa: E731
    if name == "dense_forward":
        return {"x": a(3, 4), "w": a(4, 5), "b": a(5)}
    if name == "dense_backward":
        return {"dy": a(3, 5), "x": a(3, 4), "w": a(4, 5), "dw": a(4, 5), "db": a(5), "need_dx": True}
    if name in ("conv2d_forward", "conv2d_backward"):
        x, w, b = a(2, 3, 5, 6), a(4, 3, 3, 3), a(4)
        if name == "conv2d_forward":
            return {"x": x, "w": w, "b": b, "stride": 2, "padding": 1}
        y, ctx = kernels.conv2d_forward(x, w, b, 2, 1)
        return {"dy": a(*y.shape), "x": x, "w": w, "stride": 2, "padding": 1, "ctx": ctx, "dw": a(4, 3, 3, 3),
                "db": a(4), "need_dx": True}
    if name in ("rnn_forward", "rnn_backward"):
        x, wx, wh, b = a(2, 4, 3), a(3, 5), a(5, 5), a(5)
        if name == "rnn_forward":
            return {"x": x, "wx": wx, "wh": wh, "b": b, "activation": "sigmoid"}
        hs, ctx = kernels.rnn_forward(x, wx, wh, b, "sigmoid")
        return {"dhs": a(2, 4, 5), "x": x, "wx": wx, "wh": wh, "hs": hs, "activation": "sigmoid", "ctx": ctx,
                "dwx": a(3, 5), "dwh": a(5, 5), "db": a(5), "need_dx": True}
    if name in ("maxpool2d_forward", "maxpool2d_backward", "avgpool2d_forward", "avgpool2d_backward"):
        x, window = a(2, 3, 5, 6), {"pool": (2, 3), "stride": (2, 2), "padding": ((0, 1), (1, 1))}
        if name.endswith("forward"):
            return {"x": x, **window}
        y, ctx = getattr(kernels, name.replace("backward", "forward"))(x, *window.values())
        return {"dy": a(*y.shape), "x": x, **window, "ctx": ctx}
    if name in ("batchnorm_forward", "batchnorm_backward"):
        x, gamma, beta = a(4, 3, 2, 2), a(3), a(3)
        stats = {"running_mean": a(3), "running_var": a(3, low=0.5), "momentum": 0.9, "eps": 1e-3}
        if name == "batchnorm_forward":
            return {"x": x, "gamma": gamma, "beta": beta, **stats, "training": True}
        _, ctx = kernels.batchnorm_forward(x, gamma, beta, *stats.values(), True)
        return {"dy": a(*x.shape), "x": x, "gamma": gamma, "ctx": ctx, "dgamma": a(3), "dbeta": a(3), "need_dx": True}
    if name in ("lstm_forward", "lstm_backward"):
        x, wx, wh, b = a(2, 4, 3), a(3, 20), a(5, 20), a(20)
        if name == "lstm_forward":
            return {"x": x, "wx": wx, "wh": wh, "b": b}
        hs, ctx = kernels.lstm_forward(x, wx, wh, b)
        return {"dhs": a(2, 4, 5), "x": x, "wx": wx, "wh": wh, "hs": hs, "ctx": ctx, "dwx": a(3, 20), "dwh": a(5, 20),
                "db": a(20), "need_dx": True}
    if name in ("gru_forward", "gru_backward"):
        x, wx, wh, bx, bh = a(2, 4, 3), a(3, 15), a(5, 15), a(15), a(15)
        if name == "gru_forward":
            return {"x": x, "wx": wx, "wh": wh, "bx": bx, "bh": bh, "reset_after": False}
        hs, ctx = kernels.gru_forward(x, wx, wh, bx, bh, False)
        return {"dhs": a(2, 4, 5), "x": x, "wx": wx, "wh": wh, "bx": bx, "bh": bh, "reset_after": False, "hs": hs,
                "ctx": ctx, "dwx": a(3, 15), "dwh": a(5, 15), "dbx": a(15), "dbh": a(15), "need_dx": True}
    if name == "dropout_forward":
        return {"x": a(4, 6), "rate": 0.25, "rng": np.random.default_rng(0)}
    if name == "dropout_backward":
        return {"dy": a(4, 6), "mask": (a(4, 6) > 0).astype(dtype) * dtype(4 / 3)}
    if name.endswith("_forward"):  # activations
        return {"z": a(3, 5), **({"alpha": 0.05} if name.startswith("leaky") else {})}
    if name.endswith("_backward"):
        z = a(3, 5)
        fwd = getattr(kernels, name.replace("_backward", "_forward"))
        y = fwd(z, 0.05) if name.startswith("leaky") else fwd(z)
        return {"dy": a(3, 5), "z": z, "y": y.copy(), **({"alpha": 0.05} if name.startswith("leaky") else {})}
    if name == "softmax_cross_entropy":
        return {"logits": a(4, 3), "target": np.eye(3, dtype=dtype)[[0, 2, 1, 2]], "weight": a(4, low=0.0)}
    if name == "bce_with_logits":
        return {"logits": a(4, 3), "target": a(4, 3, low=0.0), "weight": a(4, low=0.0)}
    if name in ("mse", "mae"):
        return {"pred": a(4, 3), "target": a(4, 3), "weight": a(4, low=0.0)}
    if name == "huber":
        return {"pred": a(4, 3), "target": a(4, 3), "delta": 0.7, "weight": a(4, low=0.0)}
    n = 13
    if name == "sgd_update":
        return {"param": a(n), "grad": a(n), "velocity": a(n), "lr": 0.1, "momentum": 0.9, "nesterov": True}
    if name == "adam_update":
        return {"param": a(n), "grad": a(n), "m": a(n), "v": a(n, low=0.0), "step": 3, "lr": 1e-3, "beta1": 0.9,
                "beta2": 0.999, "eps": 1e-8}
    if name == "adadelta_update":
        return {"param": a(n), "grad": a(n), "sq_avg": a(n, low=0.0), "acc_delta": a(n, low=0.0), "lr": 1.0,
                "rho": 0.9, "eps": 1e-6}
    raise AssertionError(f"no test case for kernel {name!r}: add one to build_case")


KERNELS = [hook[len("sega_"):] for hook in KERNEL_HOOKS]


def _call(kernels, name, args):
    return getattr(kernels, name)(*(args[a] for a in spec_arguments("sega_" + name)))


def _arrays(result):
    """Every float array in a kernel's result (a tuple's members included; ctx may be an array
    too, or hold integer positions, which have no float dtype to keep)."""
    items = result if isinstance(result, tuple) else (result,)
    return [r for r in items if isinstance(r, np.ndarray) and r.dtype.kind == "f"]


def test_every_kernel_hook_has_a_case(kernels, rng):
    """A hook added to the contract must get a case here, or this file silently skips it."""
    for name in KERNELS:
        args = build_case(kernels, name, np.float64, rng)
        assert set(args) == set(spec_arguments("sega_" + name)), name


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", KERNELS)
def test_result_dtype_is_the_input_dtype(kernels, rng, name, dtype):
    args = build_case(kernels, name, dtype, rng)
    result = _call(kernels, name, args)
    for array in _arrays(result):
        assert array.dtype == dtype, f"{name} returned {array.dtype} for {np.dtype(dtype).name} inputs"
    if name in ("softmax_cross_entropy", "bce_with_logits", "mse", "mae", "huber"):
        loss, grad = result
        assert isinstance(loss, np.ndarray) and loss.shape == (), f"{name}: loss must be a 0-d array"
        assert grad.shape == args[spec_arguments("sega_" + name)[0]].shape
    for state in OPTIMIZER_STATE.get(name, ()):
        assert args[state].dtype == dtype, f"{name} changed the dtype of {state}"


@pytest.mark.parametrize("name", KERNELS)
def test_float32_kernels_compute_nothing_in_float64(kernels, rng, float64_spy, name):
    args = build_case(kernels, name, np.float32, rng)
    spied = {k: float64_spy.wrap(v) if isinstance(v, np.ndarray) and v.dtype == np.float32 else v
             for k, v in args.items()}
    result = _call(kernels, name, spied)
    assert float64_spy.promoted() == [], f"{name} computed float64 intermediates: {float64_spy.promoted()}"
    for array in _arrays(result):
        assert array.dtype == np.float32


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", KERNELS)
def test_inputs_are_left_alone(kernels, rng, name, dtype):
    args = build_case(kernels, name, dtype, rng)
    may_change = GRAD_BUFFERS | SCRATCH | set(OPTIMIZER_STATE.get(name, ())) | set(RUNNING_STATE.get(name, ()))
    before = {k: v.copy() for k, v in args.items() if isinstance(v, np.ndarray) and k not in may_change}
    _call(kernels, name, args)
    for k, v in before.items():
        np.testing.assert_array_equal(args[k], v, err_msg=f"{name} modified its argument {k!r}")


BACKWARD_WITH_BUFFERS = [n for n in KERNELS if set(spec_arguments("sega_" + n)) & GRAD_BUFFERS]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", BACKWARD_WITH_BUFFERS)
def test_gradient_buffers_are_overwritten_through_views(kernels, rng, name, dtype):
    args = build_case(kernels, name, dtype, rng)
    buffers = [a for a in spec_arguments("sega_" + name) if a in GRAD_BUFFERS]
    # Expected values: the same call on fresh, zeroed buffers.
    clean = dict(args, **{b: np.zeros_like(args[b]) for b in buffers})
    for scratch in SCRATCH & set(clean):
        clean[scratch] = args[scratch].copy()
    expected_dx = _call(kernels, name, clean)
    # The model's layout: all gradients in one flat buffer, guarded by a sentinel on each side.
    sizes = [args[b].size for b in buffers]
    flat = np.full(sum(sizes) + 2, GARBAGE, dtype=dtype)
    flat[0] = flat[-1] = -7.0
    views, offset = {}, 1
    for b, size in zip(buffers, sizes):
        views[b] = flat[offset : offset + size].reshape(args[b].shape)
        offset += size
    dx = _call(kernels, name, dict(args, **views))
    for b in buffers:
        np.testing.assert_allclose(views[b], clean[b], rtol=1e-5, err_msg=f"{name}: {b} was not overwritten")
    assert flat[0] == flat[-1] == -7.0, f"{name} wrote outside its gradient buffers"
    np.testing.assert_allclose(dx, expected_dx, rtol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", list(OPTIMIZER_STATE))
def test_optimizers_update_in_place_through_views(kernels, rng, name, dtype):
    args = build_case(kernels, name, dtype, rng)
    expected = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in args.items()}
    assert _call(kernels, name, expected) is None  # updates return nothing
    # Parameters and state as views into larger buffers (the model's flat layout).
    views, owners = {}, {}
    for k in OPTIMIZER_STATE[name]:
        owner = np.full(args[k].size + 2, 5.0, dtype=dtype)
        owner[1:-1] = args[k]
        owners[k], views[k] = owner, owner[1:-1]
    _call(kernels, name, dict(args, **views))
    for k in OPTIMIZER_STATE[name]:
        np.testing.assert_allclose(views[k], expected[k], rtol=1e-6, err_msg=f"{name}: {k} not updated in place")
        assert not np.array_equal(views[k], args[k]), f"{name} did not update {k}"
        assert owners[k][0] == owners[k][-1] == 5.0
        assert views[k].dtype == dtype


def test_plain_sgd_may_leave_velocity_alone(kernels, rng):
    """With momentum 0 the velocity buffer is unused: it must at least not be corrupted."""
    param, grad, velocity = rng.normal(size=5), rng.normal(size=5), np.zeros(5)
    kernels.sgd_update(param, grad, velocity, 0.1, 0.0, False)
    assert np.all((velocity == 0) | (velocity == grad))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_services_keep_dtype_and_array_type(backend, rng, dtype):
    x = rng.normal(size=(3, 2)).astype(dtype)
    on_device = backend.to_device(x)
    back = backend.to_host(on_device)
    assert type(back) is np.ndarray and back.dtype == dtype
    np.testing.assert_array_equal(back, x)
    assert backend.xp is np
    r = backend.make_rng(1)
    assert isinstance(r, np.random.Generator)
