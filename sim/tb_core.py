"""cocotb testbench of the generated core (``skipcore_core``, ``hdl/INTERFACE.md``).

It streams a batch of sequences back to back through one or several cores (a multi-core wrapper
built by :mod:`skipcore.sim.multicore` drives many small configurations in one simulation), with
random idle cycles on the input and random backpressure on the output, records every output word,
the per-layer debug ports and the cycle counts, writes them as an :class:`~skipcore.sim.compare.RtlTrace`
and, when the job carries the golden expectations, fails on the first difference.

Run it through :func:`skipcore.sim.simulate.simulate_cores` (or ``skipcore simulate``). Job keys
(JSON named by ``$SKIPCORE_TB_JOB``)::

    {"cores": [{"prefix": "", "core_json": ".../core.json", "data": "in.npz", "out": "trace.npz",
                "summary": "summary.json", "seed": 1, "gap": 0.2, "backpressure": 0.2,
                "shuffle": true, "zero_events": 0.05}],
     "status_bits": {"c0_in_ready": 0, ...},   # multi-core wrapper only (multicore.status_bits)
     "tail_cycles": 30}

``data`` holds ``x`` (B, T, C) quantised ints and optionally the golden ``readout`` (B, T, M),
``spikes_l{l}`` (B, T, N_l) and ``mode``.
"""
from __future__ import annotations

import json
import random
import time

import cocotb
import numpy as np
from cocotb.clock import Clock

from .compare import RtlTrace, compare, cycle_report
from .coreio import CoreSpec, cycle_bounds, encode_sample, split_readout
from .drivers import CycleLoop, DebugMonitor, StatusBus, StreamDriver, StreamMonitor, Timeout, port
from .job import load_job

IN_FIELDS = ("index", "value", "end_step", "end_seq")
OUT_FIELDS = ("readout", "prediction", "end_seq")


class CoreRun:
    """Drivers, monitors and bookkeeping of one core inside the simulation."""

    def __init__(self, dut, entry: dict, status: StatusBus | None = None) -> None:
        self.entry = entry
        self.prefix = entry.get("prefix", "")
        self.spec = CoreSpec.load(entry["core_json"])
        with np.load(entry["data"], allow_pickle=False) as z:
            self.x = z["x"].astype(np.int64)
            self.expected_readout = z["readout"] if "readout" in z.files else None
            self.expected_spikes = [z[f"spikes_l{l}"] for l in range(self.spec.n_layers)] \
                if all(f"spikes_l{l}" in z.files for l in range(self.spec.n_layers)) else None
            self.mode = str(z["mode"]) if "mode" in z.files else self.spec.readout_mode
        self.batch, self.steps, _ = self.x.shape
        seed = int(entry.get("seed", 0))
        nprng = np.random.default_rng(seed)
        pyrng = random.Random(seed)
        self.words: list[tuple[int, int, int, int]] = []
        self.events = np.zeros((self.batch, self.steps), dtype=np.int64)
        for b in range(self.batch):
            w, ev = encode_sample(self.spec, self.x[b], nprng, shuffle=bool(entry.get("shuffle", True)),
                                  zero_events=float(entry.get("zero_events", 0.0)))
            self.words += w
            self.events[b] = ev
        p = self.prefix
        self.driver = StreamDriver(dut, prefix=p + "in_", fields=IN_FIELDS, gap=float(entry.get("gap", 0.0)),
                                   seed=pyrng.getrandbits(32))
        self.monitor = StreamMonitor(dut, prefix=p + "out_", fields=OUT_FIELDS,
                                     backpressure=float(entry.get("backpressure", 0.0)), seed=pyrng.getrandbits(32))
        self.debug = DebugMonitor(dut, self.spec.n_layers, prefix=p) if self.spec.has_debug_ports else None
        if status is not None:  # read the 1-bit outputs from the wrapper's status vector
            self.driver.ready = status.bit(p + "in_ready")
            self.monitor.valid = status.bit(p + "out_valid")
            if self.debug is not None:
                self.debug.valid = [status.bit(f"{p}dbg_l{l}_valid") for l in range(self.spec.n_layers)]
        self.parts = [self.driver, self.monitor] + ([self.debug] if self.debug else [])
        self.start_cycle = 0
        self.status_unknown: list[str] = []

    @property
    def expected_words(self) -> int:
        return self.batch * self.steps

    def done(self) -> bool:
        if len(self.monitor.received) < self.expected_words:
            return False
        return self.debug is None or all(len(s) >= self.expected_words for s in self.debug.steps)

    def budget(self) -> int:
        """A generous cycle budget: 4x the summed bound plus room to clear state between sequences."""
        spikes = self.expected_spikes
        if spikes is None:
            spikes = [np.ones((self.batch, self.steps, l.neurons), dtype=np.int64) for l in self.spec.layers]
        bound = int(cycle_bounds(self.spec, self.events, spikes).sum())
        clear = sum(4 * l.neurons * max(1, l.ring_depth) + 64 for l in self.spec.layers) + 4 * self.spec.classes
        return 4 * bound + self.batch * clear + 8 * len(self.words) + 2000

    def position(self) -> str:
        n = len(self.monitor.received)
        return f"sample {n // self.steps}, step {n % self.steps}" if n < self.expected_words else "the end"

    def trace(self) -> RtlTrace:
        B, T, n = self.batch, self.steps, self.expected_words
        M, R = self.spec.classes, self.spec.readout_bits
        readout = np.zeros((n, M), dtype=np.int64)
        pred = np.full(n, -1, dtype=np.int64)
        end = np.zeros(n, dtype=np.int64)
        valid = np.zeros(n, dtype=bool)
        out_cycles = np.zeros(n, dtype=np.int64)
        for i, (cycle, (ro, pr, es)) in enumerate(self.monitor.received[:n]):
            readout[i] = split_readout(ro, M, R)
            pred[i], end[i], valid[i], out_cycles[i] = pr, es, True, cycle
        step_cycles = np.diff(np.concatenate([[self.start_cycle - 1], out_cycles]))
        errors = list(self.monitor.protocol_errors) + self.driver.unknown + self.status_unknown
        if self.debug is not None:
            errors += self.debug.unknown
        if len(self.monitor.received) > n:
            errors.append(f"{len(self.monitor.received) - n} output words more than the {n} input steps")
        spikes, layer_cycles = [], None
        if self.debug is not None:
            layer_cycles = np.zeros((n, self.spec.n_layers), dtype=np.int64)
            for l, info in enumerate(self.spec.layers):
                got = self.debug.steps[l]
                if len(got) > n:
                    errors.append(f"layer {l}: {len(got) - n} dbg_l{l}_valid pulses more than the {n} steps")
                s = np.zeros((n, info.neurons), dtype=np.uint8)
                for i, (_, bits, cyc) in enumerate(got[:n]):
                    s[i] = [(bits >> j) & 1 for j in range(info.neurons)]
                    layer_cycles[i, l] = cyc
                spikes.append(s.reshape(B, T, info.neurons))
            layer_cycles = layer_cycles.reshape(B, T, -1)
        return RtlTrace(
            readout=readout.reshape(B, T, M), prediction=pred.reshape(B, T), end_seq=end.reshape(B, T),
            valid=valid.reshape(B, T), spikes=spikes, layer_cycles=layer_cycles,
            step_cycles=step_cycles.reshape(B, T), input_events=self.events,
            total_cycles=int(out_cycles.max() - self.start_cycle + 1) if valid.any() else 0, protocol_errors=errors,
        )


@cocotb.test()
async def core_batch(dut):
    """Stream every job entry's batch through its core and compare with golden."""
    job = load_job()
    clk, rst = port(dut, "clk"), port(dut, "rst")
    for name in ("in_valid", "out_ready"):
        for e in job["cores"]:
            port(dut, e.get("prefix", "") + name).value = 0
    Clock(clk, 10, unit="ns").start(start_high=False)
    status = StatusBus(port(dut, "status"), job["status_bits"]) if job.get("status_bits") else None
    runs = [CoreRun(dut, e, status) for e in job["cores"]]
    loop = CycleLoop(clk, ([status] if status else []) + [p for r in runs for p in r.parts])
    await loop.reset(rst, cycles=int(job.get("reset_cycles", 2)))
    for r in runs:
        r.start_cycle = loop.cycle
        r.driver.send(r.words)
    failures: list[str] = []
    t0, c0 = time.perf_counter(), loop.cycle
    try:
        await loop.run(lambda: all(r.done() for r in runs), max(r.budget() for r in runs), what="the batch")
    except Timeout as exc:
        stalled = [f"core {r.prefix or 0} stalled at {r.position()}" for r in runs if not r.done()]
        failures.append(f"{exc}: {'; '.join(stalled)}")
    loop_seconds, loop_cycles = time.perf_counter() - t0, loop.cycle - c0
    await loop.idle(int(job.get("tail_cycles", 30)))
    for r in runs:
        if status is not None:
            r.status_unknown = [u for u in status.unknown if r.prefix and r.prefix in u]
        trace = r.trace()
        trace.save(r.entry["out"])
        summary: dict = {"prefix": r.prefix, "cycles": loop.cycle, "words": len(r.words),
                         "loop_cycles": loop_cycles, "loop_seconds": loop_seconds}
        if r.expected_readout is not None:
            cmp = compare(trace, readout=r.expected_readout, spikes=r.expected_spikes, mode=r.mode)
            summary["ok"] = cmp.ok
            summary["counts"] = cmp.counts
            summary["first"] = str(cmp.first) if cmp.first else None
            if not cmp.ok:
                failures.append(f"core {r.prefix or 0}: {cmp.message()}")
            rep = cycle_report(r.spec, trace, r.expected_spikes)
            if rep is not None:
                summary["cycle_bound"] = rep.summary()
        if r.entry.get("summary"):
            with open(r.entry["summary"], "w") as fh:
                json.dump(summary, fh, indent=1, default=str)
    assert not failures, "\n".join(failures)
