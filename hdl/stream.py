"""Payload layouts of the streams between the engines of the core.

Every stream is an :class:`amaranth.lib.stream.Signature` (``payload``/``valid``/``ready``, the
ready/valid rules of ``amaranth.lib.stream``) whose payload is one of the layouts below. A *step*
on any stream is zero or more data words followed by exactly one *marker* word
(``end_step = 1``); ``end_seq`` (meaningful only on a marker) says the step was the last of its
sequence.

Event stream (:func:`event_layout`)
    One input event per word: ``index`` (channel or neuron address) and, for the first layer's
    multi-bit inputs, ``value``. Spikes carry no value (it is 1).
Spike-word stream (:func:`word_layout`)
    The compressed form of a layer's spikes: ``group`` g and a P-bit ``mask`` whose bit p is the
    spike of neuron ``g * P + p``. Only non-zero words are sent, so a step costs one word per group
    that has at least one spike; with P = 1 it is exactly a list of neuron addresses.
    :class:`hdl.spike_decoder.SpikeDecoder` turns it back into an event stream at one event per
    cycle.
Bundle stream (:func:`bundle_layout`, generator option ``events`` E > 1)
    Up to E events in one word: ``index`` and optional ``value`` of slots 0 .. E-1 and ``count``,
    the number of slots used (always the lowest ones). A marker word holds no events. Between the
    packer (:class:`hdl.event_packer.EventPacker`) and a layer engine every bundle of a step is
    full (``count == E``) except the last one.
Readout stream (:func:`readout_layout`)
    One word per step: all classes' readout ``m[t]``, the argmax ``prediction``, ``end_seq``.
"""
from __future__ import annotations

from amaranth.hdl import ShapeLike, unsigned
from amaranth.lib import data, stream
from amaranth.utils import ceil_log2

__all__ = ["event_layout", "word_layout", "bundle_layout", "readout_layout", "event_signature", "word_signature",
           "bundle_signature"]


def event_layout(index_bits: int, value_shape: ShapeLike | None = None) -> data.StructLayout:
    """``index``, optional ``value``, ``end_step``, ``end_seq``."""
    fields: dict[str, ShapeLike] = {"index": unsigned(index_bits)}
    if value_shape is not None:
        fields["value"] = value_shape
    fields["end_step"] = unsigned(1)
    fields["end_seq"] = unsigned(1)
    return data.StructLayout(fields)


def word_layout(groups: int, lanes: int) -> data.StructLayout:
    """``group`` (max(1, ceil_log2(groups)) bits), ``mask`` (lanes bits), ``end_step``, ``end_seq``."""
    return data.StructLayout({
        "group": unsigned(max(1, ceil_log2(groups))),
        "mask": unsigned(lanes),
        "end_step": unsigned(1),
        "end_seq": unsigned(1),
    })


def bundle_layout(index_bits: int, events: int, value_shape: ShapeLike | None = None) -> data.StructLayout:
    """``index`` (E indices), optional ``value`` (E values), ``count`` (0..E), ``end_step``, ``end_seq``."""
    fields: dict[str, ShapeLike] = {"index": data.ArrayLayout(unsigned(index_bits), events)}
    if value_shape is not None:
        fields["value"] = data.ArrayLayout(value_shape, events)
    fields["count"] = unsigned(ceil_log2(events + 1))
    fields["end_step"] = unsigned(1)
    fields["end_seq"] = unsigned(1)
    return data.StructLayout(fields)


def readout_layout(classes: int, bits: int) -> data.StructLayout:
    """``readout`` (classes * bits, class c in bits [c*bits, (c+1)*bits)), ``prediction``, ``end_seq``."""
    return data.StructLayout({
        "readout": unsigned(classes * bits),
        "prediction": unsigned(max(1, ceil_log2(classes))),
        "end_seq": unsigned(1),
    })


def event_signature(index_bits: int, value_shape: ShapeLike | None = None) -> stream.Signature:
    return stream.Signature(event_layout(index_bits, value_shape))


def word_signature(groups: int, lanes: int) -> stream.Signature:
    return stream.Signature(word_layout(groups, lanes))


def bundle_signature(index_bits: int, events: int, value_shape: ShapeLike | None = None) -> stream.Signature:
    return stream.Signature(bundle_layout(index_bits, events, value_shape))
