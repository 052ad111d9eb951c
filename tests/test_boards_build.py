"""Real `skipcore build` runs (YoWASP Yosys + nextpnr) of a tiny artifact for both boards.

Marked ``synth``: part of the default suite. Each build takes 15-60 s on a warm YoWASP cache (the
very first YoWASP run on a machine JIT-compiles for about a minute). The deliberately-too-large
cases fail before any tool runs and live in test_boards.py.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from skipcore.golden.artifact import Widths, save
from skipcore.golden.random import random_artifact

pytestmark = pytest.mark.synth


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    rng = np.random.default_rng(0)
    art = random_artifact(rng, channels=4, layer_sizes=[8], kinds=["lif"], spans=[2], input_kind="real",
                          widths=Widths(8, 16, 24, 8), classes=3, readout_kind="sum", readout_mode="sequence",
                          decay_mode="mult")
    # one decay for every neuron: a product by a constant, which the two families map differently
    art.layers[0].params["decay"][:] = 230
    return save(art, tmp_path_factory.mktemp("model") / "tiny.skc")


@pytest.mark.parametrize(
    "board, freq, bitstream, clock_mhz, min_size",
    [("icebreaker", None, "top.bin", 12.0, 100_000), ("ulx3s-85f", None, "top.bit", 25.0, 100_000),
     ("icebreaker", 24, "top.bin", 24.0, 100_000)],
    ids=["icebreaker", "ulx3s-85f", "icebreaker-pll24"],
)
def test_build_tiny_model(tmp_path, tiny_model, board, freq, bitstream, clock_mhz, min_size):
    """Without --freq the design runs from the oscillator (no PLL); with it, from the PLL (and
    --seed: nextpnr's placement seed, and --placer static, both recorded in the report)."""
    out = tmp_path / board
    proc = subprocess.run(
        [sys.executable, "-m", "skipcore.cli", "build", str(tiny_model), "--board", board, "-o", str(out),
         "--lanes", "2", *(["--freq", str(freq), "--seed", "7", "--placer", "static"] if freq else [])],
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / bitstream).stat().st_size > min_size
    report = json.loads((out / "report.json").read_text())
    for key in ("board", "luts", "ffs", "brams", "dsps", "fmax_mhz", "utilization"):
        assert key in report
    assert report["board"] == board
    assert report["luts"] > 100 and report["ffs"] > 50
    assert report["brams"] >= 0 and report["dsps"] >= 1  # the real-valued input uses a multiplier
    # explore's DSP count is the one the tools placed (on ECP5 every unit product is a MULT18X18D
    # with its output register, by a constant too; on iCE40 a product by a constant is adders)
    from skipcore.boards.estimate import design_multipliers
    from skipcore.boards.targets import get_target
    from skipcore.golden.artifact import load
    from skipcore.hdl.plan import plan_core
    family = get_target(board).family
    assert report["dsps"] == design_multipliers(plan_core(load(tiny_model), lanes=2), family)
    assert report["fmax_mhz"] > clock_mhz and report["timing_met"]
    path = report["critical_path"]  # the slowest register-to-register path sets Fmax
    assert path["logic_ns"] > 0 and path["routing_ns"] > 0 and path["logic_levels"] >= 1
    assert abs(path["logic_ns"] + path["routing_ns"] - path["total_ns"]) < 0.02
    assert abs(1000 / path["total_ns"] - report["fmax_mhz"]) < 0.02 * report["fmax_mhz"]
    assert path["from_signal"] and path["to_signal"] and "critical path" in proc.stderr
    assert report["target_mhz"] == clock_mhz and report["clock_mhz"] == clock_mhz
    assert report["uart_divisor"] == round(clock_mhz * 1e6 / 115200)
    seed = 7 if freq else 1  # --seed, else the fixed default; nextpnr ran with it
    assert report["seed"] == seed and f"--seed {seed}" in (out / "build.log").read_text()
    placer = "static" if freq else "heap"
    assert report["placer"] == placer and f"--placer {placer}" in (out / "build" / "build_top.sh").read_text()
    pll_cells = report["utilization"].get("ICESTORM_PLL", report["utilization"].get("EHXPLLL", {})).get("used", 0)
    if freq is None:
        assert report["pll"] is None and pll_cells == 0
    else:  # nextpnr placed the PLL with the solver's dividers (icepll -i 12 -o 24)
        assert pll_cells == 1
        assert {k: report["pll"][k] for k in ("requested_mhz", "achieved_mhz", "DIVR", "DIVF", "DIVQ")} == \
            {"requested_mhz": 24.0, "achieved_mhz": 24.0, "DIVR": 0, "DIVF": 63, "DIVQ": 5}
        assert "constrained PLL" in (out / "build" / "top.tim").read_text()
    assert all({"used", "available", "percent"} <= set(v) for v in report["utilization"].values())
    log = (out / "build.log").read_text()
    assert "===== synthesis (yosys)" in log and "===== place and route" in log
    assert "Fmax" in proc.stderr and "bitstream:" in proc.stderr
    # rerunning into the same folder needs --force
    again = subprocess.run([sys.executable, "-m", "skipcore.cli", "build", str(tiny_model), "--board", board,
                            "-o", str(out)], capture_output=True, text=True)
    assert again.returncode == 2 and "pass --force" in again.stderr


@pytest.mark.slow
def test_nextpnr_overflow_names_the_resource(tmp_path):
    """A model whose memories fit but whose 16 lanes need about 114 multipliers: the iCE40 has 8
    DSPs, so nextpnr refuses it and the error says so (yosys alone takes about 2 minutes)."""
    rng = np.random.default_rng(0)
    art = random_artifact(rng, channels=16, layer_sizes=[32, 32], kinds=["alif", "alif"], spans=[1, 3],
                          input_kind="real", widths=Widths(8, 16, 24, 8), classes=4, readout_kind="leaky",
                          readout_mode="sequence", decay_mode="mult")
    path = save(art, tmp_path / "mid.skc")
    proc = subprocess.run([sys.executable, "-m", "skipcore.cli", "build", str(path), "--board", "icebreaker",
                           "-o", str(tmp_path / "out"), "--lanes", "16"], capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 2
    assert "warning:" in proc.stderr and "multipliers" in proc.stderr
    assert "does not fit icebreaker (iCE40UP5K-SG48): nextpnr needs" in proc.stderr
    assert "DSPs (SB_MAC16), the device has 8: over by" in proc.stderr


def test_placer_is_checked_before_any_tool_runs(tmp_path, tiny_model):
    """An unknown placer, or one for a board without place and route, is one clear line."""
    from skipcore.boards.flow import build
    from skipcore.errors import ConfigError

    with pytest.raises(ConfigError, match="--placer must be one of heap, static, got 'sa'"):
        build(tiny_model, "ulx3s-85f", tmp_path / "a", placer="sa")
    with pytest.raises(ConfigError, match="--placer applies to place and route"):
        build(tiny_model, "generic", tmp_path / "b", placer="static")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
