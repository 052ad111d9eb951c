"""Spike words (group, P-bit mask) to bundles of up to E spike events per cycle (option ``events``)."""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ._checks import check_positive, reject
from .skid_buffer import SkidBuffer
from .spike_decoder import lowest_set_bit
from .stream import bundle_layout, bundle_signature, word_layout, word_signature

__all__ = ["WideSpikeDecoder"]


def _popcount(value, width: int):
    return sum(value[i] for i in range(width))


class WideSpikeDecoder(wiring.Component):
    """Expand a spike-word stream into bundles of up to E events (the E-wide
    :class:`~hdl.spike_decoder.SpikeDecoder`).

    Each cycle the lowest ``min(E, bits left)`` set bits of the current word leave as one bundle
    (slots ``0 .. count-1``, lowest bit first, ``index = g * lanes + p``); a word of k set bits
    takes ``ceil(k / E)`` cycles. Marker words pass through as one marker bundle. A data word with
    an empty mask is dropped. Bundles are not filled across words: an
    :class:`~hdl.event_packer.EventPacker` behind it does that.

    As in the single-event decoder every path starts and ends at a register: ``i.ready`` is a
    register (a word that arrives while the current one still has bundles to send waits in a
    second word register, ``spare``), whether the bits left fit into one bundle is kept in a
    register (computed one word or one bundle ahead), and the bundles leave through a
    :class:`~hdl.skid_buffer.SkidBuffer`.

    Parameters
    ----------
    groups, lanes : int
        Shape of the words.
    index_bits : int
    events : int
        E >= 2.

    Members
    -------
    i : ``In(word_signature(groups, lanes))``
    o : ``Out(bundle_signature(index_bits, events))``

    Latency and throughput: two cycles from ``i`` to ``o`` when the current word is done (a word
    parked in ``spare`` sends its first bundle the cycle after the last bundle of the word before
    it); one bundle per cycle (E events of a dense word, the rest of a word, or a marker), one
    word per cycle when words hold at most E bits.
    """

    def __init__(self, *, groups: int, lanes: int, index_bits: int, events: int):
        check_positive(self, "WideSpikeDecoder", groups=groups, lanes=lanes, index_bits=index_bits, events=events)
        if events < 2:
            raise reject(self, ValueError(
                f"WideSpikeDecoder needs events >= 2, not {events} (use SpikeDecoder for one event per cycle)"))
        self._groups, self._lanes, self._index_bits, self._events = groups, lanes, index_bits, events
        super().__init__({
            "i": In(word_signature(groups, lanes)),
            "o": Out(bundle_signature(index_bits, events)),
        })

    def elaborate(self, platform):
        m = Module()
        P, G, E = self._lanes, self._groups, self._events

        head_valid = Signal()
        head = Signal(word_layout(G, P))
        rem = Signal(P)                     # bits of head.mask not sent yet
        rem_any = Signal()
        rem_fits = Signal()                 # popcount(rem) <= E: this bundle ends the word
        is_marker = head.end_step

        # the lowest E set bits of rem, one after the other
        lanes, present = [], []
        left = rem
        for k in range(E):
            bits = Signal(P, name=f"left{k}")
            m.d.comb += bits.eq(left)
            lanes.append(lowest_set_bit(bits, P))
            present.append(bits.any())
            nxt = Signal(P, name=f"left{k + 1}")
            m.d.comb += nxt.eq(bits & (bits - 1))
            left = nxt
        rest = left
        count = Signal(range(E + 1))
        m.d.comb += count.eq(sum(present))

        def index(lane):
            if P & (P - 1) == 0:
                return Cat(lane[: max(0, (P - 1).bit_length())], head.group) if P > 1 else head.group
            return head.group * P + lane

        m.submodules.out = out = SkidBuffer(layout=bundle_layout(self._index_bits, E))
        wiring.connect(m, out.o, wiring.flipped(self.o))
        has_bundle = head_valid & (is_marker | rem_any)
        m.d.comb += [
            out.i.valid.eq(has_bundle),
            out.i.payload.end_step.eq(is_marker),
            out.i.payload.end_seq.eq(is_marker & head.end_seq),
            out.i.payload.count.eq(Mux(is_marker, 0, count)),
        ]
        for k in range(E):
            m.d.comb += out.i.payload.index[k].eq(Mux(is_marker, 0, index(lanes[k])))
        push = has_bundle & out.i.ready

        # i.ready is the register ~spare_valid: a word that arrives while head is busy waits in
        # spare (with its counts), so the handshake with the queue starts and ends at registers
        spare_valid = Signal()
        spare = Signal(word_layout(G, P))
        spare_any = Signal()
        spare_fits = Signal()
        drop = head_valid & ~is_marker & ~rem_any
        head_done = drop | (push & (is_marker | rem_fits))
        head_free = ~head_valid | head_done
        m.d.comb += self.i.ready.eq(~spare_valid)
        take = self.i.valid & ~spare_valid
        mask = self.i.payload.mask
        with m.If(take & ~head_free):
            m.d.sync += [spare.eq(self.i.payload), spare_valid.eq(1),
                         spare_any.eq(mask.any()), spare_fits.eq(_popcount(mask, P) <= E)]
        with m.If(head_free):
            with m.If(spare_valid):                          # take is 0: spare was full
                m.d.sync += [head.eq(spare), head_valid.eq(1), rem.eq(spare.mask),
                             rem_any.eq(spare_any), rem_fits.eq(spare_fits), spare_valid.eq(0)]
            with m.Elif(take):
                m.d.sync += [head.eq(self.i.payload), head_valid.eq(1), rem.eq(mask),
                             rem_any.eq(mask.any()), rem_fits.eq(_popcount(mask, P) <= E)]
            with m.Else():
                m.d.sync += head_valid.eq(0)
        with m.Elif(push):
            # not the word's last bundle: E bits leave, so the rest fits if rem held at most 2E
            m.d.sync += [rem.eq(rest), rem_any.eq(~rem_fits), rem_fits.eq(_popcount(rem, P) <= 2 * E)]
        return m
