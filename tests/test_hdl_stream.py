"""hdl/step_fifo.py, hdl/spike_decoder.py, hdl/ring_buffer.py against Python references (amaranth.sim)."""
from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import wiring
from amaranth.sim import Simulator

from skipcore.hdl.ring_buffer import RingBuffer
from skipcore.hdl.spike_decoder import SpikeDecoder, count_at_least
from skipcore.hdl.step_fifo import StepFIFO
from skipcore.hdl.stream import event_signature, word_layout, word_signature


class _FifoDecoder(wiring.Component):
    """StepFIFO -> SpikeDecoder, as the core wires them."""

    def __init__(self, groups, lanes, depth):
        self.fifo = StepFIFO(layout=word_layout(groups, lanes), depth=depth)
        self.dec = SpikeDecoder(groups=groups, lanes=lanes, index_bits=max(1, (groups * lanes - 1).bit_length()))
        super().__init__({"w": wiring.In(word_signature(groups, lanes)),
                          "o": wiring.Out(event_signature(max(1, (groups * lanes - 1).bit_length())))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo, m.submodules.dec = self.fifo, self.dec
        wiring.connect(m, wiring.flipped(self.w), self.fifo.w)
        wiring.connect(m, self.fifo.r, self.dec.i)
        wiring.connect(m, self.dec.o, wiring.flipped(self.o))
        return m


@pytest.mark.parametrize("groups,lanes,depth", [(5, 3, 4), (1, 1, 1), (2, 8, 3)])
def test_fifo_and_decoder_expand_words_in_order(groups, lanes, depth):
    rng = random.Random(groups * 100 + lanes)
    words = []
    for t in range(25):
        for g in range(groups):
            mask = rng.randrange(1 << lanes)
            if mask:
                words.append((g, mask, 0, 0))
        words.append((0, 0, 1, int(t % 4 == 3)))
    expected = []
    for g, mask, end, seq in words:
        if end:
            expected.append((0, 1, seq))
        else:
            expected.extend((g * lanes + p, 0, 0) for p in range(lanes) if mask >> p & 1)
    dut = _FifoDecoder(groups, lanes, depth)
    got, level_ok = [], []

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
        while len(got) < len(expected):
            ready = rng.random() < 0.7
            ctx.set(dut.o.ready, ready)
            await ctx.delay(1e-10)
            level_ok.append(ctx.get(dut.fifo.steps) <= depth)
            if ready and ctx.get(dut.o.valid):
                p = ctx.get(dut.o.payload)
                got.append((p.index, p.end_step, p.end_seq))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(producer, background=True)
    sim.add_testbench(consumer)
    sim.run()
    assert got == expected
    assert all(level_ok)


def test_decoder_one_event_per_cycle():
    """A full step queued: the decoder delivers one event every cycle, across word boundaries."""
    dut = _FifoDecoder(4, 3, 10)
    words = [(0, 0b111, 0, 0), (1, 0b001, 0, 0), (2, 0b100, 0, 0), (3, 0b011, 0, 0), (0, 0, 1, 0)]
    seen = []

    async def tb(ctx):
        for g, mask, end, seq in words:
            ctx.set(dut.w.payload, {"group": g, "mask": mask, "end_step": end, "end_seq": seq})
            ctx.set(dut.w.valid, 1)
            await ctx.tick()
        ctx.set(dut.w.valid, 0)
        ctx.set(dut.o.ready, 1)
        for _ in range(8):
            await ctx.delay(1e-10)
            seen.append(ctx.get(dut.o.valid) and (ctx.get(dut.o.payload.index), ctx.get(dut.o.payload.end_step)))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert seen == [(0, 0), (1, 0), (2, 0), (3, 0), (8, 0), (9, 0), (10, 0), (0, 1)]


def test_decoder_ready_is_a_register_and_spare_keeps_order():
    """``i.ready`` does not change when the inputs change within a cycle (it is a register), words
    wait in the spare register while ``head`` is busy, and the events stay in order."""
    groups, lanes = 3, 4
    rng = random.Random(7)
    dut = SpikeDecoder(groups=groups, lanes=lanes, index_bits=4)
    words = [(rng.randrange(groups), rng.randrange(1, 1 << lanes), 0, 0) for _ in range(60)]
    words += [(0, 0, 1, 1)]
    expected = [(g * lanes + p, 0, 0) for g, mask, _, _ in words[:-1] for p in range(lanes) if mask >> p & 1]
    expected.append((0, 1, 1))
    got, ready_low, ready_stable = [], [0], []

    async def tb(ctx):
        pending = list(words)
        while len(got) < len(expected):
            await ctx.delay(1e-10)
            before = ctx.get(dut.i.ready)
            valid = bool(pending) and rng.random() < 0.8
            if pending:
                g, mask, end, seq = pending[0]
                ctx.set(dut.i.payload, {"group": g, "mask": mask, "end_step": end, "end_seq": seq})
            ctx.set(dut.i.valid, valid)
            ctx.set(dut.o.ready, rng.random() < 0.7)
            await ctx.delay(1e-10)
            ready_stable.append(ctx.get(dut.i.ready) == before)
            ready_low[0] += not before
            if valid and before:
                pending.pop(0)
            if ctx.get(dut.o.ready) and ctx.get(dut.o.valid):
                p = ctx.get(dut.o.payload)
                got.append((p.index, p.end_step, p.end_seq))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert got == expected
    assert all(ready_stable)
    assert ready_low[0] > 0          # the spare register was used


def test_decoder_takes_the_next_word_while_head_is_busy():
    """With ``o`` stalled, the decoder takes a second word (into ``spare``) while the first still has
    events to send, then holds ``i.ready`` low: the queue's handshake does not wait on ``head``."""
    dut = SpikeDecoder(groups=2, lanes=4, index_bits=3)
    ready = []

    async def tb(ctx):
        ctx.set(dut.o.ready, 0)
        ctx.set(dut.i.valid, 1)
        for g in range(2):
            ctx.set(dut.i.payload, {"group": g, "mask": 0b1111, "end_step": 0, "end_seq": 0})
            await ctx.delay(1e-10)
            ready.append(ctx.get(dut.i.ready))
            await ctx.tick()
        for _ in range(4):
            await ctx.delay(1e-10)
            ready.append(ctx.get(dut.i.ready))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert ready == [1, 1, 0, 0, 0, 0]


@pytest.mark.parametrize("span,depth,groups,lanes", [(1, 1, 3, 2), (2, 2, 2, 3), (3, 5, 1, 4), (4, 4, 3, 1), (2, 3, 2, 9)])
def test_ring_replays_spikes_span_steps_later(span, depth, groups, lanes):
    rng = np.random.default_rng(span * 10 + depth)
    lengths = [7, 2, 9]                                  # sequences, back to back
    ring = RingBuffer(span=span, depth=depth, groups=groups, lanes=lanes)
    errors = []

    async def engine(ctx):
        for length in lengths:
            history = []
            for t in range(length):
                # wait for the complete replay of step t, then consume it with random stalls
                await ctx.tick().until(ring.o_steps != 0)
                got = []
                while True:
                    ready = rng.random() < 0.7
                    ctx.set(ring.o.ready, ready)
                    await ctx.delay(1e-10)
                    valid, p = ctx.get(ring.o.valid), ctx.get(ring.o.payload)
                    await ctx.tick()
                    if ready and valid:
                        if p.end_step:
                            break
                        got.append((p.group, p.mask))
                ctx.set(ring.o.ready, 0)
                words = history[t - span] if t >= span else []
                expected = [(g, w) for g, w in enumerate(words) if w]
                if got != expected:
                    errors.append((length, t, got, expected))
                # the engine's update: every group's word, then step_done (+ clear at the end)
                spikes = [int(x) for x in rng.integers(0, 1 << lanes, size=groups)]
                spikes = [w if rng.random() < 0.6 else 0 for w in spikes]
                history.append(spikes)
                for _ in range(int(rng.integers(0, 3))):
                    await ctx.tick()
                for g, w in enumerate(spikes):
                    ctx.set(ring.w.valid, 1)
                    ctx.set(ring.w.group, g)
                    ctx.set(ring.w.mask, w)
                    await ctx.tick()
                ctx.set(ring.w.valid, 0)
                ctx.set(ring.w.step_done, 1)
                ctx.set(ring.w.clear, int(t == length - 1))
                await ctx.tick()
                ctx.set(ring.w.step_done, 0)
                ctx.set(ring.w.clear, 0)

    sim = Simulator(ring)
    sim.add_clock(1e-8)
    sim.add_testbench(engine)
    sim.run()
    assert errors == []


def test_component_argument_checks():
    with pytest.raises(TypeError, match=r"^StepFIFO depth must be a positive integer, not 0$"):
        StepFIFO(layout=word_layout(2, 2), depth=0)
    with pytest.raises(TypeError, match=r"^SpikeDecoder lanes must be a positive integer, not 0$"):
        SpikeDecoder(groups=1, lanes=0, index_bits=1)
    with pytest.raises(ValueError, match=r"^RingBuffer depth 2 must be at least the span 3$"):
        RingBuffer(span=3, depth=2, groups=1, lanes=1)


def test_skid_buffer_keeps_order_and_full_throughput():
    """hdl.skid_buffer.SkidBuffer: every word once, in order, under random gaps (random payloads
    on the input then) and backpressure; one word per cycle when both sides are always ready; marker_held sees a marker inside."""
    from skipcore.hdl.skid_buffer import SkidBuffer
    from skipcore.hdl.stream import event_layout

    for gap, stall in ((0.0, 0.0), (0.3, 0.4)):
        dut = SkidBuffer(layout=event_layout(5))
        rng = random.Random(7)
        words = [(i % 32, int(i % 5 == 4)) for i in range(200)]
        got, held = [], []

        async def bench(ctx):
            sent = cycles = 0
            while len(got) < len(words):
                offer = sent < len(words) and rng.random() >= gap
                if offer:
                    ctx.set(dut.i.payload, {"index": words[sent][0], "end_step": words[sent][1], "end_seq": 0})
                else:                               # a word that is not offered must go nowhere
                    ctx.set(dut.i.payload, {"index": rng.randrange(32), "end_step": rng.randrange(2), "end_seq": 1})
                ctx.set(dut.i.valid, offer)
                ready = rng.random() >= stall
                ctx.set(dut.o.ready, ready)
                if ctx.get(dut.o.valid) and ready:
                    p = ctx.get(dut.o.payload)
                    got.append((p["index"], p["end_step"]))
                held.append(ctx.get(dut.marker_held))
                if offer and ctx.get(dut.i.ready):
                    sent += 1
                await ctx.tick()
                cycles += 1
            if not gap and not stall:
                assert cycles == len(words) + 1     # one cycle of latency, then one word per cycle

        sim = Simulator(dut)
        sim.add_clock(1e-6)
        sim.add_testbench(bench)
        sim.run()
        assert got == words and any(held)
    with pytest.raises(TypeError, match=r"^SkidBuffer layout must be a StructLayout, not unsigned\(4\)$"):
        SkidBuffer(layout=unsigned(4))


def test_step_fifo_has_room_is_exact_in_every_cycle():
    """StepFIFO(room=n).has_room is a register, yet equals ``space >= n`` in every cycle (and so
    do ``w.ready`` and ``r.valid`` for not full / not empty)."""
    dut = StepFIFO(layout=word_layout(2, 2), depth=5, room=3)
    rng = random.Random(5)
    seen = set()
    history = []                     # words queued in the cycles before

    async def bench(ctx):
        for _ in range(400):
            ctx.set(dut.w.valid, rng.random() < 0.5)
            ctx.set(dut.r.ready, rng.random() < 0.4)
            space, room = ctx.get(dut.space), ctx.get(dut.has_room)
            assert room == int(space >= 3), (space, room)
            # w.ready is a register too, exact in every cycle; r.valid (the output register) says
            # that a word is queued, and is set a cycle after a word arrived in an empty queue
            assert ctx.get(dut.w.ready) == int(space != 0), space
            valid = ctx.get(dut.r.valid)
            assert not valid or space != 5
            assert valid or space >= 4 or not history or history[-1] != 5 - space
            history.append(5 - space)
            seen.add(space)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert seen == set(range(6))     # every fill level was visited
    with pytest.raises(TypeError, match=r"^StepFIFO room must be a positive integer, not 0$"):
        StepFIFO(layout=word_layout(2, 2), depth=4, room=0)


@pytest.mark.parametrize("width", [1, 3, 8])
def test_count_at_least_equals_the_bit_count(width):
    """The carry-free bit-count tree of the SpikeDecoder, for every value of ``width`` bits."""
    value = Signal(width)
    flags = count_at_least(value, width, 3)
    m = Module()
    outs = [Signal(name=f"at_least_{i + 1}") for i in range(3)]
    m.d.comb += [o.eq(f) for o, f in zip(outs, flags)]

    async def bench(ctx):
        for x in range(1 << width):
            ctx.set(value, x)
            count = bin(x).count("1")
            assert [ctx.get(o) for o in outs] == [int(count >= k) for k in (1, 2, 3)], x

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


def test_step_fifo_steps_counts_markers_from_the_cycle_after_their_write():
    """StepFIFO.steps = markers written before the previous cycle - markers read (the increment is
    registered); words come out in order, two cycles after their write at the earliest."""
    depth = 4
    dut = StepFIFO(layout=word_layout(4, 2), depth=depth)
    rng = random.Random(11)
    written = read = 0
    history = []
    sent, got = [], []

    async def bench(ctx):
        nonlocal written, read
        for cycle in range(800):
            marker = rng.random() < 0.5
            word = {"group": cycle % 4, "mask": rng.randrange(4), "end_step": marker, "end_seq": 0}
            ctx.set(dut.w.valid, rng.random() < 0.6)
            ctx.set(dut.w.payload, word)
            ctx.set(dut.r.ready, rng.random() < 0.5)
            history.append(written)
            assert ctx.get(dut.steps) == (history[-2] if len(history) > 1 else 0) - read
            if ctx.get(dut.w.valid) and ctx.get(dut.w.ready):
                written += marker
                sent.append((word["group"], word["mask"], int(marker), cycle))
            if ctx.get(dut.r.valid) and ctx.get(dut.r.ready):
                p = ctx.get(dut.r.payload)
                read += p["end_step"]
                got.append((p["group"], p["mask"], p["end_step"], cycle))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert read > 100
    assert [g[:3] for g in got] == [w[:3] for w in sent[:len(got)]]
    assert all(g[3] >= w[3] + 2 for g, w in zip(got, sent))
