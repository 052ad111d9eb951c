"""The reference golden model: CONTRACT.md read literally, in plain int64, with its bounds asserted.

This model exists to check the optimised one (``golden/model.py``, which picks float32/int32
types and runs layer by layer). It follows the contract step by step: for every time step
(section 6) it quantises the input (section 2), then for every layer accumulates (3.1), decays
(3.2) and updates the neurons with each kind's reference step (its section of 3.3 onwards), then
the readout with the readout kind's (section 4). Every array is int64; vectorised over the batch
and the neurons only. No dtype choices, no early returns.

Each kind writes its own section out in :meth:`NeuronKind.reference_step` (``golden/kinds/<kind>.py``,
and ``ReadoutKind.reference_step`` in ``golden/readouts/``), with the tools of :class:`Reference`
only: plain int64, never the kind's optimised ``step`` or ``golden.arith``, so the two are written
twice and checked against each other (``tests/test_reference_golden.py``). Nothing here names a kind.

Section 5's bounds are asserted, not assumed: every accumulator value must satisfy
``|acc_i| <= ceil(ff_max_i / 2**s) + |bias_i| + sum_j |w_rec[i, j]|``, and each kind asserts its own
(e.g. the value before the membrane saturation fits ``max(S, acc_bits) + 1`` signed bits for LIF,
``+ 2`` for ALIF, and the ALIF trace ``b`` stays in ``[0, 2**T]``). A violation raises
:class:`BoundViolation`; it can only happen when the contract's own proof is wrong or an input lies
outside its quantised range.
"""
from __future__ import annotations

import numpy as np

from . import kinds, readouts
from .artifact import Artifact, InputSpec, LayerSpec
from .model import GoldenResult


class BoundViolation(ArithmeticError):
    """A value broke a bound that CONTRACT.md section 5 proves; the message names where."""


def _floor_shift(v: np.ndarray, n) -> np.ndarray:
    """``v >> n``: floor(v / 2**n), also for negative v (NumPy's >> on int64 is arithmetic)."""
    return np.right_shift(v, n)


class Reference:
    """The plain int64 tools a kind's reference step is written with, and its bound checks.

    One per run; ``where`` names the layer and step being computed (``layers[0] step 3``) and
    ``width`` is ``max(S, acc_bits)`` of that layer, so that a kind states its section 5 bound as
    ``ref.require_fits(pre, ref.width + 1, "decay(V) + acc")``. Deliberately independent of
    ``golden.arith`` and of the kinds' optimised steps.
    """

    def __init__(self, widths, counts: dict[str, int]) -> None:
        self.widths = widths
        self.counts = counts
        self.where = ""
        self.width = widths.state_bits

    floor_shift = staticmethod(_floor_shift)

    def decay(self, v: np.ndarray, a: np.ndarray, mode: str) -> np.ndarray:
        """Section 3.2."""
        if mode == "mult":
            return _floor_shift(a * v, self.widths.decay_bits)
        return v - _floor_shift(v, a)

    def saturate(self, v: np.ndarray, bits: int, name: str) -> np.ndarray:
        """``sat_B``, counting one event per changed element."""
        lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        self.count(name, int(np.count_nonzero((v < lo) | (v > hi))))
        return np.clip(v, lo, hi)

    def count(self, name: str, events: int) -> None:
        if events:
            self.counts[name] = self.counts.get(name, 0) + events

    def require(self, holds: bool, what: str) -> None:
        """Raise :class:`BoundViolation` naming ``what`` unless ``holds``."""
        if not holds:
            raise BoundViolation(f"{self.where}: {what}")

    def require_fits(self, v: np.ndarray, bits: int, what: str) -> None:
        fits = bool(np.all(v >= -(2 ** (bits - 1))) and np.all(v <= 2 ** (bits - 1) - 1))
        self.require(fits, f"{what} does not fit {bits} bits (section 5)")


def _quantize(spec: InputSpec, x: np.ndarray, counts: dict[str, int]) -> np.ndarray:
    """Section 2: float inputs to integers, round half up in float64, clamped (and counted)."""
    x = np.asarray(x, dtype=np.float64)
    if spec.kind == "spike":
        if not np.all((x == 0) | (x == 1)):
            raise ValueError("spike inputs must be 0 or 1")
        return x.astype(np.int64)
    scaled = x if spec.kind == "count" else x * float(2**spec.frac_bits)
    q = np.floor(scaled + 0.5).astype(np.int64)
    lo, hi = spec.range
    events = int(np.count_nonzero((q < lo) | (q > hi)))
    if events:
        counts["input"] = counts.get("input", 0) + events
    return np.clip(q, lo, hi)


def accumulator_limits(layer: LayerSpec, x_max: int) -> tuple[np.ndarray, int]:
    """Section 5: per-neuron ``ceil(ff_max_i / 2**s) + |bias_i| + sum_j |w_rec[i, j]|``, and acc_bits."""
    ff_max = (np.abs(layer.w_in).sum(axis=1) << layer.input_exp) * x_max
    limit = -_floor_shift(-ff_max, layer.input_shift) + np.abs(layer.bias)  # ceil(ff_max / 2**s)
    if layer.w_rec is not None:
        limit = limit + (np.abs(layer.w_rec).sum(axis=1) << layer.recurrent_exp)
    acc_bits = int(limit.max()).bit_length() + 1
    return limit, acc_bits


def run(art: Artifact, x: np.ndarray, *, traces: bool = False, quantized: bool = False) -> GoldenResult:
    """Run ``art`` on ``x`` (B, T, C), one step at a time; the same outputs as ``golden.model.run``."""
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[2] != art.input.channels:
        raise ValueError(
            f"input shape {x.shape} does not match the artifact: expected (batch, steps, {art.input.channels})"
        )
    widths, readout = art.widths, art.readout
    batch, steps, _ = x.shape
    counts: dict[str, int] = {}
    ref = Reference(widths, counts)

    # every kind's section, found by name; a kind without a reference step is refused up front
    layer_kinds = [kinds.get(layer.kind) for layer in art.layers]
    for kind in layer_kinds:
        if type(kind).reference_step is kinds.NeuronKind.reference_step:
            raise ValueError(f"the reference model has no section for neuron kind {kind.name!r}")
    readout_kind = readouts.get(readout.kind)
    if type(readout_kind).reference_step is readouts.ReadoutKind.reference_step:
        raise ValueError(f"the reference model has no section for readout kind {readout.kind!r}")

    limits = []
    for index, layer in enumerate(art.layers):
        x_max = art.input.max_abs if index == 0 else 1
        limits.append(accumulator_limits(layer, x_max))

    # state at the start of a sequence (section 3.5): every state array 0
    zeros = lambda n: np.zeros((batch, n), dtype=np.int64)  # noqa: E731
    state = [{s.name: zeros(layer.neurons) for s in kind.state(widths)}
             for kind, layer in zip(layer_kinds, art.layers)]
    history = [np.zeros((steps, batch, l.neurons), dtype=np.int64) for l in art.layers]  # S_l[t]
    states = [{} for _ in art.layers]
    if traces:
        for l, (kind, layer) in enumerate(zip(layer_kinds, art.layers)):
            states[l] = {k: np.zeros((batch, steps, layer.neurons), dtype=np.int64) for k in kind.traces(widths)}
    readout_state = {s.name: zeros(readout.classes) for s in readout_kind.state(widths)}
    readout_trace = np.zeros((batch, steps, readout.classes), dtype=np.int64)
    x_int = np.zeros((batch, steps, art.input.channels), dtype=np.int64)

    for t in range(steps):
        # section 2
        layer_input = x[:, t, :].astype(np.int64) if quantized else _quantize(art.input, x[:, t, :], counts)
        x_int[:, t, :] = layer_input
        for l, (kind, layer) in enumerate(zip(layer_kinds, art.layers)):
            ref.where = f"layers[{l}] step {t}"
            # section 3.1
            ff = layer_input @ (layer.w_in << layer.input_exp).T
            acc = _floor_shift(ff, layer.input_shift) + layer.bias
            if layer.span > 0 and t - layer.span >= 0:
                acc = acc + history[l][t - layer.span] @ (layer.w_rec << layer.recurrent_exp).T
            limit, acc_bits = limits[l]
            if np.any(np.abs(acc) > limit):
                worst = int(np.abs(acc).max())
                raise BoundViolation(f"{ref.where}: |acc| = {worst} exceeds the section 5 bound {int(limit.max())}")
            ref.width = max(widths.state_bits, acc_bits)
            # the kind's section; q is the layer's own spikes of the previous step
            q = history[l][t - 1] if t > 0 else zeros(layer.neurons)
            spikes = kind.reference_step(acc, state[l], q, layer, ref)
            if traces:
                for name in states[l]:
                    states[l][name][:, t] = state[l][name]
            history[l][t] = spikes
            layer_input = spikes
        # section 4
        ref.where = f"readout step {t}"
        acc_o = readout.bias + layer_input @ (readout.w << readout.weight_exp).T
        readout_trace[:, t] = readout_kind.reference_step(acc_o, readout_state, readout, ref)

    if readout.mode == "sequence":
        predictions = np.argmax(readout_trace[:, -1, :], axis=-1)
    else:
        predictions = np.argmax(readout_trace, axis=-1)
    return GoldenResult(
        predictions=predictions,
        readout=readout_trace,
        spikes=[h.transpose(1, 0, 2).astype(np.uint8) for h in history] if traces else [],
        states=states if traces else [],
        saturation=counts,
        spike_counts=[h.sum(axis=(0, 2)) for h in history],
        input_events=np.count_nonzero(x_int, axis=2),
    )
