"""hdl/registered_rom.py: the generic RegisteredROM against a Python reference (amaranth.sim)."""
from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from skipcore.hdl.registered_rom import RegisteredROM


def rom_reference(init, addresses, latency=2):
    """What every port shows per cycle: the word at the address of ``latency`` cycles before
    (0 before that: the registers start at 0)."""
    return [0] * latency + [init[a] for a in addresses[:len(addresses) - latency]]


@pytest.mark.parametrize("width,depth,ports", [(13, 37, 1), (64, 512, 2), (1, 1, 1)])
def test_registered_rom_reads_with_latency_two(width, depth, ports):
    rng = random.Random(width * depth + ports)
    init = [rng.getrandbits(width) for _ in range(depth - 1)]    # the last word defaults to 0
    dut = RegisteredROM(width=width, depth=depth, init=init, ports=ports)
    assert dut.init[:-1] == tuple(init) and dut.init[-1] == 0
    addresses = [[rng.randrange(depth) for _ in range(200)] for _ in range(ports)]
    seen = [[] for _ in range(ports)]

    async def bench(ctx):
        for n in range(200):
            for p in range(ports):
                ctx.set(dut.addr[p], addresses[p][n])
                seen[p].append(ctx.get(dut.data[p]))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    for p in range(ports):
        assert seen[p] == rom_reference(dut.init, addresses[p])


def test_registered_rom_argument_checks():
    with pytest.raises(TypeError, match=r"^RegisteredROM width must be a positive integer, not 0$"):
        RegisteredROM(width=0, depth=4, init=[])
    with pytest.raises(ValueError, match=r"^RegisteredROM ports must be at most 2, got 3$"):
        RegisteredROM(width=4, depth=4, init=[], ports=3)
    with pytest.raises(ValueError, match=r"^RegisteredROM init has 5 words, more than depth 4$"):
        RegisteredROM(width=4, depth=4, init=[0] * 5)
    with pytest.raises(ValueError, match=r"^RegisteredROM init words must be unsigned 4-bit values$"):
        RegisteredROM(width=4, depth=4, init=[16])


def test_registered_rom_asks_the_platform_and_falls_back_when_it_declines():
    """The platform hook is used when it returns a module, the generic ROM when it returns None."""
    from amaranth.hdl import Fragment, Module

    asked = []

    class Declines:
        def get_registered_rom(self, rom):
            asked.append(rom)

    class Builds:
        def get_registered_rom(self, rom):
            asked.append(rom)
            return Module()

    def submodules(platform):
        frag = Fragment.get(RegisteredROM(width=4, depth=4, init=[1, 2]), platform)
        return [sub[1] for sub in frag.subfragments]

    assert submodules(Declines()) == ["memory"] and len(asked) == 1
    assert submodules(Builds()) == [] and len(asked) == 2
