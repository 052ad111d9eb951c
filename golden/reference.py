"""The reference golden model: CONTRACT.md read literally, in plain int64, with its bounds asserted.

This model exists to check the optimised one (``golden/model.py``, which picks float32/int32
types and runs layer by layer). It follows the contract step by step: for every time step
(section 6) it quantises the input (section 2), then for every layer accumulates (3.1), decays
(3.2) and updates the neurons (3.3 LIF, 3.4 ALIF, 3.6 STC-LIF), then updates the readout (4.1 sum,
4.2 leaky, 4.3 alif). Every array is
int64; vectorised over the batch and the neurons only. No dtype choices, no early returns.

Section 5's bounds are asserted, not assumed: every accumulator value must satisfy
``|acc_i| <= ceil(ff_max_i / 2**s) + |bias_i| + sum_j |w_rec[i, j]|``, the value before the
membrane saturation must fit ``max(S, acc_bits) + 1`` (LIF) or ``+ 2`` (ALIF) signed bits, and the
ALIF trace ``b`` must stay in ``[0, 2**D]``. A violation raises :class:`BoundViolation`; it can only
happen when the contract's own proof is wrong or an input lies outside its quantised range.
"""
from __future__ import annotations

import numpy as np

from .artifact import Artifact, InputSpec, LayerSpec
from .model import GoldenResult


class BoundViolation(ArithmeticError):
    """A value broke a bound that CONTRACT.md section 5 proves; the message names where."""


def _floor_shift(v: np.ndarray, n) -> np.ndarray:
    """``v >> n``: floor(v / 2**n), also for negative v (NumPy's >> on int64 is arithmetic)."""
    return np.right_shift(v, n)


def _decay(v: np.ndarray, a: np.ndarray, decay_bits: int, mode: str) -> np.ndarray:
    """Section 3.2."""
    if mode == "mult":
        return _floor_shift(a * v, decay_bits)
    return v - _floor_shift(v, a)


def _saturate(v: np.ndarray, bits: int, counts: dict[str, int], name: str) -> np.ndarray:
    """``sat_B``, counting one event per changed element."""
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    events = int(np.count_nonzero((v < lo) | (v > hi)))
    if events:
        counts[name] = counts.get(name, 0) + events
    return np.clip(v, lo, hi)


def _fits_signed(v: np.ndarray, bits: int) -> bool:
    return bool(np.all(v >= -(2 ** (bits - 1))) and np.all(v <= 2 ** (bits - 1) - 1))


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
    S, R, D = widths.state_bits, widths.readout_bits, widths.decay_bits
    batch, steps, _ = x.shape
    counts: dict[str, int] = {}
    one = np.int64(2**D)

    limits = []
    for index, layer in enumerate(art.layers):
        x_max = art.input.max_abs if index == 0 else 1
        limits.append(accumulator_limits(layer, x_max))

    # state at the start of a sequence (section 3.5): everything 0
    zeros = lambda n: np.zeros((batch, n), dtype=np.int64)  # noqa: E731
    v = [zeros(l.neurons) for l in art.layers]          # LIF V or ALIF u
    b = [zeros(l.neurons) for l in art.layers]          # ALIF adaptation trace
    history = [np.zeros((steps, batch, l.neurons), dtype=np.int64) for l in art.layers]  # S_l[t]
    states = [{} for _ in art.layers]
    if traces:
        for l, layer in enumerate(art.layers):
            keys = {"lif": ("v",), "alif": ("u", "b"), "stc": ("v",)}[layer.kind]
            states[l] = {k: np.zeros((batch, steps, layer.neurons), dtype=np.int64) for k in keys}
    for layer in art.layers:
        if layer.kind not in ("lif", "alif", "stc"):
            raise ValueError(f"the reference model has no section for neuron kind {layer.kind!r}")
    if readout.kind not in ("sum", "leaky", "alif"):
        raise ValueError(f"the reference model has no section for readout kind {readout.kind!r}")
    m = np.zeros((batch, readout.classes), dtype=np.int64)
    m_b = np.zeros((batch, readout.classes), dtype=np.int64)   # alif readout: adaptation trace
    m_q = np.zeros((batch, readout.classes), dtype=np.int64)   # alif readout: previous output spike
    readout_trace = np.zeros((batch, steps, readout.classes), dtype=np.int64)
    x_int = np.zeros((batch, steps, art.input.channels), dtype=np.int64)

    for t in range(steps):
        # section 2
        layer_input = x[:, t, :].astype(np.int64) if quantized else _quantize(art.input, x[:, t, :], counts)
        x_int[:, t, :] = layer_input
        for l, layer in enumerate(art.layers):
            where = f"layers[{l}] step {t}"
            # section 3.1
            ff = layer_input @ (layer.w_in << layer.input_exp).T
            acc = _floor_shift(ff, layer.input_shift) + layer.bias
            if layer.span > 0 and t - layer.span >= 0:
                acc = acc + history[l][t - layer.span] @ (layer.w_rec << layer.recurrent_exp).T
            limit, acc_bits = limits[l]
            if np.any(np.abs(acc) > limit):
                worst = int(np.abs(acc).max())
                raise BoundViolation(f"{where}: |acc| = {worst} exceeds the section 5 bound {int(limit.max())}")
            width = max(S, acc_bits)
            if layer.kind == "lif":
                # section 3.3
                pre = _decay(v[l], layer.decay, D, layer.decay_mode) + acc
                if not _fits_signed(pre, width + 1):
                    raise BoundViolation(f"{where}: decay(V) + acc does not fit {width + 1} bits (section 5)")
                h = _saturate(pre, S, counts, "membrane")
                spikes = (h >= layer.threshold).astype(np.int64)
                if layer.reset == "soft":
                    v[l] = h - layer.threshold * spikes
                else:
                    v[l] = h * (1 - spikes)
                if traces:
                    states[l]["v"][:, t] = v[l]
            elif layer.kind == "stc":
                # section 3.6: the gates from the layer's own spikes of the previous step
                q = history[l][t - 1] if t > 0 else zeros(layer.neurons)
                o = layer.options
                size = layer.neurons // o["gate_groups"]
                half, top = 2 ** (o["gate_bits"] - 1), 2 ** o["gate_bits"] - 1
                gates = []
                for w_gate, bias, table, shift in ((layer.w_a, layer.bias_a, layer.table_a, o["shift_a"]),
                                                   (layer.w_g, layer.bias_g, layer.table_g, o["shift_g"])):
                    z = zeros(layer.neurons)
                    for i in range(layer.neurons):
                        start = (i // size) * size
                        z[:, i] = q[:, start:start + size] @ w_gate[i] + bias[i]
                    e = _floor_shift(z, shift) + half
                    clamped = int(np.count_nonzero((e < 0) | (e > top)))
                    if clamped:
                        counts["gate"] = counts.get("gate", 0) + clamped
                    gates.append(table[np.clip(e, 0, top)])
                pre = _floor_shift(gates[0] * v[l], D) + _floor_shift(gates[1] * acc, D)
                if not _fits_signed(pre, width + 2):
                    raise BoundViolation(f"{where}: (A*V >> D) + (G*acc >> D) does not fit {width + 2} bits")
                h = _saturate(pre, S, counts, "membrane")
                spikes = (h >= layer.threshold).astype(np.int64)
                v[l] = h - layer.threshold * spikes
                if traces:
                    states[l]["v"][:, t] = v[l]
            else:
                # section 3.4: q is this neuron's own spike of the previous step
                q = history[l][t - 1] if t > 0 else zeros(layer.neurons)
                b[l] = _floor_shift(layer.rho * b[l], D) + q * (one - layer.rho)
                if np.any(b[l] < 0) or np.any(b[l] > one):
                    raise BoundViolation(f"{where}: the adaptation trace b left [0, 2**D] (section 3.4)")
                big_b = _saturate(layer.threshold + _floor_shift(layer.beta * b[l], D), S, counts, "threshold")
                pre = _decay(v[l], layer.decay, D, layer.decay_mode) + acc - q * big_b
                if not _fits_signed(pre, width + 2):
                    raise BoundViolation(f"{where}: decay(u) + acc - q*B does not fit {width + 2} bits (section 5)")
                v[l] = _saturate(pre, S, counts, "membrane")
                spikes = (v[l] > big_b).astype(np.int64)
                if traces:
                    states[l]["u"][:, t] = v[l]
                    states[l]["b"][:, t] = b[l]
            history[l][t] = spikes
            layer_input = spikes
        # section 4
        acc_o = readout.bias + layer_input @ (readout.w << readout.weight_exp).T
        if readout.kind == "sum":
            m = _saturate(m + acc_o, R, counts, "readout")
        elif readout.kind == "leaky":
            m = _saturate(_decay(m, readout.decay, D, readout.decay_mode) + acc_o, R, counts, "readout")
        else:
            # section 4.3: section 3.4 at the readout width; m is the membrane u
            m_b = _floor_shift(readout.rho * m_b, D) + m_q * (one - readout.rho)
            big_b = _saturate(readout.threshold + _floor_shift(readout.beta * m_b, D), R, counts, "readout")
            m = _saturate(_decay(m, readout.decay, D, readout.decay_mode) + acc_o - m_q * big_b, R, counts, "readout")
            m_q = (m > big_b).astype(np.int64)
        readout_trace[:, t] = m

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
