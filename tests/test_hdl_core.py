"""Whole cores in amaranth.sim against the golden model: spikes (dbg ports), readout, cycles.

Tiny random artifacts covering LIF/ALIF/STC-LIF, spans 0 / 1 / > 1 / = ring depth / < ring depth, lanes
1 / N / not dividing N, spike / count / real inputs, saturating weights, sum / leaky readouts,
back-to-back sequences, input gaps, output backpressure and a reset in the middle of a step.
The cocotb/Verilator testbenches in sim/ run the same comparison on the generated Verilog.
"""
from __future__ import annotations

import numpy as np
import pytest

from skipcore.golden.contract import quantize_input
from skipcore.golden.model import run
from skipcore.golden.random import random_artifact, random_inputs
from skipcore.hdl.generate import cycle_bounds
from skipcore.hdl.plan import plan_core

from hdl_simulate import run_core

CASES = [
    # seed, lanes, ring depth, random_artifact arguments
    (11, 1, None, dict(layer_sizes=[4, 3], kinds=["lif", "alif"], spans=[2, 1], input_kind="real")),
    (12, 3, None, dict(layer_sizes=[7], kinds=["alif"], spans=[3], input_kind="count", saturating=True)),
    (13, 64, 4, dict(layer_sizes=[5, 4], kinds=["alif", "lif"], spans=[0, 2], input_kind="spike")),
    (14, 2, None, dict(layer_sizes=[3, 5, 2], spans=[1, 4, 0], input_kind="real", readout_kind="leaky")),
    (15, 4, 6, dict(layer_sizes=[6], kinds=["lif"], spans=[5], input_kind="count", readout_mode="per_step",
                    saturating=True, decay_mode="shift")),
    # STC-LIF: own-spike gate events, every recurrence, lanes dividing N or not
    (31, 2, None, dict(layer_sizes=[6], kinds=["stc"], spans=[0], input_kind="spike")),
    (32, 3, None, dict(layer_sizes=[6, 4], kinds=["stc", "lif"], spans=[1, 2], input_kind="real")),
    (33, 1, None, dict(layer_sizes=[4], kinds=["stc"], spans=[2], input_kind="count")),
    (34, 8, None, dict(layer_sizes=[4, 6], kinds=["alif", "stc"], spans=[0, 3], input_kind="real", saturating=True)),
    # the spiking ALIF output readout (SRNN ECG), per step and per sequence
    (41, 2, None, dict(layer_sizes=[5], kinds=["lif"], spans=[1], input_kind="spike", readout_kind="alif",
                       readout_mode="per_step")),
    (42, 3, None, dict(layer_sizes=[6, 4], kinds=["stc", "alif"], spans=[1, 2], input_kind="real",
                       readout_kind="alif", saturating=True)),
]


def _compare(art, plan, xq, res):
    gold = run(art, xq, traces=True, quantized=True)
    B, T = xq.shape[:2]
    for l in range(len(art.layers)):
        got = np.array(res.spikes[l]).reshape(B, T, -1)
        where = np.argwhere(got != gold.spikes[l])
        assert np.array_equal(got, gold.spikes[l]), f"layer {l} spikes differ at (b, t, n) = {where[0]}"
    readout = np.array(res.readout).reshape(B, T, -1)
    assert np.array_equal(readout, gold.readout), f"readout differs at {np.argwhere(readout != gold.readout)[0]}"
    assert np.array_equal(np.array(res.prediction).reshape(B, T), np.argmax(gold.readout, axis=-1))
    assert res.end_seq == [int(t == T - 1) for _ in range(B) for t in range(T)]
    cycles = np.stack([np.array(c).reshape(B, T) for c in res.cycles], axis=2)
    assert np.array_equal(cycles, cycle_bounds(plan, gold.input_events, gold.spikes))
    return gold


@pytest.mark.parametrize("seed,lanes,depth,kwargs", CASES, ids=[f"case{c[0]}" for c in CASES])
def test_core_matches_golden(seed, lanes, depth, kwargs):
    rng = np.random.default_rng(seed)
    art = random_artifact(rng, channels=3, **kwargs)
    xq = quantize_input(art.input, random_inputs(rng, art, 2, 9))
    plan = plan_core(art, lanes=lanes, ring_depth=depth)
    res = run_core(plan, xq, rng=rng, in_gaps=0.2, out_stalls=0.3)
    gold = _compare(art, plan, xq, res)
    assert sum(int(s.sum()) for s in gold.spikes) > 0, "the case should have spikes"


def test_core_reset_mid_step():
    rng = np.random.default_rng(21)
    art = random_artifact(rng, channels=3, layer_sizes=[4, 3], kinds=["alif", "lif"], spans=[1, 2], input_kind="real")
    xq = quantize_input(art.input, random_inputs(rng, art, 2, 6))
    garbage = quantize_input(art.input, random_inputs(rng, art, 1, 4))
    plan = plan_core(art, lanes=3)
    res = run_core(plan, xq, rng=rng, garbage_before_reset=garbage)
    _compare(art, plan, xq, res)


def test_core_without_debug_ports():
    rng = np.random.default_rng(22)
    art = random_artifact(rng, channels=2, layer_sizes=[3], spans=[1], input_kind="spike")
    xq = quantize_input(art.input, random_inputs(rng, art, 1, 5))
    plan = plan_core(art, lanes=2, debug=False)
    res = run_core(plan, xq)
    gold = run(art, xq, quantized=True)
    assert np.array_equal(np.array(res.readout).reshape(gold.readout.shape), gold.readout)


@pytest.mark.parametrize("seed,lanes,bank_words,kwargs", [
    (51, 2, 4, dict(layer_sizes=[5, 4], kinds=["alif", "lif"], spans=[1, 3], input_kind="real")),
    (52, 1, 8, dict(layer_sizes=[6], kinds=["lif"], spans=[2], input_kind="spike")),
    (53, 3, 2, dict(layer_sizes=[6, 4], kinds=["stc", "alif"], spans=[0, 2], input_kind="count")),
    # over BANK_REGISTER_BANKS banks in the first layer (30): a fabric register per bank too
    (54, 2, 2, dict(layer_sizes=[9, 3], kinds=["alif", "lif"], spans=[1, 2], input_kind="spike")),
])
def test_core_with_weight_banks_matches_golden(seed, lanes, bank_words, kwargs):
    """Weight ROMs split into banks whose read data are registered before the bank multiplexer
    (one more pipeline stage, in the constant; two for count or real inputs, whose product's
    operand is the multiplexer's output in a register), and with over BANK_MUX_BANKS banks (5 to
    10 here; 3 in one layer) the word of each group of banks too (one more), and over
    BANK_REGISTER_BANKS each bank's word in a fabric register of its own (one more): still bit- and
    cycle-exact."""
    from skipcore.hdl.plan import BANK_MUX_BANKS, BANK_REGISTER_BANKS

    rng = np.random.default_rng(seed)
    art = random_artifact(rng, channels=3, **kwargs)
    xq = quantize_input(art.input, random_inputs(rng, art, 2, 8))
    plan = plan_core(art, lanes=lanes, weight_bank_words=bank_words)
    assert all(l.weight_banks > 1 for l in plan.layers)
    single = plan_core(art, lanes=lanes)
    assert [l.constant_cycles for l in plan.layers] == [
        s.constant_cycles + 1 + (s.input_kind != "spike") + (l.weight_banks > BANK_MUX_BANKS)
        + (l.weight_banks > BANK_REGISTER_BANKS) for l, s in zip(plan.layers, single.layers)]
    assert plan.layers[0].bank_registers == (seed == 54)
    assert any(l.weight_banks > BANK_MUX_BANKS for l in plan.layers)
    res = run_core(plan, xq, rng=rng, in_gaps=0.2, out_stalls=0.3)
    _compare(art, plan, xq, res)


def test_weight_bank_words_must_be_a_power_of_two():
    from skipcore.errors import ConfigError

    art = random_artifact(np.random.default_rng(0), channels=3, layer_sizes=[4])
    with pytest.raises(ConfigError, match=r"^weight bank words must be a power of two, got 6$"):
        plan_core(art, lanes=2, weight_bank_words=6)
