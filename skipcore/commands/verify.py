"""``skipcore verify``: float, golden and RTL accuracy, mismatches, cycles, resources, one report."""
from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("artifact", help="model.skc")
    parser.add_argument("--data", default=None, metavar="NAME_OR_PATH",
                        help="dataset name or path (default: the dataset named in the artifact)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N test samples (N >= 1)")
    parser.add_argument("--lanes", type=int, default=8,
                        help="lanes per layer engine, at least 1, clamped to each layer's neuron count "
                             "(default %(default)s)")
    parser.add_argument("--events", "-E", type=int, default=1, metavar="E", help="events per cycle per layer engine, 1..8: the weight rows of up to E events are read and summed in one cycle, so a step with k events costs about ceil(k/E) instead of k row reads (default %(default)s)")
    parser.add_argument("--board", default=None,
                        help="also build for this board: icebreaker, ulx3s-85f, generic (checked before any work)")
    parser.add_argument("--clock", type=float, default=None, metavar="MHZ",
                        help="clock for latency/throughput (default: the build's Fmax)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="report folder: report.md, raster.png, cycles.png, core/, cocotb/, build-BOARD/ "
                             "(default: the folder of --json, or verify/)")
    parser.add_argument("--json", default=None, metavar="REPORT.json", help="where to write the JSON report")
    parser.add_argument("--cocotb-samples", type=int, default=20,
                        help="samples also run through cocotb, compared neuron by neuron with golden; sample 0 draws the raster (default %(default)s; 0: none)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="fast-runner processes at once, each on a shard of the test set (default: one per CPU)")
    parser.add_argument("--force", action="store_true",
                        help="replace --json and what skipcore wrote in --out earlier (never other files)")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from skipcore.flow import verify
    from skipcore.report import print_table

    out = Path(args.out) if args.out else (Path(args.json).parent if args.json else Path("verify"))
    label = "--out" if args.out else ("the report folder (the folder of --json)" if args.json
                                      else "the report folder (default)")
    report = verify(args.artifact, out_dir=out, data=args.data, limit=args.limit, lanes=args.lanes,
                    events=args.events, board=args.board, clock_mhz=args.clock, json_path=args.json,
                    cocotb_samples=args.cocotb_samples, jobs=args.jobs, force=args.force, progress=not args.no_progress,
                    out_label=label)
    print_table(report)
    print(f"report: {Path(args.json) if args.json else out / 'report.json'} and {out / 'report.md'}")
    return 1 if report.mismatches["count"] else 0
