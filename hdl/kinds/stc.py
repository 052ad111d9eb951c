"""STC-LIF: the update unit (contract section 3.6) and its hardware definition.

The gate pre-activations ``z_a``, ``z_g`` accumulate event by event in the layer engine, from the
layer's own spikes of the previous step (extra accumulator fields, rows from a gate ROM); the
unit looks them up in the two ``1 + tanh`` tables (LUT ROMs, constants of the layer) and does the
two multiplies.
"""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Array, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from skipcore.golden.kinds.stc import STCParams, STCState, stc_step

from .._checks import check_positive, reject
from ..arith import registered_product, saturate
from . import ParamSource, UnitKind, edge_values, register


class STCUnit(wiring.Component):
    """STC-LIF update of one neuron (contract section 3.6)::

        A      = table_a[clamp(((z_a + bias_a) >> shift_a) + 2**(k-1), 0, 2**k - 1)]     (same for G)
        x      = ((A * V) >> D) + ((G * acc) >> D)
        spike  = x >= theta            (= [sat_S(x) >= theta], as 1 <= theta <= 2**(S-1) - 1)
        V_next = sat_S(x) - theta * spike

    * stage 1: bias adds and both table lookups (LUT ROMs) into the products' operand registers
      (:func:`hdl.arith.registered_product`; on ECP5 the multiplier blocks' input registers);
    * stage 2: the two products;
    * stage 3: sum, compare, soft reset.

    Parameters
    ----------
    acc_bits, state_bits, decay_bits : int
        Widths A, S, D of the contract.
    gate_acc_bits : int
        Signed width of ``z_a`` and ``z_g``.
    gate_bits : int
        k: each table has ``2**k`` entries.
    bias_bits : int
        Signed width of the per-neuron gate biases ``bias_a``, ``bias_g`` (parameter ports).
    shift_a, shift_g : int
    table_a, table_g : sequence of int
        ``1 + tanh`` in Q1.D, each entry in ``[0, 2**(D+1)]``.

    Members
    -------
    acc : ``In(signed(acc_bits))``
    v : ``In(signed(state_bits))``
    za, zg : ``In(signed(gate_acc_bits))``
    bias_a, bias_g : ``In(signed(bias_bits))``
    threshold : ``In(signed(state_bits))``
    spike : ``Out(1)``
    v_next : ``Out(signed(state_bits))``

    Latency 3 cycles, one neuron per cycle.
    """

    latency = 3

    def __init__(self, *, acc_bits: int, state_bits: int, decay_bits: int, gate_acc_bits: int, gate_bits: int,
                 bias_bits: int, shift_a: int, shift_g: int, table_a, table_g):
        check_positive(self, "STCUnit", acc_bits=acc_bits, state_bits=state_bits, decay_bits=decay_bits,
                       gate_acc_bits=gate_acc_bits, gate_bits=gate_bits, bias_bits=bias_bits)
        entries, top = 1 << gate_bits, 1 << (decay_bits + 1)
        for name, table in (("table_a", table_a), ("table_g", table_g)):
            values = [int(v) for v in table]
            if len(values) != entries or min(values) < 0 or max(values) > top:
                raise reject(self, ValueError(
                    f"STCUnit {name} needs {entries} entries in [0, {top}], got {len(values)} in "
                    f"[{min(values, default=0)}, {max(values, default=0)}]"))
        for name, shift in (("shift_a", shift_a), ("shift_g", shift_g)):
            if isinstance(shift, bool) or not isinstance(shift, int) or not 0 <= shift <= 31:
                raise reject(self, ValueError(f"STCUnit {name} must be in 0..31, not {shift!r}"))
        self._a, self._s, self._d, self._z, self._k = acc_bits, state_bits, decay_bits, gate_acc_bits, gate_bits
        self._b = bias_bits
        self._shifts = (shift_a, shift_g)
        self._tables = (tuple(int(v) for v in table_a), tuple(int(v) for v in table_g))
        super().__init__({
            "acc": In(signed(acc_bits)),
            "v": In(signed(state_bits)),
            "za": In(signed(gate_acc_bits)),
            "zg": In(signed(gate_acc_bits)),
            "bias_a": In(signed(bias_bits)),
            "bias_g": In(signed(bias_bits)),
            "threshold": In(signed(state_bits)),
            "spike": Out(1),
            "v_next": Out(signed(state_bits)),
        })

    def _lookup(self, m, z, bias, shift: int, table: tuple[int, ...], name: str):
        k, D = self._k, self._d
        half, top = 1 << (k - 1), (1 << k) - 1
        raw = Signal(signed(max(self._z, self._b, k) + 3), name=f"{name}_raw")
        m.d.comb += raw.eq(((z + bias) >> shift) + half)
        index = Signal(range(top + 1), name=f"{name}_index")
        m.d.comb += index.eq(Mux(raw < 0, 0, Mux(raw > top, top, raw)))
        rom = Array(Const(v, unsigned(D + 2)) for v in table)
        gate = Signal(unsigned(D + 2), name=name)
        m.d.comb += gate.eq(rom[index])          # registered as the product's operand
        return gate

    def elaborate(self, platform):
        m = Module()
        S, D, A = self._s, self._d, self._a
        # stage 1: table lookups, registered with V and acc as the products' operands;
        # stage 2: the two products
        gate_a = self._lookup(m, self.za, self.bias_a, self._shifts[0], self._tables[0], "gate_a")
        gate_g = self._lookup(m, self.zg, self.bias_g, self._shifts[1], self._tables[1], "gate_g")
        pa = Signal(signed(D + S + 2))
        pg = Signal(signed(D + A + 2))
        th1, th2 = Signal(signed(S)), Signal(signed(S))
        m.d.comb += [pa.eq(registered_product(m, gate_a, self.v, platform, name="pa_product")),
                     pg.eq(registered_product(m, gate_g, self.acc, platform, name="pg_product"))]
        m.d.sync += [th1.eq(self.threshold), th2.eq(th1)]
        # stage 3: x = (pa >> D) + (pg >> D); compare and subtract on x in parallel with sat_S
        smax = (1 << (S - 1)) - 1
        x = Signal(signed(max(S + 1, A + 1) + 1))
        fire = Signal()
        m.d.comb += [x.eq((pa >> D) + (pg >> D)), fire.eq(x >= th2)]
        nxt = Mux(fire, Mux(x > smax, smax - th2, x - th2), saturate(x, S))
        m.d.sync += [self.spike.eq(fire), self.v_next.eq(nxt)]
        return m


def bias_bits(gate_bits: int, shift: int) -> int:
    """Signed width of a gate bias: ``|b| <= 2**(k-1+shift)`` (contract section 3.6) needs k + shift + 1 bits."""
    return gate_bits + shift + 1


def gate_rows(layer, name: str) -> np.ndarray:
    """The dense (N, N) gate matrix: entry [i, j] = weight of own neuron j's spike on neuron i's gate."""
    n, groups = layer.neurons, int(layer.options["gate_groups"])
    m = n // groups
    dense = np.zeros((n, n), dtype=np.int64)
    compact = getattr(layer, name)
    for i in range(n):
        start = (i // m) * m
        dense[i, start:start + m] = compact[i]
    return dense


class STCKind(UnitKind):
    """STC-LIF on the hardware side: state ``v``; constant ``threshold``; gate fields ``za``, ``zg``."""

    name = "stc"
    Unit = STCUnit

    def unit_args(self, plan):
        c = dict(plan.unit_constants)
        return dict(acc_bits=plan.acc_bits, state_bits=plan.state_bits, decay_bits=plan.decay_bits,
                    gate_acc_bits=max(width for _, width in plan.event_fields), gate_bits=c["gate_bits"],
                    bias_bits=bias_bits(c["gate_bits"], max(c["shift_a"], c["shift_g"])),
                    shift_a=c["shift_a"], shift_g=c["shift_g"], table_a=c["table_a"], table_g=c["table_g"])

    def state_layout(self, plan):
        return data.StructLayout({"v": signed(plan.state_bits)})

    def params(self, art, layer):
        o = layer.options
        width = bias_bits(int(o["gate_bits"]), max(int(o["shift_a"]), int(o["shift_g"])))
        return [ParamSource("threshold", layer.threshold, art.widths.state_bits, True),
                ParamSource("bias_a", layer.bias_a, width, True), ParamSource("bias_g", layer.bias_g, width, True)]

    def constants(self, art, layer):
        o = layer.options
        return {"gate_bits": int(o["gate_bits"]), "shift_a": int(o["shift_a"]), "shift_g": int(o["shift_g"]),
                "table_a": tuple(int(v) for v in layer.table_a), "table_g": tuple(int(v) for v in layer.table_g)}

    def own_event_rows(self, art, layer):
        return {"za": gate_rows(layer, "w_a"), "zg": gate_rows(layer, "w_g")}

    def multipliers(self, plan):
        return 2  # A * V, G * acc

    def example_args(self, rng, *, acc_bits, state_bits, decay_bits, decay_mode):
        from skipcore.golden.kinds.stc import gate_table

        bits = int(rng.integers(2, 8))
        shift_a, shift_g = int(rng.integers(0, 4)), int(rng.integers(0, 4))
        table_g = rng.integers(0, (1 << (decay_bits + 1)) + 1, size=1 << bits)
        table_g[:2] = [0, 1 << (decay_bits + 1)]  # the extremes of Q1.D
        return dict(acc_bits=acc_bits, state_bits=state_bits, decay_bits=decay_bits,
                    gate_acc_bits=int(rng.integers(2, 10)), gate_bits=bits,
                    bias_bits=bias_bits(bits, max(shift_a, shift_g)), shift_a=shift_a, shift_g=shift_g,
                    table_a=tuple(int(v) for v in gate_table(float(rng.uniform(1, 40)), 1, bits, decay_bits)),
                    table_g=tuple(int(v) for v in table_g))

    def vectors(self, rng, args, count):
        A, S, D, Z, k = (args["acc_bits"], args["state_bits"], args["decay_bits"], args["gate_acc_bits"],
                         args["gate_bits"])
        B = args["bias_bits"]
        smax = (1 << (S - 1)) - 1
        inputs = {
            "acc": edge_values(rng, -(1 << (A - 1)), (1 << (A - 1)) - 1, count),
            "v": edge_values(rng, -(1 << (S - 1)), smax, count),
            "za": edge_values(rng, -(1 << (Z - 1)), (1 << (Z - 1)) - 1, count),
            "zg": edge_values(rng, -(1 << (Z - 1)), (1 << (Z - 1)) - 1, count),
            "bias_a": edge_values(rng, -(1 << (B - 1)), (1 << (B - 1)) - 1, count),
            "bias_g": edge_values(rng, -(1 << (B - 1)), (1 << (B - 1)) - 1, count),
            "threshold": edge_values(rng, 1, smax, count),
        }
        # the golden step with groups = N and unit weights: z_i = q_i * w_i, so z = za exactly
        ones = np.ones((count, 1), dtype=np.int64)
        params = STCParams(inputs["threshold"], inputs["za"][:, None], inputs["zg"][:, None],
                           np.asarray(args["table_a"], np.int64), np.asarray(args["table_g"], np.int64),
                           args["shift_a"], args["shift_g"], count, k, S, D, inputs["bias_a"], inputs["bias_g"])
        spikes, state = stc_step(inputs["acc"][None, :], STCState(inputs["v"][None, :], ones.T), params)
        return inputs, {"spike": spikes[0], "v_next": state.v[0]}, {"v_next": S}


register(STCKind())
