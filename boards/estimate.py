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
from dataclasses import dataclass, field

from skipcore.errors import ConfigError

from .targets import Target

__all__ = ["DoesNotFit", "MemoryUse", "ResourceEstimate", "estimate", "check_fit", "overflow_from_nextpnr"]

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
