"""PTQ export (quant/export.py, CONTRACT.md section 7) and the quantize / eval / sweep commands."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from skipcore.errors import ConfigError, SkipcoreError
from skipcore.golden import model as golden
from skipcore.golden.artifact import load, save
from skipcore.quant.config import LayerConfig, NetworkConfig, ReadoutConfig
from skipcore.quant.export import ExportOptions, export_artifact, input_spec_for, quantize_network
from skipcore.quant.network import SpikingNetwork

torch.set_num_threads(1)


def tiny_network(kind="lif", readout="sum", recurrence="src", seed=0, **layer):
    torch.manual_seed(seed)
    cfg = NetworkConfig(
        input_channels=2, classes=3,
        layers=[LayerConfig(6, kind=kind, recurrence=recurrence, span=2, max_span=3, **layer),
                LayerConfig(5, kind=kind, recurrence="none")],
        readout=ReadoutConfig(kind=readout),
    )
    return SpikingNetwork(cfg).eval()


# ---------------------------------------------------------------------------------------------
# the quantizer


@pytest.mark.parametrize("kind,readout", [("lif", "sum"), ("alif", "leaky"), ("lif", "leaky"), ("alif", "sum")])
def test_tiny_network_gives_valid_artifact(kind, readout, tmp_path):
    net = tiny_network(kind, readout)
    x = np.random.default_rng(0).normal(size=(4, 9, 2)).astype(np.float32)
    art = export_artifact(net, ExportOptions(), input_kind="real", x=x, provenance={"dataset": "toy"})
    assert art.validate() is art
    assert [l.kind for l in art.layers] == [kind, kind]
    assert [l.span for l in art.layers] == [2, 0] and art.layers[1].w_rec is None
    assert art.layers[0].input_shift == art.input.frac_bits and art.layers[1].input_shift == 0
    assert art.readout.kind == readout and (art.readout.decay is not None) == (readout == "leaky")
    assert art.provenance["dataset"] == "toy" and "created" in art.provenance
    for layer in art.layers:  # the largest |w| uses the full range (section 7)
        w = np.abs(layer.w_in) if layer.w_rec is None else np.abs(np.concatenate([layer.w_in, layer.w_rec], 1))
        assert w.max() == 127
        assert layer.threshold.min() >= 1
    assert np.abs(art.readout.w).max() == 127
    path = save(art, tmp_path / "m.skc")
    assert load(path) == art
    golden.run(art, x)


def test_asrc_exports_deployed_span():
    net = tiny_network("lif", "sum", recurrence="asrc")
    with torch.no_grad():
        net.layers[0].span_logits.copy_(torch.tensor([0.1, 0.2, 3.0]))
    art = export_artifact(net, input_kind="real", x=np.ones((1, 1, 2)))
    assert art.layers[0].span == 3


def test_rules_of_section_7_by_hand():
    net = tiny_network("alif", "leaky", tau_m=(10.0, 2.0))
    fp = net.float_params()
    opts = ExportOptions(weight_bits=6, state_bits=12, readout_bits=20, decay_bits=7)
    spec = input_spec_for("real", 2, opts, max_abs=1.0)
    art = export_artifact(fp, opts, input_spec=spec)
    layer, lp = art.layers[0], fp["layers"][0]
    alpha = lp["alpha"].double().numpy()
    w_in = (1 - alpha)[:, None] * lp["w_in"].double().numpy()
    w_rec = (1 - alpha)[:, None] * lp["w_rec"].double().numpy()
    scale = 31 / max(np.abs(w_in).max(), np.abs(w_rec).max())

    def rnd(v):
        return np.sign(v) * np.floor(np.abs(v) + 0.5)

    assert np.array_equal(layer.w_in, rnd(w_in * scale).astype(np.int64))
    assert np.array_equal(layer.w_rec, rnd(w_rec * scale).astype(np.int64))
    assert np.array_equal(layer.bias, rnd((1 - alpha) * lp["bias"].double().numpy() * scale).astype(np.int64))
    assert np.array_equal(layer.decay, np.minimum(rnd(alpha * 128), 127).astype(np.int64))
    assert np.array_equal(layer.rho, np.minimum(rnd(lp["rho"].double().numpy() * 128), 127).astype(np.int64))
    assert np.all(layer.threshold == max(1, int(rnd(lp["b0"] * scale))))
    assert np.all(layer.beta == int(rnd(lp["beta"] * scale)))
    assert layer.input_shift == spec.frac_bits == 6  # 1.0 * 2**6 <= 2**7 - 1 < 2**7


def test_round_half_away_from_zero():
    net = tiny_network("lif", "sum")
    with torch.no_grad():
        w = net.layers[0].fc.weight
        w.zero_()
        # max |w| = 127/128 gives scale = 128 exactly, so w * scale hits the halves exactly
        w[0, 0], w[1, 0], w[2, 0], w[3, 0], w[4, 0] = 127 / 128, 0.5 / 128, -0.5 / 128, -1.5 / 128, 2.5 / 128
        net.layers[0].rec.weight.zero_()
    art = export_artifact(net, input_kind="spike")
    assert art.layers[0].w_in[:5, 0].tolist() == [127, 1, -1, -2, 3]


def test_shift_decays():
    net = tiny_network("lif", "leaky", lam=0.75)
    with torch.no_grad():
        net.readout.tau_o.fill_(1.0 / math.log(2.0))  # alpha_o = 0.5 -> n = 1
    art = export_artifact(net, ExportOptions(decay_mode="shift"), input_kind="spike")
    assert art.layers[0].decay_mode == "shift" and np.all(art.layers[0].decay == 2)
    assert np.all(art.readout.decay == 1)
    net = tiny_network("lif", "sum", lam=0.0)  # no leak at all is not a shift decay: clamped to n = 1
    assert np.all(export_artifact(net, ExportOptions(decay_mode="shift"), input_kind="spike").layers[0].decay == 1)


def test_thresholds_clamp_to_state_range():
    net = tiny_network("lif", "sum", threshold=1e6)
    art = export_artifact(net, ExportOptions(state_bits=10), input_kind="spike")
    assert np.all(art.layers[0].threshold == 511)


def test_input_specs():
    assert input_spec_for("spike", 4).bits == 1
    assert input_spec_for("count", 3, x=np.array([0, 5, 9])).bits == 4
    assert input_spec_for("count", 3, ExportOptions(input_bits=6), x=np.array([0, 5])).bits == 6
    spec = input_spec_for("real", 1, x=np.array([-5.4, 4.5]))
    assert (spec.bits, spec.frac_bits) == (8, 4)  # 5.4 * 16 = 86 <= 127 < 5.4 * 32
    assert input_spec_for("real", 1, ExportOptions(input_bits=9), x=np.array([0.0, 255 / 256])).frac_bits == 8
    assert input_spec_for("real", 1, ExportOptions(input_frac_bits=3), x=np.array([9.0])).frac_bits == 3
    assert input_spec_for("real", 1, x=np.array([1e6])).frac_bits == 0  # too large: clamps, F = 0


@pytest.mark.parametrize("option,value,allowed", [
    ("weight_bits", 1, "2..16"), ("weight_bits", 17, "2..16"), ("state_bits", 7, "8..32"),
    ("state_bits", 33, "8..32"), ("readout_bits", 41, "8..40"), ("decay_bits", 0, "1..16"),
    ("decay_bits", 17, "1..16"), ("input_bits", 0, "1..16"), ("input_frac_bits", 17, "0..16"),
    ("weight_bits", 8.0, "2, 16"), ("trace_bits", 7, "8..16"), ("trace_bits", 17, "8..16"),
])
def test_bad_options(option, value, allowed):
    with pytest.raises(ConfigError, match=option) as info:
        export_artifact(tiny_network(), {option: value}, input_kind="spike")
    assert allowed in str(info.value)


def test_trace_bits_option_sets_the_alif_trace_width():
    """CONTRACT.md section 1: a new export's ALIF traces get the most fraction bits, or the ones asked."""
    net = tiny_network("alif", "leaky")
    assert export_artifact(net, {}, input_kind="spike").widths.trace_bits == 16   # D = 8: min(8 + 8, 60 - 24)
    art = export_artifact(net, {"trace_bits": 8}, input_kind="spike")              # version 1/2 arithmetic
    assert art.widths.trace_bits == 8
    wide = export_artifact(net, {"state_bits": 32, "readout_bits": 40, "decay_bits": 16}, input_kind="spike")
    assert wide.widths.trace_bits == 20                                             # 60 - 40
    with pytest.raises(ConfigError, match=r"^trace_bits=21 is impossible: the contract allows 16\.\.20$"):
        ExportOptions(state_bits=32, readout_bits=40, decay_bits=16, trace_bits=21).validate()


def test_bad_option_names_and_modes():
    with pytest.raises(ConfigError, match="decay_mode"):
        ExportOptions(decay_mode="log").validate()
    with pytest.raises(ConfigError, match="unknown export options: weights"):
        ExportOptions.from_dict({"weights": 8})
    with pytest.raises(ConfigError, match="input_bits=1"):
        input_spec_for("real", 1, ExportOptions(input_bits=1), x=np.ones(2))
    with pytest.raises(ConfigError, match="input kind"):
        export_artifact(tiny_network())


def test_export_equals_qat_integers():
    from skipcore.quant.qat import QATNetwork

    net = tiny_network("alif", "leaky")
    x = np.random.default_rng(1).normal(size=(8, 10, 2)).astype(np.float32)
    opts = ExportOptions(weight_bits=5, decay_mode="shift")
    a = export_artifact(net, opts, input_kind="real", x=x)
    b = QATNetwork(net, opts, input_kind="real", x=x).to_artifact()
    assert a.input == b.input and a.readout == b.readout and all(p == q for p, q in zip(a.layers, b.layers))
    qm = quantize_network(net.float_params(), opts, a.input)  # the plain float_params() dict gives the same
    assert qm.to_artifact().readout == a.readout


# ---------------------------------------------------------------------------------------------
# trained: float vs PTQ accuracy, and the commands


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from skipcore.datasets import load_dataset
    from skipcore.quant.train import train

    data = load_dataset("mnist1d", limit=400)
    folder = tmp_path_factory.mktemp("m1d")
    train("mnist1d-lif-src", out=folder, layers="24,16", epochs=4, loaded=data, progress=False, log=lambda m: None)
    return data, folder / "best.pt"


def test_float_vs_ptq_at_16_bits(run_dir):
    from skipcore.datasets import accuracy
    from skipcore.quant.checkpoint import load_checkpoint

    data, ckpt = run_dir
    network, _ = load_checkpoint(ckpt)
    x, y = data.test.x, data.test.y
    with torch.no_grad():
        float_pred = network.predict(network(torch.from_numpy(x))).numpy()
    opts = ExportOptions(weight_bits=16, state_bits=28, readout_bits=40, decay_bits=16, input_bits=16)
    art = export_artifact(network, opts, input_kind="real", x=data.train.x)
    res = golden.run(art, x)
    assert res.saturation == {}
    agree = float(np.mean(res.predictions == float_pred))
    assert agree >= 0.97, agree
    assert abs(accuracy(data.info, y, res.predictions) - accuracy(data.info, y, float_pred)) <= 0.02


def _cli(*argv):
    from skipcore.cli import main

    return main([str(a) for a in argv])


def test_quantize_eval_sweep_commands(run_dir, tmp_path, capsys):
    _, ckpt = run_dir
    out = tmp_path / "model.skc"
    assert _cli("quantize", ckpt, "-o", out, "--limit", 100, "--weight-bits", 6) == 0
    text = capsys.readouterr().out
    assert "golden (PTQ)" in text and "float" in text
    art = load(out)
    assert art.widths.weight_bits == 6
    prov = art.provenance
    assert prov["dataset"] == "mnist1d" and prov["preset"] == "mnist1d-lif-src" and prov["method"] == "ptq"
    assert len(prov["checkpoint_sha256"]) == 64 and prov["created"].endswith("+00:00")
    assert 0 <= prov["float_accuracy"] <= 1

    assert _cli("quantize", ckpt, "-o", out) == 2  # refuses to overwrite
    assert "--force" in capsys.readouterr().err
    assert _cli("quantize", ckpt, "-o", tmp_path / "x.skc", "--state-bits", 7) == 2
    assert "state_bits" in capsys.readouterr().err

    report = tmp_path / "eval.json"
    assert _cli("eval", out, "--limit", 60, "--json", report, "--no-progress") == 0
    result = json.loads(report.read_text())
    assert result["samples"] == 60 and 0 <= result["accuracy"] <= 1 and len(result["spike_rates"]) == 2
    assert _cli("eval", out, "--data", "mnist1d", "--split", "val", "--limit", 20, "--no-progress") == 0
    capsys.readouterr()

    sweep_dir = tmp_path / "sweep"
    assert _cli("sweep", ckpt, "-o", sweep_dir, "--weights", "3,8", "--states", "8,16", "--limit", 60) == 0
    sweep = json.loads((sweep_dir / "sweep.json").read_text())
    assert [r["weight_bits"] for r in sweep["weight_sweep"]] == [3, 8]
    assert [r["state_bits"] for r in sweep["state_sweep"]] == [8, 16]
    assert (sweep_dir / "sweep.png").stat().st_size > 1000


def test_quantize_auto_policy_and_the_policy_axis_of_sweep(run_dir, tmp_path, capsys):
    """``--scale-policy auto`` reports every candidate and the choice; sweep's policy axis; refusals."""
    _, ckpt = run_dir
    out = tmp_path / "auto.skc"
    assert _cli("quantize", ckpt, "-o", out, "--limit", 80, "--scale-policy", "auto") == 0
    text = capsys.readouterr().out
    assert "scale policy auto" in text and "(chosen)" in text and "clipped weights" in text
    auto = load(out).provenance["scale_policy_auto"]
    from skipcore.quant.ptq import AUTO_CANDIDATES

    assert auto["split"] == "val" and len(auto["candidates"]) == len(AUTO_CANDIDATES)
    best = max(auto["candidates"], key=lambda r: r["accuracy"])
    assert auto["chosen"] == next(r["policy"] for r in auto["candidates"] if r["accuracy"] == best["accuracy"])

    assert _cli("quantize", ckpt, "-o", tmp_path / "t.skc", "--limit", 40, "--scale-policy", "threshold",
                "--threshold-steps", 9) == 0
    capsys.readouterr()
    art = load(tmp_path / "t.skc")
    assert art.provenance["export_options"]["scale_policy"] == "threshold"
    # LIF thresholds 1.0: 2**9 steps each (the state keeps 8x headroom: 2**12 would be the cap), and
    # the largest weights need exponents to fit 8 bits at that scale
    assert min(int(l.threshold.min()) for l in art.layers) >= 2**9
    assert any(l.input_exp or l.recurrent_exp for l in art.layers)

    assert _cli("quantize", ckpt, "-o", tmp_path / "n.skc", "--scale-policy", "auto", "--no-eval") == 2
    assert "--no-eval" in capsys.readouterr().err
    assert _cli("quantize", ckpt, "-o", tmp_path / "n.skc", "--scale-policy", "percentile", "--percentile", 20) == 2
    assert "percentile" in capsys.readouterr().err

    sweep_dir = tmp_path / "psweep"
    assert _cli("sweep", ckpt, "-o", sweep_dir, "--weights", "8", "--states", "16", "--limit", 40,
                "--policies", "max,threshold,percentile") == 0
    sweep = json.loads((sweep_dir / "sweep.json").read_text())
    assert [r["scale_policy"] for r in sweep["weight_sweep"]] == ["max", "threshold k=6", "percentile 99.9"]
    assert all("clipped" in r for r in sweep["state_sweep"])
    capsys.readouterr()
    assert _cli("sweep", ckpt, "-o", tmp_path / "bad", "--policies", "max,auto") == 2
    assert "auto" in capsys.readouterr().err


def test_eval_rejects_mismatched_data(run_dir, tmp_path, capsys):
    from skipcore.evaluate import check_data
    from skipcore.datasets import DatasetInfo

    _, ckpt = run_dir
    out = tmp_path / "m.skc"
    assert _cli("quantize", ckpt, "-o", out, "--no-eval") == 0
    art = load(out)
    with pytest.raises(SkipcoreError, match="4 input channels, the artifact expects 1"):
        check_data(art, DatasetInfo("ecg", 4, 1301, 6, True, "spike", 10))
    npz = tmp_path / "bad.npz"
    np.savez(npz, x=np.zeros((10, 40, 3), np.float32), y=np.arange(10) % 2)
    capsys.readouterr()
    art.provenance.pop("dataset")
    save(art, tmp_path / "anon.skc")
    assert _cli("eval", tmp_path / "anon.skc", "--data", npz, "--no-progress") == 2
    assert "does not match the artifact" in capsys.readouterr().err
    assert _cli("eval", tmp_path / "anon.skc", "--no-progress") == 2
    assert "names no dataset" in capsys.readouterr().err


def test_eval_needs_no_torch(run_dir, tmp_path):
    import subprocess
    import sys

    _, ckpt = run_dir
    out = tmp_path / "m.skc"
    assert _cli("quantize", ckpt, "-o", out, "--no-eval") == 0
    code = ("import sys; from skipcore.cli import main; "
            f"rc = main(['eval', {str(out)!r}, '--limit', '10', '--no-progress']); "
            "assert rc == 0, rc; assert 'torch' not in sys.modules, 'eval imported torch'")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
