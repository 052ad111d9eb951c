"""``skipcore explore model.skc --board B -o DIR``: a grid over lanes and bit widths, estimated,
with the Pareto front built for real (boards/explore.py holds the work).

Writes ``explore.json``, ``explore.png`` and ``explore.txt`` (the table) into ``DIR``, and each
real build into ``DIR/builds/NAME``.
"""
from __future__ import annotations

import argparse
import io
from pathlib import Path

HELP_AXES = (
    "The grid's axes are lanes and widths. E (events per cycle) is not an axis yet: the generator "
    "has no such option; it joins the grid as one more axis when it does. Estimates: block RAMs as "
    "Yosys maps every memory; LUTs and FFs per component from the generator's plan, calibrated on "
    "real builds; built points show estimate against actual with the error in %."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from skipcore.boards.targets import TARGETS

    parser.description = f"{parser.description}. {HELP_AXES}"
    parser.add_argument("model", help="the quantized artifact (model.skc)")
    parser.add_argument("--board", "-b", required=True, metavar="BOARD",
                        help="target: " + ", ".join(t.name for t in TARGETS.values() if t.is_board))
    parser.add_argument("-o", "--out", required=True, metavar="DIR",
                        help="output folder: explore.json, explore.png, explore.txt, builds/")
    parser.add_argument("--lanes", "-P", default="1,2,4,8", metavar="LIST",
                        help="lanes axis, e.g. 1,2,4,8 or 1-4 (default %(default)s)")
    parser.add_argument("--weights", default=None, metavar="LIST",
                        help="weight-bits axis; needs --checkpoint (each width is a new PTQ of it; state bits "
                             "keep the artifact's headroom over the weights). Without --checkpoint the widths "
                             "axis is the artifact's own widths only")
    parser.add_argument("--checkpoint", default=None, metavar="best.pt",
                        help="float checkpoint to re-quantize for --weights (skipcore quantize's PTQ)")
    parser.add_argument("--build", type=int, default=1, metavar="N",
                        help="build this many Pareto points for real, fastest first (minutes each on an "
                             "ECP5-85F; 0: estimate only; default %(default)s)")
    parser.add_argument("--freq", type=float, default=None, metavar="MHZ",
                        help="clock for the latency and the builds (default: the board oscillator)")
    parser.add_argument("--data", default=None, metavar="NAME_OR_PATH",
                        help="dataset whose test split gives the activity (default: the artifact's dataset; "
                             "random inputs when it has none, said so in the report)")
    parser.add_argument("--samples", type=int, default=64, help="test sequences for the activity (default %(default)s)")
    parser.add_argument("--steps", type=int, default=100,
                        help="steps per random input sequence when there is no dataset (default %(default)s)")
    parser.add_argument("--force", action="store_true",
                        help="replace what skipcore wrote in DIR earlier (never files or folders of your own)")


def _activity_inputs(art, data, samples: int, steps: int):
    import numpy as np

    from skipcore.errors import ConfigError
    from skipcore.golden.random import random_inputs

    if samples < 1:
        raise ConfigError(f"--samples must be at least 1, got {samples}")
    has_dataset = bool(art.provenance.get("dataset")) if isinstance(art.provenance, dict) else False
    if data is not None or has_dataset:
        from skipcore.evaluate import check_data, resolve_data

        ds = resolve_data(data or None, art.provenance)
        check_data(art, ds.info)
        x = ds.test.x[:samples]
        return x, f"dataset {ds.info.name} test split, first {len(x)} sequences"
    if steps < 1:
        raise ConfigError(f"--steps must be at least 1, got {steps}")
    x = random_inputs(np.random.default_rng(0), art, samples, steps)
    return x, (f"random inputs (the artifact names no dataset): golden.random.random_inputs(default_rng(0), "
               f"batch={samples}, steps={steps})")


def _variants(art, args):
    from skipcore.boards.explore import Variant
    from skipcore.errors import ConfigError

    if args.weights is None:
        if args.checkpoint is not None:
            raise ConfigError("--checkpoint is only used with --weights; give the weight bits to re-quantize at")
        return [Variant(art, "the artifact")]
    if args.checkpoint is None:
        raise ConfigError("--weights needs --checkpoint best.pt: other widths are a new PTQ of the float "
                          f"checkpoint; without it the widths are the artifact's own (W{art.widths.weight_bits})")
    from .sweep import _bits_list

    bits = sorted(set(_bits_list(args.weights, "--weights")))
    for b in bits:
        if not 2 <= b <= 16:
            raise ConfigError(f"--weights values must be 2..16, got {b}")
    return bits


def _ptq_variants(art, checkpoint: str, bits: list[int], status):
    from skipcore.boards.explore import Variant
    from skipcore.quant.export import ExportOptions
    from skipcore.quant.ptq import quantize_checkpoint

    w = art.widths
    out = []
    for b in bits:
        status(f"PTQ of {checkpoint} at W{b}")
        opts = ExportOptions(weight_bits=b, state_bits=w.state_bits - w.weight_bits + b,
                             readout_bits=w.readout_bits - w.weight_bits + b, decay_bits=w.decay_bits,
                             input_bits=art.input.bits if art.input.kind != "spike" else None,
                             input_frac_bits=art.input.frac_bits if art.input.kind == "real" else None,
                             decay_mode=art.layers[0].decay_mode).validate()
        report = quantize_checkpoint(checkpoint, None, opts, evaluate=False)
        out.append(Variant(report["artifact"], f"PTQ of {checkpoint}"))
    return out


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from skipcore.boards import explore as ex
    from skipcore.boards.estimate import LUT_MODEL
    from skipcore.boards.targets import get_target
    from skipcore.errors import ConfigError
    from skipcore.golden.artifact import load
    from skipcore.outputs import OutputPlan

    from .sweep import _bits_list

    # every option checked before any work
    target = get_target(args.board)
    if not target.is_board:
        raise ConfigError(f"explore needs a board with a device, not {target.name!r}; choose icebreaker or ulx3s-85f")
    lanes = ex.check_lanes(_bits_list(args.lanes, "--lanes"))
    if args.build < 0:
        raise ConfigError(f"--build must be 0 or more, got {args.build}")
    if args.freq is not None and not args.freq > 0:
        raise ConfigError(f"--freq must be positive, got {args.freq}")
    plan = OutputPlan("explore", inputs=[args.model, args.checkpoint, args.data], force=args.force)
    plan.folder(args.out, "-o", files=("explore.json", "explore.png", "explore.txt"), folders=("builds",))
    art = load(args.model)
    widths = _variants(art, args)
    x, source = _activity_inputs(art, args.data, args.samples, args.steps)
    if target.family not in LUT_MODEL:
        raise ConfigError(f"the resource estimate has no LUT coefficients for {target.family} ({target.name})")
    plan.prepare()

    console = Console(stderr=True)
    with console.status("exploring") as status:
        def say(text: str) -> None:
            status.update(f"[bold]{text}[/]...")

        variants = widths if isinstance(widths[0], ex.Variant) else _ptq_variants(art, args.checkpoint, widths, say)
        points = ex.estimate_grid(variants, {"lanes": lanes}, target.name, x, clock_mhz=args.freq, progress=say)
    if args.build:
        ex.build_points(points, variants, target.name, Path(args.out) / "builds", args.build, freq_mhz=args.freq,
                        console=console, force=args.force)
    clock = args.freq or target.clock_hz / 1e6
    title = (f"{art.summary()} on {target.name}: latency at {clock:g} MHz, activity from {source.split(':')[0]}; "
             f"axes {', '.join(ex.AXES)} (no E axis yet)")
    tables = [t for t in (ex.points_table(points, title), ex.built_table(points)) if t is not None]
    out = Path(args.out)
    text_console = Console(width=160, record=True, file=io.StringIO())
    for table in tables:
        console.print(table)
        text_console.print(table)
    from skipcore.outputs import atomic_write_text

    atomic_write_text(out / "explore.txt", text_console.export_text())
    meta = {"model": art.summary(), "artifact": str(args.model), "board": target.name, "device": target.device,
            "clock_mhz": clock, "activity": source,
            "estimate": {"brams": "every memory mapped as Yosys' memory_libmap maps it (boards/estimate.py)",
                         "luts_ffs": "per component from the generator's plan; coefficients "
                                     + LUT_MODEL[target.family]["source"]},
            "e_axis": "not yet: the generator has no events-per-cycle option; E joins AXES when it has",
            "widths_axis": "PTQ of " + args.checkpoint if args.checkpoint else "the artifact's own widths",
            "built": args.build}
    ex.write_json(points, out / "explore.json", meta)
    ex.plot_points(points, out / "explore.png", title)
    console.print(f"wrote {out / 'explore.txt'}, {out / 'explore.json'}, {out / 'explore.png'}")
    misfits = sum(not p.fits for p in points)
    if misfits:
        console.print(f"[yellow]{misfits} of {len(points)} points do not fit {target.name}[/] (kept in the table)")
    return 0
