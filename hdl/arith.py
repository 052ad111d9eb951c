"""Integer primitives of the contract as Amaranth expressions (``golden/CONTRACT.md`` sections 1, 3.2).

These build combinational logic only; the components decide where the registers go.
``>>`` on a signed Amaranth value is an arithmetic shift, i.e. the contract's floor shift.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Mux

__all__ = ["saturate", "above_max", "decay", "signed_max", "signed_min"]


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
