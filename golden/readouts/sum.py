"""Readout ``sum`` (ASRC-SNN): a plain running sum, CONTRACT.md section 4.1."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..arith import saturate
from . import ReadoutKind, StateSpec, register


class SumState(NamedTuple):
    m: np.ndarray


class SumParams(NamedTuple):
    readout_bits: int


class Sum(ReadoutKind):
    name = "sum"
    section = "4.1"
    State = SumState

    def state(self, widths):
        return (StateSpec("m", -(2 ** (widths.readout_bits - 1)), 2 ** (widths.readout_bits - 1) - 1),)

    def params(self, art, readout, dtype=np.int64):
        return SumParams(art.widths.readout_bits)

    def step(self, acc, state, p, sat=None):
        return SumState(saturate(state.m + acc, p.readout_bits, sat, "readout"))

    def reference_step(self, acc, state, readout, ref):
        state["m"] = ref.saturate(state["m"] + acc, ref.widths.readout_bits, "readout")
        return state["m"]


register(Sum())
