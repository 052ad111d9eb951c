"""cocotb drivers and monitors for ready/valid streams, with seeded random gaps and backpressure.

All parts run inside one :class:`CycleLoop`, which calls, once per clock cycle,

* ``drive(cycle)`` of every part at the falling edge (inputs change half a cycle away from the
  active rising edge, so every simulator sees them settled), then
* ``sample(cycle)`` of every part in the ReadOnly phase of the same half cycle, where every signal
  holds the value the next rising edge will register. A transfer happens at that rising edge when
  ``valid & ready`` is sampled high.

One loop with two triggers per cycle is much cheaper than one coroutine per part, and it keeps the
parts deterministic with respect to each other. Parts take ``random.Random`` (or a seed) so a run
is reproducible from its seed.

Protocol checks (``hdl/INTERFACE.md``, ``amaranth.lib.stream`` rules): a :class:`StreamMonitor`
records a violation when an output word is withdrawn (``valid`` falls) or changes before it was
transferred.
"""
from __future__ import annotations

import random
from collections import deque
from typing import Any, Callable, Iterable, Sequence

from cocotb.triggers import FallingEdge, ReadOnly

__all__ = ["CycleLoop", "Layout", "StatusBus", "bit", "StreamDriver", "StreamMonitor", "DebugMonitor", "Timeout", "port"]


class Timeout(AssertionError):
    """The design did not finish within the cycle budget."""


class Layout:
    """Fields packed into one payload vector, first field in the lowest bits (as an Amaranth
    ``data.StructLayout`` lays them out). ``Layout([("index", 4), ("end_step", 1)])``."""

    def __init__(self, fields: Sequence[tuple[str, int]]) -> None:
        self.fields = [(str(n), int(w)) for n, w in fields]
        self.names = [n for n, _ in self.fields]
        self.width = sum(w for _, w in self.fields)

    def pack(self, values: Sequence[int]) -> int:
        word, shift = 0, 0
        for (_, w), v in zip(self.fields, values):
            word |= (int(v) & ((1 << w) - 1)) << shift
            shift += w
        return word

    def unpack(self, word: int) -> tuple[int, ...]:
        out, shift = [], 0
        for _, w in self.fields:
            out.append((word >> shift) & ((1 << w) - 1))
            shift += w
        return tuple(out)


def port(dut: Any, name: str) -> Any:
    """``dut.<name>``, with an error that lists the ports that do exist."""
    try:
        return getattr(dut, name)
    except AttributeError:
        names = sorted(h._name for h in dut if hasattr(h, "_name")) if hasattr(dut, "__iter__") else []
        raise AttributeError(f"the design has no port {name!r}; ports: {', '.join(names[:60])}") from None


def bit(handle: Any, unknown: list, cycle: int) -> int:
    """A 1-bit control signal as 0/1; X or Z reads as 0 and is noted in ``unknown``."""
    try:
        return int(handle.value)
    except ValueError:
        if len(unknown) < 20:
            unknown.append(f"cycle {cycle}: {handle._name} is {handle.value!s}")
        return 0


def _rng(seed_or_rng: int | random.Random | None) -> random.Random:
    if isinstance(seed_or_rng, random.Random):
        return seed_or_rng
    return random.Random(seed_or_rng)


def _bind_stream(end: Any, dut: Any, prefix: str, fields: Sequence[str] | Layout, seed) -> None:
    """Attach the ``<prefix>valid/ready`` handshake and payload ports of ``dut`` to a stream end."""
    end.valid = port(dut, prefix + "valid")
    end.ready = port(dut, prefix + "ready")
    end.layout = fields if isinstance(fields, Layout) else None
    end.names = list(fields.names if isinstance(fields, Layout) else fields)
    end.fields = [port(dut, prefix + "payload")] if end.layout else [port(dut, prefix + f) for f in fields]
    end.rng = _rng(seed)


class _Part:
    """Base of the loop parts: override :meth:`drive` and/or :meth:`sample`."""

    def drive(self, cycle: int) -> None:
        pass

    def sample(self, cycle: int) -> None:
        pass


class StreamDriver(_Part):
    """Drives a ready/valid input stream with random idle cycles between words.

    Parameters
    ----------
    dut : cocotb handle of the top level.
    prefix : str
        Port name prefix: signals are ``{prefix}valid``, ``{prefix}ready`` and ``{prefix}{field}``.
    fields : sequence of str, or :class:`Layout`
        Payload field names (one port ``{prefix}{field}`` each), or a :class:`Layout` packed into
        the single port ``{prefix}payload`` (Amaranth ``stream.Signature`` ports ``x__payload``).
        Each word sent is a tuple of ints in field order.
    gap : float
        Probability, per cycle between words, of holding ``valid`` low (an idle cycle).
    seed : int or random.Random
        Source of the gaps.

    Attributes
    ----------
    sent : list of (cycle, word)
        Words transferred, with the cycle of the rising edge that took them.
    on_transfer : list of callables ``f(cycle, word)``
    """

    def __init__(self, dut: Any, *, prefix: str, fields: Sequence[str] | Layout, gap: float = 0.0,
                 seed: int | random.Random | None = 0) -> None:
        _bind_stream(self, dut, prefix, fields, seed)
        self.gap = float(gap)
        self.queue: deque[tuple[int, ...]] = deque()
        self.current: tuple[int, ...] | None = None
        self.sent: list[tuple[int, tuple[int, ...]]] = []
        self.on_transfer: list[Callable[[int, tuple[int, ...]], None]] = []
        self.unknown: list[str] = []  #: X/Z seen on ready
        self._valid_now = 0
        self._payload_now: list[int | None] = [None] * len(self.fields)
        self.valid.value = 0

    def send(self, words: Iterable[Sequence[int]]) -> None:
        """Queue words (tuples in ``fields`` order)."""
        self.queue.extend(tuple(int(v) for v in w) for w in words)

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing waiting for a transfer."""
        return self.current is None and not self.queue

    def drive(self, cycle: int) -> None:
        if self.current is None and self.queue and not (self.gap and self.rng.random() < self.gap):
            self.current = self.queue.popleft()
            values = (self.layout.pack(self.current),) if self.layout else self.current
            for i, (sig, v) in enumerate(zip(self.fields, values)):
                if self._payload_now[i] != v:
                    sig.value = v
                    self._payload_now[i] = v
        want = 0 if self.current is None else 1
        if want != self._valid_now:
            self.valid.value = want
            self._valid_now = want

    def sample(self, cycle: int) -> None:
        if self.current is not None and bit(self.ready, self.unknown, cycle):
            word = self.current
            self.current = None
            self.sent.append((cycle, word))
            for cb in self.on_transfer:
                cb(cycle, word)


class StreamMonitor(_Part):
    """Receives a ready/valid output stream, holding ``ready`` low at random (backpressure).

    Parameters
    ----------
    dut, prefix, fields : as for :class:`StreamDriver`.
    backpressure : float
        Probability, per cycle, of holding ``ready`` low.
    seed : int or random.Random

    Attributes
    ----------
    received : list of (cycle, word)
    protocol_errors : list of str
        Words withdrawn or changed while ``valid`` was high and ``ready`` low.
    on_transfer : list of callables ``f(cycle, word)``
    """

    def __init__(self, dut: Any, *, prefix: str, fields: Sequence[str] | Layout, backpressure: float = 0.0,
                 seed: int | random.Random | None = 0) -> None:
        _bind_stream(self, dut, prefix, fields, seed)
        self.backpressure = float(backpressure)
        self.received: list[tuple[int, tuple[int, ...]]] = []
        self.protocol_errors: list[str] = []
        self.on_transfer: list[Callable[[int, tuple[int, ...]], None]] = []
        self._ready_now = 0
        self._pending: tuple[int, ...] | None = None  # seen valid but not taken last cycle
        self.ready.value = 0
        self.enabled = True

    def _read(self) -> tuple[int, ...]:
        try:
            if self.layout is not None:
                return self.layout.unpack(int(self.fields[0].value))
            return tuple(int(f.value) for f in self.fields)
        except ValueError:  # X/Z in a transferred payload
            self.protocol_errors.append(f"payload {[str(f.value) for f in self.fields]} has X/Z bits")
            return tuple(-1 for _ in self.names)

    def drive(self, cycle: int) -> None:
        want = 1 if self.enabled and not (self.backpressure and self.rng.random() < self.backpressure) else 0
        if want != self._ready_now:
            self.ready.value = want
            self._ready_now = want

    def sample(self, cycle: int) -> None:
        valid = bit(self.valid, self.protocol_errors, cycle)
        if not valid:
            if self._pending is not None:
                self.protocol_errors.append(f"cycle {cycle}: {self.names} word {self._pending} withdrawn before transfer")
                self._pending = None
            return
        if not self._ready_now and self._pending is None:
            # only read the payload when needed for the stability check
            self._pending = self._read()
            return
        word = self._read()
        if self._pending is not None and word != self._pending:
            self.protocol_errors.append(f"cycle {cycle}: word changed from {self._pending} to {word} before transfer")
        if self._ready_now:
            self._pending = None
            self.received.append((cycle, word))
            for cb in self.on_transfer:
                cb(cycle, word)
        else:
            self._pending = word


class DebugMonitor(_Part):
    """Samples ``dbg_l{l}_valid/spikes/cycles`` of every hidden layer every cycle.

    Attributes
    ----------
    steps : list (per layer) of lists of (cycle, spikes_bits, cycles)
    """

    def __init__(self, dut: Any, layers: int, *, prefix: str = "") -> None:
        self.valid = [port(dut, f"{prefix}dbg_l{l}_valid") for l in range(layers)]
        self.spikes = [port(dut, f"{prefix}dbg_l{l}_spikes") for l in range(layers)]
        self.cycles = [port(dut, f"{prefix}dbg_l{l}_cycles") for l in range(layers)]
        self.steps: list[list[tuple[int, int, int]]] = [[] for _ in range(layers)]
        self.unknown: list[str] = []  #: X/Z seen on the debug ports

    def sample(self, cycle: int) -> None:
        for l, v in enumerate(self.valid):
            if bit(v, self.unknown, cycle):
                try:
                    self.steps[l].append((cycle, int(self.spikes[l].value), int(self.cycles[l].value)))
                except ValueError:
                    self.unknown.append(f"cycle {cycle}: dbg_l{l}_spikes/cycles {self.spikes[l].value!s}")
                    self.steps[l].append((cycle, 0, -1))


class StatusBus(_Part):
    """One wide status vector read once per cycle; :meth:`bit` gives handle-like views of its bits.

    Put it first in the loop: the other parts then read its cached bits in their ``sample``
    (one VPI read per cycle instead of one per 1-bit signal).
    """

    def __init__(self, handle: Any, bits: dict[str, int]) -> None:
        self.handle = handle
        self.bits = dict(bits)
        self.word = 0
        self.unknown: list[str] = []

    def sample(self, cycle: int) -> None:
        v = self.handle.value
        try:
            self.word = int(v)
        except ValueError:  # X/Z somewhere: read them as 0 and note it
            text = str(v)
            if len(self.unknown) < 20:
                bad = [n for n, i in self.bits.items() if text[len(text) - 1 - i] not in "01"]
                self.unknown.append(f"cycle {cycle}: {', '.join(bad)} X/Z")
            self.word = int("".join(c if c in "01" else "0" for c in text), 2)

    def bit(self, name: str) -> "StatusBit":
        return StatusBit(self, self.bits[name], name)


class StatusBit:
    """A read-only bit of a :class:`StatusBus`, usable where a 1-bit handle is read."""

    def __init__(self, bus: StatusBus, index: int, name: str) -> None:
        self.bus, self.index, self._name = bus, index, name

    @property
    def value(self) -> int:
        return (self.bus.word >> self.index) & 1


class CycleLoop:
    """Runs parts once per cycle of ``clk`` (see the module docstring for the phases)."""

    def __init__(self, clk: Any, parts: Sequence[_Part] = ()) -> None:
        self.clk = clk
        self.parts: list[_Part] = list(parts)
        self.cycle = 0

    def add(self, *parts: _Part) -> None:
        self.parts.extend(parts)

    async def reset(self, rst: Any, cycles: int = 2) -> None:
        """Hold ``rst`` high for ``cycles`` rising edges (active high, synchronous)."""
        await FallingEdge(self.clk)
        rst.value = 1
        for _ in range(cycles):
            await FallingEdge(self.clk)
        rst.value = 0

    async def run(self, done: Callable[[], bool], max_cycles: int, *, what: str = "the run") -> int:
        """Step until ``done()`` (checked after each sample phase); return the cycles used.

        Raises :class:`Timeout` after ``max_cycles``.
        """
        parts = self.parts
        for _ in range(int(max_cycles)):
            await FallingEdge(self.clk)
            cycle = self.cycle
            for p in parts:
                p.drive(cycle)
            await ReadOnly()
            for p in parts:
                p.sample(cycle)
            self.cycle += 1
            if done():
                return self.cycle
        raise Timeout(f"{what} did not finish within {max_cycles} cycles")

    async def idle(self, cycles: int) -> None:
        """Keep driving and sampling for ``cycles`` more cycles."""
        parts = self.parts
        for _ in range(int(cycles)):
            await FallingEdge(self.clk)
            for p in parts:
                p.drive(self.cycle)
            await ReadOnly()
            for p in parts:
                p.sample(self.cycle)
            self.cycle += 1
