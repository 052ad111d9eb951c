"""Flow orchestration: ``verify`` runs golden, generate, the fast RTL simulation, an optional board
build, and writes one report. The demo and ``skipcore verify`` both call :func:`verify`.

Each stage reads and writes files, so a failed stage can be rerun alone with its own command.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from skipcore.errors import ConfigError
from skipcore.report import VerifyReport, cycle_summary, plot_cycles, plot_raster, throughput


@dataclass
class Stage:
    """A named stage of the flow, for progress display."""

    name: str
    seconds: float = 0.0


class FlowProgress:
    """Prints one line per stage with its duration (rich when available)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.stages: list[Stage] = []
        try:
            from rich.console import Console

            self.console = Console(stderr=True)
        except ImportError:  # pragma: no cover - rich is a dependency
            self.console = None

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        start = time.monotonic()
        if self.enabled and self.console is not None:
            with self.console.status(f"[bold]{name}[/]..."):
                result = fn()
        else:
            result = fn()
        stage = Stage(name, time.monotonic() - start)
        self.stages.append(stage)
        if self.enabled and self.console is not None:
            self.console.print(f"[green]done[/] {name} ({stage.seconds:.1f} s)")
        return result

    def log(self, text: str) -> None:
        if self.enabled and self.console is not None:
            self.console.print(text)


def _golden_with_counts(art, x: np.ndarray, batch_size: int = 128):
    """Golden run over a whole split, keeping per-layer spike counts per step (B, T, L) and every
    spike, packed 8 neurons a byte (``spike_bits``, per layer (B, T, ceil(N/8)))."""
    from skipcore.golden.contract import quantize_input
    from skipcore.golden.model import run
    from skipcore.sim.compare import pack_spikes

    preds, reads, counts, events, bits = [], [], [], [], []
    first = None
    for start in range(0, len(x), batch_size):
        res = run(art, x[start:start + batch_size], traces=True)
        if first is None:
            first = [s[0].copy() for s in res.spikes]
        preds.append(res.predictions)
        reads.append(res.readout)
        counts.append(np.stack([s.sum(axis=2) for s in res.spikes], axis=2).astype(np.int64))
        events.append(res.input_events)
        bits.append([pack_spikes(s) for s in res.spikes])
    x_int = quantize_input(art.input, x)
    return dict(predictions=np.concatenate(preds), readout=np.concatenate(reads),
                counts=np.concatenate(counts), input_events=np.concatenate(events),
                spike_bits=[np.concatenate(layer) for layer in zip(*bits)], first_spikes=first, x_int=x_int)


def _rtl_vs_golden(fast, gold: dict, mode: str) -> dict[str, Any]:
    """The fast runner's whole run against golden: every neuron's spike, the readout, prediction and
    end marker at every step of every sample (:func:`skipcore.sim.compare.compare`)."""
    from skipcore.sim.compare import compare

    cmp = compare(fast.to_trace(), readout=gold["readout"], spike_bits=gold["spike_bits"], mode=mode)
    return {"samples": cmp.samples, "steps": cmp.steps, "count": cmp.steps_with_mismatch,
            "samples_with_mismatch": cmp.samples_with_mismatch, "first": str(cmp.first) if cmp.first else None,
            "compared": cmp.scope(), "spikes_compared": cmp.spikes_compared,
            "differing": {k: v for k, v in cmp.counts.items() if v}}


def verify(
    artifact_path: str | Path,
    *,
    out_dir: str | Path,
    data: str | None = None,
    limit: int | None = None,
    lanes: int | None = None,
    events: int = 1,
    board: str | None = None,
    clock_mhz: float | None = None,
    json_path: str | Path | None = None,
    cocotb_samples: int = 20,
    jobs: int | None = None,
    force: bool = False,
    progress: bool = True,
    out_label: str = "--out",
) -> VerifyReport:
    """Float/golden/RTL accuracy, RTL-vs-golden mismatches, cycles against the bound, resources.

    ``out_label`` names ``out_dir`` in messages. ``lanes`` defaults to 8 (clamped per layer);
    ``events`` is E, the events per cycle of every layer engine (``hdl.plan.plan_core``).
    ``board`` builds a bitstream and takes the clock
    from its Fmax (or ``clock_mhz`` when given). The first ``cocotb_samples`` samples also run
    through the cocotb testbench (random input gaps and output backpressure); both it and the fast
    runner (every sample) compare every neuron's spike at every step with golden. Sample 0 draws
    the raster.
    """
    from skipcore.cores import write_core
    from skipcore.datasets import accuracy
    from skipcore.evaluate import check_data, resolve_data
    from skipcore.golden.artifact import load
    from skipcore.hdl.generate import activity_summary
    from skipcore.hdl.plan import plan_core
    from skipcore.sim.fast import FastRunner

    lanes = 8 if lanes is None else lanes
    check_verify_options(lanes=lanes, jobs=jobs, clock_mhz=clock_mhz, limit=limit, cocotb_samples=cocotb_samples,
                         board=board)
    from skipcore.hdl.plan import check_events

    events = check_events(events)
    out, json_path = _plan_verify_outputs(artifact_path, data, out_dir, json_path, board=board,
                                          cocotb=cocotb_samples > 0, force=force, out_label=out_label)
    flow = FlowProgress(progress)

    art = load(artifact_path)
    ds = flow.run("load dataset", lambda: resolve_data(data, art.provenance))
    check_data(art, ds.info)
    split = ds.test
    x, y = (split.x[:limit], split.y[:limit]) if limit else (split.x, split.y)
    samples, steps = x.shape[0], x.shape[1]
    flow.log(f"model {art.summary()}; {samples} test samples x {steps} steps")

    gold = flow.run("golden model", lambda: _golden_with_counts(art, x))
    golden_acc = accuracy(ds.info, y, gold["predictions"])
    float_training = _training_float_accuracy(art.provenance)

    plan = plan_core(art, lanes=lanes, debug=True, events=events)
    core_dir = out / "core"

    def _generate():
        activity = activity_summary(plan, gold["input_events"][:64], gold["counts"][:64],
                                    f"dataset {ds.info.name} test split, first {min(64, samples)} sequences")
        return write_core(art, core_dir, lanes=lanes, debug=True, activity=activity, events=events)

    flow.run(f"generate core ({lanes} lanes, {events} events/cycle)", _generate)
    runner = FastRunner(core_dir)
    flow.run("build fast Verilator runner", runner.build)
    fast = flow.run(f"fast RTL simulation of {samples} samples (every neuron, every step)",
                    lambda: runner.run(gold["x_int"], jobs=jobs))

    rtl_pred = fast.predictions
    rtl_acc = accuracy(ds.info, y, rtl_pred)
    mismatches = _rtl_vs_golden(fast, gold, art.readout.mode)
    mismatches["predictions_differ"] = int(np.sum(np.asarray(rtl_pred) != np.asarray(gold["predictions"])))

    from skipcore.hdl.generate import cycle_bounds

    bound = cycle_bounds(plan, gold["input_events"], gold["counts"])
    measured = fast.layer_cycles
    cycles = cycle_summary(measured.max(axis=2), bound.max(axis=2))
    cycles["per_layer"] = [
        {"layer": l, "ratio_mean": float(measured[:, :, l].sum() / max(bound[:, :, l].sum(), 1)),
         "ratio_max": float((measured[:, :, l] / np.maximum(bound[:, :, l], 1)).max()),
         "constant_cycles": plan.layers[l].constant_cycles}
        for l in range(len(art.layers))
    ]
    cycles["end_to_end_mean_per_step"] = float(fast.cycles_per_step.mean())
    cycles_per_sample = fast.total_cycles / samples

    rtl_spikes = None
    if cocotb_samples > 0:
        from skipcore.sim.simulate import simulate_core

        n_cocotb = min(cocotb_samples, samples)
        sim = flow.run(f"cocotb + Verilator run of {n_cocotb} samples (every neuron, every step)",
                       lambda: simulate_core(core_dir, art, gold["x_int"][:n_cocotb], workdir=out / "cocotb",
                                             gap=0.2, backpressure=0.2))
        entry: dict[str, Any] = {"samples": n_cocotb, "steps": int(steps), "ok": bool(sim.ok)}
        if sim.results:
            cmp = sim.results[0].comparison
            entry.update(count=int(cmp.total), first=str(cmp.first) if cmp.first else None)
            rtl_spikes = [s[0] for s in sim.results[0].trace.spikes]
            if not cmp.ok:
                mismatches["count"] += int(cmp.total)
                mismatches["first"] = mismatches["first"] or f"cocotb: {cmp.first}"
        else:
            entry["error"] = sim.failure_message()
        if sim.waves:
            entry["waves"] = str(sim.waves)
        mismatches["cocotb"] = entry

    build: dict[str, Any] = {"board": None, "luts": None, "ffs": None, "brams": None, "dsps": None, "fmax_mhz": None}
    if board:
        from skipcore.boards.flow import build as board_build

        result = flow.run(f"synthesis, place and route for {board}",
                          lambda: board_build(artifact_path, board, out / f"build-{board}", lanes=lanes,
                                                      events=events, force=True))
        build.update({k: result.summary.get(k) for k in ("board", "luts", "ffs", "brams", "dsps", "fmax_mhz")})
        build["bitstream"] = str(result.bitstream) if result.bitstream else None
        build["timing_met"] = result.summary.get("timing_met")
    clock, source = (clock_mhz, "--clock") if clock_mhz else (build.get("fmax_mhz"), "build Fmax")
    thr = throughput(cycles_per_sample, steps, clock, source if clock else "no clock: pass --board or --clock")

    figures = {
        "raster": str(plot_raster(gold["first_spikes"], rtl_spikes, out / "raster.png",
                                  title="sample 0: golden (dots) and RTL (rings)")),
        "cycles": str(plot_cycles(measured.max(axis=2), bound.max(axis=2), out / "cycles.png")),
    }
    report = VerifyReport(
        model=str(artifact_path), dataset=ds.info.name, samples=int(samples), steps=int(steps),
        accuracy={"float": None, "golden": float(golden_acc), "rtl": float(rtl_acc)},
        mismatches=mismatches, cycles=cycles, build=build, throughput=thr,
        extra={"float_training": float_training, "figures": figures, "lanes": lanes, "events": events,
               "artifact": art.summary(),
               "fast_runner": {"cycles_per_s": fast.cycles_per_second, "seconds": fast.seconds, "jobs": fast.jobs},
               "stages": {s.name: round(s.seconds, 2) for s in flow.stages}},
    )
    from skipcore import report as report_mod

    report_mod.write(report, out, json_path)
    return report


def check_verify_options(*, lanes: int, jobs: int | None, clock_mhz: float | None, limit: int | None,
                         cocotb_samples: int, board: str | None) -> None:
    """Refuse impossible verify options before any work (ConfigError, one line each)."""
    if lanes < 1:
        raise ConfigError(f"--lanes must be at least 1, got {lanes}")
    if jobs is not None and jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    if clock_mhz is not None and clock_mhz <= 0:
        raise ConfigError(f"--clock must be positive (MHz), got {clock_mhz}")
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {limit} (leave it out for the whole test set)")
    if cocotb_samples < 0:
        raise ConfigError(f"--cocotb-samples must be 0 (no cocotb run) or more, got {cocotb_samples}")
    if board is not None:
        from skipcore.boards.targets import TARGETS

        if board not in TARGETS:
            raise ConfigError(f"unknown --board {board!r}; choose one of: {', '.join(TARGETS)}")


#: what verify writes into its folder (plus report.json unless --json names another file)
VERIFY_FILES = ("report.md", "raster.png", "cycles.png")


def _plan_verify_outputs(artifact_path, data, out_dir, json_path, *, board, cocotb: bool, force: bool,
                         out_label: str = "--out"):
    """Check every output of verify before any work; returns (folder, json path or None)."""
    from skipcore.cores import check_cache_writable
    from skipcore.outputs import OutputPlan, real_path

    plan = OutputPlan("verify", inputs=[artifact_path, data], force=force)
    out = Path(out_dir)
    separate_json = json_path is not None and real_path(json_path) != real_path(out / "report.json")
    files = VERIFY_FILES + (() if separate_json else ("report.json",))
    folders = ("core",) + (("cocotb",) if cocotb else ()) + ((f"build-{board}",) if board else ())
    plan.folder(out, out_label, files=files, folders=folders)
    if separate_json:
        plan.file(json_path, "--json")
    check_cache_writable()  # the fast runner is compiled into the cache
    plan.prepare()
    return out, Path(json_path) if separate_json else None


def _training_float_accuracy(provenance) -> dict:
    """The float accuracy recorded when the model was trained: a training-time figure, on the
    training-time data, labelled as such (verify runs no float model)."""
    prov = provenance if isinstance(provenance, dict) else {}
    return {"accuracy": prov.get("float_accuracy"), "dataset": prov.get("dataset"),
            "split": prov.get("float_accuracy_split"),
            "note": "recorded at training time (artifact provenance), not measured on this report's data"}
