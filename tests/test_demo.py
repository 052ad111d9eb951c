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
    assert list(demo["steps"]) == ["train", "qat", "golden", "verify"]
    report = json.loads((out / "verify" / "report.json").read_text())
    assert report["mismatches"]["count"] == 0
    assert report["mismatches"]["samples"] == 200 and report["mismatches"]["steps"] == 40
    assert report["mismatches"]["spikes_compared"] == "every neuron"  # the fast runner, every sample
    assert report["mismatches"]["compared"].endswith("at every step: 200 samples x 40 steps")
    assert report["accuracy"]["rtl"] == pytest.approx(report["accuracy"]["golden"])
    assert report["accuracy"]["golden"] == pytest.approx(demo["steps"]["golden"]["golden_test_acc"])
    assert 1.0 <= report["cycles"]["ratio_max"] <= 1.10
    for key in ("luts", "ffs", "brams", "dsps", "fmax_mhz", "board"):
        assert key in report["build"]
    for key in ("samples_per_s", "latency_us"):
        assert key in report["throughput"]
    assert (out / "verify" / "raster.png").stat().st_size > 1000
    assert (out / "verify" / "cycles.png").stat().st_size > 1000
    assert report["fast_runner"]["jobs"] >= 1 and report["fast_runner"]["cycles_per_s"] > 0
    md = (out / "verify" / "report.md").read_text()
    assert "RTL" in md and "fast RTL simulation" in md
