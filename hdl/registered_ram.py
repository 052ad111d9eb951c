"""A memory with one write port and one read port whose read data leave through a register."""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, Value
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from ._checks import check_positive, reject
from ._platform import platform_mapping

__all__ = ["RegisteredRAM"]


class RegisteredRAM(wiring.Component):
    """A RAM of ``depth`` words of ``width`` bits: one write port, one read port read registered twice.

    The write port writes ``w_data`` at ``w_addr`` at the end of a cycle with ``w_en``. The read
    port reads like a block RAM with its output register switched on: the word at ``r_addr`` of
    cycle n is taken at the end of cycle n (the memory's synchronous read, in every cycle) and
    enters the output register ``r_data`` at the end of cycle n + 1 if ``r_en`` is high in cycle
    n + 1 (the register's clock enable); otherwise ``r_data`` holds. So ``r_data`` is word
    ``r_addr(n)`` in cycle n + 2 (latency 2, one read per cycle). A word written in cycle n can be
    read from cycle n + 1 on; what a read of the address written in the same cycle returns is
    unspecified (a block RAM's two ports collide): a user must not use that word. Both read
    registers are reset-less (0 at power-up).

    The point is timing, as for :class:`~.registered_rom.RegisteredROM`: an ECP5 DP16KD read
    without its output register takes most of a 150 MHz period, and Yosys never uses that
    register. ``elaborate`` asks ``platform`` for a method ``get_registered_ram(ram)``
    (duck-typed; boards/ supplies it for ECP5: DP16KDs with ``REGMODE_B="OUTREG"`` and the
    output clock enable ``OCEB`` = ``r_en``) and uses what it returns, unless that is None.
    Otherwise the RAM is an ``amaranth.lib.memory.Memory`` with a write port and a synchronous,
    non-transparent read port (the colliding read returns the old word), followed by the
    register.

    With ``two_addresses`` the user gives the read address as a choice of two instead of
    ``r_addr``: ``r_addr_alt`` when ``r_use_alt`` else ``r_addr_main`` (for a user whose choice
    comes late in the cycle, e.g. from a handshake, and who has both candidates in registers).
    The generic RAM and a block RAM read at the chosen address (:meth:`read_address`); a platform whose small RAMs read asynchronously (LUT RAM) may instead read both
    candidates, each into its own latch, and choose between the latches by a register of
    ``r_use_alt`` (a copy of the RAM for one more read port; then no multiplexer sits between the
    choice and the RAM's read logic). Both give the same words in every cycle.

    Parameters
    ----------
    width : int
        Bits of a word (>= 1).
    depth : int
        Words (>= 1).
    two_addresses : bool
        Adds ``r_addr_main``, ``r_addr_alt`` and ``r_use_alt`` (default False).

    Members
    -------
    w_addr : ``In(range(depth))``
    w_data : ``In(width)``
    w_en : ``In(1)``
    r_addr : ``In(range(depth))`` (only without ``two_addresses``)
    r_addr_main, r_addr_alt : ``In(range(depth))`` (only with ``two_addresses``)
    r_use_alt : ``In(1)`` (only with ``two_addresses``)
        The read address is ``r_addr_alt`` when this is high, else ``r_addr_main``.
    r_en : ``In(1)``
        Clock enable of the output register.
    r_data : ``Out(width)``
        The output register.
    """

    def __init__(self, *, width: int, depth: int, two_addresses: bool = False):
        check_positive(self, "RegisteredRAM", width=width, depth=depth)
        if not isinstance(two_addresses, bool):
            raise reject(self, TypeError(f"RegisteredRAM two_addresses must be a bool, not {two_addresses!r}"))
        self._width, self._depth, self._two_addresses = width, depth, two_addresses
        members = {
            "w_addr": In(range(depth)),
            "w_data": In(width),
            "w_en": In(1),
            "r_en": In(1),
            "r_data": Out(width),
        }
        if two_addresses:
            members |= {"r_addr_main": In(range(depth)), "r_addr_alt": In(range(depth)), "r_use_alt": In(1)}
        else:
            members["r_addr"] = In(range(depth))
        super().__init__(members)

    @property
    def width(self) -> int:
        return self._width

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def two_addresses(self) -> bool:
        return self._two_addresses

    def read_address(self) -> Value:
        """The address read in this cycle: ``r_addr``, or with ``two_addresses`` the chosen one."""
        if self._two_addresses:
            return Mux(self.r_use_alt, self.r_addr_alt, self.r_addr_main)
        return self.r_addr

    def elaborate(self, platform):
        mapped = platform_mapping(platform, "get_registered_ram", self)
        if mapped is not None:
            return mapped
        m = Module()
        m.submodules.memory = mem = memory.Memory(shape=self._width, depth=self._depth, init=[])
        wp = mem.write_port()
        rp = mem.read_port()
        out = Signal(self._width, name="out", reset_less=True)
        m.d.comb += [
            wp.addr.eq(self.w_addr), wp.data.eq(self.w_data), wp.en.eq(self.w_en),
            rp.addr.eq(self.read_address()),
            self.r_data.eq(out),
        ]
        with m.If(self.r_en):
            m.d.sync += out.eq(rp.data)
        return m
