"""Quantization benchmark: float vs PTQ vs QAT accuracy, and golden-model throughput.

For each preset (default: the MNIST-1D presets and ECG):

- float test accuracy of the checkpoint ``RUNS/<preset>/best.pt``;
- PTQ: golden test accuracy of ``skipcore quantize`` at the given widths (default W8 S16);
- QAT: golden test accuracy after ``qat_finetune`` (default 5 epochs) at the same widths
  (goal: within 0.5 pp of float);
- throughput: neuron-steps per second of the golden model (``golden.model.run_batched``,
  batch 256) and of PyTorch float inference of the same network at batch 256, measured in the
  same process with the same thread count (goal: golden / float >= 1.0).

Checkpoints come from ``--runs`` (``skipcore train --preset P --out runs/P``); with ``--train``
missing ones are trained first (``--epochs`` overrides the preset's epoch count).

    python benchmarks/bench_quant.py                       # uses runs/<preset>/best.pt
    python benchmarks/bench_quant.py --train --epochs 30   # trains what is missing
    python benchmarks/bench_quant.py --presets mnist1d-lif-src --qat-epochs 3 --json out.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from common import command_line, pin_threads, save_result

DEFAULT_PRESETS = ("mnist1d-lif-src", "mnist1d-lif-asrc", "mnist1d-alif", "srnn-ecg")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--presets", default=",".join(DEFAULT_PRESETS), help="comma-separated presets")
    p.add_argument("--runs", default="runs", help="folder with <preset>/best.pt (default %(default)s)")
    p.add_argument("--train", action="store_true", help="train presets whose checkpoint is missing")
    p.add_argument("--epochs", type=int, default=None, help="training epochs with --train (default: preset's)")
    p.add_argument("--qat-epochs", type=int, default=5, help="QAT fine-tuning epochs (default %(default)s)")
    p.add_argument("--qat-lr", type=float, default=None, help="QAT learning rate (default: 0.1 x training lr)")
    p.add_argument("--weight-bits", type=int, default=8)
    p.add_argument("--state-bits", type=int, default=16)
    p.add_argument("--readout-bits", type=int, default=24)
    p.add_argument("--decay-bits", type=int, default=8)
    p.add_argument("--input-bits", type=int, default=None)
    p.add_argument("--limit", type=int, default=None, help="samples per split (quick runs)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for torch and NumPy/BLAS (default 1)")
    p.add_argument("--repeats", type=int, default=3, help="throughput: best of N runs (default %(default)s)")
    p.add_argument("--skip-qat", action="store_true", help="float and PTQ only")
    p.add_argument("--json", default="benchmarks/results/bench_quant.json", help="result file")
    return p.parse_args(argv)


def throughput(art, network, x, *, repeats: int, batch: int = 256) -> dict:
    """Neuron-steps/s of the golden model and of float PyTorch inference, same data and batch."""
    import torch

    from skipcore.golden import model as golden

    neuron_steps = x.shape[0] * x.shape[1] * sum(l.neurons for l in art.layers)
    golden.run(art, x[:8])  # warm-up
    with torch.no_grad():
        network(torch.from_numpy(x[:8]))
    t_golden, t_float = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        golden.run_batched(art, x, batch_size=batch)
        t_golden.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        with torch.no_grad():
            for start in range(0, len(x), batch):
                network(torch.from_numpy(x[start:start + batch]))
        t_float.append(time.perf_counter() - t0)
    g, f = min(t_golden), min(t_float)
    return {"neuron_steps": neuron_steps, "golden_s": g, "float_s": f, "golden_nsps": neuron_steps / g,
            "float_nsps": neuron_steps / f, "ratio": f / g, "batch": batch}


def bench_preset(preset: str, args, log) -> dict:
    from skipcore.quant.checkpoint import load_checkpoint
    from skipcore.quant.export import ExportOptions
    from skipcore.quant.finetune import qat_finetune
    from skipcore.quant.ptq import checkpoint_dataset, float_accuracy, quantize_checkpoint

    run = Path(args.runs) / preset
    ckpt = run / "best.pt"
    row: dict = {"preset": preset, "checkpoint": str(ckpt)}
    if not ckpt.is_file():
        if not args.train:
            log(f"{preset}: {ckpt} missing (train it with `skipcore train --preset {preset} --out {run}` or --train)")
            row["skipped"] = "no checkpoint"
            return row
        from skipcore.quant.train import train

        log(f"{preset}: training into {run} ...")
        t0 = time.perf_counter()
        train(preset, out=run, force=True, progress=False, epochs=args.epochs, limit=args.limit,
              log=lambda m: log("  " + m))
        row["train_seconds"] = time.perf_counter() - t0
    network, ck = load_checkpoint(ckpt)
    data = checkpoint_dataset(ck, None, limit=args.limit)
    opts = ExportOptions(weight_bits=args.weight_bits, state_bits=args.state_bits, readout_bits=args.readout_bits,
                         decay_bits=args.decay_bits, input_bits=args.input_bits).validate()
    row["options"] = opts.to_dict()
    row["test_samples"] = len(data.test)
    row["float_acc"] = float_accuracy(network, data.test)
    t0 = time.perf_counter()
    ptq = quantize_checkpoint(ckpt, None, opts, data=data, split="test")
    row["ptq_acc"] = ptq["golden_acc"]
    row["ptq_saturation"] = ptq["saturation"]
    row["summary"] = ptq["artifact"].summary()
    row["input"] = {"kind": ptq["input"].kind, "bits": ptq["input"].bits, "frac_bits": ptq["input"].frac_bits}
    log(f"{preset}: float {row['float_acc']:.4f}  PTQ {row['ptq_acc']:.4f}  ({time.perf_counter() - t0:.1f}s)")
    art = ptq["artifact"]
    if not args.skip_qat:
        t0 = time.perf_counter()
        out = run / f"qat-w{opts.weight_bits}s{opts.state_bits}"
        path = qat_finetune(ckpt, data, out, epochs=args.qat_epochs, lr=args.qat_lr, export_options=opts,
                            force=True, progress=False, log=lambda m: log("  " + m))
        summary = json.loads((out / "qat_summary.json").read_text())
        row.update(qat_acc=summary["golden_test_acc"], qat_val_acc=summary["qat_val_acc"],
                   ptq_val_acc=summary["ptq_val_acc"], float_val_acc=summary["float_val_acc"],
                   qat_best_epoch=summary["best_epoch"], qat_seconds=time.perf_counter() - t0, qat_artifact=str(path))
        row["qat_minus_float_pp"] = 100 * (row["qat_acc"] - row["float_acc"])
        log(f"{preset}: QAT {row['qat_acc']:.4f} ({row['qat_minus_float_pp']:+.2f} pp vs float)")
        from skipcore.golden.artifact import load

        art = load(path)
    row["throughput"] = throughput(art, network, data.test.x, repeats=args.repeats)
    tp = row["throughput"]
    log(f"{preset}: golden {tp['golden_nsps']:.3g} neuron-steps/s, float torch {tp['float_nsps']:.3g}, "
        f"ratio {tp['ratio']:.2f}")
    return row


def main(argv=None) -> int:
    args = parse_args(argv)
    torch = pin_threads(args.threads)  # before NumPy does any work

    def log(msg: str) -> None:
        print(msg, flush=True)

    rows = []
    t0 = time.perf_counter()
    for preset in [p.strip() for p in args.presets.split(",") if p.strip()]:
        rows.append(bench_preset(preset, args, log))
    result = {"command": command_line(argv),
              "threads": args.threads, "torch": torch.__version__, "seconds": time.perf_counter() - t0,
              "rows": rows}
    path = save_result(args.json, result)

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"quantization benchmark (W{args.weight_bits} S{args.state_bits}, {args.threads} thread(s))")
    for col in ("preset", "float", "PTQ", "QAT", "QAT-float", "golden n-steps/s", "float n-steps/s", "ratio"):
        table.add_column(col, justify="left" if col == "preset" else "right")
    for r in rows:
        if "skipped" in r:
            table.add_row(r["preset"], *(["-"] * 6), r["skipped"])
            continue
        tp = r["throughput"]
        table.add_row(r["preset"], f"{100 * r['float_acc']:.2f}", f"{100 * r['ptq_acc']:.2f}",
                      f"{100 * r['qat_acc']:.2f}" if "qat_acc" in r else "-",
                      f"{r['qat_minus_float_pp']:+.2f} pp" if "qat_acc" in r else "-",
                      f"{tp['golden_nsps']:.3g}", f"{tp['float_nsps']:.3g}", f"{tp['ratio']:.2f}")
    Console().print(table)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
