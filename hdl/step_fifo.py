"""A first-in first-out queue of stream words that counts the complete steps it holds."""
from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ._checks import reject

__all__ = ["StepFIFO"]


class StepFIFO(wiring.Component):
    """Queue of ``depth`` words in one memory, with a count of the complete steps inside.

    The engines start a step only when the whole step is queued at their input and there is room
    for the whole step at their output; ``steps`` and ``space`` tell them.

    Parameters
    ----------
    layout : amaranth.lib.data.StructLayout
        Payload layout; must have a one-bit ``end_step`` field (the step marker).
    depth : int
        Number of words (>= 1).
    room : int, optional
        Adds ``has_room``: a register that says whether ``space >= room`` (kept from the next fill
        level, so it is exact in every cycle), for a writer that needs room for ``room`` words
        before it starts: its start condition then needs no subtractor and comparator.

    Members
    -------
    w : ``In(stream.Signature(layout))``
        Write side; ``w.ready`` = not full (a register).
    r : ``Out(stream.Signature(layout))``
        Read side; ``r.valid`` = not empty (a register); ``r.payload`` is the oldest word.
    steps : ``Out(range(depth + 2))``
        Marker words written and not read before the previous cycle: the complete steps
        available at ``r``, and for one cycle after its marker was read also the step that the
        reader now holds (every reader here holds a marker it took for longer than that and
        says so, e.g. ``SkidBuffer.marker_held``, so ``steps != 0 | marker_held`` is exact).
    space : ``Out(range(depth + 1))``
        Free words.
    has_room : ``Out(1)`` (only with ``room``)
        ``space >= room``, a register.

    Latency and throughput: a word written in cycle n is readable in cycle n + 1; one write and one
    read per cycle. The memory has one write port and one synchronous read port that is
    transparent for the write port (the read address is the next head, so a word written into an
    empty queue is read through the bypass).
    """

    def __init__(self, *, layout: data.StructLayout, depth: int, room: int | None = None):
        if not isinstance(layout, data.StructLayout) or "end_step" not in layout.members:
            raise reject(self, TypeError(
                f"StepFIFO layout must be a StructLayout with an 'end_step' field, not {layout!r}"))
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise reject(self, TypeError(f"StepFIFO depth must be a positive integer, not {depth!r}"))
        if room is not None and (isinstance(room, bool) or not isinstance(room, int) or room < 1):
            raise reject(self, TypeError(f"StepFIFO room must be a positive integer, not {room!r}"))
        self._layout = layout
        self._depth = depth
        self._room = room
        members = {
            "w": In(stream.Signature(layout)),
            "r": Out(stream.Signature(layout)),
            "steps": Out(range(depth + 2)),
            "space": Out(range(depth + 1)),
        }
        if room is not None:
            members["has_room"] = Out(1, init=int(depth >= room))
        super().__init__(members)

    @property
    def depth(self) -> int:
        return self._depth

    def elaborate(self, platform):
        m = Module()
        depth = self._depth
        m.submodules.storage = storage = memory.Memory(shape=self._layout, depth=depth, init=[])
        wp = storage.write_port()
        rp = storage.read_port(transparent_for=(wp,))

        level = Signal(range(depth + 1))
        produce = Signal(range(depth))
        consume = Signal(range(depth))

        def incr(ptr):
            return Mux(ptr == depth - 1, 0, ptr + 1) if depth > 1 else ptr

        # not full, not empty and has_room are registers, each chosen from tests of ``level`` by
        # this cycle's write and read (no adder or comparison behind the handshakes: timing closure)
        not_full = Signal(init=1)
        not_empty = Signal()
        do_w = self.w.valid & self.w.ready
        do_r = self.r.valid & self.r.ready

        def at_most(bound):
            return Const(0) if bound < 0 else Const(1) if bound >= depth else level <= bound

        def next_level(if_up, if_down, if_same):
            """A test of level_next = level + do_w - do_r, chosen from tests of level."""
            return Mux(do_w & ~do_r, if_up, Mux(do_r & ~do_w, if_down, if_same))

        m.d.sync += [not_full.eq(next_level(level != depth - 1, 1, level != depth)),
                     not_empty.eq(next_level(1, level != 1, level != 0))]
        m.d.comb += [
            self.w.ready.eq(not_full),
            self.r.valid.eq(not_empty),
            self.space.eq(depth - level),
            wp.addr.eq(produce),
            wp.data.eq(self.w.payload),
            wp.en.eq(do_w),
            rp.addr.eq(Mux(do_r, incr(consume), consume)),
            self.r.payload.eq(rp.data),
        ]
        with m.If(do_w):
            m.d.sync += produce.eq(incr(produce))
        with m.If(do_r):
            m.d.sync += consume.eq(incr(consume))
        # the counters' next values are chosen by the handshakes from level +- 1 (adders that
        # start at the registers only): no handshake goes through a carry chain
        m.d.sync += level.eq(next_level(level + 1, level - 1, level))
        if self._room is not None:
            bound = depth - self._room
            m.d.sync += self.has_room.eq(next_level(at_most(bound - 1), at_most(bound + 1), at_most(bound)))

        inc = do_w & self.w.payload.end_step
        # a marker read leaves ``steps`` one cycle later (``dec`` is a register): the read data
        # come from the memory (a LUT RAM read through its address register) and go no further
        dec = Signal()
        m.d.sync += dec.eq(do_r & self.r.payload.end_step)
        steps = self.steps
        m.d.sync += steps.eq(Mux(inc & ~dec, steps + 1, Mux(dec & ~inc, steps - 1, steps)))
        return m
