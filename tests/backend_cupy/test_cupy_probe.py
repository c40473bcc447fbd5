"""The cupy backend's availability probe, driven with fake importlib and fake CUDA drivers."""

from __future__ import annotations

import ctypes

import pytest

from sega_backend_cupy import probe


class FakeDriver:
    """Stands in for ctypes.CDLL("libcuda.so.1"): cuInit and cuDeviceGetCount return CUresult."""

    def __init__(self, init_status=0, count=1, count_status=0):
        self.init_status, self.count, self.count_status = init_status, count, count_status
        self.calls = []

    def cuInit(self, flags):  # noqa: N802 (the driver's name)
        self.calls.append(("cuInit", flags))
        return self.init_status

    def cuDeviceGetCount(self, pointer):  # noqa: N802
        self.calls.append(("cuDeviceGetCount",))
        pointer.contents.value = self.count
        return self.count_status


def loader_for(driver):
    """A fake ctypes.CDLL that returns ``driver`` for the CUDA driver's name."""
    seen = []

    def load(name):
        seen.append(name)
        if driver is None:
            raise OSError(f"{name}: cannot open shared object file: No such file or directory")
        return driver

    load.seen = seen
    return load


def found(name):
    return object()  # what importlib.util.find_spec returns for an installed package: not None


def missing(name):
    return None


def test_cupy_missing_is_reported_first_and_names_the_wheel():
    driver = FakeDriver()
    reason = probe.unavailable_reason(find_spec=missing, load_library=loader_for(driver))
    assert reason == probe.CUPY_MISSING
    assert reason.startswith("cupy is not installed")
    assert "pip install cupy-cuda12x" in reason and "cupy-cuda13x" in reason
    assert driver.calls == []  # no driver probing when cupy is absent


def test_find_spec_errors_count_as_missing():
    def broken(name):
        raise ValueError("cupy.__spec__ is None")

    assert probe.unavailable_reason(find_spec=broken, load_library=loader_for(FakeDriver())) == probe.CUPY_MISSING


def test_no_driver_library():
    load = loader_for(None)
    reason = probe.unavailable_reason(find_spec=found, load_library=load)
    assert reason == probe.NO_DRIVER
    assert reason.startswith("no CUDA driver")
    assert probe.DRIVER_LIBRARY in reason
    assert load.seen == [probe.DRIVER_LIBRARY]


def test_zero_devices():
    driver = FakeDriver(count=0)
    assert probe.unavailable_reason(find_spec=found, load_library=loader_for(driver)) == "no CUDA device found"
    assert driver.calls == [("cuInit", 0), ("cuDeviceGetCount",)]


def test_cuinit_no_device_error_means_no_device():
    # CUDA_VISIBLE_DEVICES="" makes cuInit fail with CUDA_ERROR_NO_DEVICE (100).
    driver = FakeDriver(init_status=100)
    assert probe.unavailable_reason(find_spec=found, load_library=loader_for(driver)) == probe.NO_DEVICE
    assert driver.calls == [("cuInit", 0)]


def test_other_cuinit_errors_are_named():
    reason = probe.cuda_device_problem(load_library=loader_for(FakeDriver(init_status=35)))
    assert "cuInit returned error 35" in reason and "CUDA_ERROR_INSUFFICIENT_DRIVER" in reason
    reason = probe.cuda_device_problem(load_library=loader_for(FakeDriver(init_status=12345)))
    assert "cuInit returned error 12345" in reason


def test_device_count_failure():
    reason = probe.cuda_device_problem(load_library=loader_for(FakeDriver(count_status=3)))
    assert "cuDeviceGetCount returned error 3" in reason


def test_driver_without_the_entry_points():
    class Empty:
        pass

    reason = probe.cuda_device_problem(load_library=loader_for(Empty()))
    assert "lacks cuInit" in reason


def test_a_raising_driver_never_escapes():
    class Exploding(FakeDriver):
        def cuInit(self, flags):  # noqa: N802
            raise ctypes.ArgumentError("bad call")

    reason = probe.cuda_device_problem(load_library=loader_for(Exploding()))
    assert reason.startswith("the CUDA driver probe failed: ArgumentError")


@pytest.mark.parametrize("count", [1, 8])
def test_devices_present_means_available(count):
    assert probe.unavailable_reason(find_spec=found, load_library=loader_for(FakeDriver(count=count))) is None


def test_real_probe_returns_a_string_or_none():
    reason = probe.unavailable_reason()
    assert reason is None or (isinstance(reason, str) and reason)
