"""Simulation benchmark: the fast C++ Verilator batch runner against cocotb, on the same core.

Default core: demo-sized (the MNIST-1D demo network's shape): 1 real input channel -> 128 LIF
(k=1) -> 128 LIF (SRC k=3) -> 10 classes, W8 S16 R24 D8, with random integer parameters
(``golden.random.random_artifact``), at lanes 1 and 8 (``--lanes``); or ``--artifact model.skc``
(e.g. the demo's own). For each lanes value both engines run the same core.v in the same run:

- fast runner (``sim/fast.py``): ``--samples`` sequences of ``--steps`` steps, no gaps or
  backpressure; clock cycles per second of wall time of the harness run (build excluded), and
  bit-exactness against the golden model (readout every step, predictions, every neuron's spike at
  every step). Measured twice: one harness process (``jobs=1``), and ``--jobs`` processes at once
  on shards of the batch (default: one per CPU), where the rate is all shards' cycles over the wall
  time. Also cycles per CPU second of the harness processes (user + system time): on a shared,
  busy machine wall-time rates fall with the load, CPU-time rates much less, so only they compare
  across runs; the best of ``--repeat`` is kept for each;
- full spike record vs counts only (issue 13), side by side, one process, runs alternated: the
  harness that keeps only per-layer spike counts (``record_spikes=False``, as before issue 13) with
  its count comparison, against the default harness that keeps every spike with the neuron-by-neuron
  comparison (``compare``, golden spikes packed inside it). Rates are cycles over the harness's wall
  time, and over harness + comparison time (the golden run, the same for both, excluded);
- cocotb + Verilator (``sim/tb_core.py``): ``--cocotb-samples`` of the same sequences; cycles per
  second of the testbench's clocked loop (build and simulator start excluded), bit-exact per layer;
- with ``--baseline-core DIR`` (a core folder generated for the same artifact, e.g. by an older
  commit): that core.v and this commit's core at its lanes, each through this commit's harness,
  one process, runs alternated ``--repeat`` times (the order swapped every round), both checked
  bit-exact against golden; the median of the paired CPU-time rate ratios says whether the
  generated core got faster or slower, independently of the machine and its load.

Goal: fast runner >= 5M cycles/s on a demo-sized core, checked on one process. Prints the rates,
their ratios to cocotb, and the sequence steps per second (more lanes: fewer cycles per step but
more logic per cycle).

    python benchmarks/bench_sim.py
    python benchmarks/bench_sim.py --lanes 4,16 --samples 1000 --json bench_sim.json
    python benchmarks/bench_sim.py --artifact runs/demo/quantize/model.skc --data mnist1d
    python benchmarks/bench_sim.py --artifact model.skc --data mnist1d --lanes 8 --baseline-core old_core/
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from common import save_result

import numpy as np


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--artifact", default=None, help="model.skc (default: a random demo-sized artifact)")
    p.add_argument("--data", default=None, help="dataset for --artifact inputs (default: random inputs)")
    p.add_argument("--lanes", default="1,8", help="comma-separated lanes P (default %(default)s)")
    p.add_argument("--samples", type=int, default=500, help="fast-runner sequences (default %(default)s)")
    p.add_argument("--steps", type=int, default=40, help="steps per random sequence (default %(default)s)")
    p.add_argument("--cocotb-samples", type=int, default=3, help="cocotb sequences (default %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeat", type=int, default=3, help="fast-runner repetitions; the best is kept")
    p.add_argument("--jobs", type=int, default=None, help="harness processes for the sharded run (default: CPUs)")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--baseline-core", default=None, metavar="DIR",
                   help="core folder (core.v, core.json) for the same artifact, e.g. from an older commit: "
                        "timed alternately with this commit's core at its lanes")
    return p.parse_args(argv)


def demo_sized_artifact(seed: int):
    from skipcore.golden.artifact import Widths
    from skipcore.golden.random import random_artifact

    rng = np.random.default_rng(seed)
    art = random_artifact(rng, channels=1, layer_sizes=[128, 128], kinds=["lif", "lif"], spans=[1, 3],
                          input_kind="real", widths=Widths(8, 16, 24, 8), readout_kind="sum",
                          readout_mode="sequence", classes=10, saturating=False, decay_mode="mult")
    return art, rng


def inputs(args, art, rng):
    from skipcore.golden.contract import quantize_input
    from skipcore.golden.random import random_inputs

    if args.data:
        from skipcore.evaluate import resolve_data

        ds = resolve_data(args.data, art.provenance)
        x = ds.test.x[: args.samples]
        return quantize_input(art.input, x), f"{ds.info.name} test split ({len(x)} sequences)"
    x = random_inputs(rng, art, args.samples, args.steps, density=0.6)
    return quantize_input(art.input, x), f"random inputs ({args.samples} x {args.steps} steps)"


def bench_lanes(args, art, x, lanes: int) -> dict:
    from skipcore.cores import generate_core_dir
    from skipcore.golden.model import run as golden_run
    from skipcore.sim.compare import compare
    from skipcore.sim.fast import FastRunner
    from skipcore.sim.simulate import simulate_core

    t0 = time.monotonic()
    core = generate_core_dir(art, lanes=lanes)
    gen_s = time.monotonic() - t0
    runner = FastRunner(core)
    t0 = time.monotonic()
    runner.build()
    fast_build_s = time.monotonic() - t0
    def fastest(jobs):
        runs = [runner.run(x, jobs=jobs) for _ in range(max(1, args.repeat))]
        return max(runs, key=lambda r: r.cycles_per_second), max(r.cycles_per_cpu_second for r in runs)

    best, best_cpu = fastest(1)
    sharded, sharded_cpu = fastest(args.jobs)
    gold = golden_run(art, x, traces=True, quantized=True)
    record = record_vs_counts(args, art, x, core, gold)
    baseline = None
    if args.baseline_core and args.baseline_spec.lanes == lanes:
        baseline = baseline_vs_current(args, art, x, core, gold)
    cmp_fast = compare(best.to_trace(), readout=gold.readout, spikes=gold.spikes, mode=art.readout.mode)
    cmp_sharded = compare(sharded.to_trace(), readout=gold.readout, spikes=gold.spikes, mode=art.readout.mode)
    n = min(args.cocotb_samples, len(x))
    sim = simulate_core(core, art, x[:n], gap=0.0, backpressure=0.0, seed=args.seed)
    cmp_cocotb = sim.results[0].comparison if sim.results else None
    cocotb_rate = sim.loop_cycles / sim.loop_seconds if sim.loop_seconds > 0 else 0.0
    steps = x.shape[0] * x.shape[1]
    out = {
        "lanes": lanes,
        "fast": {"samples": len(x), "cycles": best.total_cycles, "seconds": best.seconds,
                 "cycles_per_second": best.cycles_per_second, "steps_per_second": steps / best.seconds,
                 "cycles_per_cpu_second": best_cpu, "bit_exact": cmp_fast.ok, "build_seconds": fast_build_s},
        "fast_sharded": {"jobs": sharded.jobs, "cycles": sharded.total_cycles, "seconds": sharded.seconds,
                         "cycles_per_second": sharded.cycles_per_second, "steps_per_second": steps / sharded.seconds,
                         "cycles_per_cpu_second": sharded_cpu, "bit_exact": cmp_sharded.ok},
        "cocotb": {"samples": n, "cycles": sim.loop_cycles, "seconds": sim.loop_seconds,
                   "cycles_per_second": cocotb_rate, "bit_exact": bool(cmp_cocotb and cmp_cocotb.ok),
                   "build_seconds": sim.build_seconds},
        "ratio": best.cycles_per_second / cocotb_rate if cocotb_rate else None,
        "ratio_sharded": sharded.cycles_per_second / cocotb_rate if cocotb_rate else None,
        "cycles_per_step_mean": float(best.cycles_per_step.mean()), "generate_seconds": gen_s,
        "record": record, "baseline": baseline,
    }
    if not cmp_fast.ok:
        print(f"lanes {lanes}: fast runner MISMATCH: {cmp_fast.message()}")
    if not cmp_sharded.ok:
        print(f"lanes {lanes}: sharded fast runner MISMATCH: {cmp_sharded.message()}")
    if cmp_cocotb is not None and not cmp_cocotb.ok:
        print(f"lanes {lanes}: cocotb MISMATCH: {cmp_cocotb.message()}")
    return out


def record_vs_counts(args, art, x, core, gold) -> dict:
    """Counts-only harness + count comparison against full spike record + neuron-by-neuron
    comparison, alternated ``--repeat`` times on one process; the best rate of each is kept."""
    from skipcore.sim.compare import compare
    from skipcore.sim.fast import FastRunner

    runners = {"counts": FastRunner(core, record_spikes=False), "full": FastRunner(core)}
    for runner in runners.values():
        runner.build()
    best: dict[str, dict] = {}
    for _ in range(max(1, args.repeat)):
        for name, runner in runners.items():
            res = runner.run(x, jobs=1)
            t0 = time.monotonic()
            cmp = compare(res.to_trace(), readout=gold.readout, spikes=gold.spikes, mode=art.readout.mode)
            compare_s = time.monotonic() - t0
            entry = {"cycles": res.total_cycles, "harness_seconds": res.seconds, "compare_seconds": compare_s,
                     "cycles_per_second": res.cycles_per_second, "cycles_per_cpu_second": res.cycles_per_cpu_second,
                     "cycles_per_second_with_compare": res.total_cycles / (res.seconds + compare_s),
                     "compared": cmp.scope(), "bit_exact": cmp.ok}
            rate = entry["cycles_per_second_with_compare"]
            if name not in best or rate > best[name]["cycles_per_second_with_compare"]:
                best[name] = entry
    full, counts = best["full"], best["counts"]
    best["ratio_harness"] = full["cycles_per_second"] / counts["cycles_per_second"]
    best["ratio_with_compare"] = full["cycles_per_second_with_compare"] / counts["cycles_per_second_with_compare"]
    return best


def baseline_vs_current(args, art, x, core, gold) -> dict:
    """``--baseline-core`` against this commit's core: one process each, alternated ``--repeat``
    times (order swapped every round); best wall and CPU-time rates, and the median paired ratio."""
    from skipcore.sim.compare import compare
    from skipcore.sim.fast import FastRunner

    runners = {"current": FastRunner(core), "baseline": FastRunner(args.baseline_core)}
    for runner in runners.values():
        runner.build()
    runs: dict[str, list] = {name: [] for name in runners}
    exact = {}
    for k in range(max(1, args.repeat)):
        for name in (list(runners) if k % 2 == 0 else list(runners)[::-1]):
            res = runners[name].run(x, jobs=1)
            runs[name].append((res.cycles_per_second, res.cycles_per_cpu_second))
            if name not in exact:
                exact[name] = compare(res.to_trace(), readout=gold.readout, spikes=gold.spikes,
                                      mode=art.readout.mode).ok
    ratios = [c[1] / b[1] for c, b in zip(runs["current"], runs["baseline"])]
    out = {name: {"cycles_per_second": max(r[0] for r in rs), "cycles_per_cpu_second": max(r[1] for r in rs),
                  "cycles_per_cpu_second_median": statistics.median(r[1] for r in rs), "bit_exact": exact[name]}
           for name, rs in runs.items()}
    out["baseline"]["core_dir"] = str(args.baseline_core)
    out["cpu_rate_ratios"] = ratios
    out["cpu_rate_ratio_median"] = statistics.median(ratios)
    return out


def check_baseline(args, art) -> str | None:
    """One line naming the problem with ``--baseline-core``, or None (checked before any build)."""
    from skipcore.sim.coreio import CoreSpec

    folder = Path(args.baseline_core)
    for name in ("core.v", "core.json"):
        if not (folder / name).is_file():
            return f"--baseline-core {folder}: no {name} there; give a folder written by `skipcore generate`"
    spec = CoreSpec.load(folder / "core.json")
    want = (art.input.channels, art.readout.classes, [layer.neurons for layer in art.layers])
    have = (spec.channels, spec.classes, [layer.neurons for layer in spec.layers])
    if want != have:
        return (f"--baseline-core {folder}: its core has (channels, classes, neurons) {have}, the artifact "
                f"{want}; generate the baseline from the same artifact")
    lanes = [int(p) for p in str(args.lanes).split(",")]
    if spec.lanes not in lanes:
        return f"--baseline-core {folder}: its core has {spec.lanes} lanes, not among --lanes {args.lanes}"
    args.baseline_spec = spec
    return None


def main(argv=None) -> int:
    args = parse_args(argv)
    from skipcore.golden.artifact import load

    if args.artifact:
        art, rng = load(args.artifact), np.random.default_rng(args.seed)
    else:
        art, rng = demo_sized_artifact(args.seed)
    if args.baseline_core:
        problem = check_baseline(args, art)
        if problem:
            print(f"bench_sim: {problem}", file=sys.stderr)
            return 2
    x, source = inputs(args, art, rng)
    print(f"core: {art.summary()}; inputs: {source}")
    results = [bench_lanes(args, art, x, int(p)) for p in str(args.lanes).split(",")]
    rows = [("lanes", "cycles/step", "fast cycles/s", "fast cycles/CPU-s", "fast steps/s", "cocotb cycles/s",
             "fast/cocotb", "sharded cycles/s", "sharded/cocotb", "bit-exact", "5M goal (1 process)")]
    for r in results:
        f, sh, c = r["fast"], r["fast_sharded"], r["cocotb"]
        rows.append((str(r["lanes"]), f"{r['cycles_per_step_mean']:.0f}", f"{f['cycles_per_second'] / 1e6:.2f} M",
                     f"{f['cycles_per_cpu_second'] / 1e6:.2f} M", f"{f['steps_per_second']:.0f}",
                     f"{c['cycles_per_second'] / 1e3:.1f} k",
                     f"{r['ratio']:.0f}x" if r["ratio"] else "-",
                     f"{sh['cycles_per_second'] / 1e6:.2f} M ({sh['jobs']} jobs)",
                     f"{r['ratio_sharded']:.0f}x" if r["ratio_sharded"] else "-",
                     str(f["bit_exact"] and sh["bit_exact"] and c["bit_exact"]),
                     "met" if f["cycles_per_second"] >= 5e6 else "not met"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))
    print("\nfull spike record + neuron-by-neuron comparison vs per-layer counts (1 process, best of "
          f"{max(1, args.repeat)}, alternated):")
    rows = [("lanes", "counts harness", "counts + compare", "full harness", "full + compare", "full/counts harness",
             "full/counts with compare", "within 2x", "bit-exact")]
    for r in results:
        rec = r["record"]
        c, f = rec["counts"], rec["full"]
        rows.append((str(r["lanes"]), f"{c['cycles_per_second'] / 1e6:.2f} M",
                     f"{c['cycles_per_second_with_compare'] / 1e6:.2f} M", f"{f['cycles_per_second'] / 1e6:.2f} M",
                     f"{f['cycles_per_second_with_compare'] / 1e6:.2f} M", f"{rec['ratio_harness']:.3f}",
                     f"{rec['ratio_with_compare']:.3f}", "yes" if rec["ratio_with_compare"] >= 0.5 else "NO",
                     str(c["bit_exact"] and f["bit_exact"])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))
    for r in results:
        base = r["baseline"]
        if base is None:
            continue
        cur, old = base["current"], base["baseline"]
        print(f"\nthis commit's core vs --baseline-core {old['core_dir']} ({r['lanes']} lanes, this harness, "
              f"1 process, {max(1, args.repeat)} alternated runs each):")
        rows = [("core", "best cycles/s", "best cycles/CPU-s", "median cycles/CPU-s", "bit-exact")]
        for name, e in (("current", cur), ("baseline", old)):
            rows.append((name, f"{e['cycles_per_second'] / 1e6:.2f} M", f"{e['cycles_per_cpu_second'] / 1e6:.2f} M",
                         f"{e['cycles_per_cpu_second_median'] / 1e6:.2f} M", str(e["bit_exact"])))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
        print(f"current/baseline CPU-time rate, median of the paired runs: {base['cpu_rate_ratio_median']:.3f} "
              f"(runs: {' '.join(f'{q:.3f}' for q in base['cpu_rate_ratios'])})")
    if args.json:
        save_result(args.json, {"core": art.summary(), "inputs": source, "results": results})
    return 0 if all(r["fast"]["bit_exact"] and r["fast_sharded"]["bit_exact"] and r["cocotb"]["bit_exact"]
                    and r["record"]["full"]["bit_exact"] and r["record"]["counts"]["bit_exact"]
                    and (r["baseline"] is None or (r["baseline"]["current"]["bit_exact"]
                                                   and r["baseline"]["baseline"]["bit_exact"]))
                    for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
