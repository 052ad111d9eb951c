"""Drive a SkipCore in amaranth.sim and collect what it produced (helper for tests/test_hdl_*.py).

Slow (about 10k cycles/s): for tiny configurations only. The cocotb/Verilator testbenches in sim/
are the real verification; this is the generator's quick self-check.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

from skipcore.hdl.core import SkipCore
from skipcore.hdl.plan import CorePlan


def to_signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


@dataclass
class CoreRun:
    readout: list = field(default_factory=list)       # per output word: list of M ints
    prediction: list = field(default_factory=list)
    end_seq: list = field(default_factory=list)
    spikes: list = field(default_factory=list)        # per layer: list of (N,) arrays, in order
    cycles: list = field(default_factory=list)        # per layer: list of ints
    total_cycles: int = 0


def input_words(plan: CorePlan, xq: np.ndarray, rng: np.random.Generator | None = None):
    """Words (index, value, end_step, end_seq) for a batch (B, T, C) of quantised inputs."""
    words = []
    mask = (1 << plan.value_bits) - 1
    for b in range(xq.shape[0]):
        steps = xq.shape[1]
        for t in range(steps):
            chans = np.flatnonzero(xq[b, t])
            if rng is not None:
                chans = rng.permutation(chans)
            for c in chans:
                words.append((int(c), int(xq[b, t, c]) & mask, 0, 0))
            words.append((0, 0, 1, int(t == steps - 1)))
    return words


def run_core(plan: CorePlan, xq: np.ndarray, *, rng: np.random.Generator | None = None,
             in_gaps: float = 0.0, out_stalls: float = 0.0, max_cycles: int = 200_000,
             garbage_before_reset: np.ndarray | None = None) -> CoreRun:
    """Push ``xq`` (B, T, C) ints through the core; return outputs and debug traces.

    With ``garbage_before_reset`` (B', T', C) the core first gets those words, without an end of
    sequence, then ``rst`` for one cycle mid-step; only what follows the reset is checked.
    """
    core = SkipCore(plan)
    domain = ClockDomain("sync")
    words = input_words(plan, xq, rng)
    prefix = []
    if garbage_before_reset is not None:
        prefix = input_words(plan, garbage_before_reset, rng)[:-3]
    n_out = xq.shape[0] * xq.shape[1]
    res = CoreRun(spikes=[[] for _ in plan.layers], cycles=[[] for _ in plan.layers])
    R, M = plan.readout.readout_bits, plan.readout.classes
    rng = rng or np.random.default_rng(0)
    state = {"cycle": 0, "reset_done": not prefix}

    async def producer(ctx):
        if prefix:
            for index, value, es, sq in prefix:
                ctx.set(core.in_index, index)
                ctx.set(core.in_value, value)
                ctx.set(core.in_end_step, es)
                ctx.set(core.in_end_seq, 0)
                ctx.set(core.in_valid, 1)
                await ctx.tick().until(core.in_ready)
            ctx.set(core.in_valid, 0)
            await ctx.tick().repeat(7)
            ctx.set(domain.rst, 1)
            await ctx.tick()
            ctx.set(domain.rst, 0)
            state["reset_done"] = True
        for index, value, es, sq in words:
            while in_gaps and rng.random() < in_gaps:
                ctx.set(core.in_valid, 0)
                await ctx.tick()
            ctx.set(core.in_index, index)
            ctx.set(core.in_value, value)
            ctx.set(core.in_end_step, es)
            ctx.set(core.in_end_seq, sq)
            ctx.set(core.in_valid, 1)
            await ctx.tick().until(core.in_ready)
        ctx.set(core.in_valid, 0)

    async def consumer(ctx):
        while len(res.readout) < n_out:
            if not state["reset_done"]:
                ctx.set(core.out_ready, 1)
                await ctx.tick()
                continue
            ready = not (out_stalls and rng.random() < out_stalls)
            ctx.set(core.out_ready, int(ready))
            await ctx.delay(1e-10)
            if ready and ctx.get(core.out_valid):
                word = ctx.get(core.out_readout)
                res.readout.append([to_signed(word >> (c * R), R) for c in range(M)])
                res.prediction.append(ctx.get(core.out_prediction))
                res.end_seq.append(ctx.get(core.out_end_seq))
            if plan.debug:
                for layer in plan.layers:
                    l = layer.index
                    if ctx.get(getattr(core, f"dbg_l{l}_valid")):
                        bits = ctx.get(getattr(core, f"dbg_l{l}_spikes"))
                        res.spikes[l].append(np.array([(bits >> i) & 1 for i in range(layer.neurons)]))
                        res.cycles[l].append(ctx.get(getattr(core, f"dbg_l{l}_cycles")))
            await ctx.tick()
            state["cycle"] += 1
            if state["cycle"] > max_cycles:
                raise TimeoutError(f"core produced {len(res.readout)} of {n_out} words in {max_cycles} cycles")
        res.total_cycles = state["cycle"]

    top = Module()
    top.domains.sync = domain
    top.submodules.core = core
    sim = Simulator(top)
    sim.add_clock(1e-8, domain="sync")
    sim.add_testbench(producer, background=True)
    sim.add_testbench(consumer)
    sim.run()
    return res
