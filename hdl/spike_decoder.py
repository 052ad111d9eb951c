"""Spike words (group, P-bit mask) to spike events (neuron addresses), one event per cycle."""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ._checks import check_positive
from .skid_buffer import SkidBuffer
from .stream import event_layout, event_signature, word_layout, word_signature

__all__ = ["SpikeDecoder", "lowest_set_bit"]


def lowest_set_bit(value, width: int):
    """Index of the lowest set bit of ``value`` (a log-depth tree of multiplexers); 0 if none."""
    if width <= 1:
        return Const(0, 1)
    half = 1 << ((width - 1).bit_length() - 1)
    lo = value[:half]
    hi = value[half:width]
    lo_idx = lowest_set_bit(lo, half)
    hi_idx = lowest_set_bit(hi, width - half)
    bits = (width - 1).bit_length()
    return Mux(lo.any(), lo_idx, hi_idx + half)[:bits]


def count_at_least(value, width: int, most: int) -> list:
    """``[count >= 1, ..., count >= most]`` for the set bits of ``value``: a log-depth tree of small
    functions (no carry chain), e.g. ``~count_at_least(v, w, 2)[1]``: at most one bit is set."""
    if width == 1:
        return [value[0]] + [Const(0, 1)] * (most - 1)
    half = width // 2
    lo = count_at_least(value[:half], half, most)
    hi = count_at_least(value[half:width], width - half, most)
    out = []
    for i in range(1, most + 1):
        term = lo[i - 1] | hi[i - 1]
        for a in range(1, i):
            term = term | (lo[a - 1] & hi[i - a - 1])
        out.append(term)
    return out


class SpikeDecoder(wiring.Component):
    """Expand a spike-word stream into an event stream.

    Each data word ``(group g, mask)`` becomes one event per set bit p of ``mask``, lowest bit
    first, with ``index = g * lanes + p``. Marker words pass through as one marker event
    (``end_step``, ``end_seq`` kept). A data word with an empty mask is dropped (the engines never
    send one).

    Every path through the decoder starts and ends at a register, so that no path runs from the
    block RAM of the queue in front of it (its read data, its read address) through the decoding
    into the engine behind it (a weight RAM address):

    * ``i.ready`` is a register (``~spare_valid``): a word taken from ``i`` goes into the word
      register (``head`` with the bits still to send) when it is empty or sends its last event in
      this cycle, else into a second word register (``spare``), which moves into ``head`` when it
      is free. The handshake with the queue in front starts and ends at registers.
    * the events leave through a two-entry skid buffer: ``o.valid``/``o.payload`` are registers,
      and ``o.ready`` only steers which register is loaded.

    Parameters
    ----------
    groups, lanes : int
        Shape of the words (``hdl.stream.word_layout``).
    index_bits : int
        Width of the event index (every address that can occur must fit).

    Members
    -------
    i : ``In(word_signature(groups, lanes))``
    o : ``Out(event_signature(index_bits))``
    marker_held : ``Out(1)``
        A marker word is inside the decoder (taken from ``i``, not yet sent on ``o``): with the
        step count of the queue in front, it tells whether a whole step is waiting.

    Latency and throughput: two cycles from ``i`` to ``o`` when ``head`` is free (a word taken in
    cycle n gives its first event on ``o`` in cycle n + 2); a word parked in ``spare`` follows the
    last event of the word before it in the next cycle. So one event per cycle, including across
    word boundaries (the last event of a word and the first of the next one leave in consecutive
    cycles), exactly as without ``spare``: it only lets the queue hand over its next word early.
    An empty word costs one cycle. The skid buffer holds up to two events, so while ``o.ready`` is
    low the decoder runs up to two events ahead.
    """

    def __init__(self, *, groups: int, lanes: int, index_bits: int):
        check_positive(self, "SpikeDecoder", groups=groups, lanes=lanes, index_bits=index_bits)
        self._groups, self._lanes, self._index_bits = groups, lanes, index_bits
        super().__init__({
            "i": In(word_signature(groups, lanes)),
            "o": Out(event_signature(index_bits)),
            "marker_held": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        P, G = self._lanes, self._groups

        # ---- word register -----------------------------------------------------------------
        head_valid = Signal()
        head = Signal(word_layout(G, P))
        rem = Signal(P)                     # bits of head.mask not sent yet
        low = Signal(P)
        m.d.comb += low.eq(rem & (~rem + 1))
        lane = lowest_set_bit(rem, P)
        if P & (P - 1) == 0:
            index = Cat(lane[: max(0, (P - 1).bit_length())], head.group) if P > 1 else head.group
        else:
            index = head.group * P + lane
        is_marker = head.end_step
        # whether rem has any / exactly one bit left are registers too, computed one step ahead, so
        # that i.ready (the queue's read address) depends on a few registers only
        rem_any = Signal()
        rem_one = Signal()
        has_event = head_valid & (is_marker | rem_any)
        last_bit = rem_one

        # ---- two-entry skid buffer ---------------------------------------------------------
        m.submodules.out = out = SkidBuffer(layout=event_layout(self._index_bits))
        wiring.connect(m, out.o, wiring.flipped(self.o))
        m.d.comb += [
            out.i.payload.index.eq(Mux(is_marker, 0, index)),
            out.i.payload.end_step.eq(is_marker),
            out.i.payload.end_seq.eq(is_marker & head.end_seq),
            out.i.valid.eq(has_event),
        ]
        push = has_event & out.i.ready

        # ---- input skid stage and loading the word register --------------------------------
        # i.ready is the register ~spare_valid: no path from the decoder's registers through the
        # handshake into the queue's read logic and back (the queue and the decoder may be placed
        # apart). A word that arrives while head is busy waits in spare (with its bit counts).
        spare_valid = Signal()
        spare = Signal(word_layout(G, P))
        spare_any = Signal()
        spare_one = Signal()
        drop = head_valid & ~is_marker & ~rem_any           # empty word
        head_done = drop | (push & (is_marker | last_bit))
        head_free = ~head_valid | head_done
        m.d.comb += self.i.ready.eq(~spare_valid)
        take = self.i.valid & ~spare_valid
        mask = self.i.payload.mask
        rest = Signal(P)                                     # rem after this cycle's event
        m.d.comb += rest.eq(rem & ~low)
        # the bit counts are trees without carry chains: the word comes from the queue's memory
        # (timing closure); rest has at most one bit iff rem has at most two
        mask_count = count_at_least(mask, P, 2)
        rem_count = count_at_least(rem, P, 3)
        with m.If(take & ~head_free):
            m.d.sync += [spare.eq(self.i.payload), spare_valid.eq(1),
                         spare_any.eq(mask_count[0]), spare_one.eq(~mask_count[1])]
        with m.If(head_free):
            with m.If(spare_valid):                          # take is 0: spare was full
                m.d.sync += [head.eq(spare), head_valid.eq(1), rem.eq(spare.mask),
                             rem_any.eq(spare_any), rem_one.eq(spare_one), spare_valid.eq(0)]
            with m.Elif(take):
                m.d.sync += [head.eq(self.i.payload), head_valid.eq(1), rem.eq(mask),
                             rem_any.eq(mask_count[0]), rem_one.eq(~mask_count[1])]
            with m.Else():
                m.d.sync += head_valid.eq(0)
        with m.Elif(push):
            m.d.sync += [rem.eq(rest), rem_any.eq(~rem_one), rem_one.eq(~rem_count[2])]

        m.d.comb += self.marker_held.eq((spare_valid & spare.end_step) | (head_valid & is_marker) | out.marker_held)
        return m
