"""The optimised golden model (golden/model.py) equals the plain int64 reference (golden/reference.py).

The reference follows CONTRACT.md step by step and asserts the accumulator bounds of section 5;
the optimised model picks float32/float64/int32 types and runs layer by layer. Spikes, states,
readout, predictions, saturation counts, spike counts and input events must be identical.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from skipcore.golden import model as optimised
from skipcore.golden import reference
from skipcore.golden.artifact import Widths
from skipcore.golden.random import random_artifact, random_inputs


def assert_same(art, x, *, quantized: bool = False, label: str = "") -> None:
    fast = optimised.run(art, x, traces=True, quantized=quantized)
    ref = reference.run(art, x, traces=True, quantized=quantized)
    where = f"{label}; {art.summary()}"
    assert len(fast.spikes) == len(ref.spikes) == len(art.layers), where
    for i, (fs, rs) in enumerate(zip(fast.spikes, ref.spikes)):
        if not np.array_equal(fs, rs):
            b, t, n = np.argwhere(fs != rs)[0]
            pytest.fail(f"spikes differ first at layer {i} neuron {n} step {t} (batch {b}); {where}")
        assert fast.states[i].keys() == ref.states[i].keys(), where
        for key in ref.states[i]:
            if not np.array_equal(fast.states[i][key], ref.states[i][key]):
                b, t, n = np.argwhere(fast.states[i][key] != ref.states[i][key])[0]
                pytest.fail(f"state {key} differs first at layer {i} neuron {n} step {t} (batch {b}); {where}")
    if not np.array_equal(fast.readout, ref.readout):
        b, t, c = np.argwhere(fast.readout != ref.readout)[0]
        pytest.fail(f"readout differs first at class {c} step {t} (batch {b}); {where}")
    assert np.array_equal(fast.predictions, ref.predictions), where
    assert fast.saturation == ref.saturation, where
    assert all(np.array_equal(a, b) for a, b in zip(fast.spike_counts, ref.spike_counts)), where
    assert np.array_equal(fast.input_events, ref.input_events), where


def extreme_widths(rng) -> Widths:
    return Widths(
        weight_bits=int(rng.choice([2, 3, 8, 16])),
        state_bits=int(rng.choice([8, 9, 24, 32])),
        readout_bits=int(rng.choice([8, 12, 32, 40])),
        decay_bits=int(rng.choice([1, 2, 8, 16])),
    )


# every combination of neuron kind x recurrence x input kind x decay mode x readout kind x mode
COMBINATIONS = list(itertools.product(["lif", "alif"], [0, 1, 4], ["spike", "count", "real"], ["mult", "shift"],
                                      ["sum", "leaky"], ["sequence", "per_step"]))


@pytest.mark.parametrize("chunk", range(4))
def test_every_combination(chunk):
    """144 combinations, each a two-layer model (the second layer of the other kind), some saturating."""
    rng = np.random.default_rng(100 + chunk)
    for index, (kind, span, input_kind, mode, readout_kind, readout_mode) in enumerate(COMBINATIONS[chunk::4]):
        other = "alif" if kind == "lif" else "lif"
        art = random_artifact(rng, kinds=[kind, other], spans=[span, int(rng.integers(0, 3))],
                              layer_sizes=[int(rng.integers(1, 9)), int(rng.integers(1, 6))],
                              input_kind=input_kind, decay_mode=mode, readout_kind=readout_kind,
                              readout_mode=readout_mode, widths=extreme_widths(rng) if index % 2 else None,
                              saturating=index % 3 == 0)
        x = random_inputs(rng, art, batch=3, steps=int(rng.integers(6, 14)))
        assert_same(art, x, label=f"combination {kind} k={span} {input_kind} {mode} {readout_kind} {readout_mode}")


@pytest.mark.parametrize("seed", range(4))
def test_fully_random_artifacts(seed):
    rng = np.random.default_rng(200 + seed)
    for case in range(40):
        art = random_artifact(rng, widths=extreme_widths(rng) if case % 3 == 0 else None)
        assert_same(art, random_inputs(rng, art, batch=4, steps=int(rng.integers(5, 16))), label=f"seed {seed} case {case}")


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(20))
def test_fully_random_artifacts_long(seed):
    rng = np.random.default_rng(5000 + seed)
    for case in range(100):
        art = random_artifact(rng, widths=extreme_widths(rng) if case % 2 else None)
        assert_same(art, random_inputs(rng, art, batch=8, steps=int(rng.integers(10, 40))), label=f"seed {seed} case {case}")


def test_weight_exponents_in_every_kind():
    """Non-zero weight exponents (section 3.1) on every neuron kind and readout kind, some saturating."""
    from skipcore.golden import kinds, readouts
    rng = np.random.default_rng(31)
    nonzero = 0
    for index, (kind, readout_kind) in enumerate(itertools.product(kinds.random_mix(), readouts.random_mix())):
        for case in range(3):
            art = random_artifact(rng, kinds=[kind, kind], readout_kind=readout_kind, weight_exps=True,
                                  saturating=case == 0, widths=extreme_widths(rng) if case == 2 else None)
            nonzero += sum(l.input_exp + l.recurrent_exp > 0 for l in art.layers) + (art.readout.weight_exp > 0)
            assert_same(art, random_inputs(rng, art, batch=3, steps=int(rng.integers(5, 14))),
                        label=f"exponents {kind} {readout_kind} case {case}")
    assert nonzero > 20


def test_quantized_inputs_over_the_whole_range():
    rng = np.random.default_rng(7)
    for input_kind in ("real", "count", "spike"):
        for _ in range(8):
            art = random_artifact(rng, input_kind=input_kind)
            lo, hi = art.input.range
            xq = rng.integers(lo, hi + 1, size=(3, 10, art.input.channels))
            assert_same(art, xq, quantized=True, label=input_kind)


def test_extreme_saturation_in_every_quantity():
    """W16 S16 R40 D16, decays near 1, top thresholds: membrane, threshold and readout all clamp."""
    rng = np.random.default_rng(11)
    seen: dict[str, int] = {}
    for kind in ("lif", "alif"):
        for readout_kind in ("sum", "leaky"):
            art = random_artifact(rng, widths=Widths(16, 16, 40, 16), kinds=[kind, kind], layer_sizes=[8, 5],
                                  spans=[2, 1], input_kind="count", saturating=True, readout_kind=readout_kind,
                                  decay_mode="mult")
            for layer in art.layers:
                layer.decay[:] = 2**16 - 1
                layer.threshold[:] = 2**15 - 1
                if kind == "alif":
                    layer.threshold[:3] = 1  # these fire; then b = 2**16 and B = b0 + beta saturates
                    layer.beta[:] = 2**15 - 1
                    layer.rho[:] = 0
            rmax = 2**39 - 1
            art.readout.bias[:] = rmax - 1
            art.validate()
            x = random_inputs(rng, art, batch=3, steps=25)
            assert_same(art, x, label=f"extreme {kind} {readout_kind}")
            for k, n in reference.run(art, x).saturation.items():
                seen[k] = seen.get(k, 0) + n
    assert {"membrane", "threshold", "readout", "input"} <= seen.keys(), seen


def test_the_reference_asserts_the_accumulator_bound():
    """An integer input outside the input range breaks section 5's proof, and the reference says so."""
    rng = np.random.default_rng(3)
    art = random_artifact(rng, input_kind="real", kinds=["lif"], layer_sizes=[4], spans=[0], saturating=True)
    art.layers[0].w_in[:] = 2 ** (art.widths.weight_bits - 1) - 1
    art.layers[0].bias[:] = 0
    _, hi = art.input.range
    x = np.full((1, 3, art.input.channels), hi, dtype=np.int64)
    reference.run(art, x, quantized=True)  # the largest legal input is within the bound
    with pytest.raises(reference.BoundViolation, match=r"^layers\[0\] step 0: \|acc\| = \d+ exceeds the section 5 bound"):
        reference.run(art, x * 4, quantized=True)


def test_the_reference_reproduces_hand_computed_traces():
    """The known answers of test_golden.py, through the reference this time."""
    from test_golden import alif_example, lif_example

    x = np.array([1, 1, 0, 1], dtype=np.float32).reshape(1, 4, 1)
    res = reference.run(lif_example(), x, traces=True)
    assert res.states[0]["v"][0].tolist() == [[0, -107], [0, -128], [3, -128], [1, -128]]
    assert res.readout[0].tolist() == [[1, 1], [2, 2], [2, 3], [3, 4]]
    assert res.saturation == {"membrane": 3}
    x = np.array([1, 1, 1, 0, 0], dtype=np.float32).reshape(1, 5, 1)
    res = reference.run(alif_example(), x, traces=True)
    assert res.states[0]["u"][0, :, 0].tolist() == [7, -2, 6, 3, 1]
    assert res.states[0]["b"][0, :, 1].tolist() == [0, 8, 12, 14, 15]
    assert res.predictions[0].tolist() == [0, 1, 1, 1, 1]
