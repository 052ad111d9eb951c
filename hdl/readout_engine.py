"""The readout (contract section 4): any readout kind with hardware (hdl.readouts), argmax."""
from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ._checks import reject
from .arith import or_all
from .plan import ReadoutPlan
from .registered_rom import RegisteredROM
from .stream import event_signature, readout_layout

__all__ = ["ReadoutEngine"]


class ReadoutEngine(wiring.Component):
    """Readout of M classes from the last hidden layer's spikes.

    Per step:

    1. ``ACC``: each spike event j (one per cycle) reads column j of ``w`` (one ROM word of
       M * W bits) and adds it to M accumulator registers (all classes in parallel; the ROM read,
       its output register and a fabric register are the pipeline stages: no adder starts at a
       block RAM). The accumulators start each step at ``bias_c`` (their reset value, reloaded
       in ``UPDATE``), so the update adds no bias. ``DRAIN`` and ``SETTLE``: two cycles after the
       marker, for the last event's word to reach them.
    2. ``UPDATE``: one class per cycle, c = 0 .. M-1, the readout kind's update
       (``hdl.readouts``): ``m_c = sat_R(m_c + acc_c)`` (``sum``), ``sat_R(decay(m_c, alpha_c) +
       acc_c)`` (``leaky``) or the ALIF output neuron with ``m_c = u_c`` (``alif``). ``m``,
       ``acc``, the kind's per-class state and its per-class constants are rotating register
       chains: one update unit serves all classes, without wide multiplexers. The part of a
       kind's update that does not need the sum (its ``prepare``, e.g. ``leaky``'s
       ``decay(m_c, alpha_c)``) is computed ahead from the chains' later positions (two cycles
       ahead; four when the kind registers its multiplier itself, with one more cycle, ``PREP``,
       after ``ACC``: class 0's operands are taken in ``DRAIN`` or ``ACC``) and registered, so no
       path holds the multiplier and the adders, no logic sits in front of a multiplier block and
       no adder starts at one.
       The update itself takes two cycles (the kind's ``split_update``): the sums are registered,
       and the saturation of class c enters the chains' last position one cycle later (the chains
       of ``m`` and the kind's state carry one stale slot meanwhile, which leaves them at the
       front in ``FINISH``: one more shift of those chains for the last class).
    3. ``FINISH``, ``ARGMAX``: the running argmax runs two cycles behind the update (strictly
       greater replaces, so ties go to the lowest class); these cycles let it finish.
    4. ``OUT``: load the output word (``m`` of all classes, the argmax, ``end_seq``) once the
       previous one has left (``o.valid`` low: a word taken in cycle n frees the output in cycle
       n + 1); at the end of a sequence ``m`` is cleared.

    Cycles per step: events + 1 (marker) + 2 (``DRAIN``, ``SETTLE``; 3 with ``PREP``) + M + 3, plus any wait
    for ``o.ready``. The engine
    consumes events as they arrive (no step-level start condition).

    Parameters
    ----------
    plan : ReadoutPlan

    Members
    -------
    i_ev : ``In(event_signature(index_bits))``
        Spike events (neuron addresses) of the last hidden layer and step markers.
    o : ``Out(stream.Signature(readout_layout(M, R)))``
        One word per step, held until transferred.
    """

    def __init__(self, plan: ReadoutPlan):
        if not isinstance(plan, ReadoutPlan):
            raise reject(self, TypeError(f"ReadoutEngine needs a ReadoutPlan, not {plan!r}"))
        self._plan = plan
        super().__init__({
            "i_ev": In(event_signature(plan.index_bits)),
            "o": Out(stream.Signature(readout_layout(plan.classes, plan.readout_bits))),
        })

    @property
    def plan(self) -> ReadoutPlan:
        return self._plan

    def elaborate(self, platform):
        m = Module()
        pl = self._plan
        M, W, R = pl.classes, pl.weight_bits, pl.readout_bits
        # the ROM's read data are registered (s2: a RegisteredROM, on ECP5 the block RAM's own
        # output register) and again in the fabric (s3) before the adders: no adder starts at a
        # block RAM (the routing from it is long)
        m.submodules.weights = wrom = RegisteredROM(width=M * W, depth=pl.neurons, init=pl.weight_words)
        m.d.comb += wrom.addr[0].eq(self.i_ev.payload.index)

        # acc_c starts every step at bias_c (its reset value, reloaded when class c leaves the chain).
        # |bias_c + sum| < 2**(sum_bits - 1) + 2**(bias_bits - 1) with bias_bits the signed width of
        # the largest |bias_c| (not R): the accumulators, their adders and their rotation are as
        # narrow as the biases and the weights allow (the update sign-extends them).
        bias = pl.bias.values
        bias_bits = max(abs(int(b)) for b in bias).bit_length() + 1
        acc_shape = signed(max(pl.sum_bits, bias_bits) + 1)
        acc = [Signal(acc_shape, name=f"acc{c}", init=bias[c]) for c in range(M)]
        mem = [Signal(signed(R), name=f"m{c}") for c in range(M)]
        kind = pl.readout_kind
        # per-class constants: a rotating chain when they differ, else a constant
        chains = {}
        for f in pl.params:
            shape = signed(f.width) if f.signed else unsigned(f.width)
            if f.in_memory:
                chains[f.name] = [Signal(shape, name=f"{f.name}{c}", init=f.values[c]) for c in range(M)]
            else:
                chains[f.name] = [Const(f.uniform, shape)]
        extra = {name: [Signal(shape, name=f"{name}{c}") for c in range(M)]
                 for name, shape in kind.state_shapes(pl).items()}
        # one instance of the kind's prepare(), whose results for class c are needed in UPDATE
        # cycle c, ``lead`` cycles after its operands are taken from the chains. The operands come
        # from the chains' position that holds that class then: before UPDATE the chains stand
        # still (class k at position k), and in UPDATE cycle c they have shifted c times (class
        # c + lead at position lead; a class's old value leaves only when it is updated). The
        # operands are registers loaded from the chains, so no multiplexer sits in front of
        # prepare's multiplier (timing closure).
        # * A kind that computes prepare() combinationally: its results are registered (in SETTLE
        #   and UPDATE): lead 2.
        # * A kind that registers its own results (prepare_registers: hdl.arith.registered_product,
        #   whose operands are registered again, on ECP5 in the multiplier block, far from the
        #   chains: no logic sits in front of it) and whose product is registered once more in the
        #   fabric, so that no adder starts at a multiplier block's output (both routes were SHD
        #   critical paths): lead 4, with one more cycle (PREP) between ACC and DRAIN; the first
        #   class's operands are taken in ACC (ACC lasts at least the marker's cycle and the
        #   chains stand still in it).
        lead = 4 if kind.prepare_registers else 2
        operands = []

        def pick(chain):
            if len(chain) == 1:
                return chain[0]
            reg = Signal.like(chain[0], name=f"prep_in_{chain[0].name[:-1]}")
            operands.append((reg, chain))
            return reg

        # the chains' position each state loads the operands from, chosen by a one-hot register
        # that the state before sets (no state decoding in front of the operand registers, which
        # sit next to the multiplier block: a critical path of the SHD core)
        position = {"ACC": 0, "DRAIN": lead - 2, "SETTLE": lead - 1, "UPDATE": lead}
        if lead == 4:
            position["PREP"] = 1
        positions = sorted(set(position.values()))
        load_at = Signal(len(positions), init=1 << positions.index(position["ACC"]), name="prep_position")

        # registers that say "the state is UPDATE / FINISH / OUT", set by the state before: they
        # enable the wide chain and output registers (hundreds of flip-flops), so no state
        # decoding sits in front of those enables (an SHD critical path)
        now = {name: Signal(name=f"now_{name.lower()}") for name in ("UPDATE", "FINISH", "OUT")}

        def next_state(name):
            """``m.next = name``, the operands' position for that state and the state flags."""
            m.next = name
            m.d.sync += load_at.eq(1 << positions.index(position[name]) if name in position else 0)
            m.d.sync += [flag.eq(name == state) for state, flag in now.items()]

        prep_now = kind.prepare(m, pick(mem), {k: pick(v) for k, v in extra.items()},
                                {k: pick(v) for k, v in chains.items()}, pl, platform)
        for reg, chain in operands:
            m.d.sync += reg.eq(or_all([Mux(load_at[i], chain[k % M], 0) for i, k in enumerate(positions)]))
        if kind.prepare_registers:      # registered by the kind, then in the fabric, every cycle
            prepared = {name: Signal.like(v, name=f"prep_{name}") for name, v in prep_now.items()}
            m.d.sync += [prepared[name].eq(v) for name, v in prep_now.items()]
            prep_now = {}
        else:
            prepared = {name: Signal.like(v, name=f"prep_{name}") for name, v in prep_now.items()}
        s1_valid = Signal()
        cls = Signal(range(M))
        new = Signal(signed(R))
        new_valid = Signal()
        new_cls = Signal(range(M))
        best = Signal(signed(R))
        best_idx = Signal(range(M))
        end_seq = Signal()

        s2_valid, s3_valid = Signal(), Signal()
        s3_word = Signal.like(wrom.data[0], name="s3_word")   # the ROM word in a fabric register
        m.d.sync += [s1_valid.eq(0), s2_valid.eq(s1_valid), s3_valid.eq(s2_valid), s3_word.eq(wrom.data[0])]
        with m.If(s3_valid):
            for c in range(M):
                m.d.sync += acc[c].eq(acc[c] + (s3_word[c * W:(c + 1) * W].as_signed() << pl.weight_exp))

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        # the update's second cycle: the registered sums of the class updated in the cycle before
        # (pend_*) are finished; its value and state enter the chains' last position
        sums, finish = kind.split_update(m, mem[0], {k: v[0] for k, v in extra.items()}, acc[0],
                                         {k: v[0] for k, v in chains.items()}, pl,
                                         prepared=prepared if prepared else None)
        pend = {name: Signal.like(v, name=f"pend_{name}") for name, v in sums.items()}
        pend_valid = Signal()
        pend_cls = Signal(range(M))
        fin_value, fin_extra = finish(pend)
        value = Signal(signed(R))
        m.d.comb += value.eq(fin_value)
        m.d.sync += pend_valid.eq(0)

        def write_back():
            m.d.sync += [mem[c].eq(mem[c + 1]) for c in range(M - 1)]
            m.d.sync += mem[M - 1].eq(value)
            for name, chain in extra.items():
                m.d.sync += [chain[c].eq(chain[c + 1]) for c in range(M - 1)]
                m.d.sync += chain[M - 1].eq(fin_extra[name])

        # argmax, one cycle behind the finished value
        # (its enable is one LUT after one carry chain: [new > best] is the sign of best - new, one
        # bit wider, and whether new is class 0 comes registered beside it)
        new_first = Signal()
        m.d.sync += [new.eq(value), new_valid.eq(pend_valid), new_cls.eq(pend_cls), new_first.eq(pend_cls == 0)]
        beaten = Signal(signed(R + 1))
        m.d.comb += beaten.eq(best - new)
        with m.If(new_valid & (new_first | beaten[-1])):
            m.d.sync += [best.eq(new), best_idx.eq(new_cls)]

        with m.FSM(init="ACC"):
            with m.State("ACC"):
                m.d.comb += self.i_ev.ready.eq(1)
                with m.If(self.i_ev.valid):
                    with m.If(self.i_ev.payload.end_step):
                        m.d.sync += [end_seq.eq(self.i_ev.payload.end_seq), cls.eq(0)]
                        next_state("PREP" if lead == 4 else "DRAIN")
                    with m.Else():
                        m.d.sync += s1_valid.eq(1)
            if lead == 4:
                with m.State("PREP"):
                    next_state("DRAIN")
            with m.State("DRAIN"):
                next_state("SETTLE")
            with m.State("SETTLE"):
                next_state("UPDATE")           # the last event's word reaches the accumulators
                m.d.sync += [reg.eq(v) for reg, v in zip(prepared.values(), prep_now.values())]
            with m.State("UPDATE"):
                with m.If(cls == M - 1):
                    next_state("FINISH")
            with m.State("FINISH"):
                next_state("ARGMAX")
            with m.State("ARGMAX"):
                next_state("OUT")
            with m.State("OUT"):
                with m.If(~self.o.valid):
                    next_state("ACC")
        with m.If(now["UPDATE"]):
            if prepared:
                # the next class's part without the sum, registered for the next cycle
                m.d.sync += [reg.eq(v) for reg, v in zip(prepared.values(), prep_now.values())]
            # the first cycle of class cls's update (its sums); the second cycle of the class
            # before (write_back: the stale slot in the first cycle)
            m.d.sync += [reg.eq(v) for reg, v in zip(pend.values(), sums.values())]
            m.d.sync += [pend_valid.eq(1), pend_cls.eq(cls)]
            write_back()
            m.d.sync += [acc[c].eq(acc[c + 1]) for c in range(M - 1)]
            for chain in chains.values():
                if len(chain) > 1:
                    m.d.sync += [chain[c].eq(chain[c + 1]) for c in range(M - 1)]
                    m.d.sync += chain[M - 1].eq(chain[0])
            bias_of = Array([Const(b, acc_shape) for b in bias])[cls] if len(set(bias)) > 1 else bias[0]
            m.d.sync += [acc[M - 1].eq(bias_of), cls.eq(cls + 1)]
        with m.If(now["FINISH"]):
            write_back()                    # the last class; the stale slot leaves the chains
        # OUT: only registers decide (the consumer's ready reaches no wide register enable): the
        # previous word left at the latest in the cycle before
        with m.If(now["OUT"] & ~self.o.valid):
            m.d.sync += [
                self.o.valid.eq(1),
                self.o.payload.readout.eq(Cat(*mem)),
                self.o.payload.prediction.eq(best_idx),
                self.o.payload.end_seq.eq(end_seq),
            ]
            with m.If(end_seq):
                m.d.sync += [x.eq(0) for x in mem]
                m.d.sync += [x.eq(0) for chain in extra.values() for x in chain]
        return m
