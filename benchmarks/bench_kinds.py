"""Neuron-kind benchmark: STC-LIF next to LIF-SRC and the spiking ALIF readout, float / QAT / RTL.

    python benchmarks/bench_kinds.py                                  # MNIST-1D: mnist1d-stc vs mnist1d-lif-src
    python benchmarks/bench_kinds.py --epochs 60 --qat-epochs 5       # the presets' own epochs
    python benchmarks/bench_kinds.py --ecg --ecg-epochs 40            # + ecg-stc and srnn-ecg-spiking (T = 1301)
    python benchmarks/bench_kinds.py --board ulx3s-85f                # + LUT/FF/BRAM/DSP and Fmax per core

Each preset is trained with ``skipcore train --qat`` (float training, then integer-exact QAT
fine-tuning, which writes model.skc), then checked with ``skipcore verify``: float accuracy (from
training), golden accuracy (the QAT model's integers: QAT == golden bit for bit) and RTL accuracy
(the fast Verilator runner on the whole test set). With ``--board`` the verify step also builds the
core (Yosys + nextpnr) and reports its resources and Fmax. Both MNIST-1D presets have the same
size (1 -> 128 -> 128 -> 10, spans 1 and 2) and the same training settings.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from common import save_result

MNIST = ("mnist1d-lif-src", "mnist1d-stc")
SKIPCORE = str(Path(sys.executable).with_name("skipcore"))  # the console script of this environment
ECG = ("srnn-ecg-spiking", "ecg-stc")


def _run(cmd: list[str]) -> None:
    print("$ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def bench(preset: str, out: Path, *, epochs: int, qat_epochs: int, threads: int, lanes: int,
          board: str | None, limit: int | None) -> dict:
    run_dir = out / preset
    t0 = time.perf_counter()
    train = [SKIPCORE, "train", "--preset", preset, "--out", str(run_dir), "--force",
             "--epochs", str(epochs), "--qat", "--qat-epochs", str(qat_epochs), "--threads", str(threads),
             "--no-progress"]
    if limit:
        train += ["--limit", str(limit)]
    _run(train)
    t_train = time.perf_counter() - t0
    report = run_dir / "verify" / "report.json"
    verify = [SKIPCORE, "verify", str(run_dir / "model.skc"), "--json", str(report),
              "--force", "--cocotb-samples", "0", "--lanes", str(lanes), "--jobs", "1", "--no-progress"]
    if board:
        verify += ["--board", board]
    if limit:
        verify += ["--limit", str(limit)]
    _run(verify)
    rep = json.loads(report.read_text())
    accuracy = dict(rep.get("accuracy") or {})
    if accuracy.get("float") is None:  # verify has no float model: the float test accuracy of training
        accuracy["float"] = json.loads((run_dir / "summary.json").read_text()).get("test_acc")
    return {"preset": preset, "epochs": epochs, "qat_epochs": qat_epochs, "train_seconds": t_train,
            "accuracy": accuracy, "build": rep.get("build"), "mismatches": rep.get("mismatches"),
            "report": str(report)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=20, help="float epochs of each MNIST-1D preset")
    p.add_argument("--qat-epochs", type=int, default=2)
    p.add_argument("--ecg", action="store_true", help="also ecg-stc and srnn-ecg-spiking (slow: T = 1301)")
    p.add_argument("--ecg-epochs", type=int, default=40)
    p.add_argument("--board", default=None, help="also build each core: ulx3s-85f, icebreaker")
    p.add_argument("--lanes", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--limit", type=int, default=None, help="samples per split (smoke runs)")
    p.add_argument("--out", default="runs/bench_kinds")
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    out = Path(a.out)
    rows = [bench(name, out, epochs=a.epochs, qat_epochs=a.qat_epochs, threads=a.threads, lanes=a.lanes,
                  board=a.board, limit=a.limit) for name in MNIST]
    if a.ecg:
        rows += [bench(name, out, epochs=a.ecg_epochs, qat_epochs=a.qat_epochs, threads=a.threads,
                       lanes=a.lanes, board=a.board, limit=a.limit) for name in ECG]
    print(f"\n{'preset':18s} {'epochs':>6s} {'float':>7s} {'QAT':>7s} {'RTL':>7s} {'LUT':>7s} {'FF':>7s} "
          f"{'BRAM':>5s} {'DSP':>4s} {'Fmax':>6s}")
    for r in rows:
        acc, b = r["accuracy"] or {}, r["build"] or {}
        f = lambda v: f"{v:7.4f}" if isinstance(v, float) else f"{'-':>7s}"  # noqa: E731
        g = lambda k, w: f"{b.get(k):>{w}}" if b.get(k) is not None else f"{'-':>{w}s}"  # noqa: E731
        print(f"{r['preset']:18s} {r['epochs']:6d} {f(acc.get('float'))} {f(acc.get('golden'))} {f(acc.get('rtl'))} "
              f"{g('luts', 7)} {g('ffs', 7)} {g('brams', 5)} {g('dsps', 4)} {g('fmax_mhz', 6)}")
    if a.json:
        save_result(a.json, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
