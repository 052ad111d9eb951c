"""PTQ scale policies (CONTRACT.md section 7, quant/export.py, quant/ptq.py) and the weight exponents
they produce: an SRNN-style ALIF network with large weights next to a small threshold b0 = 0.1."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from skipcore.errors import ConfigError
from skipcore.golden import model as golden
from skipcore.quant.config import LayerConfig, NetworkConfig, ReadoutConfig
from skipcore.quant.export import ExportOptions, export_artifact
from skipcore.quant.network import SpikingNetwork
from skipcore.quant.ptq import choose_policy, policy_candidates
from skipcore.quant.qat import run_qat

# decays exactly representable in Q0.8 (alpha = 1 - 2**-4, rho = 1 - 2**-7): only the weights and
# thresholds are quantized, which is what the scale policy decides
TAU_M = -1 / math.log(1 - 2**-4)
TAU_ADP = -1 / math.log(1 - 2**-7)


def srnn_network(seed: int = 0, largest: float = 30.0) -> SpikingNetwork:
    """4 -> ALIF36 (k=1, b0 0.1, beta 1.8) -> 6 leaky per step, untrained: weights N(0, 0.5) with
    5 % of them large (10..30 in magnitude) and one exactly ``largest``."""
    torch.manual_seed(seed)
    cfg = NetworkConfig(
        input_channels=4, classes=6,
        layers=[LayerConfig(36, kind="alif", recurrence="src", span=1, b0=0.1, beta=1.8,
                            tau_m=(TAU_M, 0.0), tau_adp=(TAU_ADP, 0.0))],
        readout=ReadoutConfig(kind="leaky", mode="per_step", tau_o=(TAU_M, 0.0)), bias=True)
    net = SpikingNetwork(cfg).double().eval()
    with torch.no_grad():
        layer = net.layers[0]
        for w in (layer.fc.weight, layer.rec.weight):
            w.normal_(0, 0.5)
            big = torch.rand(w.shape) < 0.05
            w[big] = ((torch.rand(int(big.sum())) * 20 + 10) * torch.sign(torch.randn(int(big.sum())))).double()
        layer.fc.weight.view(-1)[0] = largest
        layer.fc.bias.zero_()
        r = net.readout.fc
        r.weight.normal_(0, 1.0)
        r.weight -= r.weight.mean(1, keepdim=True)
        r.bias.zero_()
    return net


class _Split:
    """A labelled split whose labels are the float network's own per-step predictions."""

    def __init__(self, net, x):
        self.x = x
        with torch.no_grad():
            self.y = net.predict(net(torch.as_tensor(x))).numpy()

    def __len__(self):
        return len(self.x)


def _agreement(art, split) -> float:
    return float(np.mean(golden.run(art, split.x).predictions == split.y))


def test_threshold_policy_keeps_the_threshold_and_the_exponent_absorbs_the_rest():
    net = srnn_network()
    w8 = dict(weight_bits=8, state_bits=16)
    plain = export_artifact(net, ExportOptions(**w8), input_kind="spike")
    kept = export_artifact(net, ExportOptions(**w8, scale_policy="threshold", threshold_steps=6), input_kind="spike")
    assert plain.layers[0].input_exp == plain.layers[0].recurrent_exp == 0
    # b0 = 0.1 keeps at least 2**6 steps; the largest folded weight still fits 8 bits through e >= 1
    assert int(kept.layers[0].threshold.min()) >= 2**6 > int(plain.layers[0].threshold.min())
    assert kept.layers[0].input_exp >= 1 and kept.layers[0].recurrent_exp >= 1
    assert 63 <= int(np.abs(kept.layers[0].w_in).max()) <= 127  # the smallest exponent that fits
    # the shifted weights stand for the same float weights at the finer state scale
    scale = kept.provenance["scales"]["layers"][0]
    folded = (1 - math.exp(-1 / TAU_M)) * net.layers[0].fc.weight.detach().numpy()
    assert np.max(np.abs(kept.layers[0].w_in_shifted / scale - folded)) <= 2 ** kept.layers[0].input_exp / scale
    assert kept.provenance["clipped_weights"] == {"layers": [0], "readout": 0}


def test_percentile_policy_counts_every_clipped_weight():
    net = srnn_network()
    art = export_artifact(net, ExportOptions(scale_policy="percentile", percentile=99.0), input_kind="spike")
    layer = art.layers[0]
    scale = art.provenance["scales"]["layers"][0]
    folded = (1 - math.exp(-1 / TAU_M)) * np.concatenate(
        [net.layers[0].fc.weight.detach().numpy(), net.layers[0].rec.weight.detach().numpy()], axis=1)
    expected = int(np.sum(np.floor(np.abs(folded) * scale + 0.5) > 127))
    assert expected > 0 and art.provenance["clipped_weights"]["layers"] == [expected]
    assert int(np.abs(layer.w_in).max()) == 127 and layer.input_exp == 0


def test_policy_options_are_checked():
    for bad in (dict(scale_policy="largest"), dict(threshold_steps=17), dict(percentile=30.0), dict(percentile=True)):
        with pytest.raises(ConfigError):
            ExportOptions(**bad).validate()
    with pytest.raises(ConfigError, match="chosen by PTQ"):
        export_artifact(srnn_network(), ExportOptions(scale_policy="auto"), input_kind="spike")


def test_qat_equals_golden_on_a_threshold_policy_export():
    net = srnn_network(seed=3)
    art = export_artifact(net, ExportOptions(scale_policy="threshold", threshold_steps=7), input_kind="spike")
    assert art.layers[0].input_exp > 0
    x = (np.random.default_rng(1).random((4, 40, 4)) < 0.2).astype(np.float64)
    g, q = golden.run(art, x, traces=True), run_qat(art, x)
    assert np.array_equal(g.readout, q["readout"]) and g.saturation == q["saturation"]


def test_auto_on_an_srnn_style_network_with_large_weights():
    """auto chooses on a validation set and is measured on separate inputs, both labelled by the float
    network's per-step predictions (float: 100 % by construction)."""
    net = srnn_network()
    rng = np.random.default_rng(0)
    val = _Split(net, (rng.random((24, 150, 4)) < 0.1).astype(np.float64))
    test = _Split(net, (rng.random((48, 150, 4)) < 0.1).astype(np.float64))
    assert np.bincount(test.y.ravel(), minlength=6).max() < 0.9 * test.y.size  # not a constant prediction
    from skipcore.datasets import DatasetInfo
    from skipcore.quant.export import input_spec_for
    from skipcore.quant.ptq import policy_label

    info = DatasetInfo("float-labels", 4, 150, 6, True, "spike", 0)
    chosen, art, rows = choose_policy(net, input_spec_for("spike", 4), ExportOptions(scale_policy="auto"), val, info)
    # every policy at the default trace (T = 16) and at T = D = 8 (the ALIF layer computes with
    # trace_bits), each with the float and the decay fold (ALIF and the leaky readout fold)
    assert len(rows) == 4 * len(policy_candidates(ExportOptions(scale_policy="auto")))
    best = max(r["accuracy"] for r in rows)
    assert policy_label(chosen) == next(r["policy"] for r in rows if r["accuracy"] == best)  # ties: the first
    assert art.widths.trace_bits == chosen.trace_bits
    assert _agreement(art, val) == best
    plain = export_artifact(net, ExportOptions(), input_kind="spike")
    auto_test, plain_test = _agreement(art, test), _agreement(plain, test)
    # auto never loses more than 1 pp against today's max policy on unseen inputs
    assert auto_test >= plain_test - 0.01, (chosen, auto_test, plain_test)


@pytest.mark.parametrize("steps", [5, 6, 7, 9])
def test_threshold_scale_is_a_power_of_two_multiple_of_the_max_scale(steps):
    """The threshold policy's state scale is scale_max * 2**s: the largest weight keeps the full
    8-bit range at its exponent (no bit lost to the exponent's power-of-two steps)."""
    net = srnn_network(seed=1)
    opts = dict(weight_bits=8, state_bits=16)
    plain = export_artifact(net, ExportOptions(**opts), input_kind="spike")
    kept = export_artifact(net, ExportOptions(**opts, scale_policy="threshold", threshold_steps=steps),
                           input_kind="spike")
    ratio = kept.provenance["scales"]["layers"][0] / plain.provenance["scales"]["layers"][0]
    s = round(math.log2(ratio))
    assert s >= 1 and ratio == pytest.approx(2.0**s, rel=1e-12)
    layer = kept.layers[0]
    peaks = [(int(np.abs(layer.w_in).max()), layer.input_exp), (int(np.abs(layer.w_rec).max()), layer.recurrent_exp)]
    assert (127, s) in peaks  # the matrix with the largest weight: full range at exponent s
    assert all(64 <= peak <= 127 and e <= s for peak, e in peaks)  # the other one: its smallest exponent
    # the smallest such multiple that gives b0 2**steps steps, unless the state's 8x headroom caps it
    b0 = int(layer.threshold.min())
    if steps < 9:
        assert 2**steps <= b0 <= 2 ** (steps + 1)
    else:
        assert b0 < 2**steps and 8 * int(layer.threshold.max()) <= 2**15  # capped, headroom kept


def _labelled_split(net, samples: int, seed: int) -> "_Split":
    return _Split(net, (np.random.default_rng(seed).random((samples, 60, 4)) < 0.1).astype(np.float64))


def _float_labels_info():
    from skipcore.datasets import DatasetInfo

    return DatasetInfo("float-labels", 4, 60, 6, True, "spike", 0)


def test_auto_tries_the_trace_bits_where_a_kind_computes_with_them():
    """An ALIF network: auto tries every policy at T = 16 (the default, first) and at T = D = 8,
    keeps the most accurate on the validation split and names the trace in the label. An explicit
    fold is kept: only the trace axis is searched."""
    from skipcore.quant.export import input_spec_for
    from skipcore.quant.ptq import AUTO_CANDIDATES, policy_label

    net = srnn_network(seed=2)
    val = _labelled_split(net, 12, 0)
    chosen, art, rows = choose_policy(net, input_spec_for("spike", 4), ExportOptions(scale_policy="auto", fold="float"),
                                      val, _float_labels_info())
    n = len(AUTO_CANDIDATES)
    assert [r["trace_bits"] for r in rows] == [16] * n + [8] * n and {r["fold"] for r in rows} == {"float"}
    assert chosen.fold == "float"
    assert [r["policy"] for r in rows[:2]] == ["max T=16", "threshold k=2 T=16"] and rows[n]["policy"] == "max T=8"
    best = max(r["accuracy"] for r in rows)
    first_best = next(r for r in rows if r["accuracy"] == best)
    assert policy_label(chosen) == first_best["policy"] and chosen.trace_bits == first_best["trace_bits"]
    assert art.widths.trace_bits == chosen.trace_bits and _agreement(art, val) == best
    # the same policy at the two traces is a different artifact, measured on its own
    coarse = export_artifact(net, ExportOptions(trace_bits=8), input_kind="spike")
    assert rows[n]["accuracy"] == _agreement(coarse, val) and "same_as" not in rows[n]


def test_auto_keeps_an_explicit_trace_bits_and_skips_the_trace_where_no_kind_uses_it():
    from skipcore.quant.export import input_spec_for
    from skipcore.quant.ptq import AUTO_CANDIDATES

    net = srnn_network(seed=2)
    val = _labelled_split(net, 6, 1)
    spec, info = input_spec_for("spike", 4), _float_labels_info()
    chosen, art, rows = choose_policy(net, spec, ExportOptions(scale_policy="auto", trace_bits=10, fold="float"),
                                      val, info)
    assert len(rows) == len(AUTO_CANDIDATES) and {r["trace_bits"] for r in rows} == {10}
    assert chosen.trace_bits == art.widths.trace_bits == 10 and all(r["policy"].endswith(" T=10") for r in rows)
    from skipcore.quant.ptq import trace_bits_candidates

    # the top of the range, then D (from the widths: D = 16, S = 16, R = 24 allows 16..24)
    assert trace_bits_candidates(ExportOptions(scale_policy="auto", decay_bits=16)) == (24, 16)
    assert trace_bits_candidates(ExportOptions(scale_policy="auto", trace_bits=8)) == ()

    # LIF layer and leaky readout: trace_bits changes no arithmetic, so it is not a candidate axis
    # (the leaky readout folds its decay, so the fold is: explicit here, see the next test)
    torch.manual_seed(0)
    lif = SpikingNetwork(NetworkConfig(
        input_channels=4, classes=6, layers=[LayerConfig(8, kind="lif", recurrence="src", span=1)],
        readout=ReadoutConfig(kind="leaky", mode="per_step"))).double().eval()
    assert not export_artifact(lif, ExportOptions(), input_kind="spike").uses_trace_bits
    chosen, _, rows = choose_policy(lif, spec, ExportOptions(scale_policy="auto", fold="decay"),
                                    _labelled_split(lif, 6, 2), info)
    assert len(rows) == len(AUTO_CANDIDATES) and chosen.trace_bits is None and chosen.fold == "decay"
    assert all(" T=" not in r["policy"] and r["policy"].endswith(" fold=decay") for r in rows)


def _lif_network(readout: str) -> SpikingNetwork:
    torch.manual_seed(0)
    return SpikingNetwork(NetworkConfig(
        input_channels=4, classes=6, layers=[LayerConfig(8, kind="lif", recurrence="src", span=1)],
        readout=ReadoutConfig(kind=readout, mode="per_step"))).double().eval()


def test_auto_tries_the_fold_only_where_a_kind_folds():
    """A leaky readout folds its decay: auto tries every policy with the float fold, then with the
    decay fold. LIF layers with a sum readout fold nothing: the fold is no candidate axis."""
    from skipcore.quant.export import input_spec_for, network_folds
    from skipcore.quant.ptq import AUTO_CANDIDATES, fold_candidates, policy_label

    spec, info, n = input_spec_for("spike", 4), _float_labels_info(), len(AUTO_CANDIDATES)
    leaky = _lif_network("leaky")
    assert network_folds(leaky) and network_folds(srnn_network()) and not network_folds(_lif_network("sum"))
    val = _labelled_split(leaky, 6, 3)
    chosen, art, rows = choose_policy(leaky, spec, ExportOptions(scale_policy="auto"), val, info)
    assert [r["fold"] for r in rows] == ["float"] * n + ["decay"] * n
    assert rows[0]["policy"] == "max" and rows[n]["policy"] == "max fold=decay"
    best = max(r["accuracy"] for r in rows)
    first_best = next(r for r in rows if r["accuracy"] == best)
    assert policy_label(chosen) == first_best["policy"] and chosen.fold == first_best["fold"]
    assert _agreement(art, val) == best
    # the decay fold changes the readout's integers here (its decay is not a multiple of 2**-8)
    float_fold = export_artifact(leaky, ExportOptions(fold="float"), input_kind="spike")
    decay_fold = export_artifact(leaky, ExportOptions(fold="decay"), input_kind="spike")
    assert not np.array_equal(float_fold.readout.w, decay_fold.readout.w)
    assert export_artifact(leaky, ExportOptions(), input_kind="spike").readout == float_fold.readout  # the default

    plain = _lif_network("sum")
    chosen, _, rows = choose_policy(plain, spec, ExportOptions(scale_policy="auto"), _labelled_split(plain, 6, 4), info)
    assert len(rows) == n and {r["fold"] for r in rows} == {"float"} and chosen.fold is None
    assert all("fold" not in r["policy"] for r in rows)
    assert fold_candidates(ExportOptions(scale_policy="auto")) == ("float", "decay")
    assert fold_candidates(ExportOptions(scale_policy="auto", fold="float")) == ()
    # the candidate order: policies, then traces, then folds (ties keep the defaults)
    cands = policy_candidates(ExportOptions(scale_policy="auto"), trace_bits=True, fold=True)
    assert len(cands) == 4 * n and [(c.trace_bits, c.fold) for c in cands[::n]] == [
        (16, "float"), (8, "float"), (16, "decay"), (8, "decay")]
    assert policy_candidates(ExportOptions(scale_policy="max"), trace_bits=True, fold=True) == [
        ExportOptions(scale_policy="max")]


def test_the_decay_fold_scales_each_row_by_the_integer_decays_complement():
    """Hand-checked: an ALIF layer of 2 neurons, alpha = 0.9 and 0.8, w_in = [1, 0.5], max policy, D = 8.
    float fold: rows 0.1 and 0.1 -> both 127. decay fold: a = round(230.4) = 230 and round(204.8) = 205,
    rows 1 * 26/256 and 0.5 * 51/256 -> scale 127 / (26/256), row 1 = 127 * 25.5 / 26 = 124.56 -> 125."""
    from skipcore.quant.export import fold_factor, live_float_params

    torch.manual_seed(0)
    net = SpikingNetwork(NetworkConfig(
        input_channels=1, classes=2, layers=[LayerConfig(2, kind="alif", recurrence="none", b0=0.1, beta=1.8)],
        readout=ReadoutConfig(kind="sum", mode="sequence"))).double().eval()
    with torch.no_grad():
        fp = live_float_params(net)
    lp = fp["layers"][0]
    lp["alpha"] = torch.tensor([0.9, 0.8], dtype=torch.float64)
    lp["w_in"] = torch.tensor([[1.0], [0.5]], dtype=torch.float64)
    lp["bias"] = torch.tensor([0.05, 0.0], dtype=torch.float64)
    arts = {f: export_artifact(fp, ExportOptions(fold=f), input_kind="spike") for f in ("float", "decay")}
    assert arts["float"].layers[0].w_in.ravel().tolist() == [127, 127]
    assert arts["decay"].layers[0].w_in.ravel().tolist() == [127, 125]
    # the bias row gets the same factor: 0.05 * 26/256 * 127 / (26/256) = 6.35 -> 6 (float: 0.005 * 1270 = 6.35)
    assert int(arts["decay"].layers[0].bias[0]) == 6
    assert arts["decay"].provenance["scales"]["layers"][0] == pytest.approx(127 / (26 / 256))
    assert arts["float"].provenance["scales"]["layers"][0] == pytest.approx(1270)
    # the integer decays themselves do not depend on the fold
    assert arts["float"].layers[0].decay.tolist() == arts["decay"].layers[0].decay.tolist() == [230, 205]
    assert arts["decay"].provenance["export_options"]["fold"] == "decay"
    alpha = torch.tensor([0.9, 0.8], dtype=torch.float64)
    assert fold_factor(alpha, ExportOptions(fold="decay")).tolist() == [26 / 256, 51 / 256]
    # shift mode: the complement of v - (v >> n) is 2**-n (n = round(-log2(0.1)) = 3, round(-log2(0.2)) = 2)
    assert fold_factor(alpha, ExportOptions(fold="decay", decay_mode="shift")).tolist() == [1 / 8, 1 / 4]
    assert fold_factor(alpha, ExportOptions()).tolist() == pytest.approx([0.1, 0.2])
    with pytest.raises(ConfigError, match=r"^fold: unknown value 'quant'; choose one of float, decay$"):
        ExportOptions(fold="quant").validate()


def test_an_alif_readout_alone_makes_the_trace_bits_matter():
    torch.manual_seed(0)
    net = SpikingNetwork(NetworkConfig(
        input_channels=4, classes=6, layers=[LayerConfig(8, kind="lif", recurrence="src", span=1)],
        readout=ReadoutConfig(kind="alif", mode="per_step"))).double().eval()
    art = export_artifact(net, ExportOptions(), input_kind="spike")
    assert art.uses_trace_bits and art.readout.kind == "alif" and art.layers[0].kind == "lif"
    assert " T16" in art.summary()


def test_qat_quantizes_with_the_decay_fold_like_ptq():
    """QAT runs the same quantizer: with ``fold="decay"`` its integers are PTQ's, and they differ from
    the float fold's where the time constants are not exact in Q0.8."""
    from skipcore.quant.qat import QATNetwork

    net = srnn_network(seed=3)
    with torch.no_grad():
        net.layers[0].tau_m.mul_(torch.linspace(1.1, 1.9, net.layers[0].tau_m.numel()).view_as(net.layers[0].tau_m))
    opts = ExportOptions(fold="decay", scale_policy="threshold", threshold_steps=7)
    ptq = export_artifact(net, opts, input_kind="spike")
    q = QATNetwork(net, opts, input_kind="spike").to_artifact({})
    assert q.layers == ptq.layers and q.readout == ptq.readout
    float_fold = export_artifact(net, replace(opts, fold="float"), input_kind="spike")
    assert not np.array_equal(float_fold.layers[0].w_in, ptq.layers[0].w_in)
