"""``skipcore explore``: the grid, the estimates, the Pareto front, misfits kept, the files and the refusals.

Estimate-only runs (``--build 0``) are fast; the one real build (iCEBreaker, tiny model) is marked
``synth`` like tests/test_boards_build.py.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from skipcore.boards import explore as ex
from skipcore.cli import main
from skipcore.golden.artifact import Widths, save
from skipcore.golden.random import random_artifact, random_inputs


def _art(sizes, seed=0, channels=4, classes=3):
    return random_artifact(np.random.default_rng(seed), channels=channels, layer_sizes=sizes,
                           kinds=["lif"] * len(sizes), spans=[2] * len(sizes), input_kind="real",
                           widths=Widths(8, 16, 24, 8), classes=classes, readout_kind="sum",
                           readout_mode="sequence", decay_mode="mult")


@pytest.fixture
def small_model(tmp_path):
    return save(_art([8, 6]), tmp_path / "small.skc")


def _x(art, steps=12):
    return random_inputs(np.random.default_rng(1), art, 4, steps)


def test_grid_estimates_and_pareto_front():
    art = _art([16, 8])
    points = ex.estimate_grid([ex.Variant(art, "the artifact")], [1, 2, 4, 16], "ulx3s-85f", _x(art))
    assert [p.lanes for p in points] == [1, 2, 4, 16]
    assert all(p.fits for p in points)
    # more lanes: fewer cycles per step, more LUTs and DSPs
    cycles = [p.cycles_per_step for p in points]
    assert cycles == sorted(cycles, reverse=True) and cycles[0] > cycles[-1]
    luts = [p.luts for p in points]
    assert luts == sorted(luts) and luts[0] < luts[-1]
    assert [p.dsps for p in points] == sorted(p.dsps for p in points)
    assert all(p.latency_us == pytest.approx(p.cycles_per_step * p.steps / 25.0, rel=1e-3) for p in points)
    # the front: no fitting point beats a front point on all three
    front = [p for p in points if p.pareto]
    assert front
    for f in front:
        for q in points:
            assert not (q.latency_us < f.latency_us and q.luts <= f.luts and q.brams <= f.brams)
    # a point beaten on every objective is not on the front
    beaten = ex.Point(lanes=99, widths="W8 S16", weight_bits=8, state_bits=16, luts=10**6, brams=10**3,
                      latency_us=10**6)
    assert len(ex.pareto_front([*points, beaten])) == len(front)


def test_misfits_are_kept_and_marked():
    """A model whose memories exceed the iCEBreaker stays in the grid, marked, and off the front."""
    art = _art([200, 200], channels=8)
    points = ex.estimate_grid([ex.Variant(art, "the artifact")], [1, 8], "icebreaker", _x(art, 4))
    assert len(points) == 2
    assert not any(p.fits for p in points)
    assert all("memories" in p.why_not for p in points)
    assert not any(p.pareto for p in points)
    # and on the big board the same model fits
    points = ex.estimate_grid([ex.Variant(art, "the artifact")], [1], "ulx3s-85f", _x(art, 4))
    assert points[0].fits


def test_lut_model_fit_recovers_coefficients():
    rows = [{"family": "ecp5", "features": [1.0, l, b], "luts": 500 + 100 * l + 3 * b, "ffs": 300 + 2 * b}
            for l, b in ((2, 100), (3, 400), (2, 900), (4, 50))]
    coeffs = ex.fit_model(rows)["ecp5"]
    assert coeffs["luts"] == pytest.approx({"base": 500, "per_layer": 100, "per_datapath_bit": 3}, abs=1e-3)
    assert coeffs["ffs"]["per_datapath_bit"] == pytest.approx(2, abs=1e-3)


def test_the_model_file_names_its_builds():
    model = ex.load_model()
    for family in ("ecp5", "ice40"):
        assert set(model["families"][family]) == {"luts", "ffs"}
        builds = [b for b in model["builds"] if b["family"] == family]
        assert len(builds) >= 3
        # the stored coefficients are the fit of the stored builds
        refit = ex.fit_model(builds)[family]
        for res in ("luts", "ffs"):
            for name, value in refit[res].items():
                assert model["families"][family][res][name] == pytest.approx(value, rel=1e-3, abs=1e-2)


def test_cli_writes_table_json_png(small_model, tmp_path, capsys):
    out = tmp_path / "ex"
    rc = main(["explore", str(small_model), "--board", "ulx3s-85f", "-o", str(out), "--lanes", "1,2,8",
               "--build", "0", "--samples", "3", "--steps", "10"])
    assert rc == 0, capsys.readouterr().err
    data = json.loads((out / "explore.json").read_text())
    assert data["axes"] == ["lanes", "widths"] and "not yet" in data["e_axis"]
    assert data["widths_axis"] == "the artifact's own widths"
    assert "random inputs" in data["activity"]
    assert [p["lanes"] for p in data["points"]] == [1, 2, 8]
    assert all(p["widths"] == "W8 S16" and p["built"] is None for p in data["points"])
    assert any(p["pareto"] for p in data["points"])
    assert (out / "explore.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = (out / "explore.txt").read_text()
    assert "lat us" in text and "W8 S16" in text and "front" in text
    # a second run needs --force; with it the files are replaced
    rc = main(["explore", str(small_model), "--board", "ulx3s-85f", "-o", str(out), "--build", "0",
               "--samples", "2", "--steps", "5"])
    assert rc == 2 and "--force" in capsys.readouterr().err


def test_cli_marks_misfits_in_the_json(tmp_path, capsys):
    model = save(_art([200, 200], channels=8), tmp_path / "big.skc")
    out = tmp_path / "ex"
    rc = main(["explore", str(model), "--board", "icebreaker", "-o", str(out), "--lanes", "1,2", "--build", "1",
               "--samples", "2", "--steps", "4"])
    assert rc == 0, capsys.readouterr().err
    points = json.loads((out / "explore.json").read_text())["points"]
    assert len(points) == 2 and not any(p["fits"] or p["pareto"] or p["built"] for p in points)
    assert "do not fit" in capsys.readouterr().err


@pytest.mark.parametrize("argv, words", [
    (["--board", "nope"], ["unknown board", "nope"]),
    (["--board", "generic"], ["generic"]),
    (["--board", "icebreaker", "--lanes", "0"], ["--lanes", "at least 1"]),
    (["--board", "icebreaker", "--lanes", ","], ["--lanes", "empty"]),
    (["--board", "icebreaker", "--build", "-1"], ["--build"]),
    (["--board", "icebreaker", "--weights", "4,8"], ["--checkpoint"]),
])
def test_bad_options_are_one_line_before_work(small_model, tmp_path, capsys, argv, words):
    out = tmp_path / "ex"
    rc = main(["explore", str(small_model), "-o", str(out), *argv])
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in lines[0]
    assert not out.exists()


@pytest.mark.synth
def test_build_one_pareto_point_on_the_icebreaker(tmp_path, capsys):
    """A real build of the fastest Pareto point: the estimate against the actual counts is recorded."""
    model = save(_art([8]), tmp_path / "tiny.skc")
    out = tmp_path / "ex"
    rc = main(["explore", str(model), "--board", "icebreaker", "-o", str(out), "--lanes", "1,2", "--build", "1",
               "--samples", "2", "--steps", "6"])
    assert rc == 0, capsys.readouterr().err
    points = json.loads((out / "explore.json").read_text())["points"]
    built = [p for p in points if p["built"]]
    assert len(built) == 1 and built[0]["pareto"]
    b = built[0]["built"]
    assert b["luts"] > 100 and b["fmax_mhz"] > 0
    assert b["error_percent"]["luts"] == pytest.approx(100 * (built[0]["luts"] - b["luts"]) / b["luts"], abs=0.1)
    assert (out / "builds" / built[0]["name"] / "top.bin").is_file()


def test_widths_axis_from_a_checkpoint(tmp_path, capsys, monkeypatch):
    """--weights re-quantizes the float checkpoint (PTQ) per width; the activity comes from its dataset."""
    pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--preset", "mnist1d-lif-src", "--limit", "40", "--layers", "6", "--epochs", "1",
                 "--threads", "1", "--no-progress", "--out", "run"]) == 0
    assert main(["quantize", "run/best.pt", "-o", "m.skc", "--threads", "1", "--weight-bits", "8",
                 "--state-bits", "16"]) == 0
    capsys.readouterr()
    rc = main(["explore", "m.skc", "--checkpoint", "run/best.pt", "--weights", "4,8", "--board", "icebreaker",
               "-o", "ex", "--lanes", "1,2", "--build", "0", "--samples", "4"])
    assert rc == 0, capsys.readouterr().err
    data = json.loads((tmp_path / "ex" / "explore.json").read_text())
    assert data["widths_axis"] == "PTQ of run/best.pt"
    assert "mnist1d test split" in data["activity"]
    assert [(p["lanes"], p["weight_bits"], p["state_bits"]) for p in data["points"]] == \
        [(1, 4, 12), (2, 4, 12), (1, 8, 16), (2, 8, 16)]
    # narrower weights: no more memory
    mem = {(p["lanes"], p["weight_bits"]): p["memory_bits"] for p in data["points"]}
    assert mem[(1, 4)] < mem[(1, 8)]
