"""Host driver for a skipcore board over its UART link (framing: ``boards/PROTOCOL.md``).

``Host(port)`` accepts a serial-port name or pyserial URL (opened 8N1) or any object with
``write(bytes)`` and ``read(n) -> bytes`` (``read`` may return fewer bytes than asked when it
times out, as pyserial does). The cocotb test drives the simulated board through such an object.

    >>> host = Host("/dev/ttyUSB1")                        # doctest: +SKIP
    >>> prediction, readout = host.classify(x_int)         # x_int: (steps, channels) integers
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .protocol import (
    INFO_BYTES,
    RESPONSE_KINDS,
    CMD_INFO,
    CMD_RESET,
    RSP_ERROR,
    RSP_INFO,
    RSP_STEP,
    RSP_SYNC,
    DeviceError,
    DeviceInfo,
    Frame,
    FrameDecoder,
    LinkTimeout,
    ProtocolError,
    StepResult,
    decode_step_response,
    encode_frame,
    encode_step,
)


class SerialLike(Protocol):
    def write(self, data: bytes) -> Any: ...

    def read(self, size: int) -> bytes: ...


@dataclass
class SequenceResult:
    """What the device answered for one sequence."""

    steps: list[StepResult]

    @property
    def reported(self) -> list[StepResult]:
        return [s for s in self.steps if s.readout is not None]


class Host:
    """Talks to one board. Parameters: ``port`` (name or serial-like object), ``baud`` (only when
    opening a port by name), ``timeout`` (seconds without progress before :class:`LinkTimeout`),
    ``max_reads`` (for serial-like objects whose ``read`` returns at once when nothing is there:
    how many empty reads in a row count as a timeout; ``None`` uses the wall-clock ``timeout``).
    """

    def __init__(self, port: str | SerialLike, *, baud: int = 115200, timeout: float = 2.0,
                 max_reads: int | None = None) -> None:
        if isinstance(port, str):
            import serial  # pyserial; imported here so that simulated links do not need it

            # serial_for_url also takes URLs: "socket://host:port" (ser2net), "loop://" (tests)
            self.port: SerialLike = serial.serial_for_url(port, baudrate=baud, bytesize=8, parity="N",
                                                          stopbits=1, timeout=min(timeout, 0.1))
            self._owns_port = True
        else:
            if not (hasattr(port, "read") and hasattr(port, "write")):
                raise TypeError(f"port must be a serial-port name or have read() and write(), not {port!r}")
            self.port = port
            self._owns_port = False
        self.timeout = timeout
        self.max_reads = max_reads
        self._frames: deque[Frame] = deque()
        self._max_payload = INFO_BYTES
        self._decoder = self._new_decoder()
        self._info: DeviceInfo | None = None

    # -------------------------------------------------------------------------------------------
    # frame I/O

    def close(self) -> None:
        if self._owns_port:
            self.port.close()  # type: ignore[attr-defined]

    def __enter__(self) -> "Host":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, data: bytes) -> None:
        self.port.write(bytes(data))
        flush = getattr(self.port, "flush", None)
        if flush is not None:
            flush()

    def _read_frame(self) -> Frame:
        deadline = time.monotonic() + self.timeout
        empty = 0
        while not self._frames:
            data = self.port.read(self._decoder.needed())
            if data:
                empty = 0
                self._frames.extend(self._decoder.feed(data))
                deadline = time.monotonic() + self.timeout
                continue
            empty += 1
            if (self.max_reads is not None and empty >= self.max_reads) or (
                self.max_reads is None and time.monotonic() > deadline
            ):
                raise LinkTimeout(
                    "no answer from the device: check the port, the baud rate and that the "
                    "bitstream is loaded (`skipcore build` writes it; program it with iceprog/openFPGALoader)"
                )
        return self._frames.popleft()

    def _expect(self, kinds: tuple[int, ...]) -> Frame:
        """The next frame of one of ``kinds`` (low bits of step kinds are flags); ERROR raises."""
        while True:
            frame = self._read_frame()
            if frame.kind == RSP_ERROR:
                code, cmd = (frame.payload + b"\0\0")[:2]
                raise DeviceError(code, cmd)
            base = frame.kind & 0xFC if frame.kind & 0xF0 == RSP_STEP else frame.kind
            if base in kinds:
                return frame
            # anything else (a late answer to an abandoned request) is skipped

    def _new_decoder(self) -> FrameDecoder:
        return FrameDecoder(RSP_SYNC, kinds=RESPONSE_KINDS, max_payload=self._max_payload)

    def _learn(self, info: DeviceInfo) -> DeviceInfo:
        self._info = info
        self._max_payload = self._decoder.max_payload = max(INFO_BYTES, info.link.report_bytes)
        return info

    def drain(self) -> None:
        """Forget every frame and byte received so far."""
        self._frames.clear()
        self._decoder = self._new_decoder()

    # -------------------------------------------------------------------------------------------
    # commands

    def info(self) -> DeviceInfo:
        """Ask the device what it was built for (cached after the first call)."""
        if self._info is None:
            self._write(encode_frame(CMD_INFO))
            self._learn(DeviceInfo.from_bytes(self._expect((RSP_INFO,)).payload))
        return self._info

    def reset(self, *, attempts: int = 3) -> DeviceInfo:
        """Abandon whatever sequence the device is in; returns its INFO.

        If the device was inside a half-received frame, the RESET frame is swallowed as payload
        until the device's frame timeout answers ERROR(TIMEOUT); the RESET is then sent again.
        """
        for _ in range(attempts):
            self.drain()
            self._write(encode_frame(CMD_RESET))
            try:
                frame = self._expect((RSP_INFO,))
            except (DeviceError, LinkTimeout):
                continue
            return self._learn(DeviceInfo.from_bytes(frame.payload))
        raise LinkTimeout(f"the device did not answer RESET after {attempts} attempts")

    def run(self, x_int: np.ndarray, *, report: str = "auto") -> SequenceResult:
        """Send one sequence ``x_int`` (steps, channels) of quantised integers; collect the answers.

        ``report``: ``"all"`` asks for the readout of every step, ``"last"`` only for the last
        step, ``"auto"`` follows the device's readout mode (per_step -> all, sequence -> last).
        Flow control: the host keeps the event-queue entries of unanswered steps within the
        device's ``queue_depth`` (PROTOCOL.md §5), so the device never overflows.
        """
        info = self.info()
        link = info.link
        x = _sequence(link, x_int)
        steps = x.shape[0]
        if report == "auto":
            report = "all" if link.readout_mode == "per_step" else "last"
        if report not in ("all", "last", "none"):
            raise ProtocolError(f"report must be 'auto', 'all', 'last' or 'none', not {report!r}")

        frames = []
        for t in range(steps):
            last = t == steps - 1
            want = report == "all" or (report == "last" and last)
            frame, entries = encode_step(link, x[t], end_seq=last, report=want)
            if entries > info.queue_depth:
                raise ProtocolError(
                    f"step {t} has {entries - 1} events; the device queue holds {info.queue_depth} entries"
                )
            frames.append((frame, entries))

        results: list[StepResult] = []
        in_flight: deque[int] = deque()
        used = 0
        sent = 0
        while len(results) < steps:
            batch = bytearray()
            while sent < steps and used + frames[sent][1] <= info.queue_depth:
                batch += frames[sent][0]
                in_flight.append(frames[sent][1])
                used += frames[sent][1]
                sent += 1
            if batch:
                self._write(bytes(batch))
            result = decode_step_response(link, self._expect((RSP_STEP,)))
            expected_step = len(results) & 0xFFFF
            if result.step != expected_step:
                raise ProtocolError(
                    f"device answered step {result.step}, expected {expected_step}; call reset() and retry"
                )
            if result.end_seq != (len(results) == steps - 1):
                raise ProtocolError(f"device ended the sequence at step {result.step} of {steps}")
            results.append(result)
            used -= in_flight.popleft()
        return SequenceResult(results)

    def classify(self, x_int: np.ndarray, *, retries: int = 1) -> tuple[Any, np.ndarray]:
        """Classify one quantised sample ``x_int`` (steps, channels).

        Returns ``(prediction, readout)``: for a sequence-mode model an ``int`` and the final
        readout ``m[T-1]`` (classes,); for a per-step model (steps,) predictions and the (steps,
        classes) readout. When the device rejects a frame or stops answering, the host resets it
        and sends the sequence again, up to ``retries`` times.
        """
        link = self.info().link
        x = _sequence(link, x_int)
        for t in range(x.shape[0]):
            encode_step(link, x[t], end_seq=False, report=False)  # value errors are not retried
        for attempt in range(retries + 1):
            try:
                res = self.run(x, report="auto")
                break
            except (DeviceError, LinkTimeout):
                if attempt == retries:
                    raise
                self.reset()
        reported = res.reported
        if link.readout_mode == "per_step":
            preds = np.array([s.prediction for s in reported], dtype=np.int64)
            return preds, np.array([s.readout for s in reported], dtype=np.int64)
        last = reported[-1]
        return int(last.prediction), np.array(last.readout, dtype=np.int64)

    def check_artifact(self, path) -> None:
        """Raise ProtocolError unless the device was built from the model file ``path``."""
        from skipcore.golden.artifact import artifact_digest, load

        want = bytes.fromhex(artifact_digest(load(path)))[:8]
        have = self.info().artifact_id
        if have != want:
            raise ProtocolError(
                f"the device was built from another model (id {have.hex()}, {path} has {want.hex()}); "
                "rebuild the bitstream with `skipcore build` and program it"
            )

    def classify_float(self, x: np.ndarray, artifact) -> tuple[Any, np.ndarray]:
        """Quantise a float sample (steps, channels) with the artifact's input spec, then classify."""
        from skipcore.golden.contract import quantize_input

        return self.classify(quantize_input(artifact.input, np.asarray(x)))


def _sequence(link, x_int) -> np.ndarray:
    """``x_int`` as a (steps, channels) int64 array, or ProtocolError saying what is wrong."""
    x = np.asarray(x_int)
    if x.ndim != 2 or x.shape[1] != link.channels:
        raise ProtocolError(f"input shape {x.shape} does not match the device: expected (steps, {link.channels})")
    if x.shape[0] < 1:
        raise ProtocolError("a sequence needs at least one step")
    if not np.issubdtype(x.dtype, np.integer):
        if not np.array_equal(x, np.round(x)):
            raise ProtocolError("x_int must hold quantised integers (see golden.contract.quantize_input)")
    return x.astype(np.int64)


def golden_answer(artifact, x_int: np.ndarray) -> tuple[Any, np.ndarray]:
    """What :meth:`Host.classify` must return for ``x_int``, from the golden model."""
    from skipcore.golden.model import run

    res = run(artifact, np.asarray(x_int)[None], quantized=True)
    if artifact.readout.mode == "per_step":
        return res.predictions[0].astype(np.int64), res.readout[0]
    return int(res.predictions[0]), res.readout[0, -1]

