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

import hashlib
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

from . import kinds as _kinds
from . import readouts as _readouts

FORMAT = "skipcore-model"
VERSION = 3
#: artifact versions this skipcore reads; a version 1 file has every weight exponent 0, a version 1
#: or 2 file has no ``widths.trace_bits`` (its ALIF traces keep ``decay_bits`` fraction bits).
READ_VERSIONS = (1, 2, 3)
#: the first version whose header has ``widths.trace_bits`` (CONTRACT.md sections 1 and 3.4)
TRACE_BITS_VERSION = 3
#: an ALIF adaptation trace has at most this many fraction bits more than the decays
#: (CONTRACT.md section 1, ``trace_bits``)
TRACE_EXTRA_BITS = 8
#: ... and at most this many bits in the product ``beta * b`` with its sign and one spare bit
#: (``max(S, R) + T + 2``), which keeps it inside the RTL's datapath and golden's int64
TRACE_PRODUCT_BITS = 62


def max_trace_bits(state_bits: int, readout_bits: int, decay_bits: int) -> int:
    """The most fraction bits T an ALIF trace may have (CONTRACT.md section 1): a new export's T."""
    return min(decay_bits + TRACE_EXTRA_BITS, TRACE_PRODUCT_BITS - 2 - max(state_bits, readout_bits))


#: a weight exponent e (CONTRACT.md section 3.1) is an integer in [0, MAX_WEIGHT_EXP].
MAX_WEIGHT_EXP = 24

INPUT_KINDS = ("spike", "count", "real")
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
    #: fraction bits T of the ALIF adaptation trace ``b`` (sections 1, 3.4), in
    #: ``[decay_bits, max_trace_bits(...)]``; None: the most (:func:`max_trace_bits`).
    #: A version 1 or 2 artifact loads with ``trace_bits = decay_bits`` (its arithmetic).
    trace_bits: int | None = None

    def __post_init__(self) -> None:
        given = [getattr(self, k) for k in WIDTH_LIMITS]
        if self.trace_bits is None and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in given):
            object.__setattr__(self, "trace_bits",
                               int(max_trace_bits(self.state_bits, self.readout_bits, self.decay_bits)))


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


class _KindArrays:
    """Attribute access to a kind's own parameter arrays, held in ``params``: ``spec.threshold``
    reads ``params["threshold"]``, a parameter of another registered kind reads as None, and
    assigning to such a name writes ``params`` (None removes it). ``_known`` gives every parameter
    name of the registry the spec draws its kinds from."""

    _known = staticmethod(lambda: frozenset())

    def __getattr__(self, name: str):
        # only reached when normal lookup fails
        if name in self.__dict__.get("params", {}):
            return self.__dict__["params"][name]
        if name in self._known():
            return None
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __setattr__(self, name: str, value) -> None:
        if name in self.params or (name in self._known() and name not in self.__dict__):
            if value is None:
                self.params.pop(name, None)
            else:
                self.params[name] = value
        else:
            object.__setattr__(self, name, value)


class LayerSpec(_KindArrays):
    """One hidden layer (section 3). Arrays are int64.

    The arrays every kind shares are attributes (``w_in``, ``bias``, ``w_rec``); the neuron kind's
    own parameter arrays (its schema: :meth:`golden.kinds.NeuronKind.arrays`) live in ``params``
    and are also read as attributes (``layer.threshold``); a parameter of another kind reads as
    None. ``options`` holds the kind's integer header options (:class:`golden.kinds.OptionSpec`).
    """

    COMMON_ARRAYS = ("w_in", "bias", "w_rec")
    _known = staticmethod(lambda: _kinds.parameter_names())

    def __init__(self, kind: str, span: int, w_in: np.ndarray, bias: np.ndarray,
                 w_rec: np.ndarray | None = None, input_shift: int = 0, decay_mode: str = "mult",
                 reset: str = "soft", *, params: dict[str, np.ndarray] | None = None,
                 options: dict[str, int] | None = None, input_exp: int = 0, recurrent_exp: int = 0,
                 **arrays: np.ndarray | None):
        object.__setattr__(self, "params", {})
        self.kind, self.span, self.w_in, self.bias, self.w_rec = kind, span, w_in, bias, w_rec
        self.input_shift, self.decay_mode, self.reset = input_shift, decay_mode, reset
        # weight exponents (section 3.1): w_in and w_rec enter the accumulator as w << e
        self.input_exp, self.recurrent_exp = input_exp, recurrent_exp
        self.options = dict(options or {})
        for name, value in {**(params or {}), **arrays}.items():
            if value is not None:
                self.params[name] = value

    @property
    def neurons(self) -> int:
        return int(self.w_in.shape[0])

    @property
    def w_in_shifted(self) -> np.ndarray:
        """``w_in << input_exp``: the feed-forward weights as the accumulator adds them (section 3.1)."""
        return np.left_shift(self.w_in.astype(np.int64), self.input_exp)

    @property
    def w_rec_shifted(self) -> np.ndarray | None:
        """``w_rec << recurrent_exp`` (section 3.1), None without recurrence."""
        return None if self.w_rec is None else np.left_shift(self.w_rec.astype(np.int64), self.recurrent_exp)

    @property
    def fan_in(self) -> int:
        return int(self.w_in.shape[1])

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array of the layer by name (shared ones first, then the kind's), None left out."""
        out = {n: getattr(self, n) for n in self.COMMON_ARRAYS if getattr(self, n) is not None}
        out.update(self.params)
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LayerSpec):
            return NotImplemented
        mine, theirs = self.arrays(), other.arrays()
        return (
            (self.kind, self.span, self.input_shift, self.decay_mode, self.reset, self.options,
             self.input_exp, self.recurrent_exp)
            == (other.kind, other.span, other.input_shift, other.decay_mode, other.reset, other.options,
                other.input_exp, other.recurrent_exp)
            and mine.keys() == theirs.keys()
            and all(_arr_eq(mine[n], theirs[n]) for n in mine)
        )

    def __repr__(self) -> str:
        return (f"LayerSpec(kind={self.kind!r}, neurons={self.neurons}, span={self.span}, "
                f"arrays={sorted(self.arrays())})")


class ReadoutSpec(_KindArrays):
    """The readout (section 4): shared ``w`` (M, N) and ``bias`` (M,), and the readout kind's own
    arrays (``golden.readouts``) in ``params``, also read as attributes (``readout.decay``); a
    parameter of another readout kind reads as None."""

    COMMON_ARRAYS = ("w", "bias")
    _known = staticmethod(lambda: _readouts.parameter_names())

    def __init__(self, w: np.ndarray, bias: np.ndarray, kind: str = "sum", mode: str = "sequence",
                 decay: np.ndarray | None = None, decay_mode: str = "mult", skip_steps: int = 0, *,
                 params: dict[str, np.ndarray] | None = None, weight_exp: int = 0,
                 **arrays: np.ndarray | None):
        object.__setattr__(self, "params", {})
        self.w, self.bias, self.kind, self.mode = w, bias, kind, mode
        self.weight_exp = weight_exp  # w enters the readout accumulator as w << weight_exp (section 4)
        self.decay_mode, self.skip_steps = decay_mode, skip_steps
        extra = {"decay": decay} if decay is not None else {}
        for name, value in {**(params or {}), **extra, **arrays}.items():
            if value is not None:
                self.params[name] = value

    @property
    def classes(self) -> int:
        return int(self.w.shape[0])

    @property
    def w_shifted(self) -> np.ndarray:
        """``w << weight_exp``: the readout weights as the accumulator adds them (section 4)."""
        return np.left_shift(self.w.astype(np.int64), self.weight_exp)

    def arrays(self) -> dict[str, np.ndarray]:
        out = {n: getattr(self, n) for n in self.COMMON_ARRAYS if getattr(self, n) is not None}
        out.update(self.params)
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ReadoutSpec):
            return NotImplemented
        mine, theirs = self.arrays(), other.arrays()
        return (
            (self.kind, self.mode, self.decay_mode, self.skip_steps, self.weight_exp)
            == (other.kind, other.mode, other.decay_mode, other.skip_steps, other.weight_exp)
            and mine.keys() == theirs.keys()
            and all(_arr_eq(mine[n], theirs[n]) for n in mine)
        )

    def __repr__(self) -> str:
        return (f"ReadoutSpec(kind={self.kind!r}, classes={self.classes}, mode={self.mode!r}, "
                f"arrays={sorted(self.arrays())})")


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

    @property
    def uses_trace_bits(self) -> bool:
        """Whether any layer or the readout computes with ``widths.trace_bits`` (its kinds say)."""
        return (any(_kinds.get(l.kind).uses_trace_bits for l in self.layers)
                or _readouts.get(self.readout.kind).uses_trace_bits)

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
            + (f" T{w.trace_bits}" if self.uses_trace_bits else "")
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


def _check_options(p: str, kind: "_kinds.NeuronKind", options: dict) -> None:
    """The kind's integer header options: exactly its own, each in its range."""
    known = {o.name: o for o in kind.options}
    for name, value in options.items():
        if name not in known:
            _fail(f"{p}.options.{name}", f"not an option of a {kind.name} layer"
                  + (f" (it has {', '.join(known)})" if known else " (it has none)"))
        _check_int(f"{p}.options.{name}", value, known[name].lo, known[name].hi)
    for name in known:
        if name not in options:
            _fail(f"{p}.options.{name}", f"missing: a {kind.name} layer needs this option")


def _check_kind(p: str, kind: "_kinds.NeuronKind", layer: LayerSpec, w: Widths) -> None:
    """The kind's own schema: its parameter arrays (exactly those) and its header options."""
    _check_options(p, kind, layer.options)
    problem = kind.check(layer, w)
    if problem:
        field_name, _, text = problem.partition(": ")
        _fail(f"{p}.{field_name}", text)
    _check_kind_arrays(p, f"{kind.name} layer", layer.params, kind.arrays(w, layer))


def _check_kind_arrays(prefix: str, owner: str, params: dict, specs) -> None:
    """The kind's own arrays (``specs``, its schema) against ``params``: each present and in range,
    nothing else. ``owner`` names the kind in messages ("lif layer", "alif readout")."""
    expected = [spec.name for spec in specs]
    for spec in specs:
        value = params.get(spec.name)
        if value is None:
            _fail(f"{prefix}.{spec.name}", f"missing: a {owner} needs {', '.join(expected)}")
        _check_array(f"{prefix}.{spec.name}", value, spec.shape, spec.lo, spec.hi, spec.what)
    for name in params:
        if name not in expected:
            _fail(f"{prefix}.{name}", f"not a parameter of a {owner}"
                  + (f" (it has {', '.join(expected)})" if expected else " (it has none)"))


def validate(art: Artifact) -> None:
    w = art.widths
    for name, (lo, hi) in WIDTH_LIMITS.items():
        _check_int(f"widths.{name}", getattr(w, name), lo, hi)
    _check_int("widths.trace_bits", w.trace_bits, w.decay_bits, max_trace_bits(w.state_bits, w.readout_bits, w.decay_bits))
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
    fan_in = inp.channels
    for index, layer in enumerate(art.layers):
        p = f"layers[{index}]"
        _check_choice(f"{p}.kind", layer.kind, _kinds.names())
        kind = _kinds.get(layer.kind)
        _check_choice(f"{p}.decay_mode", layer.decay_mode, DECAY_MODES)
        _check_choice(f"{p}.reset", layer.reset, RESETS)
        _check_int(f"{p}.span", layer.span, 0, 1 << 16)
        _check_int(f"{p}.input_shift", layer.input_shift, 0, 31)
        _check_int(f"{p}.input_exp", layer.input_exp, 0, MAX_WEIGHT_EXP)
        _check_int(f"{p}.recurrent_exp", layer.recurrent_exp, 0, MAX_WEIGHT_EXP)
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
        _check_kind(p, kind, layer, w)
        if index > 0 and layer.input_shift != 0:
            _fail(f"{p}.input_shift", "only the first layer (fed by a real input) may shift")
        fan_in = n

    r = art.readout
    _check_choice("readout.kind", r.kind, _readouts.names())
    _check_choice("readout.mode", r.mode, READOUT_MODES)
    _check_choice("readout.decay_mode", r.decay_mode, DECAY_MODES)
    _check_int("readout.skip_steps", r.skip_steps, 0, 1 << 30)
    _check_int("readout.weight_exp", r.weight_exp, 0, MAX_WEIGHT_EXP)
    if not isinstance(r.w, np.ndarray) or r.w.ndim != 2:
        _fail("readout.w", "must be a 2-D integer array (classes, neurons)")
    m = r.w.shape[0]
    if m < 1:
        _fail("readout.w", "the readout needs at least one class")
    rmin, rmax = -(2 ** (w.readout_bits - 1)), 2 ** (w.readout_bits - 1) - 1
    _check_array("readout.w", r.w, (m, fan_in), -wmax, wmax, f"{w.weight_bits}-bit weights")
    _check_array("readout.bias", r.bias, (m,), rmin, rmax, f"{w.readout_bits}-bit readout")
    _check_kind_arrays("readout", f"{r.kind} readout", r.params, _readouts.get(r.kind).arrays(w, r))
    if not isinstance(art.provenance, dict):
        _fail("provenance", "must be a JSON object")


# ----------------------------------------------------------------------------------------------
# file format


def _header(art: Artifact) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "contract": "golden/CONTRACT.md v3",
        "input": {"channels": art.input.channels, "kind": art.input.kind,
                  "bits": art.input.bits, "frac_bits": art.input.frac_bits},
        "widths": {k: getattr(art.widths, k) for k in (*WIDTH_LIMITS, "trace_bits")},
        "layers": [
            _layer_header(l) for l in art.layers
        ],
        "readout": {"kind": art.readout.kind, "mode": art.readout.mode, "classes": art.readout.classes,
                    "decay_mode": art.readout.decay_mode, "skip_steps": art.readout.skip_steps,
                    "weight_exp": art.readout.weight_exp},
        "provenance": art.provenance,
    }


def _layer_header(layer: LayerSpec) -> dict[str, Any]:
    out = {"kind": layer.kind, "neurons": layer.neurons, "span": layer.span, "input_shift": layer.input_shift,
           "decay_mode": layer.decay_mode, "reset": layer.reset,
           "input_exp": layer.input_exp, "recurrent_exp": layer.recurrent_exp}
    if layer.options:  # only kinds with options write them: LIF/ALIF headers stay as they were
        out["options"] = {k: int(v) for k, v in layer.options.items()}
    return out


def arrays(art: Artifact) -> dict[str, np.ndarray]:
    """Every array of the artifact under its file name (``layers.<i>.<name>``, ``readout.<name>``)."""
    out: dict[str, np.ndarray] = {}
    for i, layer in enumerate(art.layers):
        for name, value in layer.arrays().items():
            out[f"layers.{i}.{name}"] = value
    for name, value in art.readout.arrays().items():
        out[f"readout.{name}"] = value
    return out


def artifact_digest(art: Artifact) -> str:
    """SHA-256 (hex) of the artifact's content: its file header, then every array as int64 ``.npy``.

    The model's one identity: ``artifact_sha256`` in core.json, the 8-byte artifact ID a board
    build stamps into the bridge and the host checks (boards/PROTOCOL.md), and the core caches.
    A file saved twice keeps its digest (the ``.skc`` zip's bytes hold timestamps); any change of a
    width, exponent, span, parameter or weight changes it.
    """
    h = hashlib.sha256()
    h.update(json.dumps(_header(art), sort_keys=True, default=str).encode())
    for name, arr in sorted(arrays(art).items()):
        if arr is None:
            continue
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(arr, dtype=np.int64), allow_pickle=False)
        h.update(name.encode())
        h.update(buf.getvalue())
    return h.hexdigest()


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
            for name, arr in arrays(art).items():
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
    if isinstance(version, bool) or version not in READ_VERSIONS:
        raise ArtifactError(
            f"version: {source} has artifact version {version!r}, this skipcore reads versions "
            f"{', '.join(map(str, READ_VERSIONS))}; re-export it with this skipcore release"
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
        shapes.update({f"layers.{i}.w_in": (n, fan_in), f"layers.{i}.bias": (n,), f"layers.{i}.w_rec": (n, n)})
        kind_name = _get(lh, "kind", f"layers[{i}].")
        _check_choice(f"layers[{i}].kind", kind_name, _kinds.names())
        kind = _kinds.get(kind_name)
        options = lh.get("options", {})
        if not isinstance(options, dict):
            _fail(f"layers[{i}].options", f"must be an object of integers, got {type(options).__name__}")
        _check_options(f"layers[{i}]", kind, options)
        view = _HeaderView(neurons=n, options=options, decay_mode=lh.get("decay_mode", "mult"))
        for spec in kind.arrays(Widths(), view):  # the kind's schema: its arrays' shapes
            shapes[f"layers.{i}.{spec.name}"] = spec.shape
        fan_in = n
    rh = _get(header, "readout", "")
    classes = units(_get(rh, "classes", "readout."), "readout.classes")
    shapes.update({"readout.w": (classes, fan_in), "readout.bias": (classes,)})
    r_kind = _get(rh, "kind", "readout.")
    _check_choice("readout.kind", r_kind, _readouts.names())
    view = _HeaderView(classes=classes, decay_mode=rh.get("decay_mode", "mult"))
    for spec in _readouts.get(r_kind).arrays(Widths(), view):
        shapes[f"readout.{spec.name}"] = spec.shape
    return shapes


class _HeaderView:
    """Duck-typed LayerSpec/ReadoutSpec from header fields (a kind's schema needs only these)."""

    def __init__(self, *, neurons: int = 0, classes: int = 0, options: dict | None = None, decay_mode: str = "mult"):
        self.neurons, self.classes, self.options, self.decay_mode = neurons, classes, options or {}, decay_mode


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


def _exp_field(header: dict[str, Any], section: dict[str, Any], key: str, where: str) -> Any:
    """A weight exponent: required in a version 2 header, absent (0) in a version 1 header."""
    if header.get("version") == 1:
        if key in section:
            _fail(f"{where}{key}", "a version 1 artifact has no weight exponents; set version 2")
        return 0
    return _get(section, key, where)


def _trace_bits_field(header: dict[str, Any], wd: Any) -> Any:
    """``widths.trace_bits``: required from version 3; a version 1 or 2 header has none and its
    ALIF traces keep ``decay_bits`` fraction bits (the arithmetic those files were made with)."""
    if header.get("version") < TRACE_BITS_VERSION:
        if isinstance(wd, dict) and "trace_bits" in wd:
            _fail("widths.trace_bits", f"a version {header.get('version')} artifact has no trace_bits; "
                  f"set version {TRACE_BITS_VERSION}")
        return _get(wd, "decay_bits", "widths.")
    return _get(wd, "trace_bits", "widths.")


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
        widths = Widths(**{k: _get(wd, k, "widths.") for k in WIDTH_LIMITS},
                        trace_bits=_trace_bits_field(header, wd))
        layers = []
        for i, lh in enumerate(_get(header, "layers", "")):
            prefix = f"layers.{i}."
            found = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
            for name in ("w_in", "bias"):
                if name not in found:
                    raise ArtifactError(f"layers[{i}].{name}: array missing from the artifact")
            layer = LayerSpec(
                kind=_get(lh, "kind", f"layers[{i}]."), span=_get(lh, "span", f"layers[{i}]."),
                w_in=found.pop("w_in"), bias=found.pop("bias"), w_rec=found.pop("w_rec", None),
                input_shift=_get(lh, "input_shift", f"layers[{i}]."),
                decay_mode=_get(lh, "decay_mode", f"layers[{i}]."), reset=_get(lh, "reset", f"layers[{i}]."),
                options=lh.get("options"), params=found,
                input_exp=_exp_field(header, lh, "input_exp", f"layers[{i}]."),
                recurrent_exp=_exp_field(header, lh, "recurrent_exp", f"layers[{i}]."),
            )
            neurons = _get(lh, "neurons", f"layers[{i}].")
            if layer.w_in.ndim == 2 and layer.w_in.shape[0] != neurons:
                raise ArtifactError(
                    f"layers[{i}].w_in: shape mismatch: header says {neurons} neurons, array has {layer.w_in.shape[0]} rows"
                )
            layers.append(layer)
        rh = _get(header, "readout", "")
        own = {k[len("readout."):]: v for k, v in arrays.items()
               if k.startswith("readout.") and k not in ("readout.w", "readout.bias")}
        readout = ReadoutSpec(
            w=arrays.get("readout.w"), bias=arrays.get("readout.bias"),
            kind=_get(rh, "kind", "readout."), mode=_get(rh, "mode", "readout."),
            decay_mode=_get(rh, "decay_mode", "readout."), skip_steps=_get(rh, "skip_steps", "readout."),
            params=own, weight_exp=_exp_field(header, rh, "weight_exp", "readout."),
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
        for name, value in spec.arrays().items():
            setattr(spec, name, value.astype(np.int64, copy=False))
    return art
