"""The build targets: two open-toolchain boards and a plain-Verilog export.

Each :class:`Target` names its amaranth-boards platform, its clock, the resources of its FPGA
(for the fit estimate and the report), the nextpnr cell names of those resources and the
bitstream the flow produces. :func:`get_target` is the only lookup; an unknown name raises
:class:`~skipcore.errors.ConfigError` listing the valid ones.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from skipcore.errors import ConfigError

__all__ = ["TARGETS", "Target", "get_target", "target_names"]


@dataclass(frozen=True)
class Target:
    """One build target."""

    name: str
    description: str
    family: str  #: "ice40", "ecp5" or "generic"
    device: str = ""
    clock_hz: int = 0  #: the board oscillator that drives the default clock
    clock_resource: str = ""  #: the amaranth-boards resource of that oscillator (the PLL's input)
    platform: Callable[[], object] | None = field(default=None, repr=False, compare=False)
    bitstream: str = ""  #: file name of the bitstream amaranth's flow writes ("top.bin", "top.bit")
    synth_opts: str = ""
    luts: int = 0  #: LUT4s (iCE40: logic cells, each one LUT4 + one FF)
    ffs: int = 0
    bram_blocks: int = 0
    bram_block_bits: int = 0
    #: (width, depth) shapes one block RAM can take as a simple dual-port memory
    bram_shapes: tuple[tuple[int, int], ...] = ()
    distributed_ram_bits: int = 0  #: LUT RAM (ECP5); iCE40 has none
    dsps: int = 0
    ios: int = 0
    #: nextpnr utilisation keys -> the summary names of report.json
    cells: dict[str, str] = field(default_factory=dict, compare=False)
    program_hint: str = ""

    @property
    def is_board(self) -> bool:
        return self.platform is not None

    @property
    def bram_bits(self) -> int:
        return self.bram_blocks * self.bram_block_bits


def _icebreaker():
    from amaranth_boards.icebreaker import ICEBreakerPlatform

    return ICEBreakerPlatform()


def _ulx3s_85f():
    from amaranth_boards.ulx3s import ULX3S_85F_Platform

    from .ecp5_primitives import ecp5_platform

    # the weight ROMs become DP16KDs and the unit products MULT18X18Ds, with their output registers
    # (boards/ecp5_primitives.py)
    return ecp5_platform(ULX3S_85F_Platform)()


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target(
            name="icebreaker",
            description="1BitSquared iCEBreaker: Lattice iCE40 UP5K (SG48), 12 MHz, UART over the FTDI",
            family="ice40",
            device="iCE40UP5K-SG48",
            clock_hz=12_000_000,
            clock_resource="clk12",
            platform=_icebreaker,
            bitstream="top.bin",
            synth_opts="-dsp",
            luts=5280,
            ffs=5280,
            bram_blocks=30,
            bram_block_bits=4096,
            bram_shapes=((16, 256), (8, 512), (4, 1024), (2, 2048)),
            distributed_ram_bits=0,
            dsps=8,
            ios=39,
            cells={"ICESTORM_LC": "luts", "ICESTORM_RAM": "brams", "ICESTORM_DSP": "dsps", "SB_IO": "ios"},
            program_hint="iceprog {bitstream}",
        ),
        Target(
            name="ulx3s-85f",
            description="Radiona ULX3S: Lattice ECP5 LFE5U-85F (CABGA381), 25 MHz, UART over the FTDI",
            family="ecp5",
            device="LFE5U-85F-6BG381C",
            clock_hz=25_000_000,
            clock_resource="clk25",
            platform=_ulx3s_85f,
            bitstream="top.bit",
            synth_opts="",
            luts=83640,
            ffs=83640,
            bram_blocks=208,
            bram_block_bits=18432,
            bram_shapes=((36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384)),
            distributed_ram_bits=669_000,
            dsps=156,
            ios=197,
            cells={"TRELLIS_COMB": "luts", "TRELLIS_FF": "ffs", "DP16KD": "brams", "MULT18X18D": "dsps",
                   "TRELLIS_IO": "ios"},
            program_hint="openFPGALoader -b ulx3s {bitstream}",
        ),
        Target(
            name="generic",
            description="plain Verilog (core.v) and constraints notes for a vendor flow; no synthesis",
            family="generic",
        ),
    )
}


def target_names() -> list[str]:
    return list(TARGETS)


def get_target(name: str) -> Target:
    """The target called ``name``; ConfigError listing the valid names otherwise."""
    key = str(name).strip().lower()
    if key not in TARGETS:
        raise ConfigError(f"unknown board {name!r}; valid boards: {', '.join(TARGETS)}")
    return TARGETS[key]
