"""A first-in first-out queue of stream words that counts the complete steps it holds."""
from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ._checks import reject
from .registered_ram import RegisteredRAM

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
    read per cycle. The memory is a :class:`~.registered_ram.RegisteredRAM` (a block RAM with its
    output register where the platform offers one): its read latch holds the word at the read
    address of the cycle before, and its output register, whose clock enable is the load of the
    head, is the head of the queue (``r.payload``): the oldest stored word enters it when it is
    free or being read, so no reader's logic starts at the memory's read latch. The read address
    of cycle n is the word that may enter the head in cycle n + 1: ``consume_next`` when the head
    loads in cycle n, else ``consume``; both are registers and the RAM chooses by ``load``
    (``two_addresses``: a LUT RAM may read both and choose by a register, so the handshake that
    makes ``load`` never reaches its read logic). When that word is being
    written in cycle n (the memory holds no other word), the two ports of a block RAM collide
    and the word takes a bypass instead: a register of the written word, which enters a fabric
    copy of the head; ``r.payload`` is then that copy (a multiplexer of two registers, chosen by
    a register).
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
        width = self._layout.size
        m.submodules.storage = storage = RegisteredRAM(width=width, depth=depth, two_addresses=True)

        level = Signal(range(depth + 1))          # words queued: in the memory and in the head
        stored = Signal(range(depth + 1))         # words in the memory only
        produce = Signal(range(depth))
        consume = Signal(range(depth))            # the memory's oldest word
        consume_next = Signal(range(depth), init=min(1, depth - 1))   # the one after it
        head_valid = Signal()

        def incr(ptr):
            return Mux(ptr == depth - 1, 0, ptr + 1) if depth > 1 else ptr

        # not full, has_room and "the memory holds one / a word" are registers, each chosen from
        # tests of a counter by this cycle's handshakes (no adder or comparison behind them:
        # timing closure)
        not_full = Signal(init=1)
        has_stored = Signal()
        single = Signal()                         # stored == 1
        do_w = self.w.valid & self.w.ready
        do_r = self.r.valid & self.r.ready
        # the memory's oldest word moves into the head when the head is free or being read
        load = has_stored & (~head_valid | do_r)

        def at_most(bound):
            return Const(0) if bound < 0 else Const(1) if bound >= depth else level <= bound

        def next_level(if_up, if_down, if_same):
            """A test of level_next = level + do_w - do_r, chosen from tests of level."""
            return Mux(do_w & ~do_r, if_up, Mux(do_r & ~do_w, if_down, if_same))

        def next_stored(if_up, if_down, if_same):
            """A test of stored_next = stored + do_w - load, chosen from tests of stored."""
            return Mux(do_w & ~load, if_up, Mux(load & ~do_w, if_down, if_same))

        m.d.sync += [not_full.eq(next_level(level != depth - 1, 1, level != depth)),
                     has_stored.eq(next_stored(1, stored != 1, stored != 0)),
                     single.eq(next_stored(stored == 0, stored == 2, stored == 1)),
                     stored.eq(next_stored(stored + 1, stored - 1, stored))]

        # the read of this cycle is of the word written in this cycle when the memory holds no
        # other word after this cycle's load: then the word takes the bypass
        collide = do_w & Mux(load, single, ~has_stored)
        bypass = Signal()
        fresh = Signal(width, reset_less=True)    # the word written in the cycle before
        copy = Signal(width, reset_less=True)     # the head, when it came through the bypass
        from_copy = Signal()
        m.d.sync += [bypass.eq(collide), fresh.eq(self.w.payload.as_value())]
        m.d.comb += [
            self.w.ready.eq(not_full),
            self.r.valid.eq(head_valid),
            self.r.payload.eq(Mux(from_copy, copy, storage.r_data)),
            self.space.eq(depth - level),
            storage.w_addr.eq(produce),
            storage.w_data.eq(self.w.payload.as_value()),
            storage.w_en.eq(do_w),
            # the read latch of the next cycle holds the word at ``consume`` after this cycle's load
            # (both candidates are registers: the block RAM's address pins are a multiplexer away;
            # a LUT RAM may read both candidates and choose by a register of ``load``)
            storage.r_addr_main.eq(consume),
            storage.r_addr_alt.eq(consume_next),
            storage.r_use_alt.eq(load),
            storage.r_en.eq(load),
        ]
        with m.If(load):
            m.d.sync += [head_valid.eq(1), consume.eq(consume_next), consume_next.eq(incr(consume_next)),
                         from_copy.eq(bypass), copy.eq(fresh)]
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
        # be in the head at the earliest; one read leaves it at once
        inc = Signal()
        m.d.sync += inc.eq(do_w & self.w.payload.end_step)
        dec = do_r & self.r.payload.end_step
        steps = self.steps
        m.d.sync += steps.eq(Mux(inc & ~dec, steps + 1, Mux(dec & ~inc, steps - 1, steps)))
        return m
