"""Calibrate and check the resource estimate of ``skipcore explore`` against real builds.

For each ``MODEL.skc:LANES`` (or ``LANESeE``, e.g. ``16e4``: lanes and events per cycle) it builds the board design (``skipcore build``; a build already in
``WORK/NAME`` with its report.json is reused), synthesises it a second time with the hierarchy
kept (``synth_ecp5 -noflatten`` / ``synth_ice40 -noflatten``, cached as ``hier.stat.json``) to
count each component's cells on its own, and prints per point the estimate against nextpnr's
counts (LUT, FF, BRAM, DSP) side by side, and per component the estimate against Yosys' count.
Points given with ``--synth`` are only elaborated and synthesised (hierarchical, and flat like the
build, cached as ``flat.stat.json``): they calibrate the components and the flattening, not the
place-and-route counts.

``--fit`` refits the per-component coefficients of :mod:`skipcore.boards.estimate` (non-negative
least squares of each component's Yosys cells on its structural features, then the factor from
Yosys' cells to nextpnr's LUT count) and prints them, to be written into ``LUT_MODEL`` with a
note of the builds they came from.

    nice -n 10 python benchmarks/calibrate_estimate.py --board ulx3s-85f --work /tmp/cal \\
        runs/demo/qat/model.skc:2,4,8,16,16e4,8e4 --synth w4.skc:2,8,16 w6.skc:4,16 [--fit]

The coefficients in boards/estimate.py (``LUT_MODEL[family]["source"]`` names the designs) came
from exactly such runs; ``--fit`` prints the JSON that goes there. After a change to hdl/ that
moves LUTs or FFs (e.g. pipeline registers), delete the folders under WORK and rerun the same
command: that rebuilds and resynthesises every point and refits. The ECP5 recalibration, as one
command (about an hour on two busy cores; W4 / W6 are ``skipcore quantize`` PTQs of the demo's
best.pt at 4 and 6 weight bits, ice_small a ``golden.random.random_artifact`` 4(real) -> LIF32 ->
LIF16 -> sum:4, W8 S16)::

    PATH=/work/main/.venv/bin:$PATH nice -n 10 .venv/bin/python benchmarks/calibrate_estimate.py \\
        --board ulx3s-85f --work /tmp/est/cal --fit \\
        runs/demo/qat/model.skc:16,8,4,2,16e4,16e2 \\
        --synth /tmp/est/demo_w4.skc:2,8,16 /tmp/est/demo_w6.skc:4,16 /tmp/est/ice_small.skc:1,2,4 \\
        runs/demo/qat/model.skc:1,32

then paste the printed JSON into ``LUT_MODEL["ecp5"]`` (its ``source`` names these designs).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


def _specs(texts):
    """``MODEL.skc:2,4,16e4`` -> [(model, lanes, events)] (``PeE``: P lanes, E events per cycle)."""
    out = []
    for text in texts:
        model, _, lanes = text.rpartition(":")
        if not model:
            raise SystemExit(f"expected MODEL.skc:LANES[eEVENTS],..., got {text!r}")
        for p in lanes.split(","):
            try:
                p_text, _, e_text = p.lower().partition("e")
                out.append((Path(model), int(p_text), int(e_text or 1)))
            except ValueError:
                raise SystemExit(f"expected LANES or LANESeEVENTS like 16e4, got {p!r} in {text!r}") from None
    return out


def point_folder(model: Path, lanes: int, events: int, work: Path) -> Path:
    """``WORK/<model stem>_P<lanes>`` (E = 1) or ``..._P<lanes>_E<events>``."""
    return work / (f"{model.stem}_P{lanes}" + (f"_E{events}" if events > 1 else ""))


def build_point(model: Path, lanes: int, events: int, board: str, work: Path) -> Path:
    """:func:`point_folder` with a finished build (built now when missing)."""
    from skipcore.boards.flow import build

    folder = point_folder(model, lanes, events, work)
    if not (folder / "report.json").is_file():
        print(f"building {folder.name} ...", flush=True)
        build(str(model), board, folder, lanes=lanes, events=events, force=folder.exists())
    return folder


def elaborate_point(model: Path, lanes: int, events: int, board: str, work: Path) -> Path:
    """``WORK/<model stem>_P<lanes>/build/top.il`` only (no place and route), as ``skipcore build``
    elaborates it (boards/flow.py step 2), for points measured by Yosys alone."""
    from skipcore.boards.flow import DEFAULT_BAUD, artifact_id, make_core
    from skipcore.boards.protocol import LinkFormat
    from skipcore.boards.targets import get_target
    from skipcore.boards.top import BoardTop, BridgeParams, UARTBridge
    from skipcore.boards.uart import uart_divisor
    from skipcore.golden.artifact import load

    folder = point_folder(model, lanes, events, work)
    if (folder / "build" / "top.il").is_file():
        return folder
    target = get_target(board)
    art = load(model)
    params = BridgeParams(link=LinkFormat.from_artifact(art), divisor=uart_divisor(target.clock_hz, DEFAULT_BAUD),
                          clock_hz=target.clock_hz, baud=DEFAULT_BAUD, layers=len(art.layers),
                          artifact_id=artifact_id(art))
    top = BoardTop(UARTBridge(make_core(art, lanes, debug=False, events=events), params))
    plan = target.platform().build(top, name="top", build_dir=str(folder / "build"), do_build=False,
                                   do_program=False, synth_opts=target.synth_opts)
    plan.extract(str(folder / "build"))
    return folder


def hierarchy_cells(folder: Path, family: str) -> dict[str, dict[str, int]]:
    """Cells per module of the design synthesised with its hierarchy kept (cached)."""
    from skipcore.boards.flow import tool_command

    cache = folder / "hier.stat.json"
    if not cache.is_file():
        print(f"hierarchical synthesis of {folder.name} ...", flush=True)
        synth = {"ecp5": "synth_ecp5 -noflatten", "ice40": "synth_ice40 -dsp -noflatten"}[family]
        # YoWASP's Yosys writes only below its working folder
        script = f"read_rtlil top.il; {synth} -top top; tee -q -o hier.stat.json stat -json"
        done = subprocess.run([tool_command("yosys"), "-q", "-p", script], cwd=folder / "build",
                              capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"yosys failed on {folder}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        (folder / "build" / "hier.stat.json").replace(cache)
    data = json.loads(cache.read_text())
    return {name: {k: int(v) for k, v in mod.get("num_cells_by_type", {}).items()}
            for name, mod in data["modules"].items()}


def flat_cells(folder: Path, family: str) -> dict[str, int]:
    """Cells of the flat netlist: the build's own ``top.stat.json`` when it was built, else a flat
    synthesis like the build's (cached as ``flat.stat.json``)."""
    from skipcore.boards.flow import _stat_cells, tool_command

    built = folder / "build" / "top.stat.json"
    if built.is_file():
        return _stat_cells(built)
    cache = folder / "flat.stat.json"
    if not cache.is_file():
        print(f"flat synthesis of {folder.name} ...", flush=True)
        synth = {"ecp5": "synth_ecp5", "ice40": "synth_ice40 -dsp"}[family]
        script = f"read_rtlil top.il; {synth} -top top; tee -q -o flat.stat.json stat -json"
        done = subprocess.run([tool_command("yosys"), "-q", "-p", script], cwd=folder / "build",
                              capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"yosys failed on {folder}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        (folder / "build" / "flat.stat.json").replace(cache)
    return _stat_cells(cache)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("points", nargs="+", help="MODEL.skc:LANES[,LANES...]")
    ap.add_argument("--board", required=True)
    ap.add_argument("--work", required=True, type=Path, help="build folders (reused when present)")
    ap.add_argument("--synth", nargs="*", default=[], metavar="MODEL.skc:LANES",
                    help="points measured by hierarchical Yosys synthesis only (no place and route): they "
                         "calibrate the components, not the totals")
    ap.add_argument("--fit", action="store_true", help="refit and print the per-component coefficients")
    args = ap.parse_args(argv)

    from skipcore.boards import estimate as E
    from skipcore.boards.targets import get_target
    from skipcore.golden.artifact import load

    target = get_target(args.board)
    rows = []
    points = [(*s, True) for s in _specs(args.points)] + [(*s, False) for s in _specs(args.synth)]
    for model, lanes, events, full in points:
        if full:
            folder = build_point(model, lanes, events, target.name, args.work)
        else:
            folder = elaborate_point(model, lanes, events, target.name, args.work)
        art = load(model)
        report = json.loads((folder / "report.json").read_text()) if full else None
        est = E.estimate_design(art, target, lanes=lanes, events=events)
        modules = hierarchy_cells(folder, target.family)
        rows.append({"name": folder.name, "model": art.summary(), "lanes": lanes, "events": events, "est": est, "report": report,
                     "features": est.features, "components": E.component_cells(modules, target.family),
                     "flat": flat_cells(folder, target.family)})

    def pct(e, a):
        return "" if not a else f"{100 * (e - a) / a:+.1f}%"

    print(f"\n{'point':24s} {'LUT est':>8s} {'real':>6s} {'err':>7s}  {'BRAM est':>8s} {'real':>5s} {'err':>7s}  "
          f"{'FF est':>7s} {'real':>6s} {'err':>7s}  {'DSP est':>7s} {'real':>4s}")
    for r in rows:
        e, a = r["est"], r["report"]
        if a is None:
            continue
        print(f"{r['name']:24s} {e.luts:8d} {a['luts']:6d} {pct(e.luts, a['luts']):>7s}  {e.brams:8d} {a['brams']:5d} "
              f"{pct(e.brams, a['brams']):>7s}  {e.ffs:7d} {a['ffs']:6d} {pct(e.ffs, a['ffs']):>7s}  {e.dsps:7d} "
              f"{a['dsps']:4d}")
    print("\nper component, Yosys cells (LUT-equivalents: LUT4 + 2 CCU2C + distributed-RAM LUTs): estimate / yosys")
    for r in rows:
        parts = []
        for comp, cells in sorted(r["components"].items()):
            est = r["est"].components.get(comp, {}).get("luts", 0)
            parts.append(f"{comp} {est:.0f}/{cells['luts']}")
        print(f"  {r['name']}: " + ", ".join(parts))
    if args.fit:
        print(json.dumps(E.fit_components(rows, target.family), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
