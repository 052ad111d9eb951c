"""The top of a generated core: ``skipcore_core`` (ports and protocol in ``hdl/INTERFACE.md``)."""
from __future__ import annotations

from amaranth.hdl import Module, ResetInserter, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ._checks import reject
from .layer_engine import LayerEngine
from .plan import CorePlan
from .readout_engine import ReadoutEngine
from .ring_buffer import RingBuffer
from .skid_buffer import SkidBuffer
from .spike_decoder import SpikeDecoder
from .event_packer import EventPacker
from .step_fifo import StepFIFO
from .stream import bundle_layout, event_layout, word_layout
from .wide_spike_decoder import WideSpikeDecoder

__all__ = ["SkipCore"]


class SkipCore(wiring.Component):
    """Input stream -> layer engines -> readout engine -> output stream, pipelined over steps.

    Dataflow (every arrow a ready/valid stream with step markers)::

        in_* -> in FIFO (2 (C+1) words) -> SkidBuffer -> LayerEngine 0 -> FIFO 2 (G0+1) -> SpikeDecoder
             -> LayerEngine 1 -> ... -> FIFO -> SpikeDecoder -> ReadoutEngine -> out_*
        each LayerEngine with span > 0:  RingBuffer -> SpikeDecoder -> i_rec

    Every queue's words reach the engine behind it through registers (the StepFIFO's output
    register, the SkidBuffer, the SpikeDecoder's word, spare word and output registers), and a step counts
    as queued while its marker is
    in the queue or in those registers (``marker_held``); a layer's room test is a register of
    its output FIFO (``has_room``). No path runs from a memory's read data through flow-control
    logic into another memory's address.

    Each engine starts a step only when its whole input step is queued (and, for a layer, there
    is room for its whole output step), so layer l + 1 works on step t while layer l works on
    step t + 1, and every FIFO holds two steps. The input FIFO holds two steps of up to C events,
    so the host can push the next step while layer 0 computes.

    With ``plan.events`` E > 1 the layer engines take bundles of up to E events: the host's events
    are packed E to a bundle on the way into the input queue (:class:`~hdl.event_packer.EventPacker`),
    and every spike-word stream into a layer engine (the previous layer's words, the ring's replay)
    goes through a :class:`~hdl.wide_spike_decoder.WideSpikeDecoder` and a packer into a queue of
    bundles that holds two steps, then a :class:`~hdl.skid_buffer.SkidBuffer`; a step counts as
    queued when its marker is in that queue. So every bundle that reaches an engine is full except
    a stream's last one of the step, whatever the word pattern, and the engine meets its bound
    with equality. The readout still takes one event per cycle.

    Latency: a step's output word appears after the step went through every layer (each layer's
    bound, see :class:`~hdl.layer_engine.LayerEngine`, plus about 5 cycles of queues and idle per layer)
    and the readout (spikes + M + 6 cycles, 7 with the leaky readout). Throughput: one step per
    slowest-stage time (the slowest layer's bound + 3, or the readout's).

    Sequences follow each other back-to-back: each engine resets its own state after the last
    step of a sequence (see :class:`~hdl.layer_engine.LayerEngine`); this costs no cycles, so
    ``in_ready`` only drops when the input FIFO is full. After ``rst`` the layer engines spend G
    cycles clearing their accumulators (input words are buffered meanwhile).

    Parameters
    ----------
    plan : CorePlan

    Members
    -------
    Flat ports named as in ``hdl/INTERFACE.md``: ``in_valid``, ``in_ready``, ``in_index``,
    ``in_value``, ``in_end_step``, ``in_end_seq``, ``out_valid``, ``out_ready``, ``out_readout``,
    ``out_prediction``, ``out_end_seq`` and, with ``plan.debug``, ``dbg_l{l}_valid``,
    ``dbg_l{l}_spikes``, ``dbg_l{l}_cycles`` for every hidden layer.
    """

    def __init__(self, plan: CorePlan):
        if not isinstance(plan, CorePlan):
            raise reject(self, TypeError(f"SkipCore needs a CorePlan, not {plan!r}"))
        self._plan = plan
        super().__init__(self.members(plan))

    @staticmethod
    def members(plan: CorePlan) -> dict:
        """The signature members (ports) of the core for ``plan``, in INTERFACE.md order."""
        r = plan.readout
        members = {
            "in_valid": In(1),
            "in_ready": Out(1),
            "in_index": In(plan.index_bits),
            "in_value": In(plan.value_bits),
            "in_end_step": In(1),
            "in_end_seq": In(1),
            "out_valid": Out(1),
            "out_ready": In(1),
            "out_readout": Out(r.classes * r.readout_bits),
            "out_prediction": Out(r.class_bits),
            "out_end_seq": Out(1),
        }
        if plan.debug:
            for layer in plan.layers:
                members[f"dbg_l{layer.index}_valid"] = Out(1)
                members[f"dbg_l{layer.index}_spikes"] = Out(layer.neurons)
                members[f"dbg_l{layer.index}_cycles"] = Out(32)
        return members

    @property
    def plan(self) -> CorePlan:
        return self._plan

    def elaborate(self, platform):
        m = Module()
        plan = self._plan
        first = plan.layers[0]
        value_shape = LayerEngine._value_shape(first)
        E = plan.events
        in_layout = (event_layout(plan.index_bits, value_shape) if E == 1
                     else bundle_layout(plan.index_bits, E, value_shape))
        in_fifo = StepFIFO(layout=in_layout, depth=plan.in_fifo_depth)
        m.submodules.in_fifo = in_fifo
        if E == 1:
            m.d.comb += [
                in_fifo.w.valid.eq(self.in_valid),
                self.in_ready.eq(in_fifo.w.ready),
                in_fifo.w.payload.index.eq(self.in_index),
                in_fifo.w.payload.end_step.eq(self.in_end_step),
                in_fifo.w.payload.end_seq.eq(self.in_end_step & self.in_end_seq),
            ]
            if value_shape is not None:
                m.d.comb += in_fifo.w.payload.value.eq(self.in_value)
        else:
            # the host's events, E to a bundle
            m.submodules.in_packer = packer = EventPacker(index_bits=plan.index_bits, events=E,
                                                          value_shape=value_shape)
            m.d.comb += [
                packer.i.valid.eq(self.in_valid),
                self.in_ready.eq(packer.i.ready),
                packer.i.payload.index[0].eq(self.in_index),
                packer.i.payload.count.eq(~self.in_end_step),
                packer.i.payload.end_step.eq(self.in_end_step),
                packer.i.payload.end_seq.eq(self.in_end_step & self.in_end_seq),
            ]
            if value_shape is not None:
                m.d.comb += packer.i.payload.value[0].eq(self.in_value)
            wiring.connect(m, packer.o, in_fifo.w)

        # a register stage between every queue's block RAM and the engine behind it
        in_reg = SkidBuffer(layout=in_layout)
        m.submodules.in_reg = in_reg
        wiring.connect(m, in_fifo.r, in_reg.i)
        source = in_reg.o
        if E == 1:
            # markers counted from the cycle after their write, as StepFIFO.steps does
            source_ready = self._steps_queued(m, "in", in_fifo.w, in_reg.o, in_fifo.depth, registered_put=True)
        else:
            source_ready = self._steps_queued(m, "in", packer.o, in_reg.o, in_fifo.depth)
        for layer in plan.layers:
            l = layer.index
            engine = LayerEngine(layer)
            m.submodules[f"layer{l}"] = engine
            wiring.connect(m, source, engine.i_ev)
            m.d.comb += engine.i_step_ready.eq(source_ready)
            if layer.span > 0:
                ring = RingBuffer(span=layer.span, depth=max(layer.ring_depth, layer.span),
                                  groups=layer.groups, lanes=layer.lanes)
                m.submodules[f"ring{l}"] = ring
                wiring.connect(m, engine.ring, ring.w)
                if E == 1:
                    rec_dec = SpikeDecoder(groups=layer.groups, lanes=layer.lanes, index_bits=layer.rec_index_bits)
                    # the decoder's registers belong to the ring: the end of a sequence clears both
                    m.submodules[f"ring{l}_decoder"] = ResetInserter(engine.ring.clear)(rec_dec)
                    wiring.connect(m, ring.o, rec_dec.i)
                    wiring.connect(m, rec_dec.o, engine.i_rec)
                    m.d.comb += engine.i_rec_ready.eq((ring.o_steps != 0) | rec_dec.marker_held)
                else:
                    # decoder, packer and bundle queue belong to the ring: cleared with it
                    inner = Module()
                    rec_o, rec_ready = self._bundles(inner, f"ring{l}", ring.o, layer.groups, layer.lanes,
                                                     layer.rec_index_bits, E, layer.bundle_fifo_depth(layer.neurons))
                    m.submodules[f"ring{l}_bundles"] = ResetInserter(engine.ring.clear)(inner)
                    wiring.connect(m, rec_o, engine.i_rec)
                    m.d.comb += engine.i_rec_ready.eq(rec_ready)
            out_fifo = StepFIFO(layout=word_layout(layer.groups, layer.lanes), depth=layer.out_fifo_depth,
                                room=layer.out_room)
            m.submodules[f"layer{l}_fifo"] = out_fifo
            wiring.connect(m, engine.o_words, out_fifo.w)
            m.d.comb += engine.o_space_ok.eq(out_fifo.has_room)
            index_bits = (plan.layers[l + 1].input_index_bits if l + 1 < len(plan.layers)
                          else plan.readout.index_bits)
            if E > 1 and l + 1 < len(plan.layers):
                source, source_ready = self._bundles(
                    m, f"layer{l}", out_fifo.r, layer.groups, layer.lanes, index_bits, E,
                    plan.layers[l + 1].bundle_fifo_depth(layer.neurons))
            else:
                dec = SpikeDecoder(groups=layer.groups, lanes=layer.lanes, index_bits=index_bits)
                m.submodules[f"layer{l}_decoder"] = dec
                wiring.connect(m, out_fifo.r, dec.i)
                source = dec.o
                source_ready = (out_fifo.steps != 0) | dec.marker_held
            if plan.debug:
                m.d.comb += [
                    getattr(self, f"dbg_l{l}_valid").eq(engine.dbg_valid),
                    getattr(self, f"dbg_l{l}_spikes").eq(engine.dbg_spikes),
                    getattr(self, f"dbg_l{l}_cycles").eq(engine.dbg_cycles),
                ]

        readout = ReadoutEngine(plan.readout)
        m.submodules.readout = readout
        wiring.connect(m, source, readout.i_ev)
        m.d.comb += [
            self.out_valid.eq(readout.o.valid),
            readout.o.ready.eq(self.out_ready),
            self.out_readout.eq(readout.o.payload.readout),
            self.out_prediction.eq(readout.o.payload.prediction),
            self.out_end_seq.eq(readout.o.payload.end_seq),
        ]
        return m

    @staticmethod
    def _bundles(m: Module, name: str, words, groups: int, lanes: int, index_bits: int, events: int, depth: int):
        """Spike words -> WideSpikeDecoder -> EventPacker -> bundle queue -> SkidBuffer, added to ``m``.

        Returns the bundle stream for an engine and its "whole step queued" signal."""
        layout = bundle_layout(index_bits, events)
        dec = WideSpikeDecoder(groups=groups, lanes=lanes, index_bits=index_bits, events=events)
        packer = EventPacker(index_bits=index_bits, events=events)
        queue = StepFIFO(layout=layout, depth=depth)
        reg = SkidBuffer(layout=layout)
        m.submodules[f"{name}_decoder"], m.submodules[f"{name}_packer"] = dec, packer
        m.submodules[f"{name}_bundles"], m.submodules[f"{name}_bundle_reg"] = queue, reg
        wiring.connect(m, words, dec.i)
        wiring.connect(m, dec.o, packer.i)
        wiring.connect(m, packer.o, queue.w)
        wiring.connect(m, queue.r, reg.i)
        return reg.o, SkipCore._steps_queued(m, name, packer.o, reg.o, depth)

    @staticmethod
    def _steps_queued(m: Module, name: str, into, out, depth: int, *, registered_put: bool = False):
        """Whether a whole step sits between the stream ``into`` a queue and the register ``out``
        behind it: markers written (``registered_put``: counted a cycle after their write)
        minus markers taken from ``out``, a counter.

        It replaces the queue's own ``steps | marker_held``, whose decrement comes from the read
        data of the queue's memory (a block RAM for the input and bundle queues, placed far from
        the counter, whose output then ran through the counter's adder: a critical path of the
        ECP5 builds).
        """
        count = Signal(range(depth + 3), name=f"{name}_steps_queued")
        put = into.valid & into.ready & into.payload.end_step
        if registered_put:
            put_reg = Signal(name=f"{name}_marker_written")
            m.d.sync += put_reg.eq(put)
            put = put_reg
        take = out.valid & out.ready & out.payload.end_step
        m.d.sync += count.eq(count + put - take)
        return count != 0
