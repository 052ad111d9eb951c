"""Integer primitives of the contract as Amaranth expressions (``golden/CONTRACT.md`` sections 1, 3.2).

These build combinational logic only; the components decide where the registers go.
``>>`` on a signed Amaranth value is an arithmetic shift, i.e. the contract's floor shift.
"""
from __future__ import annotations

from amaranth.hdl import Mux

__all__ = ["saturate", "decay", "signed_max", "signed_min"]


def signed_max(bits: int) -> int:
    return (1 << (bits - 1)) - 1


def signed_min(bits: int) -> int:
    return -(1 << (bits - 1))


def saturate(value, bits: int):
    """``sat_B``: clamp a signed value to the signed ``bits``-bit range (result is ``signed(bits)``)."""
    hi, lo = signed_max(bits), signed_min(bits)
    clamped = Mux(value > hi, hi, Mux(value < lo, lo, value))
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
