"""SHD-size benchmark against Spiker+: resources, Fmax and microseconds per inference on the ECP5-85F.

The network (issue 12): 700 spike inputs -> ALIF128 (span 1) -> ALIF128 (span 4) -> 20 leaky
readout, W8/S16 (R24, D8), built by ``skipcore.shd_like.calibrated_alif_network`` on the library's
artifact (``golden.random.random_artifact`` for the structure, then Gaussian integer weights,
SRNN's time constants as decays: membrane 20 +- 5 ms, adaptation 200 +- 25 ms, readout 20 ms at
4 ms bins; beta = b0).

The input: a seeded synthetic SHD-like stream (``skipcore.shd_like.shd_like_events``; SHD itself
cannot be downloaded here): T = 250 bins of 4 ms (SHD's usual binning of its ~1 s samples), 700
cochlea channels, 0/1 per channel per bin. Rates chosen, and why:

* 8,000 input events per sample on average (32 per 4 ms step, 4.6 % of the 700 x 250 bins, about
  11 Hz per channel over the second), each sample's count drawn with a log-normal spread of 0.3.
  SHD's cochlea model (Cramer et al. 2020, IEEE TNNLS 33:2744) gives samples with spikes in the
  thousands to about ten thousand; 8,000 is an assumption of that order (from SHD's published
  rasters, not measured here: the data set cannot be downloaded). Input events drive layer 0's
  cycles, so ``--events-per-sample`` moves the latency figure almost linearly.
* Silence, then one utterance of 0.5-0.9 s with 1-3 syllables; each syllable lights 3-5
  formant-like bands of neighbouring channels (Gaussian, 8-30 channels wide, gliding) with an
  onset burst: activity is bursty per channel and concentrated in a subset of channels (the
  busiest 20 % of the channels carry about 60 % of the spikes), as in SHD's rasters.
* Spontaneous activity 0.1 % per bin elsewhere.
The measured statistics are printed and written to the JSON.

Hidden activity: each layer's threshold is calibrated on the golden model (bisection over the
integer b0) to fire at a target rate per neuron per step over ``--calib-samples`` samples of the
stream: 8 % (layer 0) and 6 % (layer 1) by default (``--targets``). That is an assumption too:
trained adaptive recurrent SNNs on SHD are reported to fire sparsely, a few to ~10 % of neurons
per step. The rates measured on the benchmark's own samples (another seed) are reported.

For each lanes value P (``--lanes``, default 4,8,16):
1. the core (debug ports on) is generated and run by the fast Verilator runner on ``--samples``
   sequences of the stream; every neuron's spike and the readout at every step are compared with
   the golden model (RTL == golden), and the measured cycles per layer per step against the bound
   of golden/cycles.py. Cycles per inference = the cycles between output words summed over the
   250 steps of a sequence (the core's throughput while streaming sequences back to back,
   clearing between sequences included);
2. the core is built for the board through the library flow (``boards.flow.build``: Yosys +
   nextpnr-ecp5 from YoWASP), as ``skipcore build --board ulx3s-85f --lanes P`` does: LUT4s, FFs,
   DP16KD block RAMs (and their bits: 18,432 each), MULT18X18D DSPs and Fmax;
3. microseconds per inference = cycles per inference / Fmax.
Spiker+'s row (arXiv 2401.01141, as quoted in issue 12: 18,268 logic cells, 51 BRAM36, 54 us per
inference on SHD) sits next to ours; its block RAM bits use the same per-block capacity rule
(36,864 bits per BRAM36), and the issue's goals (<= 18k LUT, <= 1.84 Mbit BRAM, <= 54 us) are
checked per point. A Xilinx logic cell (LUT6) is not an ECP5 LUT4: the LUT comparison is indicative.

E (events per cycle, ``--events``, default 1) is a second axis: every (lanes, E) pair is a point,
as ``skipcore build --lanes P --events E`` / ``skipcore generate --events E`` make it. With E > 1
each layer engine reads the weight rows of up to E events per cycle (golden/cycles.py has the
bound: input and recurrent events count in bundles of E).

Builds of an ~11k-LUT design take minutes each: run nice'd. Every point's build and core go under
``--out`` (default ``runs/bench_shd``); ``--reuse-builds`` keeps a point's build when its key
(artifact digest, lanes, board, clock and the source of hdl/ and boards/) is unchanged.

    nice -n 10 python benchmarks/bench_shd.py
    nice -n 10 python benchmarks/bench_shd.py --lanes 8 --samples 16 --json runs/bench_shd/bench_shd.json
    python benchmarks/bench_shd.py --lanes 8 --events 1,2,4 --no-build
    python benchmarks/bench_shd.py --lanes 8 --no-build    # cycles and RTL == golden only
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

from common import command_line, pin_threads, save_result

import numpy as np

SPIKER_PLUS = {
    "design": "Spiker+ (arXiv 2401.01141)", "lanes": None, "luts": 18268, "ffs": None, "brams": 51,
    "bram_kind": "BRAM36", "bram_bits": 51 * 36 * 1024, "dsps": None, "fmax_mhz": None,
    "cycles_per_inference": None, "us_per_inference": 54.0, "rtl_equals_golden": None,
}
GOAL = {"luts": 18_000, "bram_mbit": 1.84, "us_per_inference": 54.0}
DP16KD_BITS = 18 * 1024


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lanes", default="4,8,16", help="comma-separated lanes P (default %(default)s)")
    p.add_argument("--events", default="1",
                   help="comma-separated events per cycle E of the layer engines (default %(default)s)")
    p.add_argument("--board", default="ulx3s-85f", help="build target (default %(default)s)")
    p.add_argument("--freq", type=float, default=None,
                   help="core clock in MHz for the build (PLL); default: the board oscillator, as skipcore build")
    p.add_argument("--nextpnr-seed", type=int, default=None, metavar="N",
                   help="nextpnr's placement seed for the builds (default: skipcore build's fixed seed)")
    p.add_argument("--placer", default=None, metavar="NAME",
                   help="nextpnr's placer for the builds, as skipcore build --placer (default: its default)")
    p.add_argument("--samples", type=int, default=16, help="sequences streamed through the RTL (default %(default)s)")
    p.add_argument("--calib-samples", type=int, default=16,
                   help="sequences the thresholds are calibrated on (default %(default)s)")
    p.add_argument("--steps", type=int, default=250, help="steps per sequence (default %(default)s: 1 s at 4 ms)")
    p.add_argument("--events-per-sample", type=float, default=8000.0,
                   help="mean input events per sample (default %(default)s)")
    p.add_argument("--targets", default="0.08,0.06",
                   help="hidden firing-rate targets per layer, spikes per neuron per step (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="network and calibration stream seed; samples use seed + 1")
    p.add_argument("--no-build", action="store_true", help="skip the board builds (cycles and RTL == golden only)")
    p.add_argument("--reuse-builds", action="store_true", help="keep a point's build when its key is unchanged")
    p.add_argument("--out", default="runs/bench_shd", help="folder for cores, builds and the artifact")
    p.add_argument("--json", default=None, help="result JSON (default OUT/bench_shd.json)")
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args(argv)


def lanes_list(text: str, option: str = "--lanes") -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(v < 1 for v in values):
        sys.exit(f"error: {option} must be a comma-separated list of positive integers, not {text!r}")
    return values


def events_list(text: str) -> list[int]:
    from skipcore.hdl.plan import check_events

    return [check_events(e) for e in lanes_list(text, "--events")]


def point_name(lanes: int, events: int) -> str:
    """``P8`` for E = 1 (the names before the E axis existed), ``P8-E2`` otherwise."""
    return f"P{lanes}" if events == 1 else f"P{lanes}-E{events}"


def float_list(text: str, n: int, what: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != n:
        sys.exit(f"error: {what} needs {n} comma-separated numbers, not {text!r}")
    return values


def _sources_digest() -> str:
    """Digest of hdl/ and boards/ sources: a changed generator or flow never reuses a build."""
    import skipcore.boards as boards_pkg
    import skipcore.hdl as hdl_pkg

    h = hashlib.sha256()
    for pkg in (hdl_pkg, boards_pkg):
        root = Path(pkg.__file__).parent
        for path in sorted(root.rglob("*.py")):
            h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def preflight(args) -> None:
    """Everything a late stage needs, checked before the minutes of calibration and simulation:
    the board has a synthesis flow, the clock is one its PLL can make, and the tools exist."""
    from skipcore.boards.flow import PLACERS, tool_command
    from skipcore.boards.pll import solve_pll
    from skipcore.boards.targets import get_target
    from skipcore.errors import ConfigError

    for name in ("samples", "calib_samples", "steps"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, not {getattr(args, name)}")
    if args.no_build:
        return
    target = get_target(args.board)
    if target.family == "generic":
        raise ConfigError(f"--board {args.board} has no synthesis flow (no Fmax); choose ulx3s-85f or icebreaker, "
                          "or pass --no-build")
    if args.freq is not None:
        if not args.freq > 0:
            raise ConfigError(f"--freq must be positive, not {args.freq}")
        solve_pll(target.family, target.clock_hz, args.freq * 1e6)
    if args.placer is not None and args.placer not in PLACERS:
        raise ConfigError(f"--placer must be one of {', '.join(PLACERS)}, got {args.placer!r}")
    if args.nextpnr_seed is not None and not 0 <= args.nextpnr_seed < 2**31:
        raise ConfigError(f"--nextpnr-seed must be an integer in 0..{2**31 - 1}, got {args.nextpnr_seed}")
    pack = {"ecp5": "ecppack", "ice40": "icepack"}[target.family]
    for tool in ("yosys", f"nextpnr-{target.family}", pack):
        tool_command(tool)


def build_point(art, lanes: int, args, console, events: int = 1) -> dict:
    """The board build of one point (reused with --reuse-builds when its key matches)."""
    from skipcore.boards.flow import build
    from skipcore.golden.artifact import artifact_digest

    out = Path(args.out) / f"build-{point_name(lanes, events)}"
    from skipcore.boards.flow import DEFAULT_PLACER, DEFAULT_SEED

    seed = DEFAULT_SEED if args.nextpnr_seed is None else args.nextpnr_seed
    placer = DEFAULT_PLACER if args.placer is None else args.placer
    key = {"artifact": artifact_digest(art), "lanes": lanes, "board": args.board, "freq": args.freq,
           "sources": _sources_digest()} | ({"events": events} if events != 1 else {}) \
        | ({"seed": seed} if seed != DEFAULT_SEED else {}) | ({"placer": placer} if placer != DEFAULT_PLACER else {})
    key_file = out / "bench_key.json"
    if args.reuse_builds and key_file.is_file() and (out / "report.json").is_file():
        if json.loads(key_file.read_text()) == key:
            console.print(f"  reusing the build in {out}")
            return json.loads((out / "report.json").read_text())
    result = build(art, args.board, out, lanes=lanes, events=events, freq_mhz=args.freq, seed=seed,
                   placer=placer, force=True, console=console)
    save_result(key_file, key)
    return result.summary


def simulate_point(art, x_int: np.ndarray, gold, lanes: int, args, events: int = 1) -> dict:
    """Fast Verilator runner on the stream: RTL == golden (every spike, readout, prediction) and
    cycles per inference."""
    from skipcore.cores import write_core
    from skipcore.sim.compare import compare, cycle_report
    from skipcore.sim.fast import FastRunner

    core_dir = Path(args.out) / f"core-{point_name(lanes, events)}"
    write_core(art, core_dir, lanes=lanes, debug=True, events=events)
    runner = FastRunner(core_dir)
    runner.build()
    fast = runner.run(x_int, jobs=1)
    trace = fast.to_trace()
    cmp = compare(trace, readout=gold.readout, spikes=gold.spikes, mode=art.readout.mode)
    cycles = cycle_report(runner.spec, trace, gold.spikes)
    per_inference = fast.cycles_per_step.sum(axis=1)
    # the first sequence also waits for reset; later ones are the streaming throughput
    return {
        "rtl_equals_golden": cmp.steps_with_mismatch == 0,
        "mismatched_steps": int(cmp.steps_with_mismatch),
        "first_mismatch": str(cmp.first) if cmp.first else None,
        "compared": cmp.scope(),
        "cycles_per_inference": float(per_inference.mean()),
        "cycles_per_inference_max": int(per_inference.max()),
        "cycles_per_step_mean": float(fast.cycles_per_step.mean()),
        "measured_over_bound": cycles.summary() if cycles is not None else None,
        "harness_cycles_per_second": fast.cycles_per_second,
        "harness_build_seconds": round(runner.build_seconds, 1),
    }


def table_rows(points: list[dict]) -> list[dict]:
    rows = [dict(SPIKER_PLUS, bram_mbit=SPIKER_PLUS["bram_bits"] / 1e6)]
    for pt in points:
        rows.append(pt)
    return rows


def fmt(value, spec: str = "{:,}") -> str:
    return "-" if value is None else spec.format(value)


def print_table(console, points: list[dict], stats: dict, rates: dict) -> None:
    from rich.table import Table

    table = Table(title="SHD-size network 700-ALIF128(k1)-ALIF128(k4)-20, W8/S16, T = 250")
    for col in ("design", "lanes", "E", "LUT", "FF", "BRAM", "BRAM Mbit", "DSP", "Fmax MHz", "cycles/inf",
                "meas/bound", "us/inf", "RTL = golden"):
        table.add_column(col, justify="left" if col == "design" else "right")
    for row in table_rows(points):
        ratio = row.get("measured_over_bound") or {}
        table.add_row(
            row["design"], fmt(row.get("lanes")), fmt(row.get("events")), fmt(row.get("luts")), fmt(row.get("ffs")),
            f"{row['brams']} {row.get('bram_kind', '')}".strip() if row.get("brams") is not None else "-",
            fmt(row.get("bram_mbit"), "{:.2f}"), fmt(row.get("dsps")), fmt(row.get("fmax_mhz"), "{:.1f}"),
            fmt(row.get("cycles_per_inference"), "{:,.0f}"),
            fmt(ratio.get("ratio_mean"), "{:.3f}"),
            fmt(row.get("us_per_inference"), "{:,.1f}"),
            "-" if row.get("rtl_equals_golden") is None else ("yes" if row["rtl_equals_golden"] else "[red]NO[/]"),
        )
    console.print(table)
    console.print(f"input: {stats['events_per_sample']:,.0f} events per sample, {stats['events_per_step_mean']:.1f} "
                  f"per step (p99 {stats['events_per_step_p99']:.0f}, max {stats['events_per_step_max']}), busiest "
                  f"20 % of channels hold {100 * stats['top20pct_channel_share']:.0f} % of the spikes; hidden rates "
                  + ", ".join(f"layer {i} {100 * r:.2f} %" for i, r in enumerate(rates["measured"]))
                  + " per neuron per step (targets " + ", ".join(f"{100 * t:.0f} %" for t in rates["targets"]) + ")")
    for pt in points:
        if pt.get("goal") is None:
            continue
        g = pt["goal"]
        console.print(f"P = {pt['lanes']}, E = {pt['events']}: goal LUT <= 18k {'met' if g['luts'] else 'not met'}, BRAM <= 1.84 Mbit "
                      f"{'met' if g['bram'] else 'not met'}, <= 54 us {'met' if g['latency'] else 'not met'}")


def main(argv=None) -> int:
    from skipcore.errors import SkipcoreError

    try:
        return run(argv)
    except SkipcoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def run(argv=None) -> int:
    args = parse_args(argv)
    preflight(args)
    lanes = lanes_list(args.lanes)
    events = events_list(args.events)
    targets = float_list(args.targets, 2, "--targets")
    pin_threads(args.threads)
    from rich.console import Console

    from skipcore.golden.artifact import save
    from skipcore.golden.model import run
    from skipcore.shd_like import ShdLikeRates, calibrated_alif_network, layer_rates, shd_like_events, stream_statistics

    console = Console()
    if not console.is_terminal:
        console = Console(width=170)  # the comparison table is wide; a log should hold it on one line a row
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rates = ShdLikeRates(steps=args.steps, events_per_sample=args.events_per_sample)
    t0 = time.monotonic()
    with console.status("calibrating the network on the golden model"):
        x_cal = shd_like_events(args.calib_samples, seed=args.seed, rates=rates).astype(np.int64)
        art, calib = calibrated_alif_network(x_cal, targets=targets, seed=args.seed)
        save(art, out / "model.skc", overwrite=True)
    console.print(f"calibrated in {time.monotonic() - t0:.1f} s: thresholds {calib.thresholds}, rates "
                  + ", ".join(f"{100 * r:.2f} %" for r in calib.rates))
    x = shd_like_events(args.samples, seed=args.seed + 1, rates=rates).astype(np.int64)
    stats = stream_statistics(x)
    with console.status("golden model on the benchmark samples"):
        gold = run(art, x, traces=True, quantized=True)
    measured = layer_rates(art, x)
    result = {
        "command": command_line(argv), "network": art.summary(), "stream": {"rates": rates.__dict__, "stats": stats},
        "calibration": calib.as_dict(), "hidden_rates": {"targets": list(targets), "measured": measured},
        "board": args.board, "spiker_plus": SPIKER_PLUS, "goal": GOAL, "points": [],
        "events_per_cycle": events,
    }
    json_path = Path(args.json) if args.json else out / "bench_shd.json"
    for p, e in [(p, e) for p in lanes for e in events]:
        console.rule(f"lanes {p}, events {e}")
        point = {"design": "skipcore (ECP5-85F)" if args.board == "ulx3s-85f" else f"skipcore ({args.board})",
                 "lanes": p, "events": e}
        with console.status(f"fast runner, {args.samples} x {args.steps} steps"):
            point.update(simulate_point(art, x, gold, p, args, e))
        console.print(f"  RTL == golden: {point['rtl_equals_golden']} ({point['compared']}); "
                      f"{point['cycles_per_inference']:,.0f} cycles per inference")
        if not args.no_build:
            summary = build_point(art, p, args, console, e)
            bits = int(summary["brams"]) * DP16KD_BITS
            point.update({"luts": summary["luts"], "ffs": summary["ffs"], "brams": summary["brams"],
                          "bram_kind": "DP16KD", "bram_bits": bits, "bram_mbit": bits / 1e6, "dsps": summary["dsps"],
                          "fmax_mhz": summary["fmax_mhz"], "clock_mhz": summary.get("clock_mhz"),
                          "build_seconds": summary.get("seconds", {}).get("total")})
            if summary["fmax_mhz"]:
                point["us_per_inference"] = point["cycles_per_inference"] / summary["fmax_mhz"]
                point["goal"] = {"luts": summary["luts"] <= GOAL["luts"],
                                 "bram": bits / 1e6 <= GOAL["bram_mbit"],
                                 "latency": point["us_per_inference"] <= GOAL["us_per_inference"]}
        result["points"].append(point)
        save_result(json_path, result)  # after every point: a long run keeps what it measured
    print_table(console, result["points"], stats, result["hidden_rates"])
    console.print(f"wrote {json_path}")
    return 0 if all(pt["rtl_equals_golden"] for pt in result["points"]) else 1


if __name__ == "__main__":
    sys.exit(main())
