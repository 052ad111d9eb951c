"""Amaranth components of the skipcore core and the generator (artifact -> core.v + core.json).

Public API: :func:`generate` (Verilog and core.json), :func:`plan_core` (options -> hardware
parameters, raises ConfigError), :class:`SkipCore` (the top component). The components, one per
module: ``step_fifo.StepFIFO``, ``skid_buffer.SkidBuffer``, ``spike_decoder.SpikeDecoder``, ``ring_buffer.RingBuffer``,
the neuron update units (one per kind, ``kinds.<kind>``: ``LIFUnit``, ``ALIFUnit``), ``layer_engine.LayerEngine``,
``readout_engine.ReadoutEngine``, ``core.SkipCore``, ``registered_rom.RegisteredROM`` (the weight
ROMs read through an output register); with the option ``events`` E > 1 also
``event_packer.EventPacker`` and ``wide_spike_decoder.WideSpikeDecoder``. Ports and protocol of the top: INTERFACE.md.
"""
from .core import SkipCore
from .generate import GeneratedCore, activity_summary, cycle_bounds, generate
from .plan import CorePlan, LayerPlan, ReadoutPlan, plan_core

__all__ = [
    "SkipCore",
    "GeneratedCore",
    "generate",
    "activity_summary",
    "cycle_bounds",
    "CorePlan",
    "LayerPlan",
    "ReadoutPlan",
    "plan_core",
]
