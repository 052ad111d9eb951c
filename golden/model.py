"""The bit-exact golden model: runs an artifact on a batch of inputs (section 6 of CONTRACT.md).

Vectorised over the batch; the only Python loop is over time steps and layers. Synaptic sums are
computed as float64 matrix products when the accumulator bound proves every partial sum is an
integer below 2**53 (then float64 is exact and BLAS-fast); otherwise as int64 products.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .artifact import Artifact
from .contract import (
    Saturation,
    accumulator_bound,
    initial_state,
    layer_input_max,
    layer_params,
    neuron_step,
    predict,
    quantize_input,
    readout_step,
)

_EXACT_F64 = 1 << 52


@dataclass
class GoldenResult:
    """Outputs of :func:`run`.

    predictions: (B,) for a sequence readout, (B, T) for a per-step readout.
    readout:     (B, T, M) int64, the readout state ``m`` after every step.
    spikes:      per layer (B, T, N) uint8, only with ``traces=True``.
    states:      per layer dict of (B, T, N) int64 (``v`` or ``u``, ``b``), only with ``traces=True``.
    saturation:  saturation events per quantity (membrane, threshold, readout, input), summed.
    spike_counts: per layer, total spikes (B,) over the sequence.
    """

    predictions: np.ndarray
    readout: np.ndarray
    spikes: list[np.ndarray] = field(default_factory=list)
    states: list[dict[str, np.ndarray]] = field(default_factory=list)
    saturation: dict[str, int] = field(default_factory=dict)
    spike_counts: list[np.ndarray] = field(default_factory=list)
    input_events: np.ndarray | None = None  # (B, T) non-zero input values per step


def _matmul(x: np.ndarray, w_t: np.ndarray, exact_f64: bool) -> np.ndarray:
    if exact_f64:
        return (x.astype(np.float64) @ w_t).astype(np.int64)
    return x @ w_t


def run(art: Artifact, x: np.ndarray, *, traces: bool = False, quantized: bool = False) -> GoldenResult:
    """Run the artifact on ``x`` (B, T, C) floats (or already-quantised ints with ``quantized=True``)."""
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[2] != art.input.channels:
        raise ValueError(
            f"input shape {x.shape} does not match the artifact: expected (batch, steps, {art.input.channels})"
        )
    sat = Saturation()
    xq = x.astype(np.int64) if quantized else quantize_input(art.input, x, sat)
    batch, steps, _ = xq.shape
    widths = art.widths

    plans = []
    for index, layer in enumerate(art.layers):
        bound = accumulator_bound(layer, layer_input_max(art, index))
        exact = bound < _EXACT_F64
        dtype = np.float64 if exact else np.int64
        plans.append(
            dict(
                w_in_t=layer.w_in.T.astype(dtype).copy(),
                w_rec_t=None if layer.w_rec is None else layer.w_rec.T.astype(dtype).copy(),
                exact=exact,
                params=layer_params(art, layer),
                step=neuron_step(layer.kind),
                state=initial_state(layer, batch),
                history=np.zeros((max(layer.span, 1), batch, layer.neurons), dtype=np.int64),
            )
        )
    r = art.readout
    w_out_t = r.w.T.astype(np.float64).copy()
    m = np.zeros((batch, r.classes), dtype=np.int64)

    readout = np.zeros((batch, steps, r.classes), dtype=np.int64)
    spikes_tr = [np.zeros((batch, steps, l.neurons), dtype=np.uint8) for l in art.layers] if traces else []
    states_tr: list[dict[str, np.ndarray]] = []
    if traces:
        for l in art.layers:
            keys = ("v",) if l.kind == "lif" else ("u", "b")
            states_tr.append({k: np.zeros((batch, steps, l.neurons), dtype=np.int64) for k in keys})
    counts = [np.zeros(batch, dtype=np.int64) for _ in art.layers]

    for t in range(steps):
        inp = xq[:, t, :]
        for index, (layer, plan) in enumerate(zip(art.layers, plans)):
            ff = _matmul(inp, plan["w_in_t"], plan["exact"])
            acc = (ff >> layer.input_shift) + layer.bias
            if layer.span > 0:
                slot = t % layer.span  # holds S[t - span] (zeros before the sequence starts)
                acc = acc + _matmul(plan["history"][slot], plan["w_rec_t"], plan["exact"])
            spikes, plan["state"] = plan["step"](acc, plan["state"], plan["params"], sat)
            if layer.span > 0:
                plan["history"][t % layer.span] = spikes
            counts[index] += spikes.sum(axis=1)
            if traces:
                spikes_tr[index][:, t] = spikes
                st = plan["state"]
                if layer.kind == "lif":
                    states_tr[index]["v"][:, t] = st.v
                else:
                    states_tr[index]["u"][:, t] = st.u
                    states_tr[index]["b"][:, t] = st.b
            inp = spikes
        acc_o = (inp.astype(np.float64) @ w_out_t).astype(np.int64) + r.bias
        m = readout_step(acc_o, m, art, sat)
        readout[:, t] = m

    return GoldenResult(
        predictions=predict(readout, r.mode),
        readout=readout,
        spikes=spikes_tr,
        states=states_tr,
        saturation=dict(sat.counts),
        spike_counts=counts,
        input_events=np.count_nonzero(xq, axis=2),
    )


def run_batched(art: Artifact, x: np.ndarray, *, batch_size: int = 256, progress=None) -> GoldenResult:
    """Run a whole data set in batches (predictions, readout and saturation only; no traces)."""
    preds, reads, events = [], [], []
    counts = [[] for _ in art.layers]
    sat: dict[str, int] = {}
    for start in range(0, len(x), batch_size):
        res = run(art, x[start : start + batch_size])
        preds.append(res.predictions)
        reads.append(res.readout)
        events.append(res.input_events)
        for i, c in enumerate(res.spike_counts):
            counts[i].append(c)
        for k, v in res.saturation.items():
            sat[k] = sat.get(k, 0) + v
        if progress is not None:
            progress(min(start + batch_size, len(x)))
    return GoldenResult(
        predictions=np.concatenate(preds),
        readout=np.concatenate(reads),
        saturation=sat,
        spike_counts=[np.concatenate(c) for c in counts],
        input_events=np.concatenate(events),
    )
