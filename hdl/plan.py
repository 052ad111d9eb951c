"""From an artifact to hardware parameters: lanes, groups, widths, memory contents, cycle constants.

:func:`plan_core` is the single place where generator options are checked (``ConfigError`` with
messages that name the option and the fix) and where every width of the datapath is derived from
the artifact (``golden/CONTRACT.md`` section 5). The components in ``hdl/`` take the resulting
:class:`LayerPlan` / :class:`ReadoutPlan` / :class:`CorePlan` and never look at the artifact.

Memory contents are packed here as Python integers, one per word, lane ``p`` of a word in bits
``[p * width, (p + 1) * width)`` (two's complement for signed fields). Words with more than one
field per lane (accumulator, state, parameters) are ``amaranth.lib.data`` layouts: an
``ArrayLayout`` of P lanes of a ``StructLayout``. What a neuron kind keeps (state fields, its
constants, its unit's latency) comes from its hardware definition (:mod:`hdl.kinds`).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from amaranth.hdl import signed as signed_shape, unsigned as unsigned_shape
from amaranth.lib import data
from amaranth.utils import ceil_log2

from skipcore.errors import ConfigError
from skipcore.golden.artifact import Artifact, LayerSpec
from skipcore.golden.contract import accumulator_bits, layer_input_max

from . import kinds as unit_kinds

__all__ = [
    "MAX_DATAPATH_BITS",
    "MAX_LANES",
    "MAX_EVENTS",
    "WEIGHT_BANK_WORDS",
    "WEIGHT_BANK_WORDS_DUAL_PORT",
    "BANK_MUX_BANKS",
    "BANK_REGISTER_BANKS",
    "LayerPlan",
    "ReadoutPlan",
    "CorePlan",
    "ParamField",
    "check_events",
    "plan_core",
    "pack_lanes",
]

#: Widest integer any adder, multiplier or register of the datapath may need. The golden model
#: computes in int64, so a network that needs more cannot be checked bit-exactly anyway.
MAX_DATAPATH_BITS = 62
#: Upper limit of the lanes option (the widest memory word is lanes x weight_bits).
MAX_LANES = 4096
#: Upper limit of the events option (E weight words per cycle: E ROM read ports, an adder tree of E
#: terms per lane; beyond 8 the copies of the weight ROM cost more than more lanes would).
MAX_EVENTS = 8
#: Words per bank of a layer's weight ROM: 512 is one ECP5 DP16KD (512 x 36) deep, two iCE40
#: SB_RAM40_4K (256 x 16). A bank's read data is registered before the bank multiplexer, so no
#: block-RAM output drives a wide multiplexer (issue 12, timing closure).
WEIGHT_BANK_WORDS = 512
#: Words per bank with E > 1 (two read ports per ROM copy): an ECP5 DP16KD with two read ports is a
#: true-dual-port RAM of at most 18 bits a port, 1024 deep (its 512 x 36 mode has one read port),
#: so 1024-word banks fill the blocks: E = 2 then needs no more DP16KD than E = 1.
WEIGHT_BANK_WORDS_DUAL_PORT = 1024
#: Banks one level of the bank multiplexer chooses from. A ROM of more banks (the SHD network's
#: first layer has 26, spread over the chip's block-RAM columns) is chosen in two registered
#: levels: groups of banks (``LayerPlan.bank_group``), then the group (issue 12, timing closure:
#: one 26-way multiplexer after the block RAMs was the critical path, mostly routing).
BANK_MUX_BANKS = 4
#: Above this many banks each bank's word also passes a fabric register of its own that only its
#: block RAM drives (the select's AND-OR moves one stage later, into the group register), so the
#: placer can put it between the bank and the engine: the SHD core's 26 banks (52 DP16KDs over
#: four block-RAM rows) put a bank ~100 tiles (6.1-7 ns of routing) from its group register with
#: nextpnr's HeAP placer. Not below: the demo core's 5 and 8 banks lie near their engines and the
#: extra flip-flops only moved its placement (145 instead of 160 MHz at seeds 1 and 2).
BANK_REGISTER_BANKS = 16


def _bits_signed(bound: int) -> int:
    """Signed width that holds every integer in ``[-bound, bound]``."""
    return int(bound).bit_length() + 1


def pack_lanes(values, width: int) -> int:
    """Pack lane values (ints, lane 0 first) into one word, ``width`` bits per lane."""
    mask = (1 << width) - 1
    word = 0
    for p, v in enumerate(values):
        word |= (int(v) & mask) << (p * width)
    return word


@dataclass(frozen=True)
class ParamField:
    """One per-neuron constant of a layer (or per-class constant of the readout).

    ``uniform`` holds the value when every neuron shares it (then it is a constant in the logic
    and takes no memory); otherwise ``values`` holds one value per neuron.
    """

    name: str
    width: int
    signed: bool
    uniform: int | None
    values: tuple[int, ...]

    @property
    def in_memory(self) -> bool:
        return self.uniform is None


def _param(name: str, arr: np.ndarray, width: int, signed: bool) -> ParamField:
    values = tuple(int(v) for v in np.asarray(arr).reshape(-1))
    uniform = values[0] if values and all(v == values[0] for v in values) else None
    return ParamField(name, width, signed, uniform, values)


@dataclass(frozen=True)
class LayerPlan:
    """Hardware parameters of hidden layer ``index`` (see :class:`hdl.layer_engine.LayerEngine`)."""

    index: int
    neurons: int
    fan_in: int
    kind: str                  # a neuron kind with a hardware unit (hdl.kinds)
    span: int                  # k; 0 = no recurrence
    ring_depth: int            # slots of the ring buffer (0 when span == 0)
    lanes: int                 # P_l = min(P, N)
    groups: int                # G = ceil(N / P_l)
    input_kind: str            # "spike" (also every layer > 0) | "count" | "real"
    input_bits: int            # width of one input value (1 for spikes)
    input_index_bits: int      # width of an input event's index
    input_shift: int           # s
    decay_mode: str
    reset: str
    weight_bits: int
    state_bits: int
    decay_bits: int
    trace_bits: int            # T: fraction bits of an ALIF adaptation trace (contract section 3.4)
    acc_bits: int              # golden.contract.accumulator_bits: (ff >> s) + bias + rec
    ff_bits: int               # raw feed-forward sum (before the shift)
    rec_bits: int              # raw recurrent sum (0 without recurrence)
    split: bool                # feed-forward and recurrent sums in separate accumulators (s > 0)
    sum_bits: int              # the single accumulator when not split: ff + rec
    weight_words: tuple[int, ...] = field(repr=False)   # (fan_in + N [if span]) * G words of P*W bits
    params: tuple[ParamField, ...] = field(repr=False)
    #: the kind's accumulator fields fed by the layer's own spikes of step t - 1 (name, signed width)
    event_fields: tuple[tuple[str, int], ...] = ()
    event_words: tuple[int, ...] = field(default=(), repr=False)  # N * G words of P lanes of event_fields
    unit_constants: tuple[tuple[str, object], ...] = field(default=(), repr=False)
    input_exp: int = 0         # e_in: an input weight enters the accumulator as w << e_in (wiring)
    recurrent_exp: int = 0     # e_rec: likewise for the recurrent weights
    weight_bank_words: int = WEIGHT_BANK_WORDS   # words per bank of the weight ROM
    events: int = 1            # E: events whose weight words are read per cycle (generator option)

    @property
    def own_events(self) -> bool:
        """Whether the layer replays its own spikes of step t - 1 as events (gate span 1)."""
        return bool(self.event_fields)

    @property
    def own_span(self) -> int:
        return 1 if self.own_events else 0

    @property
    def event_layout(self) -> data.StructLayout:
        """One lane of an own-event ROM word: one weight per event field."""
        return data.StructLayout({name: signed_shape(self.weight_bits) for name, _ in self.event_fields})

    # derived ---------------------------------------------------------------------------------
    @property
    def rows(self) -> int:
        """Weight rows: one per input channel, then one per own neuron (recurrent)."""
        return self.fan_in + (self.neurons if self.span > 0 else 0)

    @property
    def group_bits(self) -> int:
        return max(1, ceil_log2(self.groups))

    @property
    def rec_index_bits(self) -> int:
        return max(1, ceil_log2(self.neurons))

    @property
    def unit_kind(self) -> "unit_kinds.UnitKind":
        """The kind's hardware definition: update unit, state layout, constants."""
        return unit_kinds.get(self.kind)

    @property
    def unit_latency(self) -> int:
        """Pipeline registers inside one neuron update unit (the kind's unit says)."""
        return self.unit_kind.latency(self)

    @property
    def accumulate_stages(self) -> int:
        """Register stages from issue to the accumulator write: 3 (issue register, weight word,
        accumulator read), two more with a multi-bit product (its operand and product registers,
        then the product in a fabric register), one more with weight banks (two with a multi-bit
        product: the bank multiplexer registered before the multiplier) and one more with over
        ``BANK_MUX_BANKS`` of them (the select's AND-OR in a register per group of banks) and one
        more over ``BANK_REGISTER_BANKS`` (a fabric register per bank that only its block RAM
        drives, so that the placer can put it between the bank and the engine), one more with
        E > 1 events per cycle (the adder tree of the E words)."""
        multibit, banked = self.input_kind != "spike", self.weight_banks > 1
        return (3 + 2 * multibit + banked * (1 + multibit) + (self.weight_banks > BANK_MUX_BANKS)
                + self.bank_registers + (self.events > 1))

    @property
    def weight_banks(self) -> int:
        """Banks of the weight ROM (``weight_bank_words`` words each; 1: a single memory)."""
        return max(1, -(-len(self.weight_words) // self.weight_bank_words))

    @property
    def bank_registers(self) -> bool:
        """Whether each bank's word passes a fabric register of its own (over
        ``BANK_REGISTER_BANKS`` banks)."""
        return self.weight_banks > BANK_REGISTER_BANKS

    @property
    def bank_group(self) -> int:
        """Banks of one group of the two-level bank multiplexer (a power of two, at most the square
        root of the banks: a group's block RAMs lie closer together; all of them with at most
        ``BANK_MUX_BANKS`` banks: one level)."""
        banks = self.weight_banks
        return banks if banks <= BANK_MUX_BANKS else 1 << (ceil_log2(banks) // 2)

    @property
    def constant_cycles(self) -> int:
        """c of the cycle bound: the issue-to-write stages, the unit input register, the unit
        latency and the DONE cycle, plus G with own events (scanning the G words of S[t-1] costs
        exactly one cycle each)."""
        return self.accumulate_stages + 1 + self.unit_latency + 1 + (self.groups if self.own_events else 0)

    @property
    def acc_fields(self) -> tuple[tuple[str, int], ...]:
        """Fields of one accumulator lane, low bits first."""
        if self.split:
            return (("ff", self.ff_bits), ("rec", self.rec_bits)) + self.event_fields
        return (("sum", self.sum_bits),) + self.event_fields

    @property
    def acc_layout(self) -> data.StructLayout:
        """One lane of the accumulator word."""
        return data.StructLayout({name: signed_shape(width) for name, width in self.acc_fields})

    @property
    def acc_lane_bits(self) -> int:
        return self.acc_layout.size

    @property
    def state_layout(self) -> data.StructLayout:
        """One neuron's state (the kind's unit defines it)."""
        return self.unit_kind.state_layout(self)

    @property
    def state_fields(self) -> tuple[tuple[str, int], ...]:
        """Fields of one neuron's state, low bits first."""
        return tuple((name, f.width) for name, f in self.state_layout)

    @property
    def state_lane_bits(self) -> int:
        return self.state_layout.size

    @property
    def memory_params(self) -> tuple[ParamField, ...]:
        return tuple(p for p in self.params if p.in_memory)

    @property
    def param_layout(self) -> data.StructLayout:
        """One lane of the parameter ROM word: the constants that differ between neurons."""
        return data.StructLayout({p.name: (signed_shape if p.signed else unsigned_shape)(p.width)
                                  for p in self.memory_params})

    @property
    def param_lane_bits(self) -> int:
        return self.param_layout.size

    @property
    def multipliers(self) -> int:
        """Hardware multipliers of the layer: the units' and the first layer's input MACs."""
        per_lane = self.unit_kind.multipliers(self) + (self.events if self.input_kind != "spike" else 0)
        return self.lanes * per_lane

    def param(self, name: str) -> ParamField:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def param_words(self) -> list[int]:
        """Contents of the parameter ROM: G words, each P lanes of the non-uniform params."""
        fields = self.memory_params
        word = data.ArrayLayout(self.param_layout, self.lanes)
        words = []
        for g in range(self.groups):
            lanes = []
            for p in range(self.lanes):
                i = g * self.lanes + p
                lanes.append({f.name: f.values[i] if i < self.neurons else 0 for f in fields})
            words.append(word.const(lanes).as_bits())
        return words

    def memories(self) -> list[dict]:
        """Memory inventory of the layer (name, word width, depth, bits)."""
        P, G = self.lanes, self.groups
        out = [
            _mem(f"l{self.index}.weights" if self.events == 1 else f"l{self.index}.weights_copy{copy}",
                 P * self.weight_bits, self.rows * G)
            for copy in range(-(-self.events // 2))
        ]
        out += [
            _mem(f"l{self.index}.acc", P * self.acc_lane_bits, G),
            _mem(f"l{self.index}.state", P * self.state_lane_bits, G),
        ]
        if self.param_lane_bits:
            out.append(_mem(f"l{self.index}.params", P * self.param_lane_bits, G))
        if self.own_events:
            out.append(_mem(f"l{self.index}.own_event_weights", P * self.event_layout.size, self.neurons * G))
        if self.span >= 2:
            out.append(_mem(f"l{self.index}.ring", P, self.ring_depth * G))
        if self.span >= 1:
            out.append(_mem(f"l{self.index}.replay_fifo", self.group_bits + P + 2, self.replay_fifo_depth))
            if self.events > 1:
                out.append(_mem(f"l{self.index}.replay_bundles", bundle_bits(self.rec_index_bits, self.events),
                                self.bundle_fifo_depth(self.neurons)))
        out.append(_mem(f"l{self.index}.out_fifo", self.group_bits + P + 2, self.out_fifo_depth))
        return out

    def bundle_fifo_depth(self, events_per_step: int) -> int:
        """Depth of a queue of E-event bundles that holds two steps of up to ``events_per_step``."""
        return 2 * (-(-events_per_step // self.events) + 1)

    @property
    def replay_fifo_depth(self) -> int:
        return (self.groups + 1) * (1 if self.span == 1 else 2)

    @property
    def out_room(self) -> int:
        """Free words of the output queue a step needs to start: its G words and its marker (the
        engine tests the room once the marker of the step before has left its output register)."""
        return self.groups + 1

    @property
    def out_fifo_depth(self) -> int:
        """The output queue: the room of a starting step and a whole step (G + 1 words) queued."""
        return self.out_room + self.groups + 1


def bundle_bits(index_bits: int, events: int, value_bits: int = 0) -> int:
    """Width of a bundle word (``hdl.stream.bundle_layout``)."""
    return events * (index_bits + value_bits) + ceil_log2(events + 1) + 2


def _mem(name: str, width: int, depth: int) -> dict:
    return {"name": name, "width": int(width), "depth": int(depth), "bits": int(width) * int(depth)}


@dataclass(frozen=True)
class ReadoutPlan:
    """Hardware parameters of the readout (see :class:`hdl.readout_engine.ReadoutEngine`)."""

    classes: int
    neurons: int               # fan-in: neurons of the last hidden layer
    kind: str                  # a readout kind with hardware (hdl.readouts): "sum" | "leaky" | "alif"
    mode: str                  # "sequence" | "per_step" (only reported; the core outputs m[t] always)
    decay_mode: str
    weight_bits: int
    readout_bits: int
    decay_bits: int
    trace_bits: int            # T: fraction bits of the alif readout's adaptation trace (section 4.3)
    sum_bits: int              # raw sum_j (w[c, j] << weight_exp) * S_j
    index_bits: int
    weight_words: tuple[int, ...] = field(repr=False)   # N words of M*W bits (column j of w)
    bias: ParamField = field(repr=False)
    params: tuple[ParamField, ...] = field(default=(), repr=False)   # the readout kind's constants
    weight_exp: int = 0        # e_o: a weight enters the accumulator as w << e_o (wiring)

    @property
    def readout_kind(self):
        """The readout kind's hardware definition (hdl.readouts)."""
        from . import readouts

        return readouts.get(self.kind)

    @property
    def decay(self) -> ParamField | None:
        return next((p for p in self.params if p.name == "decay"), None)

    @property
    def multipliers(self) -> int:
        return self.readout_kind.multipliers(self)

    @property
    def class_bits(self) -> int:
        return max(1, ceil_log2(self.classes))

    def memories(self) -> list[dict]:
        return [_mem("readout.weights", self.classes * self.weight_bits, self.neurons)]


@dataclass(frozen=True)
class CorePlan:
    """Everything the core needs: input format, layers, readout, debug ports."""

    channels: int
    input_kind: str
    input_bits: int
    frac_bits: int
    index_bits: int
    value_bits: int
    lanes: int
    layers: tuple[LayerPlan, ...]
    readout: ReadoutPlan
    debug: bool
    events: int = 1

    @property
    def in_fifo_depth(self) -> int:
        """Words of the input queue: two steps of up to C events (E > 1: bundles of E events)."""
        return 2 * (-(-self.channels // self.events) + 1)

    def memories(self) -> list[dict]:
        value_bits = self.value_bits if self.input_kind != "spike" else 0
        if self.events == 1:
            out = [_mem("in_fifo", self.index_bits + value_bits + 2, self.in_fifo_depth)]
        else:
            out = [_mem("in_fifo", bundle_bits(self.index_bits, self.events, value_bits), self.in_fifo_depth)]
        for l, layer in enumerate(self.layers):
            if self.events > 1 and l > 0:
                prev = self.layers[l - 1]
                out.append(_mem(f"l{l}.in_bundles", bundle_bits(layer.input_index_bits, self.events),
                                layer.bundle_fifo_depth(prev.neurons)))
            out.extend(layer.memories())
        out.extend(self.readout.memories())
        return out


# ---------------------------------------------------------------------------------------------


def _check_int(name: str, value, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < lo:
        raise ConfigError(f"{name} must be at least {lo}, got {value}")
    if hi is not None and value > hi:
        raise ConfigError(f"{name} must be at most {hi}, got {value}")
    return value


def check_events(events, option: str = "--events") -> int:
    """E as an int, or ConfigError (one line naming ``option``) unless it is an integer in 1 .. MAX_EVENTS."""
    if isinstance(events, bool) or not isinstance(events, (int, np.integer)):
        raise ConfigError(f"{option} must be an integer, got {events!r}")
    if not 1 <= int(events) <= MAX_EVENTS:
        raise ConfigError(f"{option} must be between 1 and {MAX_EVENTS} (events whose weight rows a layer engine "
                          f"reads per cycle; each one more costs a read port and an adder per lane), got {events}")
    return int(events)


def _check_width(where: str, what: str, bits: int) -> None:
    if bits > MAX_DATAPATH_BITS:
        raise ConfigError(
            f"{where}: {what} needs {bits} bits but the datapath holds at most {MAX_DATAPATH_BITS}; "
            "lower weight_bits or input.bits, or use smaller weights"
        )


def _layer_plan(art: Artifact, index: int, layer: LayerSpec, lanes: int, ring_depth: int | None) -> LayerPlan:
    where = f"layers[{index}]"
    w = art.widths
    n, fan_in = layer.neurons, layer.fan_in
    p = min(lanes, n)
    g = -(-n // p)
    if layer.span > 0:
        depth = layer.span if ring_depth is None else ring_depth
        if depth < layer.span:
            raise ConfigError(
                f"{where}: span {layer.span} exceeds the ring depth {depth}; "
                f"pass --ring-depth {layer.span} or more (or leave it out: the default depth is the span)"
            )
    else:
        depth = 0
    if index == 0:
        input_kind, input_bits = art.input.kind, art.input.bits
        index_bits = max(1, ceil_log2(art.input.channels))
    else:
        input_kind, input_bits = "spike", 1
        index_bits = max(1, ceil_log2(art.layers[index - 1].neurons))
    if input_kind == "spike":
        input_bits = 1
    xmax = layer_input_max(art, index)
    # the sums of the shifted weights w << e (CONTRACT.md section 5): the exponents widen them
    ff_abs = np.abs(layer.w_in_shifted).sum(axis=1) * int(xmax)
    rec_abs = np.abs(layer.w_rec_shifted).sum(axis=1) if layer.w_rec is not None else np.zeros(n, dtype=np.int64)
    ff_bits = _bits_signed(int(ff_abs.max()))
    rec_bits = _bits_signed(int(rec_abs.max())) if layer.span > 0 else 0
    sum_bits = _bits_signed(int((ff_abs + rec_abs).max()))
    acc_bits = accumulator_bits(layer, xmax)
    split = layer.input_shift > 0 and layer.span > 0
    S, D = w.state_bits, w.decay_bits
    _check_width(where, "the feed-forward accumulator", ff_bits)
    _check_width(where, "the accumulator", max(acc_bits, sum_bits))
    _check_width(where, "the membrane update", max(S, acc_bits) + 2)
    _check_width(where, "the weight-times-input product", w.weight_bits + input_bits + 1)
    _check_width(where, "the decay product", S + D + 2)

    # weights: rows w_in[:, j] then w_rec[:, j]; word (row, group) holds lanes g*P .. g*P+P-1
    cols = [layer.w_in[:, j] for j in range(fan_in)]
    if layer.span > 0:
        cols += [layer.w_rec[:, j] for j in range(n)]
    words = []
    for col in cols:
        padded = np.zeros(g * p, dtype=np.int64)
        padded[:n] = col
        for gi in range(g):
            words.append(pack_lanes(padded[gi * p:(gi + 1) * p], w.weight_bits))

    worst_cycles = g * (fan_in + (n if layer.span > 0 else 0) + n) + 2 * g + 8
    if worst_cycles >= 1 << 32:
        raise ConfigError(
            f"{where}: a step can take {worst_cycles} cycles, more than the 32-bit cycle counter holds; "
            "use more lanes"
        )

    kind = unit_kinds.get(layer.kind)
    params = [_param("bias", layer.bias, S, True)]
    params += [_param(*source) for source in kind.params(art, layer)]
    # own events (e.g. STC's gates): row j = the weights of own neuron j's spike, G words of P lanes
    rows = kind.own_event_rows(art, layer)
    event_fields, event_words = (), []
    if rows:
        event_fields = tuple((name, _bits_signed(int(np.abs(mat).sum(axis=1).max()))) for name, mat in rows.items())
        for name, width in event_fields:
            _check_width(where, f"the {name} accumulator", width)
        _check_width(where, "the gate products", D + max(S, acc_bits) + 3)
        lane = data.StructLayout({name: signed_shape(w.weight_bits) for name in rows})
        word = data.ArrayLayout(lane, p)
        for j in range(n):
            for gi in range(g):
                lanes = []
                for lane_index in range(p):
                    i = gi * p + lane_index
                    lanes.append({name: int(mat[i, j]) if i < n else 0 for name, mat in rows.items()})
                event_words.append(word.const(lanes).as_bits())
    constants = tuple(sorted(kind.constants(art, layer).items()))
    return LayerPlan(
        index=index, neurons=n, fan_in=fan_in, kind=layer.kind, span=layer.span, ring_depth=depth,
        lanes=p, groups=g, input_kind=input_kind, input_bits=input_bits, input_index_bits=index_bits,
        input_shift=layer.input_shift, decay_mode=layer.decay_mode, reset=layer.reset,
        weight_bits=w.weight_bits, state_bits=S, decay_bits=D, trace_bits=w.trace_bits, acc_bits=acc_bits,
        ff_bits=ff_bits, rec_bits=rec_bits, split=split, sum_bits=sum_bits,
        weight_words=tuple(words), params=tuple(params),
        event_fields=event_fields, event_words=tuple(event_words), unit_constants=constants,
        input_exp=int(layer.input_exp), recurrent_exp=int(layer.recurrent_exp),
    )


def _readout_plan(art: Artifact, lanes: int) -> ReadoutPlan:
    r, w = art.readout, art.widths
    m, n = r.classes, r.w.shape[1]
    index_bits = max(1, ceil_log2(n))
    sum_bits = _bits_signed(int(np.abs(r.w_shifted).sum(axis=1).max()))
    _check_width("readout", "the readout sum", max(sum_bits, w.readout_bits) + 2)
    _check_width("readout", "the readout decay product", w.readout_bits + w.decay_bits + 2)
    words = tuple(pack_lanes(r.w[:, j], w.weight_bits) for j in range(n))
    from . import readouts

    params = tuple(_param(*source) for source in readouts.get(r.kind).params(art, r))
    return ReadoutPlan(
        classes=m, neurons=n, kind=r.kind, mode=r.mode, decay_mode=r.decay_mode,
        weight_bits=w.weight_bits, readout_bits=w.readout_bits, decay_bits=w.decay_bits, trace_bits=w.trace_bits,
        sum_bits=sum_bits, index_bits=index_bits, weight_words=words,
        bias=_param("bias", r.bias, w.readout_bits, True), params=params, weight_exp=int(r.weight_exp),
    )


def plan_core(art: Artifact, *, lanes: int, ring_depth: int | None = None, debug: bool = True,
              weight_bank_words: int | None = None, events: int = 1) -> CorePlan:
    """Check the generator options against the artifact and derive every hardware parameter.

    Parameters
    ----------
    art : Artifact
        A validated artifact.
    lanes : int
        P, the lanes of every layer engine (clamped to each layer's neuron count).
    ring_depth : int, optional
        Slots of every ring buffer; default: each layer's span. Must be >= every span.
    debug : bool
        Add the ``dbg_l*`` ports (INTERFACE.md).
    weight_bank_words : int, optional
        Words per bank of each weight ROM (a power of two; default :data:`WEIGHT_BANK_WORDS`, or
        :data:`WEIGHT_BANK_WORDS_DUAL_PORT` with ``events`` > 1; the tests use small banks to
        simulate the banked read path).
    events : int
        E, 1 .. :data:`MAX_EVENTS`: every layer engine reads the weight rows of up to E events of
        one stream per cycle (E = 1: one event per cycle).

    Raises
    ------
    ConfigError
        ``lanes`` not a positive integer (or above :data:`MAX_LANES`), ``events`` not an integer in
        1 .. :data:`MAX_EVENTS`, ``ring_depth`` smaller than
        a span or not positive, or a width that the datapath cannot hold.
    """
    if not isinstance(art, Artifact):
        raise ConfigError(f"expected an Artifact, got {type(art).__name__}")
    art.validate()
    lanes = _check_int("lanes", lanes, 1, MAX_LANES)
    events = check_events(events, "events")
    if ring_depth is not None:
        ring_depth = _check_int("ring depth", ring_depth, 1, 1 << 16)
    if weight_bank_words is None:
        weight_bank_words = WEIGHT_BANK_WORDS if events == 1 else WEIGHT_BANK_WORDS_DUAL_PORT
    bank = _check_int("weight bank words", weight_bank_words, 1, 1 << 20)
    if bank & (bank - 1):
        raise ConfigError(f"weight bank words must be a power of two, got {bank}")
    layers = tuple(replace(_layer_plan(art, i, layer, lanes, ring_depth), weight_bank_words=bank, events=events)
                   for i, layer in enumerate(art.layers))
    inp = art.input
    return CorePlan(
        channels=inp.channels, input_kind=inp.kind, input_bits=inp.bits, frac_bits=inp.frac_bits,
        index_bits=max(1, ceil_log2(inp.channels)), value_bits=inp.bits, lanes=lanes,
        layers=layers, readout=_readout_plan(art, lanes), debug=bool(debug), events=events,
    )
