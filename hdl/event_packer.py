"""Pack a stream of partly filled event bundles into full bundles of E events (generator option ``events``)."""
from __future__ import annotations

from amaranth.hdl import Module, ShapeLike, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ._checks import check_positive, reject
from .stream import bundle_layout, bundle_signature

__all__ = ["EventPacker"]


class EventPacker(wiring.Component):
    """Bundles of 0..E events (slots ``0 .. count-1``) in, bundles of exactly E events out.

    Within a step, the events leave in the order they came, E to a bundle; only the last bundle
    before the step's marker may hold fewer (then it is followed by the marker in the next word).
    So a step of k events becomes ``ceil(k / E)`` bundles and one marker: what a layer engine with
    E events per cycle needs to meet its cycle bound (``golden.cycles``).

    Up to E - 1 events wait in a holding register until the next bundle fills; a marker first
    flushes them as a partial bundle and is sent in the next cycle (``i.ready`` is low in that
    cycle).

    Parameters
    ----------
    index_bits : int
    events : int
        E >= 2.
    value_shape : ShapeLike, optional
        A ``value`` per event (the first layer's count or real inputs).

    Members
    -------
    i : ``In(bundle_signature(index_bits, events, value_shape))``
        Data words may hold any count 0..E; a marker word's events are ignored.
    o : ``Out(bundle_signature(index_bits, events, value_shape))``

    Latency and throughput: combinational from ``i`` to ``o`` (the held events and the new ones are
    multiplexed into place); one input word per cycle, except the cycle after a marker that
    flushed a partial bundle. ``i.ready`` is ``o.ready`` and a register.
    """

    def __init__(self, *, index_bits: int, events: int, value_shape: ShapeLike | None = None):
        check_positive(self, "EventPacker", index_bits=index_bits, events=events)
        if events < 2:
            raise reject(self, ValueError(f"EventPacker needs events >= 2, not {events} (E = 1 needs no packing)"))
        self._index_bits, self._events, self._value_shape = index_bits, events, value_shape
        layout = bundle_layout(index_bits, events, value_shape)
        super().__init__({"i": In(bundle_signature(index_bits, events, value_shape)),
                          "o": Out(bundle_signature(index_bits, events, value_shape))})
        self._layout = layout

    def elaborate(self, platform):
        m = Module()
        E = self._events
        has_value = self._value_shape is not None
        slot_fields = {"index": self._index_bits}
        if has_value:
            slot_fields["value"] = self._value_shape
        slot = data.StructLayout(slot_fields)
        held = [Signal(slot, name=f"held{j}") for j in range(E - 1)]
        held_n = Signal(range(E))
        marker_pending = Signal()
        marker_seq = Signal()
        i, o = self.i, self.o

        def incoming(k):
            fields = {"index": i.payload.index[k]}
            if has_value:
                fields["value"] = i.payload.value[k]
            return fields

        # combined[j]: the j-th event of (held events, then this word's events)
        combined = []
        for j in range(2 * E - 1):
            sig = Signal(slot, name=f"combined{j}")
            for n in range(E):                     # held_n == n
                k = j - n
                with m.If(held_n == n):
                    if j < n:
                        m.d.comb += sig.eq(held[j])
                    elif k < E:
                        for name, value in incoming(k).items():
                            m.d.comb += sig[name].eq(value)
            combined.append(sig)
        total = Signal(range(2 * E))
        m.d.comb += total.eq(held_n + i.payload.count)

        def emit(slots, count, end_step=0, end_seq=0):
            m.d.comb += [o.valid.eq(1), o.payload.count.eq(count), o.payload.end_step.eq(end_step),
                         o.payload.end_seq.eq(end_seq)]
            for j, s in enumerate(slots):
                m.d.comb += o.payload.index[j].eq(s.index)
                if has_value:
                    m.d.comb += o.payload.value[j].eq(s.value)

        m.d.comb += i.ready.eq(o.ready & ~marker_pending)
        with m.If(marker_pending):
            emit([], 0, 1, marker_seq)
            with m.If(o.ready):
                m.d.sync += marker_pending.eq(0)
        with m.Elif(i.valid & i.payload.end_step):
            with m.If(held_n != 0):
                emit(held, held_n)
                with m.If(o.ready):
                    m.d.sync += [held_n.eq(0), marker_pending.eq(1), marker_seq.eq(i.payload.end_seq)]
            with m.Else():
                emit([], 0, 1, i.payload.end_seq)
        with m.Elif(i.valid):
            with m.If(total >= E):
                emit(combined[:E], E)
                with m.If(o.ready):
                    m.d.sync += [h.eq(c) for h, c in zip(held, combined[E:])]
                    m.d.sync += held_n.eq(total - E)
            with m.Elif(o.ready):
                m.d.sync += [h.eq(c) for h, c in zip(held, combined[:E - 1])]
                m.d.sync += held_n.eq(total)
        return m
