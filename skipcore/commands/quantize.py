"""``skipcore quantize``: post-training quantization of a float checkpoint into ``model.skc``.

Follows ``golden/CONTRACT.md`` section 7 (``skipcore.quant.export``). When the checkpoint's dataset
(or ``--data``) is available, the float network and the golden model are compared on the
validation split.
"""
from __future__ import annotations

import argparse


def add_width_arguments(parser: argparse.ArgumentParser, *, defaults: bool = True) -> None:
    """The export options as CLI flags (shared by quantize, sweep and train --qat)."""
    from skipcore.quant.export import ExportOptions

    d = ExportOptions()
    g = parser.add_argument_group("bit widths (golden/CONTRACT.md section 1)")
    g.add_argument("--weight-bits", type=int, default=d.weight_bits, help="signed weight bits, 2..16 (default %(default)s)")
    g.add_argument("--state-bits", type=int, default=d.state_bits, help="membrane/threshold bits, 8..32 (default %(default)s)")
    g.add_argument("--readout-bits", type=int, default=d.readout_bits, help="readout state bits, 8..40 (default %(default)s)")
    g.add_argument("--decay-bits", type=int, default=d.decay_bits, help="fractional bits of decays, 1..16 (default %(default)s)")
    g.add_argument("--trace-bits", type=int, default=None,
                   help="fraction bits of the ALIF adaptation traces, decay-bits..min(decay-bits + 8, "
                        "60 - max(state-bits, readout-bits)) (default: the most; decay-bits: the arithmetic of "
                        "artifact versions 1 and 2)")
    g.add_argument("--input-bits", type=int, default=None,
                   help="bits of a real (default 8) or count (default: from the data) input, 1..16")
    g.add_argument("--input-frac-bits", type=int, default=None,
                   help="fractional bits of a real input, 0..16 (default: the most the data range allows)")
    g.add_argument("--decay-mode", choices=("mult", "shift"), default=d.decay_mode,
                   help="mult: Q0.D multiply; shift: the cheaper 1 - 2**-n leak (default %(default)s)")


def add_policy_arguments(parser: argparse.ArgumentParser, *, sweep: bool = False) -> None:
    """How PTQ picks each layer's scale and weight exponents (golden/CONTRACT.md section 7)."""
    from skipcore.quant.export import FOLDS, ExportOptions, SCALE_POLICIES

    d = ExportOptions()
    g = parser.add_argument_group("scale policy (CONTRACT.md section 7)")
    if not sweep:
        g.add_argument("--scale-policy", choices=SCALE_POLICIES, default=d.scale_policy,
                       help="max: the largest weight uses the full range; threshold: thresholds keep at least 2**k "
                            "steps, weight exponents absorb the rest; percentile: the P-th percentile |w| uses the "
                            "full range, larger weights clip; auto: try them (with ALIF neurons and no --trace-bits, "
                            "each at the default trace bits and at --decay-bits; with ALIF or leaky neurons and no "
                            "--fold, each with both folds) and keep the best on the validation split "
                            "(default %(default)s)")
    g.add_argument("--threshold-steps", type=int, default=d.threshold_steps, metavar="K",
                   help="threshold policy: the smallest threshold keeps at least 2**K steps, 0..16 (default %(default)s)")
    g.add_argument("--percentile", type=float, default=d.percentile, metavar="P",
                   help="percentile policy: the P-th percentile of |w| maps to the largest weight, 50..100 "
                        "(default %(default)s)")
    g.add_argument("--fold", choices=FOLDS, default=None,
                   help="what ALIF layers and leaky/ALIF readouts fold into their weight rows: float: 1 - alpha; "
                        "decay: the complement of the integer decay, (2**D - a) / 2**D, which keeps the integer "
                        "leak's gain equal to the float one (default: float; auto tries both)")


def options_from_args(args: argparse.Namespace):
    from skipcore.quant.export import ExportOptions

    d = ExportOptions()
    return ExportOptions(weight_bits=args.weight_bits, state_bits=args.state_bits, readout_bits=args.readout_bits,
                         decay_bits=args.decay_bits, trace_bits=getattr(args, "trace_bits", None),
                         input_bits=args.input_bits,
                         input_frac_bits=args.input_frac_bits, decay_mode=args.decay_mode,
                         scale_policy=getattr(args, "scale_policy", d.scale_policy),
                         threshold_steps=getattr(args, "threshold_steps", d.threshold_steps),
                         percentile=getattr(args, "percentile", d.percentile),
                         fold=getattr(args, "fold", None)).validate()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="float checkpoint (best.pt of `skipcore train`)")
    parser.add_argument("-o", "--out", default="model.skc", help="artifact to write (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="replace an existing artifact")
    parser.add_argument("--data", default=None, metavar="NAME_OR_PATH",
                        help="dataset name or path (default: the checkpoint's dataset)")
    parser.add_argument("--split", choices=("train", "val", "test"), default="val",
                        help="split for the float vs golden comparison (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many samples per split")
    parser.add_argument("--no-eval", action="store_true", help="skip the float vs golden comparison")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    add_width_arguments(parser)
    add_policy_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from skipcore.errors import ConfigError

    from skipcore.outputs import OutputPlan

    console = Console()
    opts = options_from_args(args)
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {args.limit}")
    if opts.scale_policy == "auto" and args.no_eval:
        raise ConfigError("--scale-policy auto picks by validation accuracy, which --no-eval skips; "
                          "drop --no-eval or choose max, threshold or percentile")
    plan = OutputPlan("quantize", inputs=[args.checkpoint, args.data], force=args.force)
    plan.file(args.out, "-o")
    plan.prepare()
    import torch

    from skipcore.quant.ptq import quantize_checkpoint

    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError(f"--threads must be positive, not {args.threads}")
        torch.set_num_threads(args.threads)
    with console.status("quantizing and running the golden model..."):
        report = quantize_checkpoint(args.checkpoint, args.out, opts, data=args.data, limit=args.limit,
                                     force=args.force, evaluate=not args.no_eval, split=args.split)
    print_report(console, report)
    console.print(f"wrote [bold]{report['path']}[/bold]")
    return 0


def artifact_table(art, title: str = "artifact"):
    """A rich table: one row per layer and the readout, with spans, scales and integer ranges."""
    from rich.markup import escape
    from rich.table import Table

    from skipcore.golden import kinds as neuron_kinds
    from skipcore.golden.contract import accumulator_bits, layer_input_max

    def rng(a) -> str:
        lo, hi = int(a.min()), int(a.max())
        return str(lo) if lo == hi else f"{lo}..{hi}"

    scales = (art.provenance.get("scales") or {}) if isinstance(art.provenance, dict) else {}
    layer_scales = scales.get("layers") or []
    table = Table(title=escape(f"{title}: {art.summary()}"))
    for col in ("block", "kind", "N", "span", "scale", "threshold", "decay", "acc bits", "notes"):
        table.add_column(col, justify="left" if col in ("block", "kind", "notes") else "right")
    inp = art.input
    table.add_row("input", inp.kind, str(inp.channels), "", "", "", "", "",
                  f"{inp.bits} bits" + (f", frac {inp.frac_bits}" if inp.kind == "real" else ""))
    for i, l in enumerate(art.layers):
        scale = f"{layer_scales[i]:.4g}" if i < len(layer_scales) else ""
        decay = rng(l.decay) + (" >>" if l.decay_mode == "shift" else "") if l.decay is not None else "-"
        own = [f"{n} {rng(v)}" for n, v in l.params.items() if n not in ("threshold", "decay") and v.ndim == 1
               and not n.startswith("table")] + [f"{n} {v}" for n, v in l.options.items()]
        notes = f"{l.reset} reset" if neuron_kinds.get(l.kind).uses_reset else ", ".join(own)
        if l.input_shift:
            notes += f", shift {l.input_shift}"
        table.add_row(f"layer {i}", l.kind, str(l.neurons), str(l.span), scale, rng(l.threshold), decay,
                      str(accumulator_bits(l, layer_input_max(art, i))), notes)
    r = art.readout
    rs = scales.get("readout")
    table.add_row("readout", r.kind, str(r.classes), "", f"{rs:.4g}" if isinstance(rs, (int, float)) else "", "",
                  rng(r.decay) if r.decay is not None else "", str(art.widths.readout_bits),
                  r.mode + (f", skip {r.skip_steps}" if r.mode == "per_step" else ""))
    return table


def print_report(console, report: dict) -> None:
    from rich.table import Table

    art = report["artifact"]
    console.print(artifact_table(art))
    if report.get("policy_choices"):
        t = Table(title=f"scale policy auto: golden accuracy on {report['policy_split']} per candidate")
        for col in ("policy", "accuracy", "saturation events", "clipped weights", "weight exponents"):
            t.add_column(col, justify="right")
        for row in report["policy_choices"]:
            mark = (f" (= {row['same_as']})" if "same_as" in row else "") \
                + (" (chosen)" if row["policy"] == report["scale_policy"] else "")
            t.add_row(row["policy"] + mark, f"{100 * row['accuracy']:.2f} %", str(row["saturation"]),
                      str(row["clipped"]), " ".join("/".join(map(str, e)) for e in row["weight_exps"]))
        console.print(t)
    clipped = report.get("clipped_weights") or {}
    console.print(f"scale policy: {report.get('scale_policy', 'max')}; clipped weights: "
                  f"{sum(clipped.get('layers') or []) + int(clipped.get('readout') or 0)} "
                  f"(layers {clipped.get('layers') or []}, readout {clipped.get('readout', 0)}); weight exponents: "
                  + ", ".join(f"layer {i} in {l.input_exp} rec {l.recurrent_exp}" for i, l in enumerate(art.layers))
                  + f", readout {art.readout.weight_exp}")
    if "golden_acc" in report:
        t = Table(title=f"accuracy on {report['split']} ({report['samples']} samples)")
        for col in ("float", "golden (PTQ)", "difference", "saturation events", "spike rates"):
            t.add_column(col, justify="right")
        sat = report["saturation"]
        sat_txt = ", ".join(f"{k} {v}" for k, v in sorted(sat.items())) or "0"
        t.add_row(f"{100 * report['float_acc']:.2f} %", f"{100 * report['golden_acc']:.2f} %",
                  f"{100 * (report['golden_acc'] - report['float_acc']):+.2f} pp", sat_txt,
                  " / ".join(f"{r:.3f}" for r in report["spike_rates"]))
        console.print(t)
    elif report.get("float_accuracy_recorded") is not None:
        console.print(f"dataset not evaluated; float accuracy recorded in the checkpoint: "
                      f"{100 * report['float_accuracy_recorded']:.2f} %")
