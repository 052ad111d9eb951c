"""hdl/layer_engine.py and hdl/readout_engine.py on their own, against the golden model (amaranth.sim).

The engine's neighbours (input FIFO, ring buffer, output FIFO) are played by the testbench: it
offers a whole step of events, the replay of step t - span from the golden spikes, and always has
room for the output.
"""
from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from skipcore.golden.contract import quantize_input
from skipcore.golden.model import run
from skipcore.golden.random import random_artifact, random_inputs
from skipcore.hdl.layer_engine import LayerEngine
from skipcore.hdl.plan import plan_core
from skipcore.hdl.readout_engine import ReadoutEngine




@pytest.mark.parametrize("seed,kind,span,lanes,input_kind", [
    (1, "lif", 0, 3, "real"),
    (2, "alif", 2, 2, "count"),
    (3, "lif", 1, 1, "spike"),
    (4, "alif", 3, 8, "real"),
])
def test_layer_engine_matches_golden(seed, kind, span, lanes, input_kind):
    rng = np.random.default_rng(seed)
    art = random_artifact(rng, layer_sizes=[5], kinds=[kind], spans=[span], input_kind=input_kind, channels=4)
    xq = quantize_input(art.input, random_inputs(rng, art, 1, 8))
    gold = run(art, xq, traces=True, quantized=True)
    plan = plan_core(art, lanes=lanes).layers[0]
    eng = LayerEngine(plan)
    steps = xq.shape[1]
    spikes = gold.spikes[0][0]
    all_words, got_dbg, got_cycles = [], [], []

    async def bench(ctx):
        ctx.set(eng.o_space_ok, 1)
        ctx.set(eng.o_words.ready, 1)
        for t in range(steps):
            events = [(int(c), int(xq[0, t, c])) for c in np.flatnonzero(xq[0, t])]
            replay = [int(i) for i in np.flatnonzero(spikes[t - span])] if span and t >= span else []
            ctx.set(eng.i_step_ready, 1)
            if span:
                ctx.set(eng.i_rec_ready, 1)
            queue_in = events + [None]
            queue_rec = replay + [None]
            while True:
                head = queue_in[0] if queue_in else None
                ctx.set(eng.i_ev.valid, bool(queue_in))
                ctx.set(eng.i_ev.payload.index, 0 if head is None else head[0])
                ctx.set(eng.i_ev.payload.end_step, head is None)
                ctx.set(eng.i_ev.payload.end_seq, head is None and t == steps - 1)
                if input_kind != "spike":
                    mask = (1 << plan.input_bits) - 1
                    ctx.set(eng.i_ev.payload.value, 0 if head is None else head[1] & mask)
                if span:
                    rhead = queue_rec[0] if queue_rec else None
                    ctx.set(eng.i_rec.valid, bool(queue_rec))
                    ctx.set(eng.i_rec.payload.index, 0 if rhead is None else rhead)
                    ctx.set(eng.i_rec.payload.end_step, rhead is None)
                await ctx.delay(1e-10)
                take_in = ctx.get(eng.i_ev.ready)
                take_rec = span and ctx.get(eng.i_rec.ready)
                # both readys come from the engine's registers: what the streams offer changes neither
                offered = [eng.i_ev.valid, eng.i_ev.payload.end_step]
                offered += [eng.i_rec.valid, eng.i_rec.payload.end_step] if span else []
                for sig in offered:
                    was = ctx.get(sig)
                    ctx.set(sig, 1 - was)
                    await ctx.delay(1e-10)
                    assert (ctx.get(eng.i_ev.ready), span and ctx.get(eng.i_rec.ready)) == (take_in, take_rec)
                    ctx.set(sig, was)
                await ctx.delay(1e-10)
                if ctx.get(eng.o_words.valid):
                    p = ctx.get(eng.o_words.payload)
                    all_words.append((p.group, p.mask, p.end_step))
                done = ctx.get(eng.dbg_valid)
                if done:
                    got_dbg.append(ctx.get(eng.dbg_spikes))
                    got_cycles.append(ctx.get(eng.dbg_cycles))
                await ctx.tick()
                if take_in:
                    queue_in.pop(0)
                if take_rec:
                    queue_rec.pop(0)
                if done:
                    break
                if not queue_in:
                    ctx.set(eng.i_step_ready, 0)
                if span and not queue_rec:
                    ctx.set(eng.i_rec_ready, 0)
        # the last marker leaves the output register a cycle after DONE
        await ctx.delay(1e-10)
        if ctx.get(eng.o_words.valid):
            p = ctx.get(eng.o_words.payload)
            all_words.append((p.group, p.mask, p.end_step))

    sim = Simulator(eng)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    P, G = plan.lanes, plan.groups
    got_words, step_words = [], []
    for w in all_words:
        step_words.append(w)
        if w[2]:
            got_words.append(step_words)
            step_words = []
    assert not step_words and len(got_words) == steps
    for t in range(steps):
        expected = [(g, sum(int(spikes[t, g * P + p]) << p for p in range(P) if g * P + p < plan.neurons), 0)
                    for g in range(G)]
        expected = [w for w in expected if w[1]] + [(0, 0, 1)]
        assert got_words[t] == expected, f"step {t}"
        assert got_dbg[t] == sum(int(s) << i for i, s in enumerate(spikes[t])), f"step {t}"
        rec = int(spikes[t - span].sum()) if span and t >= span else 0
        assert got_cycles[t] == G * (int(gold.input_events[0, t]) + rec) + G + plan.constant_cycles


# classes 1 to 3: fewer classes than the leaky readout's prepare() runs ahead (3 cycles)
@pytest.mark.parametrize("seed,kind,decay_mode,classes", [
    (5, "sum", None, 4), (6, "leaky", None, 4), (7, "alif", None, 4), (8, "leaky", "mult", 4), (9, "leaky", "shift", 4),
    (10, "alif", "mult", 4), (11, "leaky", "mult", 2), (12, "leaky", "mult", 3), (13, "alif", "mult", 2)])
def test_readout_engine_matches_golden(seed, kind, decay_mode, classes):
    rng = np.random.default_rng(seed)
    art = random_artifact(rng, layer_sizes=[6], readout_kind=kind, classes=classes, decay_mode=decay_mode)
    xq = quantize_input(art.input, random_inputs(rng, art, 2, 6))
    gold = run(art, xq, traces=True, quantized=True)
    eng = ReadoutEngine(plan_core(art, lanes=2).readout)
    spikes = gold.spikes[-1]
    R, M = art.widths.readout_bits, art.classes
    got = []

    async def bench(ctx):
        for b in range(spikes.shape[0]):
            for t in range(spikes.shape[1]):
                items = [(int(i), 0) for i in np.flatnonzero(spikes[b, t])] + [(0, 1)]
                for index, end in items:
                    ctx.set(eng.i_ev.valid, 1)
                    ctx.set(eng.i_ev.payload.index, index)
                    ctx.set(eng.i_ev.payload.end_step, end)
                    ctx.set(eng.i_ev.payload.end_seq, end and t == spikes.shape[1] - 1)
                    await ctx.tick().until(eng.i_ev.ready)
                ctx.set(eng.i_ev.valid, 0)

    async def sink(ctx):
        ctx.set(eng.o.ready, 1)
        while len(got) < spikes.shape[0] * spikes.shape[1]:
            await ctx.tick()
            if ctx.get(eng.o.valid):
                p = ctx.get(eng.o.payload)
                m = [(p.readout >> (c * R)) & ((1 << R) - 1) for c in range(M)]
                got.append(([v - (1 << R) if v >> (R - 1) else v for v in m], p.prediction, p.end_seq))
                ctx.set(eng.o.ready, 1)

    sim = Simulator(eng)
    sim.add_clock(1e-8)
    sim.add_testbench(bench, background=True)
    sim.add_testbench(sink)
    sim.run()
    readout = np.array([g[0] for g in got]).reshape(gold.readout.shape)
    assert np.array_equal(readout, gold.readout)
    assert [g[1] for g in got] == np.argmax(gold.readout, axis=-1).ravel().tolist()
    assert [g[2] for g in got] == [int(t == spikes.shape[1] - 1) for b in range(2) for t in range(spikes.shape[1])]
