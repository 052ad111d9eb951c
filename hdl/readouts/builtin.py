"""Readouts ``sum`` and ``leaky`` on the hardware side (contract sections 4.1, 4.2)."""
from __future__ import annotations

from ..arith import decay, registered_decay, saturate
from . import ReadoutUnitKind, decay_source, register


class Sum(ReadoutUnitKind):
    name = "sum"

    def update(self, m, value, state, acc, params, plan, prepared=None):
        return saturate(value + acc, plan.readout_bits), {}

    def split_update(self, m, value, state, acc, params, plan, prepared=None):
        return {"sum": value + acc}, lambda regs: (saturate(regs["sum"], plan.readout_bits), {})


class Leaky(ReadoutUnitKind):
    name = "leaky"

    def params(self, art, readout):
        return [decay_source("decay", readout.decay, art, readout.decay_mode)]

    prepare_registers = True

    def prepare(self, m, value, state, params, plan, platform=None):
        # decay(m_c, alpha_c) in a register (mult: the product in a multiplier block's own)
        return {"base": registered_decay(m, value, params["decay"], plan.decay_bits, plan.decay_mode, platform,
                                         name="decay_base")}

    def update(self, m, value, state, acc, params, plan, prepared=None):
        base = prepared["base"] if prepared else decay(value, params["decay"], plan.decay_bits, plan.decay_mode)
        return saturate(base + acc, plan.readout_bits), {}

    def split_update(self, m, value, state, acc, params, plan, prepared=None):
        base = prepared["base"] if prepared else decay(value, params["decay"], plan.decay_bits, plan.decay_mode)
        return {"sum": base + acc}, lambda regs: (saturate(regs["sum"], plan.readout_bits), {})

    def multipliers(self, plan):
        return 1 if plan.decay_mode == "mult" else 0


register(Sum())
register(Leaky())
