"""Training loop, checkpoints, resume and the ``skipcore train`` command (tiny and fast)."""
import json

import numpy as np
import pytest
import torch

from skipcore import cli
from skipcore.datasets import Dataset, DatasetInfo, Split
from skipcore.errors import ConfigError, SkipcoreError
from skipcore.quant.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from skipcore.quant.config import LayerConfig, NetworkConfig
from skipcore.quant.network import SpikingNetwork
from skipcore.quant.presets import PRESETS, resolve
from skipcore.quant.train import train, train_run

torch.set_num_threads(1)


def toy_dataset(n=96, steps=12, seed=0) -> Dataset:
    """Class = sign of the input at step 2, followed by noise (needs memory over ~10 steps)."""
    rng = np.random.default_rng(seed)

    def split(m):
        y = rng.integers(0, 2, m)
        x = rng.normal(0, 0.3, (m, steps, 2)).astype(np.float32)
        x[:, 2, 0] = np.where(y == 1, 3.0, -3.0)
        return Split(x, y)

    info = DatasetInfo("toy", channels=2, steps=steps, classes=2, per_step=False, input_kind="real")
    return Dataset(info, split(n), split(32), split(32))


TINY = dict(layers=[dict(neurons=16, kind="lif", recurrence="asrc", max_span=3),
                    dict(neurons=8, kind="lif", recurrence="src", span=2)],
            readout=dict(kind="sum"), dropout=0.2)


def tiny_train(out, epochs=3, **kw):
    _, cfg = resolve("mnist1d-lif-asrc", epochs=epochs, batch=32, lr=5e-3, **kw)
    return train_run(TINY, cfg, out=out, loaded=toy_dataset(), progress=False, log=lambda m: None)


def test_short_training_lowers_the_loss(tmp_path):
    summary = tiny_train(tmp_path / "run", epochs=4)
    hist = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(hist) == 4
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert summary["test_acc"] >= 0.0 and summary["epochs"] == 4
    assert hist[-1]["asrc_tau"] == pytest.approx(0.96 ** 3)
    net, ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert float(net.layers[0].tau) == pytest.approx(0.96 ** 4)
    assert {"best.pt", "last.pt", "history.json", "summary.json"} <= {p.name for p in (tmp_path / "run").iterdir()}
    best = read_checkpoint(tmp_path / "run" / "best.pt")
    assert best["metrics"]["test_acc"] == summary["test_acc"]
    assert best["dataset"]["name"] == "toy"


def test_resume_equals_uninterrupted_run(tmp_path):
    tiny_train(tmp_path / "full", epochs=3)

    def stop_after_first_epoch(msg):
        if msg.startswith("epoch   1/"):
            raise KeyboardInterrupt

    _, cfg = resolve("mnist1d-lif-asrc", epochs=3, batch=32, lr=5e-3)
    with pytest.raises(KeyboardInterrupt):
        train_run(TINY, cfg, out=tmp_path / "cut", loaded=toy_dataset(), progress=False, log=stop_after_first_epoch)
    assert read_checkpoint(tmp_path / "cut" / "last.pt")["epoch"] == 1
    train("ignored", out=tmp_path / "cut", resume=True, loaded=toy_dataset(), progress=False, log=lambda m: None)
    a = read_checkpoint(tmp_path / "full" / "last.pt")
    b = read_checkpoint(tmp_path / "cut" / "last.pt")
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert strip(a["history"]) == strip(b["history"])


def test_checkpoint_round_trip_weights_only(tmp_path):
    torch.manual_seed(0)
    cfg = NetworkConfig(input_channels=2, classes=3, layers=[LayerConfig(6, kind="alif"), LayerConfig(4, recurrence="asrc", max_span=3)])
    net = SpikingNetwork(cfg)
    net.eval()
    path = save_checkpoint(tmp_path / "c.pt", network=net, metrics={"acc": 0.5}, preset="x")
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "skipcore-checkpoint" and raw["version"] == 1
    again, data = load_checkpoint(path)
    x = torch.randn(2, 9, 2)
    assert torch.equal(net(x), again(x))
    assert again.config == cfg and data["metrics"] == {"acc": 0.5}
    assert not list(tmp_path.glob(".*tmp"))


def test_bad_checkpoints_give_clear_errors(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(SkipcoreError, match="not a readable skipcore checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"state_dict": {}}, tmp_path / "foreign.pt")
    with pytest.raises(SkipcoreError, match="not a skipcore checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(SkipcoreError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_run_folder_is_not_clobbered(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    (out / "best.pt").write_text("the user's own checkpoint")  # where a run writes (skipcore/outputs.py)
    with pytest.raises(ConfigError, match="--force"):
        tiny_train(out, epochs=1)
    _, cfg = resolve("mnist1d-lif-asrc", epochs=1)
    with pytest.raises(ConfigError, match="not written by skipcore"):
        train_run(TINY, cfg, out=out, loaded=toy_dataset(), progress=False, log=lambda m: None, force=True)
    assert (out / "keep.txt").read_text() == "mine"
    assert (out / "best.pt").read_text() == "the user's own checkpoint"


def test_presets_resolve_and_overrides():
    for name in PRESETS:
        net, cfg = resolve(name)
        assert net["layers"] and cfg.epochs >= 1
    net, cfg = resolve("mnist1d-lif-src", layers="32,16,8", spans="1,0,3", epochs=2, lr=0.5)
    assert [l["neurons"] for l in net["layers"]] == [32, 16, 8]
    assert [(l["recurrence"], l["span"]) for l in net["layers"]] == [("src", 1), ("none", 0), ("src", 3)]
    assert (cfg.epochs, cfg.lr) == (2, 0.5)
    net, _ = resolve("mnist1d-lif-src", max_span=6, neuron="alif")
    assert all(l["recurrence"] == "asrc" and l["max_span"] == 6 and l["kind"] == "alif" for l in net["layers"])
    with pytest.raises(ConfigError, match="2 spans for 3 layers"):
        resolve("mnist1d-lif-src", layers="4,4,4", spans="1,1")
    ecg, ecg_cfg = resolve("srnn-ecg")
    assert ecg["layers"][0]["beta"] == 0.0 and ecg["layers"][0]["b0"] == 0.1 and ecg_cfg.batch == 64


def test_cli_train_small_run(tmp_path, capsys):
    out = tmp_path / "tmp"
    rc = cli.main(["train", "--preset", "mnist1d-lif-src", "--epochs", "1", "--limit", "200", "--out", str(out),
                   "--no-progress", "--threads", "1"])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["samples"]["train"] <= 200 and summary["epochs"] == 1
    assert '"test_acc"' in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--preset", "nope"], "unknown preset 'nope'"),
    (["--layers", "64,x"], "--layers must be a comma-separated list of integers"),
    (["--layers", "64,0"], "--layers needs positive neuron counts"),
])
def test_cli_train_clean_errors(tmp_path, capsys, argv, message):
    rc = cli.main(["train", *argv, "--out", str(tmp_path / "o"), "--limit", "10", "--epochs", "1"])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and "Traceback" not in err


def test_demo_train_step(tmp_path):
    """The demo's training step alone (the whole-flow demo is tested with the later stages)."""
    import argparse

    from skipcore.commands import demo

    parser = argparse.ArgumentParser()
    demo.add_arguments(parser)
    args = parser.parse_args(["--quick", "--out", str(tmp_path / "demo"), "--no-progress"])
    ctx = demo.DemoContext(out=tmp_path / "demo", args=args)
    result = demo.step_train(ctx)
    assert result["epochs"] == 2 and result["preset"] == demo.DEMO_PRESET
    assert 0.0 <= result["float_test_acc"] <= 1.0
    assert (tmp_path / "demo" / "train" / "best.pt").is_file()
    other = tmp_path / "other"
    (other / "train").mkdir(parents=True)
    (other / "train" / "x.txt").write_text("x")
    for force in (False, True):  # a step folder of the user's is never replaced
        with pytest.raises(ConfigError, match="train"):
            demo._check_out(other, force=force)
    assert (other / "train" / "x.txt").read_text() == "x"


def test_non_finite_gradient_stops_training(tmp_path):
    """A membrane that grows to inf (STC with A = 1 + tanh(4) ~ 2) keeps the loss finite but makes the
    gradients NaN: training stops with the divergence message instead of turning every weight into NaN."""
    net = dict(layers=[dict(neurons=8, kind="stc", recurrence="src", span=1,
                            options={"gate_groups": 8, "gate_bias_a": 4.0})],
               readout=dict(kind="sum"))
    _, cfg = resolve("mnist1d-stc", epochs=1, batch=32, lr=1e-3)
    with pytest.raises(ConfigError, match="training diverged at epoch 1 \\(a gradient is not finite\\)"):
        train_run(net, cfg, out=tmp_path / "run", loaded=toy_dataset(steps=200), progress=False, log=lambda m: None)
