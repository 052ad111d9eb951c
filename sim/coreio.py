"""The generated core's interface as data: ``core.json``, input words, output words, cycle bounds.

Everything here follows ``hdl/INTERFACE.md`` and nothing else (no internal names of the core). It is
shared by the cocotb testbench (``tb_core.py``), the fast C++ runner (``fast.py``) and the reports.
NumPy only: no cocotb, no Amaranth.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from skipcore.golden.cycles import cycle_bounds as golden_cycle_bounds, spike_counts

from skipcore.errors import ConfigError

__all__ = ["CoreSpec", "LayerInfo", "encode_sample", "cycle_bounds", "split_readout", "to_signed"]


def to_signed(value: int, bits: int) -> int:
    """Two's complement ``bits``-bit pattern -> Python int."""
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def split_readout(word: int, classes: int, bits: int) -> list[int]:
    """``out_readout`` (class c in bits [c*R, (c+1)*R)) -> list of signed ints."""
    mask = (1 << bits) - 1
    return [to_signed((word >> (c * bits)) & mask, bits) for c in range(classes)]


@dataclass(frozen=True)
class LayerInfo:
    """One hidden layer as ``core.json`` describes it."""

    neurons: int
    kind: str
    span: int
    lanes: int
    groups: int
    constant_cycles: int
    ring_depth: int = 0
    acc_bits: int = 0
    own_span: int = 0        # 1: the layer's own spikes of t - 1 are events too (STC gates)
    events: int = 1          # E: events whose weight rows the engine reads per cycle


@dataclass(frozen=True)
class CoreSpec:
    """The parts of ``core.json`` the simulators need (INTERFACE.md, section core.json)."""

    path: Path | None
    top: str
    ports: dict[str, dict[str, Any]]
    channels: int
    input_kind: str
    input_bits: int
    index_bits: int
    value_bits: int
    classes: int
    readout_bits: int
    class_bits: int
    readout_mode: str
    lanes: int
    layers: tuple[LayerInfo, ...]
    debug: bool
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "CoreSpec":
        """Read ``core.json`` (or the ``core.json`` inside a folder)."""
        path = Path(path)
        if path.is_dir():
            path = path / "core.json"
        if not path.is_file():
            raise ConfigError(f"{path}: no core.json; generate the core with `skipcore generate model.skc -o DIR`")
        try:
            raw = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not valid JSON ({exc}); regenerate the core") from None
        return cls.from_dict(raw, path)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], path: Path | None = None) -> "CoreSpec":
        where = str(path) if path else "core.json"
        try:
            inp, ro = raw["input"], raw["readout"]
            layers = tuple(
                LayerInfo(
                    neurons=int(l["neurons"]), kind=str(l["kind"]), span=int(l["span"]),
                    lanes=int(l.get("lanes", raw.get("lanes", 1))), groups=int(l["groups"]),
                    constant_cycles=int(l["constant_cycles"]), ring_depth=int(l.get("ring_depth", 0)),
                    acc_bits=int(l.get("acc_bits", 0)), own_span=int(l.get("own_span", 0)),
                    events=int(l.get("events", 1)),
                )
                for l in raw["layers"]
            )
            spec = cls(
                path=path, top=str(raw.get("top", "skipcore_core")), ports=dict(raw["ports"]),
                channels=int(inp["channels"]), input_kind=str(inp["kind"]), input_bits=int(inp["bits"]),
                index_bits=int(inp["index_bits"]), value_bits=int(inp["value_bits"]),
                classes=int(ro["classes"]), readout_bits=int(ro["bits"]), class_bits=int(ro["class_bits"]),
                readout_mode=str(ro["mode"]), lanes=int(raw.get("lanes", 1)), layers=layers,
                debug=bool(raw.get("debug", False)), raw=raw,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: malformed core.json ({type(exc).__name__}: {exc}); regenerate the core") from None
        for name in ("in_valid", "in_ready", "in_index", "in_value", "in_end_step", "in_end_seq",
                     "out_valid", "out_ready", "out_readout", "out_prediction", "out_end_seq"):
            if name not in spec.ports:
                raise ConfigError(f"{where}: port {name!r} is missing from core.json 'ports' (INTERFACE.md)")
        return spec

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def has_debug_ports(self) -> bool:
        return all(f"dbg_l{l}_valid" in self.ports for l in range(self.n_layers))

    def width(self, port: str) -> int:
        return int(self.ports[port]["width"])

    def encode_value(self, v: int) -> int:
        """An input value as the bit pattern of ``in_value``."""
        if self.input_kind == "spike":
            return 1 & self.mask("in_value")
        return int(v) & self.mask("in_value")

    def mask(self, port: str) -> int:
        return (1 << self.width(port)) - 1


def encode_sample(
    spec: CoreSpec,
    x: np.ndarray,
    rng: np.random.Generator | None = None,
    *,
    shuffle: bool = False,
    zero_events: float = 0.0,
) -> tuple[list[tuple[int, int, int, int]], np.ndarray]:
    """Input words of one sequence ``x`` (T, C) of quantised ints.

    Returns ``(words, events)``: words ``(index, value_bits, end_step, end_seq)`` and the number of
    event words per step (T,). Only non-zero inputs become events, in channel order, unless
    ``shuffle`` (any order is legal) or ``zero_events`` (probability of also sending a zero-valued
    channel; legal, it adds 0 but counts as an input event in the cycle bound). A spike input has
    no value (every event is a spike), so it never gets zero-valued events.
    """
    x = np.asarray(x)
    steps = x.shape[0]
    words: list[tuple[int, int, int, int]] = []
    events = np.zeros(steps, dtype=np.int64)
    for t in range(steps):
        row = x[t]
        chans = np.flatnonzero(row)
        if zero_events and rng is not None and spec.input_kind != "spike":
            zeros = np.flatnonzero(row == 0)
            extra = zeros[rng.random(len(zeros)) < zero_events]
            chans = np.concatenate([chans, extra]).astype(np.int64)
        if shuffle and rng is not None:
            chans = rng.permutation(chans)
        for c in chans:
            words.append((int(c), spec.encode_value(int(row[c])), 0, 0))
        events[t] = len(chans)
        words.append((0, 0, 1, int(t == steps - 1)))
    return words, events


def cycle_bounds(spec: CoreSpec, input_events: np.ndarray, spikes) -> np.ndarray:
    """The per-layer per-step cycle bound of INTERFACE.md, shape (B, T, L), for the core described
    by ``spec``; ``spikes`` are per-layer (B, T, N) arrays or counts (B, T, L). The formula is
    :func:`golden.cycles.cycle_bounds`."""
    return golden_cycle_bounds([l.groups for l in spec.layers], [l.constant_cycles for l in spec.layers],
                               [l.span for l in spec.layers], input_events, spike_counts(spikes),
                               [l.own_span for l in spec.layers], [l.events for l in spec.layers])
