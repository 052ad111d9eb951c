"""Import of the papers' official state dicts (quant/importers/official.py).

Each official module is rebuilt here from its published equations (reference/seed-models.md 1.2-1.5
and 2.2) with random weights under the official parameter names; its state_dict goes through
``skipcore import`` (file and library) and skipcore's float network must give the same spikes at
every step (float64), and the integer model (16-bit PTQ) must stay close to it.
"""
import numpy as np
import pytest
import torch
from torch import nn

from skipcore.golden import model as golden
from skipcore.quant.export import ExportOptions, export_artifact
from skipcore.quant.importers import ModelImportError, load_state_dict
from skipcore.quant.importers.official import import_asrc, import_srnn



class OfficialSRNN(nn.Module):
    """SRNN ECG network (one recurrent ALIF layer, spiking ALIF output), ``mem_update_adp`` order."""

    def __init__(self, c, n, m, b_j0=0.01, beta_h=1.8, beta_o=1.8, recurrent=True):
        super().__init__()
        self.i2h = nn.Linear(c, n)
        if recurrent:
            self.h2h = nn.Linear(n, n)
        self.h2o = nn.Linear(n, m)
        self.tau_m_h = nn.Parameter(torch.empty(n).normal_(20, 5).clamp(min=2))
        self.tau_adp_h = nn.Parameter(torch.empty(n).normal_(200, 25))
        self.tau_m_o = nn.Parameter(torch.empty(m).normal_(20, 5).clamp(min=2))
        self.tau_adp_o = nn.Parameter(torch.empty(m).normal_(100, 10))
        self.b_j0, self.beta_h, self.beta_o = b_j0, beta_h, beta_o
        self.double()

    def mem_update_adp(self, inputs, mem, spike, tau_adp, b, tau_m, beta):
        alpha = torch.exp(-1.0 / tau_m)
        ro = torch.exp(-1.0 / tau_adp)
        b = ro * b + (1 - ro) * spike
        big_b = self.b_j0 + beta * b
        mem = mem * alpha + (1 - alpha) * inputs - big_b * spike
        spike = (mem - big_b > 0).double()
        return mem, spike, b

    def forward(self, x):
        bsz, steps, _ = x.shape
        n, m = self.i2h.out_features, self.h2o.out_features
        mem, spike, b = (torch.zeros(bsz, n, dtype=torch.float64) for _ in range(3))
        mem_o, spike_o, b_o = (torch.zeros(bsz, m, dtype=torch.float64) for _ in range(3))
        hs, outs = [], []
        for t in range(steps):
            h_in = self.i2h(x[:, t]) + (self.h2h(spike) if hasattr(self, "h2h") else 0)
            mem, spike, b = self.mem_update_adp(h_in, mem, spike, self.tau_adp_h, b, self.tau_m_h, self.beta_h)
            mem_o, spike_o, b_o = self.mem_update_adp(self.h2o(spike), mem_o, spike_o, self.tau_adp_o, b_o,
                                                      self.tau_m_o, self.beta_o)
            hs.append(spike)
            outs.append(mem_o)
        return torch.stack(hs, 1), torch.stack(outs, 1)


class Container(nn.Module):
    """ASRC-SNN (adskip_/skip_)RecurrentContainer with its LIFNODE, eval mode."""

    def __init__(self, n, k, adaptive):
        super().__init__()
        self.mlp = nn.Linear(n, n, bias=False)
        self.k = k
        if adaptive:
            self.skip_para = nn.Parameter(torch.randn(k, 1, 1))
            self.tau = nn.Parameter(torch.full((1,), 0.37), requires_grad=False)

    def span(self):
        return int(torch.argmax(self.skip_para.flatten())) + 1 if hasattr(self, "skip_para") else self.k

    def forward(self, x):  # x (B, T, N) = the Linear's output
        k = self.span()
        v = torch.zeros_like(x[:, 0])
        y = [torch.zeros_like(v)] * k  # y[j] = S[t-1-j]
        out = []
        for t in range(x.shape[1]):
            h = 0.5 * v + x[:, t] + self.mlp(y[k - 1])
            s = (h - 1.0 >= 0).double()
            v = h - 1.0 * s
            y = [s] + y[:-1]
            out.append(s)
        return torch.stack(out, 1)


class OfficialASRC(nn.Module):
    def __init__(self, c, sizes, m, k, adaptive=True):
        super().__init__()
        mods, width = [], c
        for n in sizes:
            mods += [nn.Linear(width, n), nn.Dropout(0.1), Container(n, k, adaptive)]
            width = n
        mods.append(nn.Linear(width, m))
        self.features = nn.Sequential(*mods).double()

    def forward(self, x):
        spikes = []
        h = x
        for mod in self.features[:-1]:
            h = mod(h)
            if isinstance(mod, Container):
                spikes.append(h)
        return spikes, self.features[-1](h).cumsum(1)


def _spike_input(batch, steps, c, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, steps, c, generator=g) < 0.3).double()


def _integer_close(network, x, float_spikes, float_pred):
    opts = ExportOptions(weight_bits=16, state_bits=28, readout_bits=40, decay_bits=16)
    art = export_artifact(network, opts, input_kind="spike")
    res = golden.run(art, x.numpy().astype(np.uint8), traces=True)
    agree = [float(np.mean(g == f.numpy())) for g, f in zip(res.spikes, float_spikes)]
    assert min(agree) >= 0.97, agree
    assert float(np.mean(res.predictions == float_pred.numpy())) >= 0.75


@pytest.mark.parametrize("recurrent", [True, False])
def test_srnn_state_dict_gives_the_same_spikes(tmp_path, recurrent):
    torch.manual_seed(1)
    c, n, m = 6, 24, 5
    official = OfficialSRNN(c, n, m, b_j0=0.1, beta_h=0.0, beta_o=1.8, recurrent=recurrent)
    with torch.no_grad():
        official.i2h.weight.mul_(3.0)
    path = tmp_path / "srnn.pth"
    torch.save(official.state_dict(), path)
    imported = import_srnn(load_state_dict(path), {"b_j0": 0.1, "beta": 0.0, "output_beta": 1.8})
    x = _spike_input(16, 60, c, 0)
    with torch.no_grad():
        ref_spikes, ref_mem = official(x)
        out = imported.network(x, record=True)
    assert ref_spikes.sum() > 20, "the test network must spike"
    assert torch.equal(out.spikes[0], ref_spikes)
    torch.testing.assert_close(out.readout, ref_mem, rtol=0, atol=1e-12)
    _integer_close(imported.network, x, out.spikes, imported.network.predict(out.readout))


@pytest.mark.parametrize("adaptive", [True, False])
def test_asrc_state_dict_gives_the_same_spikes(tmp_path, adaptive):
    torch.manual_seed(2)
    official = OfficialASRC(5, [20, 16], 4, k=4, adaptive=adaptive)
    with torch.no_grad():
        official.features[0].weight.mul_(2.0)
    path = tmp_path / "asrc.pt"
    torch.save({"state_dict": official.state_dict()}, path)
    imported = import_asrc(load_state_dict(path), None if adaptive else {"span": 4})
    spans = [official.features[2].span(), official.features[5].span()]
    assert imported.network.spans() == spans
    if adaptive:  # the temperature carries over (for ASRC training continued in skipcore)
        assert float(imported.network.layers[1].tau) == pytest.approx(0.37)
    x = _spike_input(16, 50, 5, 1)
    with torch.no_grad():
        ref_spikes, ref_logits = official.eval()(x)
        out = imported.network(x, record=True)
    assert sum(float(s.sum()) for s in ref_spikes) > 20
    for ours, theirs in zip(out.spikes, ref_spikes):
        assert torch.equal(ours, theirs)
    torch.testing.assert_close(out.readout, ref_logits, rtol=0, atol=1e-10)
    _integer_close(imported.network, x, out.spikes, imported.network.predict(out.readout))


def test_bad_state_dicts_are_refused_with_the_key(tmp_path):
    torch.manual_seed(0)
    sd = OfficialSRNN(3, 8, 2).state_dict()
    del sd["tau_m_h"]
    with pytest.raises(ModelImportError, match="tau_m_h"):
        import_srnn(sd)
    sd = OfficialSRNN(3, 8, 2).state_dict()
    sd["tau_adp_h"] = torch.ones(7)
    with pytest.raises(ModelImportError, match=r"tau_adp_h.*\(7,\).*\(8,\)"):
        import_srnn(sd)
    sd = OfficialSRNN(3, 8, 2).state_dict()
    sd["extra.weight"] = torch.ones(2)
    with pytest.raises(ModelImportError, match="extra.weight"):
        import_srnn(sd)
    with pytest.raises(ModelImportError, match="span"):
        import_asrc(OfficialASRC(3, [8], 2, k=3, adaptive=False).state_dict())
    with pytest.raises(ModelImportError, match="bj0 do not apply"):
        import_srnn(OfficialSRNN(3, 8, 2).state_dict(), {"bj0": 1})


def test_legacy_torch_format_loads_weights_only(tmp_path):
    official = OfficialSRNN(3, 8, 2)
    path = tmp_path / "legacy.pth"
    torch.save(official.state_dict(), path, _use_new_zipfile_serialization=False)
    sd = load_state_dict(path)
    assert sorted(sd) == sorted(official.state_dict())
    assert torch.equal(sd["h2h.weight"], official.h2h.weight.detach())


def test_pickled_code_is_refused_not_run(tmp_path):
    path = tmp_path / "whole.pt"
    torch.save(OfficialSRNN(3, 8, 2), path)  # a whole module: loading it would run pickled code
    with pytest.raises(ModelImportError, match="weights-only"):
        load_state_dict(path)
