"""One-neuron update units: LIF (contract section 3.3) and ALIF (section 3.4).

A layer engine instantiates one unit per lane. A unit is a fixed-latency pipeline without stalls:
it takes a new neuron every cycle and gives its spike and next state ``latency`` cycles later.
All per-neuron constants are input ports; the engine ties the ones shared by the whole layer to
constants, which synthesis folds into the logic.
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ._checks import check_positive, reject
from .arith import decay, saturate

__all__ = ["LIFUnit", "ALIFUnit"]

_SHIFT_BITS = 5


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

    Latency 2 cycles (registers after the decay and after the update), throughput one neuron per
    cycle.
    """

    latency = 2

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
        S = self._s
        dv = Signal(signed(S + 1))
        acc = Signal(signed(self._a))
        theta = Signal(signed(S))
        m.d.sync += [
            dv.eq(decay(self.v, self.decay, self._d, self._mode)),
            acc.eq(self.acc),
            theta.eq(self.threshold),
        ]
        # H = sat_S(x) with x = decay(V) + acc. Since 1 <= theta <= 2**(S-1) - 1, [H >= theta] equals
        # [x >= theta], and H - theta equals x - theta unless x saturates high: compare and subtract
        # on x in parallel with the saturation (two carry chains in series instead of four).
        smax = (1 << (S - 1)) - 1
        x = Signal(signed(max(S + 1, self._a) + 1))
        fire = Signal()
        m.d.comb += [x.eq(dv + acc), fire.eq(x >= theta)]
        h = saturate(x, S)
        if self._reset == "soft":
            nxt = Mux(fire, Mux(x > smax, smax - theta, x - theta), h)
        else:
            nxt = Mux(fire, 0, h)
        m.d.sync += [self.spike.eq(fire), self.v_next.eq(nxt)]
        return m


class ALIFUnit(wiring.Component):
    """ALIF update of one neuron (SRNN convention, reset one step late; contract section 3.4).

    The contract's step t is ::

        b_t    = ((rho * b_{t-1}) >> D) + q * (2**D - rho)     q = S[t-1], this neuron's last spike
        B      = sat_S(b0 + ((beta * b_t) >> D))
        u'     = sat_S(decay(u, alpha) + acc - q * B)
        S[t]   = u' > B

    The unit keeps the trace one step ahead: its input ``b`` is already ``b_t`` and its output
    ``b_next`` is ``b_{t+1} = ((rho * b_t) >> D) + S[t] * (2**D - rho)``, computed as soon as S[t]
    is known. The threshold B then needs no multiplier chain, and every product is registered:

    * stage 1: ``beta * b_t``, ``alpha * u`` (or ``u - (u >> n)``), ``rho * b_t``;
    * stage 2: ``B``, ``x = decay(u) + acc``, ``(rho * b_t) >> D``;
    * stage 3: ``y = x - q * B``, ``u' = sat_S(y)``, ``S[t] = u' > B``, ``b_next``.

    On the first step of a sequence the engine feeds ``b = q = u = 0`` (= ``b_0``).

    Parameters
    ----------
    acc_bits, state_bits, decay_bits : int
        Widths A, S, D of the contract.
    decay_mode : ``"mult"`` | ``"shift"``
        Decay of ``u`` by ``alpha``; ``b`` always decays multiplicatively by ``rho``.

    Members
    -------
    acc : ``In(signed(acc_bits))``
    u : ``In(signed(state_bits))``
    b : ``In(unsigned(decay_bits + 1))``
        Adaptation trace of this step, ``b_t`` in ``[0, 2**D]``.
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
    b_next : ``Out(unsigned(decay_bits + 1))``
        ``b_{t+1}``.

    Latency 3 cycles, one neuron per cycle.
    """

    latency = 3

    def __init__(self, *, acc_bits: int, state_bits: int, decay_bits: int, decay_mode: str):
        check_positive(self, "ALIFUnit", acc_bits=acc_bits, state_bits=state_bits, decay_bits=decay_bits)
        if decay_mode not in ("mult", "shift"):
            raise reject(self, ValueError(f"ALIFUnit decay_mode must be 'mult' or 'shift', not {decay_mode!r}"))
        self._a, self._s, self._d, self._mode = acc_bits, state_bits, decay_bits, decay_mode
        super().__init__({
            "acc": In(signed(acc_bits)),
            "u": In(signed(state_bits)),
            "b": In(unsigned(decay_bits + 1)),
            "q": In(1),
            "decay": In(unsigned(decay_bits if decay_mode == "mult" else _SHIFT_BITS)),
            "rho": In(unsigned(decay_bits)),
            "threshold": In(signed(state_bits)),
            "beta": In(signed(state_bits)),
            "spike": Out(1),
            "u_next": Out(signed(state_bits)),
            "b_next": Out(unsigned(decay_bits + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        S, D, A = self._s, self._d, self._a
        width = max(S, A) + 2
        smax = (1 << (S - 1)) - 1
        # stage 1: the three products (or the shift decay of u)
        p_beta = Signal(signed(S + D + 2))
        p_rho = Signal(unsigned(2 * D + 1))
        du1 = Signal(signed(S + D + 1))          # alpha * u (mult) or u - (u >> n) (shift)
        acc1, q1, b0_1 = Signal(signed(A)), Signal(), Signal(signed(S))
        inc1 = Signal(unsigned(D + 1))
        if self._mode == "mult":
            m.d.sync += du1.eq(self.decay * self.u)
        else:
            m.d.sync += du1.eq(decay(self.u, self.decay, D, "shift"))
        m.d.sync += [
            p_beta.eq(self.beta * self.b),
            p_rho.eq(self.rho * self.b),
            acc1.eq(self.acc), q1.eq(self.q), b0_1.eq(self.threshold),
            inc1.eq((1 << D) - self.rho),
        ]
        # stage 2: threshold, decayed membrane plus input, decayed trace
        big_b = Signal(signed(S))
        x2 = Signal(signed(width))
        q2 = Signal()
        r2 = Signal(unsigned(D + 1))
        inc2 = Signal(unsigned(D + 1))
        du = (du1 >> D) if self._mode == "mult" else du1
        m.d.sync += [
            big_b.eq(saturate(b0_1 + (p_beta >> D), S)),
            x2.eq(du + acc1),
            q2.eq(q1),
            r2.eq(p_rho >> D),
            inc2.eq(inc1),
        ]
        # stage 3: u' = sat_S(y), y = x - q*B. [u' > B] equals [y > B] except when y saturates
        # high and B = 2**(S-1) - 1 (then u' = B); y > B <=> x > (1 + q) * B, in parallel.
        y = Signal(signed(width + 1))
        above = Signal()
        m.d.comb += [
            y.eq(x2 - Mux(q2, big_b, 0)),
            above.eq(x2 > Mux(q2, big_b << 1, big_b)),
        ]
        fire = Signal()
        m.d.comb += fire.eq(Mux(y > smax, big_b != smax, above))
        m.d.sync += [
            self.u_next.eq(saturate(y, S)),
            self.spike.eq(fire),
            self.b_next.eq(Mux(fire, r2 + inc2, r2)),
        ]
        return m
