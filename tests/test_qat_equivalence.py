"""The QAT forward pass (quant/qat.py) equals the golden model bit for bit.

Every spike of every layer, every state (v, u, b), every readout value at every step, the
predictions and the saturation counts must be identical.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from skipcore.golden import model as golden
from skipcore.golden.artifact import Widths
from skipcore.golden.random import random_artifact, random_inputs
from skipcore.quant.qat import QATNetwork, run_qat

torch.set_num_threads(1)


def assert_same(art, x, *, quantized: bool = False, label: str = "") -> None:
    g = golden.run(art, x, traces=True, quantized=quantized)
    q = run_qat(art, x, quantized=quantized)
    for i, (gs, qs) in enumerate(zip(g.spikes, q["spikes"])):
        if not np.array_equal(gs, qs):
            b, t, n = np.argwhere(gs != qs)[0]
            pytest.fail(f"{label} spikes differ first at layer {i} neuron {n} step {t} (batch {b}); {art.summary()}")
        for key in g.states[i]:
            if not np.array_equal(g.states[i][key], q["states"][i][key]):
                b, t, n = np.argwhere(g.states[i][key] != q["states"][i][key])[0]
                pytest.fail(f"{label} state {key} differs first at layer {i} neuron {n} step {t}; {art.summary()}")
    if not np.array_equal(g.readout, q["readout"]):
        b, t, c = np.argwhere(g.readout != q["readout"])[0]
        pytest.fail(f"{label} readout differs first at class {c} step {t} (batch {b}); {art.summary()}")
    assert np.array_equal(g.predictions, q["predictions"]), label
    assert g.saturation == q["saturation"], label


def _widths(rng, extreme: bool) -> Widths | None:
    if not extreme:
        return None
    top = Widths(
        weight_bits=int(rng.choice([2, 3, 8, 16])),
        state_bits=int(rng.choice([8, 9, 24, 32])),
        readout_bits=int(rng.choice([8, 12, 32, 40])),
        decay_bits=int(rng.choice([1, 2, 8, 16])),
    )
    # the ALIF trace's fraction bits: the top of their range (a new export) or D (version 1/2)
    return top if rng.integers(3) else Widths(top.weight_bits, top.state_bits, top.readout_bits, top.decay_bits,
                                                 top.decay_bits)


CASES = [
    # (kinds, spans, input kind, decay mode)
    (["lif"], [0], "real", "mult"),
    (["lif"], [1], "spike", "shift"),
    (["alif"], [0], "count", "mult"),
    (["alif"], [3], "real", "shift"),
    (["lif", "alif"], [5, 1], "spike", "mult"),
    (["alif", "lif"], [2, 0], "real", "mult"),
    (["lif", "lif", "alif"], [1, 4, 6], "count", "shift"),
    (["alif", "alif", "alif"], [7, 0, 2], "real", "mult"),
]


@pytest.mark.parametrize("seed", range(25))
def test_random_models(seed):
    """25 seeds x 8 structured cases = 200 models, plus 25 fully random ones."""
    rng = np.random.default_rng(1000 + seed)
    for case, (kinds, spans, input_kind, mode) in enumerate(CASES):
        sizes = [int(rng.integers(1, 10)) for _ in kinds]
        art = random_artifact(rng, layer_sizes=sizes, kinds=kinds, spans=spans, input_kind=input_kind,
                              decay_mode=mode, widths=_widths(rng, extreme=case % 2 == 1),
                              saturating=bool((seed + case) % 3 == 0))
        x = random_inputs(rng, art, batch=4, steps=int(rng.integers(8, 17)))
        assert_same(art, x, label=f"seed {seed} case {case}")
    art = random_artifact(rng)
    assert_same(art, random_inputs(rng, art, batch=5, steps=12), label=f"seed {seed} random")


def test_quantized_inputs():
    rng = np.random.default_rng(7)
    for _ in range(10):
        art = random_artifact(rng, input_kind="real")
        lo, hi = art.input.range
        xq = rng.integers(lo, hi + 1, size=(3, 10, art.input.channels))
        assert_same(art, xq, quantized=True)


def test_wide_readout_and_decay_saturate_exactly():
    """R = 40, D = 16: ``a * m`` would pass 2**53; the split decay must stay exact (and saturate)."""
    rng = np.random.default_rng(3)
    for readout_kind in ("leaky", "sum"):
        for mode in ("mult", "shift"):
            art = random_artifact(rng, widths=Widths(16, 32, 40, 16), readout_kind=readout_kind, decay_mode=mode,
                                  saturating=True, input_kind="spike", layer_sizes=[6])
            r = art.readout
            rmax = 2**39 - 1
            r.bias = np.array([rmax - 5, -rmax + 3, rmax // 3, -(rmax // 7)] * 3, dtype=np.int64)[: r.classes]
            if readout_kind == "leaky" and mode == "mult":
                r.decay = np.full(r.classes, 2**16 - 1, dtype=np.int64)
            art.validate()
            x = random_inputs(rng, art, batch=3, steps=20)
            assert_same(art, x, label=f"wide {readout_kind} {mode}")
            if readout_kind == "sum":
                assert golden.run(art, x).saturation.get("readout", 0) > 0


def test_state_32_bits_extreme_decay():
    rng = np.random.default_rng(11)
    for kind in ("lif", "alif"):
        art = random_artifact(rng, widths=Widths(16, 32, 40, 16), kinds=[kind, kind], layer_sizes=[8, 5],
                              spans=[2, 1], input_kind="count", saturating=True)
        for layer in art.layers:
            if layer.decay_mode == "mult":
                layer.decay[:] = 2**16 - 1
            layer.threshold[:] = 2**31 - 1  # never fires: membranes grow into saturation
        x = random_inputs(rng, art, batch=3, steps=25)
        assert_same(art, x, label=f"state32 {kind}")


def test_alif_trace_products_beyond_2_53_stay_exact():
    """S = 32, T = 24 (D = 16, R = 16): ``beta * b`` reaches 2**55 in the hidden layer, and
    R = 40, T = 20 in the readout 2**59; QAT's split products must equal golden's int64 ones."""
    rng = np.random.default_rng(12)
    for widths, readout_kind in ((Widths(16, 32, 16, 16), "sum"), (Widths(16, 32, 40, 16), "alif")):
        assert widths.trace_bits == min(24, 60 - max(widths.state_bits, widths.readout_bits))
        art = random_artifact(rng, widths=widths, kinds=["alif"], layer_sizes=[7], spans=[1], input_kind="spike",
                              readout_kind=readout_kind, decay_mode="mult", saturating=True)
        layer = art.layers[0]
        layer.rho[:] = rng.integers(0, 2**10, size=layer.neurons)  # one spike takes b near 2**T
        layer.beta[:] = rng.integers(2**31 - 2**20, 2**31, size=layer.neurons)
        layer.threshold[:] = rng.integers(1, 2**10, size=layer.neurons)
        layer.w_in = np.abs(layer.w_in)  # excitatory input: every neuron fires now and then
        if readout_kind == "alif":
            art.readout.rho[:] = 5
            art.readout.beta[:] = 2**39 - 1 - rng.integers(0, 2**10, size=art.readout.classes)
            art.readout.threshold[:] = 1
        art.validate()
        x = random_inputs(rng, art, batch=3, steps=30, density=0.8)
        assert_same(art, x, label=f"trace {widths}")
        b = golden.run(art, x, traces=True).states[0]["b"]
        assert int(b.max()) > 2 ** (widths.trace_bits - 1)  # the trace did reach the wide products


def test_qat_network_from_artifact_matches_golden_readout():
    rng = np.random.default_rng(5)
    art = random_artifact(rng, kinds=["alif", "lif"], spans=[2, 3], input_kind="real")
    x = random_inputs(rng, art, batch=4, steps=15)
    net = QATNetwork.from_artifact(art)
    with torch.no_grad():
        out = net(x)
    assert out.dtype == torch.float64
    assert np.array_equal(out.numpy().astype(np.int64), golden.run(art, x).readout)
    again = net.to_artifact()
    assert again.input == art.input and again.widths == art.widths and again.readout == art.readout
    assert all(a == b for a, b in zip(again.layers, art.layers))


# ---------------------------------------------------------------------------------------------
# trained models


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two tiny trained networks (LIF/SRC with a sum readout, ALIF with a leaky readout)."""
    from skipcore.datasets import load_dataset
    from skipcore.quant.train import train

    data = load_dataset("mnist1d", limit=200)
    out = {}
    for preset in ("mnist1d-lif-asrc", "mnist1d-alif"):
        folder = tmp_path_factory.mktemp(preset)
        train(preset, out=folder, layers="16,12", epochs=2, batch=32, loaded=data, progress=False,
              log=lambda msg: None, **({"max_span": 3} if "asrc" in preset else {}))
        out[preset] = folder / "best.pt"
    return data, out


@pytest.mark.parametrize("preset", ["mnist1d-lif-asrc", "mnist1d-alif"])
@pytest.mark.parametrize("decay_mode", ["mult", "shift"])
def test_trained_model_test_subset(trained, preset, decay_mode):
    from skipcore.quant.checkpoint import load_checkpoint
    from skipcore.quant.export import ExportOptions

    data, ckpts = trained
    network, _ = load_checkpoint(ckpts[preset])
    opts = ExportOptions(weight_bits=6, state_bits=14, readout_bits=20, decay_bits=6, decay_mode=decay_mode)
    qat = QATNetwork(network, opts, input_kind="real", x=data.train.x)
    art = qat.to_artifact()
    x = data.test.x[:150]
    with torch.no_grad():
        out = qat(x).numpy().astype(np.int64)
    g = golden.run(art, x, traces=True)
    assert np.array_equal(out, g.readout)
    assert_same(art, x, label=preset)
    assert sum(s.sum() for s in g.spikes) > 0

    # one QAT step: gradients reach the float weights (and ALIF taus); the new integers still match
    optimizer = torch.optim.SGD(network.parameters(), lr=1e-2)
    y = torch.from_numpy(data.test.y[:32])
    loss = network.loss(qat.logits(qat(x[:32])).float(), y)
    loss.backward()
    assert network.layers[0].fc.weight.grad is not None and network.layers[0].fc.weight.grad.abs().sum() > 0
    assert network.readout.fc.weight.grad.abs().sum() > 0
    if preset == "mnist1d-alif":
        assert network.layers[0].tau_m.grad is not None and network.layers[0].tau_m.grad.abs().sum() > 0
    optimizer.step()
    art2 = qat.to_artifact()
    with torch.no_grad():
        assert np.array_equal(qat(x[:40]).numpy().astype(np.int64), golden.run(art2, x[:40]).readout)


def test_qat_finetune_writes_golden_exact_artifact(trained, tmp_path):
    from skipcore.golden.artifact import load
    from skipcore.quant.finetune import qat_finetune

    data, ckpts = trained
    path = qat_finetune(ckpts["mnist1d-lif-asrc"], data, tmp_path / "qat", epochs=1, batch=64, progress=False,
                        log=lambda msg: None, export_options={"weight_bits": 6, "state_bits": 14})
    art = load(path)
    assert art.widths.weight_bits == 6 and art.provenance["method"] == "qat"
    assert art.provenance["dataset"] == "mnist1d" and "checkpoint_sha256" in art.provenance
    x = data.test.x[:50]
    assert_same(art, x, label="finetuned")
    import json

    from skipcore.datasets import accuracy
    from skipcore.quant.checkpoint import load_checkpoint
    from skipcore.quant.export import ExportOptions

    summary = json.loads((tmp_path / "qat" / "qat_summary.json").read_text())
    history = json.loads((tmp_path / "qat" / "qat_history.json").read_text())
    # the reported accuracies are what the golden model measures on the val split, recomputed here
    def val_accuracy(artifact) -> float:
        return accuracy(data.info, data.val.y, golden.run_batched(artifact, data.val.x).predictions)

    assert summary["qat_val_acc"] == val_accuracy(art)
    network, _ = load_checkpoint(ckpts["mnist1d-lif-asrc"])  # the untouched float weights: PTQ
    ptq = QATNetwork(network, ExportOptions(weight_bits=6, state_bits=14), input_spec=art.input).to_artifact()
    assert summary["ptq_val_acc"] == val_accuracy(ptq)
    # epoch 0 is PTQ; the artifact written is the epoch with the best val accuracy, ties broken by the
    # lower val loss (then the earlier epoch)
    accs = [h["val_acc"] for h in history]
    assert [h["epoch"] for h in history] == [0, 1] and accs[0] == summary["ptq_val_acc"]
    best = min(range(len(history)), key=lambda i: (-accs[i], history[i]["val_loss"], i))
    assert summary["best_epoch"] == best and summary["qat_val_acc"] == max(accs)
    assert art.provenance["qat_best_epoch"] == summary["best_epoch"]
    with pytest.raises(Exception, match="exists"):
        qat_finetune(ckpts["mnist1d-lif-asrc"], data, tmp_path / "qat", epochs=0, progress=False, log=lambda m: None)
