"""A two-entry stream register: registered outputs, full throughput, a registered ``ready``."""
from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ._checks import reject

__all__ = ["SkidBuffer"]


class SkidBuffer(wiring.Component):
    """Cut every combinational path of a stream, in both directions, without losing throughput.

    ``o.valid`` and ``o.payload`` are registers (``main``); ``i.ready`` is a register too (the
    ``spare`` entry is empty). When the consumer holds ``o.ready`` low, one more word is taken
    into ``spare``; the next transfer on ``o`` moves it to ``main``.

    Parameters
    ----------
    layout : amaranth.lib.data.StructLayout
        Payload layout; a one-bit ``end_step`` field (the step marker) is optional.

    Members
    -------
    i : ``In(stream.Signature(layout))``
    o : ``Out(stream.Signature(layout))``
    marker_held : ``Out(1)``
        One of the two entries holds a marker word (a whole step has passed into the buffer);
        always 0 for a layout without ``end_step``.

    Latency and throughput: a word taken on ``i`` in cycle n is on ``o`` in cycle n + 1 (if
    ``main`` is free then); one word per cycle when ``o.ready`` stays high. After a transfer from
    ``spare`` to ``main`` (possible only after ``o.ready`` was low), ``i`` waits one cycle.
    """

    def __init__(self, *, layout: data.StructLayout):
        if not isinstance(layout, data.StructLayout):
            raise reject(self, TypeError(f"SkidBuffer layout must be a StructLayout, not {layout!r}"))
        self._layout = layout
        super().__init__({
            "i": In(stream.Signature(layout)),
            "o": Out(stream.Signature(layout)),
            "marker_held": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        main_valid = Signal()
        main = Signal(self._layout)
        spare_valid = Signal()
        spare = Signal(self._layout)
        m.d.comb += [
            self.o.valid.eq(main_valid),
            self.o.payload.eq(main),
            self.i.ready.eq(~spare_valid),
        ]
        if "end_step" in self._layout.members:
            m.d.comb += self.marker_held.eq((main_valid & main.end_step) | (spare_valid & spare.end_step))
        push = self.i.valid & self.i.ready
        with m.If(self.o.valid & self.o.ready):
            with m.If(spare_valid):
                m.d.sync += [main.eq(spare), spare_valid.eq(0)]   # push is 0: the spare was full
            with m.Else():
                m.d.sync += [main.eq(self.i.payload), main_valid.eq(push)]
        with m.Elif(push):
            with m.If(main_valid):
                m.d.sync += [spare.eq(self.i.payload), spare_valid.eq(1)]
            with m.Else():
                m.d.sync += [main.eq(self.i.payload), main_valid.eq(1)]
        return m
