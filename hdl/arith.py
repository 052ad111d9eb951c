"""Integer primitives of the contract as Amaranth expressions (``golden/CONTRACT.md`` sections 1, 3.2).

These build combinational logic only; the components decide where the registers go.
``>>`` on a signed Amaranth value is an arithmetic shift, i.e. the contract's floor shift.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Mux, Signal, Value, signed, unsigned

from ._platform import platform_mapping

__all__ = ["saturate", "above_max", "decay", "or_all", "registered_decay", "registered_product", "signed_max", "signed_min"]


def signed_max(bits: int) -> int:
    return (1 << (bits - 1)) - 1


def signed_min(bits: int) -> int:
    return -(1 << (bits - 1))


def _high_bits(value, bits: int):
    """The bits of a signed value from bit ``bits - 1`` up (all equal iff it fits in ``bits``)."""
    value = value.as_signed()
    return value[bits - 1:], value[-1]


def above_max(value, bits: int):
    """``value > signed_max(bits)`` for a signed value, as a test of its high bits (a few LUTs, no
    comparator carry chain)."""
    if len(value.as_signed()) <= bits:
        return Const(0)
    high, sign = _high_bits(value, bits)
    return ~sign & high.any()


def saturate(value, bits: int):
    """``sat_B``: clamp a signed value to the signed ``bits``-bit range (result is ``signed(bits)``).

    The range check tests the high bits (all equal: in range; else the sign says which end), so
    the clamp adds no carry chain after the one that computed ``value``.
    """
    value = value.as_signed()
    if len(value) <= bits:                       # always in range: sign-extend
        return Cat(value, value[-1].replicate(bits - len(value))).as_signed()
    high, sign = _high_bits(value, bits)
    fits = (high == 0) | (high == (1 << len(high)) - 1)
    clamped = Mux(fits, value[:bits], Mux(sign, signed_min(bits), signed_max(bits)))
    return clamped[:bits].as_signed()


def decay(v, a, decay_bits: int, mode: str):
    """Section 3.2: ``(a * v) >> D`` (``mult``; ``a`` unsigned) or ``v - (v >> a)`` (``shift``).

    ``v`` is a two's complement value of its own width (an unsigned slice is reinterpreted).
    """
    v = v.as_signed()
    if mode == "mult":
        return (a.as_unsigned() * v) >> decay_bits
    if mode == "shift":
        return v - (v >> a.as_unsigned())
    raise ValueError(f"decay mode must be 'mult' or 'shift', not {mode!r}")


def or_all(terms):
    """The OR of equal-width values, as a balanced tree."""
    while len(terms) > 1:
        terms = [terms[i] | terms[i + 1] if i + 1 < len(terms) else terms[i] for i in range(0, len(terms), 2)]
    return terms[0]


def registered_decay(m, v, a, decay_bits: int, mode: str, platform, *, name: str):
    """:func:`decay` two cycles after its operands, as :func:`registered_product` (``mult``: the
    product in its register, the shift after it is wiring; ``shift``: the operands registered,
    then the decay)."""
    if mode == "mult":
        product = registered_product(m, a.as_unsigned(), v.as_signed(), platform, name=f"{name}_product")
        return product >> decay_bits
    v_reg, a_reg = Signal(signed(len(v)), name=f"{name}_v"), Signal(unsigned(len(a)), name=f"{name}_a")
    m.d.sync += [v_reg.eq(v.as_signed()), a_reg.eq(a.as_unsigned())]
    value = decay(v_reg, a_reg, decay_bits, mode)
    reg = Signal(value.shape(), name=name)
    m.d.sync += reg.eq(value)
    return reg


def registered_product(m, a, b, platform, *, name: str) -> Value:
    """``a * b`` two cycles after its operands: the operands in registers, then the product in a
    register (``p`` returned). A neuron unit or engine that uses it spends two pipeline stages on
    it; in the first, nothing but the operands' own registers (or logic in front of them).

    A platform with a ``get_registered_multiplier(m, a, b, name=...)`` hook may build the product
    from its own multiplier blocks with their input and output registers instead (the ECP5
    platforms of the build flow: MULT18X18D, ``boards/ecp5_primitives.py``, where Yosys packs no
    register into the block; no path then runs from the fabric through the multiplier); the hook
    returns the product, two cycles after the operands, or None for operands it does not take.
    Without the hook (simulation, iCE40, where Yosys packs the registers into SB_MAC16, plain
    Verilog), or when it returns None, it is the two plain register stages.
    """
    a, b = Value.cast(a), Value.cast(b)
    p = Signal((a * b).shape(), name=name)
    registered = platform_mapping(platform, "get_registered_multiplier", m, a, b, name=name)
    if registered is None:
        a_reg, b_reg = Signal(a.shape(), name=f"{name}_a"), Signal(b.shape(), name=f"{name}_b")
        m.d.sync += [a_reg.eq(a), b_reg.eq(b), p.eq(a_reg * b_reg)]
    else:
        m.d.comb += p.eq(registered)
    return p
