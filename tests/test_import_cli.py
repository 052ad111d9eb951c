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
