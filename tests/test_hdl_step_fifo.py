"""hdl/step_fifo.py against the StepFIFO of the stop before (a memory with a transparent read port
and a fabric head register), cycle by cycle: the registered-read memory with its bypass changes no
handshake, word, count or fill level of any cycle. The memory is built generically and with a
stub platform whose RAM returns a wrong word on every colliding read, as a block RAM may."""
from __future__ import annotations

import random

import pytest
from amaranth.hdl import Const, Fragment, Module, Mux, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from skipcore.hdl.registered_ram import RegisteredRAM
from skipcore.hdl.step_fifo import StepFIFO
from skipcore.hdl.stream import word_layout


class _ReferenceFIFO(wiring.Component):
    """The StepFIFO of the stop before, verbatim in behaviour (transparent read, fabric head)."""

    def __init__(self, *, layout, depth, room=None):
        self._layout, self._depth, self._room = layout, depth, room
        members = {"w": In(stream.Signature(layout)), "r": Out(stream.Signature(layout)),
                   "steps": Out(range(depth + 1)), "space": Out(range(depth + 1))}
        if room is not None:
            members["has_room"] = Out(1, init=int(depth >= room))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        depth = self._depth
        m.submodules.storage = storage = memory.Memory(shape=self._layout, depth=depth, init=[])
        wp = storage.write_port()
        rp = storage.read_port(transparent_for=(wp,))
        level, stored = Signal(range(depth + 1)), Signal(range(depth + 1))
        produce, consume = Signal(range(depth)), Signal(range(depth))
        head, head_valid = Signal(self._layout), Signal()

        def incr(ptr):
            return Mux(ptr == depth - 1, 0, ptr + 1) if depth > 1 else ptr

        not_full, has_stored = Signal(init=1), Signal()
        do_w = self.w.valid & self.w.ready
        do_r = self.r.valid & self.r.ready
        load = has_stored & (~head_valid | do_r)

        def at_most(bound):
            return Const(0) if bound < 0 else Const(1) if bound >= depth else level <= bound

        def next_level(if_up, if_down, if_same):
            return Mux(do_w & ~do_r, if_up, Mux(do_r & ~do_w, if_down, if_same))

        m.d.sync += [not_full.eq(next_level(level != depth - 1, 1, level != depth)),
                     has_stored.eq(Mux(do_w & ~load, 1, Mux(load & ~do_w, stored != 1, stored != 0))),
                     stored.eq(Mux(do_w & ~load, stored + 1, Mux(load & ~do_w, stored - 1, stored)))]
        m.d.comb += [self.w.ready.eq(not_full), self.r.valid.eq(head_valid), self.r.payload.eq(head),
                     self.space.eq(depth - level), wp.addr.eq(produce), wp.data.eq(self.w.payload),
                     wp.en.eq(do_w), rp.addr.eq(Mux(load, incr(consume), consume))]
        with m.If(load):
            m.d.sync += [head.eq(rp.data), head_valid.eq(1), consume.eq(incr(consume))]
        with m.Elif(do_r):
            m.d.sync += head_valid.eq(0)
        with m.If(do_w):
            m.d.sync += produce.eq(incr(produce))
        m.d.sync += level.eq(next_level(level + 1, level - 1, level))
        if self._room is not None:
            bound = depth - self._room
            m.d.sync += self.has_room.eq(next_level(at_most(bound - 1), at_most(bound + 1), at_most(bound)))
        inc = Signal()
        m.d.sync += inc.eq(do_w & self.w.payload.end_step)
        dec = do_r & self.r.payload.end_step
        m.d.sync += self.steps.eq(Mux(inc & ~dec, self.steps + 1, Mux(dec & ~inc, self.steps - 1, self.steps)))
        return m


class _CollidingRAMPlatform:
    """A platform whose RegisteredRAM reads a wrong word (all bits inverted) when the read address
    is the one written in the same cycle: a block RAM leaves that word undefined."""

    def get_registered_ram(self, ram):
        m = Module()
        m.submodules.memory = mem = memory.Memory(shape=ram.width, depth=ram.depth, init=[])
        wp, rp = mem.write_port(), mem.read_port()
        collided = Signal()
        out = Signal(ram.width)
        m.d.comb += [wp.addr.eq(ram.w_addr), wp.data.eq(ram.w_data), wp.en.eq(ram.w_en),
                     rp.addr.eq(ram.read_address()), ram.r_data.eq(out)]
        m.d.sync += collided.eq(ram.w_en & (ram.w_addr == ram.read_address()))
        with m.If(ram.r_en):
            m.d.sync += out.eq(Mux(collided, ~rp.data, rp.data))
        return m


class _Pair(wiring.Component):
    """The new and the reference FIFO side by side on the same input and read handshakes."""

    def __init__(self, layout, depth, room):
        self.new = StepFIFO(layout=layout, depth=depth, room=room)
        self.ref = _ReferenceFIFO(layout=layout, depth=depth, room=room)
        super().__init__({"w": In(stream.Signature(layout)), "ready": In(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.new, m.submodules.ref = self.new, self.ref
        for fifo in (self.new, self.ref):
            m.d.comb += [fifo.w.valid.eq(self.w.valid), fifo.w.payload.eq(self.w.payload), fifo.r.ready.eq(self.ready)]
        return m


@pytest.mark.parametrize("platform", [None, _CollidingRAMPlatform()], ids=["generic", "colliding"])
@pytest.mark.parametrize("depth,room", [(1, None), (2, 1), (3, None), (5, 3), (40, 17)])
def test_step_fifo_matches_the_transparent_fifo_in_every_cycle(platform, depth, room):
    layout = word_layout(4, 3)
    dut = _Pair(layout, depth, room)
    rng = random.Random(depth * 7 + (room or 0))
    outputs = ["w.ready", "r.valid", "steps", "space"] + (["has_room"] if room else [])
    reads = []

    def get(ctx, fifo, name):
        obj = fifo
        for part in name.split("."):
            obj = getattr(obj, part)
        return ctx.get(obj)

    async def bench(ctx):
        # phases of light and heavy writing and reading: empty, full and every level in between
        for cycle in range(1500):
            phase = (cycle // 150) % 4
            p_write, p_read = ((0.9, 0.2), (0.3, 0.9), (0.6, 0.6), (1.0, 1.0))[phase]
            word = {"group": rng.randrange(4), "mask": rng.randrange(8), "end_step": rng.random() < 0.3,
                    "end_seq": rng.random() < 0.1}
            ctx.set(dut.w.payload, word)
            ctx.set(dut.w.valid, rng.random() < p_write)
            ctx.set(dut.ready, rng.random() < p_read)
            for name in outputs:
                assert get(ctx, dut.new, name) == get(ctx, dut.ref, name), (cycle, name)
            if ctx.get(dut.ref.r.valid):
                assert ctx.get(dut.new.r.payload) == ctx.get(dut.ref.r.payload), cycle
                if ctx.get(dut.ready):
                    reads.append(cycle)
            await ctx.tick()

    # the stub platform reaches the RAM through the elaboration
    sim = Simulator(Fragment.get(dut, platform))
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert len(reads) > 300


def test_colliding_platform_does_collide():
    """The stub RAM of the test above really returns wrong words on a colliding read (else the
    test could not fail), and the generic RegisteredRAM reads with latency 2 and a holding register."""
    for platform, wrong in ((_CollidingRAMPlatform(), True), (None, False)):
        ram = RegisteredRAM(width=6, depth=4)
        seen = []

        async def bench(ctx):
            ctx.set(ram.w_addr, 2)
            ctx.set(ram.w_data, 0b101)
            ctx.set(ram.w_en, 1)
            ctx.set(ram.r_addr, 2)            # collides
            ctx.set(ram.r_en, 1)
            await ctx.tick()
            ctx.set(ram.w_en, 0)
            await ctx.tick()                  # the colliding read is in the output register now
            seen.append(ctx.get(ram.r_data))
            await ctx.tick()                  # the read of cycle 1: the written word
            seen.append(ctx.get(ram.r_data))
            ctx.set(ram.r_en, 0)
            ctx.set(ram.r_addr, 0)
            await ctx.tick()
            await ctx.tick()
            seen.append(ctx.get(ram.r_data))  # held: r_en low

        sim = Simulator(Fragment.get(ram, platform))
        sim.add_clock(1e-6)
        sim.add_testbench(bench)
        sim.run()
        assert (seen[0] != 0b101) if wrong else (seen[0] == 0), seen
        assert seen[1:] == [0b101, 0b101]
