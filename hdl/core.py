"""The top of a generated core: ``skipcore_core`` (ports and protocol in ``hdl/INTERFACE.md``)."""
from __future__ import annotations

from amaranth.hdl import Module, ResetInserter
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ._checks import reject
from .layer_engine import LayerEngine
from .plan import CorePlan
from .readout_engine import ReadoutEngine
from .ring_buffer import RingBuffer
from .skid_buffer import SkidBuffer
from .spike_decoder import SpikeDecoder
from .step_fifo import StepFIFO
from .stream import event_layout, word_layout

__all__ = ["SkipCore"]


class SkipCore(wiring.Component):
    """Input stream -> layer engines -> readout engine -> output stream, pipelined over steps.

    Dataflow (every arrow a ready/valid stream with step markers)::

        in_* -> in FIFO (2 (C+1) words) -> SkidBuffer -> LayerEngine 0 -> FIFO 2 (G0+1) -> SpikeDecoder
             -> LayerEngine 1 -> ... -> FIFO -> SpikeDecoder -> ReadoutEngine -> out_*
        each LayerEngine with span > 0:  RingBuffer -> SpikeDecoder -> i_rec

    Every queue's words reach the engine behind it through registers (the SkidBuffer, the
    SpikeDecoder's word and output registers), and a step counts as queued while its marker is
    in the queue or in those registers (``marker_held``); a layer's room test is a register of
    its output FIFO (``has_room``). No path runs from a memory's read data through flow-control
    logic into another memory's address.

    Each engine starts a step only when its whole input step is queued (and, for a layer, there
    is room for its whole output step), so layer l + 1 works on step t while layer l works on
    step t + 1, and every FIFO holds two steps. The input FIFO holds two steps of up to C events,
    so the host can push the next step while layer 0 computes.

    Latency: a step's output word appears after the step went through every layer (each layer's
    bound, see :class:`~hdl.layer_engine.LayerEngine`, plus about 4 cycles of queues and idle per layer)
    and the readout (spikes + M + 5 cycles). Throughput: one step per slowest-stage time (the
    slowest layer's bound + 2, or the readout's).

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
        in_fifo = StepFIFO(layout=event_layout(plan.index_bits, value_shape), depth=plan.in_fifo_depth)
        m.submodules.in_fifo = in_fifo
        m.d.comb += [
            in_fifo.w.valid.eq(self.in_valid),
            self.in_ready.eq(in_fifo.w.ready),
            in_fifo.w.payload.index.eq(self.in_index),
            in_fifo.w.payload.end_step.eq(self.in_end_step),
            in_fifo.w.payload.end_seq.eq(self.in_end_step & self.in_end_seq),
        ]
        if value_shape is not None:
            m.d.comb += in_fifo.w.payload.value.eq(self.in_value)

        # a register stage between every queue's block RAM and the engine behind it
        in_reg = SkidBuffer(layout=event_layout(plan.index_bits, value_shape))
        m.submodules.in_reg = in_reg
        wiring.connect(m, in_fifo.r, in_reg.i)
        source = in_reg.o
        source_ready = (in_fifo.steps != 0) | in_reg.marker_held
        for layer in plan.layers:
            l = layer.index
            engine = LayerEngine(layer)
            m.submodules[f"layer{l}"] = engine
            wiring.connect(m, source, engine.i_ev)
            m.d.comb += engine.i_step_ready.eq(source_ready)
            if layer.span > 0:
                ring = RingBuffer(span=layer.span, depth=max(layer.ring_depth, layer.span),
                                  groups=layer.groups, lanes=layer.lanes)
                rec_dec = SpikeDecoder(groups=layer.groups, lanes=layer.lanes, index_bits=layer.rec_index_bits)
                m.submodules[f"ring{l}"] = ring
                # the decoder's registers belong to the ring: the end of a sequence clears both
                m.submodules[f"ring{l}_decoder"] = ResetInserter(engine.ring.clear)(rec_dec)
                wiring.connect(m, engine.ring, ring.w)
                wiring.connect(m, ring.o, rec_dec.i)
                wiring.connect(m, rec_dec.o, engine.i_rec)
                m.d.comb += engine.i_rec_ready.eq((ring.o_steps != 0) | rec_dec.marker_held)
            out_fifo = StepFIFO(layout=word_layout(layer.groups, layer.lanes), depth=layer.out_fifo_depth,
                                room=layer.groups + 1)
            m.submodules[f"layer{l}_fifo"] = out_fifo
            wiring.connect(m, engine.o_words, out_fifo.w)
            m.d.comb += engine.o_space_ok.eq(out_fifo.has_room)
            index_bits = (plan.layers[l + 1].input_index_bits if l + 1 < len(plan.layers)
                          else plan.readout.index_bits)
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
