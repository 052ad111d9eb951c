"""Fuzzing the user .npz dataset loader with Hypothesis.

Valid archives are mutated: x, y, x_test, y_test, classes and skip_steps replaced by other dtypes,
shapes and values (NaN, inf, negative or fractional labels, values beyond float32), members whose
.npy header claims huge shapes, truncated or corrupted members and archives, arbitrary bytes.
The rule: ``load_dataset("npz", path)`` either returns a dataset whose arrays keep every promise
of the format (finite float32 x of shape (N, T, C), int64 labels in [0, classes)), or raises
DatasetError with a one-line message. Any other exception fails.
"""
from __future__ import annotations

import io
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skipcore.datasets import Dataset, load_dataset
from skipcore.errors import DatasetError

FAST = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
LONG = settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))

KEYS = ["x", "y", "x_test", "y_test", "classes", "skip_steps"]
DTYPES = ["<f4", "<f8", "<f2", "<i8", "|u1", "<u8", "|b1", "<c8", "<U2", "<M8[s]"]


def npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


@st.composite
def valid_members(draw) -> dict[str, np.ndarray]:
    n, steps, channels = draw(st.integers(3, 8)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
    classes = draw(st.integers(1, 4))
    per_step = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 1000)))
    members = {"x": rng.normal(size=(n, steps, channels)).astype(draw(st.sampled_from(["<f4", "<f8"]))),
               "y": rng.integers(0, classes, size=(n, steps) if per_step else n)}
    if draw(st.booleans()):
        m = draw(st.integers(1, 4))
        members["x_test"] = rng.integers(0, 2, size=(m, steps, channels)).astype(np.float32)
        members["y_test"] = rng.integers(0, classes, size=(m, steps) if per_step else m)
    if draw(st.booleans()):
        members["classes"] = np.array(classes)
    if per_step and draw(st.booleans()):
        members["skip_steps"] = np.array(draw(st.integers(0, steps - 1)))
    return members


@st.composite
def random_array(draw) -> bytes:
    dtype = draw(st.sampled_from(DTYPES))
    if draw(st.integers(0, 5)) == 0:  # a header that claims far more than the member holds
        shape = tuple(draw(st.lists(st.integers(0, 2**40), min_size=1, max_size=3)))
        head = io.BytesIO()
        np.lib.format.write_array_header_1_0(head, {"descr": dtype, "fortran_order": False, "shape": shape})
        return head.getvalue() + draw(st.binary(max_size=64))
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=0, max_size=3)))
    n = int(np.prod(shape))
    kind = np.dtype(dtype).kind
    if kind == "f" or kind == "c":
        values = draw(st.lists(st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, 1.0, 2.5, 1e300]),
                               min_size=n, max_size=n))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # float64 -> float16 overflow
            arr = np.array(values, dtype=np.float64).astype(dtype)
    elif kind in "iu":
        info = np.iinfo(np.dtype(dtype))
        values = draw(st.lists(st.integers(int(info.min), int(info.max)) | st.integers(max(int(info.min), -2), 3),
                               min_size=n, max_size=n))
        arr = np.array(values, dtype=dtype)
    else:
        arr = np.zeros(n, dtype=dtype)
    return npy(arr.reshape(shape))


@st.composite
def mutated_npz(draw) -> bytes:
    arrays = draw(valid_members())
    # values and dtypes changed in place, shapes kept: these reach the value checks
    for _ in range(draw(st.integers(0, 2))):
        key = draw(st.sampled_from(sorted(arrays)))
        arr = arrays[key]
        if draw(st.booleans()):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                arrays[key] = arr.astype(draw(st.sampled_from(["<f2", "<f8", "<i8", "|u1", "<u8", "|b1", "|i1"])))
        elif arr.size:
            arr = arr.astype(np.float64)
            arr.flat[draw(st.integers(0, arr.size - 1))] = draw(st.sampled_from(
                [np.nan, np.inf, -np.inf, 1e300, -1e300, -1.0, 2.5, 1e6, 2.0**63, -(2.0**63)]))
            arrays[key] = arr
    members = {f"{k}.npy": npy(v) for k, v in arrays.items()}
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["replace", "corrupt", "drop", "extra"]))
        if action == "replace":
            members[f"{draw(st.sampled_from(KEYS))}.npy"] = draw(random_array())
        elif action == "corrupt" and members:
            name = draw(st.sampled_from(sorted(members)))
            data = bytearray(members[name])
            cut = draw(st.integers(0, len(data)))
            if draw(st.booleans()):
                data = data[:cut]
            elif data:
                data[min(cut, len(data) - 1)] ^= draw(st.integers(1, 255))
            members[name] = bytes(data)
        elif action == "drop" and members:
            members.pop(draw(st.sampled_from(sorted(members))))
        elif action == "extra":
            members[draw(st.sampled_from(["other.npy", "x", "notes.txt"]))] = draw(random_array())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    data = bytearray(buf.getvalue())
    damage = draw(st.integers(0, 9))
    if damage == 0:
        data = data[: draw(st.integers(0, len(data)))]
    elif damage == 1 and data:
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
    return bytes(data)


def check_rule(data: bytes) -> Dataset | None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.npz"
        path.write_bytes(data)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # unknown keys are reported as warnings
                dataset = load_dataset("npz", path, val_fraction=0.0)
        except DatasetError as exc:
            message = str(exc)
            assert message and "\n" not in message, repr(message)
            return None
    info = dataset.info
    for name in ("train", "val", "test"):
        split = getattr(dataset, name)
        assert split.x.dtype == np.float32 and split.x.shape[1:] == (info.steps, info.channels)
        assert np.isfinite(split.x).all(), f"{name}: non-finite inputs accepted"
        assert split.y.dtype == np.int64 and split.y.ndim == (2 if info.per_step else 1)
        if split.y.size:
            assert 0 <= split.y.min() and split.y.max() < info.classes, f"{name}: label out of range"
    assert 0 <= info.skip_steps < info.steps
    return dataset


@FAST
@given(mutated_npz())
def test_mutated_npz(data):
    check_rule(data)


@FAST
@given(st.binary(max_size=300))
def test_arbitrary_bytes(data):
    check_rule(data)


@pytest.mark.slow
@LONG
@given(mutated_npz())
def test_mutated_npz_long(data):
    check_rule(data)


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(valid_members())
def test_unmutated_archives_load(members):
    """The fuzz bases are valid: the rule is not passing because everything is refused."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for key, value in members.items():
            zf.writestr(f"{key}.npy", npy(value))
    assert isinstance(check_rule(buf.getvalue()), Dataset)
