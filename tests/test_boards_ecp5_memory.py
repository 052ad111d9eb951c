"""boards/ecp5_primitives.py: RegisteredROMs built from DP16KDs with OUTREG, simulated with Icarus.

The DP16KD model (tests/hdl/dp16kd_model.v) is first checked against Yosys' own mapping of a ROM
(memory_libmap + share/lattice/brams_map_16kd.v, REGMODE NOREG): that fixes the address pins and
the INITVAL layout to what Yosys, whose mapping runs on real boards, uses. The instances of
boards/ecp5_primitives.py are then simulated with it against the Python reference of the ROM.
"""
from __future__ import annotations

import random
import re
import subprocess
from pathlib import Path

import pytest
from amaranth.back import rtlil, verilog

from skipcore.boards import estimate as E
from skipcore.boards.ecp5_primitives import dp16kd_blocks, ecp5_platform, registered_rom
from skipcore.errors import ToolError
from skipcore.hdl.registered_rom import RegisteredROM
from skipcore.sim.runners import have_simulator
from test_hdl_registered_rom import rom_reference

MODEL = Path(__file__).parent / "hdl" / "dp16kd_model.v"
CYCLES = 300

needs_icarus = pytest.mark.skipif(not have_simulator("icarus"), reason="Icarus not installed: apt-get install iverilog")


class _ECP5:
    """The hook of the ECP5 platforms, without the board."""

    def get_registered_rom(self, rom):
        return registered_rom(rom)


def _rom(width, depth, ports, seed):
    rng = random.Random(seed)
    init = [rng.getrandbits(width) for _ in range(depth)]
    return RegisteredROM(width=width, depth=depth, init=init, ports=ports), init


def _simulate(tmp_path: Path, sources: list[Path], top: str, width: int, depth: int, ports: int, seed: int):
    """Drive random addresses into ``top`` (ports ``clk rst addr__P data__P``); the data seen
    before each clock edge, per port, and the addresses."""
    rng = random.Random(seed + 1)
    addresses = [[rng.randrange(depth) for _ in range(CYCLES)] for _ in range(ports)]
    abits = max(1, (depth - 1).bit_length())
    decl, conn, drive, show = [], [], [], []
    for p in range(ports):
        (tmp_path / f"addr{p}.hex").write_text("\n".join(f"{a:x}" for a in addresses[p]) + "\n")
        decl += [f"reg [{abits - 1}:0] addr{p}; wire [{width - 1}:0] data{p};",
                 f"reg [{abits - 1}:0] addrs{p} [0:{CYCLES - 1}];",
                 f'initial $readmemh("{tmp_path / f"addr{p}.hex"}", addrs{p});']
        conn += [f".addr__{p}(addr{p})", f".data__{p}(data{p})"]
        drive.append(f"addr{p} = addrs{p}[n];")
        show.append(f"data{p}")
    tb = tmp_path / "tb.v"
    tb.write_text(f"""`timescale 1ns/1ps
module tb;
reg clk = 0; reg rst = 0;
{chr(10).join(decl)}
{top} dut(.clk(clk), .rst(rst), {", ".join(conn)});
integer n;
initial begin
  for (n = 0; n < {CYCLES}; n = n + 1) begin
    {" ".join(drive)}
    #1 $display("{" ".join(["%0d"] * ports)}", {", ".join(show)});
    clk = 1; #1 clk = 0;
  end
  $finish;
end
endmodule
""")
    exe = tmp_path / "sim.vvp"
    subprocess.run(["iverilog", "-g2005", "-s", "tb", "-o", str(exe), str(tb), *map(str, sources)], check=True,
                   capture_output=True, text=True)
    out = subprocess.run(["vvp", "-n", str(exe)], check=True, capture_output=True, text=True).stdout
    assert "DP16KD model:" not in out, out
    rows = [line.split() for line in out.splitlines() if re.fullmatch(r"[\d ]+", line.strip() or "x")]
    assert len(rows) == CYCLES, out[-2000:]
    return addresses, [[int(r[p]) for r in rows] for p in range(ports)]


@needs_icarus
@pytest.mark.parametrize("width,depth", [(36, 1024), (20, 300)])
def test_dp16kd_model_matches_yosys_mapping(tmp_path, width, depth):
    """A two-port ROM that Yosys maps to DP16KDs itself (18-bit ports, NOREG + a fabric register)
    reads back its contents through the model."""
    from skipcore.boards.flow import tool_command

    try:
        yosys = tool_command("yosys")
    except ToolError as exc:
        pytest.skip(str(exc))
    rom, init = _rom(width, depth, 2, seed=width)
    (tmp_path / "ref.il").write_text(rtlil.convert(rom, name="ref"))
    script = ("read_rtlil ref.il; hierarchy -top ref; proc; flatten; opt; memory -nomap; opt; "
              "memory_libmap -lib +/lattice/lutrams_trellis.txt -lib +/lattice/brams_16kd.txt; "
              "techmap -map +/lattice/brams_map_16kd.v; opt_clean; stat; write_verilog -noattr mapped.v")
    proc = subprocess.run([yosys, "-q", "-p", script], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    mapped = (tmp_path / "mapped.v").read_text()
    assert len(re.findall(r"\bDP16KD\b", mapped)) == dp16kd_blocks(width, depth, 2)
    assert 'REGMODE_A("NOREG")' in mapped
    addresses, seen = _simulate(tmp_path, [tmp_path / "mapped.v", MODEL], "ref", width, depth, 2, seed=width)
    for p in range(2):
        assert seen[p] == rom_reference(init, addresses[p])


@needs_icarus
@pytest.mark.parametrize("width,depth,ports", [
    (64, 512, 1),    # two slices a block, 36 bits: the demo's weight banks
    (80, 128, 1),    # an odd slice count: the last block's port B unused (the readout ROM)
    (40, 700, 1),    # 18 bits a block, port B unused
    (30, 1024, 2),   # two ports, 18 bits a block
    (9, 513, 2),
])
def test_dp16kd_rom_reads_like_the_generic_rom(tmp_path, width, depth, ports):
    rom, init = _rom(width, depth, ports, seed=depth)
    text = verilog.convert(rom, name="dut", platform=_ECP5())
    assert text.count("DP16KD #(") == dp16kd_blocks(width, depth, ports)
    assert text.count('.REGMODE_A("OUTREG")') == dp16kd_blocks(width, depth, ports)
    (tmp_path / "dut.v").write_text(text)
    addresses, seen = _simulate(tmp_path, [tmp_path / "dut.v", MODEL], "dut", width, depth, ports, seed=depth)
    for p in range(ports):
        assert seen[p] == rom_reference(init, addresses[p])


@pytest.mark.parametrize("width,depth,ports", [(64, 512, 1), (64, 16, 1), (64, 2048, 1), (128, 1024, 2), (80, 128, 1),
                                               (8, 32, 1), (72, 1000, 1), (18, 1024, 2)])
def test_dp16kd_mapping_is_used_exactly_where_yosys_would_use_as_many_blocks(width, depth, ports):
    """The ECP5 hook builds block RAMs where memory_libmap would (estimate.map_memory) and with the
    same DP16KD count, so the fit estimate stays exact; elsewhere the ROM stays generic."""
    rom = RegisteredROM(width=width, depth=depth, init=[], ports=ports)
    mapping = E.map_memory(E.NetlistMemory("rom", width, depth, rom=True, read_ports=ports), "ecp5")
    built = registered_rom(rom)
    rom._MustUse__silence = True
    if built is not None:
        built._MustUse__silence = True
    expect = mapping.kind == "block" and depth <= 1024
    assert (built is not None) == expect
    if expect:
        assert mapping.cells == dp16kd_blocks(width, depth, ports)


def test_ulx3s_platform_offers_the_hooks():
    from amaranth_boards.ulx3s import ULX3S_85F_Platform

    from skipcore.boards.targets import get_target

    platform = get_target("ulx3s-85f").platform()
    assert isinstance(platform, ULX3S_85F_Platform)
    assert hasattr(platform, "get_registered_rom") and hasattr(platform, "get_registered_multiplier")
    assert type(platform).__name__ == "ULX3S_85F_Platform" == ecp5_platform(ULX3S_85F_Platform).__name__
    for hook in ("get_registered_rom", "get_registered_multiplier"):
        assert not hasattr(get_target("icebreaker").platform(), hook)
