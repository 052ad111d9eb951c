"""The quantized model artifact ``model.skc``: one versioned file, never a pickle.

Layout: a zip archive holding ``header.json`` (format, version, topology, widths, spans, modes,
provenance) and one ``.npy`` file per integer array under ``arrays/`` (read back with
``allow_pickle=False``). Loading checks everything against the schema and the value ranges of
``golden/CONTRACT.md``; any inconsistency raises :class:`ArtifactError` naming the field. Each
array's dtype (integers only), shape (the one header.json's topology implies) and size (within the
zip entry and ``MAX_ARRAY_BYTES``) are checked from its .npy header before its data is read.

Saving then loading gives back an equal :class:`Artifact` (``a == load(save(a))``).
"""
from __future__ import annotations

import io
import json
import math
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from skipcore.errors import SkipcoreError

FORMAT = "skipcore-model"
VERSION = 1

NEURON_KINDS = ("lif", "alif")
INPUT_KINDS = ("spike", "count", "real")
READOUT_KINDS = ("sum", "leaky")
READOUT_MODES = ("sequence", "per_step")
DECAY_MODES = ("mult", "shift")
RESETS = ("soft", "hard")

WIDTH_LIMITS = {
    "weight_bits": (2, 16),
    "state_bits": (8, 32),
    "readout_bits": (8, 40),
    "decay_bits": (1, 16),
}


class ArtifactError(SkipcoreError, ValueError):
    """A model.skc file (or an Artifact object) is malformed; the message names the field."""


@dataclass(frozen=True)
class Widths:
    """Global bit widths of the contract (section 1)."""

    weight_bits: int = 8
    state_bits: int = 16
    readout_bits: int = 24
    decay_bits: int = 8


@dataclass(frozen=True)
class InputSpec:
    """How float inputs become integers (section 2)."""

    channels: int
    kind: str = "real"
    bits: int = 8
    frac_bits: int = 0

    @property
    def max_abs(self) -> int:
        """Largest |x_int| an input can take."""
        if self.kind == "spike":
            return 1
        if self.kind == "count":
            return 2**self.bits - 1
        return 2 ** (self.bits - 1)

    @property
    def range(self) -> tuple[int, int]:
        if self.kind == "spike":
            return 0, 1
        if self.kind == "count":
            return 0, 2**self.bits - 1
        return -(2 ** (self.bits - 1)), 2 ** (self.bits - 1) - 1


def _arr_eq(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and bool(np.array_equal(a, b))


@dataclass(eq=False)
class LayerSpec:
    """One hidden layer (section 3). Arrays are int64; ``rho``/``beta`` only for ALIF."""

    kind: str
    span: int
    w_in: np.ndarray
    bias: np.ndarray
    threshold: np.ndarray
    decay: np.ndarray
    w_rec: np.ndarray | None = None
    rho: np.ndarray | None = None
    beta: np.ndarray | None = None
    input_shift: int = 0
    decay_mode: str = "mult"
    reset: str = "soft"

    @property
    def neurons(self) -> int:
        return int(self.w_in.shape[0])

    @property
    def fan_in(self) -> int:
        return int(self.w_in.shape[1])

    ARRAYS = ("w_in", "bias", "threshold", "decay", "w_rec", "rho", "beta")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LayerSpec):
            return NotImplemented
        return (
            (self.kind, self.span, self.input_shift, self.decay_mode, self.reset)
            == (other.kind, other.span, other.input_shift, other.decay_mode, other.reset)
            and all(_arr_eq(getattr(self, n), getattr(other, n)) for n in self.ARRAYS)
        )


@dataclass(eq=False)
class ReadoutSpec:
    """The non-spiking readout (section 4). ``decay`` only for ``kind == 'leaky'``."""

    w: np.ndarray
    bias: np.ndarray
    kind: str = "sum"
    mode: str = "sequence"
    decay: np.ndarray | None = None
    decay_mode: str = "mult"
    skip_steps: int = 0

    @property
    def classes(self) -> int:
        return int(self.w.shape[0])

    ARRAYS = ("w", "bias", "decay")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ReadoutSpec):
            return NotImplemented
        return (
            (self.kind, self.mode, self.decay_mode, self.skip_steps)
            == (other.kind, other.mode, other.decay_mode, other.skip_steps)
            and all(_arr_eq(getattr(self, n), getattr(other, n)) for n in self.ARRAYS)
        )


@dataclass(eq=False)
class Artifact:
    """Everything the golden model, the generator and the reports need about one network."""

    input: InputSpec
    widths: Widths
    layers: list[LayerSpec]
    readout: ReadoutSpec
    provenance: dict[str, Any] = field(default_factory=dict)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Artifact):
            return NotImplemented
        return (
            self.input == other.input
            and self.widths == other.widths
            and len(self.layers) == len(other.layers)
            and all(a == b for a, b in zip(self.layers, other.layers))
            and self.readout == other.readout
            and self.provenance == other.provenance
        )

    @property
    def classes(self) -> int:
        return self.readout.classes

    def summary(self) -> str:
        parts = [f"{self.input.channels}({self.input.kind})"]
        for layer in self.layers:
            rec = f"k={layer.span}" if layer.span else "ff"
            parts.append(f"{layer.kind.upper()}{layer.neurons}[{rec}]")
        parts.append(f"{self.readout.kind}:{self.classes}/{self.readout.mode}")
        w = self.widths
        return (
            " -> ".join(parts)
            + f"  W{w.weight_bits} S{w.state_bits} R{w.readout_bits} D{w.decay_bits}"
        )

    def validate(self) -> "Artifact":
        """Check the whole artifact against the contract; raise ArtifactError naming the field."""
        validate(self)
        return self


# ----------------------------------------------------------------------------------------------
# validation


def _fail(field_name: str, problem: str) -> None:
    raise ArtifactError(f"{field_name}: {problem}")


def _check_int(field_name: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        _fail(field_name, f"must be an integer, got {value!r}")
    if not lo <= int(value) <= hi:
        _fail(field_name, f"{value} is outside the allowed range [{lo}, {hi}]")


def _check_choice(field_name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        _fail(field_name, f"unknown value {value!r}; expected one of {', '.join(choices)}")


def _check_array(
    field_name: str, arr: Any, shape: tuple[int, ...], lo: int, hi: int, what: str
) -> None:
    if not isinstance(arr, np.ndarray):
        _fail(field_name, f"must be an integer array, got {type(arr).__name__}")
    if arr.dtype.kind not in "iu":
        _fail(field_name, f"must hold integers, got dtype {arr.dtype}")
    if arr.shape != shape:
        _fail(field_name, f"shape mismatch: expected {shape}, got {arr.shape}")
    if arr.size:
        a_min, a_max = int(arr.min()), int(arr.max())
        if a_min < lo or a_max > hi:
            bad = a_min if a_min < lo else a_max
            _fail(field_name, f"value {bad} does not fit {what} (allowed [{lo}, {hi}])")


def validate(art: Artifact) -> None:
    w = art.widths
    for name, (lo, hi) in WIDTH_LIMITS.items():
        _check_int(f"widths.{name}", getattr(w, name), lo, hi)
    inp = art.input
    _check_choice("input.kind", inp.kind, INPUT_KINDS)
    _check_int("input.channels", inp.channels, 1, 1 << 20)
    _check_int("input.bits", inp.bits, 1, 16)
    _check_int("input.frac_bits", inp.frac_bits, 0, 16)
    if inp.kind == "spike" and (inp.bits != 1 or inp.frac_bits != 0):
        _fail("input.bits", "a spike input has bits = 1 and frac_bits = 0")
    if inp.kind == "count" and inp.frac_bits != 0:
        _fail("input.frac_bits", "a count input has frac_bits = 0")
    if inp.kind == "real" and inp.bits < 2:
        _fail("input.bits", "a signed real input needs at least 2 bits")
    if not art.layers:
        _fail("layers", "the network needs at least one hidden layer")

    wmax = 2 ** (w.weight_bits - 1) - 1
    smin, smax = -(2 ** (w.state_bits - 1)), 2 ** (w.state_bits - 1) - 1
    dmax = 2**w.decay_bits - 1
    fan_in = inp.channels
    for index, layer in enumerate(art.layers):
        p = f"layers[{index}]"
        _check_choice(f"{p}.kind", layer.kind, NEURON_KINDS)
        _check_choice(f"{p}.decay_mode", layer.decay_mode, DECAY_MODES)
        _check_choice(f"{p}.reset", layer.reset, RESETS)
        _check_int(f"{p}.span", layer.span, 0, 1 << 16)
        _check_int(f"{p}.input_shift", layer.input_shift, 0, 31)
        if not isinstance(layer.w_in, np.ndarray) or layer.w_in.ndim != 2:
            _fail(f"{p}.w_in", "must be a 2-D integer array (neurons, fan_in)")
        n = layer.w_in.shape[0]
        if n < 1:
            _fail(f"{p}.w_in", "a layer needs at least one neuron")
        _check_array(f"{p}.w_in", layer.w_in, (n, fan_in), -wmax, wmax, f"{w.weight_bits}-bit weights")
        _check_array(f"{p}.bias", layer.bias, (n,), smin, smax, f"{w.state_bits}-bit state")
        if layer.span > 0:
            if layer.w_rec is None:
                _fail(f"{p}.w_rec", f"missing: span {layer.span} needs recurrent weights")
            _check_array(f"{p}.w_rec", layer.w_rec, (n, n), -wmax, wmax, f"{w.weight_bits}-bit weights")
        elif layer.w_rec is not None:
            _fail(f"{p}.w_rec", "present but span is 0 (no recurrence); drop it or set a span")
        if layer.decay_mode == "mult":
            _check_array(f"{p}.decay", layer.decay, (n,), 0, dmax, f"Q0.{w.decay_bits} decays")
        else:
            _check_array(f"{p}.decay", layer.decay, (n,), 1, 30, "shift decays (1..30)")
        _check_array(f"{p}.threshold", layer.threshold, (n,), 1, smax, "positive state-width thresholds")
        if layer.kind == "alif":
            if layer.rho is None or layer.beta is None:
                _fail(f"{p}.rho", "an ALIF layer needs rho and beta arrays")
            _check_array(f"{p}.rho", layer.rho, (n,), 0, dmax, f"Q0.{w.decay_bits} decays")
            _check_array(f"{p}.beta", layer.beta, (n,), 0, smax, "non-negative state-width values")
        else:
            if layer.rho is not None or layer.beta is not None:
                _fail(f"{p}.rho", "only ALIF layers carry rho/beta")
        if index > 0 and layer.input_shift != 0:
            _fail(f"{p}.input_shift", "only the first layer (fed by a real input) may shift")
        fan_in = n

    r = art.readout
    _check_choice("readout.kind", r.kind, READOUT_KINDS)
    _check_choice("readout.mode", r.mode, READOUT_MODES)
    _check_choice("readout.decay_mode", r.decay_mode, DECAY_MODES)
    _check_int("readout.skip_steps", r.skip_steps, 0, 1 << 30)
    if not isinstance(r.w, np.ndarray) or r.w.ndim != 2:
        _fail("readout.w", "must be a 2-D integer array (classes, neurons)")
    m = r.w.shape[0]
    if m < 1:
        _fail("readout.w", "the readout needs at least one class")
    rmin, rmax = -(2 ** (w.readout_bits - 1)), 2 ** (w.readout_bits - 1) - 1
    _check_array("readout.w", r.w, (m, fan_in), -wmax, wmax, f"{w.weight_bits}-bit weights")
    _check_array("readout.bias", r.bias, (m,), rmin, rmax, f"{w.readout_bits}-bit readout")
    if r.kind == "leaky":
        if r.decay is None:
            _fail("readout.decay", "a leaky readout needs a decay per class")
        if r.decay_mode == "mult":
            _check_array("readout.decay", r.decay, (m,), 0, dmax, f"Q0.{w.decay_bits} decays")
        else:
            _check_array("readout.decay", r.decay, (m,), 1, 30, "shift decays (1..30)")
    elif r.decay is not None:
        _fail("readout.decay", "a sum readout has no decay")
    if not isinstance(art.provenance, dict):
        _fail("provenance", "must be a JSON object")


# ----------------------------------------------------------------------------------------------
# file format


def _header(art: Artifact) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "contract": "golden/CONTRACT.md v1",
        "input": {"channels": art.input.channels, "kind": art.input.kind,
                  "bits": art.input.bits, "frac_bits": art.input.frac_bits},
        "widths": {k: getattr(art.widths, k) for k in WIDTH_LIMITS},
        "layers": [
            {"kind": l.kind, "neurons": l.neurons, "span": l.span, "input_shift": l.input_shift,
             "decay_mode": l.decay_mode, "reset": l.reset}
            for l in art.layers
        ],
        "readout": {"kind": art.readout.kind, "mode": art.readout.mode, "classes": art.readout.classes,
                    "decay_mode": art.readout.decay_mode, "skip_steps": art.readout.skip_steps},
        "provenance": art.provenance,
    }


def _arrays(art: Artifact) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for i, layer in enumerate(art.layers):
        for name in LayerSpec.ARRAYS:
            value = getattr(layer, name)
            if value is not None:
                out[f"layers.{i}.{name}"] = value
    for name in ReadoutSpec.ARRAYS:
        value = getattr(art.readout, name)
        if value is not None:
            out[f"readout.{name}"] = value
    return out


def save(art: Artifact, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Validate and write ``art`` to ``path`` atomically. Refuses to replace a file unless asked."""
    validate(art)
    path = Path(path)
    if path.exists() and not overwrite:
        raise ArtifactError(f"{path}: file exists; pass overwrite=True (CLI: --force) to replace it")
    try:
        json.dumps(art.provenance)
    except TypeError as exc:
        raise ArtifactError(f"provenance: not JSON-serialisable ({exc})") from None
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("header.json", json.dumps(_header(art), indent=1, sort_keys=True))
            for name, arr in _arrays(art).items():
                buf = io.BytesIO()
                np.save(buf, np.ascontiguousarray(arr, dtype=np.int64), allow_pickle=False)
                zf.writestr(f"arrays/{name}.npy", buf.getvalue())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # never leave a half-written model.skc.tmp behind
        raise
    return path


def _get(d: Any, key: str, where: str) -> Any:
    if not isinstance(d, dict) or key not in d:
        raise ArtifactError(f"{where}{key}: missing from the header")
    return d[key]


# Limits checked before anything is allocated, so that a damaged or hostile file gets a clear error
# instead of a MemoryError (or minutes of decompression).
#: header.json larger than this is refused (a real one is a few kB).
MAX_HEADER_BYTES = 1 << 20
#: neurons per layer, input channels and classes: at most this many (also validate's channel limit).
MAX_UNITS = 1 << 20
#: array data of one artifact, in bytes as stored: at most 2 GiB.
MAX_ARRAY_BYTES = 1 << 31
#: an .npy header (magic, length, dict) is at most this long (numpy's own max_header_size + 12).
_NPY_HEAD_MAX = 10_000 + 12


def read_npy_header(fp) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Read the header of an .npy stream (shape, Fortran order, dtype) without reading its data.

    Raises ValueError for anything that is not a version 1.0/2.0 .npy header.
    """
    version = np.lib.format.read_magic(fp)
    if version not in ((1, 0), (2, 0)):
        raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    try:
        return read(fp)
    except ValueError:
        raise
    except Exception as exc:  # a damaged header dict reaches numpy's tokenizer (TokenError, SyntaxError...)
        raise ValueError(f"damaged .npy header ({type(exc).__name__}: {exc})") from None


def _field(key: str) -> str:
    """``layers.0.w_in`` (the archive's name) -> ``layers[0].w_in`` (the schema's name)."""
    parts = key.split(".")
    if parts[0] == "layers" and len(parts) == 3:
        return f"layers[{parts[1]}].{parts[2]}"
    return key


def _check_format(header: Any, source: str) -> None:
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        found = header.get("format") if isinstance(header, dict) else None
        raise ArtifactError(f"{source}: not a skipcore model (format {found!r})")
    version = header.get("version")
    if version != VERSION:
        raise ArtifactError(
            f"version: {source} has artifact version {version!r}, this skipcore reads version {VERSION}; "
            "re-export it with this skipcore release"
        )


def expected_shapes(header: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """The shape of every array the header's topology allows, keyed by archive name.

    Raises ArtifactError when a size in the header (channels, neurons, classes) is not an
    integer in [1, MAX_UNITS]; arrays are then never read.
    """
    def units(value: Any, name: str) -> int:
        _check_int(name, value, 1, MAX_UNITS)
        return int(value)

    fan_in = units(_get(_get(header, "input", ""), "channels", "input."), "input.channels")
    layers = _get(header, "layers", "")
    if not isinstance(layers, list):
        _fail("layers", f"must be a list of layer objects in the header, got {type(layers).__name__}")
    shapes: dict[str, tuple[int, ...]] = {}
    for i, lh in enumerate(layers):
        n = units(_get(lh, "neurons", f"layers[{i}]."), f"layers[{i}].neurons")
        for name in LayerSpec.ARRAYS:  # weights are matrices; every other array has one value per neuron
            shapes[f"layers.{i}.{name}"] = {"w_in": (n, fan_in), "w_rec": (n, n)}.get(name, (n,))
        fan_in = n
    classes = units(_get(_get(header, "readout", ""), "classes", "readout."), "readout.classes")
    for name in ReadoutSpec.ARRAYS:
        shapes[f"readout.{name}"] = (classes, fan_in) if name == "w" else (classes,)
    return shapes


def _read_member_array(zf: zipfile.ZipFile, member: str, field_name: str, shape: tuple[int, ...],
                       budget: int) -> np.ndarray:
    """Read one .npy member whose header must promise an integer array of ``shape``.

    The dtype, the shape and the byte count (against the zip entry's size and ``budget``) are
    checked from the header before any data is read; the data is then read exactly.
    """
    info = zf.getinfo(member)
    with zf.open(info) as stream:
        head = stream.read(_NPY_HEAD_MAX)
        buf = io.BytesIO(head)
        try:
            got_shape, fortran, dtype = read_npy_header(buf)
        except ValueError as exc:
            _fail(field_name, f"{member} is not a valid .npy array ({exc}); regenerate the artifact")
        if dtype.kind not in "iu":
            _fail(field_name, f"must hold integers, got dtype {dtype} (expected int64); re-export the model")
        if got_shape != shape:
            _fail(field_name, f"shape mismatch: expected {shape}, got {got_shape}")
        nbytes = math.prod(got_shape) * dtype.itemsize
        if nbytes > budget:
            _fail(field_name, f"{nbytes} bytes of data exceed the artifact limit of {MAX_ARRAY_BYTES} bytes")
        offset = buf.tell()
        if info.file_size != offset + nbytes:
            _fail(field_name, f"{member} holds {info.file_size - offset} data bytes but its header promises "
                              f"{nbytes}; the file is truncated or damaged, regenerate it")
        data = head[offset:] + stream.read(nbytes - (len(head) - offset) + 1)
        if len(data) != nbytes:
            _fail(field_name, f"{member} is truncated ({len(data)} of {nbytes} data bytes); regenerate it")
    arr = np.frombuffer(bytearray(data), dtype=dtype)  # a writable copy
    return arr.reshape(got_shape, order="F" if fortran else "C")


def load(path: str | os.PathLike) -> Artifact:
    """Read and validate a model.skc file.

    The header comes first; each array's .npy header is checked (integer dtype, the shape the
    topology implies, byte counts within the zip entry and the limits above) before its data is
    read, so no malformed file can allocate more than the header's topology allows.
    """
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: no such artifact file (create one with `skipcore quantize` or `skipcore train --qat`)")
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if "header.json" not in names:
                raise ArtifactError(f"{path}: not a skipcore artifact (no header.json inside)")
            size = zf.getinfo("header.json").file_size
            if size > MAX_HEADER_BYTES:
                raise ArtifactError(f"header.json: {size} bytes, over the limit of {MAX_HEADER_BYTES}; "
                                    f"{path} is not a skipcore artifact")
            header = json.loads(zf.read("header.json"))
            _check_format(header, str(path))
            shapes = expected_shapes(header)
            arrays = {}
            budget = MAX_ARRAY_BYTES
            for name in sorted(names):
                key = name[len("arrays/"):-len(".npy")]
                if not (name.startswith("arrays/") and name.endswith(".npy")) or key not in shapes:
                    continue  # not part of this topology: never read
                arr = _read_member_array(zf, name, _field(key), shapes[key], budget)
                budget -= arr.nbytes
                arrays[key] = arr
    except ArtifactError:
        raise
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile, zlib.error) as exc:
        raise ArtifactError(f"{path}: corrupt or truncated artifact ({exc}); regenerate it") from None
    except (ValueError, OSError, KeyError, NotImplementedError, RuntimeError, RecursionError,
            struct.error, OverflowError) as exc:
        raise ArtifactError(f"{path}: unreadable artifact ({type(exc).__name__}: {exc}); regenerate it") from None
    return from_parts(header, arrays, source=str(path))


def from_parts(header: dict[str, Any], arrays: dict[str, np.ndarray], source: str = "artifact") -> Artifact:
    """Build and validate an artifact from a header dict and integer arrays keyed by archive name.

    Array dtypes are checked as given (never converted first: a float array is refused, not
    truncated); after validation every array is int64.
    """
    _check_format(header, source)
    for key, value in arrays.items():
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "iu":
            got = f"dtype {value.dtype}" if isinstance(value, np.ndarray) else type(value).__name__
            _fail(_field(key), f"must hold integers, got {got} (expected int64); re-export the model")
    try:
        inp = _get(header, "input", "")
        input_spec = InputSpec(channels=_get(inp, "channels", "input."), kind=_get(inp, "kind", "input."),
                               bits=_get(inp, "bits", "input."), frac_bits=_get(inp, "frac_bits", "input."))
        wd = _get(header, "widths", "")
        widths = Widths(**{k: _get(wd, k, "widths.") for k in WIDTH_LIMITS})
        layers = []
        for i, lh in enumerate(_get(header, "layers", "")):
            def arr(name: str, required: bool = True) -> np.ndarray | None:
                key = f"layers.{i}.{name}"
                if key not in arrays:
                    if required:
                        raise ArtifactError(f"layers[{i}].{name}: array missing from the artifact")
                    return None
                return arrays[key]
            layer = LayerSpec(
                kind=_get(lh, "kind", f"layers[{i}]."), span=_get(lh, "span", f"layers[{i}]."),
                w_in=arr("w_in"), bias=arr("bias"), threshold=arr("threshold"), decay=arr("decay"),
                w_rec=arr("w_rec", False), rho=arr("rho", False), beta=arr("beta", False),
                input_shift=_get(lh, "input_shift", f"layers[{i}]."),
                decay_mode=_get(lh, "decay_mode", f"layers[{i}]."), reset=_get(lh, "reset", f"layers[{i}]."),
            )
            neurons = _get(lh, "neurons", f"layers[{i}].")
            if layer.w_in.ndim == 2 and layer.w_in.shape[0] != neurons:
                raise ArtifactError(
                    f"layers[{i}].w_in: shape mismatch: header says {neurons} neurons, array has {layer.w_in.shape[0]} rows"
                )
            layers.append(layer)
        rh = _get(header, "readout", "")
        readout = ReadoutSpec(
            w=arrays.get("readout.w"), bias=arrays.get("readout.bias"), decay=arrays.get("readout.decay"),
            kind=_get(rh, "kind", "readout."), mode=_get(rh, "mode", "readout."),
            decay_mode=_get(rh, "decay_mode", "readout."), skip_steps=_get(rh, "skip_steps", "readout."),
        )
        for name in ("w", "bias"):
            if getattr(readout, name) is None:
                raise ArtifactError(f"readout.{name}: array missing from the artifact")
        if readout.w.ndim == 2 and readout.w.shape[0] != _get(rh, "classes", "readout."):
            raise ArtifactError("readout.w: shape mismatch with readout.classes in the header")
        art = Artifact(input=input_spec, widths=widths, layers=layers, readout=readout,
                       provenance=header.get("provenance", {}))
    except TypeError as exc:
        raise ArtifactError(f"{source}: malformed header ({exc})") from None
    validate(art)
    # validated: every value fits its contract width, so int64 holds it exactly
    for spec in (*art.layers, art.readout):
        for name in spec.ARRAYS:
            value = getattr(spec, name)
            if value is not None:
                setattr(spec, name, value.astype(np.int64, copy=False))
    return art
