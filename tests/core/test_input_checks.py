"""Data NumPy would turn into floats silently and wrongly is refused with a one-line InputError:
complex numbers, dates and durations, numbers written as text, and values a float32 model would
turn into infinity."""

from __future__ import annotations

import numpy as np
import pytest

from sega_core import InputError, NeuralNetwork
from sega_core.nn.validation import (
    check_classification_targets,
    check_features,
    check_float_range,
    check_regression_targets,
)

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
rng = np.random.default_rng(0)
X = rng.normal(size=(6, 2))
Y = np.arange(6) % 2



@pytest.mark.parametrize("data", [X + 1j, X.astype(np.complex64), np.array([[1, 2], [3, 4]], dtype=object) + 0j])
def test_complex_features_are_refused(data, refused):
    refused(lambda: check_features(data, F32), "X holds complex numbers", "complex data not supported")


@pytest.mark.parametrize("data", [
    np.array([["2024-01-01", "2024-01-02"]] * 3, dtype="datetime64[D]"),
    np.array([[1, 2]] * 3, dtype="timedelta64[s]"),
])
def test_dates_and_durations_are_refused(data, refused):
    refused(lambda: check_features(data, F32), "X holds dates or durations", "convert them to numbers first")


@pytest.mark.parametrize("data", [
    np.array([["1.0", "2"], ["3", "4e0"]]),
    np.array([[b"1.0", b"2"], [b"3", b"4"]]),
    np.array([["1.0", 2.0], [3.0, 4.0]], dtype=object),
])
def test_numbers_written_as_text_are_refused(data, refused):
    refused(lambda: check_features(data, F32), "X holds text", "must be numeric", "X.astype(float)")


def test_objects_holding_numbers_and_bools_are_still_converted():
    assert check_features(np.array([[1, 2.5], [3, 4]], dtype=object), F32).dtype == F32
    out = check_features(np.array([[True, False], [False, True]]), F64)
    np.testing.assert_array_equal(out, [[1.0, 0.0], [0.0, 1.0]])


@pytest.mark.parametrize("big", [1e39, -3.5e38, 1e300])
def test_values_beyond_float32_are_refused_for_a_float32_model(big, refused):
    data = X.copy()
    data[2, 1] = big
    message = refused(lambda: check_features(data, F32), "beyond float32's range", 'dtype="float64"', "scale the data")
    assert f"{abs(big):.3g}" in message
    np.testing.assert_array_equal(check_features(data, F64), data)  # a float64 model takes them


def test_float32_range_edges():
    limit = float(np.finfo(np.float32).max)
    check_float_range(np.array([limit, -limit]), F32)  # the largest float32 is fine
    check_float_range(np.array([1e300], dtype=np.float64), F64)
    check_float_range(np.array([2**62], dtype=np.int64), F32)  # ints never exceed float32's range
    with pytest.raises(InputError):
        check_float_range(np.array([np.nextafter(limit, np.inf, dtype=np.float64) * 1.0001]), F32)


def test_regression_targets_get_the_same_checks(refused):
    refused(lambda: check_regression_targets(Y + 1j, 1, F32), "y holds complex numbers")
    refused(lambda: check_regression_targets(np.array([1e39, 1.0]), 1, F32), "y holds values up to 1e+39", "beyond float32's range")
    refused(lambda: check_regression_targets(np.array([1, 2], dtype="timedelta64[s]"), 1, F32), "y holds dates or durations")
    assert check_regression_targets(np.array([1e39, 1.0]), 1, F64).shape == (2, 1)


def test_classification_targets_get_the_same_checks(refused):
    refused(lambda: check_classification_targets(Y + 0j, 2, "cross_entropy", F32), "y holds complex numbers")
    refused(lambda: check_classification_targets(np.array(["0", "1"]), 2, "cross_entropy", F32), "y holds text")


def test_through_the_model(refused):
    model = NeuralNetwork([2, 3, 2], backend="numpy", seed=0)
    refused(lambda: model.train(X + 1j, Y, epochs=1, progress=False), "complex data not supported")
    refused(lambda: model.train(X.astype(str), Y, epochs=1, progress=False), "X holds text")
    big = X.copy()
    big[0, 0] = 1e39
    refused(lambda: model.train(big, Y, epochs=1, progress=False), "beyond float32's range")
    model.train(X > 0, Y, epochs=1, progress=False)  # bools are features like any other
    refused(lambda: model.predict(big), "beyond float32's range")
