"""``skipcore sweep``: PTQ accuracy (golden model) against weight bits and state bits.

Writes ``sweep.json`` and ``sweep.png`` into ``-o DIR`` and prints a table.
"""
from __future__ import annotations

import argparse


def _bits_list(text: str, flag: str) -> list[int]:
    from skipcore.errors import ConfigError

    values: list[int] = []
    try:
        for part in str(text).split(","):
            part = part.strip()
            if not part:
                continue
            if "-" in part or ".." in part:
                lo, hi = part.replace("..", "-").split("-")
                values.extend(range(int(lo), int(hi) + 1))
            else:
                values.append(int(part))
    except ValueError:
        raise ConfigError(f"{flag} must be a list like 2-16 or 4,8,12, not {text!r}") from None
    if not values:
        raise ConfigError(f"{flag} is empty")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .quantize import add_policy_arguments, add_width_arguments

    parser.add_argument("checkpoint", help="float checkpoint (best.pt of `skipcore train`)")
    parser.add_argument("--data", default=None, metavar="NAME_OR_PATH",
                        help="dataset name or path (default: the checkpoint's dataset)")
    parser.add_argument("-o", "--out", required=True, metavar="DIR", help="folder for sweep.json and sweep.png")
    parser.add_argument("--weights", default="2-16", metavar="LIST",
                        help="weight bits to sweep; state and readout bits keep the headroom of --state-bits and "
                             "--readout-bits over --weight-bits (default %(default)s)")
    parser.add_argument("--fixed-state", action="store_true",
                        help="weight sweep at exactly --state-bits / --readout-bits (no headroom tracking)")
    parser.add_argument("--states", default="8-24", metavar="LIST",
                        help="state bits to sweep, weights fixed at --weight-bits (default %(default)s)")
    parser.add_argument("--split", choices=("train", "val", "test"), default="test", help="default: %(default)s")
    parser.add_argument("--limit", type=int, default=None, help="at most this many samples per split")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--force", action="store_true", help="replace the sweep.json and sweep.png skipcore wrote in DIR")
    add_width_arguments(parser)
    parser.add_argument("--policies", default="max", metavar="LIST",
                        help="scale policies to sweep, from max, threshold, percentile (e.g. max,threshold,percentile; "
                             "default %(default)s)")
    add_policy_arguments(parser, sweep=True)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from skipcore.errors import ConfigError

    from .quantize import options_from_args

    policies = [p.strip() for p in str(args.policies).split(",") if p.strip()]
    for name in policies:
        if name not in ("max", "threshold", "percentile"):
            raise ConfigError(f"--policies: unknown scale policy {name!r}; choose from max, threshold, percentile "
                              "(auto picks one per export; the sweep shows each)")
    if not policies:
        raise ConfigError("--policies is empty; give e.g. max,threshold,percentile")
    weights = _bits_list(args.weights, "--weights")
    states = _bits_list(args.states, "--states")
    opts = options_from_args(args)
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {args.limit}")
    from skipcore.outputs import OutputPlan

    plan = OutputPlan("sweep", inputs=[args.checkpoint, args.data], force=args.force)
    plan.folder(args.out, "-o", files=("sweep.json", "sweep.png"))
    plan.prepare()
    import torch

    from skipcore.quant.ptq import sweep_bits

    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError(f"--threads must be positive, not {args.threads}")
        torch.set_num_threads(args.threads)
    console = Console()
    with console.status("sweeping bit widths (PTQ + golden model)...") as status:
        result = sweep_bits(args.checkpoint, args.data, args.out, weight_bits=weights, state_bits=states, base=opts,
                            split=args.split, limit=args.limit, headroom=not args.fixed_state, policies=policies,
                            log=lambda msg: status.update(f"sweeping bit widths: {msg}"))
    f = result["float_accuracy"]
    w_title = (f"weight bits (state {opts.state_bits})" if args.fixed_state
               else f"weight bits (state W+{opts.state_bits - opts.weight_bits})")
    for key, xkey, title in (("weight_sweep", "weight_bits", w_title),
                             ("state_sweep", "state_bits", f"state bits (weights {opts.weight_bits})")):
        table = Table(title=f"{result['dataset']} {result['split']}: accuracy vs {title}; float {100 * f:.2f} %")
        for col in ("widths", "scale policy", "golden accuracy", "vs float", "saturation events", "clipped weights"):
            table.add_column(col, justify="right")
        for r in result[key]:
            widths = f"W{r['weight_bits']} S{r['state_bits']} R{r['readout_bits']}"
            table.add_row(widths, r["scale_policy"], f"{100 * r['accuracy']:.2f} %",
                          f"{100 * (r['accuracy'] - f):+.2f} pp", str(sum(r["saturation"].values())), str(r["clipped"]))
        console.print(table)
    console.print("wrote " + ", ".join(result.get("files", [])))
    return 0
