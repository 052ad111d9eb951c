"""`skipcore train --qat` ends in a valid artifact whose golden model runs on the dataset."""
import json

import numpy as np
import pytest
import torch

from skipcore.cli import main
from skipcore.golden.artifact import load
from skipcore.golden.model import run


def test_train_then_qat_writes_an_artifact(tmp_path, monkeypatch):
    monkeypatch.setenv("SKIPCORE_CACHE", str(tmp_path / "cache"))
    torch.set_num_threads(1)
    out = tmp_path / "run"
    rc = main(["train", "--preset", "mnist1d-lif-src", "--epochs", "1", "--limit", "64", "--layers", "8,8",
               "--out", str(out), "--qat", "--qat-epochs", "1", "--weight-bits", "6", "--no-progress"])
    assert rc == 0
    art = load(out / "model.skc")
    assert art.widths.weight_bits == 6
    assert [l.neurons for l in art.layers] == [8, 8]
    summary = json.loads((out / "qat_summary.json").read_text())
    assert 0.0 <= summary["golden_test_acc"] <= 1.0
    res = run(art, np.zeros((2, 40, 1), dtype=np.float32))
    assert res.readout.shape == (2, 40, 10)


def test_qat_rejects_impossible_width(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SKIPCORE_CACHE", str(tmp_path / "cache"))
    rc = main(["train", "--preset", "mnist1d-lif-src", "--epochs", "1", "--limit", "64", "--layers", "4",
               "--out", str(tmp_path / "r"), "--qat", "--state-bits", "40", "--no-progress"])
    assert rc == 2
    assert "state_bits" in capsys.readouterr().err


def test_qat_scale_policy_auto_starts_from_the_chosen_policy(tmp_path, monkeypatch, capsys):
    """``train --qat --scale-policy auto``: PTQ picks the policy on val, QAT's epoch 0 is exactly that
    policy's integers, and the artifact records the choice."""
    monkeypatch.setenv("SKIPCORE_CACHE", str(tmp_path / "cache"))
    torch.set_num_threads(1)
    out = tmp_path / "run"
    assert main(["train", "--preset", "mnist1d-alif", "--epochs", "1", "--limit", "64", "--layers", "8,8",
                 "--out", str(out), "--qat", "--qat-epochs", "1", "--scale-policy", "auto", "--no-progress"]) == 0
    summary = json.loads((out / "qat_summary.json").read_text())
    choices = summary["policy_choices"]
    assert len(choices) >= 3 and summary["scale_policy"] in [c["policy"] for c in choices]
    best = max(c["accuracy"] for c in choices)
    assert summary["ptq_val_acc"] == best == next(c["accuracy"] for c in choices
                                                   if c["policy"] == summary["scale_policy"])
    art = load(out / "model.skc")
    assert art.provenance["scale_policy_auto"]["chosen"] == summary["scale_policy"]
    assert art.provenance["export_options"]["scale_policy"] in ("max", "threshold", "percentile")
    assert summary["scale_policy"] in capsys.readouterr().out


def test_qat_finetune_keeps_a_named_policy(tmp_path):
    """QAT from the threshold policy: small thresholds keep their steps, the exponents carry the large
    weights, and the written artifact is what the QAT forward pass computed (golden-checked)."""
    from skipcore.quant.export import ExportOptions
    from skipcore.quant.finetune import qat_finetune

    ckpt, data = _imported_srnn_and_toy_data(tmp_path, input_gain=20.0)
    for policy, thresholds_at_least in (("threshold", 64), ("max", 0)):
        opts = ExportOptions(scale_policy=policy)
        path = qat_finetune(ckpt, data, tmp_path / policy, epochs=1, lr=1e-3, export_options=opts, batch=16,
                            progress=False, log=lambda m: None)
        art = load(path)
        summary = json.loads((tmp_path / policy / "qat_summary.json").read_text())
        assert summary["scale_policy"].split()[0] == policy and summary["policy_choices"] is None
        assert art.provenance["export_options"]["scale_policy"] == policy
        exps = [art.layers[0].input_exp, art.readout.weight_exp]
        assert (max(exps) > 0) == (policy == "threshold"), exps
        assert int(art.layers[0].threshold.min()) >= thresholds_at_least


def test_width_options_without_qat_are_refused(tmp_path, capsys):
    rc = main(["train", "--preset", "mnist1d-lif-src", "--epochs", "1", "--out", str(tmp_path / "r"),
               "--scale-policy", "threshold", "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "--qat" in err and "Traceback" not in err and not (tmp_path / "r").exists()


def test_qat_stops_on_a_non_finite_gradient(tmp_path, monkeypatch):
    """A finite loss whose gradient is NaN stops QAT with the divergence message, not NaN weights."""
    from skipcore.errors import ConfigError
    from skipcore.quant.finetune import qat_finetune
    from skipcore.quant.qat import QATNetwork

    ckpt, data = _imported_srnn_and_toy_data(tmp_path)
    logits = QATNetwork.logits
    # + 0 * sqrt(0 * out): the forward value is unchanged, the gradient is 0 * inf = NaN
    monkeypatch.setattr(QATNetwork, "logits",
                        lambda self, out, *a: logits(self, out, *a) + 0.0 * torch.sqrt(0.0 * logits(self, out, *a)))
    with pytest.raises(ConfigError, match=r"QAT diverged at epoch 1 \(a gradient is not finite\)"):
        qat_finetune(ckpt, data, tmp_path / "qat", epochs=1, lr=1e-3, batch=16, progress=False, log=lambda m: None)


def _imported_srnn_and_toy_data(tmp_path, input_gain=1.0):
    """An official SRNN (3 -> 10 -> 4, b0 0.1, beta 1.8) imported as a checkpoint, and a toy spike data set."""
    from skipcore.datasets import Dataset, DatasetInfo, Split
    from skipcore.quant.importers import save_imported
    from skipcore.quant.importers.official import import_srnn
    from test_import_official import OfficialSRNN

    torch.manual_seed(0)
    official = OfficialSRNN(3, 10, 4, b_j0=0.1, beta_h=1.8, beta_o=1.8)
    with torch.no_grad():
        official.i2h.weight.mul_(input_gain)
    imported = import_srnn({k: v.float() for k, v in official.state_dict().items()}, {"b_j0": 0.1, "beta": 1.8})
    ckpt = save_imported(imported, tmp_path / "imported.pt", input_kind="spike")
    rng = np.random.default_rng(0)

    def split(n):
        return Split((rng.random((n, 30, 3)) < 0.3).astype(np.float32), rng.integers(0, 4, n))

    return ckpt, Dataset(DatasetInfo("toy", 3, 30, 4, False, "spike", 0), split(48), split(16), split(16))
