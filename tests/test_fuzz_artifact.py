"""Fuzzing the model.skc loader with Hypothesis.

Valid archives (from golden/random.py) are mutated: header.json fields replaced by arbitrary JSON
or deleted, arrays replaced by other dtypes, shapes and values, .npy headers that claim huge
shapes, truncated or corrupted members, truncated or bit-flipped archives. The rule: ``load``
either returns an artifact that ``validate`` accepts (with int64 arrays), or raises ArtifactError
with a one-line message. Any other exception (MemoryError, TypeError, zlib.error...) fails.
"""
from __future__ import annotations

import functools
import io
import json
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skipcore.golden import artifact as A
from skipcore.golden.random import random_artifact

FAST = settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
LONG = settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))

HEADER_FIELDS = [
    ("format",), ("version",), ("input",), ("input", "channels"), ("input", "kind"), ("input", "bits"),
    ("input", "frac_bits"), ("widths",), ("widths", "weight_bits"), ("widths", "state_bits"),
    ("widths", "readout_bits"), ("widths", "decay_bits"), ("widths", "trace_bits"), ("layers",), ("layers", 0), ("layers", 0, "kind"),
    ("layers", 0, "neurons"), ("layers", 0, "span"), ("layers", 0, "input_shift"), ("layers", 0, "decay_mode"),
    ("layers", 0, "reset"), ("readout",), ("readout", "kind"), ("readout", "mode"), ("readout", "classes"),
    ("readout", "decay_mode"), ("readout", "skip_steps"), ("provenance",),
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.sampled_from([0, 1, 2, 8, 16, 2**20, 2**31])
    | st.floats(allow_nan=True) | st.text(max_size=8) | st.sampled_from(["lif", "alif", "sum", "leaky", "mult",
                                                                        "shift", "real", "spike", "count"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=6,
)

DTYPES = ["<i8", ">i8", "<i4", "|i1", "<u2", "<u8", "|u1", "|b1", "<f4", "<f8", "<c8", "<U2", "|S3", "<M8[s]"]


def base_archive(seed: int) -> tuple[dict, dict[str, bytes]]:
    """A small valid artifact as (header dict, {member name: bytes}), fresh copies each call."""
    header, members = _base_archive(seed)
    return json.loads(header), dict(members)


@functools.lru_cache(maxsize=None)
def _base_archive(seed: int) -> tuple[str, dict[str, bytes]]:
    rng = np.random.default_rng(seed)
    art = random_artifact(rng, layer_sizes=[int(rng.integers(1, 5)) for _ in range(int(rng.integers(1, 3)))],
                          channels=int(rng.integers(1, 4)), classes=int(rng.integers(2, 4)))
    buf = io.BytesIO()
    with tempfile.TemporaryDirectory() as tmp:
        path = A.save(art, Path(tmp) / "m.skc")
        buf.write(path.read_bytes())
    with zipfile.ZipFile(buf) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    return members.pop("header.json").decode(), members


def npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def npy_claiming(dtype: str, shape: tuple, data: bytes) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue() + data


def set_path(obj, path, value, delete: bool) -> None:
    for key in path[:-1]:
        if isinstance(obj, dict) and key in obj:
            obj = obj[key]
        elif isinstance(obj, list) and isinstance(key, int) and key < len(obj):
            obj = obj[key]
        else:
            return
    last = path[-1]
    if isinstance(obj, dict) or (isinstance(obj, list) and isinstance(last, int) and last < len(obj)):
        if delete and isinstance(obj, dict):
            obj.pop(last, None)
        else:
            obj[last] = value


@st.composite
def random_array(draw) -> bytes:
    dtype = draw(st.sampled_from(DTYPES))
    shape = tuple(draw(st.lists(st.integers(0, 5), min_size=0, max_size=3)))
    if draw(st.integers(0, 5)) == 0:  # a header that claims far more than it holds
        huge = tuple(draw(st.lists(st.integers(0, 2**40), min_size=1, max_size=3)))
        return npy_claiming(dtype, huge, draw(st.binary(max_size=64)))
    n = int(np.prod(shape))
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(np.dtype(dtype))
        values = draw(st.lists(st.integers(int(info.min), int(info.max)) | st.integers(max(int(info.min), -3), min(int(info.max), 3)), min_size=n, max_size=n))
        arr = np.array(values, dtype=dtype).reshape(shape)
    elif np.dtype(dtype).kind in "fc":
        values = draw(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=n, max_size=n))
        arr = np.array(values, dtype=dtype).reshape(shape)
    else:
        arr = np.zeros(shape, dtype=dtype)
    return npy(arr)


@st.composite
def mutated_archive(draw) -> bytes:
    header, members = base_archive(draw(st.integers(0, 40)))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["header", "array", "member", "drop", "extra", "raw_header"]))
        if kind == "header":
            path = draw(st.sampled_from(HEADER_FIELDS))
            set_path(header, path, draw(json_values), delete=draw(st.booleans()))
        elif kind == "array":
            members[draw(st.sampled_from(sorted(members)))] = draw(random_array())
        elif kind == "member":  # truncate or corrupt one member's bytes
            name = draw(st.sampled_from(sorted(members)))
            data = bytearray(members[name])
            cut = draw(st.integers(0, len(data)))
            if draw(st.booleans()):
                data = data[:cut]
            elif data:
                data[min(cut, len(data) - 1)] ^= draw(st.integers(1, 255))
            members[name] = bytes(data)
        elif kind == "drop":
            members.pop(draw(st.sampled_from(sorted(members))), None)
        elif kind == "extra":
            members[draw(st.sampled_from(["arrays/layers.0.w_rec.npy", "arrays/layers.5.bias.npy",
                                          "arrays/readout.decay.npy", "arrays/junk.npy", "junk"]))] = draw(random_array())
        else:
            header = draw(json_values)
    raw_header = json.dumps(header).encode() if draw(st.integers(0, 9)) else draw(st.binary(max_size=40))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))) as zf:
        zf.writestr("header.json", raw_header)
        for name, data in members.items():
            zf.writestr(name, data)
    data = bytearray(buf.getvalue())
    damage = draw(st.integers(0, 9))
    if damage == 0:
        data = data[: draw(st.integers(0, len(data)))]
    elif damage == 1:
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
    return bytes(data)


def check_rule(data: bytes) -> A.Artifact | None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.skc"
        path.write_bytes(data)
        try:
            art = A.load(path)
        except A.ArtifactError as exc:
            message = str(exc)
            assert message and "\n" not in message, repr(message)
            return None
    art.validate()  # nothing accepted that validate would refuse
    for spec in (*art.layers, art.readout):
        for name, value in spec.arrays().items():
            assert value.dtype == np.int64, name
    return art


@FAST
@given(mutated_archive())
def test_mutated_archives(data):
    check_rule(data)


@FAST
@given(st.binary(max_size=400))
def test_arbitrary_bytes(data):
    check_rule(data)


@pytest.mark.slow
@LONG
@given(mutated_archive())
def test_mutated_archives_long(data):
    check_rule(data)


def test_unmutated_archives_still_load():
    """The fuzz bases are valid: the rule is not passing because everything is refused."""
    for seed in range(41):
        header, members = base_archive(seed)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("header.json", json.dumps(header))
            for name, data in members.items():
                zf.writestr(name, data)
        assert isinstance(check_rule(buf.getvalue()), A.Artifact)
