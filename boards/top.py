"""The UART board top: host frames in, the core's stream ports in the middle, answers out.

:class:`UARTBridge` is everything between the ``rx``/``tx`` pins and the core (``boards/PROTOCOL.md``
is the framing it implements); it holds the core as a submodule. :class:`BoardTop` puts a bridge
on a board's UART and LEDs (amaranth-boards resources). The blocks, in data order::

    rx -> UARTRx -> frame parser -> EventQueue (commit/discard) -> core.in_*
    core.out_* -> responder -> UARTTx -> tx          (control answers: INFO, ERROR)

A STEP frame's events wait in the :class:`EventQueue` until the frame's CRC has been checked;
a bad frame is rolled back, so the core only ever sees whole, checked steps.
"""
from __future__ import annotations

from dataclasses import dataclass

from amaranth import Array, Cat, Const, Module, Mux, Signal, Value
from amaranth.hdl import Elaboratable, ResetInserter, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from skipcore.hdl.registered_ram import RegisteredRAM
from skipcore.hdl.skid_buffer import SkidBuffer

from . import protocol as P
from .uart import UARTRx, UARTTx

__all__ = ["BridgeParams", "BoardTop", "EventQueue", "FlagQueue", "UARTBridge", "crc8_update", "uart_top_verilog"]


def _crc8_matrix() -> list[list[int]]:
    """For each output bit i, the bits j of ``crc ^ data`` whose XOR gives it (CRC-8 is linear)."""
    rows: list[list[int]] = [[] for _ in range(8)]
    for j in range(8):
        out = P.crc8([1 << j])  # crc8 of one byte from crc 0 == the CRC step applied to 1 << j
        for i in range(8):
            if out >> i & 1:
                rows[i].append(j)
    return rows


_CRC8_MATRIX = _crc8_matrix()


def crc8_update(crc: Value, data: Value) -> Value:
    """CRC-8/SMBUS (poly 0x07) of one more byte as an XOR network (matches ``protocol.crc8``)."""
    d = (crc ^ data)[:8]
    bits = []
    for row in _CRC8_MATRIX:
        acc = Const(0, 1)
        for j in row:
            acc = acc ^ d[j]
        bits.append(acc)
    return Cat(*bits)


def _pipelined_mux(m: Module, items: list[Value], sel: Value, name: str) -> tuple[Value, int]:
    """``items[sel]`` through a tree of 4:1 multiplexers with a register after each level.

    Returns the output and its latency in cycles (the number of levels): the output is
    ``items[sel]`` when ``sel`` and the items have held still that long."""
    level, bit, latency = list(items), 0, 0
    while len(level) > 1:
        nxt = []
        for group in range(0, len(level), 4):
            choices = level[group: group + 4]
            reg = Signal(len(choices[0]), name=f"{name}_l{latency}_{group // 4}")
            if len(choices) == 1:
                m.d.sync += reg.eq(choices[0])
            else:
                m.d.sync += reg.eq(Array(choices)[sel[bit: bit + 2]])
            nxt.append(reg)
        level, bit, latency = nxt, bit + 2, latency + 1
    return level[0], latency


class FlagQueue(wiring.Component):
    """A FIFO of one-bit entries kept in a shift register, its fill level one-hot.

    Every output is a register or one LUT behind registers, and each storage bit's next value
    is a few inputs wide (timing closure, issue 12). Latency: an entry written in cycle t is on
    ``r_data`` from t + 1 (when it is the oldest); a read and a write may share a cycle.

    Members
    -------
    w_en : In(1);  w_data : In(1);  w_rdy : Out(1)
        Write side; a write with ``w_rdy`` low is ignored (full).
    r_en : In(1);  r_data : Out(1);  r_rdy : Out(1)
        The oldest entry; ``r_en`` consumes it (ignored when empty).
    fill : Out(depth + 1)
        The fill level, one-hot: ``fill[k]`` is high when k entries are held.
    """

    def __init__(self, depth: int) -> None:
        if not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be a positive integer, not {depth!r}")
        self._depth = depth
        super().__init__({"w_en": In(1), "w_data": In(1), "w_rdy": Out(1), "r_en": In(1), "r_data": Out(1),
                          "r_rdy": Out(1), "fill": Out(depth + 1, init=1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        depth = self._depth
        bits = Signal(depth)
        fill = self.fill
        read, write = Signal(), Signal()
        m.d.comb += [
            read.eq(self.r_en & ~fill[0]), write.eq(self.w_en & ~fill[depth]),
            self.r_data.eq(bits[0]), self.r_rdy.eq(~fill[0]), self.w_rdy.eq(~fill[depth]),
        ]
        for i in range(depth):
            above = bits[i + 1] if i + 1 < depth else Const(0, 1)
            with m.If(read):  # everything moves down one place; a new entry lands under the old top
                m.d.sync += bits[i].eq(Mux(write & fill[i + 1], self.w_data, above))
            with m.Elif(write & fill[i]):
                m.d.sync += bits[i].eq(self.w_data)
        with m.If(write & ~read):
            m.d.sync += fill.eq(fill << 1)
        with m.Elif(read & ~write):
            m.d.sync += fill.eq(fill >> 1)
        return m


class EventQueue(wiring.Component):
    """A FIFO whose writes become visible to the reader only when committed.

    ``commit`` publishes everything written so far (including a write in the same cycle);
    ``discard`` drops everything written since the last commit; ``clear`` empties the queue.
    The storage is a :class:`~skipcore.hdl.registered_ram.RegisteredRAM` (block RAM when it is
    large enough, read through its output register on ECP5): its read latch reads the oldest
    entry in every cycle, and the output register, ``r.payload``, takes it on a load. A load
    never follows a load or a clear, so the latch then holds the entry at the read pointer, which
    was committed, hence written, two cycles before at the latest (no colliding read).
    Latency: an entry committed in cycle t is on ``r`` from cycle t + 3; throughput: one entry
    per two cycles on ``r`` (the read side's decisions start at registers).

    Members
    -------
    w_data : In(width);  w_en : In(1);  w_rdy : Out(1)
        Write side; a write with ``w_rdy`` low is ignored (the queue is full).
    commit, discard, clear : In(1)
    r : Out(stream.Signature(width))
        The committed entries, in order.
    """

    def __init__(self, width: int, depth: int) -> None:
        if depth < 2 or depth & (depth - 1):
            raise ValueError(f"depth must be a power of two >= 2, not {depth!r}")
        self._width, self._depth = width, depth
        super().__init__({
            "w_data": In(width), "w_en": In(1), "w_rdy": Out(1),
            "commit": In(1), "discard": In(1), "clear": In(1),
            "r": Out(stream.Signature(width)),
        })

    @property
    def depth(self) -> int:
        return self._depth

    def elaborate(self, platform) -> Module:
        m = Module()
        aw = ceil_log2(self._depth)
        m.submodules.storage = storage = RegisteredRAM(width=self._width, depth=self._depth)

        w_ptr, c_ptr, r_ptr = Signal(aw + 1), Signal(aw + 1), Signal(aw + 1)
        # used = w_ptr - r_ptr, kept in a register of its own so that w_rdy (which the frame
        # parser's decisions depend on) comes without a subtractor (timing closure, issue 12)
        used = Signal(aw + 1)
        m.d.comb += self.w_rdy.eq(~used[aw])  # used <= depth = 2**aw: full exactly when its top bit is set
        write = Signal()
        m.d.comb += [
            write.eq(self.w_en & self.w_rdy),
            storage.w_addr.eq(w_ptr[:aw]), storage.w_data.eq(self.w_data), storage.w_en.eq(write),
        ]
        # the writer's decisions (write, discard: the frame parser's) only select among values
        # computed from registers, behind no adder (timing closure, issue 12)
        w_next = Signal(aw + 1)
        w_inc = Signal(aw + 1)
        m.d.comb += [w_inc.eq(w_ptr + 1), w_next.eq(Mux(write, w_inc, w_ptr))]

        # whether committed entries wait, as a register: the pointer comparison does not sit in
        # front of the read enable (timing closure, issue 12). It is exact in the cycle after one
        # without a load or a clear (a commit in between only makes it late by a cycle), so the
        # read side takes at most one entry per two cycles.
        load = Signal()
        waiting = Signal()
        m.d.sync += waiting.eq((r_ptr != c_ptr) & ~load & ~self.clear)
        m.d.comb += [
            load.eq(waiting & (~self.r.valid | self.r.ready)),
            storage.r_addr.eq(r_ptr[:aw]), storage.r_en.eq(load),
            self.r.payload.eq(storage.r_data),
        ]
        with m.If(self.clear):
            m.d.sync += [w_ptr.eq(0), c_ptr.eq(0), r_ptr.eq(0), self.r.valid.eq(0), used.eq(0)]
        with m.Else():
            m.d.sync += w_ptr.eq(Mux(self.discard, c_ptr, w_next))
            committed, committed_less, used_up, used_down = (Signal(aw + 1) for _ in range(4))
            m.d.comb += [committed.eq(c_ptr - r_ptr), committed_less.eq(c_ptr + ~r_ptr),  # c - r - 1: one adder
                         used_up.eq(used + 1), used_down.eq(used - 1)]
            m.d.sync += used.eq(Mux(self.discard, Mux(load, committed_less, committed),
                                    Mux(write & ~load, used_up, Mux(load & ~write, used_down, used))))
            with m.If(self.commit):
                m.d.sync += c_ptr.eq(w_next)
            with m.If(load):
                m.d.sync += [r_ptr.eq(r_ptr + 1), self.r.valid.eq(1)]
            with m.Elif(self.r.ready):
                m.d.sync += self.r.valid.eq(0)
        return m


@dataclass(frozen=True)
class BridgeParams:
    """Elaboration parameters of a :class:`UARTBridge` (everything the INFO frame reports)."""

    link: P.LinkFormat
    divisor: int  #: clock cycles per UART bit
    clock_hz: int = 12_000_000
    baud: int = 115_200
    layers: int = 1
    artifact_id: bytes = b""
    queue_depth: int = 0  #: event-queue entries; 0 picks the smallest power of two >= max(32, 2 * (C + 1))
    steps_in_flight: int = 16  #: depth of the per-step report-flag FIFO
    timeout_cycles: int = 0  #: frame timeout; 0 picks 50 ms at clock_hz (at least 40 bit times)

    @property
    def resolved_queue_depth(self) -> int:
        if self.queue_depth:
            return self.queue_depth
        return 1 << ceil_log2(max(32, 2 * (self.link.channels + 1)))

    @property
    def resolved_timeout(self) -> int:
        if self.timeout_cycles:
            return self.timeout_cycles
        return max(self.clock_hz // 20, 40 * self.divisor)

    def info(self) -> P.DeviceInfo:
        return P.DeviceInfo(
            link=self.link, layers=self.layers, queue_depth=self.resolved_queue_depth,
            steps_in_flight=self.steps_in_flight, clock_hz=self.clock_hz, baud=self.baud,
            artifact_id=self.artifact_id,
        )


# error codes of the ERROR answer
_E = P.ErrorCode


class UARTBridge(wiring.Component):
    """Host frames on ``rx``/``tx`` <-> the core's stream ports (``boards/PROTOCOL.md``).

    Parameters
    ----------
    core : Elaboratable
        The ``skipcore_core`` component (``hdl/INTERFACE.md`` ports as attributes: ``in_valid``,
        ``in_ready``, ``in_index``, ``in_value``, ``in_end_step``, ``in_end_seq``, ``out_valid``,
        ``out_ready``, ``out_readout``, ``out_prediction``, ``out_end_seq``). Added as a submodule.
    params : BridgeParams

    Members
    -------
    rx : In(1), tx : Out(1)
        The serial lines (8N1, ``params.divisor`` cycles per bit).
    error : Out(1)
        One-cycle pulse whenever an ERROR answer is posted (for an LED).
    active : Out(1)
        High while a frame is being received or sent.
    """

    def __init__(self, core: Elaboratable, params: BridgeParams) -> None:
        self._core = core
        self._params = params
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "error": Out(1), "active": Out(1)})

    @property
    def params(self) -> BridgeParams:
        return self._params

    def elaborate(self, platform) -> Module:  # noqa: C901  (one FSM per block, kept together)
        m = Module()
        prm = self._params
        link = prm.link
        core = self._core
        m.submodules.core = core
        m.submodules.uart_rx = rx = UARTRx(prm.divisor)
        m.submodules.uart_tx = tx = UARTTx(prm.divisor)
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx)]

        ib, vb = link.index_bits, link.value_bits
        entry_width = ib + vb + 3
        depth = prm.resolved_queue_depth
        m.submodules.queue = queue = EventQueue(entry_width, depth)
        # the per-step report flags; written one cycle after the step's marker went to the core
        # (flag_q), with room for that entry and a room test that is a register (flags_ok, one
        # cycle late: two more entries than steps_in_flight), so that the core's input handshake
        # does not reach the FIFO's storage; the read side is a register too (FlagQueue), so
        # that the responder's decisions start at registers (timing closure, issue 12)
        m.submodules.flags = flags = FlagQueue(prm.steps_in_flight + 2)
        flag_in, flag_data = Signal(), Signal()
        flag_q, flag_q_data = Signal(), Signal()
        flags_ok = Signal(init=1)
        m.d.sync += [flag_q.eq(flag_in), flag_q_data.eq(flag_data),
                     flags_ok.eq(flags.fill[: prm.steps_in_flight].any())]  # level <= steps_in_flight - 1
        m.d.comb += [flags.w_en.eq(flag_q), flags.w_data.eq(flag_q_data)]

        # ---------------------------------------------------------------------------------------
        # control answers posted by the parser and the flush logic (at most one pending)
        ctl_post = Signal()
        parser_post = Signal()  # the parser posts this cycle (wins over the flush logic)
        flush_post = Signal()
        ctl_is_info = Signal()  # else ERROR
        ctl_code = Signal(8)
        ctl_cmd = Signal(8)
        ctl_pending = Signal()
        ctl_pending_info = Signal()
        err_code = Signal(8)
        err_cmd = Signal(8)
        ctl_take = Signal()  # the responder starts the pending answer
        # a post is registered (post_q) before it becomes the pending answer, so that the
        # responder's decisions do not depend on the parser's (timing closure, issue 12)
        post_q, post_info_q = Signal(), Signal()
        post_code_q, post_cmd_q = Signal(8), Signal(8)
        # (the answer's fields are registered in every cycle, without an enable: they matter only
        # with post_q)
        m.d.sync += [post_q.eq(ctl_post), post_info_q.eq(ctl_is_info), post_code_q.eq(ctl_code),
                     post_cmd_q.eq(ctl_cmd)]
        with m.If(post_q):
            m.d.sync += [ctl_pending.eq(1), ctl_pending_info.eq(post_info_q)]
            with m.If(~post_info_q):
                m.d.sync += [err_code.eq(post_code_q), err_cmd.eq(post_cmd_q)]
        with m.Elif(ctl_take):
            m.d.sync += ctl_pending.eq(0)
        m.d.comb += [ctl_post.eq(parser_post | flush_post), self.error.eq(post_q & ~post_info_q)]

        # ---------------------------------------------------------------------------------------
        # frame parser
        eb = link.event_bytes
        byte = rx.data
        cmd = Signal(8)
        len_lo = Signal(8)
        remaining = Signal(16)
        crc = Signal(8)
        err = Signal(3)
        ebc = Signal(range(max(eb, 2)))
        ev = Signal(8 * eb)
        reset_req = Signal()
        reset_req_q = Signal()  # registered: the parser's decision does not reach the flush logic
        m.d.sync += reset_req_q.eq(reset_req)
        timer = Signal(range(prm.resolved_timeout + 1))
        # timer == timeout, kept in a register (set with every timer update): the wide comparison
        # does not sit in front of the parser's decisions (timing closure, issue 12)
        expired = Signal(init=int(prm.resolved_timeout == 0))

        # decoded with cmd
        cmd_step, cmd_info, cmd_reset = (Signal(name=n) for n in ("cmd_step", "cmd_info", "cmd_reset"))
        ev_now = Cat(ev[8:], byte) if eb > 1 else byte
        idx_full = ev_now[: 8 * link.index_bytes]
        ev_index = idx_full[:ib]
        ev_value = Const(1, 1) if link.value_bytes == 0 else ev_now[8 * link.index_bytes : 8 * link.index_bytes + vb]
        # The parser's tests of the received byte are registers: rx.data and the registers they
        # compare it with change only in a cycle with rx.valid, and rx.valid never comes in two
        # cycles in a row (a byte lasts 10 bit times), so each test, registered in every cycle,
        # is exact when the next rx.valid comes (timing closure, issue 12)
        byte_is_sync, byte_is_crc, len_zero, rem_one, idx_bad = (Signal(name=n) for n in (
            "byte_is_sync", "byte_is_crc", "len_zero", "rem_one", "idx_bad"))
        m.d.sync += [
            byte_is_sync.eq(byte == P.CMD_SYNC), byte_is_crc.eq(byte == crc),
            len_zero.eq(Cat(len_lo, byte) == 0), rem_one.eq(remaining == 1),
            idx_bad.eq(idx_full >= link.channels),
        ]
        # The parser's decisions on a payload or CRC byte, planned in every cycle from registers
        # and kept in registers (plan_*): at rx.valid they are only applied (timing closure, issue
        # 12). A plan is exact when the byte arrives: its inputs hold still for the cycles before
        # (rx.data through the stop bit, the parser's registers between bytes); the queue's room
        # can only grow in the meantime, and a host that keeps to its credit never finds it full.
        ev_last = Signal()  # the byte ends an event
        m.d.comb += ev_last.eq(ebc == eb - 1)
        plan_ev_write, plan_room = Signal(), Signal()
        plan_ev_err, plan_final = Signal(3), Signal(3)
        m.d.sync += [
            plan_room.eq(queue.w_rdy),
            plan_ev_write.eq(cmd_step & ev_last & ~idx_bad & (err == 0) & queue.w_rdy),
            plan_ev_err.eq(Mux(cmd_step & ev_last & idx_bad, _E.INDEX,
                           Mux(cmd_step & ev_last & (err == 0) & ~queue.w_rdy, _E.OVERFLOW,
                           Mux(cmd_step & ~ev_last & rem_one, _E.LENGTH, 0)))),  # LENGTH: the frame ends inside an event
            plan_final.eq(Mux(~byte_is_crc & (err != _E.FRAMING), _E.CRC, err)),
        ]
        set_err = Signal(3)  # an error detected this cycle (first error of a frame wins)
        # registered before it is kept (err is next needed with the next byte, ten bit times
        # later): the parser's decisions end at a register (timing closure, issue 12)
        set_err_q = Signal(3)
        m.d.sync += set_err_q.eq(set_err)
        with m.If((set_err_q != 0) & (err == 0)):
            m.d.sync += err.eq(set_err_q)

        # The parser's queue actions are registered before the queue acts on them: the decisions
        # end at these registers and the queue's pointer logic starts at them (timing closure,
        # issue 12). The queue's w_rdy is still exact at the next decision: bytes come at least
        # ten bit times apart.
        q_w_en, q_commit, q_discard = (Signal(name=n) for n in ("q_w_en", "q_commit", "q_discard"))
        q_w_data = Signal(entry_width)
        m.d.sync += [queue.w_en.eq(q_w_en), queue.commit.eq(q_commit), queue.discard.eq(q_discard),
                     queue.w_data.eq(q_w_data)]
        m.d.comb += [q_w_data.eq(Cat(ev_index, ev_value, Const(0, 3)))]

        def watch():
            """Framing errors and the frame timeout (called in every parser state but SYNC)."""
            with m.If(rx.error):
                m.d.comb += set_err.eq(_E.FRAMING)
            with m.If(rx.valid | rx.error):
                m.d.sync += [timer.eq(0), expired.eq(prm.resolved_timeout == 0)]
            with m.Elif(expired):
                # a framing error found earlier is the likelier cause of the stall: report it
                m.d.comb += [q_discard.eq(1), parser_post.eq(1), ctl_is_info.eq(0),
                             ctl_code.eq(Mux(err == _E.FRAMING, _E.FRAMING, _E.TIMEOUT)), ctl_cmd.eq(cmd)]
                m.next = "SYNC"
            with m.Else():
                m.d.sync += [timer.eq(timer + 1), expired.eq(timer == prm.resolved_timeout - 1)]

        with m.FSM(name="parser") as parser_fsm:
            with m.State("SYNC"):
                m.d.sync += [crc.eq(0), err.eq(0), ebc.eq(0), timer.eq(0), expired.eq(prm.resolved_timeout == 0)]
                with m.If(rx.valid & byte_is_sync):
                    m.next = "CMD"
            with m.State("CMD"):
                with m.If(rx.valid):
                    m.d.sync += [cmd.eq(byte), crc.eq(crc8_update(crc, byte)),
                                 cmd_step.eq((byte & 0xFC) == P.CMD_STEP),
                                 cmd_info.eq(byte == P.CMD_INFO), cmd_reset.eq(byte == P.CMD_RESET)]
                    m.next = "LEN0"
                watch()
            with m.State("LEN0"):
                with m.If(rx.valid):
                    m.d.sync += [len_lo.eq(byte), crc.eq(crc8_update(crc, byte))]
                    m.next = "LEN1"
                watch()
            with m.State("LEN1"):
                with m.If(rx.valid):
                    full_len = Cat(len_lo, byte)
                    m.d.sync += [remaining.eq(full_len), crc.eq(crc8_update(crc, byte))]
                    with m.If(cmd_info | cmd_reset):
                        with m.If(~len_zero):
                            m.d.comb += set_err.eq(_E.LENGTH)
                    with m.Elif(~cmd_step):
                        m.d.comb += set_err.eq(_E.COMMAND)
                    m.next = "PAYLOAD"
                    with m.If(len_zero):
                        m.next = "CHECK"
                watch()
            with m.State("PAYLOAD"):
                with m.If(rx.valid):
                    m.d.sync += [crc.eq(crc8_update(crc, byte)), remaining.eq(remaining - 1)]
                    with m.If(cmd_step):
                        m.d.sync += [ev.eq(ev_now), ebc.eq(Mux(ev_last, 0, ebc + 1))]
                    m.d.comb += [q_w_en.eq(plan_ev_write), set_err.eq(plan_ev_err)]
                    with m.If(rem_one):
                        m.next = "CHECK"
                watch()
            with m.State("CHECK"):
                # the end-of-step marker's entry, whether it is written or not: the data do not
                # wait for the decision (timing closure, issue 12)
                m.d.comb += q_w_data.eq(Cat(Const(0, ib + vb), 1, cmd[0], cmd[1]))
                with m.If(rx.valid):
                    with m.If(plan_final != 0):
                        m.d.comb += [q_discard.eq(1), parser_post.eq(1), ctl_is_info.eq(0),
                                     ctl_code.eq(plan_final), ctl_cmd.eq(cmd)]
                    with m.Elif(cmd_step):
                        # the end-of-step marker closes the step; it needs a queue entry too
                        with m.If(plan_room):
                            m.d.comb += [q_w_en.eq(1), q_commit.eq(1)]
                        with m.Else():
                            m.d.comb += [q_discard.eq(1), parser_post.eq(1), ctl_is_info.eq(0),
                                         ctl_code.eq(_E.OVERFLOW), ctl_cmd.eq(cmd)]
                    with m.Elif(cmd_info):
                        m.d.comb += [parser_post.eq(1), ctl_is_info.eq(1)]
                    with m.Elif(cmd_reset):
                        m.d.comb += reset_req.eq(1)
                    m.next = "SYNC"
                watch()

        # ---------------------------------------------------------------------------------------
        # queue -> core, with the RESET flush. The queue's read data (block RAM when it is large)
        # pass a register stage first (SkidBuffer), so that no path runs from the block RAM
        # through the flow control below into its own read enable (timing closure, issue 12); the
        # stage belongs to the queue: clear empties both.
        staged = SkidBuffer(layout=data.StructLayout({"entry": unsigned(entry_width)}))
        m.submodules.queue_stage = ResetInserter(queue.clear)(staged)
        m.d.comb += [staged.i.valid.eq(queue.r.valid), staged.i.payload.entry.eq(queue.r.payload),
                     queue.r.ready.eq(staged.i.ready)]
        queue_out = staged.o
        entry = queue_out.payload.entry
        e_index, e_value = entry[:ib], entry[ib : ib + vb]
        e_end_step, e_end_seq, e_report = entry[ib + vb], entry[ib + vb + 1], entry[ib + vb + 2]
        in_seq = Signal()  # the core is inside a sequence (some word of it was sent, not its last marker)
        reset_pending = Signal()
        flushing = Signal()
        flush_marker = Signal()
        responder_idle = Signal()
        flush_done = Signal()
        step_no = Signal(16)  # step number of the next core output within its sequence

        # The words for the core go through a one-word register (send), taken when it is empty,
        # so that the flow control here reaches neither the core's input queue nor a register
        # enable behind it (timing closure, issue 12); a word counts as sent to the core when it
        # enters the register, which holds it until the core takes it. The queue's words are
        # taken only after a cycle in which the register was empty and nothing happened that
        # stops them (go, a register), so that this decision is one LUT wide: one word per
        # three cycles at most, far more than the UART brings.
        word = Signal(data.StructLayout({
            "index": unsigned(ib), "value": unsigned(vb), "end_step": unsigned(1), "end_seq": unsigned(1)}))
        send_valid = Signal()
        send = Signal.like(word)
        m.d.comb += [
            core.in_valid.eq(send_valid),
            core.in_index.eq(send.index), core.in_value.eq(send.value),
            core.in_end_step.eq(send.end_step), core.in_end_seq.eq(send.end_seq),
        ]
        # the two offers (the flush's end-of-sequence marker, the queue's next word) and their
        # transfers, spelled out so that each decision is a few inputs wide
        transfer_flush, transfer_queue = Signal(), Signal()
        go = Signal()
        m.d.sync += go.eq(~flushing & ~reset_pending & ~reset_req_q & ~send_valid & ~transfer_queue & ~transfer_flush)
        m.d.comb += [transfer_flush.eq(flushing & flush_marker & flags_ok & ~send_valid),
                     transfer_queue.eq(go & queue_out.valid & (~e_end_step | flags_ok)),
                     queue_out.ready.eq(transfer_queue)]
        with m.If(flushing):
            m.d.comb += [word.index.eq(0), word.value.eq(0), word.end_step.eq(1), word.end_seq.eq(1)]
        with m.Else():
            m.d.comb += [word.index.eq(e_index), word.value.eq(e_value),
                         word.end_step.eq(e_end_step), word.end_seq.eq(e_end_seq & e_end_step)]
        with m.If(transfer_flush | transfer_queue):
            m.d.sync += [send_valid.eq(1), send.eq(word)]
        with m.Elif(core.in_ready):
            m.d.sync += send_valid.eq(0)
        m.d.comb += [flag_in.eq(transfer_flush | (transfer_queue & e_end_step)),
                     flag_data.eq(~flushing & e_report)]
        with m.If(transfer_flush):
            m.d.sync += [in_seq.eq(0), flush_marker.eq(0)]
        with m.Elif(transfer_queue):
            m.d.sync += in_seq.eq(~(e_end_step & e_end_seq))

        with m.If(reset_req_q):
            m.d.sync += reset_pending.eq(1)
        with m.If(reset_pending & ~flushing):
            m.d.sync += [reset_pending.eq(0), flushing.eq(1), flush_marker.eq(in_seq)]
            m.d.comb += queue.clear.eq(1)
        # The flush ends (its INFO is posted) when nothing of the old sequences is left, decided a
        # cycle ahead (flush_go, a register: none of its conditions can change in one cycle while
        # they hold and nothing is posted), and only when the parser cannot post in that cycle:
        # it stays in SYNC (it is there and no byte arrives) and no byte can end (the receiver is
        # not in a stop bit). So flush_done is a register and the parser's decisions do not reach
        # it (timing closure, issue 12). The host sends nothing before this INFO (PROTOCOL.md §6),
        # so waiting for the parser to be between frames delays nothing.
        flush_go = Signal()
        m.d.sync += flush_go.eq(flushing & ~flush_marker & ~flag_q & flags.fill[0] & responder_idle
                                & ~ctl_pending & ~post_q & ~flush_go
                                & parser_fsm.ongoing("SYNC") & ~rx.valid & ~rx.stopping)
        m.d.comb += flush_done.eq(flush_go)
        with m.If(flush_done):
            m.d.sync += [flushing.eq(0), step_no.eq(0)]
            m.d.comb += [flush_post.eq(1), ctl_is_info.eq(1)]

        # ---------------------------------------------------------------------------------------
        # responder: INFO / ERROR / step frames onto the transmitter
        rsp_kind = Signal(2)  # 0 step, 1 info, 2 error
        rsp_report = Signal()
        rsp_end_seq = Signal()
        max_len = max(link.report_bytes, P.INFO_BYTES)
        rsp_len = Signal(range(max_len + 1))
        rsp_crc = Signal(8)
        idx = Signal(range(max_len + 6))  # byte of the frame being sent

        cb, rb = link.class_bytes, link.readout_bytes
        classes, rbits = link.classes, link.readout_bits
        pred_ext = Signal(8 * cb)
        m.d.comb += pred_ext.eq(core.out_prediction)
        readout_ext = []
        for c in range(classes):
            val = Signal(8 * rb, name=f"readout_ext{c}")
            m.d.comb += val.eq(core.out_readout[c * rbits : (c + 1) * rbits].as_signed())
            readout_ext.append(val)
        step_payload = Cat(step_no, pred_ext, *readout_ext)
        step_bytes = [step_payload[8 * i : 8 * i + 8] for i in range(len(step_payload) // 8)]
        info_bytes = [Const(b, 8) for b in prm.info().to_bytes()]
        rsp_code, rsp_cmd = Signal(8), Signal(8)  # latched when an ERROR answer starts
        err_bytes = [rsp_code, rsp_cmd]

        # the payload index (idx - 4) is a register of its own, and each payload byte is chosen
        # through a tree of registered 4:1 multiplexers (one per kind of answer, then the kind) in
        # the cycles between two bytes (PICK waits for it, then LOAD, then SEND): no path from
        # idx through a wide byte multiplexer into the CRC (timing closure, issue 12; a UART
        # byte lasts thousands of cycles)
        pidx = Signal(range(max(len(step_bytes), len(info_bytes), len(err_bytes))))
        step_pick, step_levels = _pipelined_mux(m, step_bytes, pidx, "step_byte")
        info_pick, info_levels = _pipelined_mux(m, info_bytes, pidx, "info_byte")
        err_pick, err_levels = _pipelined_mux(m, err_bytes, pidx, "err_byte")
        payload_q = Signal(8)  # the byte of the answer being sent, pick_cycles after pidx changed
        pick_cycles = max(step_levels, info_levels, err_levels) + 1
        with m.Switch(rsp_kind):
            with m.Case(0):
                m.d.sync += payload_q.eq(step_pick)
            with m.Case(1):
                m.d.sync += payload_q.eq(info_pick)
            with m.Default():
                m.d.sync += payload_q.eq(err_pick)
        settle = Signal(range(pick_cycles + 1))
        kind_byte = Signal(8)
        with m.Switch(rsp_kind):
            with m.Case(0):
                m.d.comb += kind_byte.eq(Cat(rsp_end_seq, rsp_report, Const(0, 2), Const(P.RSP_STEP >> 4, 4)))
            with m.Case(1):
                m.d.comb += kind_byte.eq(P.RSP_INFO)
            with m.Default():
                m.d.comb += kind_byte.eq(P.RSP_ERROR)
        cur = Signal(8)
        is_crc = Signal()
        cur_q, is_crc_q, crc_byte_q = Signal(8), Signal(), Signal()
        m.d.comb += is_crc.eq(idx == rsp_len + 4)
        with m.Switch(idx):
            with m.Case(0):
                m.d.comb += cur.eq(P.RSP_SYNC)
            with m.Case(1):
                m.d.comb += cur.eq(kind_byte)
            with m.Case(2):
                m.d.comb += cur.eq(Cat(rsp_len, Const(0, 16))[:8])
            with m.Case(3):
                m.d.comb += cur.eq(Cat(rsp_len, Const(0, 16))[8:16])
            with m.Default():
                m.d.comb += cur.eq(Mux(is_crc, rsp_crc, payload_q))

        pop_output = Signal()  # consume one core output word and its report flag
        # a core output word and its report flag wait, as a register (low in the cycle after a
        # pop, when it would still show the word just consumed): the responder's decisions start
        # at registers, not at the core's output logic (timing closure, issue 12)
        out_avail = Signal()
        m.d.sync += out_avail.eq(core.out_valid & flags.r_rdy & ~pop_output)
        with m.If(pop_output):
            m.d.comb += [core.out_ready.eq(1), flags.r_en.eq(1)]
            m.d.sync += step_no.eq(Mux(core.out_end_seq, 0, step_no + 1))

        with m.FSM(name="responder"):
            with m.State("IDLE"):
                m.d.comb += responder_idle.eq(1)
                m.d.sync += [idx.eq(0), pidx.eq(0), rsp_crc.eq(0)]
                with m.If(ctl_pending & ~post_q):
                    m.d.comb += ctl_take.eq(1)
                    m.d.sync += [
                        rsp_kind.eq(Mux(ctl_pending_info, 1, 2)),
                        rsp_len.eq(Mux(ctl_pending_info, P.INFO_BYTES, 2)),
                        rsp_code.eq(err_code), rsp_cmd.eq(err_cmd),
                    ]
                    m.next = "LOAD"
                with m.Elif(out_avail & ~ctl_pending):
                    with m.If(flushing | reset_pending):
                        m.next = "POP"  # abandoned by RESET: drop silently
                    with m.Else():
                        m.d.sync += [
                            rsp_kind.eq(0), rsp_report.eq(flags.r_data), rsp_end_seq.eq(core.out_end_seq),
                            rsp_len.eq(Mux(flags.r_data, link.report_bytes, P.STEP_HEADER_BYTES)),
                        ]
                        m.next = "LOAD"
            with m.State("LOAD"):
                m.d.sync += [cur_q.eq(cur), is_crc_q.eq(is_crc), crc_byte_q.eq((idx != 0) & ~is_crc)]
                m.next = "SEND"
            with m.State("SEND"):
                m.d.comb += [tx.i.valid.eq(1), tx.i.payload.eq(cur_q)]
                with m.If(tx.i.ready):
                    m.d.sync += [idx.eq(idx + 1), pidx.eq(idx - 3), settle.eq(pick_cycles - 1)]
                    with m.If(crc_byte_q):
                        m.d.sync += rsp_crc.eq(crc8_update(rsp_crc, cur_q))
                    with m.If(is_crc_q):
                        m.next = "IDLE"
                        with m.If(rsp_kind == 0):
                            m.next = "POP"
                    with m.Else():
                        m.next = "PICK"
            with m.State("PICK"):  # payload_q follows the new pidx
                m.d.sync += settle.eq(settle - 1)
                with m.If(settle == 0):
                    m.next = "LOAD"
            with m.State("POP"):
                # the core's output word and its report flag are consumed a cycle after the
                # decision, from a state of their own: core.out_ready and the flag FIFO's read
                # enable come from the FSM's register (timing closure, issue 12)
                m.d.comb += pop_output.eq(1)
                m.next = "IDLE"
        m.d.comb += self.active.eq(~parser_fsm.ongoing("SYNC") | ~responder_idle | tx.busy)
        return m


class BoardTop(Elaboratable):
    """A :class:`UARTBridge` on a board: UART resource 0, LED 0 heartbeat, LED 1 last error.

    ``pll``: an optional callable ``pll(m, platform) -> None`` that creates the ``sync`` domain
    (see :mod:`skipcore.boards.boards`); without it the board's default clock drives ``sync``.
    """

    def __init__(self, bridge: UARTBridge, *, pll=None) -> None:
        self.bridge = bridge
        self._pll = pll

    def elaborate(self, platform) -> Module:
        m = Module()
        if self._pll is not None:
            self._pll(m, platform)
        m.submodules.bridge = bridge = self.bridge
        uart = platform.request("uart", 0)
        m.d.comb += [bridge.rx.eq(uart.rx.i), uart.tx.o.eq(bridge.tx)]
        beat = Signal(ceil_log2(max(2, bridge.params.clock_hz)) - 1)
        m.d.sync += beat.eq(beat + 1)
        err_seen = Signal()
        with m.If(bridge.error):
            m.d.sync += err_seen.eq(1)
        leds = []
        for i in range(2):
            try:
                leds.append(platform.request("led", i))
            except Exception:  # a board with fewer LEDs
                break
        if leds:  # through a register: no logic path from the bridge's state to the pin
            m.d.sync += leds[0].o.eq(beat[-1] | bridge.active)
        if len(leds) > 1:
            m.d.comb += leds[1].o.eq(err_seen)
        return m


def uart_top_verilog(art, *, clocks_per_bit: int | None = None, lanes: int = 1, name: str = "uart_top",
                     timeout_bits: int = 200, queue_depth: int = 0, clock_hz: int = 100_000_000,
                     baud: int | None = None) -> str:
    """Verilog of ``UARTBridge(core)`` for simulation: ports ``clk``, ``rst``, ``rx``, ``tx``,
    ``error``, ``active``. The bit time is either ``clocks_per_bit`` cycles, or, with ``baud``,
    the divisor a build computes for ``baud`` at ``clock_hz`` (``uart_divisor``: a PLL's
    achieved clock gives the same divisor as on the board). The frame timeout is
    ``timeout_bits`` bit times (short, so a simulation need not wait 50 ms)."""
    from amaranth.back import verilog

    from .flow import artifact_id, make_core
    from .uart import uart_divisor

    if (clocks_per_bit is None) == (baud is None):
        raise ValueError("give exactly one of clocks_per_bit and baud")
    if baud is None:
        baud = int(clock_hz) // clocks_per_bit
    else:
        clocks_per_bit = uart_divisor(clock_hz, baud)
    params = BridgeParams(link=P.LinkFormat.from_artifact(art), divisor=clocks_per_bit, clock_hz=int(clock_hz),
                          baud=baud, layers=len(art.layers), queue_depth=queue_depth,
                          artifact_id=artifact_id(art), timeout_cycles=timeout_bits * clocks_per_bit)
    return verilog.convert(UARTBridge(make_core(art, lanes, debug=False), params), name=name, emit_src=False)
