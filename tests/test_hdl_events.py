"""The generator option ``events`` (E events per cycle): the packer, the E-wide spike decoder, the bound,
the option checks, and whole cores with E > 1 in amaranth.sim against the golden model (bits and cycles).

The random-core Verilator suite (tests/test_sim_core.py) draws E in {2, 3, 4} for some cores too.
"""
from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.hdl import Module, signed
from amaranth.lib import wiring
from amaranth.sim import Simulator

from skipcore.errors import ConfigError
from skipcore.golden.contract import quantize_input
from skipcore.golden.cycles import cycle_bounds as golden_bounds
from skipcore.golden.random import random_artifact, random_inputs
from skipcore.hdl.event_packer import EventPacker
from skipcore.hdl.plan import MAX_EVENTS, plan_core
from skipcore.hdl.step_fifo import StepFIFO
from skipcore.hdl.stream import bundle_signature, word_layout, word_signature
from skipcore.hdl.wide_spike_decoder import WideSpikeDecoder

from hdl_simulate import run_core
from test_hdl_core import _compare


def _chunks(events, E):
    return [events[i:i + E] for i in range(0, len(events), E)]


@pytest.mark.parametrize("E,valued", [(2, False), (3, True), (4, False)])
def test_packer_fills_bundles_in_order(E, valued):
    """EventPacker: a step's events leave in order, E to a bundle, only the last one short, then the
    marker, under random input gaps, random counts per input word and output backpressure."""
    rng = random.Random(E * 10 + valued)
    value_shape = signed(5) if valued else None
    dut = EventPacker(index_bits=6, events=E, value_shape=value_shape)
    words, expected = [], []
    for t in range(40):
        step = []
        for _ in range(rng.randrange(0, 6)):
            n = rng.randrange(0, E + 1)
            ev = [(rng.randrange(64), rng.randrange(-16, 16)) for _ in range(n)]
            words.append(("data", ev))
            step.extend(ev)
        seq = int(t % 5 == 4)
        words.append(("marker", seq))
        expected.extend((tuple(c if valued else [(i, 0) for i, _ in c]), 0, 0) for c in _chunks(step, E))
        expected.append(((), 1, seq))
    got = []

    async def producer(ctx):
        for kind, body in words:
            while rng.random() < 0.3:
                ctx.set(dut.i.valid, 0)
                await ctx.tick()
            payload = {"index": [0] * E, "count": 0, "end_step": 0, "end_seq": 0}
            if valued:
                payload["value"] = [0] * E
            if kind == "data":
                payload["count"] = len(body)
                for k, (index, value) in enumerate(body):
                    payload["index"][k] = index
                    if valued:
                        payload["value"][k] = value
            else:
                payload.update(end_step=1, end_seq=body)
            ctx.set(dut.i.payload, payload)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    async def consumer(ctx):
        for _ in range(50 * len(expected)):       # a DUT that loses words fails instead of hanging
            if len(got) >= len(expected):
                break
            ready = rng.random() < 0.7
            ctx.set(dut.o.ready, ready)
            await ctx.delay(1e-10)
            if ready and ctx.get(dut.o.valid):
                p = ctx.get(dut.o.payload)
                n = p.count
                events = tuple((p.index[k], p.value[k] if valued else 0) for k in range(n))
                got.append((events, p.end_step, p.end_seq))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(producer, background=True)
    sim.add_testbench(consumer)
    sim.run()
    assert got == expected


class _WordsToBundles(wiring.Component):
    """StepFIFO (words) -> WideSpikeDecoder -> EventPacker, as the core wires them for E > 1."""

    def __init__(self, groups, lanes, events, depth):
        index_bits = max(1, (groups * lanes - 1).bit_length())
        self.fifo = StepFIFO(layout=word_layout(groups, lanes), depth=depth)
        self.dec = WideSpikeDecoder(groups=groups, lanes=lanes, index_bits=index_bits, events=events)
        self.packer = EventPacker(index_bits=index_bits, events=events)
        super().__init__({"w": wiring.In(word_signature(groups, lanes)),
                          "o": wiring.Out(bundle_signature(index_bits, events))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo, m.submodules.dec, m.submodules.packer = self.fifo, self.dec, self.packer
        wiring.connect(m, wiring.flipped(self.w), self.fifo.w)
        wiring.connect(m, self.fifo.r, self.dec.i)
        wiring.connect(m, self.dec.o, self.packer.i)
        wiring.connect(m, self.packer.o, wiring.flipped(self.o))
        return m


@pytest.mark.parametrize("groups,lanes,events", [(5, 3, 2), (1, 8, 3), (3, 8, 4), (4, 1, 2), (2, 5, 2)])
def test_wide_decoder_and_packer_bundle_words(groups, lanes, events):
    """Spike words -> full bundles of E neuron addresses (lowest bit first, group order), a short last
    bundle, then the marker; dense and sparse words, random gaps and backpressure."""
    rng = random.Random(groups * 100 + lanes * 10 + events)
    words, expected = [], []
    for t in range(30):
        step = []
        for g in range(groups):
            mask = rng.randrange(1 << lanes) if rng.random() < 0.5 else (1 << lanes) - 1
            if mask:
                words.append((g, mask, 0, 0))
                step.extend(g * lanes + p for p in range(lanes) if mask >> p & 1)
        seq = int(t % 4 == 3)
        words.append((0, 0, 1, seq))
        expected.extend((tuple(c), 0, 0) for c in _chunks(step, events))
        expected.append(((), 1, seq))
    dut = _WordsToBundles(groups, lanes, events, depth=3)
    got = []

    async def producer(ctx):
        for g, mask, end, seq in words:
            while rng.random() < 0.3:
                ctx.set(dut.w.valid, 0)
                await ctx.tick()
            ctx.set(dut.w.payload, {"group": g, "mask": mask, "end_step": end, "end_seq": seq})
            ctx.set(dut.w.valid, 1)
            await ctx.tick().until(dut.w.ready)
        ctx.set(dut.w.valid, 0)

    async def consumer(ctx):
        for _ in range(50 * len(expected)):       # a DUT that loses words fails instead of hanging
            if len(got) >= len(expected):
                break
            ready = rng.random() < 0.7
            ctx.set(dut.o.ready, ready)
            await ctx.delay(1e-10)
            if ready and ctx.get(dut.o.valid):
                p = ctx.get(dut.o.payload)
                got.append((tuple(p.index[k] for k in range(p.count)), p.end_step, p.end_seq))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(producer, background=True)
    sim.add_testbench(consumer)
    sim.run()
    assert got == expected


def test_wide_decoder_sends_e_events_per_cycle():
    """A dense word of 8 bits leaves in ceil(8 / 3) = 3 consecutive bundles; sparse words one per cycle."""
    dut = WideSpikeDecoder(groups=4, lanes=8, index_bits=5, events=3)
    words = [(0, 0xFF, 0, 0), (1, 0b1, 0, 0), (2, 0b10, 0, 0), (0, 0, 1, 0)]
    seen = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        pending = list(words)
        for _ in range(9):
            if pending:
                g, mask, end, seq = pending[0]
                ctx.set(dut.i.payload, {"group": g, "mask": mask, "end_step": end, "end_seq": seq})
            ctx.set(dut.i.valid, bool(pending))
            await ctx.delay(1e-10)
            if pending and ctx.get(dut.i.ready):
                pending.pop(0)
            if ctx.get(dut.o.valid):
                p = ctx.get(dut.o.payload)
                seen.append((tuple(p.index[k] for k in range(p.count)), p.end_step))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen == [((0, 1, 2), 0), ((3, 4, 5), 0), ((6, 7), 0), ((8,), 0), ((17,), 0), ((), 1)]


def test_bound_with_events_is_ceil_per_stream():
    """golden.cycles: G * (ceil(in/E) + ceil(rec/E) + own) + G + c; E = 1 gives the old formula."""
    inp = np.array([[5, 0, 7]])
    counts = np.array([[[3], [4], [1]]])
    one = golden_bounds([2], [8], [1], inp, counts, [1])
    assert one.tolist() == [[[2 * 5 + 2 + 8], [2 * (0 + 3 + 3) + 2 + 8], [2 * (7 + 4 + 4) + 2 + 8]]]
    two = golden_bounds([2], [9], [1], inp, counts, [1], [2])
    assert two.tolist() == [[[2 * 3 + 2 + 9], [2 * (0 + 2 + 3) + 2 + 9], [2 * (4 + 2 + 4) + 2 + 9]]]


def test_events_option_checks_and_constants():
    rng = np.random.default_rng(3)
    art = random_artifact(rng, channels=3, layer_sizes=[4, 3], kinds=["lif", "alif"], spans=[2, 0],
                          input_kind="count")
    for bad in (0, MAX_EVENTS + 1, 2.0, True):
        with pytest.raises(ConfigError, match="^events must be"):
            plan_core(art, lanes=2, events=bad)
    one, two = plan_core(art, lanes=2), plan_core(art, lanes=2, events=2)
    assert [l.events for l in two.layers] == [2, 2] and two.events == 2
    # two read ports per ROM copy: banks of 1024 words (a two-port ECP5 DP16KD is 1024 x 18)
    assert [l.weight_bank_words for l in one.layers + two.layers] == [512, 512, 1024, 1024]
    # one more stage (the adder tree) with E > 1; E input products per lane of the first layer
    assert [l.constant_cycles for l in two.layers] == [l.constant_cycles + 1 for l in one.layers]
    assert two.layers[0].multipliers - one.layers[0].multipliers == two.layers[0].lanes
    names = {m["name"] for m in two.memories()}
    assert {"l0.weights_copy0", "l0.replay_bundles", "l1.in_bundles"} <= names
    assert "l0.weights" in {m["name"] for m in one.memories()}
    assert len([n for n in {m["name"] for m in plan_core(art, lanes=2, events=3).memories()}
                if n.startswith("l0.weights")]) == 2


def test_core_json_records_events():
    from skipcore.hdl.generate import BOUND_FORMULA, core_json

    rng = np.random.default_rng(4)
    art = random_artifact(rng, channels=3, layer_sizes=[4], spans=[1], input_kind="spike")
    info = core_json(plan_core(art, lanes=2, events=3), digest="0", activity=None)
    assert info["events"] == 3 and info["layers"][0]["events"] == 3
    assert info["cycle_bound"]["formula"] == BOUND_FORMULA and "ceil(input_events/E)" in BOUND_FORMULA


CASES = [
    # seed, lanes, events, bank words, random_artifact arguments
    (61, 2, 2, None, dict(layer_sizes=[5, 4], kinds=["alif", "lif"], spans=[1, 3], input_kind="spike")),
    (62, 3, 3, None, dict(layer_sizes=[6, 4], kinds=["stc", "lif"], spans=[1, 2], input_kind="real")),
    (63, 8, 4, 4, dict(layer_sizes=[7], kinds=["lif"], spans=[2], input_kind="count", saturating=True)),
    # over BANK_REGISTER_BANKS banks (30 and 18) with E = 2: the bank and group registers of each slot
    (64, 2, 2, 1, dict(layer_sizes=[5, 4], kinds=["lif", "alif"], spans=[1, 2], input_kind="spike")),
]


@pytest.mark.parametrize("seed,lanes,events,bank,kwargs", CASES, ids=[f"case{c[0]}" for c in CASES])
def test_core_with_events_matches_golden(seed, lanes, events, bank, kwargs):
    """Whole cores with E > 1 (spike, real and count inputs, STC own events, weight banks): every
    spike and readout equals golden, every layer's cycles equal the E-event bound."""
    rng = np.random.default_rng(seed)
    art = random_artifact(rng, channels=5, **kwargs)
    xq = quantize_input(art.input, random_inputs(rng, art, 2, 8))
    extra = {} if bank is None else {"weight_bank_words": bank}
    plan = plan_core(art, lanes=lanes, events=events, **extra)
    assert all(l.bank_registers for l in plan.layers) == (seed == 64)
    res = run_core(plan, xq, rng=rng, in_gaps=0.2, out_stalls=0.3)
    gold = _compare(art, plan, xq, res)
    assert sum(int(s.sum()) for s in gold.spikes) > 0, "the case should have spikes"
