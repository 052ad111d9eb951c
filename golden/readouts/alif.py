"""Readout ``alif``: SRNN's spiking ALIF output layer read through its membrane, CONTRACT.md 4.3.

One ALIF neuron per class (own b0, beta, rho, per-class alpha; the reset one step late); the
readout value is the membrane ``u``, all at the readout width R. ``(1 - alpha)`` is folded into
``w`` and ``bias``.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..kinds import ArraySpec
from ..kinds.alif import ALIFParams, ALIFState, alif_step
from ..kinds.lif import decay_spec
from . import ReadoutKind, StateSpec, register
from .leaky import _Classes


class ALIFReadoutState(NamedTuple):
    u: np.ndarray       # (B, M) membrane = the readout value
    b: np.ndarray       # (B, M) adaptation trace, [0, 2**T]
    s_prev: np.ndarray  # (B, M) the output spikes of the previous step


class ALIFReadoutParams(NamedTuple):
    alpha: np.ndarray
    rho: np.ndarray
    b0: np.ndarray
    beta: np.ndarray
    readout_bits: int
    decay_bits: int
    decay_mode: str
    trace_bits: int


def alif_readout_step(acc, state: ALIFReadoutState, p: ALIFReadoutParams, sat=None) -> ALIFReadoutState:
    """Section 4.3: section 3.4 at the readout width R (saturations counted as ``readout``)."""
    at_readout_width = ALIFParams(p.alpha, p.rho, p.b0, p.beta, p.readout_bits, p.decay_bits, p.decay_mode,
                                  p.trace_bits)
    spikes, s = alif_step(acc, ALIFState(state.u, state.b, state.s_prev), at_readout_width, sat,
                          labels=("readout", "readout"))
    return ALIFReadoutState(s.u, s.b, spikes)


class ALIFReadout(ReadoutKind):
    name = "alif"
    uses_trace_bits = True  # the adaptation trace b keeps T fraction bits
    section = "4.3"
    parameters = ("decay", "rho", "threshold", "beta")
    State = ALIFReadoutState

    def arrays(self, widths, readout):
        m, rmax = readout.classes, 2 ** (widths.readout_bits - 1) - 1
        view = _Classes(readout)
        return (
            decay_spec("decay", widths, view),
            decay_spec("rho", widths, view, "mult"),
            ArraySpec("threshold", (m,), 1, rmax, "positive readout-width thresholds"),
            ArraySpec("beta", (m,), 0, rmax, "non-negative readout-width values"),
        )

    def state(self, widths):
        lo, hi = -(2 ** (widths.readout_bits - 1)), 2 ** (widths.readout_bits - 1) - 1
        return (StateSpec("u", lo, hi), StateSpec("b", 0, 2**widths.trace_bits), StateSpec("s_prev", 0, 1, False))

    def params(self, art, readout, dtype=np.int64):
        w = art.widths
        c = lambda a: a.astype(dtype)  # noqa: E731
        return ALIFReadoutParams(c(readout.decay), c(readout.rho), c(readout.threshold), c(readout.beta),
                                 w.readout_bits, w.decay_bits, readout.decay_mode, w.trace_bits)

    def step(self, acc, state, p, sat=None):
        return alif_readout_step(acc, state, p, sat)

    def reference_step(self, acc, state, readout, ref):
        # section 3.4 at the readout width; q is the previous output spike, u the readout value
        R, D, T = ref.widths.readout_bits, ref.widths.decay_bits, ref.widths.trace_bits
        q = state["s_prev"]
        state["b"] = ref.floor_shift(readout.rho * state["b"], D) + q * (np.int64(2**D) - readout.rho) * np.int64(2**(T - D))
        ref.require(bool(np.all(state["b"] >= 0) and np.all(state["b"] <= 2**T)),
                    "the readout's adaptation trace b left [0, 2**T] (section 4.3)")
        big_b = ref.saturate(readout.threshold + ref.floor_shift(readout.beta * state["b"], T), R, "readout")
        pre = ref.decay(state["u"], readout.decay, readout.decay_mode) + acc - q * big_b
        state["u"] = ref.saturate(pre, R, "readout")
        state["s_prev"] = (state["u"] > big_b).astype(np.int64)
        return state["u"]

    def random_arrays(self, ctx):
        wmax = 2 ** (ctx.widths.weight_bits - 1) - 1
        rmax = 2 ** (ctx.widths.readout_bits - 1) - 1
        hi = max(2, min(rmax, ctx.threshold_scale))
        return {
            "decay": ctx.decays(), "rho": ctx.decays("mult"),
            "threshold": ctx.rng.integers(1, hi + 1, size=ctx.neurons).astype(np.int64),
            "beta": ctx.rng.integers(0, wmax * 4 + 1, size=ctx.neurons).clip(0, rmax).astype(np.int64),
        }


register(ALIFReadout())
