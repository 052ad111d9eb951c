"""``skipcore build model.skc --board B -o DIR``: synthesis, place and route, bitstream, report."""
from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from skipcore.boards.flow import DEFAULT_PLACER, PLACERS
    from skipcore.boards.targets import TARGETS

    parser.add_argument("model", help="the quantized artifact (model.skc)")
    parser.add_argument("--board", "-b", required=True, metavar="BOARD",
                        help="target: " + "; ".join(f"{t.name} ({t.description})" for t in TARGETS.values()))
    parser.add_argument("-o", "--out", required=True, metavar="DIR",
                        help="output folder: bitstream, report.json, build.log, build/ (generic: core.v, README.md)")
    parser.add_argument("--lanes", "-P", type=int, default=1, metavar="P",
                        help="neurons updated in parallel per layer engine (1..N; more lanes: faster, larger)")
    parser.add_argument("--events", "-E", type=int, default=1, metavar="E", help="events per cycle per layer engine, 1..8: the weight rows of up to E events are read and summed in one cycle, so a step with k events costs about ceil(k/E) instead of k row reads (default %(default)s)")
    parser.add_argument("--freq", type=float, default=None, metavar="MHZ",
                        help="core clock: generates the board's PLL (SB_PLL40 on the iCEBreaker, EHXPLLL on "
                             "the ULX3S) for this clock; refused when the PLL cannot make it within 1%% "
                             "(default: no PLL, the board oscillator: 12 MHz on the iCEBreaker, 25 MHz on the ULX3S)")
    parser.add_argument("--baud", type=int, default=115200, help="UART baud rate of the host link (default 115200)")
    parser.add_argument("--seed", type=int, default=None, metavar="N",
                        help="nextpnr placement seed, recorded in report.json (default: a fixed seed, so builds "
                             "are reproducible; Fmax varies by a few per cent between seeds)")
    parser.add_argument("--placer", choices=PLACERS, default=DEFAULT_PLACER,
                        help="nextpnr's placer, recorded in report.json (default %(default)s; static: faster "
                             "and better on large ECP5 cores such as the SHD-size one, but it may not converge "
                             "on small cores dense in block RAM)")
    parser.add_argument("--force", action="store_true",
                        help="replace what skipcore wrote in DIR earlier (never files or folders of your own)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from skipcore.boards.flow import DEFAULT_SEED, build, print_summary

    console = Console(stderr=True)
    seed = DEFAULT_SEED if args.seed is None else args.seed
    result = build(args.model, args.board, args.out, lanes=args.lanes, events=args.events, freq_mhz=args.freq, baud=args.baud,
                   seed=seed, placer=args.placer, force=args.force, console=console)
    summary = result.summary
    if args.json:
        print(json.dumps({k: summary.get(k) for k in
                          ("board", "luts", "ffs", "brams", "dsps", "fmax_mhz", "clock_mhz", "pll", "seed", "placer", "utilization")}, indent=1))
    elif summary.get("board") == "generic":
        console.print(f"wrote {', '.join(summary['files'])} to {result.out_dir}")
    else:
        print_summary(console, summary)
    if summary.get("board") == "generic":
        return 0
    console.print(f"bitstream: {result.bitstream}; report: {result.out_dir / 'report.json'}; log: {result.log}")
    if not result.timing_met:
        console.print(
            f"[red]timing not met:[/] Fmax {summary.get('fmax_mhz')} MHz is below the "
            f"{summary.get('target_mhz'):g} MHz clock; the bitstream may misbehave on the board. Try "
            "fewer --lanes or narrower bit widths (see build/top.tim for the critical path)."
        )
        return 1
    return 0
