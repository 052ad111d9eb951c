"""`skipcore train --qat` ends in a valid artifact whose golden model runs on the dataset."""
import json

import numpy as np
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
