"""Spike words (group, P-bit mask) to spike events (neuron addresses), one event per cycle."""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ._checks import check_positive
from .stream import event_signature, word_signature

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


class SpikeDecoder(wiring.Component):
    """Expand a spike-word stream into an event stream.

    Each data word ``(group g, mask)`` becomes one event per set bit p of ``mask``, lowest bit
    first, with ``index = g * lanes + p``. Marker words pass through as one marker event
    (``end_step``, ``end_seq`` kept). A data word with an empty mask is dropped (the engines never
    send one).

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

    Latency and throughput: combinational (zero cycles) from ``i`` to ``o``; one event per cycle,
    including across word boundaries (the last bit of a word and the next word are consumed in
    consecutive cycles). One register of ``lanes`` bits records the bits already sent.
    """

    def __init__(self, *, groups: int, lanes: int, index_bits: int):
        check_positive(self, "SpikeDecoder", groups=groups, lanes=lanes, index_bits=index_bits)
        self._groups, self._lanes, self._index_bits = groups, lanes, index_bits
        super().__init__({
            "i": In(word_signature(groups, lanes)),
            "o": Out(event_signature(index_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        P = self._lanes
        head = self.i.payload
        sent = Signal(P)
        rem = Signal(P)
        low = Signal(P)
        m.d.comb += [
            rem.eq(head.mask & ~sent),
            low.eq(rem & (~rem + 1)),
        ]
        lane = lowest_set_bit(rem, P)
        if P & (P - 1) == 0:
            index = Cat(lane[: max(0, (P - 1).bit_length())], head.group) if P > 1 else head.group
        else:
            index = head.group * P + lane
        is_marker = head.end_step
        m.d.comb += [
            self.o.valid.eq(self.i.valid & (is_marker | rem.any())),
            self.o.payload.index.eq(Mux(is_marker, 0, index)),
            self.o.payload.end_step.eq(is_marker),
            self.o.payload.end_seq.eq(is_marker & head.end_seq),
        ]
        last_bit = (rem & ~low) == 0
        with m.If(self.i.valid & ~is_marker & ~rem.any()):
            m.d.comb += self.i.ready.eq(1)               # empty word: drop
            m.d.sync += sent.eq(0)
        with m.Elif(self.o.valid & self.o.ready):
            with m.If(is_marker | last_bit):
                m.d.comb += self.i.ready.eq(1)
                m.d.sync += sent.eq(0)
            with m.Else():
                m.d.sync += sent.eq(sent | low)
        return m
