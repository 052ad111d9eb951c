"""CUBA-LIF (CONTRACT.md section 3.7), the current-based LIF, through every layer of the stack:
golden against a plain per-neuron Python reference and the int64 reference model, QAT equal to
golden bit for bit, the float step and its fused loop against plain autograd, export, config, and
the RTL unit (amaranth.sim here; its cocotb testbench below)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from skipcore.errors import ConfigError
from skipcore.golden import reference
from skipcore.golden.artifact import Widths
from skipcore.golden.contract import quantize_input
from skipcore.golden.model import run
from skipcore.golden.random import random_artifact, random_inputs
from skipcore.quant.config import LayerConfig, NetworkConfig, ReadoutConfig
from skipcore.quant.export import export_artifact
from skipcore.quant.kinds.cuba import CubaParams, CubaState, cuba_step
from skipcore.quant.network import SpikingNetwork

from test_qat_equivalence import assert_same

torch.set_num_threads(1)


# ---------------------------------------------------------------------------------------------
# golden


def _floor_div(a: int, n: int) -> int:
    return a // (1 << n)  # Python's // floors


def _clamp(x: int, bits: int) -> int:
    return max(-(1 << (bits - 1)), min((1 << (bits - 1)) - 1, x))


def reference_layer(art, index, x_int):
    """Section 3.1 and 3.7 for one layer, one neuron and one step at a time, in Python ints."""
    layer, w = art.layers[index], art.widths
    S, D = w.state_bits, w.decay_bits

    def dec(v, a):
        return _floor_div(a * v, D) if layer.decay_mode == "mult" else v - _floor_div(v, a)

    batch, steps = len(x_int), len(x_int[0])
    n = layer.neurons
    spikes = [[[0] * n for _ in range(steps)] for _ in range(batch)]
    currents = [[[0] * n for _ in range(steps)] for _ in range(batch)]
    for b in range(batch):
        i_syn, v = [0] * n, [0] * n
        for t in range(steps):
            for k in range(n):
                ff = sum((int(layer.w_in[k, j]) << layer.input_exp) * x_int[b][t][j] for j in range(layer.fan_in))
                acc = _floor_div(ff, layer.input_shift) + int(layer.bias[k])
                if layer.span and t >= layer.span:
                    acc += sum((int(layer.w_rec[k, j]) << layer.recurrent_exp) * int(spikes[b][t - layer.span][j])
                               for j in range(n))
                i_syn[k] = _clamp(dec(i_syn[k], int(layer.syn_decay[k])) + acc, S)
                h = _clamp(dec(v[k], int(layer.decay[k])) + i_syn[k], S)
                theta = int(layer.threshold[k])
                s = int(h >= theta)
                v[k] = h - theta * s if layer.reset == "soft" else h * (1 - s)
                spikes[b][t][k], currents[b][t][k] = s, i_syn[k]
    return np.array(spikes), np.array(currents)


@pytest.mark.parametrize("seed", range(6))
def test_cuba_golden_matches_the_plain_reference(seed):
    rng = np.random.default_rng(7000 + seed)
    art = random_artifact(rng, layer_sizes=[int(rng.integers(2, 7)), 3], kinds=["cuba", "lif"], spans=[seed % 4, 1],
                          decay_mode=["mult", "shift"][seed % 2], saturating=seed % 3 == 0)
    x = random_inputs(rng, art, batch=2, steps=11)
    res = run(art, x, traces=True)
    spikes, currents = reference_layer(art, 0, quantize_input(art.input, x).tolist())
    assert np.array_equal(res.spikes[0], spikes)
    assert np.array_equal(res.states[0]["i"], currents)
    assert 0 < spikes.mean() < 1 or seed % 3 == 0


@pytest.mark.parametrize("seed", range(10))
def test_cuba_golden_matches_the_reference_model(seed):
    """The optimised golden model against golden/reference.py (the kind's reference_step)."""
    rng = np.random.default_rng(7100 + seed)
    art = random_artifact(rng, kinds=["cuba", "cuba"] if seed % 2 else ["alif", "cuba"], layer_sizes=[5, 4],
                          spans=[seed % 3, (seed + 1) % 4], saturating=seed % 3 == 0,
                          widths=Widths(16, 32, 40, 16) if seed == 9 else None)
    x = random_inputs(rng, art, batch=3, steps=13)
    ref, opt = reference.run(art, x, traces=True), run(art, x, traces=True)
    assert np.array_equal(ref.readout, opt.readout)
    for a, b in zip(ref.states, opt.states):
        assert a.keys() == b.keys() == ({"i", "v"} if "i" in a else a.keys())
        for key in a:
            assert np.array_equal(a[key], b[key]), key
    assert ref.saturation == opt.saturation


def test_cuba_hand_computed_trace():
    """One neuron, mult decays 1/2 (D = 1), theta 3, soft reset, acc = 2 every step (bias only)."""
    art = random_artifact(np.random.default_rng(0), layer_sizes=[1], kinds=["cuba"], spans=[0], channels=1,
                          input_kind="spike", widths=Widths(4, 8, 16, 1), decay_mode="mult", readout_kind="sum")
    layer = art.layers[0]
    layer.w_in[:] = 0
    layer.bias[:] = 2
    layer.threshold[:] = 3
    layer.decay[:] = 1       # lam = 1/2
    layer.syn_decay[:] = 1   # alpha_syn = 1/2
    layer.reset = "soft"
    res = run(art, np.zeros((1, 5, 1)), traces=True)
    # I: 2, 3, 3, 3, 3;  H = (V >> 1) + I: 2, 4 -> fire, V 1; (1 >> 1) + 3 = 3 -> fire, V 0; 3 -> fire, V 0 ...
    assert res.states[0]["i"][0, :, 0].tolist() == [2, 3, 3, 3, 3]
    assert res.spikes[0][0, :, 0].tolist() == [0, 1, 1, 1, 1]
    assert res.states[0]["v"][0, :, 0].tolist() == [2, 1, 0, 0, 0]


def test_cuba_saturates_the_synapse_and_counts_it():
    art = random_artifact(np.random.default_rng(1), layer_sizes=[2], kinds=["cuba"], spans=[0], channels=1,
                          input_kind="spike", widths=Widths(8, 8, 16, 4), decay_mode="mult", readout_kind="sum")
    layer = art.layers[0]
    layer.w_in[:] = 0
    layer.bias[:] = 100
    layer.syn_decay[:] = 15  # alpha_syn = 15/16: I grows past 127 and saturates
    layer.threshold[:] = 127
    res = run(art, np.zeros((1, 6, 1)), traces=True)
    assert res.states[0]["i"].max() == 127 and res.saturation.get("synapse", 0) > 0
    assert reference.run(art, np.zeros((1, 6, 1))).saturation == res.saturation


# ---------------------------------------------------------------------------------------------
# QAT == golden


RECURRENCES = [0, 1, 3]


@pytest.mark.parametrize("seed", range(25))
def test_qat_equals_golden_with_cuba(seed):
    """25 seeds x 8 = 200 random models with CUBA layers (every recurrence, both decay modes and
    resets, every readout kind), extreme widths included."""
    rng = np.random.default_rng(7200 + seed)
    for case in range(8):
        kinds = [["cuba"], ["cuba", "lif"], ["alif", "cuba"], ["cuba", "stc"]][case % 4]
        spans = [RECURRENCES[(seed + case + i) % 3] for i in range(len(kinds))]
        widths = Widths(16, 32, 40, 16) if case == 7 else None
        art = random_artifact(rng, layer_sizes=[int(rng.integers(2, 9)) for _ in kinds], kinds=kinds, spans=spans,
                              widths=widths, decay_mode=["mult", "shift"][(seed + case) % 2],
                              saturating=(seed + case) % 3 == 0,
                              readout_kind=["alif", "sum", "leaky"][(seed + case) % 3])
        x = random_inputs(rng, art, batch=3, steps=int(rng.integers(6, 14)))
        assert_same(art, x, label=f"seed {seed} case {case}")


# ---------------------------------------------------------------------------------------------
# float model, fused loop, export


def test_float_cuba_step_is_the_current_based_lif():
    state = CubaState(torch.tensor([[0.5, -0.2]]), torch.tensor([[0.3, 1.5]]))
    cur = torch.tensor([[0.1, 0.4]])
    s, nxt = cuba_step(cur, state, CubaParams(alpha_syn=0.8, lam=0.6, threshold=1.0, soft_reset=True))
    i = 0.8 * state.i + cur
    h = 0.6 * state.v + i
    assert torch.allclose(nxt.i, i)
    assert s.tolist() == [[0.0, 1.0]]
    assert torch.allclose(nxt.v, h - s)


def _plain_layer(layer, x):
    """Spikes of a CUBA ``layer`` as a plain autograd loop over ``cuba_step`` (no fused cell)."""
    c = layer.cfg
    current = layer.input_current(x)
    mixture = layer.span_weights() if (c.recurrence == "asrc" and layer.training) else None
    params = layer.neuron_params()
    state = layer.initial_state(x.shape[0], dtype=x.dtype)
    history = [current.new_zeros(x.shape[0], layer.neurons)] * c.depth
    out = []
    for t in range(x.shape[1]):
        i = current[:, t]
        rec = layer.recurrent_current(history, t, span=layer.span, mixture=mixture)
        if rec is not None:
            i = i + rec
        s, state = cuba_step(i, state, params)
        out.append(s)
        if c.depth:
            history = (history + [s])[-c.depth:]
    return torch.stack(out, 1)


@pytest.mark.parametrize("recurrence,reset", [("none", "soft"), ("src", "hard"), ("asrc", "soft"), ("asrc", "hard")])
def test_fused_cuba_loop_equals_the_plain_loop(recurrence, reset):
    torch.manual_seed(3)
    cfg = NetworkConfig(input_channels=3, classes=4, dropout=0.0, readout=ReadoutConfig(kind="leaky"),
                        layers=[LayerConfig(7, kind="cuba", recurrence=recurrence, span=2, max_span=4, reset=reset,
                                            lam=0.7, threshold=1.2, options={"alpha_syn": 0.6})])
    net = SpikingNetwork(cfg).double().train()
    layer = net.layers[0]
    with torch.no_grad():
        layer.fc.weight.mul_(2.0)
        if layer.rec is not None:
            layer.rec.weight.mul_(1.5)
        if recurrence == "asrc":
            layer.span_logits.normal_(0.0, 1.0)
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(3, 31, 3, generator=gen, dtype=torch.float64)
    probe = torch.randn(3, 31, 7, generator=gen, dtype=torch.float64)
    grads = []
    for forward in (layer, lambda x: _plain_layer(layer, x)):
        net.zero_grad(set_to_none=True)
        spikes = forward(x)
        (spikes * probe).sum().backward()
        grads.append((spikes.detach(), {n: p.grad.clone() for n, p in layer.named_parameters() if p.grad is not None}))
    (fused, g), (plain, ref_g) = grads
    assert 0.05 < float(plain.mean()) < 0.95
    assert torch.equal(fused, plain)
    assert set(g) == set(ref_g) and "fc.weight" in g
    for name, want in ref_g.items():
        assert want.abs().max() > 0 or "span_logits" in name, name
        torch.testing.assert_close(g[name], want, rtol=1e-9, atol=1e-11, msg=lambda m: f"{name}: {m}")


def test_cuba_network_trains_exports_and_qat_matches_golden():
    from skipcore.quant.qat import QATNetwork

    torch.manual_seed(0)
    cfg = NetworkConfig(input_channels=3, classes=4, layers=[
        LayerConfig(6, kind="cuba", recurrence="src", span=2, lam=0.8, threshold=0.7, options={"alpha_syn": 0.75}),
        LayerConfig(5, kind="lif", recurrence="none")])
    net = SpikingNetwork(cfg)
    assert net.layers[0].surrogate.name == "triangle"
    x = torch.rand(4, 12, 3)
    net(x).sum().backward()
    assert net.layers[0].fc.weight.grad.abs().sum() > 0
    art = export_artifact(net, {"weight_bits": 8, "state_bits": 16, "decay_bits": 8}, input_kind="real", x=x.numpy())
    layer = art.layers[0]
    assert layer.kind == "cuba" and layer.syn_decay.tolist() == [192] * 6 and layer.decay.tolist() == [205] * 6
    assert_same(art, x.numpy(), label="exported cuba")
    qat = QATNetwork(net, {"weight_bits": 8, "state_bits": 16, "decay_bits": 8}, input_spec=art.input)
    qat(x).sum().backward()
    assert net.layers[0].fc.weight.grad.abs().sum() > 0
    assert np.array_equal(qat.to_artifact().layers[0].syn_decay, layer.syn_decay)


def test_cuba_config_is_checked():
    with pytest.raises(ConfigError, match=r"CUBA alpha_syn .* must be a number in \[0, 1\], not 1.5"):
        LayerConfig(4, kind="cuba", options={"alpha_syn": 1.5})
    with pytest.raises(ConfigError, match="unknown CUBA layer options: gate_bits; known: alpha_syn"):
        LayerConfig(4, kind="cuba", options={"gate_bits": 4})


# ---------------------------------------------------------------------------------------------
# RTL unit: cocotb (Verilator) against the vectors the hardware definition derives from golden


@pytest.mark.parametrize("acc,state,dbits,mode,reset", [(9, 8, 5, "mult", "soft"), (12, 10, 3, "shift", "hard")])
def test_cuba_unit_cocotb(tmp_path, acc, state, dbits, mode, reset):
    from test_sim_components import run_component

    from skipcore.hdl import kinds

    unit_kind = kinds.get("cuba")
    rng = np.random.default_rng(acc * 1000 + state * 10 + dbits)
    args = dict(acc_bits=acc, state_bits=state, decay_bits=dbits, decay_mode=mode, reset=reset)
    unit = unit_kind.Unit(**args)
    inputs, outputs, signed_out = unit_kind.vectors(rng, args, 3000)
    run_component(tmp_path, unit, "cuba_unit", "tb_neuron_units",
                  dict(latency=unit.latency, signed=signed_out,
                       inputs={k: v.tolist() for k, v in inputs.items()},
                       outputs={k: v.tolist() for k, v in outputs.items()}))


def test_cuba_unit_checks_its_arguments():
    from skipcore.hdl.kinds.cuba import CubaUnit

    with pytest.raises(ValueError, match=r"^CubaUnit reset must be 'soft' or 'hard', not 'zero'$"):
        CubaUnit(acc_bits=8, state_bits=8, decay_bits=4, decay_mode="mult", reset="zero")
    with pytest.raises(ValueError, match=r"^CubaUnit decay_mode must be 'mult' or 'shift', not 'exp'$"):
        CubaUnit(acc_bits=8, state_bits=8, decay_bits=4, decay_mode="exp", reset="soft")


# ---------------------------------------------------------------------------------------------
# whole cores (amaranth.sim) against golden: spikes, readout, cycles


@pytest.mark.parametrize("seed,lanes,kwargs", [
    (71, 2, dict(layer_sizes=[5], kinds=["cuba"], spans=[1], input_kind="spike", decay_mode="mult")),
    (72, 3, dict(layer_sizes=[6, 4], kinds=["cuba", "lif"], spans=[2, 0], input_kind="real", decay_mode="shift",
                 readout_kind="leaky")),
    (73, 1, dict(layer_sizes=[4, 5], kinds=["alif", "cuba"], spans=[0, 3], input_kind="count", saturating=True,
                 readout_kind="alif")),
])
def test_cuba_core_matches_golden(seed, lanes, kwargs):
    from hdl_simulate import run_core
    from test_hdl_core import _compare

    from skipcore.hdl.plan import plan_core

    rng = np.random.default_rng(seed)
    art = random_artifact(rng, channels=3, **kwargs)
    xq = quantize_input(art.input, random_inputs(rng, art, 2, 9))
    plan = plan_core(art, lanes=lanes)
    res = run_core(plan, xq, rng=rng, in_gaps=0.2, out_stalls=0.3)
    gold = _compare(art, plan, xq, res)
    cuba = [l for l, layer in enumerate(art.layers) if layer.kind == "cuba"]
    assert sum(int(gold.spikes[l].sum()) for l in cuba) > 0, "the cuba layer should spike"
