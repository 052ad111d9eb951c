"""Integer primitives of the contract as Amaranth expressions (``golden/CONTRACT.md`` sections 1, 3.2).

These build combinational logic only; the components decide where the registers go.
``>>`` on a signed Amaranth value is an arithmetic shift, i.e. the contract's floor shift.
"""
from __future__ import annotations

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Mux, Signal, Value

__all__ = ["saturate", "above_max", "decay", "registered_decay", "registered_product", "signed_max", "signed_min"]

#: Operand width of the ECP5 multiplier block (MULT18X18D): 18 bits, two's complement.
ECP5_MULT_BITS = 18


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


def registered_decay(m, v, a, decay_bits: int, mode: str, platform, *, name: str):
    """:func:`decay` one cycle after its operands (``mult``: the product in the register, see
    :func:`registered_product`, the shift after it is wiring)."""
    if mode == "mult":
        product = registered_product(m, a.as_unsigned(), v.as_signed(), platform, name=f"{name}_product")
        return product >> decay_bits
    value = decay(v, a, decay_bits, mode)
    reg = Signal(value.shape(), name=name)
    m.d.sync += reg.eq(value)
    return reg


def _fits_signed(value: Value, bits: int) -> bool:
    shape = value.shape()
    return len(value) + (0 if shape.signed else 1) <= bits


def registered_product(m, a, b, platform, *, name: str) -> Value:
    """``a * b`` one cycle after its operands: ``m.d.sync += p.eq(a * b)``, ``p`` returned.

    On an ECP5 (``platform.family == "ecp5"``) it uses the MULT18X18D's own output register
    instead: Yosys 0.70's ``synth_ecp5`` maps a product to a combinational MULT18X18D and packs no
    register into it, and at speed grade 6 that block's input-to-output delay alone is about 4 ns
    (nextpnr: register -> MULT18X18D -> register 6.9 ns, 144 MHz), while its output register ends
    the path at the block (5.3 ns, 188 MHz). When both operands fit in 18 signed bits that is one
    block. When only one does, the other is cut into 17-bit unsigned pieces and a signed top piece,
    one block each, and the returned value is the sum of the registered partial products shifted
    into place: that adder follows the registers, in the cycle of the consumer (which should add
    nothing but one more term to it). The pin use is Yosys's own (``lattice/dsp_map_18x18.v``), both
    operands sign-extended to 18 bits (``SIGNEDA = SIGNEDB = 1``). Elsewhere (simulation, iCE40,
    where Yosys packs the register into SB_MAC16), or with both operands wider, it is the plain
    register.
    """
    a, b = Value.cast(a), Value.cast(b)
    product = a * b
    p = Signal(product.shape(), name=name)
    ecp5 = getattr(platform, "family", None) == "ecp5"
    if ecp5 and not _fits_signed(a, ECP5_MULT_BITS):
        a, b = b, a
    if not ecp5 or not _fits_signed(a, ECP5_MULT_BITS):
        m.d.sync += p.eq(product)
        return p
    # pieces of b: 17-bit unsigned ones from the bottom, then the rest (signed if b is)
    pieces, low = [], 0
    while not _fits_signed(b[low:] if not b.shape().signed else b[low:].as_signed(), ECP5_MULT_BITS):
        pieces.append((low, b[low:low + ECP5_MULT_BITS - 1]))
        low += ECP5_MULT_BITS - 1
    pieces.append((low, b[low:].as_signed() if b.shape().signed else b[low:]))
    terms = []
    for k, (shift, piece) in enumerate(pieces):
        block = name if len(pieces) == 1 else f"{name}_{k}"
        out = _ecp5_registered_multiplier(m, a, piece, name=block)
        terms.append(out.as_signed() << shift)
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    m.d.comb += p.eq(total)
    return p


def _ecp5_registered_multiplier(m, a, b, *, name: str):
    """One MULT18X18D with its output register: the 36-bit signed product of two operands of at
    most 18 signed bits, a cycle later."""
    wide_a = Signal(ECP5_MULT_BITS, name=f"{name}_a")
    wide_b = Signal(ECP5_MULT_BITS, name=f"{name}_b")
    out = Signal(2 * ECP5_MULT_BITS, name=f"{name}_p")
    m.d.comb += [wide_a.eq(a), wide_b.eq(b)]     # sign- or zero-extended by their shapes
    ports = {}
    for i in range(ECP5_MULT_BITS):
        ports[f"i_A{i}"] = wide_a[i]
        ports[f"i_B{i}"] = wide_b[i]
        ports[f"i_C{i}"] = Const(0, 1)
    for i in range(2 * ECP5_MULT_BITS):
        ports[f"o_P{i}"] = out[i]
    m.submodules[name] = Instance(
        "MULT18X18D",
        p_REG_OUTPUT_CLK="CLK0", p_REG_OUTPUT_CE="CE0", p_REG_OUTPUT_RST="RST0", p_RESETMODE="SYNC",
        p_GSR="DISABLED",
        i_SIGNEDA=Const(1, 1), i_SIGNEDB=Const(1, 1), i_SOURCEA=Const(0, 1), i_SOURCEB=Const(0, 1),
        i_CLK0=ClockSignal("sync"), i_CE0=Const(1, 1), i_RST0=Const(0, 1),
        **ports,
    )
    return out
