"""CUBA-LIF: the update unit (contract section 3.7) and its hardware definition."""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from skipcore.golden.kinds.cuba import CubaParams, CubaState, cuba_step

from .._checks import check_positive, reject
from ..arith import registered_decay, saturate
from . import SHIFT_DECAY_BITS, ParamSource, UnitKind, edge_values, register

_SHIFT_BITS = SHIFT_DECAY_BITS


class CubaUnit(wiring.Component):
    """CUBA-LIF update of one neuron (current-based LIF, contract section 3.7).

    ::

        I_next = sat_S(decay(I, alpha_syn) + acc)
        H      = sat_S(decay(V, lam) + I_next)
        spike  = H >= theta
        V_next = H - theta * spike   (soft)   |   H * (1 - spike)   (hard)

    Parameters
    ----------
    acc_bits, state_bits, decay_bits : int
        Widths A, S, D of the contract.
    decay_mode : ``"mult"`` | ``"shift"``
        Applies to both decays.
    reset : ``"soft"`` | ``"hard"``

    Members
    -------
    acc : ``In(signed(acc_bits))``
        ``(ff >> s) + bias + rec`` of this step.
    i, v : ``In(signed(state_bits))``
        Synaptic current I and membrane V before the step (0 on the first step of a sequence).
    syn_decay, decay : ``In(unsigned(decay_bits))`` (mult) or ``In(unsigned(5))`` (shift)
        alpha_syn and lam.
    threshold : ``In(signed(state_bits))``
        theta >= 1.
    spike : ``Out(1)``
    i_next, v_next : ``Out(signed(state_bits))``

    Latency 4 cycles (the two decays take two: their operands' registers, then the decays'
    (:func:`hdl.arith.registered_decay`); then registers after the synapse update and after the
    membrane update), throughput one neuron per cycle. Two multipliers in ``mult`` mode.
    """

    latency = 4

    def __init__(self, *, acc_bits: int, state_bits: int, decay_bits: int, decay_mode: str, reset: str):
        check_positive(self, "CubaUnit", acc_bits=acc_bits, state_bits=state_bits, decay_bits=decay_bits)
        if decay_mode not in ("mult", "shift"):
            raise reject(self, ValueError(f"CubaUnit decay_mode must be 'mult' or 'shift', not {decay_mode!r}"))
        if reset not in ("soft", "hard"):
            raise reject(self, ValueError(f"CubaUnit reset must be 'soft' or 'hard', not {reset!r}"))
        self._a, self._s, self._d = acc_bits, state_bits, decay_bits
        self._mode, self._reset = decay_mode, reset
        decay_shape = unsigned(decay_bits if decay_mode == "mult" else _SHIFT_BITS)
        super().__init__({
            "acc": In(signed(acc_bits)),
            "i": In(signed(state_bits)),
            "v": In(signed(state_bits)),
            "syn_decay": In(decay_shape),
            "decay": In(decay_shape),
            "threshold": In(signed(state_bits)),
            "spike": Out(1),
            "i_next": Out(signed(state_bits)),
            "v_next": Out(signed(state_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        S = self._s
        # stages 1 and 2: both decays (the multipliers), two cycles after their operands
        di, dv = Signal(signed(S + 1)), Signal(signed(S + 1))
        acc0, theta0 = Signal(signed(self._a)), Signal(signed(S))
        acc = Signal(signed(self._a))
        theta1 = Signal(signed(S))
        m.d.comb += [
            di.eq(registered_decay(m, self.i, self.syn_decay, self._d, self._mode, platform, name="di")),
            dv.eq(registered_decay(m, self.v, self.decay, self._d, self._mode, platform, name="dv")),
        ]
        m.d.sync += [
            acc0.eq(self.acc), theta0.eq(self.threshold),
            acc.eq(acc0), theta1.eq(theta0),
        ]
        # stage 3: the synaptic current
        i_new, dv2, theta = Signal(signed(S)), Signal(signed(S + 1)), Signal(signed(S))
        m.d.sync += [i_new.eq(saturate(di + acc, S)), dv2.eq(dv), theta.eq(theta1)]
        # stage 4: the membrane, as the LIF unit: since 1 <= theta <= 2**(S-1) - 1, [H >= theta]
        # equals [x >= theta] and H - theta equals x - theta unless x saturates high
        smax = (1 << (S - 1)) - 1
        x = Signal(signed(S + 2))
        fire = Signal()
        m.d.comb += [x.eq(dv2 + i_new), fire.eq(x >= theta)]
        h = saturate(x, S)
        if self._reset == "soft":
            nxt = Mux(fire, Mux(x > smax, smax - theta, x - theta), h)
        else:
            nxt = Mux(fire, 0, h)
        m.d.sync += [self.spike.eq(fire), self.v_next.eq(nxt), self.i_next.eq(i_new)]
        return m


class CubaKind(UnitKind):
    """CUBA-LIF on the hardware side: state ``(i, v)``; constants ``threshold``, ``decay``, ``syn_decay``."""

    name = "cuba"
    Unit = CubaUnit

    def unit_args(self, plan):
        return dict(acc_bits=plan.acc_bits, state_bits=plan.state_bits, decay_bits=plan.decay_bits,
                    decay_mode=plan.decay_mode, reset=plan.reset)

    def state_layout(self, plan):
        return data.StructLayout({"i": signed(plan.state_bits), "v": signed(plan.state_bits)})

    def params(self, art, layer):
        w = art.widths
        decay_width = w.decay_bits if layer.decay_mode == "mult" else _SHIFT_BITS
        return [ParamSource("threshold", layer.threshold, w.state_bits, True),
                ParamSource("decay", layer.decay, decay_width, False),
                ParamSource("syn_decay", layer.syn_decay, decay_width, False)]

    def multipliers(self, plan):
        return 2 if plan.decay_mode == "mult" else 0  # alpha_syn * I, lam * V

    def vectors(self, rng, args, count):
        A, S, D, mode = args["acc_bits"], args["state_bits"], args["decay_bits"], args["decay_mode"]
        smin, smax = -(1 << (S - 1)), (1 << (S - 1)) - 1

        def decays():
            return edge_values(rng, 0, (1 << D) - 1, count) if mode == "mult" else rng.integers(1, 31, count)

        inputs = {
            "acc": edge_values(rng, -(1 << (A - 1)), (1 << (A - 1)) - 1, count),
            "i": edge_values(rng, smin, smax, count),
            "v": edge_values(rng, smin, smax, count),
            "syn_decay": decays(),
            "decay": decays(),
            "threshold": edge_values(rng, 1, smax, count),
        }
        spikes, state = cuba_step(inputs["acc"], CubaState(inputs["i"], inputs["v"]),
                                  CubaParams(inputs["syn_decay"], inputs["decay"], inputs["threshold"], S, D, mode,
                                             args["reset"]))
        return inputs, {"spike": spikes, "i_next": state.i, "v_next": state.v}, {"i_next": S, "v_next": S}


register(CubaKind())
