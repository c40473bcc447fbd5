"""The validators of NeuralNetwork's constructor arguments: one-line InputErrors, NumPy scalars
accepted, and a memory check that says how much a model would need."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sega_core.nn import validation
from sega_core.nn.validation import (
    check_dropout_rate,
    check_input_shape,
    check_model_memory,
    check_reg_lambda,
    check_seed,
    physical_memory,
)

GiB = 1 << 30



@pytest.mark.parametrize("value", ["abc", "0.5", None, True, -0.1, 1, 1.5, math.nan, math.inf, [0.5]])
def test_dropout_rate_refusals(value, refused):
    assert refused(lambda: check_dropout_rate(value), "dropout_rate must be in [0, 1)") == \
        f"dropout_rate must be in [0, 1), got {value!r}"


@pytest.mark.parametrize("value", [0, 0.0, 0.5, np.float32(0.25), np.float64(0.999), np.int8(0)])
def test_dropout_rate_accepts_numbers(value):
    result = check_dropout_rate(value)
    assert type(result) is float and result == float(value)


@pytest.mark.parametrize("value", [-1, np.int64(-1), 1.0, 2.5, "3", True, np.bool_(False), math.nan])
def test_seed_refusals(value, refused):
    refused(lambda: check_seed(value), f"seed must be an int >= 0, got {value!r}")


@pytest.mark.parametrize("value, expected", [(None, None), (0, 0), (7, 7), (np.int64(2**40), 2**40), (np.uint32(5), 5)])
def test_seed_accepts_none_and_ints(value, expected):
    result = check_seed(value)
    assert result == expected and (result is None or type(result) is int)


@pytest.mark.parametrize("value", [(-1,), (0,), (3, 0), (), [], None, 5, "64", (2.0,), (True,), (3, "4"), {"a": 1}])
def test_input_shape_refusals(value, refused):
    refused(lambda: check_input_shape(value), f"input_shape must be a tuple of ints >= 1 (the shape of one sample, e.g. (64,)), got {value!r}")


@pytest.mark.parametrize("value, expected", [((64,), (64,)), ([1, 28, 28], (1, 28, 28)), (np.array([3, 4]), (3, 4)),
                                             ((np.int64(5),), (5,))])
def test_input_shape_accepts_positive_ints(value, expected):
    result = check_input_shape(value)
    assert result == expected and all(type(s) is int for s in result)


@pytest.mark.parametrize("value", [-0.1, math.nan, math.inf, "0.1", None, True, np.float32(-1)])
def test_reg_lambda_refusals(value, refused):
    refused(lambda: check_reg_lambda(value), f"reg_lambda must be a finite number >= 0, got {value!r}")


@pytest.mark.parametrize("value", [0, 0.01, np.float32(0.1), np.float64(2), np.int32(1)])
def test_reg_lambda_accepts_numpy_scalars(value):
    assert check_reg_lambda(value) == pytest.approx(float(value))


def test_names_can_be_given_for_other_arguments(refused):
    refused(lambda: check_dropout_rate(2, name="rate"), "rate must be in [0, 1), got 2")
    refused(lambda: check_input_shape((0,), name="shape"), "shape must be a tuple")


# ---- memory -----------------------------------------------------------------------------------


def test_a_model_that_cannot_fit_says_how_much_memory_it_needs(refused):
    # NeuralNetwork([10**5, 10**5, 10]): 10**10 weights, 10**5 + 10 biases, 10**6 output weights.
    n = 10**5 * 10**5 + 10**5 + 10**5 * 10 + 10
    message = refused(lambda: check_model_memory(n, "float32", available=16 * GiB), "this model has 10,001,100,010 parameters")
    assert "37.3 GiB of float32 for the weights alone" in message
    assert "74.5 GiB with their gradients" in message and "149.0 GiB to train with Adam" in message
    assert "this machine has 16.0 GiB of memory" in message and "use fewer or smaller layers" in message


def test_float64_needs_twice_as_much(refused):
    check_model_memory(10**9, "float32", available=8 * GiB)  # 7.5 GiB with gradients: fits
    refused(lambda: check_model_memory(10**9, "float64", available=8 * GiB), "7.5 GiB of float64 for the weights alone")


def test_the_machines_memory_is_the_default(monkeypatch, refused):
    monkeypatch.setattr(validation, "physical_memory", lambda: 4 * GiB)
    check_model_memory(10**8, np.float32)  # 0.7 GiB with gradients
    refused(lambda: check_model_memory(10**9, np.float32), "this machine has 4.0 GiB of memory")
    monkeypatch.setattr(validation, "physical_memory", lambda: None)
    check_model_memory(10**12, "float32")  # memory unknown: nothing is refused


def test_physical_memory_is_read_from_the_os_where_it_can_be():
    memory = physical_memory()
    assert memory is None or memory > 64 * 2**20


def test_a_bad_dtype_is_refused_as_usual(refused):
    refused(lambda: check_model_memory(10, "int8", available=GiB), "dtype must be 'float32' or 'float64'")
