"""cocotb testbenches of the hdl components (sim/tb_*.py), each against its own Python reference
model, parametrised over the component's generics, with random gaps and backpressure on every
stream. Verilog comes from Amaranth here (tests may import amaranth; sim/ does not)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from skipcore.sim.job import write_job
from skipcore.sim.runners import build_sim, run_cocotb

amaranth_verilog = pytest.importorskip("amaranth.back.verilog")


def run_component(tmp_path: Path, component, name: str, tb: str, job: dict, simulator: str = "verilator"):
    """Convert ``component`` to Verilog, build (cached by the text), run ``skipcore.sim.<tb>``."""
    verilog = tmp_path / f"{name}.v"
    verilog.write_text(amaranth_verilog.convert(component, name=name, emit_src=False))
    build = build_sim([verilog], name, simulator=simulator)
    env = write_job(tmp_path / "job.json", job)
    result = run_cocotb(build, f"skipcore.sim.{tb}", test_dir=tmp_path, env=env)
    result.raise_on_failure()
    return result


# ---------------------------------------------------------------------------------------------
# neuron units


@pytest.mark.parametrize("kind,acc,state,dbits,mode,reset", [
    ("lif", 7, 9, 4, "mult", "soft"),
    ("lif", 12, 8, 3, "shift", "hard"),
    ("alif", 9, 8, 5, "shift", None),
    ("alif", 6, 12, 7, "mult", None),
    ("stc", 9, 10, 6, None, None),
    ("stc", 14, 8, 3, None, None),
])
def test_neuron_units(tmp_path, kind, acc, state, dbits, mode, reset):
    from skipcore.hdl import kinds

    unit_kind = kinds.get(kind)
    rng = np.random.default_rng(acc * 1000 + state * 10 + dbits)
    args = unit_kind.example_args(rng, acc_bits=acc, state_bits=state, decay_bits=dbits, decay_mode=mode or "mult")
    if reset is not None:
        args["reset"] = reset
    unit = unit_kind.Unit(**args)
    inputs, outputs, signed_out = unit_kind.vectors(rng, args, 3000)
    run_component(tmp_path, unit, f"{kind}_unit", "tb_neuron_units",
                  dict(latency=unit.latency, signed=signed_out,
                       inputs={k: v.tolist() for k, v in inputs.items()},
                       outputs={k: v.tolist() for k, v in outputs.items()}))


# ---------------------------------------------------------------------------------------------
# streams: StepFIFO, SpikeDecoder


@pytest.mark.parametrize("groups,lanes,depth,gap,backpressure", [
    (1, 1, 1, 0.3, 0.3), (3, 4, 5, 0.2, 0.5), (5, 2, 8, 0.5, 0.1)])
def test_step_fifo(tmp_path, groups, lanes, depth, gap, backpressure):
    from skipcore.hdl.step_fifo import StepFIFO
    from skipcore.hdl.stream import word_layout

    layout = word_layout(groups, lanes)
    fields = [[name, field.width] for name, field in layout]
    run_component(tmp_path, StepFIFO(layout=layout, depth=depth), "step_fifo", "tb_step_fifo",
                  dict(layout=fields, depth=depth, count=500, gap=gap, backpressure=backpressure, seed=depth))


@pytest.mark.parametrize("groups,lanes,gap,backpressure", [
    (1, 1, 0.0, 0.0), (3, 4, 0.0, 0.0), (4, 3, 0.3, 0.4), (2, 8, 0.5, 0.5)])
def test_spike_decoder(tmp_path, groups, lanes, gap, backpressure):
    from skipcore.hdl.spike_decoder import SpikeDecoder

    index_bits = max(1, (groups * lanes - 1).bit_length())
    run_component(tmp_path, SpikeDecoder(groups=groups, lanes=lanes, index_bits=index_bits), "spike_decoder",
                  "tb_spike_decoder", dict(groups=groups, lanes=lanes, index_bits=index_bits, count=400, gap=gap,
                                           backpressure=backpressure, seed=groups * 10 + lanes))


# ---------------------------------------------------------------------------------------------
# RingBuffer


@pytest.mark.parametrize("span,depth,groups,lanes,write_gap", [
    (1, 1, 1, 1, 0.0), (1, 1, 3, 4, 0.3), (2, 2, 2, 3, 0.0), (3, 5, 3, 2, 0.2), (4, 4, 1, 4, 0.0)])
def test_ring_buffer(tmp_path, span, depth, groups, lanes, write_gap):
    from skipcore.hdl.ring_buffer import RingBuffer

    run_component(tmp_path, RingBuffer(span=span, depth=depth, groups=groups, lanes=lanes), "ring_buffer",
                  "tb_ring_buffer", dict(span=span, depth=depth, groups=groups, lanes=lanes,
                                         sequences=[7, 1, span + 3, 2, 9], backpressure=0.4, write_gap=write_gap,
                                         seed=span * 100 + depth))


# ---------------------------------------------------------------------------------------------
# engines (reference: the golden model of a one-layer artifact)


def _one_layer(seed, **kw):
    from skipcore.golden.random import random_artifact

    rng = np.random.default_rng(seed)
    return random_artifact(rng, **kw), rng


@pytest.mark.parametrize("seed,kind,span,lanes,input_kind,ring,stall", [
    (1, "lif", 0, 3, "real", None, 0.0),
    (2, "alif", 2, 2, "count", None, 0.0),
    (3, "lif", 1, 1, "spike", None, 0.2),
    (4, "alif", 3, 8, "real", 5, 0.0),
    (5, "lif", 4, 4, "spike", None, 0.0),
])
def test_layer_engine(tmp_path, seed, kind, span, lanes, input_kind, ring, stall):
    # even seeds drain the output queue slowly: it fills, and the engine waits for its room
    from skipcore.golden.artifact import save
    from skipcore.golden.contract import quantize_input
    from skipcore.golden.random import random_inputs
    from skipcore.hdl.layer_engine import LayerEngine
    from skipcore.hdl.plan import plan_core

    art, rng = _one_layer(seed, layer_sizes=[7 if lanes > 1 else 4], kinds=[kind],
                          spans=[span], input_kind=input_kind, channels=5, saturating=seed % 2 == 0,
                          weight_exps=seed in (2, 4, 5))
    x = quantize_input(art.input, random_inputs(rng, art, 3, 10))
    plan = plan_core(art, lanes=lanes, ring_depth=ring).layers[0]
    save(art, tmp_path / "layer.skc")
    np.savez(tmp_path / "x.npz", x=x)
    job = dict(artifact=str(tmp_path / "layer.skc"), data=str(tmp_path / "x.npz"), groups=plan.groups,
               lanes=plan.lanes, neurons=plan.neurons, span=plan.span, constant_cycles=plan.constant_cycles,
               input_index_bits=plan.input_index_bits, value_bits=0 if input_kind == "spike" else plan.input_bits,
               rec_index_bits=plan.rec_index_bits, group_bits=plan.group_bits, out_room=plan.out_room,
               out_fifo_depth=plan.out_fifo_depth, arrival=0.3, drain=0.4 if seed % 2 else 0.03,
               stall=stall, seed=seed)
    run_component(tmp_path, LayerEngine(plan), "layer_engine", "tb_layer_engine", job)


@pytest.mark.parametrize("seed,kind,mode,classes", [(5, "sum", "mult", 4), (10, "leaky", "shift", 3),
                                                    (11, "leaky", "mult", 1), (8, "alif", "mult", 4),
                                                    (9, "alif", "shift", 1)])
def test_readout_engine(tmp_path, seed, kind, mode, classes):
    from skipcore.golden.artifact import save
    from skipcore.hdl.plan import plan_core
    from skipcore.hdl.readout_engine import ReadoutEngine

    art, _ = _one_layer(seed, layer_sizes=[6], readout_kind=kind, classes=classes, decay_mode=mode,
                        saturating=seed % 2 == 1, weight_exps=seed in (11, 8, 10))
    # the seeds are picked so that these three draw a non-zero readout exponent (0..3 are drawn)
    assert art.readout.weight_exp > 0 or seed not in (11, 8, 10)
    plan = plan_core(art, lanes=2).readout
    save(art, tmp_path / "readout.skc")
    job = dict(artifact=str(tmp_path / "readout.skc"), index_bits=plan.index_bits, class_bits=plan.class_bits,
               sequences=[6, 1, 9], density=0.4, gap=0.3, backpressure=0.4, seed=seed)
    run_component(tmp_path, ReadoutEngine(plan), "readout_engine", "tb_readout_engine", job)
