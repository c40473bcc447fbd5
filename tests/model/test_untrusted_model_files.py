"""Loading a crafted model file is cheap and safe: a one-line ModelFileError within a few MB.

Each file below is built by hand to lie about something: a huge architecture over a tiny
array, a zip bomb, JSON nested or sized to exhaust the parser, arrays of the wrong kind or
order, extra members, truncations. Peak memory while loading is measured with ``tracemalloc``
(NumPy reports its array buffers to it), so each bound is an allocation bound, not a timing.
"""

from __future__ import annotations

import io
import json
import tracemalloc
import zipfile

import numpy as np
import pytest

from sega_core import ModelFileError, NeuralNetwork, load_model

#: What loading any crafted file may allocate at its peak.
MAX_PEAK_BYTES = 4 << 20


def npy(array: np.ndarray, *, header: dict | None = None) -> bytes:
    """``array`` as .npy bytes; ``header`` replaces fields of its header (to make it lie)."""
    out = io.BytesIO()
    fields = {"descr": np.lib.format.dtype_to_descr(array.dtype), "fortran_order": False, "shape": array.shape}
    fields.update(header or {})
    np.lib.format.write_array_header_1_0(out, fields)
    out.write(array.tobytes())
    return out.getvalue()


def write_npz(path, members: dict, compress=zipfile.ZIP_STORED) -> None:
    """An .npz whose members are given as .npy bytes (or arrays) under names without ``.npy``."""
    with zipfile.ZipFile(path, "w", compression=compress) as zf:
        for name, data in members.items():
            zf.writestr(name if name.endswith(".npy") or "." in name else f"{name}.npy",
                        data if isinstance(data, bytes) else npy(data))


def config_bytes(config) -> np.ndarray:
    return np.frombuffer(json.dumps(config).encode() if not isinstance(config, bytes) else config, np.uint8)


def model_config(units=3, inputs=4, **changes) -> dict:
    """A valid config for a one-Dense-layer model of ``inputs`` x ``units`` (float32)."""
    config = {
        "format": "sega-model", "format_version": 2, "sega_version": "0.1.0", "model_class": "NeuralNetwork",
        "dtype": "float32", "regressor": False, "standardize_target": False, "classes": None,
        "target_scaler": None, "reg_lambda": 0.0, "seed": 0, "loss": {"name": "cross_entropy"},
        "input_shape": [inputs], "layers": [{"kind": "dense", "config": {"units": units, "activation": "softmax"}}],
        "history": {}, "extra": {},
    }
    config.update(changes)
    return config


def nested(depth: int) -> list:
    """``[[...[1]...]]``, ``depth`` lists deep."""
    value: list | int = 1
    for _ in range(depth):
        value = [value]
    return value


def n_params(units=3, inputs=4) -> int:
    return inputs * units + units


def good_members(**changes) -> dict:
    return {
        "config": config_bytes(model_config(**changes)),
        "params": np.ones(n_params(), np.float32),
        "state": np.zeros(0, np.float32),
    }


@pytest.fixture
def warm(tmp_path):
    """Load a valid hand-made file once, so lazy imports do not count against the first crafted one."""
    path = tmp_path / "good.npz"
    write_npz(path, good_members())
    model = load_model(path, backend="numpy")
    assert model.params.size == n_params()
    return path


def refused(path, match: str) -> str:
    """Load ``path``: it must raise a one-line ModelFileError naming it and matching ``match``,
    without allocating more than :data:`MAX_PEAK_BYTES`; return the message."""
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError) as info:
            load_model(path, backend="numpy")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    assert "pickle" not in message
    assert match in message, message
    assert peak < MAX_PEAK_BYTES, f"loading allocated {peak / 2**20:.1f} MiB"
    return message


# ---- the architecture lies about its size ------------------------------------------------------


def test_a_huge_declared_layer_over_a_tiny_array_is_refused_before_building(tmp_path, warm):
    path = tmp_path / "huge.npz"
    members = good_members(input_shape=[4000], layers=[{"kind": "dense", "config": {"units": 4000}}])
    write_npz(path, members)
    assert path.stat().st_size < 2000
    refused(path, f"declares an architecture of {4000 * 4000 + 4000} parameters but stores an array of shape (15,)")


def test_a_declared_size_beyond_int64_is_not_wrapped_around(tmp_path, warm):
    # 2**32 x 2**32 weights: a product in int64 would wrap to 0 and match an empty array.
    path = tmp_path / "wrap.npz"
    members = good_members(input_shape=[2**32], layers=[{"kind": "dense", "config": {"units": 2**32}}])
    members["params"] = np.zeros(0, np.float32)
    write_npz(path, members)
    refused(path, f"declares an architecture of {2**64 + 2**32} parameters")


@pytest.mark.parametrize("input_shape, layers", [
    ([100, 30, 30], [{"kind": "conv2d", "config": {"filters": 100, "kernel_size": 30}},
                      {"kind": "flatten", "config": {}}, {"kind": "dense", "config": {"units": 3}}]),
    ([5, 2000], [{"kind": "rnn", "config": {"units": 2000}}, {"kind": "dense", "config": {"units": 3}}]),
    ([10**6], [{"kind": "normalization", "config": {"axis": -1, "adapted": True}}, {"kind": "dense", "config": {"units": 3}}]),
])
def test_huge_convolution_recurrent_and_statistics_layers_are_caught_the_same_way(tmp_path, warm, input_shape, layers):
    path = tmp_path / "huge.npz"
    write_npz(path, good_members(input_shape=input_shape, layers=layers))
    refused(path, "declares an architecture of")


# ---- zip bombs and lying zip directories ---------------------------------------------------------


def test_a_zip_bomb_of_a_consistent_huge_model_is_refused_without_inflating_it(tmp_path, warm):
    # 2000 x 2000 float32 zeros: 16 MB that deflate to about 16 KB.
    units = inputs = 2000
    path = tmp_path / "bomb.npz"
    members = good_members(input_shape=[inputs], layers=[{"kind": "dense", "config": {"units": units}}])
    members["params"] = np.zeros(n_params(units, inputs), np.float32)
    write_npz(path, members, compress=zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 100_000
    refused(path, "would expand from")


def test_a_header_announcing_more_data_than_the_member_holds(tmp_path, warm):
    path = tmp_path / "liar.npz"
    members = good_members()
    members["params"] = npy(np.ones(n_params(), np.float32), header={"shape": (10**12,)})
    write_npz(path, members)
    refused(path, "declares 4000000000000 bytes of data")


def test_a_stored_member_declaring_two_sizes(tmp_path, warm):
    path = tmp_path / "sizes.npz"
    write_npz(path, good_members())
    raw = bytearray(path.read_bytes())
    # The central directory's entry for params.npy: its uncompressed size is at offset 24.
    entry = raw.index(b"PK\x01\x02", raw.index(b"PK\x01\x02") + 1)
    assert raw[entry + 46: entry + 56] == b"params.npy"
    raw[entry + 24: entry + 28] = (10**8).to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    refused(path, "declares two different sizes")


# ---- the JSON config -----------------------------------------------------------------------------


@pytest.mark.parametrize("doc", [
    b"[" * 100_000 + b"]" * 100_000,
    json.dumps(model_config(extra={"x": nested(33)})).encode(),
    b"[" + b",".join([b"[]"] * 50_000) + b"]",
    b"{" * 300_000,
])
def test_deeply_nested_or_branchy_json_is_refused_before_parsing(tmp_path, warm, doc):
    path = tmp_path / "nested.npz"
    members = good_members()
    members["config"] = np.frombuffer(doc, np.uint8)
    write_npz(path, members)
    message = refused(path, "config")
    assert "nests more than 32 levels" in message or "unbalanced" in message


def test_brackets_inside_json_strings_are_not_structure(tmp_path, warm):
    path = tmp_path / "strings.npz"
    members = good_members(extra={"note": "[[[[{{{{ \" ]]]] }}" * 100})
    write_npz(path, members)
    assert load_model(path, backend="numpy").extra_config["note"].startswith("[[[[{{{{")


def test_a_huge_json_config_is_refused_from_its_header(tmp_path, warm):
    path = tmp_path / "bigjson.npz"
    members = good_members()
    members["config"] = np.frombuffer(json.dumps(model_config(extra={"pad": " " * (2 << 20)})).encode(), np.uint8)
    write_npz(path, members)
    refused(path, "more than the 1048576 allowed")


def test_a_deflated_huge_json_config_is_refused_as_a_bomb(tmp_path, warm):
    path = tmp_path / "bigjson-bomb.npz"
    members = good_members()
    members["config"] = np.frombuffer(json.dumps(model_config(extra={"pad": " " * (64 << 20)})).encode(), np.uint8)
    write_npz(path, members, compress=zipfile.ZIP_DEFLATED)
    del members
    refused(path, "would expand from")


# ---- arrays of the wrong kind ----------------------------------------------------------------------


@pytest.mark.parametrize("member", ["config", "params"])
def test_object_arrays_are_refused_without_unpickling(tmp_path, warm, member):
    path = tmp_path / "objects.npz"
    members = good_members()
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    members[member] = buffer.getvalue()
    write_npz(path, members)
    refused(path, f"member {member!r} holds Python objects")


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.float16, np.complex64])
def test_parameters_of_another_dtype_are_refused(tmp_path, warm, dtype):
    path = tmp_path / "dtype.npz"
    members = good_members()
    members["params"] = np.ones(n_params(), dtype)
    write_npz(path, members)
    refused(path, f"holds {np.dtype(dtype)} values where float32 is expected")


def test_fortran_order_is_refused(tmp_path, warm):
    path = tmp_path / "fortran.npz"
    members = good_members()
    members["params"] = npy(np.ones(n_params(), np.float32), header={"fortran_order": True})
    write_npz(path, members)
    refused(path, "Fortran order")


def test_a_two_dimensional_parameter_array_is_refused(tmp_path, warm):
    path = tmp_path / "2d.npz"
    members = good_members()
    members["params"] = np.ones((n_params(), 1), np.float32)
    write_npz(path, members)
    refused(path, "stores an array of shape (15, 1)")


def test_big_endian_parameters_load(tmp_path, warm):
    path = tmp_path / "be.npz"
    members = good_members()
    members["params"] = np.arange(n_params(), dtype=">f4")
    write_npz(path, members)
    model = load_model(path, backend="numpy")
    np.testing.assert_array_equal(model.params.host_copy(), np.arange(n_params(), dtype=np.float32))


def test_an_oversized_npy_header_is_refused_unread(tmp_path, warm):
    path = tmp_path / "header.npz"
    members = good_members()
    raw = bytearray(npy(members["params"]))
    raw[8:10] = (60_000).to_bytes(2, "little")  # header length field of a version 1.0 .npy
    members["params"] = bytes(raw) + b" " * 60_000
    write_npz(path, members)
    refused(path, "header of 60000 bytes")


@pytest.mark.parametrize("header", [b"{'descr': '<f4', 'fortran_order': False, 'shape': (-15,), }",
                                    b"not a dict at all", b"{'descr': 'O', 'fortran_order': False, 'shape': (15,), }"])
def test_malformed_npy_headers_are_refused(tmp_path, warm, header):
    path = tmp_path / "malformed.npz"
    members = good_members()
    padded = header + b" " * (118 - len(header)) + b"\n"
    members["params"] = b"\x93NUMPY\x01\x00" + len(padded).to_bytes(2, "little") + padded + bytes(60)
    write_npz(path, members)
    refused(path, "member 'params'")


# ---- the archive's directory ----------------------------------------------------------------------


@pytest.mark.parametrize("extra", ["evil.npy", "../../outside.npy", "config.json", "params.npy/x"])
def test_unexpected_members_are_refused(tmp_path, warm, extra):
    path = tmp_path / "extra.npz"
    members = good_members()
    members[extra] = np.ones(3)
    write_npz(path, members)
    refused(path, "unexpected member")


def test_a_missing_member_is_named(tmp_path, warm):
    path = tmp_path / "missing.npz"
    members = good_members()
    del members["params"]
    write_npz(path, members)
    refused(path, "lacks the member(s) 'params'")


def test_missing_state_for_an_architecture_that_needs_it(tmp_path, warm):
    path = tmp_path / "nostate.npz"
    members = good_members(layers=[{"kind": "normalization", "config": {"axis": -1, "adapted": True}},
                                   {"kind": "dense", "config": {"units": 3}}])
    del members["state"]
    write_npz(path, members)
    refused(path, "lacks the statistics (state)")


def test_every_truncation_of_a_real_model_file_is_refused(tmp_path, warm):
    model = NeuralNetwork([4, 6, 3], backend="numpy", seed=0)
    source = tmp_path / "real.npz"
    model.save(source)
    raw = source.read_bytes()
    path = tmp_path / "cut.npz"
    for cut in sorted({1, 10, 30, 100, len(raw) // 3, len(raw) // 2, len(raw) - 100, len(raw) - 22, len(raw) - 1}):
        path.write_bytes(raw[:cut])
        refused(path, "is not a sega model file or is corrupt")


def test_a_valid_file_still_round_trips_within_the_bound(tmp_path, warm):
    model = NeuralNetwork([4, 6, 3], backend="numpy", seed=0)
    path = tmp_path / "real.npz"
    model.save(path)
    tracemalloc.start()
    try:
        loaded = load_model(path, backend="numpy")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(loaded.params.host_copy(), model.params.host_copy())
    assert peak < MAX_PEAK_BYTES


# ---- the history and labels sections --------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"history_meta": [1]}, "invalid history section: history and history_meta must be mappings"),
        ({"history_meta": {"epochs": "abc"}}, "invalid history section: epochs must be a count"),
        ({"history_meta": {"epochs": 2, "best_epoch": "x"}}, "best_epoch must be an epoch number"),
        ({"history": "abc"}, "invalid history section: history and history_meta must be mappings"),
        ({"history": {"loss": [1, "a"]}}, "history 'loss' is not a list of numbers"),
        ({"extra": [1]}, "invalid history section: extra is a list"),
        ({"classes": ["a", "b", "c", "d"]}, "invalid architecture section: 4 class labels for a model of 3 classes"),
        ({"classes": ["c", "a", "b"]}, "the class labels are not sorted and distinct"),
        ({"classes": [1, 2, 3], "classes_dtype": "|O"}, "classes_dtype must name a boolean, integer, float or text"),
        ({"classes": [1, 2, 300], "classes_dtype": "|u1"}, "do not fit classes_dtype '|u1'"),
        ({"classes": ["a", "b", "long"], "classes_dtype": "<U1"}, "do not fit classes_dtype '<U1'"),
        ({"classes": [1, 2, 3], "classes_dtype": "not a dtype"}, "invalid architecture section"),
    ],
    ids=["meta-list", "meta-epochs", "meta-best", "history-text", "history-values", "extra-list", "classes-count",
         "classes-order", "classes-object", "classes-overflow", "classes-truncated", "classes-dtype-text"],
)
def test_damaged_history_and_labels_are_refused_in_one_line(tmp_path, warm, changes, match):
    path = tmp_path / "model.npz"
    write_npz(path, good_members(**changes))
    refused(path, match)
