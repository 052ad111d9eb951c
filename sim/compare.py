"""RTL against the golden model, step by step, and measured cycles against the bound.

:class:`RtlTrace` is what a simulation observed (per-layer spikes from the debug ports, every
readout word, the per-step predictions, cycle counts). :func:`compare` checks it against a
:class:`~skipcore.golden.model.GoldenResult` and names the FIRST difference in the order of the
contract (sample, step, then layers 0..L-1 by neuron, then the readout by class, the prediction and
the end-of-sequence marker), e.g. ``sample 3, step 17, layer 1, neuron 5: spike rtl=1 golden=0``.

Spikes are compared as packed bits (:func:`pack_spikes`, 8 neurons a byte), a few hundred samples
at a time, so whole test sets (1000 x 40 x 256 neurons, or 141 x 1301 x 36) stay small in memory.
The cores expose spikes, not membrane or threshold state (hdl/INTERFACE.md), so states are not
compared; a wrong state shows as soon as it changes a spike or the readout.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .coreio import CoreSpec, cycle_bounds

__all__ = ["RtlTrace", "Mismatch", "Comparison", "MismatchError", "CycleReport", "compare", "cycle_report",
           "pack_spikes"]

#: Ordering of the quantities within one step (the contract's order of operations).
_ORDER = {"missing": -1, "spike": 0, "readout": 1, "prediction": 2, "end_seq": 3}


@dataclass
class RtlTrace:
    """Observations of one simulated batch (B samples of T steps).

    readout: (B, T, M) int64; prediction, end_seq: (B, T); valid: (B, T) bool (the output word
    arrived); spikes: per layer (B, T, N) uint8 (empty without debug ports); spike_bits: the same
    packed (:func:`pack_spikes`; the fast runner keeps these, with ``neurons`` per layer); layer_cycles: (B, T, L)
    from ``dbg_l{l}_cycles`` (or None); step_cycles: (B, T) clock cycles since the previous output
    word (the first step: since the end of reset, both ends counted), so they sum to total_cycles;
    input_events: (B, T) input words sent per step; total_cycles: cycles from the end of reset to
    the last output word.
    """

    readout: np.ndarray
    prediction: np.ndarray
    end_seq: np.ndarray
    valid: np.ndarray
    spikes: list[np.ndarray] = field(default_factory=list)
    spike_counts: np.ndarray | None = None  #: (B, T, L) (the fast runner with record_spikes=False)
    spike_bits: list[np.ndarray] | None = None  #: per layer (B, T, ceil(N/8)) uint8, bitorder little
    neurons: list[int] | None = None  #: neurons per layer (with spike_bits)
    layer_cycles: np.ndarray | None = None
    step_cycles: np.ndarray | None = None
    input_events: np.ndarray | None = None
    total_cycles: int = 0
    protocol_errors: list[str] = field(default_factory=list)

    @property
    def batch(self) -> int:
        return int(self.readout.shape[0])

    @property
    def steps(self) -> int:
        return int(self.readout.shape[1])

    def predictions(self, mode: str) -> np.ndarray:
        """RTL predictions as golden gives them: (B,) for ``sequence``, (B, T) for ``per_step``."""
        return self.prediction[:, -1].copy() if mode == "sequence" else self.prediction.copy()

    def save(self, path: str | os.PathLike) -> None:
        arrays = dict(readout=self.readout, prediction=self.prediction, end_seq=self.end_seq, valid=self.valid,
                      total_cycles=np.int64(self.total_cycles), n_layers=np.int64(len(self.spikes)),
                      protocol_errors=np.array(self.protocol_errors, dtype=str))
        for l, s in enumerate(self.spikes):
            arrays[f"spikes_l{l}"] = s
        for l, s in enumerate(self.spike_bits or []):
            arrays[f"spike_bits_l{l}"] = s
        if self.neurons is not None:
            arrays["neurons"] = np.asarray(self.neurons, dtype=np.int64)
        for name in ("spike_counts", "layer_cycles", "step_cycles", "input_events"):
            if getattr(self, name) is not None:
                arrays[name] = getattr(self, name)
        np.savez_compressed(path, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "RtlTrace":
        with np.load(Path(path), allow_pickle=False) as z:
            n = int(z["n_layers"])
            get = lambda k: z[k] if k in z.files else None  # noqa: E731
            neurons = get("neurons")
            return cls(
                readout=z["readout"], prediction=z["prediction"], end_seq=z["end_seq"], valid=z["valid"],
                spikes=[z[f"spikes_l{l}"] for l in range(n)], spike_counts=get("spike_counts"),
                spike_bits=None if neurons is None else [z[f"spike_bits_l{l}"] for l in range(len(neurons))],
                neurons=None if neurons is None else [int(v) for v in neurons],
                layer_cycles=get("layer_cycles"), step_cycles=get("step_cycles"),
                input_events=get("input_events"), total_cycles=int(z["total_cycles"]),
                protocol_errors=[str(s) for s in z["protocol_errors"]],
            )

    def layer_spike_counts(self) -> np.ndarray | None:
        """(B, T, L) spikes per layer per step."""
        if self.spike_counts is not None:
            return self.spike_counts
        if self.spike_bits:
            return np.stack([np.bitwise_count(b).sum(axis=2, dtype=np.int64) for b in self.spike_bits], axis=2)
        if not self.spikes:
            return None
        return np.stack([s.sum(axis=2) for s in self.spikes], axis=2).astype(np.int64)

    def slice(self, a: int, b: int) -> "RtlTrace":
        """Samples ``a:b`` (total_cycles and protocol errors are the whole trace's)."""
        sl = lambda v: None if v is None else v[a:b]  # noqa: E731
        return RtlTrace(readout=self.readout[a:b], prediction=self.prediction[a:b], end_seq=self.end_seq[a:b],
                        valid=self.valid[a:b], spikes=[s[a:b] for s in self.spikes],
                        spike_counts=sl(self.spike_counts),
                        spike_bits=None if self.spike_bits is None else [s[a:b] for s in self.spike_bits],
                        neurons=self.neurons, layer_cycles=sl(self.layer_cycles), step_cycles=sl(self.step_cycles),
                        input_events=sl(self.input_events), total_cycles=self.total_cycles,
                        protocol_errors=self.protocol_errors)


@dataclass(frozen=True, order=True)
class Mismatch:
    """One differing value. ``layer`` is -1 for readout, prediction and marker quantities; ``index``
    is the neuron (spikes) or class (readout). Instances sort in the contract's order."""

    sample: int
    step: int
    order: int
    layer: int
    index: int
    quantity: str = field(compare=False)
    rtl: int = field(compare=False)
    golden: int = field(compare=False)

    def __str__(self) -> str:
        where = f"sample {self.sample}, step {self.step}"
        if self.quantity == "spike":
            where += f", layer {self.layer}, neuron {self.index}"
        elif self.quantity == "readout":
            where += f", class {self.index}"
        elif self.quantity == "spike_count":
            where += f", layer {self.layer}"
        elif self.quantity == "missing":
            return f"{where}: no output word from the RTL (the core stalled or stopped early)"
        return f"{where}: {self.quantity} rtl={self.rtl} golden={self.golden}"


class MismatchError(AssertionError):
    """The RTL differs from the golden model; the message names the first difference."""


@dataclass
class Comparison:
    """Result of :func:`compare`."""

    samples: int
    steps: int
    counts: dict[str, int]
    mismatches: list[Mismatch]  #: the first few, in contract order
    prediction_mismatches: int  #: samples (sequence) or steps (per_step) whose prediction differs
    protocol_errors: list[str] = field(default_factory=list)
    steps_with_mismatch: int = 0  #: (sample, step) pairs with any difference, missing words included
    samples_with_mismatch: int = 0
    spikes_compared: str = "none"  #: "every neuron", "counts" (per layer per step) or "none"
    neurons: tuple[int, ...] = ()  #: neurons per layer whose spikes were compared

    @property
    def total(self) -> int:
        return sum(self.counts.values()) + len(self.protocol_errors)

    @property
    def ok(self) -> bool:
        return self.total == 0

    @property
    def first(self) -> Mismatch | None:
        return self.mismatches[0] if self.mismatches else None

    def scope(self) -> str:
        """What was compared, in words (for reports)."""
        layers = len(self.neurons)
        spikes = {
            "every neuron": f"every spike of every neuron ({sum(self.neurons)} neurons in {layers} "
                            f"layer{'s' if layers != 1 else ''})",
            "counts": f"spike counts per layer ({layers} layer{'s' if layers != 1 else ''})",
        }.get(self.spikes_compared)
        what = (f"{spikes}, " if spikes else "") + "readout, prediction and end marker"
        return f"{what} at every step: {self.samples} samples x {self.steps} steps"

    def message(self, limit: int = 5) -> str:
        if self.ok:
            return f"RTL equals golden: {self.scope()}"
        parts = [f"RTL differs from golden ({', '.join(f'{k}: {v}' for k, v in self.counts.items() if v)}"
                 f"{', protocol: %d' % len(self.protocol_errors) if self.protocol_errors else ''})"]
        if self.first is not None:
            parts.append(f"first difference: {self.first}")
        parts += [f"  then: {m}" for m in self.mismatches[1:limit]]
        parts += [f"  protocol: {p}" for p in self.protocol_errors[:limit]]
        return "\n".join(parts)

    def raise_if_mismatch(self, context: str = "") -> None:
        if not self.ok:
            raise MismatchError((context + ": " if context else "") + self.message())


def pack_spikes(spikes: np.ndarray) -> np.ndarray:
    """(..., N) 0/1 spikes as (..., ceil(N/8)) uint8: neuron i is bit i % 8 of byte i // 8."""
    return np.packbits(np.asarray(spikes, dtype=np.uint8), axis=-1, bitorder="little")


def _argmax(readout: np.ndarray) -> np.ndarray:
    return np.argmax(readout, axis=-1)


def compare(
    rtl: RtlTrace,
    *,
    readout: np.ndarray,
    spikes: list[np.ndarray] | None = None,
    spike_bits: list[np.ndarray] | None = None,
    mode: str = "sequence",
    keep: int = 20,
    chunk: int = 256,
) -> Comparison:
    """Compare an RTL trace with golden ``readout`` (B, T, M) and per-layer spikes: ``spikes``
    (B, T, N) 0/1, or the same packed (``spike_bits``, :func:`pack_spikes`).

    Spikes are compared neuron by neuron at every step when the trace has them (``spike_bits``
    from the fast runner, ``spikes`` from cocotb), ``chunk`` samples at a time; as counts per layer
    per step when it has only counts (fast runner with ``record_spikes=False``). Every step's
    ``out_prediction`` must be the argmax of the golden readout (ties to the lowest class) and
    ``out_end_seq`` must mark the last step.
    """
    readout = np.asarray(readout, dtype=np.int64)
    batch, steps, _ = readout.shape
    if rtl.readout.shape != readout.shape:
        raise ValueError(f"RTL readout shape {rtl.readout.shape} differs from golden {readout.shape}")
    valid = rtl.valid.astype(bool)
    bad = ~valid  # (B, T): any difference in this step
    found: list[Mismatch] = []
    counts: dict[str, int] = {}

    def collect(name: str, mask: np.ndarray, rtl_v: np.ndarray, gold_v: np.ndarray, layer: int = -1) -> None:
        # mask (B, T, K) or (B, T); only where the output word arrived
        if mask.ndim == 2:
            mask, rtl_v, gold_v = mask[..., None], rtl_v[..., None], gold_v[..., None]
        mask = mask & valid[..., None]
        counts[name] = counts.get(name, 0) + int(mask.sum())
        bad[...] |= mask.any(axis=2)
        for b, t, k in np.argwhere(mask)[:keep]:
            found.append(Mismatch(int(b), int(t), _ORDER.get(name, 9), max(layer, -1), int(k), name,
                                  int(rtl_v[b, t, k]), int(gold_v[b, t, k])))

    missing = ~valid
    counts["missing"] = int(missing.sum())
    for b, t in np.argwhere(missing)[:keep]:
        found.append(Mismatch(int(b), int(t), _ORDER["missing"], -1, 0, "missing", 0, 0))

    golden_layers = spike_bits if spike_bits is not None else spikes
    compared, neurons = "none", ()
    if golden_layers is not None:
        rtl_bits = rtl.spike_bits if rtl.spike_bits is not None else (
            [pack_spikes(s) for s in rtl.spikes] if rtl.spikes else None)
        if rtl_bits is not None:
            if len(rtl_bits) != len(golden_layers):
                raise ValueError(f"the RTL trace has {len(rtl_bits)} layers of spikes, golden {len(golden_layers)}")
            compared = "every neuron"
            neurons = tuple(rtl.neurons) if rtl.neurons is not None else tuple(
                int(s.shape[2]) for s in (rtl.spikes or golden_layers))
            counts["spike"] = 0
            for l in range(len(golden_layers)):
                _compare_spike_bits(l, rtl_bits[l], golden_layers[l], spike_bits is not None, valid, bad, counts,
                                    found, keep, chunk)
        elif rtl.spike_counts is not None:
            compared = "counts"
            neurons = tuple(int(n) for n in rtl.neurons) if rtl.neurons else ()
            for l, g in enumerate(golden_layers):
                if spike_bits is not None:
                    g = np.bitwise_count(np.asarray(g)).sum(axis=2, dtype=np.int64)
                else:
                    neurons = neurons or tuple(int(s.shape[2]) for s in golden_layers)
                    g = np.asarray(g).sum(axis=2, dtype=np.int64)
                r = rtl.spike_counts[:, :, l].astype(np.int64)
                collect("spike_count", r != g, r, g, l)
    collect("readout", rtl.readout != readout, rtl.readout, readout)
    gold_pred = _argmax(readout)
    collect("prediction", rtl.prediction != gold_pred, rtl.prediction, gold_pred)
    gold_end = np.zeros((batch, steps), dtype=np.int64)
    gold_end[:, -1] = 1
    collect("end_seq", rtl.end_seq != gold_end, rtl.end_seq, gold_end)

    found.sort()
    rp, gp = rtl.predictions(mode), (gold_pred[:, -1] if mode == "sequence" else gold_pred)
    return Comparison(batch, steps, counts, found[:keep], int((rp != gp).sum()), list(rtl.protocol_errors),
                      steps_with_mismatch=int(bad.sum()), samples_with_mismatch=int(bad.any(axis=1).sum()),
                      spikes_compared=compared, neurons=neurons)


def _compare_spike_bits(layer: int, rtl_bits: np.ndarray, golden: np.ndarray, golden_packed: bool,
                        valid: np.ndarray, bad: np.ndarray, counts: dict[str, int], found: list[Mismatch],
                        keep: int, chunk: int) -> None:
    """One layer's packed spikes against golden, ``chunk`` samples at a time: adds every differing
    spike to ``counts["spike"]`` and ``bad``, and the layer's first ``keep`` to ``found``."""
    kept = 0
    for a in range(0, len(valid), chunk):
        b = min(a + chunk, len(valid))
        gold = np.asarray(golden[a:b]) if golden_packed else pack_spikes(golden[a:b])
        rtl = np.asarray(rtl_bits[a:b], dtype=np.uint8)
        if rtl.shape != gold.shape:
            raise ValueError(f"layer {layer}: RTL spikes of shape {rtl.shape} (packed) differ from golden {gold.shape}")
        diff = np.bitwise_xor(rtl, gold)
        diff[~valid[a:b]] = 0
        step_bad = diff.any(axis=2)
        if not step_bad.any():
            continue
        bad[a:b] |= step_bad
        counts["spike"] += int(np.bitwise_count(diff).sum())
        for s, t in np.argwhere(step_bad)[:keep - kept]:
            for byte in np.flatnonzero(diff[s, t]):
                for bit in range(8):
                    if kept < keep and (int(diff[s, t, byte]) >> bit) & 1:
                        found.append(Mismatch(a + int(s), int(t), _ORDER["spike"], layer, 8 * int(byte) + bit, "spike",
                                              (int(rtl[s, t, byte]) >> bit) & 1, (int(gold[s, t, byte]) >> bit) & 1))
                        kept += 1


def compare_golden(rtl: RtlTrace, golden, mode: str, keep: int = 20) -> Comparison:
    """:func:`compare` against a :class:`~skipcore.golden.model.GoldenResult` (traces optional)."""
    return compare(rtl, readout=golden.readout, spikes=golden.spikes or None, mode=mode, keep=keep)


@dataclass
class CycleReport:
    """Measured cycles per layer per step against the bound of INTERFACE.md."""

    measured: np.ndarray  #: (B, T, L)
    bound: np.ndarray  #: (B, T, L)
    step_cycles: np.ndarray | None = None  #: (B, T) cycles between output words

    @property
    def ratio(self) -> np.ndarray:
        return self.measured / np.maximum(self.bound, 1)

    @property
    def ratio_mean(self) -> float:
        return float(self.ratio.mean()) if self.ratio.size else 0.0

    @property
    def ratio_max(self) -> float:
        return float(self.ratio.max()) if self.ratio.size else 0.0

    @property
    def exceeded(self) -> int:
        return int((self.measured > self.bound).sum())

    def worst(self) -> tuple[int, int, int, int, int] | None:
        """(sample, step, layer, measured, bound) of the largest ratio."""
        if not self.ratio.size:
            return None
        b, t, l = np.unravel_index(int(np.argmax(self.ratio)), self.ratio.shape)
        return int(b), int(t), int(l), int(self.measured[b, t, l]), int(self.bound[b, t, l])

    def per_layer(self) -> list[dict[str, float]]:
        out = []
        for l in range(self.measured.shape[2]):
            m, b = self.measured[:, :, l], self.bound[:, :, l]
            r = m / np.maximum(b, 1)
            out.append(dict(layer=l, cycles_mean=float(m.mean()), cycles_max=int(m.max()),
                            bound_mean=float(b.mean()), bound_max=int(b.max()),
                            ratio_mean=float(r.mean()), ratio_max=float(r.max())))
        return out

    def summary(self) -> dict:
        w = self.worst()
        return dict(ratio_mean=self.ratio_mean, ratio_max=self.ratio_max, exceeded=self.exceeded,
                    worst=None if w is None else dict(zip(("sample", "step", "layer", "measured", "bound"), w)),
                    per_layer=self.per_layer(),
                    step_cycles_mean=None if self.step_cycles is None else float(self.step_cycles.mean()),
                    step_cycles_max=None if self.step_cycles is None else int(self.step_cycles.max()))

    def check(self, tolerance: float = 1.0) -> None:
        """Raise AssertionError naming the worst step when a measurement exceeds the bound."""
        if self.ratio.size and self.ratio_max > tolerance:
            b, t, l, m, bd = self.worst()
            raise AssertionError(
                f"cycle bound exceeded {self.exceeded} time(s); worst: sample {b}, step {t}, layer {l}: "
                f"{m} cycles > bound {bd} (ratio {m / bd:.3f})"
            )


def cycle_report(spec: CoreSpec, rtl: RtlTrace, spikes: list[np.ndarray] | None = None) -> CycleReport | None:
    """Cycles vs bound; the bound uses golden ``spikes`` when given, else the RTL's own spikes."""
    if rtl.layer_cycles is None or rtl.input_events is None:
        return None
    sp = spikes if spikes is not None else (rtl.spikes or rtl.layer_spike_counts())
    if sp is None or (isinstance(sp, list) and not sp):
        return None
    bound = cycle_bounds(spec, rtl.input_events, sp)
    return CycleReport(rtl.layer_cycles.astype(np.int64), bound, rtl.step_cycles)
