"""A read-only memory whose read data leave through a register (read latency 2)."""
from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from ._checks import check_positive, reject
from ._platform import platform_mapping

__all__ = ["RegisteredROM", "MAX_PORTS"]

#: read ports one ROM may have (a true-dual-port block RAM has two)
MAX_PORTS = 2


class RegisteredROM(wiring.Component):
    """A ROM of ``depth`` words of ``width`` bits with ``ports`` read ports, each read registered twice.

    Every port reads like a block RAM with its output register switched on: the address of
    cycle n is taken at the end of cycle n (the memory's synchronous read) and the word is
    registered once more at the end of cycle n + 1, so ``data`` holds word ``addr(n)`` in cycle
    n + 2 (latency 2, one read per port per cycle, no enable, never stalls). Both registers are
    reset-less (0 at power-up): a reset does not disturb the read pipeline.

    The point is timing: the output register of an ECP5 DP16KD (``REGMODE="OUTREG"``) has a
    clock-to-out of about a fabric flip-flop's, while the memory read itself (``NOREG``) takes
    most of a 150 MHz period. Yosys does not move a following fabric register into the block
    RAM, so the platform may build the ROM itself: ``elaborate`` asks ``platform`` for a method
    ``get_registered_rom(rom)`` (duck-typed; boards/ supplies it for ECP5) and uses what it
    returns, unless that is None. Otherwise (simulation, ``platform=None``; iCE40; plain Verilog)
    the ROM is an ``amaranth.lib.memory.Memory`` with one synchronous read port per port,
    followed by a register: the same behaviour cycle for cycle.

    Parameters
    ----------
    width : int
        Bits of a word (>= 1).
    depth : int
        Words (>= 1).
    init : sequence of int
        The words (at most ``depth``; the rest are 0), as unsigned ``width``-bit values.
    ports : int
        Read ports, 1 or 2.

    Members
    -------
    addr : ``In(range(depth)).array(ports)``
        The read address of each port.
    data : ``Out(width).array(ports)``
        The word read two cycles before (a register).
    """

    def __init__(self, *, width: int, depth: int, init, ports: int = 1):
        check_positive(self, "RegisteredROM", width=width, depth=depth, ports=ports)
        if ports > MAX_PORTS:
            raise reject(self, ValueError(f"RegisteredROM ports must be at most {MAX_PORTS}, got {ports}"))
        words = [int(w) for w in init]
        if len(words) > depth:
            raise reject(self, ValueError(f"RegisteredROM init has {len(words)} words, more than depth {depth}"))
        if any(w < 0 or w >> width for w in words):
            raise reject(self, ValueError(f"RegisteredROM init words must be unsigned {width}-bit values"))
        self._width, self._depth, self._ports = width, depth, ports
        self._init = tuple(words) + (0,) * (depth - len(words))
        super().__init__({
            "addr": In(range(depth)).array(ports),
            "data": Out(width).array(ports),
        })

    @property
    def width(self) -> int:
        return self._width

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def ports(self) -> int:
        return self._ports

    @property
    def init(self) -> tuple[int, ...]:
        """All ``depth`` words."""
        return self._init

    def elaborate(self, platform):
        mapped = platform_mapping(platform, "get_registered_rom", self)
        if mapped is not None:
            return mapped
        m = Module()
        m.submodules.memory = mem = memory.Memory(shape=self._width, depth=self._depth, init=self._init)
        for port in range(self._ports):
            rp = mem.read_port()
            out = Signal(self._width, name=f"out{port}", reset_less=True)
            m.d.comb += rp.addr.eq(self.addr[port])
            m.d.sync += out.eq(rp.data)
            m.d.comb += self.data[port].eq(out)
        return m
