"""The bit-exact golden model: runs an artifact on a batch of inputs (section 6 of CONTRACT.md).

Vectorised over the batch; the only Python loop is over time steps and layers. Synaptic sums are
float32 (or float64) matrix products when the weight bound proves every partial sum is an integer
below 2**24 (2**53), where those types are exact and BLAS-fast; otherwise int64 products.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .artifact import Artifact
from .contract import (
    Saturation,
    accumulator_bits,
    work_dtype,
    initial_state,
    layer_input_max,
    layer_params,
    neuron_step,
    predict,
    quantize_input,
    state_traces,
)
from . import readouts

_EXACT_F32 = 1 << 24
_EXACT_F64 = 1 << 53


def _dtype_for(bound: int):
    """The cheapest float type in which every partial sum below ``bound`` is an exact integer."""
    if bound < _EXACT_F32:
        return np.float32
    if bound < _EXACT_F64:
        return np.float64
    return np.int64


@dataclass
class GoldenResult:
    """Outputs of :func:`run`.

    predictions: (B,) for a sequence readout, (B, T) for a per-step readout.
    readout:     (B, T, M) int64, the readout state ``m`` after every step.
    spikes:      per layer (B, T, N) uint8, only with ``traces=True``.
    states:      per layer dict of (B, T, N) int64, the kind's trace arrays (``v``; ``u``, ``b``; ...),
                 only with ``traces=True``.
    saturation:  saturation events per quantity (membrane, threshold, readout, input), summed.
    spike_counts: per layer, total spikes (B,) over the sequence.
    input_events: (B, T) non-zero quantised input values per step.
    """

    predictions: np.ndarray
    readout: np.ndarray
    spikes: list[np.ndarray] = field(default_factory=list)
    states: list[dict[str, np.ndarray]] = field(default_factory=list)
    saturation: dict[str, int] = field(default_factory=dict)
    spike_counts: list[np.ndarray] = field(default_factory=list)
    input_events: np.ndarray | None = None


def _product(x: np.ndarray, w_t: np.ndarray) -> np.ndarray:
    """Exact integer product ``x @ w_t`` (w_t already in the dtype chosen by :func:`_dtype_for`)."""
    if w_t.dtype == np.int64:
        return x @ w_t
    return (x.astype(w_t.dtype, copy=False) @ w_t).astype(np.int64)


def _feed_forward(x: np.ndarray, layer, input_max: int, work) -> np.ndarray:
    """``(x @ w_in.T >> input_shift) + bias`` for all steps at once, in ``work`` dtype (|x| <= input_max).

    In float32/float64 when the bound allows: the product is exact there, scaling by 2**-shift is
    exact, and so is the floor, so this equals the integer floor shift (contract section 1) with
    fewer and narrower passes than int64 arithmetic.
    """
    w_in = layer.w_in_shifted  # section 3.1: w << input_exp, an exact integer
    ff_bound = int(np.abs(w_in).sum(axis=1).max()) * input_max
    dtype = _dtype_for(ff_bound + int(np.abs(layer.bias).max(initial=0)))
    if dtype == np.int64:
        ff = _product(x, w_in.T.astype(_dtype_for(ff_bound)))
        return ((ff >> layer.input_shift) + layer.bias).astype(work)
    ff = x.astype(dtype, copy=False) @ w_in.T.astype(dtype)
    if layer.input_shift:
        ff *= dtype(2.0 ** -layer.input_shift)
        np.floor(ff, out=ff)
    ff += layer.bias.astype(dtype)
    return ff.astype(work)


def run(art: Artifact, x: np.ndarray, *, traces: bool = False, quantized: bool = False) -> GoldenResult:
    """Run the artifact on ``x`` (B, T, C) floats (or already-quantised ints with ``quantized=True``).

    Layers run one after the other over the whole sequence (layer l never depends on layer l+1,
    so this equals the step-major order of CONTRACT.md section 6). Feed-forward products for all
    steps are one matrix product; only the recurrent product and the neuron update loop over time.
    """
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[2] != art.input.channels:
        raise ValueError(
            f"input shape {x.shape} does not match the artifact: expected (batch, steps, {art.input.channels})"
        )
    sat = Saturation()
    xq = x.astype(np.int64) if quantized else quantize_input(art.input, x, sat)
    batch, steps, _ = xq.shape
    inp = np.ascontiguousarray(xq.transpose(1, 0, 2))  # time-major (T, B, C)

    spikes_tr: list[np.ndarray] = []
    states_tr: list[dict[str, np.ndarray]] = []
    counts: list[np.ndarray] = []
    for index, layer in enumerate(art.layers):
        n = layer.neurons
        input_max = layer_input_max(art, index)
        work = work_dtype(art, layer, accumulator_bits(layer, input_max))
        acc_all = _feed_forward(inp.reshape(steps * batch, -1), layer, input_max, work).reshape(steps, batch, n)
        w_rec_t = None
        if layer.span > 0:
            w_rec = layer.w_rec_shifted
            w_rec_t = w_rec.T.astype(_dtype_for(int(np.abs(w_rec).sum(axis=1).max())))
        params, step = layer_params(art, layer, work), neuron_step(layer.kind)
        state = initial_state(layer, batch, work)
        out = np.zeros((steps, batch, n), dtype=work)
        # the spikes again in the recurrent product's dtype, so that product needs no conversions
        out_w = out if w_rec_t is None or w_rec_t.dtype == work else np.zeros((steps, batch, n), w_rec_t.dtype)
        keys = state_traces(art, layer)
        rec_states = {k: np.zeros((steps, batch, n), dtype=np.int64) for k in keys} if traces else None
        for t in range(steps):
            acc = acc_all[t]
            if layer.span > 0 and t >= layer.span:  # S[t - span]; 0 before the start
                acc = acc + (out_w[t - layer.span] @ w_rec_t).astype(work, copy=False)
            spikes, state = step(acc, state, params, sat)
            out[t] = spikes
            if out_w is not out:
                out_w[t] = spikes
            if traces:
                for k in keys:
                    rec_states[k][t] = getattr(state, k)
        counts.append(out.sum(axis=(0, 2), dtype=np.int64))
        if traces:
            spikes_tr.append(out.transpose(1, 0, 2).astype(np.uint8))
            states_tr.append({k: v.transpose(1, 0, 2).astype(np.int64) for k, v in rec_states.items()})
        inp = out_w if out_w.dtype.kind == "f" else out  # the same values; a float copy saves a conversion

    r = art.readout
    w_out = r.w_shifted
    w_out_t = w_out.T.astype(_dtype_for(int(np.abs(w_out).sum(axis=1).max())))
    acc_o_all = _product(inp.reshape(steps * batch, -1), w_out_t).reshape(steps, batch, r.classes) + r.bias
    readout = np.zeros((steps, batch, r.classes), dtype=np.int64)
    kind = readouts.get(r.kind)
    params, r_state = kind.params(art, r), kind.initial_state(r.classes, batch)
    for t in range(steps):
        r_state = kind.step(acc_o_all[t], r_state, params, sat)
        readout[t] = kind.value(r_state)
    readout = readout.transpose(1, 0, 2).copy()

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
