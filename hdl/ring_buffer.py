"""The spike ring buffer of one layer: replays the layer's spikes of step t - span as events."""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, ResetInserter, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ._checks import check_positive, reject
from .step_fifo import StepFIFO
from .stream import word_layout, word_signature

__all__ = ["RingBuffer", "ring_write_signature"]


def ring_write_signature(groups: int, lanes: int) -> wiring.Signature:
    """What a layer engine drives into its ring (directions seen from the engine).

    ``valid``/``group``/``mask``: the spike word of one group, every group once per step, in
    group order; ``step_done``: one-cycle pulse after the last group of a step; ``clear``: with
    ``step_done``, the step ended a sequence (the ring forgets everything).
    """
    return wiring.Signature({
        "valid": Out(1),
        "group": Out(max(1, ceil_log2(groups))),
        "mask": Out(lanes),
        "step_done": Out(1),
        "clear": Out(1),
    })


class RingBuffer(wiring.Component):
    """Spike history of one layer, replayed ``span`` steps later as spike words.

    For every step s of a sequence the ring emits, on ``o``, the non-zero spike words of the
    layer's step ``s - span`` (none when ``s < span``) followed by one marker word. The layer engine
    turns them into recurrent events with a :class:`~hdl.spike_decoder.SpikeDecoder`. A
    ``clear`` (end of sequence) drops everything and restarts at s = 0 (contract section 3.5:
    every slot is 0 at the start of a sequence; instead of clearing the RAM the ring simply
    replays nothing for s < span).

    Two implementations:

    * ``span == 1``: no RAM. The spike words the engine writes during step t are queued directly
      as the replay of step t + 1 (an initial marker is the empty replay of step 0).
    * ``span >= 2``: a bitmap RAM of ``depth`` slots x ``groups`` words of ``lanes`` bits (slot
      ``t mod depth`` holds the spikes of step t; ``depth >= span``). A scanner reads the G words
      of slot ``(s - span) mod depth`` (one per cycle) and queues the non-zero ones, then a marker.
      It may run ahead of the engine while the slot is complete (``s - span`` < steps written) and
      the queue has room for a whole replay (G + 1 words); the queue holds two replays. Reads never
      collide with writes: slot ``t mod depth`` is written at the end of step t, after the replay
      of step t (which reads that slot when depth == span) was consumed.

    Parameters
    ----------
    span : int
        k >= 1.
    depth : int
        Slots (>= span); unused when span == 1.
    groups, lanes : int
        G and P of the layer.

    Members
    -------
    w : ``In(ring_write_signature(groups, lanes))``
    o : ``Out(word_signature(groups, lanes))``
        Replay words and markers.
    o_steps : ``Out(range(queue depth + 1))``
        Complete replays queued on ``o`` (the queue's ``steps``; the engine starts a step only when
        this or its decoder's ``marker_held`` is non-zero).

    Latency and throughput: the replay of step s is queued G + 4 cycles after the scanner starts
    it (one word read per cycle, the read word registered before it is queued), an empty replay
    (s < span) two cycles after its start; with span == 1 it is queued one cycle after
    ``step_done``; the queue counts it in ``o_steps`` one cycle later (``StepFIFO.steps``). A
    replay that is late only delays the engine's start (the step's cycle count does not change).
    """

    def __init__(self, *, span: int, depth: int, groups: int, lanes: int):
        check_positive(self, "RingBuffer", span=span, depth=depth, groups=groups, lanes=lanes)
        if depth < span:
            raise reject(self, ValueError(f"RingBuffer depth {depth} must be at least the span {span}"))
        self._span, self._depth, self._groups, self._lanes = span, depth, groups, lanes
        self._queue_depth = (groups + 1) * (1 if span == 1 else 2)
        super().__init__({
            "w": In(ring_write_signature(groups, lanes)),
            "o": Out(word_signature(groups, lanes)),
            "o_steps": Out(range(self._queue_depth + 1)),
        })

    @property
    def queue_depth(self) -> int:
        return self._queue_depth

    def elaborate(self, platform):
        m = Module()
        inner = Module()
        G, P, k, D = self._groups, self._lanes, self._span, self._depth
        inner.submodules.queue = queue = StepFIFO(layout=word_layout(G, P), depth=self._queue_depth, room=G + 1)
        m.submodules.inner = ResetInserter(self.w.clear)(inner)
        m.d.comb += [
            self.o.valid.eq(queue.r.valid),
            self.o.payload.eq(queue.r.payload),
            queue.r.ready.eq(self.o.ready),
            self.o_steps.eq(queue.steps),
        ]
        qw = queue.w
        if k == 1:
            need_marker = Signal(init=1)          # empty replay of step 0
            with inner.If(self.w.valid):
                inner.d.comb += [
                    qw.valid.eq(self.w.mask.any()),
                    qw.payload.group.eq(self.w.group),
                    qw.payload.mask.eq(self.w.mask),
                ]
            with inner.Elif(self.w.step_done | need_marker):
                inner.d.comb += [qw.valid.eq(1), qw.payload.end_step.eq(1)]
                inner.d.sync += need_marker.eq(0)
            return m

        inner.submodules.slots = slots = memory.Memory(shape=P, depth=D * G, init=[])
        wp = slots.write_port()
        rp = slots.read_port(transparent_for=(wp,))
        last_base = (D - 1) * G

        # the write address slot * G + group is a counter: every group comes once per step, in
        # group order (ring_write_signature), so no adder sits in front of the RAM's write port
        wr_addr = Signal(range(D * G))
        inner.d.comb += [
            wp.addr.eq(wr_addr),
            wp.data.eq(self.w.mask),
            wp.en.eq(self.w.valid),
        ]
        with inner.If(self.w.valid):
            inner.d.sync += wr_addr.eq(Mux(wr_addr == last_base + G - 1, 0, wr_addr + 1))

        ahead = Signal(range(k + 1))              # replays produced - steps written
        started = Signal(range(k + 1))            # replays produced, saturating at span
        rd_base = Signal(range(D * G))
        scanning = Signal()
        scan_g = Signal(range(G))
        got = Signal()                            # read data of the previous cycle is a slot word
        got_g = Signal(range(G))
        got_last = Signal()
        marker = Signal()                         # push an empty replay's marker this cycle

        pending_marker = Signal()                 # the marker after the last scanned word
        produced = Signal()
        inner.d.sync += ahead.eq(ahead + produced - self.w.step_done)

        # the slot word is registered (got2) before it goes into the queue: no path from the slot
        # RAM's read data into the queue's memory and counters
        got2 = Signal()
        got2_g = Signal(range(G))
        got2_last = Signal()
        got2_mask = Signal(P)
        # got2_mask.any() in parts of four bits (one LUT each behind the slot RAM's read), registered
        # with it: the queue's write enable needs no reduction of the whole word
        got2_parts = Signal(-(-P // 4))
        # the empty replay's marker is pushed the cycle after the decision (``marker`` is a
        # register): no path from the counters and the queue's room into the queue's write
        can_start = ~scanning & ~got & ~got2 & ~pending_marker & ~marker & (ahead < k) & queue.has_room
        inner.d.sync += marker.eq(0)
        with inner.If(can_start):
            with inner.If(started < k):
                inner.d.sync += [marker.eq(1),    # replay of a step before the span: empty
                                 started.eq(started + 1)]
            with inner.Else():
                inner.d.sync += [scanning.eq(1), scan_g.eq(0)]

        inner.d.comb += rp.addr.eq(rd_base + scan_g)
        inner.d.sync += [got.eq(scanning), got_g.eq(scan_g), got_last.eq(scanning & (scan_g == G - 1))]
        with inner.If(scanning):
            with inner.If(scan_g == G - 1):
                inner.d.sync += [
                    scanning.eq(0),
                    rd_base.eq(Mux(rd_base == last_base, 0, rd_base + G)),
                ]
            with inner.Else():
                inner.d.sync += scan_g.eq(scan_g + 1)

        inner.d.sync += [got2.eq(got), got2_g.eq(got_g), got2_last.eq(got & got_last), got2_mask.eq(rp.data),
                        got2_parts.eq(Cat(rp.data[i:i + 4].any() for i in range(0, P, 4)))]
        inner.d.sync += pending_marker.eq(got2 & got2_last)
        with inner.If(got2):
            inner.d.comb += [
                qw.valid.eq(got2_parts.any()),
                qw.payload.group.eq(got2_g),
                qw.payload.mask.eq(got2_mask),
            ]
        with inner.Elif(marker | pending_marker):
            inner.d.comb += [qw.valid.eq(1), qw.payload.end_step.eq(1)]
        inner.d.comb += produced.eq(marker | pending_marker)
        return m
