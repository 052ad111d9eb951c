"""Layer time loop: exact skip-span delivery, ASRC mixture and argmax, dropout mask, readouts."""
import pytest
import torch

from skipcore.errors import ConfigError
from skipcore.quant.config import LayerConfig, NetworkConfig, ReadoutConfig
from skipcore.quant.layers import SpikingLayer, span_mixture
from skipcore.quant.network import SpikingNetwork
from skipcore.quant.readout import Readout, count_correct, readout_loss, readout_predict

torch.set_num_threads(1)


def probe_layer(cfg: LayerConfig, spike_steps, steps=20, batch=2):
    """A layer whose neuron 0 spikes only at ``spike_steps``; W_in = 0 and W_rec = I.

    Returns the total current I[t] of every step, (steps, batch, neurons)."""
    layer = SpikingLayer(1, cfg)
    with torch.no_grad():
        layer.fc.weight.zero_()
        layer.fc.bias.zero_()
        if layer.rec is not None:
            layer.rec.weight.copy_(torch.eye(cfg.neurons))
    currents = []

    def fake_step(current, state, params):
        t = len(currents)
        currents.append(current.detach().clone())
        s = torch.zeros_like(current)
        if t in spike_steps:
            s[:, 0] = 1.0
        return s, state

    layer.step_fn = fake_step
    spikes = layer(torch.zeros(batch, steps, 1))
    assert spikes.shape == (batch, steps, cfg.neurons)
    return torch.stack(currents), layer


@pytest.mark.parametrize("k", [1, 3, 7])
def test_spike_reaches_recurrent_current_exactly_k_steps_later(k):
    t0 = 4
    cur, _ = probe_layer(LayerConfig(3, recurrence="src", span=k), {t0})
    hit = (cur[:, :, 0] != 0).all(dim=1).nonzero().view(-1).tolist()
    assert hit == [t0 + k]
    assert cur[t0 + k, :, 0].tolist() == [1.0, 1.0]
    assert (cur[:, :, 1:] == 0).all()


def test_two_spikes_and_sequence_start():
    cur, _ = probe_layer(LayerConfig(2, recurrence="src", span=3), {0, 10})
    assert (cur[:, 0, 0] != 0).nonzero().view(-1).tolist() == [3, 13]


def test_no_recurrence():
    cur, layer = probe_layer(LayerConfig(3, recurrence="none"), {2})
    assert layer.rec is None and layer.span == 0
    assert (cur == 0).all()


def test_asrc_training_mixes_all_candidates():
    k_max, t0, steps = 5, 2, 12
    cfg = LayerConfig(2, recurrence="asrc", max_span=k_max)
    _, layer = probe_layer(cfg, {t0}, steps=steps)
    with torch.no_grad():
        layer.span_logits.copy_(torch.tensor([0.1, -0.3, 1.2, 0.4, -1.0]))
    weights = torch.softmax(layer.span_logits / layer.tau, 0).detach()
    currents = []

    def fake_step(current, state, params):
        t = len(currents)
        currents.append(current.detach().clone())
        s = torch.zeros_like(current)
        if t == t0:
            s[:, 0] = 1.0
        return s, state

    layer.step_fn = fake_step
    layer.train()
    layer(torch.zeros(1, steps, 1))
    cur = torch.stack(currents)[:, 0, 0]
    expected = torch.zeros(steps)
    expected[t0 + 1 : t0 + 1 + k_max] = weights  # span j carries weight softmax(p/tau)_j
    assert torch.allclose(cur, expected, atol=1e-6)
    # eval: hard selection, span = argmax(p) + 1 = 3
    layer.eval()
    currents.clear()
    layer(torch.zeros(1, steps, 1))
    cur = torch.stack(currents)[:, 0, 0]
    assert layer.span == 3
    assert (cur != 0).nonzero().view(-1).tolist() == [t0 + 3]


def test_asrc_eval_equals_src_with_argmax_span():
    torch.manual_seed(1)
    asrc = SpikingLayer(1, LayerConfig(16, recurrence="asrc", max_span=6))
    with torch.no_grad():
        asrc.span_logits.copy_(torch.tensor([0.0, 0.2, 0.1, 0.9, 0.3, -0.2]))
    src = SpikingLayer(1, LayerConfig(16, recurrence="src", span=4))
    src.load_state_dict({k: v for k, v in asrc.state_dict().items() if k not in ("span_logits", "tau")})
    x = torch.randn(3, 30, 1) * 2
    asrc.eval(), src.eval()
    a, b = asrc(x), src(x)
    assert a.sum() > 0
    assert torch.equal(a, b)
    asrc.train()
    assert not torch.equal(asrc(x), b)  # training mode uses the mixture


def test_span_logits_get_gradients_and_tau_decays():
    torch.manual_seed(0)
    cfg = NetworkConfig(input_channels=2, classes=3,
                        layers=[LayerConfig(12, recurrence="asrc", max_span=4), LayerConfig(8, recurrence="asrc", max_span=3)])
    net = SpikingNetwork(cfg)
    net.train()
    x = torch.randn(4, 25, 2) * 3
    out = net(x)
    net.loss(out, torch.tensor([0, 1, 2, 0])).backward()
    for layer in net.layers:
        assert layer.span_logits.grad is not None
        assert layer.span_logits.grad.abs().sum() > 0
    for _ in range(3):
        net.decrease_tau()
    for layer in net.layers:
        assert float(layer.tau) == pytest.approx(0.96 ** 3)
        assert "tau" in dict(layer.named_buffers())
        assert not any(n == "tau" for n, _ in layer.named_parameters())
    assert net.parameter_groups()["spans"] and len(net.parameter_groups()["spans"]) == 2


def test_span_mixture_gradient_matches_autograd_reference():
    torch.manual_seed(0)
    w = torch.softmax(torch.randn(4), 0).requires_grad_()
    past = [torch.randn(3, 5, requires_grad=True) for _ in range(4)]
    g = torch.randn(3, 5)
    (span_mixture(w, past) * g).sum().backward()
    got = [w.grad.clone()] + [p.grad.clone() for p in past]
    w2 = w.detach().clone().requires_grad_()
    past2 = [p.detach().clone().requires_grad_() for p in past]
    (sum(w2[j] * past2[j] for j in range(4)) * g).sum().backward()
    want = [w2.grad] + [p.grad for p in past2]
    for a, b in zip(got, want):
        assert torch.allclose(a, b, atol=1e-6)


def test_dropout_mask_is_constant_over_time():
    torch.manual_seed(0)
    layer = SpikingLayer(1, LayerConfig(64, recurrence="none"), dropout=0.5)
    x = torch.ones(4, 10, 1)
    layer.train()
    cur = layer.input_current(x)
    assert torch.equal(cur, cur[:, :1].expand_as(cur))
    dropped = (cur[:, 0] == 0).float().mean()
    assert 0.2 < dropped < 0.8
    kept = layer.fc(x)[:, 0]
    nz = cur[:, 0] != 0
    assert torch.allclose(cur[:, 0][nz], 2 * kept[nz])
    other = layer.input_current(x)  # a new batch draws a new mask
    assert not torch.equal(cur, other)
    layer.eval()
    assert torch.equal(layer.input_current(x), layer.fc(x))


def test_float_params_keys():
    cfg = NetworkConfig(input_channels=3, classes=4, layers=[
        LayerConfig(5, recurrence="asrc", max_span=3), LayerConfig(6, kind="alif", recurrence="none")],
        readout=ReadoutConfig(kind="leaky"))
    fp = SpikingNetwork(cfg).float_params()
    l0, l1, ro = fp["layers"][0], fp["layers"][1], fp["readout"]
    assert set(l0) == {"kind", "recurrence", "span", "w_in", "bias", "w_rec", "lam", "threshold", "reset"}
    assert l0["w_in"].shape == (5, 3) and l0["bias"].shape == (5,) and l0["w_rec"].shape == (5, 5)
    assert l0["span"] == 1 and l0["reset"] == "soft" and l0["lam"] == 0.5 and l0["threshold"] == 1.0
    assert set(l1) == {"kind", "recurrence", "span", "w_in", "bias", "w_rec", "alpha", "rho", "b0", "beta",
                       "threshold", "reset"}
    assert l1["w_rec"] is None and l1["span"] == 0 and l1["alpha"].shape == (6,) and l1["reset"] == "delayed"
    assert set(ro) == {"kind", "mode", "skip_steps", "w", "bias", "alpha"}
    assert ro["w"].shape == (4, 6) and ro["alpha"].shape == (4,)


def test_readouts_by_hand():
    spikes = torch.tensor([[[1.0], [0.0], [1.0]]])  # (B=1, T=3, N=1)
    s = Readout(1, 2, ReadoutConfig(kind="sum"))
    with torch.no_grad():
        s.fc.weight.copy_(torch.tensor([[2.0], [-1.0]]))
        s.fc.bias.copy_(torch.tensor([0.5, 0.0]))
    out = s(spikes)
    assert out[0, -1].tolist() == [5.5, -2.0]  # sum_t (W S + b)
    leaky = Readout(1, 2, ReadoutConfig(kind="leaky", tau_o=(2.0, 0.0)))
    with torch.no_grad():
        leaky.fc.weight.copy_(torch.tensor([[2.0], [-1.0]]))
        leaky.fc.bias.zero_()
    a = float(torch.exp(torch.tensor(-0.5)))
    m, want = 0.0, []
    for z in (2.0, 0.0, 2.0):
        m = a * m + (1 - a) * z
        want.append(m)
    assert leaky(spikes)[0, :, 0].tolist() == pytest.approx(want, rel=1e-6)


def test_prediction_rule_and_per_step_loss():
    out = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [0.0, 3.0]]])  # (1, 3, 2)
    assert readout_predict(out, "sequence").tolist() == [1]
    assert readout_predict(out, "per_step").tolist() == [[0, 1, 1]]
    y = torch.tensor([[1, 1, 1]])
    assert count_correct(readout_predict(out, "per_step"), y, "per_step", skip_steps=1) == (2, 2)
    full = torch.nn.functional.cross_entropy(out[0, 1:], y[0, 1:])
    assert readout_loss(out, y, "per_step", skip_steps=1).item() == pytest.approx(full.item())


@pytest.mark.parametrize("bad, message", [
    (dict(neurons=0), "positive integer"),
    (dict(neurons=4, kind="izh"), "unknown neuron kind"),
    (dict(neurons=4, recurrence="src", span=0), "span >= 1"),
    (dict(neurons=4, recurrence="skip"), "unknown recurrence"),
])
def test_layer_config_errors(bad, message):
    with pytest.raises(ConfigError, match=message):
        LayerConfig(**bad)


def test_network_config_json_round_trip():
    import json

    cfg = NetworkConfig(input_channels=4, classes=6, layers=[LayerConfig(36, kind="alif", beta=0.0, tau_m=(20, 0))],
                        readout=ReadoutConfig(kind="leaky", mode="per_step", skip_steps=10))
    again = NetworkConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    with pytest.raises(ConfigError, match="unknown network config fields: colour"):
        NetworkConfig.from_dict({**cfg.to_dict(), "colour": 1})
