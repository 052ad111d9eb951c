"""LIF: the update unit (contract section 3.3) and its hardware definition."""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from skipcore.golden.kinds.lif import LIFParams, LIFState, lif_step

from .._checks import check_positive, reject
from ..arith import above_max, registered_decay, saturate
from . import SHIFT_DECAY_BITS, ParamSource, UnitKind, edge_values, register

_SHIFT_BITS = SHIFT_DECAY_BITS


class LIFUnit(wiring.Component):
    """LIF update of one neuron (ASRC-SNN convention, contract section 3.3).

    ::

        H      = sat_S(decay(V, lam) + acc)
        spike  = H >= theta
        V_next = H - theta * spike   (soft)   |   H * (1 - spike)   (hard)

    Parameters
    ----------
    acc_bits, state_bits, decay_bits : int
        Widths A, S, D of the contract.
    decay_mode : ``"mult"`` | ``"shift"``
    reset : ``"soft"`` | ``"hard"``

    Members
    -------
    acc : ``In(signed(acc_bits))``
        ``(ff >> s) + bias + rec`` of this step.
    v : ``In(signed(state_bits))``
        Membrane V before the step (0 on the first step of a sequence).
    decay : ``In(unsigned(decay_bits))`` (mult) or ``In(unsigned(5))`` (shift)
    threshold : ``In(signed(state_bits))``
        theta >= 1.
    spike : ``Out(1)``
    v_next : ``Out(signed(state_bits))``

    Latency 4 cycles, throughput one neuron per cycle: (1, 2) the decay (its operands in
    registers, then the product: :func:`hdl.arith.registered_decay`), beside it ``acc`` and
    ``theta`` registered, then ``acc - theta`` and ``smax - theta``; (3) ``x = decay + acc`` and
    ``x - theta`` side by side (the comparison ``x >= theta`` is the sign of the second sum);
    (4) the spike and the saturated, reset membrane (comparisons with constants and multiplexers
    only). No stage holds two carry chains in series.
    """

    latency = 4

    def __init__(self, *, acc_bits: int, state_bits: int, decay_bits: int, decay_mode: str, reset: str):
        check_positive(self, "LIFUnit", acc_bits=acc_bits, state_bits=state_bits, decay_bits=decay_bits)
        if decay_mode not in ("mult", "shift"):
            raise reject(self, ValueError(f"LIFUnit decay_mode must be 'mult' or 'shift', not {decay_mode!r}"))
        if reset not in ("soft", "hard"):
            raise reject(self, ValueError(f"LIFUnit reset must be 'soft' or 'hard', not {reset!r}"))
        self._a, self._s, self._d = acc_bits, state_bits, decay_bits
        self._mode, self._reset = decay_mode, reset
        super().__init__({
            "acc": In(signed(acc_bits)),
            "v": In(signed(state_bits)),
            "decay": In(unsigned(decay_bits if decay_mode == "mult" else _SHIFT_BITS)),
            "threshold": In(signed(state_bits)),
            "spike": Out(1),
            "v_next": Out(signed(state_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        S, A = self._s, self._a
        smax = (1 << (S - 1)) - 1
        # H = sat_S(x) with x = decay(V) + acc. Since 1 <= theta <= 2**(S-1) - 1, [H >= theta] equals
        # [x >= theta], and H - theta equals x - theta unless x saturates high. x - theta is summed
        # beside x (from acc - theta of stage 1), so [x >= theta] is its sign: no stage holds two
        # carry chains in series.
        # stages 1 and 2: the decay; beside it acc and theta registered, then the differences
        dv = Signal(signed(S + 1))
        acc0, theta0 = Signal(signed(A)), Signal(signed(S))
        acc = Signal(signed(A))
        acc_m = Signal(signed(max(A, S) + 1))       # acc - theta
        top = Signal(signed(S + 1))                  # smax - theta
        m.d.comb += dv.eq(registered_decay(m, self.v, self.decay, self._d, self._mode, platform, name="dv"))
        m.d.sync += [acc0.eq(self.acc), theta0.eq(self.threshold)]
        m.d.sync += [
            acc.eq(acc0),
            acc_m.eq(acc0 - theta0),
            top.eq(smax - theta0),
        ]
        # stage 3
        x = Signal(signed(max(S + 1, A) + 1))
        x_m = Signal(signed(max(S + 1, A) + 2))     # x - theta
        top2 = Signal(signed(S + 1))
        m.d.sync += [x.eq(dv + acc), x_m.eq(dv + acc_m), top2.eq(top)]
        # stage 4: comparisons with constants and multiplexers
        fire = Signal()
        m.d.comb += fire.eq(x_m >= 0)
        h = saturate(x, S)
        if self._reset == "soft":
            nxt = Mux(fire, Mux(above_max(x, S), top2, x_m), h)
        else:
            nxt = Mux(fire, 0, h)
        m.d.sync += [self.spike.eq(fire), self.v_next.eq(nxt)]
        return m


class LIFKind(UnitKind):
    """LIF on the hardware side: state ``v``; constants ``threshold``, ``decay``."""

    name = "lif"
    Unit = LIFUnit

    def unit_args(self, plan):
        return dict(acc_bits=plan.acc_bits, state_bits=plan.state_bits, decay_bits=plan.decay_bits,
                    decay_mode=plan.decay_mode, reset=plan.reset)

    def state_layout(self, plan):
        return data.StructLayout({"v": signed(plan.state_bits)})

    def params(self, art, layer):
        w = art.widths
        return [ParamSource("threshold", layer.threshold, w.state_bits, True),
                ParamSource("decay", layer.decay, w.decay_bits if layer.decay_mode == "mult" else _SHIFT_BITS, False)]

    def multipliers(self, plan):
        return 1 if plan.decay_mode == "mult" else 0  # lam * V

    def vectors(self, rng, args, count):
        A, S, D, mode = args["acc_bits"], args["state_bits"], args["decay_bits"], args["decay_mode"]
        smin, smax = -(1 << (S - 1)), (1 << (S - 1)) - 1
        inputs = {
            "acc": edge_values(rng, -(1 << (A - 1)), (1 << (A - 1)) - 1, count),
            "v": edge_values(rng, smin, smax, count),
            "decay": edge_values(rng, 0, (1 << D) - 1, count) if mode == "mult" else rng.integers(1, 31, count),
            "threshold": edge_values(rng, 1, smax, count),
        }
        spikes, state = lif_step(inputs["acc"], LIFState(inputs["v"]),
                                 LIFParams(inputs["decay"], inputs["threshold"], S, D, mode, args["reset"]))
        return inputs, {"spike": spikes, "v_next": state.v}, {"v_next": S}


register(LIFKind())
