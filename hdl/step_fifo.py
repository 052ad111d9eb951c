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
        Read side; ``r.valid`` and ``r.payload`` (the oldest word) are registers.
    steps : ``Out(range(depth + 1))``
        Marker words queued, counted from the cycle after their write (when a marker can be at
        ``r`` at the earliest): the complete steps that are or will next cycle be at ``r``.
    space : ``Out(range(depth + 1))``
        Free words.
    has_room : ``Out(1)`` (only with ``room``)
        ``space >= room``, a register.

    Latency and throughput: a word written in cycle n is readable in cycle n + 2; one write and one
    read per cycle. The memory has one write port and one synchronous read port that is
    transparent for the write port; its read data go only into the output register ``head``
    (``r.payload``, ``r.valid`` are registers), which the oldest stored word enters when it is
    free or being read: no reader's logic starts at the memory's read data (for these small
    queues a LUT RAM, read through its address register).
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
            "steps": Out(range(depth + 1)),
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

        level = Signal(range(depth + 1))          # words queued: in the memory and in ``head``
        stored = Signal(range(depth + 1))         # words in the memory only
        produce = Signal(range(depth))
        consume = Signal(range(depth))            # the memory's oldest word
        head = Signal(self._layout)               # the oldest word, the output register
        head_valid = Signal()

        def incr(ptr):
            return Mux(ptr == depth - 1, 0, ptr + 1) if depth > 1 else ptr

        # not full, has_room and "the memory holds a word" are registers, each chosen from tests of
        # a counter by this cycle's handshakes (no adder or comparison behind them: timing closure)
        not_full = Signal(init=1)
        has_stored = Signal()
        do_w = self.w.valid & self.w.ready
        do_r = self.r.valid & self.r.ready
        # the memory's oldest word moves into head when head is free or being read
        load = has_stored & (~head_valid | do_r)

        def at_most(bound):
            return Const(0) if bound < 0 else Const(1) if bound >= depth else level <= bound

        def next_level(if_up, if_down, if_same):
            """A test of level_next = level + do_w - do_r, chosen from tests of level."""
            return Mux(do_w & ~do_r, if_up, Mux(do_r & ~do_w, if_down, if_same))

        m.d.sync += [not_full.eq(next_level(level != depth - 1, 1, level != depth)),
                     has_stored.eq(Mux(do_w & ~load, 1, Mux(load & ~do_w, stored != 1, stored != 0))),
                     stored.eq(Mux(do_w & ~load, stored + 1, Mux(load & ~do_w, stored - 1, stored)))]
        m.d.comb += [
            self.w.ready.eq(not_full),
            self.r.valid.eq(head_valid),
            self.r.payload.eq(head),
            self.space.eq(depth - level),
            wp.addr.eq(produce),
            wp.data.eq(self.w.payload),
            wp.en.eq(do_w),
            # the read data of this cycle are the word at ``consume`` (written at least a cycle ago)
            rp.addr.eq(Mux(load, incr(consume), consume)),
        ]
        with m.If(load):
            m.d.sync += [head.eq(rp.data), head_valid.eq(1), consume.eq(incr(consume))]
        with m.Elif(do_r):
            m.d.sync += head_valid.eq(0)
        with m.If(do_w):
            m.d.sync += produce.eq(incr(produce))
        # the counters' next values are chosen by the handshakes from level +- 1 (adders that
        # start at the registers only): no handshake goes through a carry chain
        m.d.sync += level.eq(next_level(level + 1, level - 1, level))
        if self._room is not None:
            bound = depth - self._room
            m.d.sync += self.has_room.eq(next_level(at_most(bound - 1), at_most(bound + 1), at_most(bound)))

        # a marker written enters ``steps`` one cycle later (``inc`` is a register), when it can
        # be in ``head`` at the earliest; one read leaves it at once (``head`` is a register)
        inc = Signal()
        m.d.sync += inc.eq(do_w & self.w.payload.end_step)
        dec = do_r & self.r.payload.end_step
        steps = self.steps
        m.d.sync += steps.eq(Mux(inc & ~dec, steps + 1, Mux(dec & ~inc, steps - 1, steps)))
        return m
