"""The whole demo flow, quick: train, QAT, golden, generate, fast RTL, cocotb raster, report."""
import json

import pytest

from skipcore.cli import main


def test_quick_demo_runs_the_whole_flow(tmp_path, monkeypatch):
    monkeypatch.setenv("SKIPCORE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "demo"
    rc = main(["demo", "--quick", "--out", str(out), "--board", "none", "--lanes", "16", "--no-progress"])
    assert rc == 0
    demo = json.loads((out / "demo.json").read_text())
    steps = demo["steps"]
    assert list(steps) == ["train", "qat", "golden", "verify"]
    report = json.loads((out / "verify" / "report.json").read_text())

    # the RTL agrees with the golden model everywhere: fast runner on 200 x 40, cocotb on 20 samples
    m = report["mismatches"]
    assert (m["samples"], m["steps"]) == (200, 40)
    assert m["count"] == m["samples_with_mismatch"] == m["predictions_differ"] == 0 and m["first"] is None
    assert m["spikes_compared"] == "every neuron"  # the fast runner checks every neuron of every sample
    assert m["compared"].endswith("at every step: 200 samples x 40 steps")
    assert m["cocotb"]["ok"] is True and m["cocotb"]["count"] == 0 and m["cocotb"]["samples"] == 20
    assert steps["verify"]["mismatches"] == 0

    # accuracies are fractions, and each one is the same number wherever it is reported
    # verify runs no float model: its float figure is the training-time one, labelled as such
    acc = report["accuracy"]
    assert all(0.0 <= acc[k] <= 1.0 for k in ("golden", "rtl")) and acc["float"] is None
    assert acc["rtl"] == acc["golden"] == steps["golden"]["golden_test_acc"] == steps["qat"]["golden_test_acc"]
    trained = report["float_training"]
    assert 0.0 <= trained["accuracy"] <= 1.0
    assert trained["accuracy"] == steps["train"]["float_test_acc"] == steps["qat"]["float_test_acc"]
    assert all(0.0 <= steps["qat"][k] <= 1.0 for k in ("float_val_acc", "ptq_val_acc", "qat_val_acc"))

    # cycles: within 10 % of the bound, and the throughput's cycles per sample is their sum over steps
    cycles = report["cycles"]
    assert 1.0 <= cycles["ratio_max"] <= 1.10 and 1.0 <= cycles["ratio_mean"] <= cycles["ratio_max"]
    assert cycles["mean_per_step"] <= cycles["max_per_step"]
    thr = report["throughput"]
    assert thr["cycles_per_sample"] == pytest.approx(cycles["end_to_end_mean_per_step"] * 40)

    # --board none: no build ran and no clock is known, so no resource or speed figure may be invented
    assert report["build"] == dict.fromkeys(("board", "luts", "ffs", "brams", "dsps", "fmax_mhz"))
    assert thr["clock_mhz"] is None and thr["samples_per_s"] is None and thr["latency_us"] is None
    assert "no clock" in thr["clock_source"]
    assert steps["verify"]["build"] == report["build"] and steps["verify"]["samples_per_s"] is None

    assert (out / "verify" / "raster.png").stat().st_size > 1000
    assert (out / "verify" / "cycles.png").stat().st_size > 1000
    assert report["fast_runner"]["jobs"] >= 1 and report["fast_runner"]["cycles_per_s"] > 0
    md = (out / "verify" / "report.md").read_text()
    assert "RTL" in md and "fast RTL simulation" in md
