"""Every benchmark in one go (``make bench``): training throughput and accuracy, quantization
(float/PTQ/QAT and golden vs torch throughput), and the fast RTL runner against cocotb.

Each benchmark prints its own table and writes JSON into ``benchmarks/results/``. Trained
checkpoints go to ``runs/bench_train`` and are reused by the quantization benchmark.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

STEPS = [
    ["bench_train.py", "--full", "--ecg-epochs", "45", "--threads", "1",
     "--presets", "mnist1d-lif-src,mnist1d-lif-asrc,mnist1d-alif,srnn-ecg", "--json", str(RESULTS / "train.json")],
    ["bench_quant.py", "--runs", "runs/bench_train", "--presets", "mnist1d-lif-src,mnist1d-lif-asrc,mnist1d-alif,srnn-ecg",
     "--qat-epochs", "8", "--json", str(RESULTS / "quant.json")],
    ["bench_sim.py", "--lanes", "1,4,8", "--json", str(RESULTS / "sim.json")],
]


def main() -> int:
    RESULTS.mkdir(exist_ok=True)
    failed = []
    for step in STEPS:
        print(f"\n=== {' '.join(step)}", flush=True)
        if subprocess.run([sys.executable, str(HERE / step[0]), *step[1:]]).returncode:
            failed.append(step[0])
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
