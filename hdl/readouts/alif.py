"""Readout ``alif`` on the hardware side (contract section 4.3): one ALIF update per class and cycle."""
from __future__ import annotations

from amaranth.hdl import Mux, unsigned

from ..arith import decay, saturate
from ..kinds import ParamSource
from . import ReadoutUnitKind, decay_source, register


class ALIFReadout(ReadoutUnitKind):
    name = "alif"

    def params(self, art, readout):
        w = art.widths
        return [decay_source("decay", readout.decay, art, readout.decay_mode),
                ParamSource("rho", readout.rho, w.decay_bits, False),
                ParamSource("threshold", readout.threshold, w.readout_bits, True),
                ParamSource("beta", readout.beta, w.readout_bits, True)]

    def state_shapes(self, plan):
        return {"b": unsigned(plan.trace_bits + 1), "q": unsigned(1)}

    def prepare(self, m, value, state, params, plan, platform=None):
        # the trace, the threshold and the decayed value need no class sum: a cycle ahead
        D, R, T = plan.decay_bits, plan.readout_bits, plan.trace_bits
        q, rho = state["q"], params["rho"]
        # section 4.3: b in [0, 2**T] with T fraction bits; the increment's shift is wiring
        b = ((rho * state["b"]) >> D) + Mux(q, ((1 << D) - rho) << (T - D), 0)
        big_b = saturate(params["threshold"] + ((params["beta"] * b) >> T), R)
        return {"b": b[:T + 1], "big_b": big_b, "q_big_b": Mux(q, big_b, 0),
                "base": decay(value, params["decay"], D, plan.decay_mode)}

    def update(self, m, value, state, acc, params, plan, prepared=None):
        prepared = prepared or self.prepare(m, value, state, params, plan)
        big_b = prepared["big_b"]
        u = saturate(prepared["base"] + acc - prepared["q_big_b"], plan.readout_bits)
        return u, {"b": prepared["b"], "q": u > big_b}

    def split_update(self, m, value, state, acc, params, plan, prepared=None):
        prepared = prepared or self.prepare(m, value, state, params, plan)
        sums = {"sum": prepared["base"] + acc - prepared["q_big_b"], "big_b": prepared["big_b"], "b": prepared["b"]}

        def finish(regs):
            u = saturate(regs["sum"], plan.readout_bits)
            return u, {"b": regs["b"], "q": u > regs["big_b"]}
        return sums, finish

    def multipliers(self, plan):
        return 2 + (1 if plan.decay_mode == "mult" else 0)


register(ALIFReadout())
