"""ECP5 primitives with their output registers, offered to the core through platform hooks.

The ECP5 platforms of the build flow (:func:`ecp5_platform`) offer two hooks that hdl/ calls
while it elaborates (hdl/ never names a vendor primitive): ``get_registered_rom``
(:class:`hdl.registered_rom.RegisteredROM` as DP16KDs, :func:`registered_rom`),
``get_registered_ram`` (:class:`hdl.registered_ram.RegisteredRAM`, the StepFIFO's memory, as
DP16KDs, :func:`registered_ram`; a small one with two read addresses reads both, see there) and ``get_registered_multiplier`` (:func:`hdl.arith.registered_product` as MULT18X18Ds,
:func:`registered_multiplier`).

Block RAMs: :class:`hdl.registered_rom.RegisteredROM` and :class:`hdl.registered_ram.RegisteredRAM`
as DP16KDs (a RAM: port A writes, port B reads through its output register, whose clock enable
``OCEB`` is the RAM's ``r_en``; both ports ``ram_port_width(depth)`` bits wide, as memory_libmap
tiles a RAM of one write and one read port).

A DP16KD read without its output register (``REGMODE="NOREG"``, what Yosys' memory_libmap
emits) has a clock-to-out of about 5.8 ns on a speed-6 LFE5U, so even a block-RAM word that goes
straight into a fabric flip-flop misses a 150 MHz clock; Yosys does not move that flip-flop into
the block RAM. ``get_registered_rom`` therefore uses :func:`registered_rom`, which builds the ROM from DP16KD instances with
``REGMODE_A/B="OUTREG"`` (read latency 2, as the generic ROM) and initial values.

Tiling, 18-bit ports (1024 words of 18 bits a block; ``ADx[13:4]`` is the word address):

* one read port, at most 512 words: a block holds two 18-bit slices of the word, the even one
  at addresses 0..511 (read by port A), the odd one at 512..1023 (port B, same address + 512),
  i.e. 36 bits a block, as Yosys' PDPW16KD 512 x 36;
* otherwise (up to 1024 words): one 18-bit slice a block, port A reads for the ROM's port 0,
  port B for port 1 (unused with one port).

Only ROMs that Yosys would put in block RAM (:func:`.estimate.map_memory`) and whose DP16KD count
equals Yosys' are built here, so the fit estimate stays exact; the others (deeper than 1024
words, or small enough for LUTs) return None and the ROM stays generic. The INITVAL layout
(16 words of 18 bits in 20-bit fields per 320-bit row) is the one of Yosys'
``share/lattice/brams_map_16kd.v``; tests/test_boards_ecp5_memory.py simulates these instances
against the generic ROM with a DP16KD model (tests/hdl/dp16kd_model.v) that is itself checked
against Yosys' own DP16KD mapping.

Multipliers: Yosys 0.70's ``synth_ecp5`` maps a product to a combinational MULT18X18D and packs
no register into it, and at speed grade 6 that block's input-to-output delay alone is about 4 ns
(nextpnr: register -> MULT18X18D -> register 6.9 ns, 144 MHz). With its output register only,
a fabric register -> the block's output register is still 7.5 ns (the block's setup to its own
output register, 3.5 ns, plus the routing to it: 134 MHz in the demo core). With its input
registers too (``REG_INPUTA_CLK``, ``REG_INPUTB_CLK``) the multiplier runs between the block's own
registers and a fabric path ends at the block's input. :func:`registered_multiplier` therefore
builds the product (:func:`hdl.arith.registered_product`: two cycles after the operands) from
MULT18X18Ds with input and output registers; see there for the operand rules.
tests/test_hdl_units.py plays these blocks from their pins against ``a * b``.
"""
from __future__ import annotations

from amaranth.hdl import ClockSignal, Const, Instance, Module, Mux, Signal, Value
from amaranth.lib import memory

from .estimate import DSP_RULES, NetlistMemory, fifo_read_ports, map_memory

__all__ = ["DP16KD_WORDS", "MULT_BITS", "PORT_WORDS", "SLICE_BITS", "dp16kd_blocks", "dp16kd_ram_blocks",
           "ecp5_platform", "initvals", "ram_port_width", "registered_multiplier", "registered_ram", "registered_rom"]

DP16KD_WORDS = 1024   #: words of one DP16KD with 18-bit ports
SLICE_BITS = 18       #: bits of one DP16KD port
ROWS = 64             #: INITVAL_00 .. INITVAL_3F
ROW_WORDS = 16        #: 18-bit words per INITVAL row (each in a 20-bit field)
#: operand width of the MULT18X18D (18 bits, two's complement), the one the estimate maps products with
MULT_BITS = DSP_RULES["ecp5"]["max"]


def _split(width: int, depth: int, ports: int) -> bool:
    """Both ports of a block read the same address (two slices a block)."""
    return ports == 1 and depth <= DP16KD_WORDS // 2


def dp16kd_blocks(width: int, depth: int, ports: int) -> int:
    """DP16KDs of the tiling above for a ``width`` x ``depth`` ROM with ``ports`` read ports."""
    slices = -(-width // SLICE_BITS)
    return -(-slices // 2) if _split(width, depth, ports) else slices


def initvals(words: list[int]) -> dict[str, Const]:
    """The INITVAL_00 .. INITVAL_3F parameters of a DP16KD holding ``words`` (<= 1024 x 18 bits)."""
    if len(words) > DP16KD_WORDS:
        raise ValueError(f"a DP16KD holds {DP16KD_WORDS} words of 18 bits, not {len(words)}")
    params = {}
    for row in range(ROWS):
        value = 0
        for i, word in enumerate(words[row * ROW_WORDS:(row + 1) * ROW_WORDS]):
            value |= (word & ((1 << SLICE_BITS) - 1)) << (20 * i)
        params[f"p_INITVAL_{row:02X}"] = Const(value, 320)
    return params


def _dp16kd(words: list[int], port_a, port_b) -> Instance:
    """One DP16KD, both ports 18 bits and registered, reading only.

    ``port_a`` / ``port_b``: (address of the 18-bit word, 10 bits; output, 18 bits) or None.
    """
    ports = {}
    for side, port in (("A", port_a), ("B", port_b)):
        used = port is not None
        addr, out = port if used else (Const(0, 10), None)
        ports |= {
            f"i_CLK{side}": ClockSignal("sync"),
            f"i_CE{side}": Const(int(used)),
            f"i_OCE{side}": Const(int(used)),
            f"i_WE{side}": Const(0),
            f"i_RST{side}": Const(0),
        }
        for bit in range(3):
            ports[f"i_CS{side}{bit}"] = Const(0)
        for bit in range(14):   # x18: ADx[3:0] select bytes of a write, ADx[13:4] the word
            ports[f"i_AD{side}{bit}"] = addr[bit - 4] if bit >= 4 and bit - 4 < len(addr) else Const(0)
        for bit in range(SLICE_BITS):
            ports[f"i_DI{side}{bit}"] = Const(0)
            ports[f"o_DO{side}{bit}"] = out[bit] if used else Signal(name=f"unused_do{side.lower()}{bit}")
    return Instance(
        "DP16KD",
        p_DATA_WIDTH_A=SLICE_BITS, p_DATA_WIDTH_B=SLICE_BITS,
        p_REGMODE_A="OUTREG", p_REGMODE_B="OUTREG",
        p_RESETMODE="SYNC", p_ASYNC_RESET_RELEASE="SYNC",
        p_CSDECODE_A="0b000", p_CSDECODE_B="0b000",
        p_WRITEMODE_A="NORMAL", p_WRITEMODE_B="NORMAL",
        p_GSR="AUTO",
        **initvals(words),
        **ports,
    )


def registered_rom(rom) -> Module | None:
    """``rom`` (a RegisteredROM) as DP16KDs with their output registers, or None (stay generic)."""
    width, depth, ports = rom.width, rom.depth, rom.ports
    if depth > DP16KD_WORDS:
        return None
    mapping = map_memory(NetlistMemory("rom", width, depth, rom=True, read_ports=ports), "ecp5")
    if mapping.kind != "block" or mapping.cells != dp16kd_blocks(width, depth, ports):
        return None
    m = Module()
    slices = -(-width // SLICE_BITS)
    mask = (1 << SLICE_BITS) - 1
    column = [[(w >> (SLICE_BITS * s)) & mask for w in rom.init] for s in range(slices)]
    outs = [[Signal(SLICE_BITS, name=f"p{p}_slice{s}") for s in range(slices)] for p in range(ports)]
    addr_bits = 10
    addrs = []
    for p in range(ports):
        addr = Signal(addr_bits, name=f"p{p}_addr")
        m.d.comb += addr.eq(rom.addr[p])
        addrs.append(addr)
    if _split(width, depth, ports):
        high = Signal(addr_bits, name="p0_addr_high")          # the odd slice: address + 512
        m.d.comb += high.eq(addrs[0] | (DP16KD_WORDS // 2))
        for block in range(-(-slices // 2)):
            even, odd = 2 * block, 2 * block + 1
            half = DP16KD_WORDS // 2
            words = column[even] + [0] * (half - depth)
            port_b = None
            if odd < slices:
                words += column[odd]
                port_b = (high, outs[0][odd])
            m.submodules[f"dp16kd{block}"] = _dp16kd(words, (addrs[0], outs[0][even]), port_b)
    else:
        for s in range(slices):
            port_b = (addrs[1], outs[1][s]) if ports == 2 else None
            m.submodules[f"dp16kd{s}"] = _dp16kd(column[s], (addrs[0], outs[0][s]), port_b)
    for p in range(ports):
        word = Signal(slices * SLICE_BITS, name=f"p{p}_word")
        m.d.comb += [word[SLICE_BITS * s:SLICE_BITS * (s + 1)].eq(outs[p][s]) for s in range(slices)]
        m.d.comb += rom.data[p].eq(word[:width])
    return m


#: the DP16KD port widths and the words a block holds at each (x1 .. x18; 18 Kbit with parity)
PORT_WORDS = {1: 16384, 2: 8192, 4: 4096, 9: 2048, 18: 1024}


def ram_port_width(depth: int) -> int | None:
    """The widest DP16KD port width whose block holds ``depth`` words (None: deeper than any)."""
    fitting = [w for w, words in PORT_WORDS.items() if words >= depth]
    return max(fitting) if fitting else None


def dp16kd_ram_blocks(width: int, depth: int) -> int | None:
    """DP16KDs of the tiling of :func:`registered_ram`: ``ram_port_width(depth)`` bits a block."""
    port = ram_port_width(depth)
    return None if port is None else -(-width // port)


def _address_pins(side: str, addr: Value, port: int, write: bool) -> dict:
    """``ADx0..13`` for a ``port``-bit port: the word address in the top bits; with 18 bits,
    ``ADx[1:0]`` are the byte enables of a write (both on) and ``ADx[3:2]`` unused."""
    low = {1: 0, 2: 1, 4: 2, 9: 3, 18: 4}[port]
    pins = {}
    for bit in range(14):
        if bit >= low and bit - low < len(addr):
            pins[f"i_AD{side}{bit}"] = addr[bit - low]
        else:
            pins[f"i_AD{side}{bit}"] = Const(int(port == 18 and write and bit < 2))
    return pins


def registered_ram(ram) -> Module | None:
    """``ram`` (a RegisteredRAM) as DP16KDs: port A writes, port B reads through its output
    register (``REGMODE_B="OUTREG"``, ``OCEB`` = ``r_en``), or None (stay generic).

    Each block holds a ``ram_port_width(depth)``-bit slice of every word (both ports that wide),
    as memory_libmap tiles a RAM of one write and one read port on DP16KDs; only RAMs that Yosys
    would put in as many DP16KDs (:func:`.estimate.map_memory`) are built here, so the fit
    estimate stays exact. A read of the address written at the same clock edge collides (the
    word read is undefined, as the RAM's contract allows).
    """
    width, depth = ram.width, ram.depth
    if getattr(ram, "two_addresses", False) and fifo_read_ports("ecp5", width, depth) == 2:
        return _reading_both(ram)
    blocks = dp16kd_ram_blocks(width, depth)
    mapping = map_memory(NetlistMemory("ram", width, depth, transparent=True), "ecp5")
    if blocks is None or mapping.kind != "block" or mapping.cell != "DP16KD" or mapping.cells != blocks:
        return None
    port = ram_port_width(depth)
    m = Module()
    w_addr, r_addr = Signal(14, name="w_addr"), Signal(14, name="r_addr")
    w_data, r_data = Signal(blocks * port, name="w_data"), Signal(blocks * port, name="r_data")
    m.d.comb += [w_addr.eq(ram.w_addr), r_addr.eq(ram.read_address()), w_data.eq(ram.w_data),
                 ram.r_data.eq(r_data[:width])]
    for b in range(blocks):
        pins = {}
        for side in "AB":
            write = side == "A"
            pins |= {
                f"i_CLK{side}": ClockSignal("sync"),
                f"i_CE{side}": Const(1),
                f"i_OCE{side}": Const(1) if write else ram.r_en,
                f"i_WE{side}": ram.w_en if write else Const(0),
                f"i_RST{side}": Const(0),
            }
            pins |= {f"i_CS{side}{bit}": Const(0) for bit in range(3)}
            pins |= _address_pins(side, w_addr if write else r_addr, port, write)
            for bit in range(SLICE_BITS):
                used = bit < port
                pins[f"i_DI{side}{bit}"] = w_data[b * port + bit] if write and used else Const(0)
                pins[f"o_DO{side}{bit}"] = (r_data[b * port + bit] if not write and used
                                            else Signal(name=f"unused_do{side.lower()}{b}_{bit}"))
        m.submodules[f"dp16kd{b}"] = Instance(
            "DP16KD",
            p_DATA_WIDTH_A=port, p_DATA_WIDTH_B=port,
            p_REGMODE_A="NOREG", p_REGMODE_B="OUTREG",
            p_RESETMODE="SYNC", p_ASYNC_RESET_RELEASE="SYNC",
            p_CSDECODE_A="0b000", p_CSDECODE_B="0b000",
            p_WRITEMODE_A="NORMAL", p_WRITEMODE_B="NORMAL",
            p_GSR="AUTO",
            **pins,
        )
    return m


def _reading_both(ram) -> Module:
    """``ram`` (a RegisteredRAM with two read addresses that Yosys puts in LUT RAM or flip-flops,
    also with two read ports) reading both
    candidate addresses in every cycle, each through its own read port (LUT RAM reads
    asynchronously; Yosys copies the RAM for the second port) into its own latch, and choosing
    the latch by a register of ``r_use_alt``. The RAM's read logic then starts at the address
    registers only: no late choice (a handshake) sits in front of it. The words equal the
    generic RAM's in every cycle (non-transparent latches: a colliding read gives the old word).
    """
    m = Module()
    m.submodules.memory = mem = memory.Memory(shape=ram.width, depth=ram.depth, init=[])
    wp = mem.write_port()
    rp, rp_alt = mem.read_port(), mem.read_port()
    use_alt = Signal(name="use_alt")
    out = Signal(ram.width, name="out", reset_less=True)
    m.d.comb += [
        wp.addr.eq(ram.w_addr), wp.data.eq(ram.w_data), wp.en.eq(ram.w_en),
        rp.addr.eq(ram.r_addr_main), rp_alt.addr.eq(ram.r_addr_alt),
        ram.r_data.eq(out),
    ]
    m.d.sync += use_alt.eq(ram.r_use_alt)
    with m.If(ram.r_en):
        m.d.sync += out.eq(Mux(use_alt, rp_alt.data, rp.data))
    return m


def _fits_signed(value: Value, bits: int) -> bool:
    shape = value.shape()
    return len(value) + (0 if shape.signed else 1) <= bits


def registered_multiplier(m, a, b, *, name: str):
    """``a * b`` two cycles later from MULT18X18Ds with their input and output registers, or None.

    When both operands fit in :data:`MULT_BITS` signed bits that is one block. When only one
    does, the other is cut into 17-bit unsigned pieces and a signed top piece, one block each,
    and the returned value is the sum of the registered partial products shifted into place:
    that adder follows the registers, in the cycle of the consumer, which then holds it and its
    own adder in series (only an operand wider than 18 signed bits is cut, e.g. a neuron state
    of more than 18 bits; none of the demo core's). With both operands wider it
    returns None (the caller keeps its plain registers). The pin use is Yosys's own
    (``lattice/dsp_map_18x18.v``), both operands sign-extended to 18 bits
    (``SIGNEDA = SIGNEDB = 1``). The blocks are the submodules ``name`` (one block) or
    ``name_0``, ``name_1``, ... of ``m``.
    """
    a, b = Value.cast(a), Value.cast(b)
    if not _fits_signed(a, MULT_BITS):
        a, b = b, a
    if not _fits_signed(a, MULT_BITS):
        return None
    # pieces of b: 17-bit unsigned ones from the bottom, then the rest (signed if b is)
    pieces, low = [], 0
    while not _fits_signed(b[low:] if not b.shape().signed else b[low:].as_signed(), MULT_BITS):
        pieces.append((low, b[low:low + MULT_BITS - 1]))
        low += MULT_BITS - 1
    pieces.append((low, b[low:].as_signed() if b.shape().signed else b[low:]))
    terms = []
    for k, (shift, piece) in enumerate(pieces):
        block = name if len(pieces) == 1 else f"{name}_{k}"
        out = _mult18x18d(m, a, piece, name=block)
        terms.append(out.as_signed() << shift)
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def _mult18x18d(m, a, b, *, name: str):
    """One MULT18X18D with its input registers and its output register: the 36-bit signed product
    of two operands of at most 18 signed bits, two cycles later."""
    wide_a = Signal(MULT_BITS, name=f"{name}_a")
    wide_b = Signal(MULT_BITS, name=f"{name}_b")
    out = Signal(2 * MULT_BITS, name=f"{name}_p")
    m.d.comb += [wide_a.eq(a), wide_b.eq(b)]     # sign- or zero-extended by their shapes
    ports = {}
    for i in range(MULT_BITS):
        ports[f"i_A{i}"] = wide_a[i]
        ports[f"i_B{i}"] = wide_b[i]
        ports[f"i_C{i}"] = Const(0, 1)
    for i in range(2 * MULT_BITS):
        ports[f"o_P{i}"] = out[i]
    m.submodules[name] = Instance(
        "MULT18X18D",
        p_REG_INPUTA_CLK="CLK0", p_REG_INPUTA_CE="CE0", p_REG_INPUTA_RST="RST0",
        p_REG_INPUTB_CLK="CLK0", p_REG_INPUTB_CE="CE0", p_REG_INPUTB_RST="RST0",
        p_REG_OUTPUT_CLK="CLK0", p_REG_OUTPUT_CE="CE0", p_REG_OUTPUT_RST="RST0", p_RESETMODE="SYNC",
        p_GSR="DISABLED",
        i_SIGNEDA=Const(1, 1), i_SIGNEDB=Const(1, 1), i_SOURCEA=Const(0, 1), i_SOURCEB=Const(0, 1),
        i_CLK0=ClockSignal("sync"), i_CE0=Const(1, 1), i_RST0=Const(0, 1),
        **ports,
    )
    return out


def ecp5_platform(platform_class):
    """A subclass of the amaranth-boards ECP5 ``platform_class`` whose RegisteredROMs are DP16KDs
    and whose registered products are MULT18X18Ds with their input and output registers."""

    class Platform(platform_class):
        def get_registered_rom(self, rom):
            return registered_rom(rom)

        def get_registered_ram(self, ram):
            return registered_ram(ram)

        def get_registered_multiplier(self, m, a, b, *, name: str):
            return registered_multiplier(m, a, b, name=name)

    Platform.__name__ = Platform.__qualname__ = platform_class.__name__
    return Platform
