"""Integer primitives of the contract (``golden/CONTRACT.md``), vectorised with NumPy.

Every function here is a pure function on int64 arrays. The step functions follow the shape
``step(current, state, params) -> (spikes, state)`` so that the QAT model in ``quant/qat.py``
can be compared with them line by line.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .artifact import Artifact, InputSpec, LayerSpec


class Saturation:
    """Counts saturation events per named quantity (section 1: 'counts one saturation event')."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def add(self, name: str, n: int) -> None:
        if n:
            self.counts[name] = self.counts.get(name, 0) + int(n)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def signed_range(bits: int) -> tuple[int, int]:
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def saturate(x: np.ndarray, bits: int, counter: Saturation | None = None, name: str = "") -> np.ndarray:
    """``sat_B``: clamp to the signed B-bit range, counting the clamped elements.

    Returns ``x`` itself when nothing is out of range, found with two reductions (the common case
    by far); callers pass temporaries.
    """
    lo, hi = signed_range(bits)
    if x.size == 0 or (x.max() <= hi and x.min() >= lo):
        return x
    if counter is not None:
        counter.add(name, np.count_nonzero((x < lo) | (x > hi)))
    return np.clip(x, lo, hi)


def decay(v: np.ndarray, a: np.ndarray, decay_bits: int, mode: str) -> np.ndarray:
    """Section 3.2: ``(a*v) >> D`` (mult) or ``v - (v >> n)`` (shift). ``>>`` floors."""
    if mode == "mult":
        return (a * v) >> decay_bits
    return v - (v >> a)


def quantize_input(spec: InputSpec, x: np.ndarray, counter: Saturation | None = None) -> np.ndarray:
    """Section 2: float input -> int64, round half up, clamped to the input range."""
    x = np.asarray(x)
    lo, hi = spec.range
    if spec.kind == "spike":
        q = x.astype(np.int64)
        if not np.array_equal(q, x):
            raise ValueError("spike inputs must be 0 or 1")
    elif spec.kind == "count":
        q = np.floor(np.asarray(x, dtype=np.float64) + 0.5).astype(np.int64)
    else:
        q = np.floor(np.asarray(x, dtype=np.float64) * float(2**spec.frac_bits) + 0.5).astype(np.int64)
    if counter is not None:
        counter.add("input", np.count_nonzero((q < lo) | (q > hi)))
    return np.clip(q, lo, hi)


def accumulator_bound(layer: LayerSpec, input_max_abs: int) -> int:
    """Section 5: the largest |acc| any input can produce in this layer."""
    ff = np.abs(layer.w_in).sum(axis=1) * int(input_max_abs)
    ff = -((-ff) >> layer.input_shift)  # ceil division by 2**shift
    total = ff + np.abs(layer.bias)
    if layer.w_rec is not None:
        total = total + np.abs(layer.w_rec).sum(axis=1)
    return int(total.max()) if total.size else 0


def accumulator_bits(layer: LayerSpec, input_max_abs: int) -> int:
    """Signed width that holds every accumulator value of the layer."""
    return accumulator_bound(layer, input_max_abs).bit_length() + 1


def layer_input_max(art: Artifact, index: int) -> int:
    return art.input.max_abs if index == 0 else 1


# ---------------------------------------------------------------------------------------------
# neuron steps


class LIFState(NamedTuple):
    v: np.ndarray  # (B, N) membrane


class LIFParams(NamedTuple):
    lam: np.ndarray        # (N,) decay (Q0.D integer or shift)
    theta: np.ndarray      # (N,) threshold
    state_bits: int
    decay_bits: int
    decay_mode: str
    reset: str


def lif_step(acc: np.ndarray, state: LIFState, p: LIFParams, sat: Saturation | None = None):
    """Section 3.3. Returns (spikes int64 {0,1}, new state)."""
    h = saturate(decay(state.v, p.lam, p.decay_bits, p.decay_mode) + acc, p.state_bits, sat, "membrane")
    spikes = (h >= p.theta).astype(h.dtype)
    if p.reset == "soft":
        v = h - p.theta * spikes
    else:
        v = h * (1 - spikes)
    return spikes, LIFState(v)


class ALIFState(NamedTuple):
    u: np.ndarray       # (B, N) membrane
    b: np.ndarray       # (B, N) adaptation trace, [0, 2**D]
    s_prev: np.ndarray  # (B, N) previous spikes


class ALIFParams(NamedTuple):
    alpha: np.ndarray
    rho: np.ndarray
    b0: np.ndarray
    beta: np.ndarray
    state_bits: int
    decay_bits: int
    decay_mode: str


def alif_step(acc: np.ndarray, state: ALIFState, p: ALIFParams, sat: Saturation | None = None):
    """Section 3.4: adaptation, dynamic threshold, one-step-late reset. Returns (spikes, state)."""
    q = state.s_prev
    one = 1 << p.decay_bits
    b = ((p.rho * state.b) >> p.decay_bits) + q * (one - p.rho)
    big_b = saturate(p.b0 + ((p.beta * b) >> p.decay_bits), p.state_bits, sat, "threshold")
    u = saturate(decay(state.u, p.alpha, p.decay_bits, p.decay_mode) + acc - q * big_b,
                 p.state_bits, sat, "membrane")
    spikes = (u > big_b).astype(u.dtype)
    return spikes, ALIFState(u, b, spikes)


def layer_params(art: Artifact, layer: LayerSpec, dtype=np.int64):
    w = art.widths
    c = lambda a: a.astype(dtype)  # noqa: E731
    if layer.kind == "lif":
        return LIFParams(c(layer.decay), c(layer.threshold), w.state_bits, w.decay_bits, layer.decay_mode,
                         layer.reset)
    return ALIFParams(c(layer.decay), c(layer.rho), c(layer.threshold), c(layer.beta), w.state_bits,
                      w.decay_bits, layer.decay_mode)


def work_dtype(art: Artifact, layer: LayerSpec, acc_bits: int):
    """int32 when every intermediate of the layer's update provably fits 31 bits, else int64.

    Largest magnitudes: ``a*v`` < 2**(D + S - 1); ``decay(v) + acc - q*B`` < 2**S + 2**acc_bits;
    ``beta*b`` <= 2**(S - 1 + D); ``rho*b`` <= 2**(2D). Values are identical in either type.
    """
    w = art.widths
    need = max(w.decay_bits + w.state_bits, max(w.state_bits, acc_bits) + 2, 2 * w.decay_bits + 1)
    if layer.decay_mode == "shift":
        need = max(need, w.state_bits + 1)
    return np.int32 if need <= 31 else np.int64


def initial_state(layer: LayerSpec, batch: int, dtype=np.int64):
    zeros = lambda: np.zeros((batch, layer.neurons), dtype=dtype)  # noqa: E731
    if layer.kind == "lif":
        return LIFState(zeros())
    return ALIFState(zeros(), zeros(), zeros())


def neuron_step(kind: str):
    return lif_step if kind == "lif" else alif_step


def readout_step(acc: np.ndarray, m: np.ndarray, art: Artifact, sat: Saturation | None = None) -> np.ndarray:
    """Section 4: one readout update."""
    r = art.readout
    if r.kind == "sum":
        nxt = m + acc
    else:
        nxt = decay(m, r.decay, art.widths.decay_bits, r.decay_mode) + acc
    return saturate(nxt, art.widths.readout_bits, sat, "readout")


def predict(readout: np.ndarray, mode: str) -> np.ndarray:
    """Argmax with ties to the lowest class: (B,T,M) -> (B,) for sequence, (B,T) for per_step."""
    if mode == "sequence":
        return np.argmax(readout[:, -1, :], axis=-1)
    return np.argmax(readout, axis=-1)
