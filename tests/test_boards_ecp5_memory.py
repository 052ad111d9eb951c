"""boards/ecp5_primitives.py: RegisteredROMs and RegisteredRAMs built from DP16KDs with OUTREG,
simulated with Icarus.

The DP16KD model (tests/hdl/dp16kd_model.v) is first checked against Yosys' own mapping of a ROM
and of RAMs of one write and one transparent read port (memory_libmap +
share/lattice/brams_map_16kd.v, REGMODE NOREG, port widths 18, 9, 4, 2, 1): that fixes the address
and data pins, the write enables and the INITVAL layout to what Yosys, whose mapping runs on real
boards, uses. The instances of boards/ecp5_primitives.py are then simulated with it against the
Python reference of the ROM and of the RAM (the output clock enable OCEB included), and the
StepFIFO built on them against the StepFIFO of the stop before, cycle by cycle.
"""
from __future__ import annotations

import random
import re
import subprocess
from pathlib import Path

import pytest
from amaranth.back import rtlil, verilog

from skipcore.boards import estimate as E
from skipcore.boards.ecp5_primitives import (dp16kd_blocks, dp16kd_ram_blocks, ecp5_platform, ram_port_width,
                                             registered_ram, registered_rom)
from skipcore.errors import ToolError
from skipcore.hdl.registered_ram import RegisteredRAM
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

    def get_registered_ram(self, ram):
        return registered_ram(ram)


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
    assert all(hasattr(platform, hook) for hook in ("get_registered_rom", "get_registered_ram",
                                                    "get_registered_multiplier"))
    assert type(platform).__name__ == "ULX3S_85F_Platform" == ecp5_platform(ULX3S_85F_Platform).__name__
    for hook in ("get_registered_rom", "get_registered_ram", "get_registered_multiplier"):
        assert not hasattr(get_target("icebreaker").platform(), hook)


def _run_lockstep(tmp_path: Path, sources: list[Path], tops: list[str], inputs: dict[str, tuple[int, list[int]]],
                  outputs: dict[str, int]) -> list[list[dict[str, str]]]:
    """Drive the same ``inputs`` (name: (bits, value per cycle), all 0 in a first cycle of reset)
    into each of ``tops`` (ports ``clk rst`` and these), and read ``outputs`` (name: bits) of each before every clock edge:
    per top, per cycle, name -> the value as Icarus prints it (decimal, or x)."""
    cycles = len(next(iter(inputs.values()))[1])
    decl, drive = [], []
    for name, (bits, values) in inputs.items():
        (tmp_path / f"{name}.hex").write_text("\n".join(f"{v:x}" for v in values) + "\n")
        decl += [f"reg [{bits - 1}:0] {name} = 0; reg [{bits - 1}:0] {name}_all [0:{cycles - 1}];",
                 f'initial $readmemh("{tmp_path / f"{name}.hex"}", {name}_all);']
        drive.append(f"{name} = {name}_all[n];")
    inst, show = [], []
    for t, top in enumerate(tops):
        conn = [f".{name}({name})" for name in inputs]
        for name, bits in outputs.items():
            decl.append(f"wire [{bits - 1}:0] {name}_{t};")
            conn.append(f".{name}({name}_{t})")
            show.append(f"{name}_{t}")
        inst.append(f"{top} dut{t}(.clk(clk), .rst(rst), {', '.join(conn)});")
    tb = tmp_path / "tb.v"
    tb.write_text(f"""`timescale 1ns/1ps
module tb;
reg clk = 0; reg rst = 1;
{chr(10).join(decl)}
{chr(10).join(inst)}
integer n;
initial begin
  #1 clk = 1; #1 clk = 0; rst = 0;
  for (n = 0; n < {cycles}; n = n + 1) begin
    {" ".join(drive)}
    #1 $display("row {" ".join(["%0d"] * len(show))}", {", ".join(show)});
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
    rows = [line.split()[1:] for line in out.splitlines() if line.startswith("row ")]
    assert len(rows) == cycles, out[-2000:]
    names = list(outputs)
    return [[{name: row[t * len(names) + k] for k, name in enumerate(names)} for row in rows]
            for t in range(len(tops))]


def _ram_traffic(rng: random.Random, depth: int, width: int, cycles: int, hot: int):
    """Random writes and reads, the read address often the one being written (a collision)."""
    w_addr = [rng.randrange(depth) for _ in range(cycles)]
    r_addr = [a if rng.random() < 0.25 else rng.choice([rng.randrange(depth), rng.randrange(min(hot, depth))])
              for a in w_addr]
    w_en = [int(rng.random() < 0.6) for _ in range(cycles)]
    w_data = [rng.getrandbits(width) for _ in range(cycles)]
    return w_addr, w_data, w_en, r_addr


@needs_icarus
@pytest.mark.parametrize("width,depth", [(18, 1024), (12, 1402), (5, 4000), (3, 8000), (1, 9000)])
def test_dp16kd_model_matches_yosys_ram_mapping(tmp_path, width, depth):
    """A RAM of one write and one transparent read port that Yosys maps to DP16KDs itself (one
    port width per size, NOREG + its own bypass logic) reads back what was written through the
    model, colliding reads included (the bypass covers the model's x)."""
    from amaranth.hdl import Module
    from amaranth.lib import memory, wiring
    from amaranth.lib.wiring import In, Out

    from skipcore.boards.flow import tool_command

    try:
        yosys = tool_command("yosys")
    except ToolError as exc:
        pytest.skip(str(exc))

    class Ram(wiring.Component):
        def __init__(self):
            super().__init__({"w_addr": In(range(depth)), "w_data": In(width), "w_en": In(1),
                              "r_addr": In(range(depth)), "r_data": Out(width)})

        def elaborate(self, platform):
            m = Module()
            m.submodules.mem = mem = memory.Memory(shape=width, depth=depth, init=[])
            wp = mem.write_port()
            rp = mem.read_port(transparent_for=(wp,))
            m.d.comb += [wp.addr.eq(self.w_addr), wp.data.eq(self.w_data), wp.en.eq(self.w_en),
                         rp.addr.eq(self.r_addr), self.r_data.eq(rp.data)]
            return m

    (tmp_path / "ref.il").write_text(rtlil.convert(Ram(), name="ref"))
    script = ("read_rtlil ref.il; hierarchy -top ref; proc; flatten; opt; memory -nomap; opt; "
              "memory_libmap -lib +/lattice/lutrams_trellis.txt -lib +/lattice/brams_16kd.txt; "
              "techmap -map +/lattice/brams_map_16kd.v; opt_clean; write_verilog -noattr mapped.v")
    proc = subprocess.run([yosys, "-q", "-p", script], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    mapped = (tmp_path / "mapped.v").read_text()
    assert len(re.findall(r"\bDP16KD\b", mapped)) == dp16kd_ram_blocks(width, depth)
    port = ram_port_width(depth)
    assert re.search(rf"\.DATA_WIDTH_A\(32'(?:d|sd)?0*{port}\)|\.DATA_WIDTH_A\({port}\)", mapped), mapped[:3000]
    rng = random.Random(depth)
    cycles = 600
    w_addr, w_data, w_en, r_addr = _ram_traffic(rng, depth, width, cycles, hot=8)
    abits = max(1, (depth - 1).bit_length())
    [seen] = _run_lockstep(tmp_path, [tmp_path / "mapped.v", MODEL], ["ref"],
                           {"w_addr": (abits, w_addr), "w_data": (width, w_data), "w_en": (1, w_en),
                            "r_addr": (abits, r_addr)}, {"r_data": width})
    mem = [0] * depth
    for n in range(cycles - 1):
        if w_en[n]:
            mem[w_addr[n]] = w_data[n]
        assert seen[n + 1]["r_data"] == str(mem[r_addr[n]]), n      # transparent: after the write


@needs_icarus
@pytest.mark.parametrize("width,depth", [(12, 1402), (18, 1024), (20, 700), (7, 3000)])
def test_dp16kd_ram_reads_like_the_generic_ram(tmp_path, width, depth):
    """RegisteredRAM on DP16KDs (port B OUTREG, OCEB = r_en): latency 2, the output register holds
    while r_en is low; a read of the address written at the same edge is the only undefined word
    (x in the model), and the traffic has such collisions."""
    ram = RegisteredRAM(width=width, depth=depth)
    text = verilog.convert(ram, name="dut", platform=_ECP5())
    blocks = dp16kd_ram_blocks(width, depth)
    assert text.count("DP16KD #(") == blocks
    assert text.count('.REGMODE_B("OUTREG")') == blocks
    (tmp_path / "dut.v").write_text(text)
    rng = random.Random(width * depth)
    cycles = 800
    w_addr, w_data, w_en, r_addr = _ram_traffic(rng, depth, width, cycles, hot=4)
    r_en = [int(rng.random() < 0.7) for _ in range(cycles)]
    abits = max(1, (depth - 1).bit_length())
    [seen] = _run_lockstep(tmp_path, [tmp_path / "dut.v", MODEL], ["dut"],
                           {"w_addr": (abits, w_addr), "w_data": (width, w_data), "w_en": (1, w_en),
                            "r_addr": (abits, r_addr), "r_en": (1, r_en)}, {"r_data": width})
    mem = [0] * depth
    latch, out = "0", "0"               # the word read (None: collided) and the output register
    collided = checked = 0
    for n in range(cycles):
        got = seen[n]["r_data"]
        if out is None:
            collided += "x" in got
        else:
            assert got == out, n
            checked += 1
        if r_en[n]:
            out = latch
        latch = None if (w_en[n] and w_addr[n] == r_addr[n]) else str(mem[r_addr[n]])
        if w_en[n]:
            mem[w_addr[n]] = w_data[n]
    assert checked > cycles // 2 and collided > 10, (checked, collided)


@needs_icarus
@pytest.mark.parametrize("depth", [300, 1402])
def test_step_fifo_on_dp16kds_matches_the_transparent_fifo(tmp_path, depth):
    """The StepFIFO with its memory on DP16KDs (the SHD input queue: 12-bit words, 1402 deep, two
    blocks of 9-bit ports) and the StepFIFO of the stop before, generic, in lockstep in Icarus:
    every handshake, count and word of every cycle equal, through empty and colliding phases."""
    from skipcore.hdl.step_fifo import StepFIFO
    from skipcore.hdl.stream import event_layout
    from test_hdl_step_fifo import _ReferenceFIFO

    layout = event_layout(10)
    new = verilog.convert(StepFIFO(layout=layout, depth=depth), name="dut", platform=_ECP5())
    assert new.count("DP16KD #(") == dp16kd_ram_blocks(layout.size, depth)
    ref = verilog.convert(_ReferenceFIFO(layout=layout, depth=depth), name="ref")
    (tmp_path / "dut.v").write_text(new)
    (tmp_path / "ref.v").write_text(ref)
    rng = random.Random(depth)
    cycles = 4000 if depth > 1000 else 2500
    valid, ready, payload = [], [], []
    for n in range(cycles):
        p_write, p_read = ((0.95, 0.1), (0.3, 0.95), (0.5, 0.5), (1.0, 1.0))[(n // 400) % 4]
        valid.append(int(rng.random() < p_write))
        ready.append(int(rng.random() < p_read))
        payload.append(rng.getrandbits(12))
    rows = _run_lockstep(tmp_path, [tmp_path / "dut.v", tmp_path / "ref.v", MODEL], ["dut", "ref"],
                         {"w__valid": (1, valid), "w__payload": (12, payload), "r__ready": (1, ready)},
                         {"w__ready": 1, "r__valid": 1, "r__payload": 12, "steps": 11, "space": 11})
    reads = 0
    for n, (got, want) in enumerate(zip(*rows)):
        assert {k: v for k, v in got.items() if k != "r__payload"} == \
            {k: v for k, v in want.items() if k != "r__payload"}, n
        if want["r__valid"] == "1":
            assert got["r__payload"] == want["r__payload"], n
            reads += ready[n]
    assert reads > cycles // 3
    assert min(int(r["space"]) for r in rows[1]) < depth - 250          # far from the empty queue too
    assert depth > 1000 or any(r["w__ready"] == "0" for r in rows[1])    # and full


@pytest.mark.parametrize("width,depth", [(12, 1402), (14, 34), (36, 512), (20, 300), (40, 2048), (2, 20000), (18, 1024)])
def test_dp16kd_ram_is_used_exactly_where_yosys_would_use_as_many_blocks(width, depth):
    """The RAM hook builds DP16KDs where memory_libmap would (estimate.map_memory) and with the same
    count, so the fit estimate stays exact; elsewhere (LUT RAM, a PDPW16KD, deeper than a block)
    the RAM stays generic."""
    ram = RegisteredRAM(width=width, depth=depth)
    mapping = E.map_memory(E.NetlistMemory("ram", width, depth, transparent=True), "ecp5")
    built = registered_ram(ram)
    ram._MustUse__silence = True
    if built is not None:
        built._MustUse__silence = True
    expect = mapping.kind == "block" and mapping.cell == "DP16KD" and mapping.cells == dp16kd_ram_blocks(width, depth)
    assert (built is not None) == expect
    assert expect == ((width, depth) in ((12, 1402), (40, 2048), (18, 1024)))


@pytest.mark.parametrize("width,depth", [(14, 34), (7, 40), (9, 4), (5, 1)])
def test_small_ram_with_two_addresses_reads_both_and_matches_the_generic_ram(width, depth):
    """A RegisteredRAM with two read addresses that Yosys puts in LUT RAM or flip-flops is, on
    ECP5, two read ports whose latches are chosen by a register of ``r_use_alt`` (no multiplexer
    in front of the read logic): in every cycle its ``r_data`` and the generic two-address RAM's
    equal a one-address RAM's read at the chosen address, through random writes, reads, choices,
    clock enables and reads of the address written at the same edge."""
    from amaranth.hdl import Fragment, Module
    from amaranth.sim import Simulator

    ecp5, generic = (RegisteredRAM(width=width, depth=depth, two_addresses=True) for _ in range(2))
    built = registered_ram(ecp5)
    assert built is not None
    assert len(built.submodules.memory.read_ports) == 2
    built._MustUse__silence = built.submodules.memory._MustUse__silence = True
    single = RegisteredRAM(width=width, depth=depth)
    assert registered_ram(single) is None                                      # one address: generic
    top = Module()

    class _Hooked:
        def get_registered_ram(self, ram):
            return registered_ram(ram) if ram is ecp5 else None

    top.submodules.ecp5, top.submodules.generic, top.submodules.single = ecp5, generic, single
    rng = random.Random(width * 100 + depth)
    counts = {"collide": 0, "alt": 0, "differ": 0}

    async def bench(ctx):
        for cycle in range(1200):
            w_addr, r_addr, r_alt = rng.randrange(depth), rng.randrange(depth), rng.randrange(depth)
            if rng.random() < 0.2:
                r_addr = w_addr
            use_alt = int(rng.random() < 0.5)
            values = {"w_addr": w_addr, "w_data": rng.getrandbits(width), "w_en": int(rng.random() < 0.6),
                      "r_addr_main": r_addr, "r_addr_alt": r_alt, "r_use_alt": use_alt, "r_en": int(rng.random() < 0.7)}
            for ram in (ecp5, generic, single):
                for name, value in values.items():
                    if name in ram.signature.members:
                        ctx.set(getattr(ram, name), value)
            ctx.set(single.r_addr, r_alt if use_alt else r_addr)
            counts["collide"] += values["w_en"] and w_addr == (r_alt if values["r_use_alt"] else r_addr)
            counts["alt"] += values["r_use_alt"] and r_alt != r_addr
            got, got_generic, want = ctx.get(ecp5.r_data), ctx.get(generic.r_data), ctx.get(single.r_data)
            assert got == want and got_generic == want, cycle
            counts["differ"] += cycle > 0 and want != 0
            await ctx.tick()

    sim = Simulator(Fragment.get(top, _Hooked()))
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert counts["collide"] > 50 and counts["differ"] > 300 and (depth == 1 or counts["alt"] > 200), counts


@pytest.mark.parametrize("depth,room", [(1, None), (3, None), (5, 3), (40, 17)])
def test_step_fifo_on_ecp5_small_ram_matches_the_transparent_fifo(depth, room):
    """The StepFIFO whose small memory reads both candidate addresses on ECP5 (the demo core's
    queues: LUT RAM) and the StepFIFO of the stop before, in every cycle (the lockstep test of
    tests/test_hdl_step_fifo.py, with the ECP5 hook)."""
    from test_hdl_step_fifo import test_step_fifo_matches_the_transparent_fifo_in_every_cycle as lockstep
    lockstep(_ECP5(), depth, room)
