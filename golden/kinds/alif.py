"""ALIF (SRNN convention, reset one step late), CONTRACT.md section 3.4."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..arith import decay, saturate
from . import ArraySpec, NeuronKind, RandomContext, StateSpec, register
from .lif import decay_spec, threshold_spec

__all__ = ["ALIFState", "ALIFParams", "alif_step", "ALIF"]


class ALIFState(NamedTuple):
    u: np.ndarray       # (B, N) membrane
    b: np.ndarray       # (B, N) adaptation trace, [0, 2**T] (T = trace_bits fraction bits)
    s_prev: np.ndarray  # (B, N) previous spikes


class ALIFParams(NamedTuple):
    alpha: np.ndarray
    rho: np.ndarray
    b0: np.ndarray
    beta: np.ndarray
    state_bits: int
    decay_bits: int
    decay_mode: str
    trace_bits: int


def alif_step(acc: np.ndarray, state: ALIFState, p: ALIFParams, sat=None,
              labels: tuple[str, str] = ("threshold", "membrane")):
    """Section 3.4: adaptation, dynamic threshold, one-step-late reset. Returns (spikes, state).

    ``p.state_bits`` is the width both B and u saturate to, and ``labels`` name those two
    saturations in the counter (the spiking readout of section 4.3 runs this at the readout width).
    """
    q = state.s_prev
    b = ((p.rho * state.b) >> p.decay_bits) + q * (((1 << p.decay_bits) - p.rho) << (p.trace_bits - p.decay_bits))
    big_b = saturate(p.b0 + ((p.beta * b) >> p.trace_bits), p.state_bits, sat, labels[0])
    u = saturate(decay(state.u, p.alpha, p.decay_bits, p.decay_mode) + acc - q * big_b,
                 p.state_bits, sat, labels[1])
    spikes = (u > big_b).astype(u.dtype)
    return spikes, ALIFState(u, b, spikes)


class ALIF(NeuronKind):
    name = "alif"
    uses_trace_bits = True  # the adaptation trace b keeps T fraction bits
    title = "ALIF (SRNN)"
    section = "3.4"
    parameters = ("threshold", "decay", "rho", "beta")
    State = ALIFState

    def arrays(self, widths, layer):
        n, smax = layer.neurons, 2 ** (widths.state_bits - 1) - 1
        return (
            threshold_spec("threshold", widths, layer),
            decay_spec("decay", widths, layer),
            decay_spec("rho", widths, layer, "mult"),
            ArraySpec("beta", (n,), 0, smax, "non-negative state-width values"),
        )

    def state(self, widths):
        lo, hi = -(2 ** (widths.state_bits - 1)), 2 ** (widths.state_bits - 1) - 1
        return (StateSpec("u", lo, hi), StateSpec("b", 0, 2**widths.trace_bits), StateSpec("s_prev", 0, 1, False))

    def params(self, art, layer, dtype=np.int64):
        w = art.widths
        c = lambda a: a.astype(dtype)  # noqa: E731
        return ALIFParams(c(layer.decay), c(layer.rho), c(layer.threshold), c(layer.beta), w.state_bits,
                          w.decay_bits, layer.decay_mode, w.trace_bits)

    def step(self, acc, state, params, sat=None):
        return alif_step(acc, state, params, sat)

    def work_bits(self, widths, layer, acc_bits):
        # a*u < 2**(D + S - 1); decay(u) + acc - q*B < 2**S + 2**acc_bits; beta*b < 2**(S - 1 + T);
        # rho*b < 2**(D + T)
        S, D, T = widths.state_bits, widths.decay_bits, widths.trace_bits
        return max(D + S, max(S, acc_bits) + 2, S + T, D + T + 1, S + 1)

    def reference_step(self, acc, state, q, layer, ref):
        # q is this neuron's own spike of the previous step
        S, D, T = ref.widths.state_bits, ref.widths.decay_bits, ref.widths.trace_bits
        b = ref.floor_shift(layer.rho * state["b"], D) + q * (np.int64(2**D) - layer.rho) * np.int64(2**(T - D))
        ref.require(bool(np.all(b >= 0) and np.all(b <= 2**T)), "the adaptation trace b left [0, 2**T] (section 3.4)")
        big_b = ref.saturate(layer.threshold + ref.floor_shift(layer.beta * b, T), S, "threshold")
        pre = ref.decay(state["u"], layer.decay, layer.decay_mode) + acc - q * big_b
        ref.require_fits(pre, ref.width + 2, "decay(u) + acc - q*B")
        state["u"] = ref.saturate(pre, S, "membrane")
        state["b"] = b
        spikes = (state["u"] > big_b).astype(np.int64)
        state["s_prev"] = spikes
        return spikes

    def random_arrays(self, ctx: RandomContext):
        wmax = 2 ** (ctx.widths.weight_bits - 1) - 1
        smax = 2 ** (ctx.widths.state_bits - 1) - 1
        out = {"threshold": ctx.thresholds(), "decay": ctx.decays()}
        out["rho"] = ctx.decays("mult")
        out["beta"] = ctx.rng.integers(0, wmax * 4 + 1, size=ctx.neurons).clip(0, smax).astype(np.int64)
        return out


register(ALIF())
