"""QAT forward pass against the golden model over whole test sets, bit for bit.

    python benchmarks/check_qat_golden.py runs/bench_train/*/qat-w8s16/model.skc runs/ecg/model.skc

For each artifact: the torch integer forward pass (quant/qat.py) and the NumPy golden model run
the artifact's dataset test split; every spike of every layer and every readout value at every
step must agree. Prints a table and exits non-zero on any difference.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def check(path: str, batch: int = 100) -> dict:
    import torch

    from skipcore.evaluate import resolve_data
    from skipcore.golden.artifact import load
    from skipcore.golden.model import run
    from skipcore.quant.qat import run_qat

    torch.set_num_threads(1)
    art = load(path)
    ds = resolve_data(None, art.provenance)
    x = ds.test.x
    diff_spikes = diff_readout = 0
    start = time.perf_counter()
    for s in range(0, len(x), batch):
        xb = x[s:s + batch]
        gold = run(art, xb, traces=True)
        qat = run_qat(art, xb)
        diff_readout += int(np.count_nonzero(gold.readout != qat["readout"]))
        diff_spikes += sum(int(np.count_nonzero(g != q)) for g, q in zip(gold.spikes, qat["spikes"]))
    return {"artifact": path, "model": art.summary(), "samples": len(x), "steps": int(x.shape[1]),
            "spike_differences": diff_spikes, "readout_differences": diff_readout,
            "seconds": time.perf_counter() - start}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifacts", nargs="+")
    args = parser.parse_args()
    bad = 0
    for path in args.artifacts:
        r = check(path)
        bad += r["spike_differences"] + r["readout_differences"]
        print(f"{r['artifact']}: {r['model']}: {r['samples']} samples x {r['steps']} steps, "
              f"spike differences {r['spike_differences']}, readout differences {r['readout_differences']} "
              f"({r['seconds']:.1f} s)", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
