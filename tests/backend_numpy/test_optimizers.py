"""Optimizer update rules: one step against the formulas of the hook specification, written out
by hand, and (when PyTorch happens to be installed; it is never required) several steps against
``torch.optim``, whose formulation the specification follows.
"""

from __future__ import annotations

import math

import numpy as np
import pytest


def _state(rng, size=7):
    return rng.normal(size=size), rng.normal(size=size)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_one_step(kernels, rng, nesterov):
    param, grad = _state(rng)
    velocity = rng.normal(size=7)
    lr, momentum = 0.1, 0.9
    v_expected = momentum * velocity + grad
    step = grad + momentum * v_expected if nesterov else v_expected
    p_expected = param - lr * step
    kernels.sgd_update(param, grad, velocity, lr, momentum, nesterov)
    np.testing.assert_allclose(velocity, v_expected, rtol=1e-14)
    np.testing.assert_allclose(param, p_expected, rtol=1e-14)


def test_plain_sgd_one_step(kernels, rng):
    param, grad = _state(rng)
    expected = param - 0.05 * grad
    kernels.sgd_update(param, grad, np.zeros(7), 0.05, 0.0, False)
    np.testing.assert_allclose(param, expected, rtol=1e-14)


@pytest.mark.parametrize("step", [1, 4])
def test_adam_one_step(kernels, rng, step):
    param, grad = _state(rng)
    m = rng.normal(size=7) if step > 1 else np.zeros(7)
    v = rng.uniform(size=7) if step > 1 else np.zeros(7)
    lr, b1, b2, eps = 1e-2, 0.9, 0.999, 1e-8
    m_e = [b1 * m[i] + (1 - b1) * grad[i] for i in range(7)]
    v_e = [b2 * v[i] + (1 - b2) * grad[i] ** 2 for i in range(7)]
    p_e = [
        param[i] - lr * (m_e[i] / (1 - b1**step)) / (math.sqrt(v_e[i] / (1 - b2**step)) + eps) for i in range(7)
    ]
    kernels.adam_update(param, grad, m, v, step, lr, b1, b2, eps)
    np.testing.assert_allclose(m, m_e, rtol=1e-13)
    np.testing.assert_allclose(v, v_e, rtol=1e-13)
    np.testing.assert_allclose(param, p_e, rtol=1e-12)


def test_adam_first_step_moves_each_parameter_by_about_lr(kernels, rng):
    """With bias correction the first step is lr * g / |g| (up to eps): a classic sanity check."""
    param, grad = _state(rng)
    before = param.copy()
    kernels.adam_update(param, grad, np.zeros(7), np.zeros(7), 1, 0.01, 0.9, 0.999, 1e-8)
    np.testing.assert_allclose(before - param, 0.01 * np.sign(grad), rtol=1e-5)


def test_adadelta_one_step(kernels, rng):
    param, grad = _state(rng)
    sq_avg, acc_delta = rng.uniform(size=7), rng.uniform(size=7)
    lr, rho, eps = 0.5, 0.9, 1e-6
    sq_e = [rho * sq_avg[i] + (1 - rho) * grad[i] ** 2 for i in range(7)]
    delta = [math.sqrt(acc_delta[i] + eps) / math.sqrt(sq_e[i] + eps) * grad[i] for i in range(7)]
    acc_e = [rho * acc_delta[i] + (1 - rho) * delta[i] ** 2 for i in range(7)]
    p_e = [param[i] - lr * delta[i] for i in range(7)]
    kernels.adadelta_update(param, grad, sq_avg, acc_delta, lr, rho, eps)
    np.testing.assert_allclose(sq_avg, sq_e, rtol=1e-13)
    np.testing.assert_allclose(acc_delta, acc_e, rtol=1e-13)
    np.testing.assert_allclose(param, p_e, rtol=1e-13)


# ---- against PyTorch, when it is there ------------------------------------------------------

OPTIMIZERS = {
    "sgd": ({"lr": 0.1, "momentum": 0.0, "nesterov": False}, 1),
    "sgd-momentum": ({"lr": 0.1, "momentum": 0.9, "nesterov": False}, 1),
    "sgd-nesterov": ({"lr": 0.1, "momentum": 0.8, "nesterov": True}, 1),
    "adam": ({"lr": 0.01, "beta1": 0.9, "beta2": 0.99, "eps": 1e-8}, 2),
    "adadelta": ({"lr": 1.0, "rho": 0.9, "eps": 1e-6}, 2),
}


def _torch_optimizer(torch, name, hyper, tparam):
    if name.startswith("sgd"):
        return torch.optim.SGD([tparam], lr=hyper["lr"], momentum=hyper["momentum"], nesterov=hyper["nesterov"])
    if name == "adam":
        return torch.optim.Adam([tparam], lr=hyper["lr"], betas=(hyper["beta1"], hyper["beta2"]), eps=hyper["eps"])
    return torch.optim.Adadelta([tparam], lr=hyper["lr"], rho=hyper["rho"], eps=hyper["eps"])


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_follows_torch_for_several_steps(kernels, rng, name):
    torch = pytest.importorskip("torch")
    hyper, n_state = OPTIMIZERS[name]
    param = rng.normal(size=11)
    state = [np.zeros(11) for _ in range(n_state)]
    tparam = torch.tensor(param.copy(), dtype=torch.float64, requires_grad=True)
    optimizer = _torch_optimizer(torch, name, hyper, tparam)
    for step in range(1, 6):
        grad = rng.normal(size=11)
        tparam.grad = torch.tensor(grad.copy(), dtype=torch.float64)
        optimizer.step()
        kernel = getattr(kernels, f"{name.split('-')[0]}_update")
        if name.startswith("sgd"):
            kernel(param, grad, state[0], hyper["lr"], hyper["momentum"], hyper["nesterov"])
        elif name == "adam":
            kernel(param, grad, state[0], state[1], step, hyper["lr"], hyper["beta1"], hyper["beta2"], hyper["eps"])
        else:
            kernel(param, grad, state[0], state[1], hyper["lr"], hyper["rho"], hyper["eps"])
        np.testing.assert_allclose(param, tparam.detach().numpy(), rtol=1e-12, atol=1e-14, err_msg=f"step {step}")
