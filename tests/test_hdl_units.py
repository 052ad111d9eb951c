"""hdl/neuron_units.py and hdl/arith.py against the golden contract functions (amaranth.sim)."""
from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from skipcore.golden.contract import ALIFParams, ALIFState, LIFParams, LIFState, alif_step, lif_step
from skipcore.hdl.neuron_units import ALIFUnit, LIFUnit


def _run_pipeline(unit, inputs: list[dict], outputs: list[str]) -> list[dict]:
    """Feed one input dict per cycle; collect ``outputs`` ``unit.latency`` cycles later."""
    got: list[dict] = []

    async def tb(ctx):
        for i in range(len(inputs) + unit.latency):
            if i < len(inputs):
                for name, value in inputs[i].items():
                    ctx.set(getattr(unit, name), int(value))
            await ctx.tick()
            if i + 1 >= unit.latency:
                got.append({name: ctx.get(getattr(unit, name)) for name in outputs})

    sim = Simulator(unit)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return got[: len(inputs)]


def _edge_values(rng, lo, hi, n):
    base = rng.integers(lo, hi + 1, size=n)
    edges = np.array([lo, hi, 0, 1, -1, lo + 1, hi - 1])
    edges = edges[(edges >= lo) & (edges <= hi)]
    base[: len(edges)] = edges
    return base


@pytest.mark.parametrize("mode", ["mult", "shift"])
@pytest.mark.parametrize("reset", ["soft", "hard"])
def test_lif_unit_matches_contract(mode, reset):
    rng = np.random.default_rng(1 if mode == "mult" else 2)
    S, D, A, n = 10, 6, 13, 160
    smin, smax = -(1 << (S - 1)), (1 << (S - 1)) - 1
    v = _edge_values(rng, smin, smax, n)
    acc = _edge_values(rng, -(1 << (A - 1)) + 1, (1 << (A - 1)) - 1, n)
    acc[n // 2:] //= 64                                  # half of them near the threshold
    lam = rng.integers(0, 1 << D, size=n) if mode == "mult" else rng.integers(1, 31, size=n)
    theta = rng.integers(1, smax + 1, size=n)
    theta[::7] = 1
    v[:2], acc[:2], theta[:2] = smax, (1 << (A - 1)) - 1, [smax, 3]   # x saturates high while firing
    unit = LIFUnit(acc_bits=A, state_bits=S, decay_bits=D, decay_mode=mode, reset=reset)
    got = _run_pipeline(unit, [dict(acc=acc[i], v=v[i], decay=lam[i], threshold=theta[i]) for i in range(n)],
                        ["spike", "v_next"])
    spikes, state = lif_step(acc, LIFState(v), LIFParams(lam, theta, S, D, mode, reset))
    assert [g["spike"] for g in got] == spikes.tolist()
    assert [g["v_next"] for g in got] == state.v.tolist()


@pytest.mark.parametrize("mode,extra", [("mult", 0), ("shift", 0), ("mult", 8), ("shift", 3)])
def test_alif_unit_matches_contract(mode, extra):
    # extra: the trace's fraction bits T beyond D (0 = a version 1/2 artifact's arithmetic)
    rng = np.random.default_rng((3 if mode == "mult" else 4) + 10 * extra)
    S, D, A, n = 12, 5, 14, 160
    T = D + extra
    smin, smax = -(1 << (S - 1)), (1 << (S - 1)) - 1
    u = _edge_values(rng, smin, smax, n)
    b = rng.integers(0, (1 << T) + 1, size=n)
    q = rng.integers(0, 2, size=n)
    acc = _edge_values(rng, -(1 << (A - 1)) + 1, (1 << (A - 1)) - 1, n)
    alpha = rng.integers(0, 1 << D, size=n) if mode == "mult" else rng.integers(1, 31, size=n)
    rho = rng.integers(0, 1 << D, size=n)
    b0 = rng.integers(1, smax + 1, size=n)
    beta = rng.integers(0, smax + 1, size=n)
    beta[::3] = rng.integers(0, 64, size=len(beta[::3]))
    # saturated threshold B = 2**(S-1) - 1 with u' saturating high: no spike (u' = B, not > B)
    u[:4], acc[:4], q[:4], b0[:4], beta[:4], b[:4] = smax, (1 << (A - 1)) - 1, [0, 1, 0, 1], smax, smax, 1 << T
    alpha[:4] = (1 << D) - 1 if mode == "mult" else 30
    unit = ALIFUnit(acc_bits=A, state_bits=S, decay_bits=D, decay_mode=mode, trace_bits=T)
    # golden step from (u, b_{t-1}, q); the unit takes b_t and returns b_{t+1}
    spikes, state = alif_step(acc, ALIFState(u, b, q), ALIFParams(alpha, rho, b0, beta, S, D, mode, T))
    assert spikes[0] == 0 and state.u[0] == smax
    b_t = state.b
    inputs = [dict(acc=acc[i], u=u[i], b=b_t[i], q=q[i], decay=alpha[i], rho=rho[i], threshold=b0[i], beta=beta[i])
              for i in range(n)]
    got = _run_pipeline(unit, inputs, ["spike", "u_next", "b_next"])
    assert [g["spike"] for g in got] == spikes.tolist()
    assert [g["u_next"] for g in got] == state.u.tolist()
    b_next = ((rho * b_t) >> D) + spikes * (((1 << D) - rho) << (T - D))
    assert [g["b_next"] for g in got] == b_next.tolist()


def test_unit_argument_checks():
    with pytest.raises(TypeError, match=r"^LIFUnit state_bits must be a positive integer, not 0$"):
        LIFUnit(acc_bits=8, state_bits=0, decay_bits=4, decay_mode="mult", reset="soft")
    with pytest.raises(ValueError, match=r"^LIFUnit reset must be 'soft' or 'hard', not 'zero'$"):
        LIFUnit(acc_bits=8, state_bits=8, decay_bits=4, decay_mode="mult", reset="zero")
    with pytest.raises(ValueError, match=r"^ALIFUnit decay_mode must be 'mult' or 'shift', not 'exp'$"):
        ALIFUnit(acc_bits=8, state_bits=8, decay_bits=4, decay_mode="exp", trace_bits=4)
    with pytest.raises(ValueError, match=r"^ALIFUnit trace_bits \(3\) must be at least decay_bits \(4\)$"):
        ALIFUnit(acc_bits=8, state_bits=8, decay_bits=4, decay_mode="mult", trace_bits=3)


def _unit_cases():
    from skipcore.hdl import kinds

    for name in kinds.names():
        for mode in ("mult", "shift"):
            args = kinds.get(name).example_args(np.random.default_rng(len(name) + len(mode)), acc_bits=11,
                                                state_bits=9, decay_bits=5, decay_mode=mode)
            yield pytest.param(name, args, id=f"{name}-{mode}")


@pytest.mark.parametrize("name,args", list(_unit_cases()))
def test_every_registered_unit_matches_its_vectors(name, args):
    """Each kind's unit against the vectors its hardware definition derives from the golden step."""
    from skipcore.hdl import kinds

    kind = kinds.get(name)
    inputs, outputs, signed_out = kind.vectors(np.random.default_rng(11), args, 300)
    unit = kind.Unit(**args)
    got = _run_pipeline(unit, [{k: int(v[i]) for k, v in inputs.items()} for i in range(300)], list(outputs))
    for port_name, want in outputs.items():
        assert [g[port_name] for g in got] == want.tolist(), port_name
    assert set(signed_out) <= set(outputs)


def test_stc_unit_checks_its_tables():
    from skipcore.hdl.kinds.stc import STCUnit

    kw = dict(acc_bits=8, state_bits=8, decay_bits=4, gate_acc_bits=4, gate_bits=2, bias_bits=3, shift_a=0, shift_g=0)
    with pytest.raises(ValueError, match=r"^STCUnit table_a needs 4 entries in \[0, 32\], got 3"):
        STCUnit(**kw, table_a=(1, 2, 3), table_g=(0, 0, 0, 0))
    with pytest.raises(ValueError, match=r"^STCUnit table_g needs 4 entries in \[0, 32\], got 4 in \[0, 33\]"):
        STCUnit(**kw, table_a=(1, 2, 3, 4), table_g=(0, 0, 0, 33))


@pytest.mark.parametrize("width,bits", [(6, 4), (4, 4), (3, 5), (9, 8), (5, 2), (7, 1)])
def test_saturate_and_above_max_exhaustive(width, bits):
    """hdl.arith.saturate / above_max (tests of the high bits, no comparators) equal sat_B and
    ``> 2**(B-1) - 1`` for every value of a ``width``-bit signed input, and keep the shape."""
    from amaranth.hdl import Module, Signal, signed

    from skipcore.hdl.arith import above_max, saturate

    m = Module()
    v, o, a = Signal(signed(width)), Signal(signed(bits)), Signal()
    assert saturate(v, bits).shape() == signed(bits)
    m.d.comb += [o.eq(saturate(v, bits)), a.eq(above_max(v, bits))]
    hi, lo = (1 << (bits - 1)) - 1, -(1 << (bits - 1))
    got = []

    async def bench(ctx):
        for x in range(-(1 << (width - 1)), 1 << (width - 1)):
            ctx.set(v, x)
            got.append((x, ctx.get(o), ctx.get(a)))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert got == [(x, min(hi, max(lo, x)), int(x > hi)) for x, _, _ in got] and len(got) == 1 << width


def _ecp5():
    """The ECP5 platforms' hooks (boards/ecp5_primitives.py) on a bare class: registered_product
    only calls ``get_registered_multiplier``."""
    from skipcore.boards.ecp5_primitives import ecp5_platform

    return ecp5_platform(object)()


@pytest.mark.parametrize("platform", [None, "ecp5"], ids=["generic", "ecp5"])
@pytest.mark.parametrize("shape_a,shape_b", [(("u", 8), ("s", 16)), (("s", 18), ("s", 18)), (("u", 17), ("s", 18)),
                                             (("u", 8), ("u", 9)), (("s", 20), ("u", 8)), (("u", 9), ("s", 24)),
                                             (("s", 10), ("u", 40)), (("s", 20), ("s", 20))])
def test_registered_product(platform, shape_a, shape_b):
    """hdl.arith.registered_product is ``a * b`` two cycles later, at the operands' edges too, with
    new operands every cycle. On an ECP5 (the platform's ``get_registered_multiplier`` hook,
    boards/ecp5_primitives.py) it is one MULT18X18D with its input and output registers when both
    operands fit in 18 signed bits, one per piece of the wider operand when one does, none when
    neither does: the test plays each block from the pins the instance is given (the A and B pins,
    18-bit two's complement with SIGNEDA/B high, into the input registers at one edge, their
    product into the output register at the next)."""
    from amaranth.hdl import Instance, Module, Signal, signed, unsigned

    from skipcore.hdl.arith import registered_product

    def make(kind, bits):
        return Signal(signed(bits) if kind == "s" else unsigned(bits))

    def fits(kind, bits):
        return bits + (kind == "u") <= 18

    platform = _ecp5() if platform == "ecp5" else None
    m = Module()
    a, b = make(*shape_a), make(*shape_b)
    p = registered_product(m, a, b, platform, name="prod")
    blocks = [sub for sub, _ in m._named_submodules.values() if isinstance(sub, Instance)]
    if platform is None or not (fits(*shape_a) or fits(*shape_b)):
        assert blocks == []
    else:
        wide = max(shape_a[1], shape_b[1]) if not (fits(*shape_a) and fits(*shape_b)) else 0
        assert len(blocks) == (1 if not wide else -(-(wide - 1) // 17))
    for inst in blocks:
        assert inst.type == "MULT18X18D"
        assert all(inst.parameters[f"REG_{r}_CLK"] == "CLK0" for r in ("INPUTA", "INPUTB", "OUTPUT"))
        assert all(inst.parameters.get(f"REG_{r}_CLK", "NONE") == "NONE" for r in ("INPUTC", "PIPELINE"))
        assert all(inst.parameters[f"REG_{r}_CE"] == "CE0" and inst.parameters[f"REG_{r}_RST"] == "RST0"
                   for r in ("INPUTA", "INPUTB", "OUTPUT"))
        assert inst.ports["CLK0"][0].domain == "sync"
        assert inst.ports["CE0"][0].value == 1 and inst.ports["RST0"][0].value == 0
    rng = np.random.default_rng(7)

    def values(signal):
        lo, hi = (signal.shape().signed and -(1 << (len(signal) - 1))) or 0, \
            (1 << (len(signal) - signal.shape().signed)) - 1
        return _edge_values(rng, lo, hi, 60)

    pairs = list(zip(values(a), values(b)))
    got = []

    def pins(ctx, inst, name):
        word = sum(ctx.get(inst.ports[f"{name}{i}"][0]) << i for i in range(18))
        return word - (1 << 18) if word >> 17 else word

    async def bench(ctx):
        held = [(0, 0)] * len(blocks)                     # the blocks' input registers
        for x, y in pairs + [(0, 0)]:
            ctx.set(a, int(x))
            ctx.set(b, int(y))
            pin_values = []
            for inst in blocks:
                assert all(ctx.get(inst.ports[f"SIGNED{s}"][0]) == 1 for s in "AB")
                pin_values.append((pins(ctx, inst, "A"), pins(ctx, inst, "B")))
            await ctx.tick()
            # at the edge the output register takes the product of the input registers, and
            # these take the pins
            for inst, (pa, pb) in zip(blocks, held):
                ctx.set(inst.ports["P0"][0].value, (pa * pb) & ((1 << 36) - 1))
            held = pin_values
            got.append(ctx.get(p))

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    # after the first edge the product register holds a product of the reset operands (0)
    assert got == [0] + [int(x) * int(y) for x, y in pairs]
