"""Readout ``leaky`` (SRNN leaky integrator, ``(1 - alpha_o)`` folded into ``w`` and ``bias``),
CONTRACT.md section 4.2."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..arith import decay, saturate
from ..kinds.lif import decay_spec
from . import ReadoutKind, StateSpec, register


class LeakyState(NamedTuple):
    m: np.ndarray


class LeakyParams(NamedTuple):
    alpha: np.ndarray
    readout_bits: int
    decay_bits: int
    decay_mode: str


class _Classes:
    """Duck-typed view that gives ``decay_spec`` the class count as ``neurons``."""

    def __init__(self, readout):
        self.neurons, self.decay_mode = readout.classes, readout.decay_mode


class Leaky(ReadoutKind):
    name = "leaky"
    section = "4.2"
    parameters = ("decay",)
    State = LeakyState

    def arrays(self, widths, readout):
        return (decay_spec("decay", widths, _Classes(readout)),)

    def state(self, widths):
        return (StateSpec("m", -(2 ** (widths.readout_bits - 1)), 2 ** (widths.readout_bits - 1) - 1),)

    def params(self, art, readout, dtype=np.int64):
        w = art.widths
        return LeakyParams(readout.decay.astype(dtype), w.readout_bits, w.decay_bits, readout.decay_mode)

    def step(self, acc, state, p, sat=None):
        return LeakyState(saturate(decay(state.m, p.alpha, p.decay_bits, p.decay_mode) + acc, p.readout_bits, sat,
                                   "readout"))

    def reference_step(self, acc, state, readout, ref):
        decayed = ref.decay(state["m"], readout.decay, readout.decay_mode)
        state["m"] = ref.saturate(decayed + acc, ref.widths.readout_bits, "readout")
        return state["m"]

    def random_arrays(self, ctx):
        return {"decay": ctx.decays()}


register(Leaky())
