"""Artifact -> Verilog (``core.v``, top module ``skipcore_core``) + ``core.json``.

``generate(art, lanes=P)`` checks the options (:func:`hdl.plan.plan_core`), builds
:class:`hdl.core.SkipCore`, converts it with ``amaranth.back.verilog.convert`` and describes it in
``core.json`` (schema in ``hdl/INTERFACE.md``): ports, input/readout formats, per-layer lanes,
groups, accumulator widths and cycle constants, the memory inventory, and the cycle bound
evaluated at a measured activity (golden-model spike counts).

Lint status: ``verilator --lint-only -Wall core.v`` (Verilator 5.048) reports no errors, only
warnings (so it exits with ``%Error: Exiting due to N warning(s)``; add ``-Wno-fatal`` for exit
status 0). All of them are kinds that Amaranth's Verilog backend (Yosys ``write_verilog``) emits for
any design; none points at a problem of the core. Counts for a two-layer core (LIF + ALIF, P = 4):

==================  =====  ====================================================================
warning             count  cause
==================  =====  ====================================================================
UNUSEDSIGNAL        ~600   unread bits of wide intermediates (sign bits above a shift, product
                           bits above a truncation, debug shift-register bits beyond N)
PROCASSINIT         ~200   registers with both an ``initial`` value and a reset
WIDTHEXPAND         ~140   implicit zero/sign extension of operands in emitted arithmetic
CASEINCOMPLETE      ~80    FSM ``casez`` without a default branch (the default is handled before)
WIDTHTRUNC          ~12    ``!`` (LOGNOT) applied to a multi-bit value
ALWNEVER            2      ``always @*`` that drives a constant 0 (``end_seq`` of replay words)
UNDRIVEN            2      the same constant bit, seen as never driven
DECLFILENAME        1      file ``core.v`` holds module ``skipcore_core``
==================  =====  ====================================================================

Without ``-Wall`` (Verilator's default lint level) only WIDTHEXPAND, WIDTHTRUNC, CASEINCOMPLETE and
ALWNEVER remain, so Verilator builds of ``core.v`` need ``-Wno-fatal`` (``sim/`` passes it).

Cycle bound per layer per step (INTERFACE.md): ``ceil(N/P) * (input_events + recurrent_events + own_events) +
ceil(N/P) + c`` with ``c = 8`` for LIF and ``c = 9`` for ALIF layers, one more for a first layer
with count or real inputs (the product ``w * x`` takes a pipeline stage) and one more for a layer
whose weight ROM is split into banks (more than ``hdl.plan.WEIGHT_BANK_WORDS`` words); see
:class:`hdl.layer_engine.LayerEngine`. The engines meet the bound with equality (they start a step
only when nothing can make them wait inside it). With ``events=E > 1`` the input and recurrent
events come E to a bundle and each bundle costs G cycles:
``ceil(N/P) * (ceil(input_events/E) + ceil(recurrent_events/E) + own_events) + ceil(N/P) + c``,
with one more stage in ``c`` (the adder tree of the E weight words).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from amaranth.back import verilog
from amaranth.hdl import Shape
from amaranth.lib import wiring

from skipcore.golden.artifact import Artifact, artifact_digest
from skipcore.golden.cycles import cycle_bounds as golden_cycle_bounds, spike_counts

from .core import SkipCore
from .plan import CorePlan, plan_core

__all__ = [
    "GeneratedCore",
    "generate",
    "core_json",
    "cycle_bounds",
    "activity_summary",
    "artifact_digest",
    "BOUND_FORMULA",
    "TOP_NAME",
]

TOP_NAME = "skipcore_core"
BOUND_FORMULA = "ceil(N/P) * (ceil(input_events/E) + ceil(recurrent_events/E) + own_events) + ceil(N/P) + c"


@dataclass
class GeneratedCore:
    """Output of :func:`generate`."""

    plan: CorePlan
    verilog: str
    json: dict[str, Any]


def _ports(plan: CorePlan) -> dict[str, dict[str, Any]]:
    ports: dict[str, dict[str, Any]] = {"clk": {"dir": "in", "width": 1}, "rst": {"dir": "in", "width": 1}}
    for name, member in SkipCore.members(plan).items():
        ports[name] = {"dir": "in" if member.flow == wiring.In else "out", "width": int(Shape.cast(member.shape).width)}
    return ports


def cycle_bounds(plan: CorePlan, input_events: np.ndarray, spikes) -> np.ndarray:
    """Per-layer per-step bound (B, T, L) from layer-0 input events (B, T) and per-layer spikes
    (B, T, N) or spike counts (B, T, L); the formula is :func:`golden.cycles.cycle_bounds`."""
    return golden_cycle_bounds([l.groups for l in plan.layers], [l.constant_cycles for l in plan.layers],
                               [l.span for l in plan.layers], input_events, spike_counts(spikes),
                               [l.own_span for l in plan.layers], [l.events for l in plan.layers])


def activity_summary(plan: CorePlan, input_events: np.ndarray, spikes: list[np.ndarray], source: str) -> dict:
    """``cycle_bound.at_measured_activity``: the bound at the golden model's activity.

    ``per_step_*`` is the bound of the slowest layer of each step (the pipeline's throughput
    limit: layers work on different steps at the same time); ``per_layer`` has each layer's own
    mean and max. ``samples`` counts sequences, ``steps`` steps per sequence.
    """
    bounds = cycle_bounds(plan, input_events, spikes)
    worst = bounds.max(axis=2)
    return {
        "per_step_mean": round(float(worst.mean()), 3),
        "per_step_max": int(worst.max()),
        "samples": int(bounds.shape[0]),
        "steps": int(bounds.shape[1]),
        "source": source,
        "per_layer": [
            {"mean": round(float(bounds[:, :, l].mean()), 3), "max": int(bounds[:, :, l].max())}
            for l in range(bounds.shape[2])
        ],
    }


def core_json(plan: CorePlan, *, digest: str, activity: dict | None) -> dict[str, Any]:
    """The contents of ``core.json`` (schema in hdl/INTERFACE.md)."""
    r = plan.readout
    return {
        "top": TOP_NAME,
        "version": 1,
        "artifact_sha256": digest,
        "ports": _ports(plan),
        "input": {
            "channels": plan.channels, "kind": plan.input_kind, "bits": plan.input_bits,
            "frac_bits": plan.frac_bits, "index_bits": plan.index_bits, "value_bits": plan.value_bits,
        },
        "readout": {
            "classes": r.classes, "bits": r.readout_bits, "class_bits": r.class_bits, "mode": r.mode,
            "kind": r.kind,
        },
        "lanes": plan.lanes,
        "events": plan.events,
        "layers": [
            {
                "neurons": l.neurons, "kind": l.kind, "span": l.span, "ring_depth": l.ring_depth,
                "lanes": l.lanes, "groups": l.groups, "acc_bits": l.acc_bits,
                "constant_cycles": l.constant_cycles, "own_span": l.own_span, "events": l.events,
            }
            for l in plan.layers
        ],
        "memories": plan.memories(),
        "cycle_bound": {
            "formula": BOUND_FORMULA,
            "per_layer_constant": [l.constant_cycles for l in plan.layers],
            "at_measured_activity": activity,
        },
        "fifo_depths": {"input": plan.in_fifo_depth, "layers": [l.out_fifo_depth for l in plan.layers]},
        "debug": plan.debug,
    }


def generate(
    art: Artifact,
    *,
    lanes: int,
    ring_depth: int | None = None,
    debug: bool = True,
    digest: str | None = None,
    activity: dict | None = None,
    events: int = 1,
) -> GeneratedCore:
    """Build the core for ``art`` and return its Verilog and ``core.json`` contents.

    Parameters
    ----------
    art : Artifact
    lanes : int
        P (clamped to each layer's neuron count).
    ring_depth : int, optional
        Ring-buffer slots of every layer with a span (default: its span).
    debug : bool
        Add the ``dbg_l*`` ports.
    digest : str, optional
        ``artifact_sha256`` to record (default: :func:`artifact_digest`).
    activity : dict, optional
        ``cycle_bound.at_measured_activity`` (see :func:`activity_summary`).
    events : int
        E, events whose weight rows each layer engine reads per cycle (1 .. ``hdl.plan.MAX_EVENTS``).

    Raises
    ------
    ConfigError
        Impossible options (see :func:`hdl.plan.plan_core`).
    """
    plan = plan_core(art, lanes=lanes, ring_depth=ring_depth, debug=debug, events=events)
    info = core_json(plan, digest=digest or artifact_digest(art), activity=activity)
    text = verilog.convert(SkipCore(plan), name=TOP_NAME, emit_src=False)
    return GeneratedCore(plan=plan, verilog=text, json=info)
