"""STC-LIF on the training side: QAT equals golden bit for bit, float step, export, config."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from skipcore.errors import ConfigError
from skipcore.golden.artifact import Widths
from skipcore.golden.random import random_artifact, random_inputs
from skipcore.quant.config import LayerConfig, NetworkConfig
from skipcore.quant.export import export_artifact
from skipcore.quant.kinds.stc import STCParams, STCState, stc_step
from skipcore.quant.network import SpikingNetwork
from skipcore.quant.qat import QATNetwork

from test_qat_equivalence import assert_same

torch.set_num_threads(1)

RECURRENCES = [0, 1, 3]  # none, vanilla, SRC span 3 (a deployed ASRC layer is an SRC layer)


@pytest.mark.parametrize("seed", range(25))
def test_qat_equals_golden_with_stc(seed):
    """25 seeds x 8 models = 200 random models with STC layers (groups 1, a divisor, N); half of
    them read out through the spiking ALIF output layer (CONTRACT.md 4.3)."""
    rng = np.random.default_rng(5000 + seed)
    for case in range(8):
        n = int(rng.choice([4, 6, 8, 9]))
        kinds = [["stc"], ["stc", "lif"], ["alif", "stc"], ["stc", "stc"]][case % 4]
        spans = [RECURRENCES[(seed + case + i) % 3] for i in range(len(kinds))]
        widths = Widths(16, 32, 40, 16) if case == 7 else None
        art = random_artifact(rng, layer_sizes=[n] * len(kinds), kinds=kinds, spans=spans, widths=widths,
                              saturating=(seed + case) % 3 == 0,
                              readout_kind=["alif", "sum", "alif", "leaky"][(seed + case) % 4])
        x = random_inputs(rng, art, batch=3, steps=int(rng.integers(6, 14)))
        assert_same(art, x, label=f"seed {seed} case {case}")


def test_stc_gate_groups_cover_one_divisor_and_n():
    rng = np.random.default_rng(5000)
    seen = set()
    for _ in range(40):
        art = random_artifact(rng, layer_sizes=[6], kinds=["stc"], spans=[1])
        seen.add(art.layers[0].options["gate_groups"])
    assert {1, 6} <= seen and seen & {2, 3}


def _stc_net(groups=2, seed=0, recurrence="src"):
    torch.manual_seed(seed)
    cfg = NetworkConfig(input_channels=3, classes=4, surrogate=None,
                        layers=[LayerConfig(6, kind="stc", recurrence=recurrence, span=1, threshold=0.5,
                                            options={"gate_groups": groups, "gate_bits": 5})])
    return SpikingNetwork(cfg)


def test_float_stc_step_is_the_papers_cell():
    q = torch.tensor([[1.0, 0.0, 1.0, 1.0]])
    w_a = torch.tensor([[0.5, -1.0], [2.0, 0.0], [1.0, 1.0], [-0.5, 0.25]])
    w_g = -w_a
    state = STCState(torch.tensor([[0.2, -0.4, 1.0, 0.0]]), q)
    cur = torch.tensor([[0.3, 0.1, -0.2, 1.0]])
    s, nxt = stc_step(cur, state, STCParams(w_a, w_g, 2, 0.5))
    za = torch.tensor([[0.5 * 1 - 1.0 * 0, 2.0 * 1, 1.0 + 1.0, -0.5 + 0.25]])
    h = (1 + torch.tanh(za)) * state.v + (1 + torch.tanh(-za)) * cur
    assert torch.equal(s, (h >= 0.5).float())
    assert torch.allclose(nxt.v, h - 0.5 * s) and torch.equal(nxt.s, s)


def test_stc_network_trains_exports_and_qat_matches_golden():
    net = _stc_net()
    assert net.layers[0].surrogate.name == "sigmoid"
    x = torch.rand(4, 12, 3)
    out = net(x)
    out.readout.sum().backward() if hasattr(out, "readout") else out.sum().backward()
    assert net.layers[0].w_a.grad is not None and net.layers[0].w_a.grad.abs().sum() > 0
    art = export_artifact(net, {"weight_bits": 8, "state_bits": 16}, input_kind="real", x=x.numpy())
    layer = art.layers[0]
    assert layer.kind == "stc" and layer.options["gate_groups"] == 2 and layer.w_a.shape == (6, 3)
    assert layer.table_a.shape == (32,)
    assert_same(art, x.numpy(), label="exported stc")
    qat = QATNetwork(net, {"weight_bits": 8, "state_bits": 16}, input_spec=art.input)
    readout = qat(x)
    readout.sum().backward()
    assert net.layers[0].w_g.grad is not None
    assert np.array_equal(qat.to_artifact().layers[0].table_g, layer.table_g)
    # the gate biases: c_a starts at -1 (a leak), both learn, and export as round(c * scale_X)
    assert torch.equal(net.layers[0].c_a.detach(), torch.full((6,), -1.0))
    assert net.layers[0].c_a.grad is not None and net.layers[0].c_a.grad.abs().sum() > 0
    scale_a = 127 / float(net.layers[0].w_a.detach().abs().max())
    assert np.array_equal(layer.bias_a, np.full(6, round(-scale_a)))
    assert np.array_equal(layer.bias_g, np.zeros(6))
    assert net.layers[0].c_g.grad is not None and net.layers[0].c_g.grad.abs().sum() > 0


def test_float_stc_gate_biases_enter_inside_the_tanh():
    q = torch.tensor([[0.0, 1.0]])
    w = torch.tensor([[0.5], [2.0]])
    c_a, c_g = torch.tensor([-1.0, 0.5]), torch.tensor([0.25, -2.0])
    state = STCState(torch.tensor([[0.3, -0.2]]), q)
    cur = torch.tensor([[0.1, 0.4]])
    _, nxt = stc_step(cur, state, STCParams(w, -w, 2, 10.0, None, c_a, c_g))
    za = torch.tensor([[0.0, 2.0]])
    h = (1 + torch.tanh(za + c_a)) * state.v + (1 + torch.tanh(-za + c_g)) * cur
    assert torch.allclose(nxt.v, h)


def test_stc_config_is_checked():
    with pytest.raises(ConfigError, match="STC gate_groups must divide the layer's 6 neurons, not 4"):
        LayerConfig(6, kind="stc", options={"gate_groups": 4})
    with pytest.raises(ConfigError, match="unknown STC layer options: groups"):
        LayerConfig(6, kind="stc", options={"groups": 2})
    with pytest.raises(ConfigError, match=r"STC gate_bias_a .* must be a number in \[-4, 4\], not 9"):
        LayerConfig(6, kind="stc", options={"gate_bias_a": 9})
    from skipcore.quant import kinds as quant_kinds

    known = ", ".join(quant_kinds.names())
    assert "stc" in quant_kinds.names()
    with pytest.raises(ConfigError, match=f"unknown neuron kind 'izh'; choose one of: {known}$"):
        LayerConfig(6, kind="izh")


def _plain_layer(layer, x):
    """Spikes of ``layer`` as a plain autograd loop over the kind's float step (no fused cell)."""
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
        s, state = layer.kind.float_step(i, state, params)
        out.append(s)
        if c.depth:
            history = (history + [s])[-c.depth:]
    return torch.stack(out, 1)


@pytest.mark.parametrize("groups,recurrence", [(1, "none"), (3, "src"), (6, "asrc"), (2, "asrc")])
def test_fused_stc_loop_equals_the_plain_loop(groups, recurrence):
    """The fused STC cell (quant/kinds/stc.py) gives the same spikes and every gradient (w_a, w_g,
    c_a, c_g, the weights, the span logits) as autograd through the plain step loop."""
    torch.manual_seed(4)
    cfg = NetworkConfig(input_channels=3, classes=4, dropout=0.0, layers=[
        LayerConfig(6, kind="stc", recurrence=recurrence, span=2, max_span=4, threshold=0.8,
                    options={"gate_groups": groups, "gate_bits": 5})])
    net = SpikingNetwork(cfg).double().train()
    layer = net.layers[0]
    with torch.no_grad():
        layer.fc.weight.mul_(2.0)
        layer.w_a.mul_(3.0)
        layer.w_g.mul_(3.0)
        if layer.rec is not None:
            layer.rec.weight.mul_(1.5)
        if recurrence == "asrc":
            layer.span_logits.normal_(0.0, 1.0)
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(3, 29, 3, generator=gen, dtype=torch.float64)
    probe = torch.randn(3, 29, 6, generator=gen, dtype=torch.float64)
    results = []
    for forward in (layer, lambda x: _plain_layer(layer, x)):
        net.zero_grad(set_to_none=True)
        spikes = forward(x)
        (spikes * probe).sum().backward()
        grads = {n: p.grad.clone() for n, p in layer.named_parameters() if p.grad is not None}
        results.append((spikes.detach(), grads))
    (fused, g), (plain, ref_g) = results
    assert 0.05 < float(plain.mean()) < 0.95
    assert torch.equal(fused, plain)
    assert set(g) == set(ref_g) and {"w_a", "w_g", "c_a", "c_g", "fc.weight"} <= set(g)
    for name, want in ref_g.items():
        assert want.abs().max() > 0 or "span_logits" in name, name
        torch.testing.assert_close(g[name], want, rtol=1e-9, atol=1e-11, msg=lambda m: f"{name}: {m}")
