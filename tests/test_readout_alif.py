"""The spiking ALIF output readout (CONTRACT.md 4.3): golden against a per-class Python reference,
QAT equals golden, the float readout trains, export, config checks."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from skipcore.errors import ConfigError
from skipcore.golden import artifact as A
from skipcore.golden.artifact import ArtifactError, Widths
from skipcore.golden.model import run
from skipcore.golden.random import random_artifact, random_inputs
from skipcore.quant.config import LayerConfig, NetworkConfig, ReadoutConfig
from skipcore.quant.export import export_artifact
from skipcore.quant.network import SpikingNetwork

from test_qat_equivalence import assert_same

torch.set_num_threads(1)


def reference_readout(art, last_spikes):
    """Section 4.3 with Python ints, one class at a time; last_spikes (B, T, N)."""
    r, w = art.readout, art.widths
    D, R, T = w.decay_bits, w.readout_bits, w.trace_bits
    lo, hi = -(1 << (R - 1)), (1 << (R - 1)) - 1
    clamp = lambda v: min(max(v, lo), hi)  # noqa: E731
    batch, steps, _ = last_spikes.shape
    out = np.zeros((batch, steps, r.classes), dtype=np.int64)
    for bt in range(batch):
        for c in range(r.classes):
            u = b = q = 0
            alpha, rho, b0, beta = (int(r.decay[c]), int(r.rho[c]), int(r.threshold[c]), int(r.beta[c]))
            for t in range(steps):
                acc = int(r.bias[c]) + sum(int(r.w_shifted[c, j]) * int(last_spikes[bt, t, j]) for j in range(r.w.shape[1]))
                b = ((rho * b) >> D) + q * (((1 << D) - rho) << (T - D))
                big_b = clamp(b0 + ((beta * b) >> T))
                du = (alpha * u) >> D if r.decay_mode == "mult" else u - (u >> alpha)
                u = clamp(du + acc - q * big_b)
                q = int(u > big_b)
                out[bt, t, c] = u
    return out


@pytest.mark.parametrize("seed", range(6))
def test_alif_readout_golden_matches_the_reference(seed):
    rng = np.random.default_rng(700 + seed)
    art = random_artifact(rng, layer_sizes=[5], kinds=["lif"], spans=[1], readout_kind="alif",
                          saturating=seed % 2 == 1)
    x = random_inputs(rng, art, 2, 12)
    res = run(art, x, traces=True)
    assert np.array_equal(res.readout, reference_readout(art, res.spikes[-1]))


def test_alif_readout_round_trips_and_is_checked(tmp_path):
    art = random_artifact(np.random.default_rng(3), layer_sizes=[4], kinds=["alif"], spans=[0], readout_kind="alif")
    assert A.load(A.save(art, tmp_path / "m.skc")) == art
    art.readout.beta = None
    with pytest.raises(ArtifactError,
                       match=r"^readout\.beta: missing: a alif readout needs decay, rho, threshold, beta"):
        art.validate()


def test_qat_equals_golden_with_the_alif_readout_at_full_width():
    rng = np.random.default_rng(9)
    for mode in ("mult", "shift"):
        art = random_artifact(rng, widths=Widths(16, 32, 40, 16), readout_kind="alif", decay_mode=mode,
                              layer_sizes=[6, 4], kinds=["stc", "alif"], spans=[1, 2], saturating=True)
        art.readout.beta = np.full(art.readout.classes, 2**39 - 1, dtype=np.int64)  # beta * b passes 2**53
        art.validate()
        assert_same(art, random_inputs(rng, art, batch=3, steps=15), label=f"alif readout {mode}")


def test_float_alif_readout_is_the_membrane_and_exports():
    torch.manual_seed(0)
    cfg = NetworkConfig(input_channels=2, classes=3, layers=[LayerConfig(5, kind="lif")],
                        readout=ReadoutConfig(kind="alif", mode="per_step", tau_o=(20.0, 0.0),
                                              options={"b0": 0.05, "beta": 1.8, "tau_adp": [100.0, 0.0]}))
    net = SpikingNetwork(cfg)
    x = torch.rand(3, 10, 2)
    out = net(x)
    trace = out.readout if hasattr(out, "readout") else out
    trace.sum().backward()
    assert net.readout.tau_adp.grad is not None
    art = export_artifact(net, {"weight_bits": 8}, input_kind="real", x=x.numpy())
    assert art.readout.kind == "alif" and art.readout.rho is not None and art.readout.threshold.min() >= 1
    assert_same(art, x.numpy(), label="exported alif readout")
    with pytest.raises(ConfigError, match="unknown alif readout options: b1"):
        ReadoutConfig(kind="alif", options={"b1": 1.0})
    with pytest.raises(ConfigError, match=r"unknown readout 'spiky'; choose one of: sum, leaky, alif"):
        ReadoutConfig(kind="spiky")


@pytest.mark.parametrize("seed", range(3))
def test_fused_alif_readout_equals_the_plain_loop(seed):
    """The readout's fused loop (the ALIF layer's cell read through u) against autograd through
    ``alif_step``: the same membrane trace and the gradients of z, tau_o and tau_adp."""
    from skipcore.quant.neurons import ALIFState, alif_step
    from skipcore.quant.readouts import get as readout_kind

    torch.manual_seed(seed)
    cfg = NetworkConfig(input_channels=2, classes=4, layers=[LayerConfig(5, kind="lif")],
                        readout=ReadoutConfig(kind="alif", mode="per_step", tau_o=(6.0, 2.0),
                                              options={"b0": 0.2, "beta": 1.5, "tau_adp": [12.0, 3.0]}))
    readout = SpikingNetwork(cfg).double().readout
    kind = readout_kind("alif")
    gen = torch.Generator().manual_seed(seed)
    z = (torch.randn(3, 33, 4, generator=gen, dtype=torch.float64) * 2.0 + 0.5).requires_grad_()
    probe = torch.randn(3, 33, 4, generator=gen, dtype=torch.float64)

    def plain(z):
        p = kind.params(readout)
        state, out, spikes = ALIFState.zeros(3, 4, dtype=z.dtype), [], []
        for z_t in z.unbind(1):
            s, state = alif_step(z_t, state, p)
            out.append(state.u)
            spikes.append(s)
        plain.rate = float(torch.stack(spikes).detach().mean())
        return torch.stack(out, 1)

    results, names = [], []
    for forward in (lambda z: kind.forward(readout, z), plain):
        readout.zero_grad(set_to_none=True)
        z.grad = None
        u = forward(z)
        names.append(type(u.grad_fn).__name__)
        (u * probe).sum().backward()
        results.append((u.detach(), z.grad.clone(), readout.tau_o.grad.clone(), readout.tau_adp.grad.clone()))
    assert 0.05 < plain.rate < 0.95, plain.rate
    assert names[0] == "_MembraneLoopBackward" and names[1] != names[0]
    # the same equations and order as alif_step; addcmul may round its product-sum once, not twice
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-12, atol=1e-12)
    for got, want, name in zip(results[0][1:], results[1][1:], ("z", "tau_o", "tau_adp")):
        assert want.abs().max() > 0, name
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-11, msg=lambda m: f"{name}: {m}")
