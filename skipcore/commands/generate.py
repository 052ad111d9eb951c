"""``skipcore generate``: an artifact (``model.skc``) -> ``DIR/core.v`` + ``DIR/core.json``.

The core's ports and protocol are in ``hdl/INTERFACE.md``. ``core.json`` also records the cycle
bound evaluated at a measured activity: the golden model runs (with spike traces) on the test
split of the artifact's dataset when ``--data`` is given, otherwise on random inputs from
``golden.random.random_inputs``; ``cycle_bound.at_measured_activity.source`` says which.
"""
from __future__ import annotations

import argparse

import numpy as np

from skipcore.errors import ConfigError

DEFAULT_SAMPLES = 64
DEFAULT_RANDOM_STEPS = 50


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("artifact", help="model.skc")
    parser.add_argument("--lanes", "-P", type=int, required=True, metavar="P",
                        help="lanes per layer engine, 1..N (clamped to each layer's neuron count)")
    parser.add_argument("--events", "-E", type=int, default=1, metavar="E", help="events per cycle per layer engine, 1..8: the weight rows of up to E events are read and summed in one cycle, so a step with k events costs about ceil(k/E) instead of k row reads (default %(default)s)")
    parser.add_argument("--ring-depth", type=int, default=None, metavar="D",
                        help="ring-buffer slots of every recurrent layer (default: its span; must be >= every span)")
    parser.add_argument("--no-debug", action="store_true", help="leave out the dbg_l* ports (for synthesis)")
    parser.add_argument("-o", "--out", required=True, metavar="DIR", help="output folder (core.v, core.json)")
    parser.add_argument("--force", action="store_true",
                        help="replace the core.v and core.json that skipcore wrote in DIR earlier")
    parser.add_argument("--data", nargs="?", const="", default=None, metavar="NAME_OR_PATH",
                        help="measure activity on this dataset's test split (no value: the dataset named in the "
                             "artifact's provenance); default: random inputs")
    parser.add_argument("--samples", type=int, default=DEFAULT_SAMPLES,
                        help="sequences for the activity measurement (default %(default)s)")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"steps per random sequence when --data is not given (default {DEFAULT_RANDOM_STEPS})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default %(default)s)")


def measure_activity(art, plan, *, data: str | None, samples: int, steps: int, seed: int) -> dict:
    """Run the golden model with traces and summarise the cycle bound (hdl.generate.activity_summary)."""
    from skipcore.golden.model import run
    from skipcore.golden.random import random_inputs
    from skipcore.hdl.generate import activity_summary

    if samples < 1:
        raise ConfigError(f"--samples must be at least 1, got {samples}")
    if data is not None:
        from skipcore.evaluate import check_data, resolve_data

        ds = resolve_data(data or None, art.provenance)
        check_data(art, ds.info)
        x = ds.test.x[:samples]
        source = f"dataset {ds.info.name} test split, first {len(x)} sequences"
    else:
        if steps < 1:
            raise ConfigError(f"--steps must be at least 1, got {steps}")
        x = random_inputs(np.random.default_rng(seed), art, samples, steps)
        source = f"golden.random.random_inputs(default_rng({seed}), batch={samples}, steps={steps})"
    gold = run(art, x, traces=True)
    return activity_summary(plan, gold.input_events, gold.spikes, source)


def run(args: argparse.Namespace) -> int:
    from skipcore.cores import CORE_FILES, write_core
    from skipcore.golden.artifact import load
    from skipcore.hdl.plan import check_events, plan_core
    from skipcore.outputs import OutputPlan

    if args.lanes < 1:
        raise ConfigError(f"--lanes must be at least 1, got {args.lanes}")
    check_events(args.events)
    if args.samples < 1:
        raise ConfigError(f"--samples must be at least 1, got {args.samples}")
    if args.steps is not None and args.data is not None:
        raise ConfigError("--steps sets the length of random sequences; with --data the dataset's sequences keep "
                          "their own length: drop --steps or --data")
    steps = DEFAULT_RANDOM_STEPS if args.steps is None else args.steps
    if steps < 1:
        raise ConfigError(f"--steps must be at least 1, got {steps}")
    data_path = args.data if args.data else None
    plan = OutputPlan("generate", inputs=[args.artifact, data_path], force=args.force)
    out = plan.folder(args.out, "-o", files=CORE_FILES).path
    art = load(args.artifact)
    core_plan = plan_core(art, lanes=args.lanes, ring_depth=args.ring_depth, debug=not args.no_debug,
                          events=args.events)
    activity = measure_activity(art, core_plan, data=args.data, samples=args.samples, steps=steps,
                                seed=args.seed)
    plan.prepare()
    write_core(art, out, lanes=args.lanes, ring_depth=args.ring_depth, debug=not args.no_debug,
               activity=activity, events=args.events)
    core_v = out / "core.v"
    layers = ", ".join(f"L{l.index}: {l.neurons}/{l.lanes} lanes, {l.events} events/cycle, c={l.constant_cycles}"
                       for l in core_plan.layers)
    print(f"wrote {core_v} and {out / 'core.json'} ({art.summary()})")
    print(f"  {layers}; bound at measured activity: mean {activity['per_step_mean']}, "
          f"max {activity['per_step_max']} cycles/step ({activity['source']})")
    return 0
