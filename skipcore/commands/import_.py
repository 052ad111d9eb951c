"""``skipcore import``: a model trained elsewhere -> ``model.skc`` (or a skipcore checkpoint for QAT).

Sources: NIR graphs (``.nir``) and the state dicts of the papers' official code (SRNN, ASRC-SNN).
The name mapping and the tau -> decay rule are in ``docs/import-export.md``; the work is
``skipcore.quant.importers``.
"""
from __future__ import annotations

import argparse

#: CLI flag -> (import option, sources that use it)
FLAGS = {
    "dt": ("dt", {"nir"}),
    "mode": ("mode", {"nir", "srnn", "asrc"}),
    "skip_steps": ("skip_steps", {"nir", "srnn"}),
    "b_j0": ("b_j0", {"srnn"}),
    "beta": ("beta", {"srnn"}),
    "output_beta": ("output_beta", {"srnn"}),
    "output": ("output", {"srnn"}),
    "lam": ("lam", {"asrc"}),
    "threshold": ("threshold", {"asrc"}),
    "hard_reset": ("reset", {"asrc"}),
    "span": ("span", {"asrc"}),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from skipcore.commands.quantize import add_policy_arguments, add_width_arguments

    parser.add_argument("model", help="a NIR graph (.nir) or an official state dict (.pt/.pth, loaded weights-only)")
    parser.add_argument("-o", "--out", default="model.skc",
                        help="model.skc (PTQ now) or a checkpoint path not ending in .skc (for QAT); default %(default)s")
    parser.add_argument("--force", action="store_true", help="replace an existing output")
    parser.add_argument("--from", dest="source", choices=("auto", "nir", "srnn", "asrc"), default="auto",
                        help="model source (default: from the suffix and the state dict's names)")
    parser.add_argument("--input-kind", choices=("spike", "count", "real"), default=None,
                        help="what the network reads per step (needed for .skc without --data)")
    parser.add_argument("--data", default=None, metavar="NAME_OR_PATH",
                        help="dataset name or path (.skc): sets the input quantisation, lets --scale-policy auto "
                             "choose on its validation split, and compares float and golden on it")
    parser.add_argument("--limit", type=int, default=None, help="with --data: at most this many samples per split")
    g = parser.add_argument_group("NIR")
    g.add_argument("--dt", type=float, default=None, help="simulation step of the graph (default: its metadata)")
    g.add_argument("--mode", choices=("sequence", "per_step"), default=None,
                   help="prediction rule of the readout (default: sequence, or the NIR metadata)")
    g.add_argument("--skip-steps", type=int, default=None, help="per_step: steps left out at the start")
    g = parser.add_argument_group("SRNN (constants the state dict does not hold)")
    g.add_argument("--b-j0", type=float, default=None, help="base threshold b_j0 (default 0.01)")
    g.add_argument("--beta", type=float, default=None, help="hidden adaptation strength (default 1.8; 0 = isAdapt=0)")
    g.add_argument("--output-beta", type=float, default=None, help="output adaptation strength (default: --beta)")
    g.add_argument("--output", choices=("auto", "alif", "leaky"), default=None,
                   help="output layer: alif (spiking ALIF, read through its membrane) or leaky (LI); "
                        "auto: alif when tau_adp_o is present")
    g = parser.add_argument_group("ASRC-SNN (constants the state dict does not hold)")
    g.add_argument("--lam", type=float, default=None, help="LIF decay (default 0.5)")
    g.add_argument("--threshold", type=float, default=None, help="LIF threshold (default 1.0)")
    g.add_argument("--hard-reset", action="store_const", const="hard", default=None, help="the --hard-reset variant")
    g.add_argument("--span", type=int, nargs="+", default=None, help="span k of each SRC layer (one, or one per layer)")
    add_width_arguments(parser)
    add_policy_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console

    from skipcore.errors import ConfigError
    from skipcore.outputs import OutputPlan

    from .quantize import options_from_args, print_report

    console = Console()
    opts = options_from_args(args)
    plan = OutputPlan("import", inputs=[args.model, args.data], force=args.force)
    plan.file(args.out, "-o")
    source = args.source
    if source == "auto":
        source = "nir" if Path(args.model).suffix.lower() == ".nir" else None
    options = {}
    for flag, (name, sources) in FLAGS.items():
        value = getattr(args, flag)
        if value is None:
            continue
        if source is not None and source not in sources:
            shown = "--" + flag.replace("_", "-")
            raise ConfigError(f"{shown} does not apply to a {source} model (it is for {', '.join(sorted(sources))})")
        options[name] = value[0] if flag == "span" and len(value) == 1 else value
    to_artifact = args.out.lower().endswith(".skc")
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {args.limit}")
    if not to_artifact:
        given = [flag for flag, used in (("--data", args.data is not None), ("--limit", args.limit is not None),
                                         ("--scale-policy", opts.scale_policy != "max"),
                                         ("--fold", opts.fold is not None)) if used]
        if given:
            raise ConfigError(f"{', '.join(given)} apply to PTQ into model.skc, not to a checkpoint ({args.out}); "
                              "pass them to `skipcore quantize` or `skipcore train --qat` later, or use -o model.skc")
    elif args.data is None and opts.scale_policy == "auto":
        raise ConfigError("--scale-policy auto picks by validation accuracy and needs data: pass --data NAME_OR_PATH, "
                          "or choose max, threshold or percentile")
    elif args.data is None and args.input_kind is None:
        raise ConfigError("writing model.skc needs the input kind: pass --input-kind spike, count or real, or --data "
                          "(or -o model.pt for a checkpoint)")
    plan.prepare()
    from skipcore.quant.importers import import_file, write_imported

    with console.status("importing..."):
        model = import_file(args.model, args.source, options)
    with console.status("quantizing" + (" and running the golden model..." if args.data else "...")):
        report = write_imported(model, args.out, input_kind=args.input_kind, export_options=opts, force=args.force,
                                source_path=args.model, data=args.data, limit=args.limit)
    cfg = model.network.config
    console.print(f"imported {model.source}: {cfg.input_channels} inputs, "
                  + ", ".join(f"{l.neurons} {l.kind} ({l.recurrence}{' k=' + str(l.span) if l.recurrence == 'src' else ''})"
                              for l in cfg.layers)
                  + f", {cfg.readout.kind} readout of {cfg.classes}")
    if report is not None:
        print_report(console, report)
    console.print(f"wrote [bold]{args.out}[/bold]")
    return 0
