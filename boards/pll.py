"""PLL settings for ``skipcore build --freq``: pure-Python solvers and the Amaranth clock domain.

:func:`solve_pll` turns a board oscillator and a requested clock into divider settings for the
board's PLL primitive, or refuses with one line naming the nearest achievable clocks and the
device limits. The searches are ports of the open-toolchain calculators, so the settings match
what those tools print:

* iCE40 ``SB_PLL40`` (simple feedback): ``icepll``. f_PFD = f_in / (DIVR + 1) in 10..133 MHz,
  f_VCO = f_PFD * (DIVF + 1) in 533..1066 MHz, f_out = f_VCO / 2**DIVQ (DIVQ 1..6); input
  10..133 MHz, output 16..275 MHz; FILTER_RANGE from f_PFD.
* ECP5 ``EHXPLLL`` (feedback from CLKOP): ``ecppll``. f_PFD = f_in / CLKI_DIV in 3.125..400 MHz,
  f_out = f_PFD * CLKFB_DIV (CLKFB_DIV 1..80), f_VCO = f_out * CLKOP_DIV in 400..800 MHz (the
  CLKOP_DIV that puts the VCO nearest 600 MHz); input 8..400 MHz, output 10..400 MHz.

:func:`pll_domain` is the ``pll(m, platform)`` callable :class:`~.top.BoardTop` takes: it
instantiates the primitive with those settings, drives the ``sync`` domain from its output
and holds ``sync`` in reset until the PLL reports LOCK.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable

from skipcore.errors import ConfigError

__all__ = ["LIMITS", "PLLConfig", "PLLLimits", "achievable_near", "ecp5_pll", "ice40_pll", "pll_domain",
           "solve_pll"]

#: how far the achieved clock may be from the requested one before the request is refused
TOLERANCE = 0.01


@dataclass(frozen=True)
class PLLLimits:
    """Frequency ranges of one PLL (MHz, inclusive), from the device datasheets as the tools use them."""

    primitive: str
    input_mhz: tuple[float, float]
    output_mhz: tuple[float, float]
    pfd_mhz: tuple[float, float]
    vco_mhz: tuple[float, float]

    def describe(self) -> str:
        return (f"{self.primitive}: input {self.input_mhz[0]:g}-{self.input_mhz[1]:g} MHz, "
                f"output {self.output_mhz[0]:g}-{self.output_mhz[1]:g} MHz, "
                f"PFD {self.pfd_mhz[0]:g}-{self.pfd_mhz[1]:g} MHz, VCO {self.vco_mhz[0]:g}-{self.vco_mhz[1]:g} MHz")


LIMITS: dict[str, PLLLimits] = {
    "ice40": PLLLimits("SB_PLL40_PAD", (10, 133), (16, 275), (10, 133), (533, 1066)),
    "ecp5": PLLLimits("EHXPLLL", (8, 400), (10, 400), (3.125, 400), (400, 800)),
}


@dataclass(frozen=True)
class PLLConfig:
    """One solved PLL: the primitive, its divider parameters and the frequencies they give."""

    family: str
    primitive: str
    input_hz: int
    requested_hz: float
    achieved: Fraction = field(repr=False)  #: exact output frequency in Hz
    pfd: Fraction = field(repr=False)
    vco: Fraction = field(repr=False)
    dividers: dict[str, int] = field(default_factory=dict, compare=False)

    @property
    def achieved_hz(self) -> int:
        """The output clock in whole Hz (what the UART divisor and the timeouts are computed from)."""
        return round(self.achieved)

    @property
    def achieved_mhz(self) -> float:
        return float(self.achieved) / 1e6

    def as_dict(self) -> dict:
        return {
            "primitive": self.primitive,
            "input_mhz": self.input_hz / 1e6,
            "requested_mhz": self.requested_hz / 1e6,
            "achieved_mhz": round(self.achieved_mhz, 6),
            "pfd_mhz": round(float(self.pfd) / 1e6, 6),
            "vco_mhz": round(float(self.vco) / 1e6, 6),
            **self.dividers,
        }


def _in(value: Fraction, bounds: tuple[float, float]) -> bool:
    return Fraction(bounds[0]) * 10**6 <= value <= Fraction(bounds[1]) * 10**6


def _check_range(family: str, input_hz: float, output_hz: float) -> PLLLimits:
    lim = LIMITS[family]
    if not _in(Fraction(input_hz), lim.input_mhz):
        raise ConfigError(f"the {input_hz / 1e6:g} MHz oscillator cannot drive the PLL ({lim.describe()})")
    if not (output_hz > 0):
        raise ConfigError(f"--freq must be positive, got {output_hz / 1e6:g} MHz")
    return lim


def _ice40_search(input_hz: int, output_hz: float) -> PLLConfig | None:
    """icepll's search (simple feedback); the first setting with the smallest error wins."""
    lim = LIMITS["ice40"]
    best: PLLConfig | None = None
    best_err = None
    for divr in range(16):
        pfd = Fraction(input_hz, divr + 1)
        if not _in(pfd, lim.pfd_mhz):
            continue
        for divf in range(128):
            vco = pfd * (divf + 1)
            if not _in(vco, lim.vco_mhz):
                continue
            for divq in range(1, 7):
                out = vco / 2**divq
                err = abs(out - Fraction(output_hz))
                if best_err is None or err < best_err:
                    best_err = err
                    best = PLLConfig("ice40", lim.primitive, input_hz, output_hz, out, pfd, vco, {
                        "DIVR": divr, "DIVF": divf, "DIVQ": divq, "FILTER_RANGE": _filter_range(pfd),
                        "FEEDBACK_PATH": "SIMPLE"})
    return best


def _filter_range(pfd: Fraction) -> int:
    """icepll's loop-filter setting for a PFD frequency."""
    mhz = pfd / 10**6
    for limit, value in ((17, 1), (26, 2), (44, 3), (66, 4), (101, 5)):
        if mhz < limit:
            return value
    return 6


def _f32(x: float) -> float:
    """``x`` rounded to single precision (each float op rounded through double is exact for float32)."""
    return struct.unpack("f", struct.pack("f", x))[0]


def _ecp5_search(input_hz: int, output_hz: float) -> PLLConfig | None:
    """ecppll's search: smallest error first, then the VCO nearest 600 MHz; earlier settings win
    ties. ecppll compares in single precision (MHz), which decides near-ties (25 -> 133 MHz picks
    CLKOP_DIV 5, not 4), so the comparisons here do too; the frequencies reported are exact."""
    lim = LIMITS["ecp5"]
    vco_lo, vco_hi = (Fraction(v) * 10**6 for v in lim.vco_mhz)
    fin = _f32(input_hz / 1e6)
    want = _f32(output_hz / 1e6)
    best: PLLConfig | None = None
    best_key = None
    for clki_div in range(1, 129):
        pfd = Fraction(input_hz, clki_div)
        if not _in(pfd, lim.pfd_mhz):
            continue
        pfd32 = _f32(fin / clki_div)
        for clkfb_div in range(1, 81):
            out = pfd * clkfb_div
            # the CLKOP_DIVs that put the VCO in range (one more each side for rounding)
            first = max(1, int(vco_lo // out))
            last = min(128, int(vco_hi // out) + 1)
            for clkop_div in range(first, last + 1):
                vco32 = _f32(_f32(pfd32 * clkfb_div) * clkop_div)
                if not lim.vco_mhz[0] <= vco32 <= lim.vco_mhz[1]:
                    continue
                out32 = _f32(vco32 / clkop_div)
                key = (_f32(abs(_f32(out32 - want))), _f32(abs(_f32(vco32 - 600.0))))
                if best_key is None or key < best_key:
                    best_key = key
                    best = PLLConfig("ecp5", lim.primitive, input_hz, output_hz, out, pfd, out * clkop_div, {
                        "CLKI_DIV": clki_div, "CLKFB_DIV": clkfb_div, "CLKOP_DIV": clkop_div,
                        # 0 degrees: the coarse phase counts one VCO period less than the divider
                        # (Lattice's and LiteX's setting for an unshifted CLKOP)
                        "CLKOP_CPHASE": clkop_div - 1, "CLKOP_FPHASE": 0, "FEEDBK_PATH": "CLKOP"})
    return best


_SEARCH: dict[str, Callable[[int, float], PLLConfig | None]] = {"ice40": _ice40_search, "ecp5": _ecp5_search}


def ice40_pll(input_hz: int, output_hz: float) -> PLLConfig:
    """icepll's answer for ``input_hz`` -> ``output_hz`` (no tolerance check)."""
    _check_range("ice40", input_hz, output_hz)
    return _SEARCH["ice40"](input_hz, output_hz)


def ecp5_pll(input_hz: int, output_hz: float) -> PLLConfig:
    """ecppll's answer for ``input_hz`` -> ``output_hz`` (no tolerance check)."""
    _check_range("ecp5", input_hz, output_hz)
    return _SEARCH["ecp5"](input_hz, output_hz)


def _achievable(family: str, input_hz: int) -> set[Fraction]:
    """Every output the PLL can make from ``input_hz`` (all dividers inside the PFD/VCO limits)."""
    lim = LIMITS[family]
    out: set[Fraction] = set()
    if family == "ice40":
        for divr in range(16):
            pfd = Fraction(input_hz, divr + 1)
            if _in(pfd, lim.pfd_mhz):
                for divf in range(128):
                    vco = pfd * (divf + 1)
                    if _in(vco, lim.vco_mhz):
                        out.update(vco / 2**divq for divq in range(1, 7))
    else:
        vco_lo, vco_hi = (Fraction(v) * 10**6 for v in lim.vco_mhz)
        for clki_div in range(1, 129):
            pfd = Fraction(input_hz, clki_div)
            if _in(pfd, lim.pfd_mhz):
                for clkfb_div in range(1, 81):
                    f = pfd * clkfb_div
                    # some CLKOP_DIV in 1..128 puts f * CLKOP_DIV inside the VCO range
                    first = max(1, -(-vco_lo // f))
                    if first <= 128 and f * first <= vco_hi:
                        out.add(f)
    return out


def achievable_near(family: str, input_hz: int, output_hz: float) -> list[float]:
    """The achievable outputs (Hz) inside the output limits nearest ``output_hz``: the closest
    below and the closest above (one of them when the request is outside the limits)."""
    lo, hi = (Fraction(v) * 10**6 for v in LIMITS[family].output_mhz)
    target = Fraction(output_hz)
    reachable = [f for f in _achievable(family, input_hz) if lo <= f <= hi]
    under = [f for f in reachable if f <= target]
    over = [f for f in reachable if f >= target]
    near = []
    if under:
        near.append(max(under))
    if over and min(over) not in near:
        near.append(min(over))
    return [float(f) for f in near]


def solve_pll(family: str, input_hz: int, output_hz: float, *, tolerance: float = TOLERANCE) -> PLLConfig:
    """The PLL setting for ``output_hz`` from ``input_hz`` on ``family`` ("ice40" or "ecp5").

    Raises :class:`ConfigError` (one line: the nearest achievable clocks and the device limits)
    when the request is outside the PLL's output range or no setting comes within ``tolerance``.
    """
    if family not in LIMITS:
        raise ConfigError(f"no PLL for the {family!r} family (PLLs: {', '.join(LIMITS)})")
    lim = _check_range(family, input_hz, output_hz)
    lo, hi = lim.output_mhz
    cfg = None
    if lo * 1e6 <= output_hz <= hi * 1e6:
        cfg = _SEARCH[family](input_hz, output_hz)
        if cfg is not None and not _in(cfg.achieved, lim.output_mhz):
            # the tools' answer can land just outside the output range (icepll -o 16 gives 15.94):
            # take the nearest setting inside it instead
            near = achievable_near(family, input_hz, output_hz)
            cfg = None
            if near:
                best = min(near, key=lambda f: abs(f - output_hz))
                cfg = _SEARCH[family](input_hz, best)
                cfg = PLLConfig(cfg.family, cfg.primitive, input_hz, output_hz, cfg.achieved, cfg.pfd, cfg.vco,
                                cfg.dividers)
    if cfg is not None and abs(float(cfg.achieved) - output_hz) <= tolerance * output_hz:
        return cfg
    near = achievable_near(family, input_hz, output_hz)
    nearest = " or ".join(f"{f / 1e6:.6g} MHz" for f in near) or "none"
    raise ConfigError(
        f"--freq {output_hz / 1e6:g} MHz cannot be made from the {input_hz / 1e6:g} MHz oscillator within "
        f"{tolerance:.0%}: nearest achievable {nearest} ({lim.describe()})")


# ------------------------------------------------------------------------------------------------
# the clock domain


def pll_domain(config: PLLConfig, clock_resource: str) -> Callable:
    """``pll(m, platform)`` for :class:`~.top.BoardTop`: ``config``'s primitive fed by the board's
    ``clock_resource`` drives ``sync``; ``sync`` stays in reset until LOCK (synchronised to the
    PLL clock). The sync clock gets a timing constraint at the achieved frequency."""

    def pll(m, platform) -> None:
        from amaranth import ClockDomain, Instance, Signal
        from amaranth.lib.cdc import ResetSynchronizer

        m.domains.sync = cd_sync = ClockDomain("sync")
        lock = Signal()
        d = config.dividers
        if config.family == "ice40":
            # the iCE40 PLL's dedicated input pad feeds it directly (no SB_IO on the pin)
            pin = platform.request(clock_resource, dir="-")
            m.submodules.pll = Instance(
                "SB_PLL40_PAD",
                p_FEEDBACK_PATH=d["FEEDBACK_PATH"], p_DIVR=d["DIVR"], p_DIVF=d["DIVF"], p_DIVQ=d["DIVQ"],
                p_FILTER_RANGE=d["FILTER_RANGE"],
                io_PACKAGEPIN=pin.io, i_RESETB=1, i_BYPASS=0,
                o_PLLOUTGLOBAL=cd_sync.clk, o_LOCK=lock,
            )
        elif config.family == "ecp5":
            clk = platform.request(clock_resource, dir="i")
            m.submodules.pll = Instance(
                "EHXPLLL",
                p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
                p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_CLKOP_ENABLE="ENABLED",
                p_CLKI_DIV=d["CLKI_DIV"], p_CLKFB_DIV=d["CLKFB_DIV"], p_CLKOP_DIV=d["CLKOP_DIV"],
                p_CLKOP_CPHASE=d["CLKOP_CPHASE"], p_CLKOP_FPHASE=d["CLKOP_FPHASE"], p_FEEDBK_PATH=d["FEEDBK_PATH"],
                a_FREQUENCY_PIN_CLKI=f"{config.input_hz / 1e6:g}",
                a_FREQUENCY_PIN_CLKOP=f"{config.achieved_mhz:.6g}",
                a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
                i_CLKI=clk.i, i_CLKFB=cd_sync.clk, o_CLKOP=cd_sync.clk,
                i_RST=0, i_STDBY=0, i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1,
                i_PHASELOADREG=1, i_PLLWAKESYNC=0, i_ENCLKOP=0, o_LOCK=lock,
            )
        else:
            raise ConfigError(f"no PLL for the {config.family!r} family")
        if config.family == "ecp5":
            # the synchronised reset reaches every flip-flop's LSR pin of the device: through a
            # DCCA it takes a global network (nextpnr-ecp5 promotes only clocks by itself); on
            # fabric routing it is a path of 6-9 ns at 150 MHz, as long as the whole period
            m.domains.reset_source = cd_source = ClockDomain("reset_source")
            m.d.comb += cd_source.clk.eq(cd_sync.clk)
            m.submodules.reset_sync = ResetSynchronizer(~lock, domain="reset_source")
            m.submodules.reset_buffer = Instance("DCCA", i_CLKI=cd_source.rst, i_CE=1, o_CLKO=cd_sync.rst)
        else:
            # nextpnr-ice40 promotes a high-fanout reset to a global buffer by itself
            m.submodules.reset_sync = ResetSynchronizer(~lock, domain="sync")
        platform.add_clock_constraint(cd_sync.clk, config.achieved_hz)

    return pll
