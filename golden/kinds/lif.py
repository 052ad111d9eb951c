"""LIF (ASRC-SNN convention), CONTRACT.md section 3.3."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..arith import decay, saturate
from . import ArraySpec, NeuronKind, RandomContext, StateSpec, register

__all__ = ["LIFState", "LIFParams", "lif_step", "fire_and_reset", "LIF"]


class LIFState(NamedTuple):
    v: np.ndarray  # (B, N) membrane


class LIFParams(NamedTuple):
    lam: np.ndarray        # (N,) decay (Q0.D integer or shift)
    theta: np.ndarray      # (N,) threshold
    state_bits: int
    decay_bits: int
    decay_mode: str
    reset: str


def lif_step(acc: np.ndarray, state: LIFState, p: LIFParams, sat=None):
    """Section 3.3. Returns (spikes {0,1} in the state's dtype, new state)."""
    h = saturate(decay(state.v, p.lam, p.decay_bits, p.decay_mode) + acc, p.state_bits, sat, "membrane")
    spikes, v = fire_and_reset(h, p.theta, p.reset)
    return spikes, LIFState(v)


def fire_and_reset(h: np.ndarray, theta: np.ndarray, reset: str) -> tuple[np.ndarray, np.ndarray]:
    """Spike where ``h >= theta``; the membrane after it: ``h - theta`` (soft) or 0 (hard)."""
    spikes = (h >= theta).astype(h.dtype)
    if reset == "soft":
        return spikes, h - theta * spikes
    return spikes, h * (1 - spikes)


def decay_spec(name: str, widths, layer, mode: str | None = None) -> ArraySpec:
    """A per-neuron decay: Q0.D fraction (mult) or shift n in [1, 30] (section 3.2)."""
    n = layer.neurons
    if (mode or layer.decay_mode) == "mult":
        return ArraySpec(name, (n,), 0, 2**widths.decay_bits - 1, f"Q0.{widths.decay_bits} decays")
    return ArraySpec(name, (n,), 1, 30, "shift decays (1..30)")


def threshold_spec(name: str, widths, layer) -> ArraySpec:
    return ArraySpec(name, (layer.neurons,), 1, 2 ** (widths.state_bits - 1) - 1,
                     "positive state-width thresholds")


class LIF(NeuronKind):
    name = "lif"
    title = "LIF (ASRC-SNN)"
    section = "3.3"
    parameters = ("threshold", "decay")
    State = LIFState
    uses_reset = True

    def arrays(self, widths, layer):
        return (threshold_spec("threshold", widths, layer), decay_spec("decay", widths, layer))

    def state(self, widths):
        lo, hi = -(2 ** (widths.state_bits - 1)), 2 ** (widths.state_bits - 1) - 1
        return (StateSpec("v", lo, hi),)

    def params(self, art, layer, dtype=np.int64):
        w = art.widths
        return LIFParams(layer.decay.astype(dtype), layer.threshold.astype(dtype), w.state_bits,
                         w.decay_bits, layer.decay_mode, layer.reset)

    def step(self, acc, state, params, sat=None):
        return lif_step(acc, state, params, sat)

    def work_bits(self, widths, layer, acc_bits):
        # a*v < 2**(D + S - 1); decay(v) + acc < 2**S + 2**acc_bits; shift: v - (v >> n) in S + 1
        return max(widths.decay_bits + widths.state_bits, max(widths.state_bits, acc_bits) + 2,
                   widths.state_bits + 1)

    def reference_step(self, acc, state, q, layer, ref):
        pre = ref.decay(state["v"], layer.decay, layer.decay_mode) + acc
        ref.require_fits(pre, ref.width + 1, "decay(V) + acc")
        h = ref.saturate(pre, ref.widths.state_bits, "membrane")
        spikes = (h >= layer.threshold).astype(np.int64)
        if layer.reset == "soft":
            state["v"] = h - layer.threshold * spikes
        else:
            state["v"] = h * (1 - spikes)
        return spikes

    def random_arrays(self, ctx: RandomContext):
        return {"threshold": ctx.thresholds(), "decay": ctx.decays()}


register(LIF())
