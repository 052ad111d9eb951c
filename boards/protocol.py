"""The UART host-link framing of the board tops (``boards/PROTOCOL.md`` is the specification).

Pure Python (no Amaranth, no serial port): the host driver, the tests and the gateware generator
all take their constants from here, so the three cannot drift apart.

Frames, both directions::

    SYNC  KIND  LEN_LO  LEN_HI  PAYLOAD[LEN]  CRC

``SYNC`` is 0xA5 from the host and 0x5A from the device; ``KIND`` is the command or response
code; ``CRC`` is CRC-8/SMBUS (polynomial 0x07, init 0, no reflection, no final XOR) over
``KIND LEN_LO LEN_HI PAYLOAD``. Multi-byte fields are little-endian.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

from skipcore.errors import SkipcoreError

PROTOCOL_VERSION = 1

CMD_SYNC = 0xA5  #: first byte of every host -> device frame
RSP_SYNC = 0x5A  #: first byte of every device -> host frame

CMD_INFO = 0x01  #: ask for the INFO frame
CMD_RESET = 0x02  #: abandon the sequence in progress, then answer INFO
CMD_STEP = 0x10  #: one input step; OR in STEP_END_SEQ / STEP_REPORT
STEP_END_SEQ = 0x01  #: flag: this step is the last of the sequence
STEP_REPORT = 0x02  #: flag: answer with prediction and readout (else only the step number)

RSP_INFO = 0x81  #: device parameters (payload: :data:`INFO_LAYOUT`)
RSP_STEP = 0x90  #: one finished step; OR'd with the STEP_* flags of the command that caused it
RSP_ERROR = 0xE0  #: a rejected frame (payload: code, offending command byte)

MAX_PAYLOAD = 0xFFFF
#: every KIND a device may send (a host decoder skips a SYNC followed by anything else)
RESPONSE_KINDS = frozenset({RSP_INFO, RSP_ERROR, *(RSP_STEP | f for f in range(4))})
#: every KIND a host may send
COMMAND_KINDS = frozenset({CMD_INFO, CMD_RESET, *(CMD_STEP | f for f in range(4))})
INFO_BYTES = 32
STEP_HEADER_BYTES = 2  #: the step number that starts every step response


class ErrorCode(enum.IntEnum):
    """Why the device rejected a frame (first payload byte of an ERROR response)."""

    CRC = 1  #: the checksum does not match
    COMMAND = 2  #: unknown command byte
    LENGTH = 3  #: LEN is not a whole number of events, or non-zero for INFO/RESET
    INDEX = 4  #: an event's channel index is >= the number of input channels
    OVERFLOW = 5  #: the event queue is full (the host sent more than its credit)
    FRAMING = 6  #: a UART stop bit was 0 inside the frame
    TIMEOUT = 7  #: the frame stopped arriving before it was complete


INPUT_KIND_CODES = {"spike": 0, "count": 1, "real": 2}
READOUT_MODE_CODES = {"sequence": 0, "per_step": 1}


class ProtocolError(SkipcoreError, ValueError):
    """A frame or a value cannot be encoded or decoded under this protocol."""


class DeviceError(SkipcoreError, RuntimeError):
    """The device rejected a frame (an ERROR response)."""

    def __init__(self, code: int, command: int) -> None:
        try:
            name = ErrorCode(code).name
        except ValueError:
            name = f"unknown({code})"
        super().__init__(f"device rejected command 0x{command:02x}: {name}")
        self.code = code
        self.command = command


class LinkTimeout(SkipcoreError, TimeoutError):
    """No (complete) answer from the device in time."""


# ------------------------------------------------------------------------------------------------
# CRC-8/SMBUS


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()


def crc8(data: Iterable[int], crc: int = 0) -> int:
    """CRC-8/SMBUS of ``data`` (check value: ``crc8(b"123456789") == 0xF4``)."""
    for byte in data:
        crc = _CRC_TABLE[crc ^ byte]
    return crc


# ------------------------------------------------------------------------------------------------
# the link format: field widths derived from the core's parameters


def _nbytes(bits: int) -> int:
    return max(1, math.ceil(bits / 8))


def _ceil_log2(n: int) -> int:
    return max(0, (n - 1).bit_length())


@dataclass(frozen=True)
class LinkFormat:
    """Byte widths of the fields of STEP frames and step responses (``boards/PROTOCOL.md`` §3)."""

    channels: int
    input_kind: str
    input_bits: int
    classes: int
    readout_bits: int
    readout_mode: str = "sequence"
    frac_bits: int = 0

    def __post_init__(self) -> None:
        if self.input_kind not in INPUT_KIND_CODES:
            raise ProtocolError(f"input kind {self.input_kind!r} is not one of {', '.join(INPUT_KIND_CODES)}")
        if self.readout_mode not in READOUT_MODE_CODES:
            raise ProtocolError(f"readout mode {self.readout_mode!r} is not one of {', '.join(READOUT_MODE_CODES)}")
        if not 1 <= self.channels <= 0xFFFF:
            raise ProtocolError(f"channels must be in 1..65535, got {self.channels}")
        if not 1 <= self.classes <= 0xFFFF:
            raise ProtocolError(f"classes must be in 1..65535, got {self.classes}")

    @classmethod
    def from_artifact(cls, art) -> "LinkFormat":
        """The format of a board top built from ``art`` (a :class:`skipcore.golden.artifact.Artifact`)."""
        return cls(
            channels=art.input.channels,
            input_kind=art.input.kind,
            input_bits=art.input.bits,
            classes=art.readout.classes,
            readout_bits=art.widths.readout_bits,
            readout_mode=art.readout.mode,
            frac_bits=art.input.frac_bits,
        )

    # widths of the core's ports (hdl/INTERFACE.md)
    @property
    def index_bits(self) -> int:
        return max(1, _ceil_log2(self.channels))

    @property
    def value_bits(self) -> int:
        return 1 if self.input_kind == "spike" else self.input_bits

    @property
    def class_bits(self) -> int:
        return max(1, _ceil_log2(self.classes))

    # byte widths on the wire
    @property
    def index_bytes(self) -> int:
        return _nbytes(self.index_bits)

    @property
    def value_bytes(self) -> int:
        """0 for spike inputs: an event of a spike input is only its index."""
        return 0 if self.input_kind == "spike" else _nbytes(self.value_bits)

    @property
    def event_bytes(self) -> int:
        return self.index_bytes + self.value_bytes

    @property
    def class_bytes(self) -> int:
        return _nbytes(self.class_bits)

    @property
    def readout_bytes(self) -> int:
        return _nbytes(self.readout_bits)

    @property
    def report_bytes(self) -> int:
        """Payload length of a step response with STEP_REPORT set."""
        return STEP_HEADER_BYTES + self.class_bytes + self.classes * self.readout_bytes

    @property
    def value_range(self) -> tuple[int, int]:
        if self.input_kind == "spike":
            return 0, 1
        if self.input_kind == "count":
            return 0, 2**self.input_bits - 1
        return -(2 ** (self.input_bits - 1)), 2 ** (self.input_bits - 1) - 1

    @property
    def max_step_payload(self) -> int:
        return self.channels * self.event_bytes


@dataclass(frozen=True)
class DeviceInfo:
    """The INFO payload: what the bitstream was built for, and its flow-control limits."""

    link: LinkFormat
    layers: int
    queue_depth: int  #: event-queue entries (every event and every end-of-step marker takes one)
    steps_in_flight: int  #: capacity of the device's per-step report queue (informational)
    clock_hz: int
    baud: int
    artifact_id: bytes  #: first 8 bytes of the artifact's SHA-256
    version: int = PROTOCOL_VERSION

    def to_bytes(self) -> bytes:
        lk = self.link
        out = bytearray(INFO_BYTES)
        out[0] = self.version
        out[1] = INPUT_KIND_CODES[lk.input_kind]
        out[2:4] = lk.channels.to_bytes(2, "little")
        out[4] = lk.input_bits
        out[5] = lk.frac_bits
        out[6:8] = lk.classes.to_bytes(2, "little")
        out[8] = lk.readout_bits
        out[9] = READOUT_MODE_CODES[lk.readout_mode]
        out[10] = min(self.layers, 255)
        out[11] = min(self.steps_in_flight, 255)
        out[12:16] = self.queue_depth.to_bytes(4, "little")
        out[16:20] = self.clock_hz.to_bytes(4, "little")
        out[20:24] = self.baud.to_bytes(4, "little")
        out[24:32] = self.artifact_id[:8].ljust(8, b"\0")
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> "DeviceInfo":
        if len(data) != INFO_BYTES:
            raise ProtocolError(f"INFO payload must be {INFO_BYTES} bytes, got {len(data)}")
        if data[0] != PROTOCOL_VERSION:
            raise ProtocolError(
                f"the device speaks protocol version {data[0]}, this host speaks {PROTOCOL_VERSION}; "
                "rebuild the bitstream with this skipcore"
            )
        kinds = {v: k for k, v in INPUT_KIND_CODES.items()}
        modes = {v: k for k, v in READOUT_MODE_CODES.items()}
        if data[1] not in kinds or data[9] not in modes:
            raise ProtocolError(f"INFO payload has an unknown input kind ({data[1]}) or readout mode ({data[9]})")
        link = LinkFormat(
            channels=int.from_bytes(data[2:4], "little"),
            input_kind=kinds[data[1]],
            input_bits=data[4],
            frac_bits=data[5],
            classes=int.from_bytes(data[6:8], "little"),
            readout_bits=data[8],
            readout_mode=modes[data[9]],
        )
        return cls(
            link=link,
            layers=data[10],
            steps_in_flight=data[11],
            queue_depth=int.from_bytes(data[12:16], "little"),
            clock_hz=int.from_bytes(data[16:20], "little"),
            baud=int.from_bytes(data[20:24], "little"),
            artifact_id=bytes(data[24:32]),
            version=data[0],
        )


# ------------------------------------------------------------------------------------------------
# frames


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its kind byte and payload."""

    kind: int
    payload: bytes


def encode_frame(kind: int, payload: bytes = b"", *, sync: int = CMD_SYNC) -> bytes:
    """``SYNC KIND LEN_LO LEN_HI PAYLOAD CRC``."""
    if not 0 <= kind <= 0xFF:
        raise ProtocolError(f"frame kind must be a byte, got {kind}")
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError(f"payload of {len(payload)} bytes exceeds the {MAX_PAYLOAD}-byte limit")
    body = bytes([kind]) + len(payload).to_bytes(2, "little") + bytes(payload)
    return bytes([sync]) + body + bytes([crc8(body)])


def encode_events(link: LinkFormat, events: Iterable[tuple[int, int]]) -> bytes:
    """Payload of a STEP frame: each event as its index then its value, little-endian."""
    lo, hi = link.value_range
    out = bytearray()
    seen: set[int] = set()
    for index, value in events:
        index, value = int(index), int(value)
        if not 0 <= index < link.channels:
            raise ProtocolError(f"event index {index} is outside the {link.channels} input channels")
        if index in seen:
            raise ProtocolError(f"channel {index} repeats within one step")
        seen.add(index)
        if not lo <= value <= hi:
            raise ProtocolError(
                f"event value {value} on channel {index} does not fit a {link.input_kind} input "
                f"of {link.input_bits} bits (allowed [{lo}, {hi}]); quantise the input first"
            )
        out += index.to_bytes(link.index_bytes, "little")
        if link.value_bytes:
            out += (value & ((1 << (8 * link.value_bytes)) - 1)).to_bytes(link.value_bytes, "little")
    return bytes(out)


def decode_events(link: LinkFormat, payload: bytes) -> list[tuple[int, int]]:
    """Inverse of :func:`encode_events` (what the device does with a STEP payload)."""
    eb = link.event_bytes
    if len(payload) % eb:
        raise ProtocolError(f"STEP payload of {len(payload)} bytes is not a whole number of {eb}-byte events")
    events = []
    for pos in range(0, len(payload), eb):
        index = int.from_bytes(payload[pos : pos + link.index_bytes], "little")
        if link.value_bytes:
            raw = payload[pos + link.index_bytes : pos + eb]
            value = int.from_bytes(raw, "little", signed=link.input_kind == "real")
        else:
            value = 1
        events.append((index, value))
    return events


def step_events(row: Sequence[int]) -> list[tuple[int, int]]:
    """The events of one dense input step: every non-zero channel, in channel order."""
    return [(i, int(v)) for i, v in enumerate(row) if int(v) != 0]


def encode_step(link: LinkFormat, row: Sequence[int], *, end_seq: bool, report: bool) -> tuple[bytes, int]:
    """One STEP frame for a dense input row; returns (frame, event-queue entries it takes)."""
    if len(row) != link.channels:
        raise ProtocolError(f"input step has {len(row)} channels, the device expects {link.channels}")
    events = step_events(row)
    kind = CMD_STEP | (STEP_END_SEQ if end_seq else 0) | (STEP_REPORT if report else 0)
    return encode_frame(kind, encode_events(link, events)), len(events) + 1


@dataclass(frozen=True)
class StepResult:
    """A decoded step response."""

    step: int  #: step number within the sequence, modulo 65536
    end_seq: bool
    prediction: int | None = None  #: only for reported steps
    readout: tuple[int, ...] | None = None  #: the readout m[t] of every class, only for reported steps


def encode_step_response(link: LinkFormat, step: int, *, end_seq: bool, prediction: int | None = None,
                         readout: Sequence[int] | None = None) -> bytes:
    """A step response frame (what the device sends; used by tests and models of the device)."""
    report = readout is not None
    payload = bytearray((step & 0xFFFF).to_bytes(2, "little"))
    if report:
        if prediction is None or len(readout) != link.classes:
            raise ProtocolError("a reported step needs a prediction and one readout value per class")
        payload += int(prediction).to_bytes(link.class_bytes, "little")
        for value in readout:
            payload += (int(value) & ((1 << (8 * link.readout_bytes)) - 1)).to_bytes(link.readout_bytes, "little")
    kind = RSP_STEP | (STEP_END_SEQ if end_seq else 0) | (STEP_REPORT if report else 0)
    return encode_frame(kind, bytes(payload), sync=RSP_SYNC)


def decode_step_response(link: LinkFormat, frame: Frame) -> StepResult:
    if frame.kind & 0xFC != RSP_STEP:
        raise ProtocolError(f"frame kind 0x{frame.kind:02x} is not a step response")
    report = bool(frame.kind & STEP_REPORT)
    expected = link.report_bytes if report else STEP_HEADER_BYTES
    if len(frame.payload) != expected:
        raise ProtocolError(
            f"step response payload is {len(frame.payload)} bytes, expected {expected} for this device"
        )
    step = int.from_bytes(frame.payload[:2], "little")
    if not report:
        return StepResult(step, bool(frame.kind & STEP_END_SEQ))
    pos = 2
    prediction = int.from_bytes(frame.payload[pos : pos + link.class_bytes], "little")
    pos += link.class_bytes
    rb = link.readout_bytes
    readout = tuple(
        int.from_bytes(frame.payload[pos + c * rb : pos + (c + 1) * rb], "little", signed=True)
        for c in range(link.classes)
    )
    return StepResult(step, bool(frame.kind & STEP_END_SEQ), prediction, readout)


class FrameDecoder:
    """Incremental decoder of a byte stream into frames with a given SYNC byte.

    Bytes before a SYNC are skipped; a candidate frame whose KIND is not in ``kinds`` (when
    given), whose LEN exceeds ``max_payload`` or whose CRC fails is dropped, and the search resumes
    at the byte after its SYNC (so a SYNC value inside a payload or in line noise cannot lock the
    decoder up). ``dropped`` counts the bytes skipped or discarded.
    """

    def __init__(self, sync: int = RSP_SYNC, *, max_payload: int = MAX_PAYLOAD,
                 kinds: frozenset[int] | None = None) -> None:
        self.sync = sync
        self.max_payload = max_payload
        self.kinds = kinds
        self._buf = bytearray()
        self.dropped = 0
        self.crc_errors = 0

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        return list(self._drain())

    def needed(self) -> int:
        """A lower bound on the bytes still missing for the next frame (at least 1)."""
        buf = self._buf
        if not buf:
            return 5
        if len(buf) < 4:
            return 4 - len(buf) + 1
        length = buf[2] | (buf[3] << 8)
        return max(1, 5 + length - len(buf))

    def _drain(self) -> Iterator[Frame]:
        buf = self._buf
        while True:
            start = buf.find(bytes([self.sync]))
            if start < 0:
                self.dropped += len(buf)
                buf.clear()
                return
            if start:
                self.dropped += start
                del buf[:start]
            if len(buf) >= 2 and self.kinds is not None and buf[1] not in self.kinds:
                self.dropped += 1
                del buf[:1]
                continue
            if len(buf) < 4:
                return
            length = buf[2] | (buf[3] << 8)
            if length > self.max_payload:
                self.dropped += 1
                del buf[:1]
                continue
            if len(buf) < 5 + length:
                return
            body = bytes(buf[1 : 4 + length])
            if crc8(body) != buf[4 + length]:
                self.crc_errors += 1
                self.dropped += 1
                del buf[:1]
                continue
            del buf[: 5 + length]
            yield Frame(body[0], body[3:])


def decode_frames(data: bytes, sync: int = RSP_SYNC) -> list[Frame]:
    """Every complete, valid frame in ``data``."""
    kinds = RESPONSE_KINDS if sync == RSP_SYNC else COMMAND_KINDS
    return FrameDecoder(sync, kinds=kinds).feed(data)
