"""Optimizer and scheduler hyper-parameters are checked on every path (objects, names, dicts,
an lr given next to an optimizer object), NumPy scalars are numbers, and every refusal is a
one-line InputError."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sega_core import NeuralNetwork
from sega_core.nn.optimizers import SGD, Adadelta, Adam, make_optimizer
from sega_core.nn.schedulers import ExponentialLR, ReduceLROnPlateau, StepLR, make_scheduler
from sega_core.nn.validation import check_int, check_number

OPTIMIZERS = [SGD, Adam, Adadelta]
NOT_NUMBERS = [True, False, np.bool_(True), "0.1", None, 1j, [0.1], np.array([0.1])]
NOT_FINITE = [math.inf, -math.inf, math.nan, np.float32("nan"), np.float64("inf"), 10**400]



# ---- the shared check -----------------------------------------------------------------------------


@pytest.mark.parametrize("bounds, text", [
    (dict(low=0, low_open=True), "x must be a positive number (finite)"),
    (dict(low=0), "x must be a finite number >= 0"),
    (dict(low=1, low_open=True), "x must be a finite number > 1"),
    (dict(low=0, high=1, high_open=True), "x must be in [0, 1)"),
    (dict(low=0, high=1, low_open=True, high_open=True), "x must be in (0, 1)"),
    (dict(low=0, high=1), "x must be in [0, 1]"),
])
def test_check_number_names_the_range(bounds, text, refused):
    for bad in [-5, 7, math.nan, "a", True]:
        if bounds.get("high") is None and bad == 7:
            continue
        assert refused(lambda: check_number("x", bad, **bounds), text) == f"{text}, got {bad!r}"


@pytest.mark.parametrize("value", [0.5, 1, np.float32(0.5), np.float64(0.5), np.int64(1), np.uint8(1), np.float16(0.25)])
def test_check_number_takes_python_and_numpy_numbers(value):
    result = check_number("x", value, 0, 1)
    assert type(result) is float and result == float(value)


def test_check_int_refuses_bools_and_whole_floats(refused):
    assert check_int("n", np.int32(3), 1) == 3 and type(check_int("n", np.int64(3))) is int
    for bad in [True, 2.0, "2", None, np.float64(2)]:
        refused(lambda: check_int("n", bad, 1), f"n must be an int >= 1, got {bad!r}")
    refused(lambda: check_int("n", 0, 1, owner="Thing"), "Thing needs n to be an int >= 1, got 0")


# ---- optimizers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", OPTIMIZERS)
@pytest.mark.parametrize("lr", NOT_NUMBERS + NOT_FINITE + [0, 0.0, -1, -1e-9, np.float32(-0.1)])
def test_every_optimizer_refuses_a_bad_learning_rate(cls, lr, refused):
    refused(lambda: cls(lr=lr), "learning rate must be a positive number (finite)")


@pytest.mark.parametrize("cls", OPTIMIZERS)
@pytest.mark.parametrize("lr", [np.float32(0.01), np.float64(0.01), np.int64(1), 1, 0.5])
def test_numpy_scalars_are_valid_learning_rates(cls, lr):
    optimizer = cls(lr=lr)
    assert type(optimizer.lr) is float and optimizer.lr == pytest.approx(float(lr))


@pytest.mark.parametrize("cls", [Adam, Adadelta])
@pytest.mark.parametrize("eps", NOT_NUMBERS + NOT_FINITE + [0, -1, -1e-8])
def test_eps_must_be_positive_and_finite(cls, eps, refused):
    refused(lambda: cls(eps=eps), "eps must be a positive number (finite)")


@pytest.mark.parametrize("make, name", [
    (lambda v: SGD(momentum=v), "momentum"),
    (lambda v: Adam(beta1=v), "beta1"),
    (lambda v: Adam(beta2=v), "beta2"),
    (lambda v: Adadelta(rho=v), "rho"),
])
@pytest.mark.parametrize("value", NOT_NUMBERS + NOT_FINITE + [-0.1, 1, 1.5, "x"])
def test_decay_rates_must_be_numbers_in_zero_one(make, name, value, refused):
    refused(lambda: make(value), f"{name} must be in [0, 1), got {value!r}")


def test_numpy_scalars_are_valid_everywhere():
    sgd = SGD(lr=np.float32(0.1), momentum=np.float32(0.9), nesterov=np.bool_(True))
    adam = Adam(np.float64(1e-3), np.float32(0.8), np.float64(0.99), np.float32(1e-7))
    delta = Adadelta(np.int64(1), np.float32(0.95), np.float64(1e-6))
    for value in (sgd.momentum, adam.beta1, adam.beta2, adam.eps, delta.rho, delta.eps):
        assert type(value) is float
    assert sgd.nesterov is True


def test_nesterov_must_be_a_bool(refused):
    refused(lambda: SGD(momentum=0.9, nesterov="yes"), "nesterov must be True or False, got 'yes'")


def test_an_lr_given_next_to_an_optimizer_object_is_checked(refused):
    adam = Adam()
    for lr in [-1, 0, math.inf, math.nan, "fast"]:
        refused(lambda: make_optimizer(adam, lr), "learning rate must be a positive number (finite)")
    assert adam.lr == 0.001  # left as it was
    assert make_optimizer(adam, np.float32(0.5)).lr == 0.5


@pytest.mark.parametrize("spec", ["sgd", {"name": "adam"}, None])
def test_an_lr_given_with_a_name_or_dict_is_checked(spec, refused):
    refused(lambda: make_optimizer(spec, -1), "learning rate must be a positive number (finite), got -1")
    assert make_optimizer(spec, np.float64(0.25)).lr == 0.25


def test_a_dict_without_a_name_says_it_needs_one(refused):
    message = refused(lambda: make_optimizer({"lr": 0.1}), 'an optimizer dict needs "name" (one of sgd, adam, adadelta)')
    assert "{'lr': 0.1}" in message


def test_a_dict_with_unknown_keys_lists_the_valid_ones(refused):
    refused(lambda: make_optimizer({"name": "sgd", "betas": (0.9, 0.99), "lr": 0.1}),
            "optimizer 'sgd' has no option(s) betas; its options: name, lr, momentum, nesterov")
    refused(lambda: make_optimizer({"name": "adam", "momentum": 0.9}), "its options: name, lr, beta1, beta2, eps")


def test_a_dict_with_bad_values_is_refused_like_the_constructor(refused):
    refused(lambda: make_optimizer({"name": "sgd", "momentum": "x"}), "momentum must be in [0, 1), got 'x'")
    refused(lambda: make_optimizer({"name": "adam", "eps": -1}), "eps must be a positive number (finite), got -1")
    assert make_optimizer({"name": "sgd", "momentum": 0.5}, lr=0.2).lr == 0.2


def test_training_with_an_optimizer_object_and_a_negative_lr_raises(refused):
    X = np.random.default_rng(0).normal(size=(12, 3))
    y = np.arange(12) % 2
    model = NeuralNetwork([3, 4, 2], backend="numpy", seed=0)
    refused(lambda: model.train(X, y, optimizer=Adam(), lr=-1, epochs=1, progress=False), "learning rate must be a positive number")
    refused(lambda: model.train(X, y, optimizer={"lr": 0.1}, epochs=1, progress=False), 'an optimizer dict needs "name"')


# ---- schedulers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("make, text", [
    (lambda: StepLR("a"), "StepLR needs step_size to be an int >= 1, got 'a'"),
    (lambda: StepLR(0), "StepLR needs step_size to be an int >= 1, got 0"),
    (lambda: StepLR(2.5), "StepLR needs step_size to be an int >= 1, got 2.5"),
    (lambda: StepLR(2, gamma=0), "StepLR needs gamma to be a positive number (finite), got 0"),
    (lambda: StepLR(2, gamma=math.inf), "StepLR needs gamma to be a positive number (finite), got inf"),
    (lambda: StepLR(2, gamma="x"), "StepLR needs gamma to be a positive number (finite), got 'x'"),
    (lambda: ExponentialLR(math.inf), "ExponentialLR needs gamma to be a positive number (finite), got inf"),
    (lambda: ExponentialLR(math.nan), "ExponentialLR needs gamma to be a positive number (finite), got nan"),
    (lambda: ExponentialLR(-0.5), "ExponentialLR needs gamma to be a positive number (finite), got -0.5"),
    (lambda: ReduceLROnPlateau(factor=2), "ReduceLROnPlateau needs factor to be in (0, 1), got 2"),
    (lambda: ReduceLROnPlateau(factor=0), "ReduceLROnPlateau needs factor to be in (0, 1), got 0"),
    (lambda: ReduceLROnPlateau(factor="x"), "ReduceLROnPlateau needs factor to be in (0, 1), got 'x'"),
    (lambda: ReduceLROnPlateau(patience=-1), "ReduceLROnPlateau needs patience to be an int >= 0, got -1"),
    (lambda: ReduceLROnPlateau(patience=1.5), "ReduceLROnPlateau needs patience to be an int >= 0, got 1.5"),
    (lambda: ReduceLROnPlateau(threshold=math.nan), "ReduceLROnPlateau needs threshold to be in [0, 1), got nan"),
    (lambda: ReduceLROnPlateau(min_lr=-1), "ReduceLROnPlateau needs min_lr to be a finite number >= 0, got -1"),
])
def test_bad_scheduler_arguments_are_one_line_input_errors(make, text, refused):
    assert refused(make, text) == text


def test_schedulers_take_numpy_scalars():
    step = StepLR(np.int64(3), np.float32(0.5))
    assert (step.step_size, step.gamma) == (3, 0.5) and type(step.step_size) is int
    assert ExponentialLR(np.float32(0.5)).gamma == 0.5
    plateau = ReduceLROnPlateau(np.float64(0.5), np.int32(2), np.float32(0.0), np.float64(1e-6))
    assert (plateau.factor, plateau.patience, plateau.min_lr) == (0.5, 2, 1e-6)
    assert isinstance(make_scheduler("plateau"), ReduceLROnPlateau)
