"""The fast float time loops (quant/layers.py, quant/readout.py) against a plain per-step loop.

The reference below is written the way the ASRC-SNN / SRNN code computes a step: a list of past
spikes, ``W_rec`` applied to the mixed (or k-steps-old) spikes, the neuron equations written out,
autograd through every step. The library must give the same spikes, readout and gradients of every
parameter (float64, tight tolerance) for LIF (soft and hard reset) and ALIF, no recurrence, SRC and
ASRC, both readouts, in train and in eval mode.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from skipcore.quant.config import LayerConfig, NetworkConfig, ReadoutConfig
from skipcore.quant.network import SpikingNetwork

torch.set_num_threads(1)


def reference_layer(layer, x: torch.Tensor) -> torch.Tensor:
    """Spikes (B, T, N) of ``layer`` on input ``x`` (B, T, C), one plain autograd step at a time."""
    c = layer.cfg
    current = F.linear(x, layer.fc.weight, layer.fc.bias)
    batch, steps, n = current.shape
    zeros = current.new_zeros(batch, n)
    asrc_mixing = c.recurrence == "asrc" and layer.training
    weights = torch.softmax(layer.span_logits / layer.tau, 0) if asrc_mixing else None
    span = layer.span
    past, out = [], []
    v = u = b = s_prev = zeros
    if c.kind == "alif":
        alpha, rho = torch.exp(-1.0 / layer.tau_m), torch.exp(-1.0 / layer.tau_adp)
    for t in range(steps):
        i = current[:, t]
        if layer.rec is not None:
            if asrc_mixing:
                mixed = sum(weights[j - 1] * past[-j] for j in range(1, c.max_span + 1) if j <= len(past))
                if past:
                    i = i + mixed @ layer.rec.weight.t()
            elif len(past) >= span:
                i = i + past[-span] @ layer.rec.weight.t()
        if c.kind == "lif":
            h = c.lam * v + i
            s = layer.surrogate(h - c.threshold, strict=False)
            v = h - c.threshold * s if c.reset == "soft" else h * (1.0 - s)
        else:
            b = rho * b + (1.0 - rho) * s_prev
            big_b = c.b0 + c.beta * b
            u = alpha * u + (1.0 - alpha) * i - big_b * s_prev
            s = layer.surrogate(u - big_b, strict=True)
            s_prev = s
        past.append(s)
        out.append(s)
    return torch.stack(out, dim=1)


def reference_network(net, x):
    h, spikes = x, []
    for layer in net.layers:
        h = reference_layer(layer, h)
        spikes.append(h)
    z = net.readout.fc(h)
    if net.readout.cfg.kind == "sum":
        return z.cumsum(1), spikes
    alpha = net.readout.alpha()
    m, out = torch.zeros_like(z[:, 0]), []
    for t in range(z.shape[1]):
        m = alpha * m + (1.0 - alpha) * z[:, t]
        out.append(m)
    return torch.stack(out, 1), spikes


def _net(layers, readout="sum", channels=3, seed=0):
    torch.manual_seed(seed)
    cfg = NetworkConfig(input_channels=channels, classes=4, layers=layers, readout=ReadoutConfig(kind=readout),
                        dropout=0.0)
    net = SpikingNetwork(cfg).double()
    with torch.no_grad():
        for layer in net.layers:
            layer.fc.weight.mul_(3.0)  # every layer fires at a moderate rate
            layer.fc.bias.add_(0.3)
            if layer.cfg.recurrence == "asrc":
                layer.span_logits.normal_(0.0, 1.0)  # an uneven mixture and a clear argmax
                layer.tau.fill_(0.7)
            if layer.rec is not None:
                layer.rec.weight.mul_(1.5)  # recurrent input large enough to change spikes
    return net


LIF = dict(kind="lif")
ALIF = dict(kind="alif", tau_m=(4.0, 1.0), tau_adp=(15.0, 3.0), b0=0.3)
CASES = {
    "lif-none+src1": [LayerConfig(7, recurrence="none", **LIF), LayerConfig(6, recurrence="src", span=1, **LIF)],
    "lif-src3+asrc5": [LayerConfig(7, recurrence="src", span=3, **LIF),
                       LayerConfig(6, recurrence="asrc", max_span=5, **LIF)],
    "lif-hard-asrc4": [LayerConfig(8, recurrence="asrc", max_span=4, reset="hard", lam=0.7, threshold=0.8)],
    "alif-none+src2": [LayerConfig(7, recurrence="none", **ALIF), LayerConfig(6, recurrence="src", span=2, **ALIF)],
    "alif-asrc6+lif-src1": [LayerConfig(7, recurrence="asrc", max_span=6, **ALIF),
                            LayerConfig(6, recurrence="src", span=1, **LIF)],
}


@pytest.mark.parametrize("readout", ["sum", "leaky"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("case", list(CASES))
def test_fast_loop_equals_plain_loop(case, training, readout):
    net = _net(CASES[case], readout)
    net.train(training)
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(3, 37, 3, generator=gen, dtype=torch.float64) * 2.0
    probe = torch.randn(3, 37, 4, generator=gen, dtype=torch.float64)  # a loss that reaches every step

    ref_out, ref_spikes = reference_network(net, x)
    (ref_out * probe).sum().backward()
    ref_grads = {name: p.grad.clone() for name, p in net.named_parameters() if p.grad is not None}
    net.zero_grad(set_to_none=True)

    res = net(x, record=True)
    (res.readout * probe).sum().backward()
    grads = {name: p.grad.clone() for name, p in net.named_parameters() if p.grad is not None}

    for i, (a, b) in enumerate(zip(res.spikes, ref_spikes)):
        rate = float(b.detach().mean())
        assert 0.02 < rate < 0.98, f"layer {i} firing rate {rate:.3f}: the case does not exercise the loop"
        assert torch.equal(a, b), f"layer {i} spikes differ"
    torch.testing.assert_close(res.readout, ref_out, rtol=1e-12, atol=1e-12)
    assert set(grads) == set(ref_grads)
    for name, g in ref_grads.items():
        assert g.abs().max() > 0 or "span_logits" in name and not training, f"{name}: zero reference gradient"
        torch.testing.assert_close(grads[name], g, rtol=1e-9, atol=1e-11, msg=lambda m: f"{name}: {m}")


# ---------------------------------------------------------------------------------------------
# the QAT (integer-exact) path: the recurrent weights' gradient is taken once per layer


def reference_qat_readout(qat, x):
    """The QAT forward pass as a plain loop over the ``quant.qat`` step functions, recurrent
    product ``S[t-k] @ W_rec^T`` written out at every step (autograd takes dW per step)."""
    from skipcore.quant import qat as q

    qm = qat.quantized()
    h = q.quantize_input(qm.input, x)
    for index, layer in enumerate(qm.layers):
        p = q.StepParams(layer, qm.widths.state_bits, qm.widths.decay_bits, qat.surrogates[index], qm.widths.trace_bits)
        cur = q.shr(torch.matmul(h, layer.w_in.t()), layer.input_shift) + layer.bias
        zeros = cur.new_zeros(cur.shape[0], layer.neurons)
        state, step = ((q.LIFState(zeros), q.lif_step) if layer.kind == "lif"
                       else (q.ALIFState(zeros, zeros, zeros), q.alif_step))
        spikes = []
        for t in range(cur.shape[1]):
            acc = cur[:, t]
            if layer.span and t >= layer.span:
                acc = acc + spikes[t - layer.span] @ layer.w_rec.t()
            s, state = step(acc, state, p)
            spikes.append(s)
        h = torch.stack(spikes, 1)
    r = qm.readout
    z = torch.matmul(h, r.w.t()) + r.bias
    m, outs = z.new_zeros(z.shape[0], z.shape[2]), []
    for t in range(z.shape[1]):
        m = q.readout_step(z[:, t], m, r, qm.widths.readout_bits, qm.widths.decay_bits)
        outs.append(m)
    return torch.stack(outs, 1)


@pytest.mark.parametrize("case", ["lif-src3+asrc5", "alif-asrc6+lif-src1"])
def test_qat_gradients_equal_plain_loop(case):
    from skipcore.quant.qat import QATNetwork

    net = _net(CASES[case], "leaky" if "alif" in case else "sum").float()
    net.train()
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(3, 29, 3, generator=gen) * 2.0
    qat = QATNetwork(net, {"weight_bits": 8, "state_bits": 16}, input_kind="real", x=x.numpy())
    probe = torch.randn(3, 29, 4, generator=gen, dtype=torch.float64)

    grads = []
    for forward in (qat, lambda x: reference_qat_readout(qat, x)):
        net.zero_grad(set_to_none=True)
        out = forward(x)
        (out * probe).sum().backward()
        grads.append((out.detach(), {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}))
    (out, g), (ref_out, ref_g) = grads
    assert torch.equal(out, ref_out)
    assert set(g) == set(ref_g) and any("rec.weight" in n for n in g)
    for name in ref_g:
        assert ref_g[name].abs().max() > 0, f"{name}: zero reference gradient"
        torch.testing.assert_close(g[name], ref_g[name], rtol=1e-5, atol=1e-6, msg=lambda m: f"{name}: {m}")
