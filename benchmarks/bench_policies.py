"""PTQ scale-policy benchmark (issue 11): float vs PTQ under each scale policy vs QAT.

For each preset (default: ECG and the three MNIST-1D presets), from ``RUNS/<preset>/best.pt``:

- float test accuracy;
- PTQ golden test accuracy at the given widths (default W8 S16) under each scale policy
  (``max``, ``threshold``, ``percentile``, ``auto``; auto chooses on the validation split and the
  chosen policy is printed), with its saturation events and clipped weights;
- QAT golden test accuracy (``qat_finetune``, default 5 epochs) for the presets in
  ``--qat-presets`` (default: srnn-ecg).

    python benchmarks/bench_policies.py                          # uses runs/<preset>/best.pt
    python benchmarks/bench_policies.py --presets srnn-ecg --runs /tmp/runs --qat-epochs 3
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from common import command_line, pin_threads, policy_cells, save_result

DEFAULT_PRESETS = ("srnn-ecg", "mnist1d-lif-src", "mnist1d-lif-asrc", "mnist1d-alif")
POLICIES = ("max", "threshold", "percentile", "auto")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--presets", default=",".join(DEFAULT_PRESETS), help="comma-separated presets")
    p.add_argument("--qat-presets", default="srnn-ecg", help="presets that also get QAT (comma-separated; '' for none)")
    p.add_argument("--runs", default="runs", help="folder with <preset>/best.pt (default %(default)s)")
    p.add_argument("--qat-epochs", type=int, default=5)
    p.add_argument("--weight-bits", type=int, default=8)
    p.add_argument("--state-bits", type=int, default=16)
    p.add_argument("--readout-bits", type=int, default=24)
    p.add_argument("--decay-bits", type=int, default=8)
    p.add_argument("--threshold-steps", type=int, default=6)
    p.add_argument("--percentile", type=float, default=99.9)
    p.add_argument("--limit", type=int, default=None, help="samples per split (quick runs)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default="benchmarks/results/bench_policies.json", help="result file")
    return p.parse_args(argv)


def bench_preset(preset: str, args, log) -> dict:
    from skipcore.quant.checkpoint import load_checkpoint
    from skipcore.quant.export import ExportOptions
    from skipcore.quant.ptq import checkpoint_dataset, float_accuracy, quantize_checkpoint

    run = Path(args.runs) / preset
    ckpt = run / "best.pt"
    row: dict = {"preset": preset, "checkpoint": str(ckpt)}
    if not ckpt.is_file():
        log(f"{preset}: {ckpt} missing (train it with `skipcore train --preset {preset} --out {run}`)")
        row["skipped"] = "no checkpoint"
        return row
    network, ck = load_checkpoint(ckpt)
    data = checkpoint_dataset(ck, None, limit=args.limit)
    base = ExportOptions(weight_bits=args.weight_bits, state_bits=args.state_bits, readout_bits=args.readout_bits,
                         decay_bits=args.decay_bits, threshold_steps=args.threshold_steps,
                         percentile=args.percentile).validate()
    row["options"] = base.to_dict()
    row["test_samples"] = len(data.test)
    row["float_acc"] = float_accuracy(network, data.test)
    row["ptq"] = {}
    for policy in POLICIES:
        from dataclasses import replace

        t0 = time.perf_counter()
        rep = quantize_checkpoint(ckpt, None, replace(base, scale_policy=policy), data=data, split="test")
        clipped = rep["clipped_weights"]
        row["ptq"][policy] = {"accuracy": rep["golden_acc"], "chosen": rep["scale_policy"],
                              "saturation": int(sum(rep["saturation"].values())),
                              "clipped": int(sum(clipped["layers"]) + clipped["readout"]),
                              "seconds": time.perf_counter() - t0}
        log(f"{preset}: PTQ {policy:<10s} ({rep['scale_policy']}) {rep['golden_acc']:.4f}  "
            f"saturation {row['ptq'][policy]['saturation']}  clipped {row['ptq'][policy]['clipped']}")
    if preset in [p.strip() for p in args.qat_presets.split(",")]:
        from skipcore.quant.finetune import qat_finetune

        out = run / f"qat-w{base.weight_bits}s{base.state_bits}"
        qat_finetune(ckpt, data, out, epochs=args.qat_epochs, export_options=base, force=True, progress=False,
                     log=lambda m: log("  " + m))
        summary = json.loads((out / "qat_summary.json").read_text())
        row["qat_acc"] = summary["golden_test_acc"]
        log(f"{preset}: QAT {row['qat_acc']:.4f}")
    return row


def main(argv=None) -> int:
    args = parse_args(argv)
    pin_threads(args.threads)  # before NumPy does any work

    def log(msg: str) -> None:
        print(msg, flush=True)

    t0 = time.perf_counter()
    rows = [bench_preset(p.strip(), args, log) for p in args.presets.split(",") if p.strip()]
    result = {"command": command_line(argv),
              "seconds": time.perf_counter() - t0, "rows": rows}
    path = save_result(args.json, result)

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"scale policies: test accuracy (%), W{args.weight_bits} S{args.state_bits}")
    for col in ("preset", "float", *(f"PTQ {p}" for p in POLICIES), "QAT"):
        table.add_column(col, justify="left" if col == "preset" else "right")
    for r in rows:
        if "skipped" in r:
            table.add_row(r["preset"], *(["-"] * (len(POLICIES) + 1)), r["skipped"])
            continue
        table.add_row(r["preset"], f"{100 * r['float_acc']:.2f}", *policy_cells(r["ptq"], POLICIES),
                      f"{100 * r['qat_acc']:.2f}" if "qat_acc" in r else "-")
    Console().print(table)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
