"""What every benchmark script does around its measurements: fix the thread count before NumPy and
torch start work, and write its result file atomically (a rerun replaces the benchmark's own
result, which is the point of rerunning it)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from skipcore.outputs import atomic_write_json


def pin_threads(threads: int):
    """BLAS and torch threads = ``threads``; call before the measured work. Returns torch."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    import torch

    torch.set_num_threads(threads)
    return torch


def command_line(argv) -> str:
    return " ".join([Path(sys.argv[0]).name] + (list(argv) if argv is not None else sys.argv[1:]))


def save_result(path, result) -> Path:
    """``result`` as JSON at ``path`` (folders created), written atomically."""
    return atomic_write_json(path, result, parents=True, default=str)


def policy_cells(ptq: dict, policies) -> list[str]:
    """Table cells of per-policy PTQ accuracies (%), ``auto`` followed by the policy it chose."""
    return [f"{100 * ptq[p]['accuracy']:.2f}" + (f" ({ptq[p]['chosen']})" if p == "auto" else "") for p in policies]
