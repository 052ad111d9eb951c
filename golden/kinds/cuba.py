"""CUBA-LIF: the current-based LIF (NIR ``CubaLIF``, Norse ``LIFCell``, snnTorch ``Synaptic``),
CONTRACT.md section 3.7.

A synaptic current ``I`` low-pass filters the accumulator and the membrane integrates ``I``::

    I = sat_S( decay(I, alpha_syn) + acc )
    H = sat_S( decay(V, lam) + I )
    S = [H >= theta];  V = H - theta S (soft) | H (1 - S) (hard)
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..arith import decay, saturate
from . import NeuronKind, RandomContext, StateSpec, register
from .lif import decay_spec, fire_and_reset, threshold_spec

__all__ = ["CubaState", "CubaParams", "cuba_step", "Cuba"]


class CubaState(NamedTuple):
    i: np.ndarray  # (B, N) synaptic current
    v: np.ndarray  # (B, N) membrane


class CubaParams(NamedTuple):
    syn_decay: np.ndarray  # (N,) alpha_syn (Q0.D integer or shift)
    lam: np.ndarray        # (N,) membrane decay (Q0.D integer or shift)
    theta: np.ndarray      # (N,) threshold
    state_bits: int
    decay_bits: int
    decay_mode: str
    reset: str


def cuba_step(acc: np.ndarray, state: CubaState, p: CubaParams, sat=None):
    """Section 3.7. Returns (spikes {0,1} in the state's dtype, new state)."""
    i = saturate(decay(state.i, p.syn_decay, p.decay_bits, p.decay_mode) + acc, p.state_bits, sat, "synapse")
    h = saturate(decay(state.v, p.lam, p.decay_bits, p.decay_mode) + i, p.state_bits, sat, "membrane")
    spikes, v = fire_and_reset(h, p.theta, p.reset)
    return spikes, CubaState(i, v)


class Cuba(NeuronKind):
    name = "cuba"
    title = "CUBA-LIF (current-based LIF)"
    section = "3.7"
    parameters = ("threshold", "decay", "syn_decay")
    State = CubaState
    uses_reset = True

    def arrays(self, widths, layer):
        return (threshold_spec("threshold", widths, layer), decay_spec("decay", widths, layer),
                decay_spec("syn_decay", widths, layer))

    def state(self, widths):
        lo, hi = -(2 ** (widths.state_bits - 1)), 2 ** (widths.state_bits - 1) - 1
        return (StateSpec("i", lo, hi), StateSpec("v", lo, hi))

    def params(self, art, layer, dtype=np.int64):
        w = art.widths
        return CubaParams(layer.syn_decay.astype(dtype), layer.decay.astype(dtype), layer.threshold.astype(dtype),
                          w.state_bits, w.decay_bits, layer.decay_mode, layer.reset)

    def step(self, acc, state, params, sat=None):
        return cuba_step(acc, state, params, sat)

    def work_bits(self, widths, layer, acc_bits):
        # a*x < 2**(D + S - 1) for x in {I, V}; decay(I) + acc < 2**S + 2**acc_bits; decay(V) + I < 2**(S+1);
        # shift: x - (x >> n) in S + 1
        S, D = widths.state_bits, widths.decay_bits
        return max(D + S, max(S, acc_bits) + 2, S + 2)

    def reference_step(self, acc, state, q, layer, ref):
        S = ref.widths.state_bits
        syn = ref.decay(state["i"], layer.syn_decay, layer.decay_mode) + acc
        ref.require_fits(syn, ref.width + 1, "decay(I) + acc")
        state["i"] = ref.saturate(syn, S, "synapse")
        pre = ref.decay(state["v"], layer.decay, layer.decay_mode) + state["i"]
        ref.require_fits(pre, S + 1, "decay(V) + I")
        h = ref.saturate(pre, S, "membrane")
        spikes = (h >= layer.threshold).astype(np.int64)
        if layer.reset == "soft":
            state["v"] = h - layer.threshold * spikes
        else:
            state["v"] = h * (1 - spikes)
        return spikes

    def random_arrays(self, ctx: RandomContext):
        return {"threshold": ctx.thresholds(), "decay": ctx.decays(), "syn_decay": ctx.decays()}


register(Cuba())
