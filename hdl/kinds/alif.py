"""ALIF: the update unit (contract section 3.4) and its hardware definition."""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from skipcore.golden.artifact import max_trace_bits
from skipcore.golden.kinds.alif import ALIFParams, ALIFState, alif_step

from .._checks import check_positive, reject
from ..arith import registered_decay, registered_product, saturate
from . import SHIFT_DECAY_BITS, ParamSource, UnitKind, edge_values, register

_SHIFT_BITS = SHIFT_DECAY_BITS


class ALIFUnit(wiring.Component):
    """ALIF update of one neuron (SRNN convention, reset one step late; contract section 3.4).

    The contract's step t is ::

        b_t    = ((rho * b_{t-1}) >> D) + q * ((2**D - rho) << (T - D))   q = S[t-1], its last spike
        B      = sat_S(b0 + ((beta * b_t) >> T))
        u'     = sat_S(decay(u, alpha) + acc - q * B)
        S[t]   = u' > B

    The unit keeps the trace one step ahead: its input ``b`` is already ``b_t`` and its output
    ``b_next`` is ``b_{t+1} = ((rho * b_t) >> D) + S[t] * ((2**D - rho) << (T - D))``, computed as soon as S[t]
    is known. The threshold B then needs no multiplier chain, and every product is registered:

    * stages 0 and 1: ``beta * b_t``, ``alpha * u`` (or ``u - (u >> n)``), ``rho * b_t``, two
      cycles after their operands (:func:`hdl.arith.registered_product`: the operands'
      registers, then the products');
    * stage 2: ``b0 + ((beta * b_t) >> T)``, ``x = decay(u) + acc``, ``(rho * b_t) >> D`` and
      that plus ``(2**D - rho) << (T - D)`` (a wiring shift);
    * stage 3: ``B`` (the saturation: a test of the high bits and a multiplexer), ``q * B`` and
      ``(1 + q) * B`` (multiplexers);
    * stage 4: ``y = x - q * B``, ``u' = sat_S(y)``, ``S[t] = u' > B`` (as ``x > (1 + q) * B`` and
      ``B`` below the top of the range, beside ``y``), ``b_next``.

    No stage holds a multiplier and an adder, or two carry chains in series except stage 4's
    ``y`` and the comparison beside it.

    On the first step of a sequence the engine feeds ``b = q = u = 0`` (= ``b_0``).

    Parameters
    ----------
    acc_bits, state_bits, decay_bits : int
        Widths A, S, D of the contract.
    trace_bits : int
        T >= D, the fraction bits of the adaptation trace ``b`` (contract sections 1, 3.4).
    decay_mode : ``"mult"`` | ``"shift"``
        Decay of ``u`` by ``alpha``; ``b`` always decays multiplicatively by ``rho``.

    Members
    -------
    acc : ``In(signed(acc_bits))``
    u : ``In(signed(state_bits))``
    b : ``In(unsigned(trace_bits + 1))``
        Adaptation trace of this step, ``b_t`` in ``[0, 2**T]``.
    q : ``In(1)``
        Previous spike S[t-1].
    decay : ``In(unsigned(decay_bits))`` (mult) or ``In(unsigned(5))`` (shift)
        alpha.
    rho : ``In(unsigned(decay_bits))``
    threshold : ``In(signed(state_bits))``
        b0 >= 1.
    beta : ``In(signed(state_bits))``
        beta >= 0.
    spike : ``Out(1)``
    u_next : ``Out(signed(state_bits))``
    b_next : ``Out(unsigned(trace_bits + 1))``
        ``b_{t+1}``: a multiplexer of two registers chosen by the ``spike`` register.

    Latency 5 cycles, one neuron per cycle.
    """

    latency = 5

    def __init__(self, *, acc_bits: int, state_bits: int, decay_bits: int, decay_mode: str, trace_bits: int):
        check_positive(self, "ALIFUnit", acc_bits=acc_bits, state_bits=state_bits, decay_bits=decay_bits,
                       trace_bits=trace_bits)
        if decay_mode not in ("mult", "shift"):
            raise reject(self, ValueError(f"ALIFUnit decay_mode must be 'mult' or 'shift', not {decay_mode!r}"))
        if trace_bits < decay_bits:
            raise reject(self, ValueError(f"ALIFUnit trace_bits ({trace_bits}) must be at least decay_bits ({decay_bits})"))
        self._a, self._s, self._d, self._mode, self._t = acc_bits, state_bits, decay_bits, decay_mode, trace_bits
        super().__init__({
            "acc": In(signed(acc_bits)),
            "u": In(signed(state_bits)),
            "b": In(unsigned(trace_bits + 1)),
            "q": In(1),
            "decay": In(unsigned(decay_bits if decay_mode == "mult" else _SHIFT_BITS)),
            "rho": In(unsigned(decay_bits)),
            "threshold": In(signed(state_bits)),
            "beta": In(signed(state_bits)),
            "spike": Out(1),
            "u_next": Out(signed(state_bits)),
            "b_next": Out(unsigned(trace_bits + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        S, D, A, T = self._s, self._d, self._a, self._t
        width = max(S, A) + 2
        smax = (1 << (S - 1)) - 1
        # stages 0 and 1: the three products (or the shift decay of u), two cycles after their
        # operands (on ECP5 in multiplier blocks' registers: hdl.arith.registered_product); beside
        # them the other inputs registered, then the trace increment
        p_beta = Signal(signed(S + T + 2))
        p_rho = Signal(unsigned(D + T + 1))
        du = Signal(signed(S + 1))               # decay(u, alpha): (alpha * u) >> D or u - (u >> n)
        acc0, q0, b0_0, rho0 = Signal(signed(A)), Signal(), Signal(signed(S)), Signal(unsigned(D))
        acc1, q1, b0_1 = Signal(signed(A)), Signal(), Signal(signed(S))
        inc1 = Signal(unsigned(T + 1))
        m.d.comb += [du.eq(registered_decay(m, self.u, self.decay, D, self._mode, platform, name="du")),
                     p_beta.eq(registered_product(m, self.beta, self.b, platform, name="beta_product")),
                     p_rho.eq(registered_product(m, self.rho, self.b, platform, name="rho_product"))]
        m.d.sync += [
            acc0.eq(self.acc), q0.eq(self.q), b0_0.eq(self.threshold), rho0.eq(self.rho),
            acc1.eq(acc0), q1.eq(q0), b0_1.eq(b0_0),
            inc1.eq(((1 << D) - rho0) << (T - D)),
        ]
        # stage 2: threshold before saturation, decayed membrane plus input, decayed trace (+ inc)
        b_sum = Signal(signed(S + 3))
        x2 = Signal(signed(width))
        q2 = Signal()
        r2 = Signal(unsigned(T + 1))
        r_inc2 = Signal(unsigned(T + 2))
        m.d.sync += [
            b_sum.eq(b0_1 + (p_beta >> T)),
            x2.eq(du + acc1),
            q2.eq(q1),
            r2.eq(p_rho >> D),
            r_inc2.eq((p_rho >> D) + inc1),
        ]
        # stage 3: the threshold B, and what stage 4 compares and subtracts: q * B, (1 + q) * B
        b_below = Signal()                       # B < 2**(S-1) - 1
        q_big_b = Signal(signed(S))
        limit = Signal(signed(S + 1))
        x3 = Signal(signed(width))
        r3 = Signal(unsigned(T + 1))
        r_inc3 = Signal(unsigned(T + 1))
        b_sat = saturate(b_sum, S)
        m.d.sync += [b_below.eq(b_sum < smax), q_big_b.eq(Mux(q2, b_sat, 0)), limit.eq(Mux(q2, b_sat << 1, b_sat)),
                     x3.eq(x2), r3.eq(r2), r_inc3.eq(r_inc2)]
        # stage 4: u' = sat_S(y), y = x - q*B. S[t] = [u' > B]: for B = 2**(S-1) - 1 never (u' <= B);
        # else it equals [y > B] (y above the range: u' = 2**(S-1) - 1 > B; below: u' < 1 <= B),
        # and y > B <=> x > (1 + q) * B, a comparison beside the subtraction.
        y = Signal(signed(width + 1))
        fire = Signal()
        # x > limit as the sign of limit - x: a carry chain on iCE40 (a plain comparison becomes a
        # chain of LUTs there, the core's slowest path)
        below = Signal(signed(width + 1))
        m.d.comb += [
            y.eq(x3 - q_big_b),
            below.eq(limit - x3),
            fire.eq(below[-1] & b_below),
        ]
        # b_next is chosen after the stage's registers (one LUT behind the spike register) rather
        # than before them: the comparison's carry chain then ends in one register, not in the
        # trace's T + 1 multiplexers (the SHD core's slowest path at 150 MHz)
        r4, r_inc4 = Signal(unsigned(T + 1)), Signal(unsigned(T + 1))
        m.d.sync += [
            self.u_next.eq(saturate(y, S)),
            self.spike.eq(fire),
            r4.eq(r3), r_inc4.eq(r_inc3),
        ]
        m.d.comb += self.b_next.eq(Mux(self.spike, r_inc4, r4))
        return m


class ALIFKind(UnitKind):
    """ALIF on the hardware side: state ``(u, b_{t+1}, q = S[t])``; constants b0, alpha, rho, beta."""

    name = "alif"
    Unit = ALIFUnit

    def unit_args(self, plan):
        return dict(acc_bits=plan.acc_bits, state_bits=plan.state_bits, decay_bits=plan.decay_bits,
                    decay_mode=plan.decay_mode, trace_bits=plan.trace_bits)

    def state_layout(self, plan):
        return data.StructLayout({"u": signed(plan.state_bits), "b": unsigned(plan.trace_bits + 1),
                                  "q": unsigned(1)})

    def params(self, art, layer):
        w = art.widths
        return [ParamSource("threshold", layer.threshold, w.state_bits, True),
                ParamSource("decay", layer.decay, w.decay_bits if layer.decay_mode == "mult" else _SHIFT_BITS, False),
                ParamSource("rho", layer.rho, w.decay_bits, False),
                ParamSource("beta", layer.beta, w.state_bits, True)]

    def next_state(self, unit, spike, plan):
        return {"u": unit.u_next, "b": unit.b_next, "q": spike}

    def multipliers(self, plan):
        return 2 + (1 if plan.decay_mode == "mult" else 0)  # rho * b, beta * b, alpha * u

    def example_args(self, rng, *, acc_bits, state_bits, decay_bits, decay_mode):
        # the trace's fraction bits: either end of their range or between (contract section 1)
        top = max_trace_bits(state_bits, state_bits, decay_bits)
        trace_bits = (decay_bits, top, int(rng.integers(decay_bits, top + 1)))[int(rng.integers(3))]
        return dict(acc_bits=acc_bits, state_bits=state_bits, decay_bits=decay_bits, decay_mode=decay_mode,
                    trace_bits=trace_bits)

    def vectors(self, rng, args, count):
        """The golden step from ``(u, b_{t-1}, q)``; the unit takes ``b_t`` and returns ``b_{t+1}``."""
        A, S, D, mode = args["acc_bits"], args["state_bits"], args["decay_bits"], args["decay_mode"]
        T = args["trace_bits"]
        smin, smax = -(1 << (S - 1)), (1 << (S - 1)) - 1
        u = edge_values(rng, smin, smax, count)
        b_prev = edge_values(rng, 0, 1 << T, count)
        q = rng.integers(0, 2, count)
        acc = edge_values(rng, -(1 << (A - 1)), (1 << (A - 1)) - 1, count)
        alpha = edge_values(rng, 0, (1 << D) - 1, count) if mode == "mult" else rng.integers(1, 31, count)
        rho = edge_values(rng, 0, (1 << D) - 1, count)
        b0 = edge_values(rng, 1, smax, count)
        beta = edge_values(rng, 0, smax, count)
        small = rng.random(count) < 0.4
        beta[small] = rng.integers(0, 64, int(small.sum())).clip(0, smax)
        spikes, state = alif_step(acc, ALIFState(u, b_prev, q), ALIFParams(alpha, rho, b0, beta, S, D, mode, T))
        b_t = state.b
        inputs = {"acc": acc, "u": u, "b": b_t, "q": q, "decay": alpha, "rho": rho, "threshold": b0, "beta": beta}
        # the next step's trace (the unit's b_next), by the golden step itself with the new spikes
        b_next = alif_step(acc, ALIFState(u, b_t, spikes), ALIFParams(alpha, rho, b0, beta, S, D, mode, T))[1].b
        return inputs, {"spike": spikes, "u_next": state.u, "b_next": b_next}, {"u_next": S}


register(ALIFKind())
