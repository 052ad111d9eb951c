"""Many small cores in one simulation: a Verilog wrapper that instantiates several generated cores.

A Verilator build costs seconds of C++ compilation whatever the design's size, so the random-config
tests put many tiny cores into one build. Each core's Verilog keeps its own text; only its module
names get a prefix (``c3__skipcore_core``, ``\\c3__skipcore_core.layer0``), and the wrapper
``skipcore_multi`` exposes core k's ports as ``c{k}_<port>`` with one shared ``clk``/``rst``.

Also :func:`verilog_ports`, the port list of a Verilog module (to check ``core.v`` against
``core.json`` and ``hdl/INTERFACE.md``).
"""
from __future__ import annotations

import re
from pathlib import Path

from .coreio import CoreSpec

__all__ = ["MULTI_TOP", "multicore_verilog", "rename_modules", "verilog_ports"]

MULTI_TOP = "skipcore_multi"

_MODULE_RE = re.compile(r"^\s*module\s+(\\\S+|[A-Za-z_][\w$]*)\s*[(#;]", re.M)


def _module_names(text: str) -> list[str]:
    return _MODULE_RE.findall(text)


def rename_modules(text: str, prefix: str) -> tuple[str, dict[str, str]]:
    """Prefix every module declared in ``text`` (declarations and instantiations)."""
    names = _module_names(text)
    mapping = {}
    for name in names:
        mapping[name] = "\\" + prefix + name[1:] if name.startswith("\\") else prefix + name
    if not mapping:
        return text, mapping
    # A module name appears as `module NAME` or at the start of an instantiation line `NAME inst (`
    # (possibly `NAME #(`). Escaped names end with whitespace.
    alts = "|".join(re.escape(n) for n in sorted(mapping, key=len, reverse=True))
    pattern = re.compile(r"^(\s*(?:module\s+)?)(" + alts + r")(?=\s|\(|#|;)", re.M)
    return pattern.sub(lambda m: m.group(1) + mapping[m.group(2)], text), mapping


def verilog_ports(text: str, module: str) -> dict[str, dict[str, object]]:
    """``{name: {"dir": "in"|"out", "width": w}}`` of ``module`` in Verilog ``text`` (ANSI or not)."""
    start = re.search(r"^\s*module\s+" + re.escape(module) + r"\s*[(#;]", text, re.M)
    if start is None:
        raise ValueError(f"module {module!r} not found")
    end = text.find("endmodule", start.end())
    body = text[start.start(): end if end >= 0 else len(text)]
    ports = {}
    decl = re.compile(
        r"\b(input|output|inout)\s+(?:wire\s+|reg\s+|logic\s+)?(?:signed\s+)?(?:\[\s*(\d+)\s*:\s*(\d+)\s*\]\s*)?"
        r"(\\\S+|[A-Za-z_][\w$]*)"
    )
    for m in decl.finditer(body):
        width = abs(int(m.group(2)) - int(m.group(3))) + 1 if m.group(2) is not None else 1
        d = {"input": "in", "output": "out", "inout": "inout"}[m.group(1)]
        ports[m.group(4)] = {"dir": d, "width": width}
    return ports


#: 1-bit outputs of each core gathered into the wrapper's ``status`` vector, so a testbench reads
#: one signal per cycle instead of (2 + layers) per core.
STATUS_PORTS = ("in_ready", "out_valid")


def status_bits(ports: list[dict[str, dict]]) -> dict[str, int]:
    """Bit index in ``status`` of every wrapper port ``c{k}_in_ready``, ``c{k}_out_valid`` and
    ``c{k}_dbg_l{l}_valid`` that core k has (``ports``: each core's Verilog ports)."""
    bits: dict[str, int] = {}
    for k, p in enumerate(ports):
        layers = sum(1 for n in p if n.startswith("dbg_l") and n.endswith("_valid"))
        for name in [*STATUS_PORTS, *(f"dbg_l{l}_valid" for l in range(layers))]:
            if name in p and p[name]["dir"] == "out" and int(p[name]["width"]) == 1:
                bits[f"c{k}_{name}"] = len(bits)
    return bits


def multicore_verilog(cores: list[tuple[str, CoreSpec]], top: str = MULTI_TOP) -> tuple[str, dict[str, int]]:
    """Verilog of all cores (renamed ``c{k}__...``) plus the wrapper module ``top``, and its status bits.

    Besides every core's ports (``c{k}_<port>``) the wrapper has ``output [S-1:0] status`` holding
    the 1-bit handshake and debug-valid outputs of all cores (see :func:`status_bits`).
    """
    bits = status_bits([verilog_ports(text, spec.top) for text, spec in cores])
    parts = []
    lines = [f"module {top} (", "    input wire clk,", "    input wire rst"]
    body = []
    if bits:
        lines[-1] += ","
        lines.append(f"    output wire [{len(bits) - 1}:0] status")
        body.append(f"  assign status = {{{', '.join(sorted(bits, key=bits.get, reverse=True))}}};")
    for k, (text, spec) in enumerate(cores):
        renamed, mapping = rename_modules(text, f"c{k}__")
        if spec.top not in mapping:
            raise ValueError(f"core {k}: top module {spec.top!r} not found in its Verilog")
        parts.append(renamed)
        ports = verilog_ports(text, spec.top)
        conns = []
        for name, p in ports.items():
            if name in ("clk", "rst"):
                conns.append(f".{name}({name})")
                continue
            w = int(p["width"])
            rng = f"[{w - 1}:0] " if w > 1 else ""
            d = "input" if p["dir"] == "in" else "output"
            lines[-1] += ","
            lines.append(f"    {d} wire {rng}c{k}_{name}")
            conns.append(f".{name}(c{k}_{name})")
        body.append(f"  {mapping[spec.top]} core{k} (\n    " + ",\n    ".join(conns) + "\n  );")
    lines.append(");")
    wrapper = "\n".join(lines) + "\n" + "\n".join(body) + "\nendmodule\n"
    return "\n".join(parts) + "\n" + wrapper, bits


def write_multicore(cores: list[tuple[Path, CoreSpec]], path: Path, top: str = MULTI_TOP) -> dict[str, int]:
    """Write the wrapper for ``(core.v path, spec)`` pairs to ``path``; return its status bits."""
    text, bits = multicore_verilog([(Path(v).read_text(), s) for v, s in cores], top)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return bits
