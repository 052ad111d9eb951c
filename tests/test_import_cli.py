"""``skipcore import`` and ``skipcore export --nir`` on the command line: outputs, refusals, and the
export -> import round trip through files giving the same integer network as ``skipcore quantize``."""
import torch

from skipcore.golden.artifact import load
from test_import_official import OfficialASRC, OfficialSRNN


def _cli(*argv):
    from skipcore.cli import main

    return main([str(a) for a in argv])


def test_import_srnn_to_artifact_and_refusals(tmp_path, capsys):
    torch.manual_seed(0)
    sd = tmp_path / "srnn.pth"
    torch.save(OfficialSRNN(4, 8, 3).state_dict(), sd)
    out = tmp_path / "model.skc"
    assert _cli("import", sd, "-o", out) == 2
    assert "--input-kind" in capsys.readouterr().err and not out.exists()
    assert _cli("import", sd, "-o", out, "--input-kind", "spike") == 0
    art = load(out)
    assert [l.kind for l in art.layers] == ["alif"] and art.readout.kind == "alif"
    assert art.provenance["imported_from"] == "srnn"
    assert _cli("import", sd, "-o", out, "--input-kind", "spike") == 2  # exists, no --force
    assert "--force" in capsys.readouterr().err
    assert _cli("import", sd, "-o", sd) == 2
    assert "is also an input" in capsys.readouterr().err
    assert _cli("import", sd, "-o", tmp_path / "x.pt", "--lam", "0.3") == 2
    err = capsys.readouterr().err
    assert "lam do not apply to a SRNN model" in err and "Traceback" not in err
    whole = tmp_path / "whole.pth"
    torch.save(OfficialSRNN(4, 8, 3), whole)
    assert _cli("import", whole, "-o", tmp_path / "w.pt") == 2
    assert "weights-only" in capsys.readouterr().err and not (tmp_path / "w.pt").exists()


def test_export_import_round_trip_through_files(tmp_path, capsys):
    torch.manual_seed(1)
    sd = tmp_path / "src.pt"
    torch.save(OfficialASRC(4, [8, 6], 3, k=3, adaptive=False).state_dict(), sd)
    soft = tmp_path / "soft.pt"
    assert _cli("import", sd, "-o", soft, "--span", "3", "2", "--input-kind", "spike") == 0
    assert _cli("export", soft, "--nir", tmp_path / "soft.nir") == 2
    assert "soft reset" in capsys.readouterr().err and not (tmp_path / "soft.nir").exists()
    ck = tmp_path / "ck.pt"
    assert _cli("import", sd, "-o", ck, "--span", "3", "2", "--hard-reset", "--input-kind", "spike") == 0
    graph = tmp_path / "m.nir"
    assert _cli("export", ck, "--nir", graph, "--dt", "0.002") == 0
    assert _cli("import", graph, "-o", tmp_path / "back.skc", "--input-kind", "spike") == 0
    assert _cli("quantize", ck, "-o", tmp_path / "direct.skc", "--no-eval") == 0
    back, direct = load(tmp_path / "back.skc"), load(tmp_path / "direct.skc")
    assert [l.span for l in direct.layers] == [3, 2]
    assert back.layers == direct.layers and back.readout == direct.readout and back.input == direct.input


def test_import_scale_policy_and_auto_with_data(tmp_path, capsys):
    """``import --scale-policy``: a named policy needs no data; auto needs --data (one clear line, nothing
    written) and then chooses on the validation split, recorded in the artifact."""
    import numpy as np

    torch.manual_seed(2)
    official = OfficialSRNN(3, 10, 4, b_j0=0.1, beta_h=1.8, beta_o=1.8)
    with torch.no_grad():
        official.i2h.weight.mul_(20.0)  # large weights next to b_j0 = 0.1: max and threshold policies differ
    sd = tmp_path / "srnn.pth"
    torch.save(official.state_dict(), sd)
    common = ["--b-j0", "0.1", "--beta", "1.8"]
    out = tmp_path / "m.skc"
    assert _cli("import", sd, "-o", out, "--input-kind", "spike", "--scale-policy", "auto", *common) == 2
    err = capsys.readouterr().err
    assert "--data" in err and "auto" in err and "Traceback" not in err and not out.exists()
    assert _cli("import", sd, "-o", tmp_path / "c.pt", "--scale-policy", "threshold", *common) == 2
    assert "model.skc" in capsys.readouterr().err and not (tmp_path / "c.pt").exists()
    assert _cli("import", sd, "-o", tmp_path / "c.pt", "--fold", "decay", *common) == 2
    err = capsys.readouterr().err
    assert "--fold" in err and "model.skc" in err and not (tmp_path / "c.pt").exists()

    for policy in ("max", "threshold"):
        path = tmp_path / f"{policy}.skc"
        assert _cli("import", sd, "-o", path, "--input-kind", "spike", "--scale-policy", policy, *common) == 0
        art = load(path)
        assert art.provenance["export_options"]["scale_policy"] == policy
        exps = [art.layers[0].input_exp, art.layers[0].recurrent_exp, art.readout.weight_exp]
        assert (max(exps) > 0) == (policy == "threshold"), exps
    # the threshold policy keeps b_j0 at >= 2**6 steps; max floors it to a few LSB
    assert int(load(tmp_path / "threshold.skc").layers[0].threshold.min()) >= 64
    assert int(load(tmp_path / "max.skc").layers[0].threshold.min()) < 64

    rng = np.random.default_rng(0)
    x = (rng.random((60, 30, 3)) < 0.3).astype(np.float32)
    data = tmp_path / "spikes.npz"
    np.savez(data, x=x, y=rng.integers(0, 4, 60), x_test=x[:20], y_test=rng.integers(0, 4, 20))
    capsys.readouterr()
    assert _cli("import", sd, "-o", out, "--scale-policy", "auto", "--data", data, *common) == 0
    shown = capsys.readouterr().out
    art = load(out)
    auto = art.provenance["scale_policy_auto"]
    assert auto["split"] == "val" and len(auto["candidates"]) >= 3
    assert auto["chosen"] in shown and "golden (PTQ)" in shown
    best = max(c["accuracy"] for c in auto["candidates"])
    assert [c["accuracy"] for c in auto["candidates"] if c["policy"] == auto["chosen"]][0] == best
    assert art.provenance["export_options"]["scale_policy"] in ("max", "threshold", "percentile")
    # an ALIF network: each policy at the default trace bits and at D, the choice keeps its trace
    # and with the float and the decay fold (ALIF folds its decay into its rows)
    assert {c["trace_bits"] for c in auto["candidates"]} == {16, 8} and len(auto["candidates"]) == 40
    assert [c["fold"] for c in auto["candidates"]] == ["float"] * 20 + ["decay"] * 20
    assert auto["trace_bits"] == art.widths.trace_bits == art.provenance["export_options"]["trace_bits"]
    assert auto["fold"] == art.provenance["export_options"]["fold"] in ("float", "decay")
    assert f" T={art.widths.trace_bits}" in auto["chosen"] and ("fold=decay" in auto["chosen"]) == (auto["fold"] == "decay")
    # an explicit --fold is kept: only the policies and traces are tried
    capsys.readouterr()
    assert _cli("import", sd, "-o", tmp_path / "decay.skc", "--scale-policy", "auto", "--data", data,
                "--fold", "decay", *common) == 0
    kept = load(tmp_path / "decay.skc").provenance["scale_policy_auto"]
    assert len(kept["candidates"]) == 20 and kept["fold"] == "decay" and kept["chosen"].endswith(" fold=decay")
