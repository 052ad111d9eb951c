"""Simulate generated cores with cocotb against the golden model (the Python API of the flow).

:func:`simulate_cores` takes one or more :class:`CoreCase` (a generated core folder, its artifact and
quantised inputs), builds one simulation (one core directly; several through the
:mod:`~skipcore.sim.multicore` wrapper, so many small configurations cost one build), runs
``tb_core`` and returns a :class:`CaseResult` per case with the RTL trace, the golden result, the
step-by-step comparison and the cycle report. On a mismatch the waveform (with ``waves=True``) is kept
and its path is in the result and in the error.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from skipcore.golden.artifact import Artifact
from skipcore.golden.model import GoldenResult, run as golden_run

from .compare import Comparison, CycleReport, MismatchError, RtlTrace, compare_golden, cycle_report
from .coreio import CoreSpec
from .job import write_job
from .multicore import MULTI_TOP, write_multicore
from .runners import CocotbResult, build_sim, run_cocotb

__all__ = ["CoreCase", "CaseResult", "SimRun", "simulate_cores", "simulate_core"]


@dataclass
class CoreCase:
    """One core to simulate: ``core_dir`` holds ``core.v`` and ``core.json``."""

    core_dir: Path
    art: Artifact
    x: np.ndarray  #: (B, T, C) quantised integer inputs
    seed: int = 0
    gap: float = 0.2  #: probability of an idle input cycle
    backpressure: float = 0.2  #: probability of out_ready low
    shuffle: bool = True  #: events of a step in random order
    zero_events: float = 0.05  #: probability of sending a zero-valued channel as an event
    name: str = ""

    @property
    def spec(self) -> CoreSpec:
        return CoreSpec.load(Path(self.core_dir) / "core.json")


@dataclass
class CaseResult:
    case: CoreCase
    trace: RtlTrace
    golden: GoldenResult
    comparison: Comparison
    cycles: CycleReport | None

    @property
    def ok(self) -> bool:
        return self.comparison.ok and not self.trace.protocol_errors


@dataclass
class SimRun:
    """All cases of one simulation."""

    results: list[CaseResult]
    cocotb: CocotbResult
    build_seconds: float
    build_cached: bool
    sim_seconds: float
    cycles: int = 0
    workdir: Path | None = None
    loop_seconds: float = 0.0  #: wall time of the testbench's clocked loop (cycles / loop_seconds = sim speed)
    loop_cycles: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results) and self.cocotb.passed

    @property
    def waves(self) -> Path | None:
        return self.cocotb.waves

    def failure_message(self) -> str:
        lines = []
        for i, r in enumerate(self.results):
            if not r.ok:
                tag = r.case.name or f"case {i}"
                lines.append(f"{tag} ({r.case.art.summary()}, lanes {r.case.spec.lanes}): {r.comparison.message()}")
        if not self.cocotb.passed:
            lines.append(self.cocotb.summary())
        elif self.cocotb.waves is not None:
            lines.append(f"waveform: {self.cocotb.waves}")
        return "\n".join(lines)

    def raise_on_failure(self) -> None:
        if not self.ok:
            raise MismatchError(self.failure_message())


def simulate_cores(
    cases: list[CoreCase],
    *,
    simulator: str = "verilator",
    waves: bool = False,
    keep_waves: bool = False,
    workdir: str | os.PathLike | None = None,
    build_root: Path | None = None,
) -> SimRun:
    """Run every case in one simulation; see the module docstring.

    ``waves`` records a waveform (VCD), kept on a failure; ``keep_waves`` keeps it after a pass too.
    """
    if not cases:
        raise ValueError("no cases to simulate")
    workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="skipcore-sim-"))
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    goldens = []
    entries = []
    specs = [c.spec for c in cases]
    multi = len(cases) > 1
    for k, (case, spec) in enumerate(zip(cases, specs)):
        x = np.asarray(case.x, dtype=np.int64)
        gold = golden_run(case.art, x, traces=True, quantized=True)
        goldens.append(gold)
        data = workdir / f"case{k}_in.npz"
        arrays = {"x": x, "readout": gold.readout, "mode": np.array(case.art.readout.mode)}
        for l, s in enumerate(gold.spikes):
            arrays[f"spikes_l{l}"] = s
        np.savez(data, **arrays)
        entries.append({
            "prefix": f"c{k}_" if multi else "", "core_json": str(Path(case.core_dir).resolve() / "core.json"),
            "data": str(data), "out": str(workdir / f"case{k}_trace.npz"),
            "summary": str(workdir / f"case{k}_summary.json"), "seed": case.seed, "gap": case.gap,
            "backpressure": case.backpressure, "shuffle": case.shuffle, "zero_events": case.zero_events,
        })
    bits: dict[str, int] = {}
    if multi:
        source = workdir / "multi.v"
        bits = write_multicore([(Path(c.core_dir) / "core.v", s) for c, s in zip(cases, specs)], source)
        top = MULTI_TOP
    else:
        source, top = Path(cases[0].core_dir) / "core.v", specs[0].top
    build = build_sim([source], top, simulator=simulator, waves=waves, root=build_root)
    job = {"cores": entries}
    if bits:
        job["status_bits"] = bits
    env = write_job(workdir / "job.json", job)
    result = run_cocotb(build, "skipcore.sim.tb_core", test_dir=workdir, env=env,
                        keep_waves="always" if keep_waves else "on_failure")
    results = []
    cycles = 0
    loop_seconds, loop_cycles = 0.0, 0
    for k, (case, spec, gold, entry) in enumerate(zip(cases, specs, goldens, entries)):
        if not Path(entry["out"]).is_file():
            result.messages.append(f"case {k}: the testbench wrote no trace (see {result.log})")
            continue
        trace = RtlTrace.load(entry["out"])
        cmp = compare_golden(trace, gold, case.art.readout.mode)
        rep = cycle_report(spec, trace, gold.spikes)
        results.append(CaseResult(case, trace, gold, cmp, rep))
        if Path(entry["summary"]).is_file():
            summary = json.loads(Path(entry["summary"]).read_text())
            cycles = max(cycles, int(summary.get("cycles", 0)))
            loop_seconds, loop_cycles = float(summary.get("loop_seconds", 0.0)), int(summary.get("loop_cycles", 0))
    return SimRun(results, result, build.seconds, build.cached, result.seconds, cycles, workdir,
                  loop_seconds=loop_seconds, loop_cycles=loop_cycles)


def simulate_core(core_dir: str | os.PathLike, art: Artifact, x: np.ndarray, **kwargs) -> SimRun:
    """One core: ``simulate_cores([CoreCase(core_dir, art, x, ...)])``.

    Keyword arguments of :class:`CoreCase` (``seed``, ``gap``, ``backpressure``, ``shuffle``,
    ``zero_events``) go to the case; the rest to :func:`simulate_cores`.
    """
    case_keys = {"seed", "gap", "backpressure", "shuffle", "zero_events", "name"}
    case_kw = {k: kwargs.pop(k) for k in list(kwargs) if k in case_keys}
    return simulate_cores([CoreCase(Path(core_dir), art, x, **case_kw)], **kwargs)
