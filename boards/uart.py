"""A small 8N1 UART (receiver and transmitter) for the board tops.

Both sides count a fixed ``divisor`` of clock cycles per bit (``round(f_clk / baud)``). The
receiver synchronises ``rx`` with two flip-flops, finds the falling edge of the start bit,
re-checks it half a bit later and then samples every bit in its middle.
"""
from __future__ import annotations

from amaranth import Cat, Module, Signal
from amaranth.lib import cdc, stream, wiring
from amaranth.lib.wiring import In, Out

from skipcore.errors import ConfigError

MIN_DIVISOR = 4


def uart_divisor(clock_hz: float, baud: int, *, tolerance: float = 0.02) -> int:
    """Clock cycles per bit for ``baud`` at ``clock_hz``; ConfigError when the rate error is too big."""
    if baud <= 0:
        raise ConfigError(f"baud rate must be positive, got {baud}")
    divisor = round(clock_hz / baud)
    if divisor < MIN_DIVISOR:
        raise ConfigError(
            f"baud rate {baud} is too fast for a {clock_hz / 1e6:g} MHz clock "
            f"(needs at least {MIN_DIVISOR} clock cycles per bit, has {clock_hz / baud:.2f})"
        )
    error = abs(clock_hz / divisor - baud) / baud
    if error > tolerance:
        raise ConfigError(
            f"baud rate {baud} cannot be made from a {clock_hz / 1e6:g} MHz clock: "
            f"the nearest divisor {divisor} gives {clock_hz / divisor:.0f} baud ({error:.1%} off, limit {tolerance:.0%})"
        )
    return divisor


class UARTRx(wiring.Component):
    """8N1 receiver.

    Members
    -------
    rx : In(1), idle high
        The serial line (asynchronous; synchronised inside).
    data : Out(8)
        The last byte received, valid while ``valid`` is high.
    valid : Out(1)
        One-cycle strobe: a byte with a correct stop bit arrived (no backpressure).
    error : Out(1)
        One-cycle strobe: a byte arrived with its stop bit low (framing error); it is dropped.
    stopping : Out(1)
        In the stop bit: while it is low, ``valid`` and ``error`` stay low in the next cycle.

    ``valid`` and ``error`` are registers (one cycle after the middle of the stop bit), so that
    the frame parser's decisions do not start at the bit timer's comparison (timing closure).
    """

    def __init__(self, divisor: int) -> None:
        if not isinstance(divisor, int) or divisor < MIN_DIVISOR:
            raise ValueError(f"divisor must be an integer >= {MIN_DIVISOR}, not {divisor!r}")
        self._divisor = divisor
        super().__init__({"rx": In(1, init=1), "data": Out(8), "valid": Out(1), "error": Out(1),
                          "stopping": Out(1)})

    @property
    def divisor(self) -> int:
        return self._divisor

    def elaborate(self, platform) -> Module:
        m = Module()
        div = self._divisor
        rx = Signal(init=1)
        m.submodules.sync_rx = cdc.FFSynchronizer(self.rx, rx, init=1)

        timer = Signal(range(div))
        bit = Signal(range(8))
        shreg = Signal(8)
        m.d.comb += self.data.eq(shreg)

        with m.If(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        m.d.sync += [self.valid.eq(0), self.error.eq(0)]
        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(~rx):
                    m.d.sync += timer.eq(div // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer == 0):
                    with m.If(~rx):
                        m.d.sync += [timer.eq(div - 1), bit.eq(0)]
                        m.next = "DATA"
                    with m.Else():
                        m.next = "IDLE"  # a glitch, not a start bit
            with m.State("DATA"):
                with m.If(timer == 0):
                    m.d.sync += [shreg.eq(Cat(shreg[1:], rx)), timer.eq(div - 1), bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer == 0):
                    with m.If(rx):
                        m.d.sync += self.valid.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += self.error.eq(1)
                        m.next = "BREAK"
            with m.State("BREAK"):  # wait for the line to go idle again after a framing error
                with m.If(rx):
                    m.next = "IDLE"
        m.d.comb += self.stopping.eq(fsm.ongoing("STOP"))
        return m


class UARTTx(wiring.Component):
    """8N1 transmitter.

    Members
    -------
    i : In(stream.Signature(8))
        Bytes to send; ``ready`` is high while the transmitter is idle.
    tx : Out(1), idle high
        The serial line.
    busy : Out(1)
        A byte is being shifted out.
    """

    def __init__(self, divisor: int) -> None:
        if not isinstance(divisor, int) or divisor < MIN_DIVISOR:
            raise ValueError(f"divisor must be an integer >= {MIN_DIVISOR}, not {divisor!r}")
        self._divisor = divisor
        super().__init__({"i": In(stream.Signature(8)), "tx": Out(1, init=1), "busy": Out(1)})

    @property
    def divisor(self) -> int:
        return self._divisor

    def elaborate(self, platform) -> Module:
        m = Module()
        div = self._divisor
        shreg = Signal(10, init=0x3FF)
        bits = Signal(range(11))
        timer = Signal(range(div))
        # ready is a register of its own (high exactly while bits == 0), so that the sender's
        # decisions on it do not start at the bit counter's comparison (timing closure, issue 12)
        ready = Signal(init=1)
        m.d.comb += [self.tx.eq(shreg[0]), self.busy.eq(~ready), self.i.ready.eq(ready)]
        with m.If(ready):
            with m.If(self.i.valid):
                m.d.sync += [shreg.eq(Cat(0, self.i.payload, 1)), bits.eq(10), timer.eq(div - 1), ready.eq(0)]
        with m.Else():
            with m.If(timer == 0):
                m.d.sync += [shreg.eq(Cat(shreg[1:], 1)), bits.eq(bits - 1), timer.eq(div - 1)]
                with m.If(bits == 1):
                    m.d.sync += ready.eq(1)
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        return m


__all__ = ["UARTRx", "UARTTx", "uart_divisor", "MIN_DIVISOR"]
