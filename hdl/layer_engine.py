"""The time-multiplexed, event-driven engine of one hidden layer."""
from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ._checks import reject
from .arith import or_all, registered_product
from .plan import LayerPlan
from .registered_rom import RegisteredROM
from .ring_buffer import ring_write_signature
from .stream import bundle_signature, event_signature, word_signature

__all__ = ["LayerEngine"]


def _tree_sum(terms):
    """Sum of ``terms`` as a balanced tree of adders (depth ceil(log2(len))."""
    while len(terms) > 1:
        terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i] for i in range(0, len(terms), 2)]
    return terms[0]


class LayerEngine(wiring.Component):
    """One hidden layer: P lanes share the layer's N neurons, G = ceil(N / P) groups.

    Neuron ``i`` is lane ``i % P`` of group ``i // P``. One step of the layer (contract section 3):

    1. **Accumulate** (``ACC``). Each event (an input event from ``i_ev`` or a recurrent event from
       ``i_rec``; both streams are read in the same cycles, and when both hand over an event the
       recurrent one is issued first and the input one is held in a register, ``pend``, and issued
       next) adds one weight row to the accumulators:
       G words of P weights, one word per cycle, times the event's value for the first layer's
       multi-bit inputs (``acc += w * x``). Pipeline: issue (combinational: which event, which
       row) -> stage 0 (issue register: the weight RAM address) -> stage 1 (weight word, a
       register) -> [bank register: a ROM of more than ``weight_bank_words`` words is split into
       banks whose words are registered before the bank multiplexer: each bank is a
       :class:`~hdl.registered_rom.RegisteredROM`, whose output register, on ECP5 the block RAM's
       own, is the bank register; with over ``hdl.plan.BANK_MUX_BANKS`` banks one more, holding
       the word of each group of ``LayerPlan.bank_group`` banks (the select's AND-OR), and over
       ``hdl.plan.BANK_REGISTER_BANKS`` another one before it: a fabric register per bank that
       only its block RAM drives (the placer puts it between the bank and the engine), so that no
       route from a block RAM crosses the chip in one cycle] -> [product w * x, only for
       count/real inputs: three stages, its operand and product registers (on ECP5 a multiplier
       block's) and a fabric register; four with banks, the bank multiplexer registered before
       the block] -> stage RD
       (accumulator word, a register ``acc_op``: the RAM is read one stage earlier) -> stage
       WR = RD + 1 (accumulator write). The accumulator read port is transparent for the write
       of the op two stages ahead and the write data of the op one stage ahead are forwarded into
       ``acc_op``, so back-to-back events on the same group (G = 1) chain correctly. With
       ``input_shift > 0`` and recurrence the feed-forward and recurrent sums sit in separate
       fields of the accumulator word, since only the feed-forward sum is shifted.

       **E events per cycle** (``plan.events`` E > 1, the generator option ``events``): ``i_ev``
       and ``i_rec`` carry bundles of up to E events (:func:`hdl.stream.bundle_layout`; every
       bundle of a step is full but the stream's last, see :class:`hdl.event_packer.EventPacker`).
       A bundle is issued like one event: G cycles, but each cycle reads the E rows' words of the
       same group from E read ports of the weight ROM, at E addresses registered in stage 0. The
       words of unused slots are masked (value 0), the E words (or E products ``w * x`` for the
       first layer's count/real inputs: E multipliers per lane) are registered, then summed per
       lane by an adder tree into one more register (stage TREE, one more stage in the constant)
       before the accumulator adds it. Recurrent bundles come first; bundles never mix streams.
       Own events (below) stay one per issue (slot 0). The read ports: a ROM with two read ports
       is one true-dual-port block RAM (ECP5 DP16KD, both ports reading), so ``ceil(E/2)`` copies
       of the two-port ROM (of every bank) serve E ports: E = 2 costs no more block RAM than
       E = 1 (with banks of 1024 words, ``hdl.plan.WEIGHT_BANK_WORDS_DUAL_PORT``: a two-port
       DP16KD is 1024 x 18), each further pair a copy. Copies rather than banks
       by address because the E rows of a bundle are arbitrary (any two may fall in one bank);
       iCE40's SB_RAM40_4K has a single read port, so Yosys duplicates each two-port copy there.
    2. **Update** (``UPDATE``): in the cycle in which both step markers (input and replay) have
       been taken (each is taken, and kept in a flag, as soon as it is at its stream's head)
       group 0 is issued, then groups 1 .. G-1, one per cycle. At stage RD the accumulator (cleared
       at WR), state and parameter RAMs are read; at WR ``acc = (ff >> s) + bias + rec`` and
       the state (zero on a first step) are registered (stage UI, so that no unit's multiplier
       or adder starts at a RAM output) and go into the P neuron units
       (:mod:`hdl.neuron_units`); their outputs write the
       new state and emit the group's spike word to ``o_words`` (if non-zero), the ring (always)
       and the debug shift register.
    3. ``DONE``: marker to ``o_words``, ``step_done`` (and ``clear`` at the end of a sequence) to
       the ring, ``dbg_valid`` pulse.

    The engine starts a step only when the whole step is waiting at ``i_ev`` (``i_step_ready``),
    the whole replay at ``i_rec`` (``i_rec_ready``) and there is room for a whole step at the
    output (``o_space_ok``, ``LayerPlan.out_room`` words). It then never stalls, and the cycles from the first
    ``ACC`` cycle to the ``DONE`` cycle (both counted, reported on ``dbg_cycles``) are exactly

        G * (input_events + recurrent_events + own_events) + G + c,
        c = (WR + 1) + 1 + unit latency + 1 (+ G)

    (issue register to WR, the unit input register, the unit, ``DONE``), i.e. c = 5 + unit latency
    for spike inputs and 7 + unit latency for the first layer's count or real inputs, one more
    with weight banks (two with count or real inputs), one more with over ``BANK_MUX_BANKS``
    banks (two over ``BANK_REGISTER_BANKS``), one more with E > 1, where the events count in bundles:
    ``G * (ceil(input_events / E) + ceil(recurrent_events / E) + own_events) + G + c``
    (``LayerPlan.constant_cycles`` says; the unit
    latency is the kind's: LIF 4, ALIF 5, STC 3; a layer with own events adds G, one cycle per
    scanned word of S[t-1]). Throughput: one weight word per cycle; one group update per cycle.
    Between steps the engine spends two ``IDLE`` cycles and a ``START`` cycle (not counted): the
    first ``IDLE`` cycle lets ``DONE``'s marker, ``step_done`` and ``clear`` leave the output
    registers and reach the queues, whose room and replay the second one tests; the input
    streams reach the engine through registers (:class:`~hdl.skid_buffer.SkidBuffer`,
    :class:`~hdl.spike_decoder.SpikeDecoder`, two cycles after their queue), and ``START`` lets a
    step that ``IDLE`` saw completed in its queue arrive there. After reset the engine clears the
    accumulators (G cycles, ``INIT``).

    Own events (kinds whose unit takes the layer's own spikes of step t - 1 as events, e.g. STC's
    gates): S[t-1] is kept in G registers of P bits (written by the output stage, read as zero on
    the first step of a sequence) and scanned during ``ACC`` one word after the other; every set
    bit issues its row of the own-event ROM (G words) into the kind's extra accumulator fields,
    which go to the unit's ports of the same name at the update.

    At the start of a sequence all state is zero (contract section 3.5): instead of clearing the
    state RAM, the first step of a sequence reads zeros (``first``), and the ring replays nothing
    before ``span`` steps have passed.

    Memories (one write port, synchronous transparent read ports; ``lib.memory.Memory``):

    ============  ======================  ====================  ===========================
    name          depth                   width                 contents
    ============  ======================  ====================  ===========================
    weights       (fan_in + N) * G (ROM)  P * W                 row j, group g at j * G + g
                                                                (E > 1: ceil(E/2) copies)
    acc           G                       P * acc lane bits     ff [| rec] or sum per lane
    state         G                       P * state lane bits   the kind's state layout
    params        G (ROM, if needed)      P * param lane bits   only non-uniform constants
    ============  ======================  ====================  ===========================

    Parameters
    ----------
    plan : LayerPlan

    Members
    -------
    i_ev : ``In(event_signature(input_index_bits[, value]))``
        Input events and the step marker (E > 1: ``bundle_signature(input_index_bits, E[, value])``).
        ``ready`` depends on the engine's registers only (so does ``i_rec.ready``): no path runs
        from a stream's valid or payload through the engine back into a stream's register.
    i_step_ready : ``In(1)``
        A whole step is queued at ``i_ev``.
    i_rec : ``In(event_signature(rec_index_bits))`` (only with span > 0)
        Replayed spikes of step t - span (neuron addresses) and the replay marker (E > 1: bundles).
    i_rec_ready : ``In(1)`` (only with span > 0)
    o_words : ``Out(word_signature(G, P))``
        The layer's spikes as non-zero words, then a marker, from a register (one cycle after the
        units' spikes: the P units are spread over the chip, and their spikes' OR, the word's
        valid, into the queue's write enable was a critical path; the ring's write is registered
        the same way). Never waits for ``ready``: room was reserved before the step started.
    o_space_ok : ``In(1)``
        The output queue has room for ``LayerPlan.out_room`` words.
    ring : ``Out(ring_write_signature(G, P))`` (only with span > 0)
    dbg_valid : ``Out(1)``
        One-cycle pulse in the ``DONE`` cycle.
    dbg_spikes : ``Out(N)``
        S[t] of the step that just finished (valid at the pulse).
    dbg_cycles : ``Out(32)``
        Cycles of that step (valid at the pulse).
    """

    def __init__(self, plan: LayerPlan):
        if not isinstance(plan, LayerPlan):
            raise reject(self, TypeError(f"LayerEngine needs a LayerPlan, not {plan!r}"))
        self._plan = plan
        P, G = plan.lanes, plan.groups
        members = {
            "i_ev": In(self._event_signature(plan, plan.input_index_bits, self._value_shape(plan))),
            "i_step_ready": In(1),
            "o_words": Out(word_signature(G, P)),
            "o_space_ok": In(1),
            "dbg_valid": Out(1),
            "dbg_spikes": Out(plan.neurons),
            "dbg_cycles": Out(32),
        }
        if plan.span > 0:
            members["i_rec"] = In(self._event_signature(plan, plan.rec_index_bits, None))
            members["i_rec_ready"] = In(1)
            members["ring"] = Out(ring_write_signature(G, P))
        super().__init__(members)

    @staticmethod
    def _event_signature(plan: LayerPlan, index_bits: int, value_shape):
        """One event per word, or with ``events`` E > 1 bundles of up to E events."""
        if plan.events == 1:
            return event_signature(index_bits, value_shape)
        return bundle_signature(index_bits, plan.events, value_shape)

    @staticmethod
    def _value_shape(plan: LayerPlan):
        if plan.input_kind == "spike":
            return None
        if plan.input_kind == "real":
            return signed(plan.input_bits)
        return unsigned(plan.input_bits)

    @property
    def plan(self) -> LayerPlan:
        return self._plan

    @property
    def constant_cycles(self) -> int:
        return self._plan.constant_cycles

    def elaborate(self, platform):
        m = Module()
        pl = self._plan
        P, G, N = pl.lanes, pl.groups, pl.neurons
        W = pl.weight_bits
        has_rec = pl.span > 0
        multibit = pl.input_kind != "spike"

        # ---- memories ----------------------------------------------------------------------
        # the weight ROM: one memory, or banks of weight_bank_words words whose read data are
        # registered before the bank multiplexer (one more stage: no block-RAM output goes
        # through a wide multiplexer)
        # With E events per cycle every bank has E read ports, two per copy of the ROM (a ROM with
        # two read ports is one true-dual-port block RAM on ECP5; see the docstring)
        E = pl.events
        banks, bank_words = pl.weight_banks, pl.weight_bank_words
        bank_ports = [[] for _ in range(E)]          # [slot][bank]
        # (banks > 1: each bank is a RegisteredROM, whose output register is the bank register,
        # inside the block RAM where the platform can put it there)
        for b in range(banks):
            words = pl.weight_words[b * bank_words:(b + 1) * bank_words] if banks > 1 else pl.weight_words
            for copy in range(-(-E // 2)):
                slots = range(2 * copy, min(E, 2 * copy + 2))
                name = "weights" if banks == 1 else f"weights{b}"
                if banks == 1:
                    bank = memory.Memory(shape=P * W, depth=len(words), init=words)
                    ports = [bank.read_port() for _ in slots]
                else:
                    bank = RegisteredROM(width=P * W, depth=len(words), init=words, ports=len(slots))
                    ports = [(bank.addr[i], bank.data[i]) for i in range(len(slots))]
                m.submodules[name if E == 1 else f"{name}_copy{copy}"] = bank
                for e, port in zip(slots, ports):
                    bank_ports[e].append(port)
        m.submodules.acc = amem = memory.Memory(shape=data.ArrayLayout(pl.acc_layout, P), depth=G, init=[])
        acc_wp = amem.write_port()
        # ops on the same group come at least G cycles apart (every event, bundle and update issues
        # the groups 0 .. G-1 in order): the read needs the transparency (below) only with G <= 2
        acc_rp = amem.read_port(transparent_for=(acc_wp,) if G <= 2 else ())
        state_layout = pl.state_layout
        m.submodules.state = smem = memory.Memory(shape=data.ArrayLayout(state_layout, P), depth=G, init=[])
        st_wp = smem.write_port()
        st_rp = smem.read_port(transparent_for=(st_wp,))
        p_rp = None
        if pl.param_lane_bits:
            param_word = data.ArrayLayout(pl.param_layout, P)
            m.submodules.params = pmem = memory.Memory(
                shape=param_word, depth=G, init=[param_word.from_bits(w) for w in pl.param_words()])
            p_rp = pmem.read_port()
        own = pl.own_events
        e_rp = None
        if own:
            event_word = data.ArrayLayout(pl.event_layout, P)
            m.submodules.own_events = emem = memory.Memory(
                shape=event_word, depth=N * G, init=[event_word.from_bits(w) for w in pl.event_words])
            e_rp = emem.read_port()

        # ---- control -----------------------------------------------------------------------
        first = Signal(init=1)          # the step is the first of a sequence
        end_seq = Signal()
        cycles = Signal(32)
        init_g = Signal(range(G))
        busy = Signal()                 # a weight row is being issued
        g_cnt = Signal(range(G))
        addr_rows = max(pl.rows, N if own else 0)
        val_shape = self._value_shape(pl) or unsigned(1)
        # per event slot (E of them): the address of the row's next word and the event's value
        # (0: slot unused); the address counts up from a register (no adder of a base and g_cnt)
        next_addr = [Signal(range(addr_rows * G + 1), name=f"next_addr{e}") for e in range(E)]
        cur_val = [Signal(val_shape, name=f"cur_val{e}") for e in range(E)]
        cur_rec = Signal()
        cur_own = Signal()
        upd_g = Signal(range(G))

        # issue (stage 0), combinational
        iss_valid = Signal()
        iss_upd = Signal()
        iss_g = Signal(range(G))
        iss_last = Signal()
        iss_addr = [Signal(range(addr_rows * G), name=f"iss_addr{e}") for e in range(E)]
        iss_val = [Signal(val_shape, name=f"iss_val{e}") for e in range(E)]
        iss_rec = Signal()
        iss_own = Signal()
        # stage 0 registers the issue, so that the weight RAM address comes from a register (the
        # issue logic reads the input streams and the scan state); stage k > 0 holds what was
        # issued k cycles before stage 0 (registers); stage RD reads the accumulator, state and
        # parameter RAMs, stage WR = RD + 1 writes the accumulator and feeds the neuron units.
        # Multi-bit inputs take one extra stage for the product w * x, E > 1 one for the adder tree.
        s0_addr = [Signal.like(iss_addr[e], name="s0_addr" if E == 1 else f"s0_addr{e}") for e in range(E)]
        m.d.sync += [s0_addr[e].eq(iss_addr[e]) for e in range(E)]
        w_words = []
        for e in range(E):
            sfx = "" if E == 1 else f"_{e}"
            if banks == 1:
                m.d.comb += bank_ports[e][0].addr.eq(s0_addr[e])
                w_words.append(bank_ports[e][0].data)          # stage 1
            else:
                bank_bits = ceil_log2(bank_words)
                # the bank select one-hot in stage 2: the multiplexer is an AND-OR of the banks'
                # words (two LUT levels; it may feed a multiplier block's input register)
                sel1, sel2 = Signal(range(banks), name=f"bank_sel1{sfx}"), Signal(banks, name=f"bank_sel2{sfx}")
                m.d.sync += [sel1.eq(s0_addr[e] >> bank_bits), sel2.eq(Const(1, banks) << sel1)]
                words = []
                for addr, word in bank_ports[e]:
                    m.d.comb += addr.eq(s0_addr[e][:len(addr)])
                    words.append(word)                          # registered by the RegisteredROM
                group = pl.bank_group
                if group == banks:
                    w_words.append(or_all([Mux(sel2[k], word, 0) for k, word in enumerate(words)]))  # stage 2
                else:
                    # over BANK_MUX_BANKS banks the AND-OR of each group of banks is registered
                    # (0 but in the chosen bank's group), then the groups are OR-ed. Over
                    # BANK_REGISTER_BANKS the block RAMs lie spread over the chip (the SHD core's
                    # layer 0: 52 DP16KDs over four block-RAM rows): each bank's word goes first
                    # into a fabric register that nothing but its block RAM drives (no select, no
                    # reset), which the placer can put between the bank and the engine, so no
                    # route from a block RAM crosses the chip in one cycle; the select follows
                    # one cycle later
                    sel = sel2
                    if pl.bank_registers:
                        sel = Signal(banks, name=f"bank_sel3{sfx}")
                        m.d.sync += sel.eq(sel2)
                        registered = []
                        for k in range(banks):
                            word = Signal(P * W, name=f"bank_word{k}{sfx}", reset_less=True)
                            m.d.sync += word.eq(words[k])
                            registered.append(word)
                        words = registered
                    near = [Mux(sel[k], word, 0) for k, word in enumerate(words)]
                    chosen = []
                    for k in range(0, banks, group):
                        word = Signal(P * W, name=f"bank_group{k // group}{sfx}")
                        m.d.sync += word.eq(or_all(near[k:k + group]))
                        chosen.append(word)
                    w_words.append(or_all(chosen))             # stage 3, 4 with bank registers
        # the stage of the weight word
        WB = 1 if banks == 1 else 2 if pl.bank_group == banks else 3 + int(pl.bank_registers)
        if own:
            m.d.comb += e_rp.addr.eq(s0_addr[0])
        RD = WB + int(multibit) * (2 + int(banks > 1)) + int(E > 1)
        WR = RD + 1
        issued = dict(valid=iss_valid, upd=iss_upd, g=iss_g, last=iss_last, rec=iss_rec, own=iss_own)
        issued |= {("val" if E == 1 else f"val{e}"): iss_val[e] for e in range(E)}
        stages = [{}]
        for name, sig in issued.items():
            reg = Signal.like(sig, name=f"s0_{name}")
            m.d.sync += reg.eq(sig)
            stages[0][name] = reg
        for k in range(1, WR + 1):
            prev = stages[-1]
            cur = {}
            for name, sig in prev.items():
                reg = Signal.like(sig, name=f"s{k}_{name}")
                m.d.sync += reg.eq(sig)
                cur[name] = reg
            stages.append(cur)
        s_rd, s_wr = stages[RD], stages[WR]
        prod_shape = signed(W + pl.input_bits + 1) if multibit else signed(W)
        slot_prods = []
        for e in range(E):
            sfx = "" if E == 1 else f"_{e}"
            val_name = "val" if E == 1 else f"val{e}"
            prod = [Signal(prod_shape, name=f"prod{p}{sfx}") for p in range(P)]
            for p in range(P):
                w = w_words[e][p * W:(p + 1) * W].as_signed()
                if multibit:
                    # two cycles (operand and product registers; on ECP5 a multiplier block's),
                    # then a fabric register: no adder starts at a multiplier block's output; the
                    # bank multiplexer's output is registered before the block
                    x = stages[WB][val_name]
                    if banks > 1:
                        w_reg = Signal(signed(W), name=f"w{p}{sfx}")
                        m.d.sync += w_reg.eq(w)
                        w, x = w_reg, stages[WB + 1][val_name]
                    m.d.sync += prod[p].eq(registered_product(m, w, x, platform, name=f"prod{p}{sfx}_product"))
                elif E == 1:
                    m.d.sync += prod[p].eq(w)
                else:
                    # an unused slot (value 0) adds nothing
                    m.d.sync += prod[p].eq(Mux(stages[WB][val_name], w, 0))
            slot_prods.append(prod)
        if E == 1:
            prod = slot_prods[0]
        else:
            # the adder tree of the E slots' words, registered (stage WR)
            prod = [Signal(signed(prod_shape.width + ceil_log2(E)), name=f"tree{p}") for p in range(P)]
            for p in range(P):
                m.d.sync += prod[p].eq(_tree_sum([slot_prods[e][p] for e in range(E)]))

        own_w = None
        if own:
            # the own-event ROM word is there at stage 1; registered on to stage WR
            own_w = e_rp.data
            for k in range(2, WR + 1):
                reg = Signal(data.ArrayLayout(pl.event_layout, P), name=f"own_w{k}")
                m.d.sync += reg.eq(own_w)
                own_w = reg

        # own events: the layer's spikes of step t - 1 (kept in G words of P bits) scanned group by
        # group during ACC, each set bit an event; moving to the next word takes one cycle in which
        # nothing else is issued, so the scan costs exactly G cycles besides the events
        scan_done = Const(1)
        own_event = Const(0)
        if own:
            prev = Array(Signal(P, name=f"prev{g}") for g in range(G))
            scan_g = Signal(range(G + 1))
            scan_mask = Signal(P)
            scan_lane = Signal(range(P))
            scan_bit = Signal(P)
            for i in reversed(range(P)):
                with m.If(scan_mask[i]):
                    m.d.comb += [scan_lane.eq(i), scan_bit.eq(1 << i)]
            scan_done = scan_g == G
            own_event = ~scan_done & scan_mask.any()
            own_row = Signal(range(N * G))
            m.d.comb += own_row.eq(scan_g * P + scan_lane)

        unit_latency = pl.unit_latency
        out_valid = Signal()
        out_last = Signal()
        out_g = Signal(range(G))

        i_ev = self.i_ev
        ev_marker = i_ev.valid & i_ev.payload.end_step
        if has_rec:
            i_rec = self.i_rec
            rec_event = i_rec.valid & ~i_rec.payload.end_step
            rec_marker = i_rec.valid & i_rec.payload.end_step
            start_ok = self.i_step_ready & self.i_rec_ready & self.o_space_ok
        else:
            rec_event = Const(0)
            rec_marker = Const(1)
            start_ok = self.i_step_ready & self.o_space_ok
        in_event = i_ev.valid & ~i_ev.payload.end_step
        # the markers of the step taken so far (each stream's marker is taken as soon as it is at
        # the head; the update starts once both are taken)
        rec_done = Signal() if has_rec else Const(1)
        ev_done = Signal()
        # both streams are read in the same cycles; when both hand over an event, the recurrent
        # one is issued and the input one waits in ``pend`` (issued next, while neither is read)
        pend_valid = Signal() if has_rec else Const(0)
        pend = Signal.like(i_ev.payload, name="pend") if has_rec else None

        def issue_update(g):
            m.d.comb += [iss_valid.eq(1), iss_upd.eq(1), iss_g.eq(g), iss_last.eq(g == G - 1)]

        # the control states, one-hot: each state's conditions read one register bit, and each
        # state bit's next value is a small function of its own (timing closure on iCE40)
        state_names = ("INIT", "IDLE", "START", "ACC", "UPDATE", "DRAIN", "DONE")
        in_state = {name: Signal(init=name == "INIT", name=f"in_{name.lower()}") for name in state_names}

        def goto(here, there):
            m.d.sync += [in_state[here].eq(0), in_state[there].eq(1)]

        unconditional = []
        # Both streams' ready come from engine registers only: the state (ACC, not busy with a
        # row, nothing pending) and the stream's marker flag. No ready depends on a stream's
        # valid or payload or on the take decision, so no path runs from one stream's register
        # through the engine into a stream's register (timing closure on iCE40). An event is
        # issued in every cycle in which one is there (from pend or a stream), as before.
        free = in_state["ACC"] & ~busy & ~pend_valid
        if has_rec:
            m.d.comb += self.i_rec.ready.eq(free & ~rec_done)
        m.d.comb += i_ev.ready.eq(free & ~ev_done)
        with m.If(in_state["INIT"]):
            m.d.comb += [acc_wp.addr.eq(init_g), acc_wp.data.eq(0), acc_wp.en.eq(1)]
            m.d.sync += init_g.eq(init_g + 1)
            with m.If(init_g == G - 1):
                m.d.sync += init_g.eq(0)
                goto("INIT", "IDLE")
        # DONE's marker, step_done and clear leave through output registers: the first IDLE cycle
        # after a step lets them reach the queues, so that the room and replay tests see them
        outputs_pending = Signal()
        with m.If(in_state["IDLE"]):
            m.d.sync += outputs_pending.eq(0)
            with m.If(start_ok & ~outputs_pending):
                goto("IDLE", "START")
        with m.If(in_state["START"]):
            # the input streams leave their queues through registers (SkidBuffer, SpikeDecoder,
            # up to two cycles): this cycle lets a step that was just completed reach them
            m.d.sync += cycles.eq(1)
            if own:
                m.d.sync += [scan_g.eq(0), scan_mask.eq(Mux(first, 0, prev[0]))]
            goto("START", "ACC")
        with m.If(in_state["ACC"]):
            m.d.sync += cycles.eq(cycles + 1)

            with m.If(busy):
                m.d.comb += [iss_valid.eq(1), iss_g.eq(g_cnt), iss_rec.eq(cur_rec), iss_own.eq(cur_own)]
                for e in range(E):
                    m.d.comb += [iss_addr[e].eq(next_addr[e]), iss_val[e].eq(cur_val[e])]
                    m.d.sync += next_addr[e].eq(next_addr[e] + 1)
                m.d.sync += g_cnt.eq(g_cnt + 1)
                with m.If(g_cnt == G - 1):
                    m.d.sync += busy.eq(0)
            with m.Else():
                # each source's row base (row * G) is computed from its own registers, in
                # parallel with the decision which source to take, which then only selects
                # (kept signals: otherwise Yosys moves the selection back in front of the
                # arithmetic, opt_share); base_next = base + 1, the next word's address
                base = [Signal(range(addr_rows * G), name=f"base{e}") for e in range(E)]
                base_next = [Signal(range(addr_rows * G + 1), name=f"base_next{e}") for e in range(E)]

                def select_base(e, row_base, name):
                    first_word = Signal(range(addr_rows * G), name=f"{name}{e}", attrs={"keep": 1})
                    next_word = Signal(range(addr_rows * G + 1), name=f"{name}_next{e}", attrs={"keep": 1})
                    # computed unconditionally (after the control below), selected here
                    unconditional.extend([first_word.eq(row_base), next_word.eq(row_base + 1)])
                    m.d.comb += [base[e].eq(first_word), base_next[e].eq(next_word)]
                take = Signal()
                take_rec = Signal()
                take_val = [Signal(val_shape, name=f"take_val{e}") for e in range(E)]
                take_own = Signal()
                # what the streams hand over in this cycle (their ready is high: ACC, not busy,
                # nothing pending, marker not yet taken)
                rec_event_taken = ~pend_valid & ~rec_done & rec_event
                ev_event_taken = ~pend_valid & ~ev_done & in_event
                rec_marker_taken = ~pend_valid & ~rec_done & rec_marker
                ev_marker_taken = ~pend_valid & ~ev_done & ev_marker
                if has_rec:
                    with m.If(rec_marker_taken):
                        m.d.sync += rec_done.eq(1)
                with m.If(ev_marker_taken):
                    m.d.sync += [ev_done.eq(1), end_seq.eq(i_ev.payload.end_seq)]

                def take_input(payload, name):
                    m.d.comb += take.eq(1)
                    for e, (index, value, used) in enumerate(self._slots(payload, pl)):
                        select_base(e, index * G, name)
                        if multibit:
                            m.d.comb += take_val[e].eq(Mux(used, value, 0) if E > 1 else value)
                        else:
                            m.d.comb += take_val[e].eq(used)
                if has_rec:
                    with m.If(pend_valid):
                        take_input(pend, "pend_base")
                        m.d.sync += pend_valid.eq(0)
                    with m.Elif(rec_event_taken):
                        m.d.comb += [take.eq(1), take_rec.eq(1)]
                        for e, (index, _, used) in enumerate(self._slots(self.i_rec.payload, pl)):
                            select_base(e, index * G + pl.fan_in * G, "rec_base")
                            m.d.comb += take_val[e].eq(used)
                        with m.If(ev_event_taken):
                            m.d.sync += [pend.eq(i_ev.payload), pend_valid.eq(1)]
                with m.Elif(ev_event_taken) if has_rec else m.If(ev_event_taken):
                    take_input(i_ev.payload, "in_base")
                if own:
                    with m.Elif(own_event):
                        m.d.comb += [take.eq(1), take_own.eq(1)]
                        select_base(0, own_row * G, "own_base")
                        m.d.sync += scan_mask.eq(scan_mask & ~scan_bit)
                    with m.Elif(~scan_done):
                        # the group's word is exhausted: one cycle to load the next one
                        nxt_g = scan_g + 1
                        m.d.sync += [scan_g.eq(nxt_g),
                                     scan_mask.eq(Mux(first | (nxt_g >= G), 0, prev[nxt_g]))]
                with m.Elif((ev_done | ev_marker_taken) & (rec_done | rec_marker_taken) & scan_done):
                    # both markers taken (now or before): the step's events are all issued;
                    # group 0's update goes out in this same cycle
                    if has_rec:
                        m.d.sync += rec_done.eq(0)
                    m.d.sync += ev_done.eq(0)
                    issue_update(0)
                    if G > 1:
                        m.d.sync += upd_g.eq(1)
                        goto("ACC", "UPDATE")
                    else:
                        goto("ACC", "DRAIN")
                with m.If(take):
                    m.d.comb += [iss_valid.eq(1), iss_g.eq(0), iss_rec.eq(take_rec), iss_own.eq(take_own)]
                    m.d.sync += [cur_rec.eq(take_rec), cur_own.eq(take_own)]
                    for e in range(E):
                        m.d.comb += [iss_addr[e].eq(base[e]), iss_val[e].eq(take_val[e])]
                        m.d.sync += [next_addr[e].eq(base_next[e]), cur_val[e].eq(take_val[e])]
                    if G > 1:
                        m.d.sync += [busy.eq(1), g_cnt.eq(1)]
        with m.If(in_state["UPDATE"]):
            m.d.sync += cycles.eq(cycles + 1)
            issue_update(upd_g)
            m.d.sync += upd_g.eq(upd_g + 1)
            with m.If(upd_g == G - 1):
                m.d.sync += upd_g.eq(0)
                goto("UPDATE", "DRAIN")
        with m.If(in_state["DRAIN"]):
            m.d.sync += cycles.eq(cycles + 1)
            with m.If(out_valid & out_last):
                goto("DRAIN", "DONE")
        # the output word and the ring's write before their registers (a group's word, or the
        # marker and step_done in DONE): the units are spread over the chip, and their spikes
        # reach the queues' write logic only through these registers
        word_valid, word = Signal(), Signal.like(self.o_words.payload, name="word")
        m.d.sync += [self.o_words.valid.eq(word_valid), self.o_words.payload.eq(word)]
        if has_rec:
            ring_write = {name: Signal.like(getattr(self.ring, name), name=f"ring_{name}")
                          for name in ("valid", "group", "mask", "step_done", "clear")}
            m.d.sync += [getattr(self.ring, name).eq(value) for name, value in ring_write.items()]
        with m.If(in_state["DONE"]):
            m.d.comb += [
                self.dbg_valid.eq(1),
                word_valid.eq(1),
                word.end_step.eq(1),
                word.end_seq.eq(end_seq),
            ]
            if has_rec:
                m.d.comb += [ring_write["step_done"].eq(1), ring_write["clear"].eq(end_seq)]
            m.d.sync += [first.eq(end_seq), outputs_pending.eq(1)]
            goto("DONE", "IDLE")
        m.d.comb += unconditional
        m.d.comb += self.dbg_cycles.eq(cycles)

        # ---- stage RD: accumulator/state/param read ------------------------------------------
        # The accumulator is read a stage earlier (address at RD - 1) and its word registered at
        # RD (acc_op), so that the read-modify-write at WR starts at a register, not at the RAM's
        # read data (a LUT RAM: its read is combinational from the address register). The read
        # is transparent for the write of the op two stages ahead; the op one stage ahead (at WR
        # while this one is at RD) writes too late for it, so its write data are forwarded. Both
        # can be the same group only with G <= 2 (forwarding: G = 1); otherwise the RAM's word
        # goes straight into acc_op (no multiplexer after the LUT RAM's read).
        wr_rec, wr_valid, wr_upd, wr_g, wr_last = s_wr["rec"], s_wr["valid"], s_wr["upd"], s_wr["g"], s_wr["last"]
        m.d.comb += [acc_rp.addr.eq(stages[RD - 1]["g"]), st_rp.addr.eq(s_rd["g"])]
        if p_rp is not None:
            m.d.comb += p_rp.addr.eq(s_rd["g"])
        acc_op = Signal(data.ArrayLayout(pl.acc_layout, P), name="acc_op")
        if G == 1:
            m.d.sync += acc_op.eq(Mux(wr_valid, acc_wp.data.as_value(), acc_rp.data.as_value()))
        else:
            m.d.sync += acc_op.eq(acc_rp.data)

        # ---- stage WR: accumulate, or update through the neuron units -------------------------
        wr_own = s_wr["own"]
        event_names = {name for name, _ in pl.event_fields}
        new_acc = []
        unit_acc = []
        # the weight exponents (CONTRACT.md 3.1): w << e is wiring (e zero bits below the product)
        ff_term = [prod[p] << pl.input_exp for p in range(P)]
        rec_term = [prod[p] << pl.recurrent_exp for p in range(P)]
        for p in range(P):
            parts = acc_op[p]
            lane_new = {}
            for name, _ in pl.acc_fields:
                if name in event_names:
                    lane_new[name] = Mux(wr_own, parts[name] + own_w[p][name], parts[name])
                elif name == "sum":
                    lane_new[name] = Mux(wr_own, parts.sum, parts.sum + Mux(wr_rec, rec_term[p], ff_term[p]))
                elif name == "ff":
                    lane_new[name] = Mux(wr_rec | wr_own, parts.ff, parts.ff + ff_term[p])
                else:
                    lane_new[name] = Mux(wr_rec, parts.rec + rec_term[p], parts.rec)
            new_acc.append(lane_new)
            bias = self._param_value(pl, p_rp, p, "bias")
            if pl.split:
                total = (parts.ff >> pl.input_shift) + bias + parts.rec
            elif pl.input_shift:
                total = (parts.sum >> pl.input_shift) + bias
            else:
                total = parts.sum + bias
            unit_acc.append(total)
        with m.If(wr_valid):
            m.d.comb += [acc_wp.addr.eq(wr_g), acc_wp.en.eq(1)]
            with m.If(~wr_upd):
                for p in range(P):
                    for name, value in new_acc[p].items():
                        m.d.comb += acc_wp.data[p][name].eq(value)
            # an update clears the group's accumulators (data stays 0)

        # stage UI = WR + 1 registers the unit inputs (the RAM read data after the sum and the
        # first-step zeroing), so that no multiplier or adder of a unit starts at a RAM output
        kind = pl.unit_kind
        units = []
        for p in range(P):
            # section 3.5: the first step of a sequence reads an all-zero state (a copy of
            # ``first`` per lane, kept by synthesis: the lanes' units are spread over the chip)
            first_lane = Signal(init=1, name=f"first_lane{p}", attrs={"keep": 1})
            with m.If(in_state["DONE"]):
                m.d.sync += first_lane.eq(end_seq)
            state = Signal(state_layout, name=f"ui{p}_state")
            m.d.sync += state.eq(Mux(first_lane, 0, st_rp.data[p].as_value()))
            unit = kind.unit(pl)
            total = Signal(unit.acc.shape(), name=f"ui{p}_acc")
            m.d.sync += total.eq(unit_acc[p])
            kind.connect(m, unit, state, lambda name, p=p: self._unit_param(m, pl, p_rp, p, name), pl)
            m.d.comb += unit.acc.eq(total)
            for name in event_names:
                ev = Signal.like(acc_op[p][name], name=f"ui{p}_{name}")
                m.d.sync += ev.eq(acc_op[p][name])
                m.d.comb += getattr(unit, name).eq(ev)
            m.submodules[f"unit{p}"] = unit
            units.append(unit)

        # delay line from stage WR to the unit outputs (the UI register, then the unit)
        dl_valid, dl_last, dl_g = wr_valid & wr_upd, wr_last, wr_g
        for i in range(1 + unit_latency):
            v, l, g = Signal(name=f"dl{i}_valid"), Signal(name=f"dl{i}_last"), Signal(range(G), name=f"dl{i}_g")
            m.d.sync += [v.eq(dl_valid), l.eq(dl_last), g.eq(dl_g)]
            dl_valid, dl_last, dl_g = v, l, g
        m.d.comb += [out_valid.eq(dl_valid), out_last.eq(dl_last), out_g.eq(dl_g)]

        # ---- output stage: state write, spike word ---------------------------------------------
        spikes = Signal(P)
        raw = Cat(*[u.spike for u in units])
        tail = N - (G - 1) * P                 # valid lanes of the last group
        if tail < P:
            m.d.comb += spikes.eq(Mux(out_g == G - 1, raw & ((1 << tail) - 1), raw))
        else:
            m.d.comb += spikes.eq(raw)
        for p, u in enumerate(units):
            for name, value in kind.next_state(u, spikes[p], pl).items():
                m.d.comb += st_wp.data[p][name].eq(value)
        m.d.comb += [st_wp.addr.eq(out_g), st_wp.en.eq(out_valid)]
        if own:
            with m.If(out_valid):
                m.d.sync += prev[out_g].eq(spikes)
        with m.If(out_valid):
            m.d.comb += [
                word_valid.eq(spikes.any()),
                word.group.eq(out_g),
                word.mask.eq(spikes),
            ]
        if has_rec:
            m.d.comb += [
                ring_write["valid"].eq(out_valid),
                ring_write["group"].eq(out_g),
                ring_write["mask"].eq(spikes),
            ]
        shift = Signal(G * P)
        with m.If(out_valid):
            m.d.sync += shift.eq(Cat(shift[P:], spikes) if G > 1 else spikes)
        m.d.comb += self.dbg_spikes.eq(shift[:N])
        return m

    @staticmethod
    def _slots(payload, pl: LayerPlan):
        """(index, value or None, used) of every event slot of an event word or bundle."""
        value = getattr(payload, "value", None) if pl.input_kind != "spike" else None
        if pl.events == 1:
            return [(payload.index, value, Const(1))]
        return [(payload.index[e], None if value is None else value[e], e < payload.count)
                for e in range(pl.events)]

    @classmethod
    def _unit_param(cls, m, pl: LayerPlan, p_rp, lane: int, name: str):
        """A neuron constant of ``lane`` at stage UI: registered when it comes from the RAM."""
        value = cls._param_value(pl, p_rp, lane, name)
        if not pl.param(name).in_memory:
            return value
        reg = Signal.like(value, name=f"ui{lane}_{name}")
        m.d.sync += reg.eq(value)
        return reg

    @staticmethod
    def _param_value(pl: LayerPlan, p_rp, lane: int, name: str):
        """A neuron constant of ``lane`` for the group at stage WR (a constant when uniform)."""
        f = pl.param(name)
        if not f.in_memory:
            return Const(f.uniform, signed(f.width) if f.signed else unsigned(f.width))
        return p_rp.data[lane][name]
