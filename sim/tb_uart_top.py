"""cocotb testbench of the UART board top (``boards/top.py``: ``UARTBridge`` + the generated core).

The real host driver (:class:`skipcore.boards.host.Host`) runs in a cocotb *bridge* thread and
talks to the simulated design through :class:`SimSerial`, which bit-bangs the bytes the host
writes onto ``rx`` and decodes the bytes the design sends on ``tx`` (``clocks_per_bit`` clock
cycles per bit, or, with ``baud``, real bit times of ``1 / baud`` seconds, independent of the
design's clock). Every sample must come back as the golden model's prediction and readout.

Clock: ``clock_hz`` (default 100 MHz). A board build with ``--freq`` runs the core from its PLL;
the PLL primitive cannot run in simulation, so the testbench drives ``clk`` directly at the
PLL's achieved output frequency, and the design's UART divisor is the one the build computes
for that clock.

Job keys (see :mod:`skipcore.sim.job`): ``artifact`` (model.skc path), ``inputs`` (.npz with
``x``: (batch, steps, channels) quantised integers), ``clocks_per_bit``, ``timeout_bits`` (how
long a read may wait), ``clock_hz``, ``baud``, ``inject_errors`` (also send corrupted frames and check the ERROR
answers and the recovery), ``result`` (JSON path for the outcome).

:func:`run_uart_top` is the launcher used by the tests: it writes ``uart_top.v``, builds it with
Verilator through :mod:`skipcore.sim.runners` and runs this module.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.task import bridge, resume
from cocotb.triggers import ClockCycles, Event, FallingEdge, ReadOnly, Timer

from .job import load_job

TOPLEVEL = "uart_top"


class SimSerial:
    """A serial-port-like object (``write``/``read``) wired to a simulated ``rx``/``tx`` pair.

    Its methods block, so they may only be called from a :func:`cocotb.bridge` thread.
    ``read(n)`` waits until ``n`` bytes arrived or ``timeout_bits`` bit times passed without a new
    byte, and then returns what it has (possibly fewer bytes, like pyserial on a timeout).
    """

    def __init__(self, dut, clocks_per_bit: int, *, timeout_bits: int = 4000, bit_ps: int = 0) -> None:
        self.dut = dut
        self.cpb = clocks_per_bit
        self.bit_ps = bit_ps  # > 0: time bits by the wall clock of the simulation, like a real host
        self.timeout_bits = timeout_bits
        self.received = bytearray()  # from the design (tx)
        self.pending = bytearray()  # to the design (rx)
        self.sent_bytes = 0
        self.framing_errors = 0
        self._wake = Event()
        self._byte = Event()
        dut.rx.value = 1
        cocotb.start_soon(self._drive())
        cocotb.start_soon(self._monitor())

    # --- simulator side -------------------------------------------------------------------
    async def _bits(self, n: float) -> None:
        if self.bit_ps:
            await Timer(round(n * self.bit_ps), unit="ps")
        else:
            await ClockCycles(self.dut.clk, round(n * self.cpb))

    async def _drive(self) -> None:
        while True:
            while not self.pending:
                self._wake.clear()
                await self._wake.wait()
            byte = self.pending.pop(0)
            for bit in [0, *((byte >> i) & 1 for i in range(8)), 1]:
                self.dut.rx.value = bit
                await self._bits(1)
            self.sent_bytes += 1

    async def _monitor(self) -> None:
        tx = self.dut.tx
        while True:
            await FallingEdge(tx)
            await self._bits(0.5)
            await ReadOnly()
            if int(tx.value) != 0:
                continue  # a glitch
            value = 0
            for i in range(8):
                await self._bits(1)
                await ReadOnly()
                value |= int(tx.value) << i
            await self._bits(1)
            await ReadOnly()
            if int(tx.value) != 1:
                self.framing_errors += 1
            self.received.append(value)
            self._byte.set()

    async def _write(self, data: bytes) -> None:
        self.pending += data
        self._wake.set()

    async def _read(self, n: int) -> bytes:
        idle = 0
        while len(self.received) < n and idle < self.timeout_bits:
            before = len(self.received)
            await self._bits(10)
            idle = 0 if len(self.received) != before else idle + 10
        out = bytes(self.received[:n])
        del self.received[:n]
        return out

    # --- host side (bridge thread) ---------------------------------------------------------
    def write(self, data: bytes) -> int:
        resume(self._write)(bytes(data))
        return len(data)

    def read(self, n: int) -> bytes:
        return resume(self._read)(n)


def _golden(art, x: np.ndarray):
    from skipcore.golden.model import run

    res = run(art, x, quantized=True)
    return res.predictions, res.readout


@cocotb.test()
async def uart_top_matches_golden(dut):
    """Every sample, framed by the host driver and bit-banged, answers with the golden result."""
    from skipcore.boards import protocol as P
    from skipcore.boards.host import Host
    from skipcore.golden.artifact import load

    job = load_job()
    art = load(job["artifact"])
    x = np.load(job["inputs"])["x"].astype(np.int64)
    cpb = int(job["clocks_per_bit"])
    # the PLL's output clock, driven directly (the PLL primitive cannot run in simulation);
    # an even number of picoseconds so both half periods are whole
    clock_ps = 2 * round(1e12 / float(job.get("clock_hz", 100_000_000)) / 2)
    Clock(dut.clk, clock_ps, unit="ps").start(start_high=False)
    bit_ps = round(1e12 / int(job["baud"])) if job.get("baud") else 0
    dut.rst.value = 1
    dut.rx.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    link = SimSerial(dut, cpb, timeout_bits=int(job.get("timeout_bits", 4000)), bit_ps=bit_ps)
    host = Host(link, max_reads=1)
    gold_pred, gold_readout = _golden(art, x)
    per_step = art.readout.mode == "per_step"
    mismatches: list[str] = []
    events: dict[str, object] = {}
    info_clock: list[int] = []

    def session() -> dict:
        info = host.info()
        info_clock.extend([info.clock_hz, info.baud])
        out = {"info": {"queue_depth": info.queue_depth, "channels": info.link.channels,
                        "classes": info.link.classes, "readout_bits": info.link.readout_bits}}
        if job.get("inject_errors"):
            # a frame with a broken CRC must be rejected with ERROR CRC and change nothing
            bad = bytearray(P.encode_step(info.link, x[0, 0], end_seq=False, report=False)[0])
            bad[-1] ^= 0xFF
            link.write(bytes(bad))
            try:
                host._expect((P.RSP_STEP,))
                out["crc_error"] = "no error answer"
            except P.DeviceError as exc:
                out["crc_error"] = P.ErrorCode(exc.code).name
            # an index outside the channels (when the index bytes can express one)
            if info.link.channels < 1 << (8 * info.link.index_bytes):
                link.write(P.encode_frame(P.CMD_STEP, info.link.channels.to_bytes(info.link.index_bytes, "little")
                                          + b"\x00" * info.link.value_bytes))
                try:
                    host._expect((P.RSP_STEP,))
                    out["index_error"] = "no error answer"
                except P.DeviceError as exc:
                    out["index_error"] = P.ErrorCode(exc.code).name
            else:
                out["index_error"] = "INDEX"
            # an unknown command
            link.write(P.encode_frame(0x77))
            try:
                host._expect((P.RSP_STEP,))
                out["command_error"] = "no error answer"
            except P.DeviceError as exc:
                out["command_error"] = P.ErrorCode(exc.code).name
            # abandon a sequence half-way: RESET must drain it and answer INFO
            if x.shape[1] > 1:
                for t in range(max(1, x.shape[1] // 2)):
                    link.write(P.encode_step(info.link, x[0, t], end_seq=False, report=True)[0])
                host.reset()
                out["reset"] = "ok"
        results = []
        for b in range(x.shape[0]):
            pred, readout = host.classify(x[b], retries=0)
            results.append((np.asarray(pred).tolist(), np.asarray(readout).tolist()))
        out["results"] = results
        return out

    out = await bridge(session)()
    events["info_clock_hz"], events["info_baud"] = info_clock

    for b, (pred, readout) in enumerate(out["results"]):
        if per_step:
            want_pred, want_read = gold_pred[b].tolist(), gold_readout[b].tolist()
        else:
            want_pred, want_read = int(gold_pred[b]), gold_readout[b, -1].tolist()
        if pred != want_pred or readout != want_read:
            mismatches.append(f"sample {b}: board ({pred}, {readout}) != golden ({want_pred}, {want_read})")
    events.update({k: v for k, v in out.items() if k != "results"})
    events["framing_errors"] = link.framing_errors
    events["bytes_to_device"] = link.sent_bytes
    if job.get("result"):
        Path(job["result"]).write_text(json.dumps({"mismatches": mismatches, **events,
                                                   "results": out["results"]}, default=str))
    assert link.framing_errors == 0, f"{link.framing_errors} bytes from the design had a bad stop bit"
    if job.get("inject_errors"):
        assert out["crc_error"] == "CRC", out["crc_error"]
        assert out["index_error"] == "INDEX", out["index_error"]
        assert out["command_error"] == "COMMAND", out["command_error"]
    assert not mismatches, "\n".join(mismatches)


# ------------------------------------------------------------------------------------------------
# launcher (runs in the test process, not in the simulator)


def write_uart_top(art, path: str | os.PathLike, *, clocks_per_bit: int | None = None, lanes: int = 1,
                   timeout_bits: int = 200, clock_hz: int = 100_000_000, baud: int | None = None) -> Path:
    """Write the Verilog of ``UARTBridge(core)`` with top module ``uart_top``."""
    from skipcore.boards.top import uart_top_verilog

    path = Path(path)
    path.write_text(uart_top_verilog(art, clocks_per_bit=clocks_per_bit, lanes=lanes, name=TOPLEVEL,
                                     timeout_bits=timeout_bits, clock_hz=clock_hz, baud=baud))
    return path


def run_uart_top(art, x: np.ndarray, workdir: str | os.PathLike, *, clocks_per_bit: int = 4, lanes: int = 1,
                 inject_errors: bool = False, simulator: str = "verilator", clock_hz: int = 100_000_000,
                 baud: int | None = None) -> dict:
    """Simulate the UART top on ``x`` (batch, steps, channels) quantised ints; returns the result JSON.

    With ``baud``, the design is built for ``clock_hz`` (e.g. a PLL's achieved clock) with the
    divisor ``uart_divisor(clock_hz, baud)``, ``clk`` runs at ``clock_hz`` and the host side
    times its bits at ``baud`` in simulated time (``clocks_per_bit`` is then ignored).

    Raises AssertionError (with the cocotb failure messages) when a sample differs from the golden
    model or an injected error is not answered as specified.
    """
    from skipcore.golden.artifact import save
    from skipcore.sim.job import write_job
    from skipcore.sim.runners import build_sim, run_cocotb

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    art_path = save(art, workdir / "model.skc", overwrite=True)
    np.savez(workdir / "inputs.npz", x=np.asarray(x, dtype=np.int64))
    if baud is not None:
        from skipcore.boards.uart import uart_divisor

        clocks_per_bit = uart_divisor(clock_hz, baud)
    verilog_path = write_uart_top(art, workdir / f"{TOPLEVEL}.v", clocks_per_bit=None if baud else clocks_per_bit,
                                  lanes=lanes, clock_hz=clock_hz, baud=baud)
    build = build_sim([verilog_path], TOPLEVEL, simulator=simulator)
    result_path = workdir / "result.json"
    env = write_job(workdir / "job.json", {
        "artifact": str(art_path), "inputs": str(workdir / "inputs.npz"), "clocks_per_bit": clocks_per_bit,
        "inject_errors": inject_errors, "result": str(result_path), "timeout_bits": 4000,
        "clock_hz": clock_hz, "baud": baud,
    })
    res = run_cocotb(build, "skipcore.sim.tb_uart_top", test_dir=workdir / "run", env=env)
    res.raise_on_failure()
    return json.loads(result_path.read_text())
