"""How a Python process hands work to a cocotb testbench running inside the simulator.

The parent writes a JSON job file and passes its path in ``$SKIPCORE_TB_JOB``; the testbench reads
it with :func:`load_job` and writes its results next to it (paths named in the job). NumPy arrays
travel as ``.npz`` files named in the job.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

ENV = "SKIPCORE_TB_JOB"

__all__ = ["ENV", "load_job", "write_job"]


def write_job(path: str | os.PathLike, job: dict[str, Any]) -> dict[str, str]:
    """Write ``job`` to ``path``; return the environment that points a testbench at it."""
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(job, indent=1, default=str))
    return {ENV: str(path)}


def load_job() -> dict[str, Any]:
    """The job of this testbench run (raises a clear error when run without one)."""
    path = os.environ.get(ENV)
    if not path:
        raise RuntimeError(f"${ENV} is not set: run this testbench through skipcore.sim.runners (see its docstring)")
    job = json.loads(Path(path).read_text())
    job["_path"] = path
    return job
