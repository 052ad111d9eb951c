"""``skipcore explore``: the grid, the estimates, the Pareto front, misfits kept, the files and the refusals.

Estimate-only runs (``--build 0``) are fast; the one real build (iCEBreaker, tiny model) is marked
``synth`` like tests/test_boards_build.py.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from skipcore.boards import estimate as E
from skipcore.boards import explore as ex
from skipcore.boards.targets import get_target
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


def test_events_axis_in_the_grid():
    """E is an option axis: every (P, E) pair is a point named by both, E reaches the plan (the
    cycle bound divides the events by E), the estimate (more E: more LUTs, weight-ROM copies)."""
    art = _art([16, 8])
    x = _x(art)
    points = ex.estimate_grid([ex.Variant(art, "the artifact")], {"lanes": [2, 4], "events": [4, 1, 2]},
                              "ulx3s-85f", x)
    assert [(p.lanes, p.events) for p in points] == [(2, 1), (2, 2), (2, 4), (4, 1), (4, 2), (4, 4)]
    assert [p.name for p in points[:2]] == ["P2_E1_W8S16", "P2_E2_W8S16"]
    assert points[2].as_dict()["events"] == 4 and points[2].label == "P2 E4"
    for lanes in (2, 4):
        row = [p for p in points if p.lanes == lanes]
        cycles = [p.cycles_per_step for p in row]
        assert cycles[0] > cycles[1] > cycles[2]
        assert row[0].luts < row[1].luts < row[2].luts
        # the first layer's real-valued input: E products per lane, each a DSP
        per_lane = E.dsps_for(art.widths.weight_bits, art.input.bits, "ecp5")
        assert per_lane and [p.dsps - row[0].dsps for p in row] == [0, lanes * per_lane, 3 * lanes * per_lane]
    # the latency is golden.cycles' bound with the point's E
    from skipcore.golden.cycles import cycle_bounds
    from skipcore.hdl.generate import spike_counts
    from skipcore.hdl.plan import plan_core

    gold_events, spikes = ex.measure_spikes(art, x)
    plan = plan_core(art, lanes=4, debug=False, events=4)
    bound = cycle_bounds([l.groups for l in plan.layers], [l.constant_cycles for l in plan.layers],
                         [l.span for l in plan.layers], gold_events, spike_counts(spikes),
                         [l.own_span for l in plan.layers], [4] * len(plan.layers))
    assert points[-1].cycles_per_step == pytest.approx(float(bound.max(axis=2).mean()), abs=1e-3)
    with pytest.raises(ex.ConfigError, match="--events"):
        ex.estimate_grid([ex.Variant(art, "the artifact")], {"lanes": [2], "events": [9]}, "ulx3s-85f", x)


def test_misfits_are_kept_and_marked():
    """A model whose memories exceed the iCEBreaker stays in the grid, marked, and off the front."""
    art = _art([200, 200], channels=8)
    points = ex.estimate_grid([ex.Variant(art, "the artifact")], [1, 8], "icebreaker", _x(art, 4))
    assert len(points) == 2
    assert not any(p.fits for p in points)
    assert all("memories" in p.why_not for p in points)
    assert not any(p.pareto for p in points)
    # the plot draws them, as misfits
    for key in ("luts", "brams"):
        series = ex.plot_series(points, key)
        assert [label for _, _, label in series["misfit"]] == ["P1 E1 W8 S16", "P8 E1 W8 S16"]
        assert series["fits"] == [] and series["front"] == []
    # on the big board the same model fits at 4 lanes; at 1 lane its 512-word weight banks of
    # 8 bits fill a quarter of a DP16KD each: 250 block RAMs, over the 208 of the ECP5-85F
    points = ex.estimate_grid([ex.Variant(art, "the artifact")], [1, 4], "ulx3s-85f", _x(art, 4))
    assert [p.fits for p in points] == [False, True]
    assert points[0].why_not == f"BRAM {points[0].brams} > 208" and points[0].brams > 208


# ------------------------------------------------------------------------------------------------
# the estimate (boards/estimate.py)


@pytest.mark.parametrize("family, width, depth, rom, transparent, kind, cell, cells", [
    # each row: a memory of a real build and where Yosys 0.5x put it (build.log, MEMORY_LIBMAP)
    ("ecp5", 128, 512, True, False, "block", "PDPW16KD", 4),       # demo P16: a full weight bank
    ("ecp5", 128, 8, True, False, "logic", "", 0),                 # demo P16: the last bank, 8 words
    ("ecp5", 80, 128, True, False, "block", "PDPW16KD", 3),        # demo readout weights
    ("ecp5", 256, 8, True, False, "logic", "", 0),                 # demo P16 parameter ROM
    ("ecp5", 432, 8, False, True, "distributed", "TRELLIS_DPR16X4", 108),  # demo P16 accumulators
    ("ecp5", 16, 32, False, True, "distributed", "TRELLIS_DPR16X4", 8),    # demo P16 ring of layer 1
    ("ecp5", 1, 16, False, True, "distributed", "TRELLIS_DPR16X4", 1),     # the bridge's flag FIFO
    ("ecp5", 24, 64, False, True, "block", "PDPW16KD", 1),         # W4 demo P2 state: 130 < 136 distributed
    ("ecp5", 16, 512, True, False, "block", "DP16KD", 1),          # demo P2 weight bank (1024 x 18, half used)
    ("ice40", 8, 512, True, False, "block", "SB_RAM40_4K", 1),     # ice_small P1 weight bank
    ("ice40", 8, 128, True, False, "logic", "", 0),                # ice_small P1 last bank: 64 < 64 + 2
])
def test_memory_mapping_follows_yosys(family, width, depth, rom, transparent, kind, cell, cells):
    m = E.map_memory(E.NetlistMemory("m", width, depth, rom=rom, transparent=transparent), family)
    assert (m.kind, m.cell, m.cells) == (kind, cell, cells)


def test_memory_mapping_rules():
    """memory_libmap's own rules: bits of several address ranges share a cell, ROMs never go to
    distributed RAM, logic wins a tie, and the iCE40 has no distributed RAM."""
    # 1032 words x 128 bits: 3 ranges of 512, 3 x 128 bits = 384 bits in 11 cells of 36 (not 12)
    assert E.map_memory(E.NetlistMemory("w", 128, 1032, rom=True), "ecp5").cells == 11
    rom = E.map_memory(E.NetlistMemory("r", 4, 64, rom=True), "ecp5")
    assert rom.kind == "logic"  # a 64 x 4 ROM: 16 cost units in logic, distributed RAM refused
    ram = E.map_memory(E.NetlistMemory("r", 4, 64), "ice40")
    assert ram.kind == "block" and ram.cells == 1
    # 2 x 64 RAM bits: 128 in logic against one block (64) + the read-port point (2): block
    assert E.map_memory(E.NetlistMemory("r", 2, 64), "ice40").kind == "block"
    # logic cost truncated to an integer and kept on a tie: 1 x 66 RAM bits = 66 = 64 + 2
    assert E.map_memory(E.NetlistMemory("r", 1, 66), "ice40").kind == "logic"


def test_fifo_rams_read_twice_only_outside_block_ram_on_ecp5():
    """A StepFIFO's RAM reads both head candidates (two read ports, a LUT-RAM copy each) on ECP5
    only where neither one nor two read ports would take a block RAM; the estimate counts the copy."""
    assert E.fifo_read_ports("ecp5", 20, 34) == 2
    assert E.fifo_read_ports("ice40", 20, 34) == 1
    assert E.fifo_read_ports("ecp5", 36, 1402) == 1           # the SHD input queue: DP16KDs
    one = E.map_memory(E.NetlistMemory("f", 20, 34, transparent=True), "ecp5")
    two = E.map_memory(E.NetlistMemory("f", 20, 34, transparent=True, read_ports=2), "ecp5")
    assert one.kind == two.kind == "distributed" and two.cells == 2 * one.cells
    from skipcore.hdl.plan import plan_core
    art = _random_art(1)
    plan = plan_core(art, lanes=3, debug=False)
    est = E.estimate_design(art, get_target("ulx3s-85f"), lanes=3)
    queues = [m for m in est.mappings if m.memory.name.rsplit(".", 1)[-1] in E.FIFO_NAMES]
    assert queues and all(m.memory.read_ports == 2 for m in queues if m.kind == "distributed")
    assert len(queues) == len([m for m in plan.memories() if m["name"].rsplit(".", 1)[-1] in E.FIFO_NAMES])


def _random_art(seed):
    rng = np.random.default_rng(seed)
    sizes = [int(rng.integers(1, 150)) for _ in range(int(rng.integers(1, 4)))]
    return random_artifact(rng, channels=int(rng.integers(1, 40)), layer_sizes=sizes, kinds=["lif"] * len(sizes),
                           widths=Widths(int(rng.integers(2, 12)), 16, 24, 8), readout_kind="sum")


@pytest.mark.parametrize("seed", range(6))
def test_block_rams_with_events_are_the_plans_memories(seed):
    """On random plans with E > 1: ceil(E/2) copies of each weight ROM, each cut into 1024-word
    banks with two read ports (the last copy of an odd E one), and the bundle queues; their bits
    are the plan's, and the block RAM count is their mapping's (a two-port ROM: one DP16KD per
    18 bits x 1024 words on the ECP5, two single-port copies on the iCE40)."""
    from skipcore.hdl.plan import WEIGHT_BANK_WORDS_DUAL_PORT, plan_core

    art = _random_art(seed)
    rng = np.random.default_rng(100 + seed)
    for lanes, events in ((1, 2), (int(rng.integers(2, 9)), int(rng.integers(2, 9))), (8, 3)):
        plan = plan_core(art, lanes=lanes, debug=False, events=events)
        mems = E.netlist_memories(plan)
        for layer in plan.layers:
            assert layer.weight_bank_words == WEIGHT_BANK_WORDS_DUAL_PORT
            copies = -(-events // 2)
            for c in range(copies):
                banks = [m for m in mems if m.name.startswith(f"l{layer.index}.weights")
                         and m.name.endswith(f"_copy{c}")]
                assert len(banks) == layer.weight_banks
                assert sum(m.depth for m in banks) == len(layer.weight_words)
                ports = 1 if (events % 2 and c == copies - 1) else 2
                assert all(m.rom and m.read_ports == ports and m.depth <= 1024 for m in banks)
            assert len([m for m in mems if m.name.startswith(f"l{layer.index}.weights")]) == copies * layer.weight_banks
        queues = [m for m in mems if m.name.endswith("_bundles")]
        assert {m.name for m in queues} == {m["name"] for m in plan.memories() if m["name"].endswith("_bundles")}
        assert all(not m.rom and m.transparent and m.read_ports == 1 for m in queues)
        assert sum(m.bits for m in mems) == sum(m["bits"] for m in plan.memories())
        for board in ("ulx3s-85f", "icebreaker"):
            target = get_target(board)
            est = E.estimate_design(art, target, lanes=lanes, events=events)
            # the queues' RAMs read both head candidates on ECP5 where that keeps them out of block RAM
            fifos = [dataclasses.replace(m, read_ports=E.fifo_read_ports(target.family, m.width, m.depth))
                     if m.name.rsplit(".", 1)[-1] in E.FIFO_NAMES else m for m in mems]
            assert [m.memory for m in est.mappings][:len(mems)] == fifos
            assert est.brams == sum(E.map_memory(m.memory, target.family).blocks for m in est.mappings)
    # a 2-port ROM of 1024 x 64: 4 DP16KD (1024 x 18, both ports reading) on the ECP5, where a
    # PDPW16KD (one read port) would take two copies; the iCE40 duplicates it
    rom = E.NetlistMemory("w", 64, 1024, rom=True, read_ports=2)
    assert (E.map_memory(rom, "ecp5").cell, E.map_memory(rom, "ecp5").cells) == ("DP16KD", 4)
    assert E.map_memory(rom, "ice40").cells == 2 * E.map_memory(E.NetlistMemory("w", 64, 1024, rom=True), "ice40").cells


@pytest.mark.parametrize("seed", range(6))
def test_block_rams_are_the_mapping_of_the_generated_memories(seed):
    """On random plans: the memories are the plan's, with each weight ROM cut into the banks the
    generator makes, and the block RAM count is exactly what their mapping says."""
    from skipcore.hdl.plan import plan_core

    art = _random_art(seed)
    target = get_target("ulx3s-85f")
    for lanes in (1, 3, 8):
        plan = plan_core(art, lanes=lanes, debug=False)
        mems = E.netlist_memories(plan)
        for layer in plan.layers:
            banks = [m for m in mems if m.name.startswith(f"l{layer.index}.weights")]
            assert len(banks) == layer.weight_banks
            assert sum(m.depth for m in banks) == len(layer.weight_words)
            assert all(m.rom and m.depth <= layer.weight_bank_words for m in banks)
        assert sum(m.bits for m in mems) == sum(m["bits"] for m in plan.memories())
        est = E.estimate_design(art, target, lanes=lanes)
        # the queues' RAMs read both head candidates on ECP5 where that keeps them out of block RAM
        fifos = [dataclasses.replace(m, read_ports=E.fifo_read_ports("ecp5", m.width, m.depth))
                 if m.name.rsplit(".", 1)[-1] in E.FIFO_NAMES else m for m in mems]
        assert [m.memory for m in est.mappings][:len(mems)] == fifos
        assert est.brams == sum(E.map_memory(m.memory, "ecp5").blocks for m in est.mappings)
        # never fewer blocks than the bits need
        block_bits = [m for m in est.mappings if m.kind == "block"]
        assert est.brams >= sum(-(-m.memory.bits // 18432) for m in block_bits)


def test_luts_grow_with_lanes_and_widths():
    target = get_target("ulx3s-85f")
    wide = _art([48, 32])
    narrow = random_artifact(np.random.default_rng(0), channels=4, layer_sizes=[48, 32], kinds=["lif"] * 2,
                             spans=[2, 2], input_kind="real", widths=Widths(4, 12, 20, 8), classes=3,
                             readout_kind="sum", readout_mode="sequence", decay_mode="mult")
    for art in (narrow, wide):
        luts = [E.estimate_design(art, target, lanes=p).luts for p in (2, 4, 8, 16, 32)]
        assert luts == sorted(luts) and luts[0] < luts[-1]
    # (not from 1 lane: there the 4-bit weight ROM's 512-word banks cost 128 in logic against
    # 130 for a block RAM, so Yosys builds them from LUTs and 1 lane takes more than 2)
    one = E.estimate_design(narrow, target, lanes=1)
    assert any(m.kind == "logic" and m.memory.name.startswith("l0.weights") and m.memory.depth == 512
               for m in one.mappings)
    for p in (2, 4, 16):
        assert E.estimate_design(narrow, target, lanes=p).luts < E.estimate_design(wide, target, lanes=p).luts
    assert one.brams < E.estimate_design(wide, target, lanes=1).brams


def test_ice40_fit_counts_logic_cells():
    """On the iCE40 a logic cell holds one LUT4 and one flip-flop: the fit check counts cells."""
    art = _art([16, 8])
    ice = E.estimate_design(art, get_target("icebreaker"), lanes=2)
    assert ice.logic_cells == ice.luts + round(E.ICE40_CELLS_PER_FF * ice.ffs) > ice.luts
    ecp = E.estimate_design(art, get_target("ulx3s-85f"), lanes=2)
    assert ecp.logic_cells == ecp.luts
    target = get_target("icebreaker")
    point = ex.estimate_point(art, {"lanes": 2}, dataclasses.replace(target, luts=ice.logic_cells - 1),
                              ex.measure_spikes(art, _x(art, 4)), clock_mhz=12.0)
    assert not point.fits and point.why_not == f"logic cells {ice.logic_cells} > {ice.logic_cells - 1}"


def test_components_of_the_elaborated_hierarchy():
    assert E.component_of("top.bridge.core.layer1.unit12") == "l1.units"
    assert E.component_of("top.bridge.core.layer0") == "l0.engine"
    assert E.component_of("top.bridge.core.layer0.weights3") == "l0.engine"      # a RegisteredROM bank
    assert E.component_of("top.bridge.core.readout.weights") == "readout"
    assert E.component_of("top.bridge.core.ring1.inner.queue") == "l1.ring"
    assert E.component_of("top.bridge.core.ring0_decoder.out") == "l0.decoders"
    assert E.component_of("top.bridge.core.layer1_decoder") == "l1.decoders"
    assert E.component_of("top.bridge.core.layer0_fifo") == "l0.fifo"
    assert E.component_of("top.bridge.core.readout") == "readout"
    assert E.component_of("top.bridge.core.in_fifo") == "core"
    # E > 1: the wide decoders, packers, bundle queues and their registers of a stream
    assert E.component_of("top.bridge.core.ring1_bundles.ring1_packer") == "l1.decoders"
    assert E.component_of("top.bridge.core.ring0_bundles") == "l0.decoders"
    assert E.component_of("top.bridge.core.layer0_bundle_reg") == "l0.decoders"
    assert E.component_of("top.bridge.core.layer0_bundles.inner") == "l0.decoders"
    assert E.component_of("top.bridge.core.in_packer") == "core"
    assert E.component_of("top.bridge.uart_rx.sync_rx") == "bridge"
    assert E.component_of("top") == "bridge"
    # every component of a plan's features is one the hierarchy can produce
    est = E.estimate_design(_art([16, 8]), get_target("ulx3s-85f"), lanes=4)
    kinds = {E.component_kind(c) for c in est.features}
    assert kinds == {"units", "engine", "ring", "decoders", "fifo", "readout", "core", "bridge"}
    assert set(E.LUT_MODEL["ecp5"]["components"]) >= kinds


def test_fit_components_recovers_coefficients():
    rng = np.random.default_rng(3)
    true = {"one": 300.0, "lanes": 12.0, "lanes_log": 4.0}
    rows = []
    for _ in range(8):
        feats = {"one": 1.0, "lanes": float(rng.integers(1, 64)), "lanes_log": float(rng.integers(1, 400))}
        luts = sum(true[k] * v for k, v in feats.items())
        rows.append({"features": {"l0.decoders": feats},
                     "components": {"l0.decoders": {"luts": luts, "ffs": 2 * feats["lanes"], "lutram": 0.0}}})
    model = E.fit_components(rows, "ecp5")
    assert model["components"]["decoders"]["luts"] == pytest.approx(true, rel=1e-6)
    assert model["components"]["decoders"]["ffs"] == pytest.approx({"lanes": 2.0}, rel=1e-6)


def test_cli_writes_table_json_png(small_model, tmp_path, capsys):
    out = tmp_path / "ex"
    rc = main(["explore", str(small_model), "--board", "ulx3s-85f", "-o", str(out), "--lanes", "1,2,8",
               "--build", "0", "--samples", "3", "--steps", "10"])
    assert rc == 0, capsys.readouterr().err
    data = json.loads((out / "explore.json").read_text())
    assert data["axes"] == ["lanes", "events", "widths"] and data["axis_values"] == {"lanes": [1, 2, 8], "events": [1]}
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
    assert all("memories" in p["why_not"] for p in points)
    assert "do not fit" in capsys.readouterr().err
    table = (out / "explore.txt").read_text()
    assert table.count("no: memories") == 2
    assert (out / "explore.png").is_file()


@pytest.mark.parametrize("argv, words", [
    (["--board", "nope"], ["unknown board", "nope"]),
    (["--board", "generic"], ["generic"]),
    (["--board", "icebreaker", "--lanes", "0"], ["--lanes", "at least 1"]),
    (["--board", "icebreaker", "--lanes", ","], ["--lanes", "empty"]),
    (["--board", "icebreaker", "--build", "-1"], ["--build"]),
    (["--board", "icebreaker", "--events", "0"], ["--events", "1..8"]),
    (["--board", "icebreaker", "--events", "2,9"], ["--events", "1..8", "9"]),
    (["--board", "icebreaker", "--events", "two"], ["--events", "two"]),
    (["--board", "icebreaker", "--events", ","], ["--events", "empty"]),
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
