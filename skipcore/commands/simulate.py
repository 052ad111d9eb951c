"""``skipcore simulate``: the generated core against the golden model, step by step.

Generates the core (``hdl.generate``), streams N samples of the dataset's test split (or random
inputs when there is no dataset) through it, and compares every per-layer spike (debug ports),
every readout word and every prediction with the golden model. Two engines:

* cocotb (default; Verilator, or Icarus with ``--simulator icarus``): random idle cycles on the
  input and random backpressure on the output, per-layer spikes compared neuron by neuron,
  ``--waves`` keeps a waveform (always on a mismatch);
* ``--fast``: the compiled C++ Verilator harness (``sim/fast.py``), for whole test sets; every
  layer's spikes are compared neuron by neuron at every step too.

Prints a table (samples, steps, mismatches, cycles/step mean and max against the bound) and writes
``--json``. Exit status 1 on any mismatch.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from skipcore.errors import ConfigError, SkipcoreError

DEFAULT_RANDOM_STEPS = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("artifact", help="model.skc")
    parser.add_argument("--samples", "-n", type=int, default=8, help="sequences to simulate (default %(default)s)")
    parser.add_argument("--data", default=None, metavar="NAME_OR_PATH",
                        help="dataset name or path (default: the dataset in the artifact's provenance; "
                             "random inputs when there is none)")
    parser.add_argument("--random", action="store_true", help="random inputs even if the artifact names a dataset")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"steps per random sequence (default {DEFAULT_RANDOM_STEPS}); "
                             "a dataset's sequences keep their own length")
    parser.add_argument("--lanes", "-P", type=int, default=1, metavar="P", help="lanes per layer engine (default 1)")
    parser.add_argument("--events", "-E", type=int, default=1, metavar="E", help="events per cycle per layer engine, 1..8: the weight rows of up to E events are read and summed in one cycle, so a step with k events costs about ceil(k/E) instead of k row reads (default %(default)s)")
    parser.add_argument("--ring-depth", type=int, default=None, metavar="D", help="ring-buffer slots (default: span)")
    parser.add_argument("--simulator", choices=("verilator", "icarus"), default="verilator",
                        help="cocotb simulator (default %(default)s)")
    parser.add_argument("--waves", action="store_true", help="record a waveform (VCD with Verilator) and keep it")
    parser.add_argument("--fast", action="store_true", help="use the compiled C++ Verilator batch runner")
    parser.add_argument("--jobs", type=int, default=None,
                        help="--fast: harness processes at once, each on a shard of the samples (default: one per CPU)")
    parser.add_argument("--gap", type=float, default=None,
                        help="probability of an idle input cycle (default 0.2 cocotb, 0 --fast)")
    parser.add_argument("--backpressure", type=float, default=None,
                        help="probability of out_ready low (default 0.2 cocotb, 0 --fast)")
    parser.add_argument("--seed", type=int, default=0, help="seed of gaps, backpressure and random inputs")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="keep the core, traces and waveforms here (default: a temporary folder)")
    parser.add_argument("--json", default=None, metavar="OUT.json", help="write the results as JSON")
    parser.add_argument("--force", action="store_true",
                        help="replace --json and what skipcore wrote in --out earlier")


def _inputs(args, art):
    """(x_int (B, T, C), labels or None, description)."""
    from skipcore.golden.contract import quantize_input
    from skipcore.golden.random import random_inputs

    prov = art.provenance if isinstance(art.provenance, dict) else {}
    if args.random or (args.data is None and not prov.get("dataset")):
        steps = DEFAULT_RANDOM_STEPS if args.steps is None else args.steps
        x = random_inputs(np.random.default_rng(args.seed), art, args.samples, steps)
        return quantize_input(art.input, x), None, None, f"random inputs (seed {args.seed}, {steps} steps)"
    if args.steps is not None:
        raise ConfigError("--steps sets the length of random sequences, but the inputs come from a dataset "
                          "(--data or the artifact's provenance); drop --steps, or pass --random")
    from skipcore.evaluate import check_data, resolve_data

    ds = resolve_data(args.data, prov, limit=None)
    check_data(art, ds.info)
    n = min(args.samples, len(ds.test))
    if n < 1:
        raise SkipcoreError(f"the test split of {ds.info.name!r} is empty")
    return (quantize_input(art.input, ds.test.x[:n]), ds.test.y[:n], ds.info,
            f"dataset {ds.info.name} test split, first {n} sequences")


def _fast(core_dir, art, x, args, console):
    from skipcore.golden.model import run as golden_run
    from skipcore.sim.compare import compare, cycle_report
    from skipcore.sim.coreio import CoreSpec
    from skipcore.sim.fast import FastRunner

    runner = FastRunner(core_dir)
    t0 = time.monotonic()
    runner.build()
    build_s = time.monotonic() - t0
    res = runner.run(x, gap=args.gap or 0.0, backpressure=args.backpressure or 0.0, seed=args.seed + 1,
                     jobs=args.jobs)
    trace = res.to_trace()
    spec = CoreSpec.load(Path(core_dir) / "core.json")
    comparisons, reports = [], []
    for start in range(0, len(x), 256):  # golden with traces, in batches (memory)
        gold = golden_run(art, x[start:start + 256], traces=True, quantized=True)
        sub = _slice_trace(trace, start, start + 256)
        comparisons.append(compare(sub, readout=gold.readout, spikes=gold.spikes, mode=art.readout.mode))
        reports.append(cycle_report(spec, sub, gold.spikes))
    info = {"engine": "fast", "build_seconds": round(build_s, 2), "run_seconds": round(res.seconds, 3),
            "cycles": res.total_cycles, "cycles_per_second": round(res.cycles_per_second), "jobs": res.jobs}
    return trace, _merge(comparisons), _merge_reports(reports), info, None


def _slice_trace(trace, a, b):
    from skipcore.sim.compare import RtlTrace

    sl = lambda v: None if v is None else v[a:b]  # noqa: E731
    return RtlTrace(readout=trace.readout[a:b], prediction=trace.prediction[a:b], end_seq=trace.end_seq[a:b],
                    valid=trace.valid[a:b], spikes=[s[a:b] for s in trace.spikes], spike_counts=sl(trace.spike_counts),
                    spike_bits=None if trace.spike_bits is None else [s[a:b] for s in trace.spike_bits],
                    neurons=trace.neurons,
                    layer_cycles=sl(trace.layer_cycles), step_cycles=sl(trace.step_cycles),
                    input_events=sl(trace.input_events), total_cycles=trace.total_cycles,
                    protocol_errors=trace.protocol_errors)


def _merge(comparisons):
    from skipcore.sim.compare import Comparison, Mismatch

    first = comparisons[0]
    counts: dict[str, int] = {}
    mismatches: list[Mismatch] = []
    offset = 0
    for c in comparisons:
        for k, v in c.counts.items():
            counts[k] = counts.get(k, 0) + v
        mismatches += [Mismatch(m.sample + offset, m.step, m.order, m.layer, m.index, m.quantity, m.rtl, m.golden)
                       for m in c.mismatches]
        offset += c.samples
    return Comparison(sum(c.samples for c in comparisons), first.steps, counts, sorted(mismatches)[:20],
                      sum(c.prediction_mismatches for c in comparisons), first.protocol_errors,
                      steps_with_mismatch=sum(c.steps_with_mismatch for c in comparisons),
                      samples_with_mismatch=sum(c.samples_with_mismatch for c in comparisons),
                      spikes_compared=first.spikes_compared, neurons=first.neurons)


def _merge_reports(reports):
    from skipcore.sim.compare import CycleReport

    reports = [r for r in reports if r is not None]
    if not reports:
        return None
    step = [r.step_cycles for r in reports if r.step_cycles is not None]
    return CycleReport(np.concatenate([r.measured for r in reports]), np.concatenate([r.bound for r in reports]),
                       np.concatenate(step) if step else None)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from skipcore.cores import check_cache_writable, generate_core_dir
    from skipcore.golden.artifact import load
    from skipcore.outputs import OutputPlan, atomic_write_text

    if args.samples < 1:
        raise ConfigError(f"--samples must be at least 1, got {args.samples}")
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {args.jobs}")
    for name in ("gap", "backpressure"):
        v = getattr(args, name)
        if v is not None and not 0.0 <= v < 1.0:
            raise ConfigError(f"--{name} must be in [0, 1), got {v}")
    if args.fast and args.simulator != "verilator":
        raise ConfigError("--fast uses Verilator; drop --simulator icarus or --fast")
    if args.fast and args.waves:
        raise ConfigError("--waves needs the cocotb testbench; drop --fast")
    if args.random and args.data is not None:
        raise ConfigError("--random draws random inputs, --data names a dataset; pass one of them")
    if args.lanes < 1:
        raise ConfigError(f"--lanes must be at least 1, got {args.lanes}")
    from skipcore.hdl.plan import check_events

    check_events(args.events)
    if args.steps is not None and args.steps < 1:
        raise ConfigError(f"--steps must be at least 1, got {args.steps}")
    plan = OutputPlan("simulate", inputs=[args.artifact, args.data], force=args.force)
    out = plan.folder(args.out, "--out", folders=("core", "sim")).path if args.out else None
    if args.json:
        plan.file(args.json, "--json")
    check_cache_writable()  # compiled simulators live in the cache even with --out
    console = Console()
    art = load(args.artifact)
    x, labels, info, source = _inputs(args, art)
    plan.prepare()
    core_dir = generate_core_dir(art, lanes=args.lanes, ring_depth=args.ring_depth, debug=True,
                                 out=(out / "core") if out else None, events=args.events)
    console.print(f"core: {core_dir}  ({art.summary()}, lanes {args.lanes}, events {args.events})")
    console.print(f"inputs: {source}")
    waves = None
    if args.fast:
        trace, cmp, rep, engine, waves = _fast(core_dir, art, x, args, console)
    else:
        from skipcore.sim.simulate import simulate_core

        gap = 0.2 if args.gap is None else args.gap
        bp = 0.2 if args.backpressure is None else args.backpressure
        sim = simulate_core(core_dir, art, x, seed=args.seed, gap=gap, backpressure=bp,
                            simulator=args.simulator, waves=args.waves, keep_waves=args.waves,
                            workdir=(out / "sim") if out else None)
        if not sim.results:
            raise SkipcoreError(f"the simulation produced no results:\n{sim.cocotb.summary()}")
        r = sim.results[0]
        trace, cmp, rep = r.trace, r.comparison, r.cycles
        waves = sim.waves
        engine = {"engine": f"cocotb+{args.simulator}", "build_seconds": round(sim.build_seconds, 2),
                  "build_cached": sim.build_cached, "run_seconds": round(sim.sim_seconds, 2), "cycles": sim.cycles,
                  "log": str(sim.cocotb.log)}

    rtl_pred = trace.predictions(art.readout.mode)
    accuracy = None
    if labels is not None and info is not None:
        from skipcore.datasets import accuracy as acc_fn

        accuracy = float(acc_fn(info, labels, rtl_pred))

    table = Table(title=f"{Path(args.artifact).name}: RTL vs golden ({engine['engine']})")
    for col in ("samples", "steps", "mismatches", "first mismatch", "cycles/step mean", "cycles/step max",
                "bound ratio mean", "bound ratio max"):
        table.add_column(col, justify="right")
    table.add_row(str(cmp.samples), str(cmp.steps), str(cmp.total), str(cmp.first) if cmp.first else "-",
                  f"{float(trace.step_cycles.mean()):.1f}" if trace.step_cycles is not None else "-",
                  str(int(trace.step_cycles.max())) if trace.step_cycles is not None else "-",
                  f"{rep.ratio_mean:.3f}" if rep else "-", f"{rep.ratio_max:.3f}" if rep else "-")
    console.print(table)
    if rep is not None:
        lt = Table(title="cycles per layer per step (dbg_l*_cycles) vs bound")
        for col in ("layer", "cycles mean", "cycles max", "bound mean", "bound max", "ratio mean", "ratio max"):
            lt.add_column(col, justify="right")
        for d in rep.per_layer():
            lt.add_row(str(d["layer"]), f"{d['cycles_mean']:.1f}", str(d["cycles_max"]), f"{d['bound_mean']:.1f}",
                       str(d["bound_max"]), f"{d['ratio_mean']:.3f}", f"{d['ratio_max']:.3f}")
        console.print(lt)
    extra = ", ".join(f"{k} {v}" for k, v in engine.items() if k != "engine")
    console.print(f"{engine['engine']}: {extra}")
    if accuracy is not None:
        console.print(f"RTL accuracy on these {cmp.samples} samples: {100 * accuracy:.2f} %")
    if not cmp.ok:
        console.print(f"[red]MISMATCH[/red] {cmp.message()}")
    if waves is not None:
        console.print(f"waveform: {waves}")

    if args.json:
        result = {
            "artifact": str(args.artifact), "summary": art.summary(), "inputs": source, "lanes": args.lanes,
            "core_dir": str(core_dir), "samples": cmp.samples, "steps": cmp.steps, "ok": cmp.ok,
            "compared": cmp.scope(),
            "mismatches": cmp.counts, "first_mismatch": str(cmp.first) if cmp.first else None,
            "prediction_mismatches": cmp.prediction_mismatches,
            "cycles_per_step": None if trace.step_cycles is None else
            {"mean": float(trace.step_cycles.mean()), "max": int(trace.step_cycles.max())},
            "cycle_bound": rep.summary() if rep else None, "accuracy_rtl": accuracy, "waves": str(waves) if waves else None,
            **{k: v for k, v in engine.items() if k != "log"}, "seed": args.seed,
        }
        path = atomic_write_text(args.json, json.dumps(result, indent=2, default=str) + "\n")
        console.print(f"wrote {path}")
    return 0 if cmp.ok else 1
