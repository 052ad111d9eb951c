"""QAT through the user .npz path (issue 11): float vs PTQ (each scale policy) vs QAT at W8/S16.

Each dataset is written as the documented ``.npz`` (``x`` (N, T, C) real, ``y`` (N,), ``x_test``,
``y_test``), trained with ``skipcore train --dataset npz --data FILE.npz``, quantized with each
scale policy (``quant.ptq.quantize_checkpoint``, golden model on the test split) and fine-tuned
with QAT (``quant.finetune.qat_finetune``, the library behind ``train --qat``).

Datasets:

- ``mnist1d``: MNIST-1D (the ``mnist1d`` package, embedded), 1 channel, T=40, as an .npz;
- ``JapaneseVowels``: UEA, 12 LPC channels of speech, T=25 (the equal-length ``_eq`` files), 9
  speakers, 270 / 370;
- ``BasicMotions``: UEA, 6 accelerometer/gyroscope channels, T=100, 4 classes, 40 / 40;
- ``FashionMNIST``: Fashion-MNIST images read row by row (T=28 rows, C=28 pixels of ``byte / 255``),
  the first ``--fashion-train`` training images (default 10000) and all 10000 test images.

The UEA ``.ts`` files are the ones shipped inside the ``aeon`` wheel, Fashion-MNIST the IDX files of
Debian's ``dataset-fashion-mnist``; ``make bench-data`` installs both (aeon without its dependencies:
only its data files are read, by the small parser here).

    python benchmarks/bench_qat_npz.py                                   # the runs below, 1 thread
    python benchmarks/bench_qat_npz.py --runs JapaneseVowels:mnist1d-lif-src --epochs 30 --qat-epochs 5
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from common import command_line, pin_threads, policy_cells, save_result

DEFAULT_RUNS = ("mnist1d:mnist1d-lif-src", "mnist1d:mnist1d-lif-asrc", "mnist1d:mnist1d-alif",
                "JapaneseVowels:mnist1d-lif-src", "BasicMotions:mnist1d-lif-src", "FashionMNIST:mnist1d-lif-src")
POLICIES = ("max", "threshold", "percentile", "auto")
UEA_FILES = {"JapaneseVowels": "JapaneseVowels_eq", "BasicMotions": "BasicMotions"}
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
DATASETS = ("mnist1d", *UEA_FILES, "FashionMNIST")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", default=",".join(DEFAULT_RUNS), help="comma-separated DATASET:PRESET pairs")
    p.add_argument("--out", default="runs/qat-npz", help="working folder (default %(default)s)")
    p.add_argument("--epochs", type=int, default=15, help="float training epochs (default %(default)s)")
    p.add_argument("--qat-epochs", type=int, default=3, help="QAT epochs (default %(default)s)")
    p.add_argument("--qat-policy", default="auto", help="scale policy QAT starts from (default %(default)s)")
    p.add_argument("--fashion-train", type=int, default=10000, help="Fashion-MNIST training images used")
    p.add_argument("--layers", default=None, help="override the preset's hidden layer sizes, e.g. 64,64")
    p.add_argument("--weight-bits", type=int, default=8)
    p.add_argument("--state-bits", type=int, default=16)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default="benchmarks/results/bench_qat_npz.json", help="result file")
    return p.parse_args(argv)


def read_ts(path: Path):
    """A UEA/UCR ``.ts`` file (equal length, no missing values) -> x (N, T, C) float32, labels (N,) str,
    and the class labels in the header's order."""
    import numpy as np

    classes, rows, labels = None, [], []
    in_data = False
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            low = line.lower()
            if low.startswith("@classlabel"):
                parts = line.split()
                classes = parts[2:] if parts[1].lower() == "true" else None
            elif low.startswith("@data"):
                in_data = True
            continue
        *dims, label = line.split(":")
        rows.append([[float(v) for v in d.split(",")] for d in dims])
        labels.append(label.strip())
    x = np.asarray(rows, dtype=np.float32).transpose(0, 2, 1)  # (N, C, T) -> (N, T, C)
    if classes is None:
        raise SystemExit(f"{path}: no class labels in the header")
    return x, labels, classes


def read_idx(path: Path):
    """An IDX file (optionally .gz) as a NumPy array."""
    import gzip

    import numpy as np

    raw = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def uea_folder() -> Path:
    spec = importlib.util.find_spec("aeon")  # located, not imported: only its data files are read
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the UEA files come from the aeon wheel: run `make bench-data` "
                         "(pip install --no-deps aeon==1.6.0)")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"


def write_npz(name: str, folder: Path, fashion_train: int = 10000) -> Path:
    """The dataset as the documented user .npz (x, y, x_test, y_test)."""
    import numpy as np

    path = folder / f"{name}.npz"
    if name == "mnist1d":
        from skipcore.datasets import load_dataset

        d = load_dataset("mnist1d")
        # train and val together: `--dataset npz` carves its own val split from x, y
        x = np.concatenate([d.train.x, d.val.x]) if len(d.val) else d.train.x
        y = np.concatenate([d.train.y, d.val.y]) if len(d.val) else d.train.y
        arrays = dict(x=x, y=y, x_test=d.test.x, y_test=d.test.y)
    elif name == "FashionMNIST":
        if not FASHION_DIR.is_dir():
            raise SystemExit(f"{FASHION_DIR} is missing: run `make bench-data` (apt dataset-fashion-mnist)")

        def images(stem):
            return read_idx(FASHION_DIR / f"{stem}-images-idx3-ubyte.gz").astype(np.float32) / 255.0

        def labels(stem):
            return read_idx(FASHION_DIR / f"{stem}-labels-idx1-ubyte.gz").astype(np.int64)

        arrays = dict(x=images("train")[:fashion_train], y=labels("train")[:fashion_train],
                      x_test=images("t10k"), y_test=labels("t10k"))  # (N, 28 rows = T, 28 pixels = C)
    else:
        base = uea_folder() / name / UEA_FILES[name]
        x, labels, classes = read_ts(base.with_name(UEA_FILES[name] + "_TRAIN.ts"))
        x_test, labels_test, _ = read_ts(base.with_name(UEA_FILES[name] + "_TEST.ts"))
        index = {c: i for i, c in enumerate(classes)}
        arrays = dict(x=x, y=np.array([index[v] for v in labels]), x_test=x_test,
                      y_test=np.array([index[v] for v in labels_test]))
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return path


def bench_run(dataset: str, preset: str, npz: Path, args, log) -> dict:
    from skipcore.quant.checkpoint import load_checkpoint
    from skipcore.quant.export import ExportOptions
    from skipcore.quant.finetune import qat_finetune
    from skipcore.quant.ptq import checkpoint_dataset, float_accuracy, quantize_checkpoint

    run = Path(args.out) / f"{dataset}-{preset}"
    cmd = [str(Path(sys.executable).with_name("skipcore")), "train", "--preset", preset, "--dataset", "npz",
           "--data", str(npz), "--epochs", str(args.epochs), "--out", str(run), "--force", "--threads",
           str(args.threads), "--no-progress"]
    if args.layers:
        cmd += ["--layers", args.layers]
    row: dict = {"dataset": dataset, "preset": preset, "epochs": args.epochs, "qat_epochs": args.qat_epochs,
                 "train_command": " ".join(["skipcore"] + cmd[1:])}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        log(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"`{row['train_command']}` failed")
    row["train_seconds"] = time.perf_counter() - t0
    ckpt = run / "best.pt"
    network, ck = load_checkpoint(ckpt)
    data = checkpoint_dataset(ck, None)
    row["samples"] = {"train": len(data.train), "val": len(data.val), "test": len(data.test)}
    row["shape"] = list(data.test.x.shape[1:])
    row["float_acc"] = float_accuracy(network, data.test)
    log(f"{dataset} {preset}: {args.epochs} epochs in {row['train_seconds']:.0f}s, float test {row['float_acc']:.4f}")
    base = ExportOptions(weight_bits=args.weight_bits, state_bits=args.state_bits).validate()
    row["ptq"] = {}
    for policy in POLICIES:
        rep = quantize_checkpoint(ckpt, None, replace(base, scale_policy=policy), data=data, split="test")
        row["ptq"][policy] = {"accuracy": rep["golden_acc"], "chosen": rep["scale_policy"],
                              "saturation": int(sum(rep["saturation"].values()))}
        log(f"  PTQ {policy:<10s} ({rep['scale_policy']}) test {rep['golden_acc']:.4f}")
    t0 = time.perf_counter()
    out = run / "qat"
    qat_finetune(ckpt, data, out, epochs=args.qat_epochs, export_options=replace(base, scale_policy=args.qat_policy),
                 force=True, progress=False, log=lambda m: log("    " + m))
    summary = json.loads((out / "qat_summary.json").read_text())
    row["qat"] = {"accuracy": summary["golden_test_acc"], "policy": summary["scale_policy"],
                  "best_epoch": summary["best_epoch"], "ptq_val": summary["ptq_val_acc"],
                  "qat_val": summary["qat_val_acc"], "float_val": summary["float_val_acc"],
                  "seconds": time.perf_counter() - t0}
    log(f"  QAT ({summary['scale_policy']}, best epoch {summary['best_epoch']}) test {summary['golden_test_acc']:.4f} "
        f"({100 * (summary['golden_test_acc'] - row['float_acc']):+.2f} pp)")
    return row


def main(argv=None) -> int:
    args = parse_args(argv)
    pin_threads(args.threads)

    def log(msg: str) -> None:
        print(msg, flush=True)

    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    pairs = [tuple(r.split(":")) for r in args.runs.split(",") if r.strip()]
    for pair in pairs:
        if len(pair) != 2 or pair[0] not in DATASETS:
            raise SystemExit(f"--runs: {':'.join(pair)!r} is not DATASET:PRESET with DATASET one of "
                             f"{', '.join(DATASETS)}")
    files = {name: write_npz(name, folder, args.fashion_train) for name in dict.fromkeys(p[0] for p in pairs)}
    t0 = time.perf_counter()
    rows = [bench_run(d, p, files[d], args, log) for d, p in pairs]
    result = {"command": command_line(argv), "seconds": time.perf_counter() - t0, "rows": rows}
    path = save_result(args.json, result)

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"user .npz path: test accuracy (%), W{args.weight_bits} S{args.state_bits}, "
                        f"{args.epochs} float + {args.qat_epochs} QAT epochs")
    for col in ("dataset", "preset", "T x C", "float", *(f"PTQ {p}" for p in POLICIES), "QAT", "QAT - float"):
        table.add_column(col, justify="left" if col in ("dataset", "preset") else "right")
    for r in rows:
        table.add_row(r["dataset"], r["preset"], "x".join(map(str, r["shape"])), f"{100 * r['float_acc']:.2f}",
                      *policy_cells(r["ptq"], POLICIES), f"{100 * r['qat']['accuracy']:.2f}",
                      f"{100 * (r['qat']['accuracy'] - r['float_acc']):+.2f}")
    Console(width=160).print(table)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
