"""``skipcore explore``: a design-space grid, its resource and latency estimates, and the Pareto front.

The grid is the product of a small declared list of axes (:data:`AXES`): today ``lanes`` (P)
and ``widths`` (one artifact per weight/state width pair). "E", the events a layer engine takes
per cycle, joins as one more entry of :data:`AXES` when the generator has it; there is no E axis
yet. Each point gets, without running any tool:

* memories and block RAMs: the core's memory inventory (``hdl.plan``, the ``memories`` of
  core.json) plus the board top's event queue mapped onto the board's block RAM shapes
  (:mod:`.estimate`, the same figures ``skipcore build`` checks before synthesis);
* multipliers (DSPs): what each layer's kind asks for (``flow._multipliers``);
* LUT4s and flip-flops: a linear model, ``LUTS = base + per_layer * layers + per_datapath_bit *
  datapath_bits`` with ``datapath_bits = sum over layers and readout of lanes * (acc_bits +
  state_bits)``; its coefficients and the real builds they were fitted on live in
  ``explore_model.json`` next to this file (:func:`fit_model` refits them);
* latency: the cycle bound per step (``golden.cycles`` through ``hdl.generate.activity_summary``)
  at the golden model's measured activity, times the steps of a sequence, at the clock.

A point that does not fit the board (memories, LUTs or DSPs over the device) stays in the table,
marked with the reason; the Pareto front (least latency, LUTs and block RAMs) is taken over the
points that fit. :func:`build_points` then builds the first N Pareto points for real
(:func:`.flow.build`) and records estimate against actual.
"""
from __future__ import annotations

import json
import os
import textwrap
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from skipcore.errors import ConfigError, SkipcoreError
from skipcore.outputs import atomic_path, atomic_write_text

from .estimate import DoesNotFit, check_fit, estimate
from .targets import Target, get_target

__all__ = ["AXES", "Point", "Variant", "MODEL_PATH", "build_points", "estimate_grid", "fit_model", "load_model",
           "pareto_front", "plot_points", "points_table", "built_table", "check_lanes"]

#: The grid's axes, in table order. "E" (events per cycle) becomes one more entry here.
AXES = ("lanes", "widths")

MODEL_PATH = Path(__file__).with_name("explore_model.json")
#: names of the LUT/FF model's features, in the order of its coefficients
FEATURES = ("base", "per_layer", "per_datapath_bit", "per_memory_lut")


@dataclass(frozen=True)
class Variant:
    """One value of the ``widths`` axis: an artifact and where its widths came from."""

    art: Any
    source: str  #: "the artifact" or "PTQ of CHECKPOINT"

    @property
    def label(self) -> str:
        w = self.art.widths
        return f"W{w.weight_bits} S{w.state_bits}"


@dataclass
class Point:
    """One grid point: its axes, the estimate, whether it fits, and the real build when there is one."""

    lanes: int
    widths: str
    weight_bits: int
    state_bits: int
    luts: int = 0
    ffs: int = 0
    brams: int = 0
    dsps: int = 0
    memory_bits: int = 0
    cycles_per_step: float = 0.0
    steps: int = 0
    clock_mhz: float = 0.0
    latency_us: float = 0.0
    fits: bool = True
    why_not: str | None = None
    pareto: bool = False
    built: dict[str, Any] | None = None
    variant: int = field(default=0, repr=False)

    @property
    def name(self) -> str:
        return f"P{self.lanes}_W{self.weight_bits}S{self.state_bits}"

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("variant")
        d["name"] = self.name
        return d


# ------------------------------------------------------------------------------------------------
# the LUT/FF model


#: How Yosys' memory_libmap prices each way to hold a memory (techlibs/lattice and ice40 RAM
#: libraries; memory_libmap's default logic costs): it takes the cheapest, so we do the same.
#: ``bram_cost`` per block; ``lutram`` = (width, depth, cost) of one distributed-RAM cell (ECP5
#: TRELLIS_DPR16X4; iCE40 has none; ROMs never go there); logic costs are per bit.
YOSYS_MEMORY_COSTS = {
    "ecp5": {"bram_cost": 129.0, "lutram": (4, 16, 4.0), "logic_rom": 1 / 16, "logic_ram": 1.0},
    "ice40": {"bram_cost": 64.0, "lutram": None, "logic_rom": 1 / 16, "logic_ram": 1.0},
}
#: the read-only memories of the core (weights and parameter ROMs): everything else is written
ROM_SUFFIXES = ("weights", ".params")


@dataclass(frozen=True)
class MemoryMapping:
    """Where Yosys is expected to put one memory: ``bram`` blocks, ``lutram`` cells or ``logic``."""

    name: str
    kind: str
    blocks: int = 0
    lutram_cells: int = 0
    logic_bits: int = 0


def map_memory(mem: dict, target: Target) -> MemoryMapping:
    """The cheapest of block RAM, distributed RAM and logic for ``mem``, priced as Yosys prices them."""
    from .estimate import blocks_for

    costs = YOSYS_MEMORY_COSTS[target.family]
    name, width, depth = str(mem["name"]), int(mem["width"]), int(mem["depth"])
    bits = width * depth
    rom = name.endswith(ROM_SUFFIXES)
    blocks = blocks_for(width, depth, target.bram_shapes)
    options = [(blocks * costs["bram_cost"], MemoryMapping(name, "bram", blocks=blocks))]
    if costs["lutram"] and not rom:
        w, d, cost = costs["lutram"]
        cells = -(-width // w) * -(-depth // d)
        options.append((cells * cost, MemoryMapping(name, "lutram", lutram_cells=cells)))
    options.append((bits * costs["logic_rom" if rom else "logic_ram"], MemoryMapping(name, "logic", logic_bits=bits)))
    # on a tie Yosys keeps the memory in logic (seen on the iCE40: 128 bits against 2 x 64)
    return min(reversed(options), key=lambda o: o[0])[1]


def datapath_features(plan, target: Target | None = None) -> list[float]:
    """The model's features of a core plan: 1, layers + readout, sum of lanes x (acc + state) bits,
    and the LUTs that Yosys' memory mapping spends on memories (ROM bits / 16 in logic, 4 per
    distributed-RAM cell; RAM bits in flip-flops count one each)."""
    bits = sum(layer.lanes * (layer.acc_bits + layer.state_bits) for layer in plan.layers)
    r = plan.readout
    bits += r.classes * r.readout_bits
    memory_luts = 0.0
    if target is not None:
        for mem in plan.memories():
            m = map_memory(mem, target)
            rom = m.name.endswith(ROM_SUFFIXES)
            memory_luts += 4 * m.lutram_cells + (m.logic_bits / 16 if rom else m.logic_bits)
    return [1.0, float(len(plan.layers) + 1), float(bits), round(memory_luts, 2)]


def load_model(path: str | os.PathLike = MODEL_PATH) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the LUT/FF model {path}: {exc}") from None


def fit_model(builds: Sequence[dict]) -> dict:
    """Non-negative least-squares coefficients per family and resource from builds ``{family, features, luts, ffs}``."""
    from scipy.optimize import nnls

    out: dict[str, dict] = {}
    for family in sorted({b["family"] for b in builds}):
        rows = [b for b in builds if b["family"] == family]
        x = np.array([b["features"] for b in rows], dtype=float)
        coeffs = {}
        for resource in ("luts", "ffs"):
            y = np.array([b[resource] for b in rows], dtype=float)
            # non-negative: every feature costs logic, and a negative coefficient would only fit noise
            sol, _ = nnls(x, y)
            coeffs[resource] = dict(zip(FEATURES, (round(float(v), 4) for v in sol)))
        out[family] = coeffs
    return out


def _predict(coeffs: dict, features: list[float]) -> int:
    return max(0, int(round(sum(coeffs[name] * f for name, f in zip(FEATURES, features)))))


# ------------------------------------------------------------------------------------------------
# the grid


def check_lanes(lanes: Sequence[int]) -> list[int]:
    """The lanes axis, refused in one line when empty or not all positive integers."""
    from skipcore.hdl.plan import MAX_LANES

    values = list(lanes)
    if not values:
        raise ConfigError("the lanes axis is empty: give --lanes a list like 1,2,4,8")
    for p in values:
        if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 1:
            raise ConfigError(f"--lanes values must be integers of at least 1, got {p!r}")
        if p > MAX_LANES:
            raise ConfigError(f"--lanes values must be at most {MAX_LANES}, got {p}")
    return sorted(set(int(p) for p in values))


def measure_spikes(art, x: np.ndarray):
    """The golden model's input events and spikes on ``x`` (the activity behind the cycle bound)."""
    from skipcore.golden.model import run

    gold = run(art, x, traces=True)
    return gold.input_events, gold.spikes


def estimate_point(art, lanes: int, target: Target, activity, *, clock_mhz: float, model: dict,
                   variant: int = 0, queue_depth: int | None = None) -> Point:
    """Estimate one grid point (see the module docstring)."""
    from skipcore.hdl.generate import activity_summary
    from skipcore.hdl.plan import plan_core

    from .flow import _multipliers
    from .protocol import LinkFormat
    from .top import BridgeParams

    w = art.widths
    point = Point(lanes=lanes, widths=f"W{w.weight_bits} S{w.state_bits}", weight_bits=w.weight_bits,
                  state_bits=w.state_bits, clock_mhz=clock_mhz, variant=variant)
    plan = plan_core(art, lanes=lanes, debug=False)
    inventory = plan.memories()
    link = LinkFormat.from_artifact(art)
    depth = queue_depth or BridgeParams(link=link, divisor=1, clock_hz=target.clock_hz, baud=115200,
                                        layers=len(art.layers), artifact_id=b"\0" * 8).resolved_queue_depth
    inventory.append({"name": "board.event_queue", "width": link.index_bits + link.value_bits + 3, "depth": depth})
    est = estimate(inventory, target, multipliers=_multipliers(art, lanes))
    point.memory_bits, point.dsps = est.memory_bits, est.multipliers
    point.brams = sum(map_memory(mem, target).blocks for mem in inventory)
    coeffs = model.get("families", {}).get(target.family)
    if coeffs is None:
        raise ConfigError(f"the LUT/FF model has no coefficients for {target.family} ({target.name})")
    features = datapath_features(plan, target)
    point.luts, point.ffs = _predict(coeffs["luts"], features), _predict(coeffs["ffs"], features)
    input_events, spikes = activity
    summary = activity_summary(plan, input_events, spikes, "")
    point.cycles_per_step, point.steps = summary["per_step_mean"], summary["steps"]
    point.latency_us = round(point.cycles_per_step * point.steps / clock_mhz, 3)
    try:
        check_fit(est, target, what=f"P{lanes} {point.widths}")
    except DoesNotFit as exc:
        point.fits, point.why_not = False, f"memories {exc.needed / 1024:.0f} kbit > {exc.available / 1024:.0f} kbit"
    reasons = []
    if point.fits and point.brams > target.bram_blocks:
        reasons.append(f"BRAM {point.brams} > {target.bram_blocks}")
    if point.luts > target.luts:
        reasons.append(f"LUT {point.luts} > {target.luts}")
    if point.dsps > target.dsps:
        reasons.append(f"DSP {point.dsps} > {target.dsps}")
    if reasons:
        point.fits = False
        point.why_not = "; ".join(filter(None, [point.why_not, *reasons]))
    return point


def estimate_grid(variants: Sequence[Variant], lanes: Sequence[int], board: str, x: np.ndarray, *,
                  clock_mhz: float | None = None, model: dict | None = None,
                  progress: Callable[[str], None] | None = None) -> list[Point]:
    """Every point of lanes x widths, estimated, with the Pareto points marked (see the module docstring)."""
    target = get_target(board)
    if not target.is_board:
        raise ConfigError(f"explore needs a board with a device, not {target.name!r}; choose icebreaker or ulx3s-85f")
    lanes = check_lanes(lanes)
    if not variants:
        raise ConfigError("the widths axis is empty")
    model = model or load_model()
    clock = float(clock_mhz or target.clock_hz / 1e6)
    points = []
    for vi, variant in enumerate(variants):
        if progress:
            progress(f"golden activity of {variant.label}")
        activity = measure_spikes(variant.art, x)
        for p in lanes:
            if progress:
                progress(f"estimating P{p} {variant.label}")
            points.append(estimate_point(variant.art, p, target, activity, clock_mhz=clock, model=model, variant=vi))
    for i in pareto_front(points):
        points[i].pareto = True
    return points


def pareto_front(points: Sequence[Point]) -> list[int]:
    """Indices of the points that fit and that no other fitting point beats on latency, LUTs and BRAM."""
    keys = [(p.latency_us, p.luts, p.brams) for p in points]
    front = []
    for i, p in enumerate(points):
        if not p.fits:
            continue
        dominated = any(
            q.fits and j != i and all(a <= b for a, b in zip(keys[j], keys[i])) and keys[j] != keys[i]
            for j, q in enumerate(points)
        )
        # of equal points (lanes above every layer's size give the same core), keep the first
        duplicate = any(q.fits and j < i and keys[j] == keys[i] for j, q in enumerate(points))
        if not dominated and not duplicate:
            front.append(i)
    return sorted(front, key=lambda i: keys[i])


# ------------------------------------------------------------------------------------------------
# real builds


def _error(estimated: float, actual: float | None) -> float | None:
    if actual is None:
        return None
    if actual == 0:
        return 0.0 if estimated == 0 else None
    return round(100.0 * (estimated - actual) / actual, 1)


def build_points(points: list[Point], variants: Sequence[Variant], board: str, out_dir: str | os.PathLike, count: int,
                 *, freq_mhz: float | None = None, console=None, force: bool = False) -> list[Point]:
    """Build the first ``count`` Pareto points (fastest first) into ``out_dir/NAME``; record actual vs estimate."""
    from .flow import build

    chosen = [p for p in sorted((p for p in points if p.pareto), key=lambda p: p.latency_us)][:count]
    for n, point in enumerate(chosen, 1):
        if console is not None:
            console.print(f"[bold]building {n}/{len(chosen)}:[/] {point.name} (place and route takes minutes)")
        try:
            result = build(variants[point.variant].art, board, Path(out_dir) / point.name, lanes=point.lanes,
                           freq_mhz=freq_mhz, force=force, console=console)
        except SkipcoreError as exc:
            point.built = {"error": str(exc).splitlines()[0]}
            if isinstance(exc, DoesNotFit):
                point.fits, point.why_not = False, f"build: {exc.resource} {exc.needed} > {exc.available}"
            continue
        s = result.summary
        fmax = s.get("fmax_mhz")
        point.built = {
            "luts": s.get("luts"), "ffs": s.get("ffs"), "brams": s.get("brams"), "dsps": s.get("dsps"),
            "fmax_mhz": fmax, "timing_met": s.get("timing_met"),
            "latency_us_at_fmax": round(point.cycles_per_step * point.steps / fmax, 3) if fmax else None,
            "error_percent": {"luts": _error(point.luts, s.get("luts")), "ffs": _error(point.ffs, s.get("ffs")),
                              "brams": _error(point.brams, s.get("brams")), "dsps": _error(point.dsps, s.get("dsps"))},
            "folder": point.name,
        }
    return chosen


# ------------------------------------------------------------------------------------------------
# outputs


def points_table(points: Sequence[Point], title: str):
    """A rich Table of every point: estimate, fit and Pareto mark."""
    from rich.table import Table

    table = Table(title=title)
    for col in ("P", "widths", "LUT4", "FF", "BRAM", "DSP", "cyc/step", "lat us", "fits", "front"):
        table.add_column(col, justify="right", no_wrap=col != "fits")
    for p in points:
        table.add_row(str(p.lanes), p.widths, str(p.luts), str(p.ffs), str(p.brams), str(p.dsps),
                      f"{p.cycles_per_step:.0f}", f"{p.latency_us:.0f}",
                      "yes" if p.fits else f"[red]no: {p.why_not}[/]", "*" if p.pareto else "")
    return table


def built_table(points: Sequence[Point]):
    """Estimate against the real build for the points that were built (None when none was)."""
    from rich.table import Table

    built = [p for p in points if p.built]
    if not built:
        return None
    table = Table(title="estimate vs real build (error = (estimate - real) / real)")
    for col in ("P", "widths", "LUT4 est", "real", "err", "BRAM est", "real", "err", "FF est", "real", "Fmax MHz",
                "lat us @Fmax"):
        table.add_column(col, justify="right")
    for p in built:
        b = p.built
        if b.get("luts") is None:
            table.add_row(str(p.lanes), p.widths, str(p.luts), f"[red]{b.get('error', '')[:70]}[/]")
            continue
        err = b["error_percent"]
        pct = lambda v: "" if v is None else f"{v:+.1f}%"  # noqa: E731
        table.add_row(str(p.lanes), p.widths, str(p.luts), str(b["luts"]), pct(err["luts"]), str(p.brams),
                      str(b["brams"]), pct(err["brams"]), str(p.ffs), str(b["ffs"]), str(b.get("fmax_mhz")),
                      str(b.get("latency_us_at_fmax")))
    return table


def plot_points(points: Sequence[Point], path: str | os.PathLike, title: str) -> Path:
    """Latency against LUT4s and against block RAMs; Pareto front joined, misfits as red crosses,
    built points as hollow squares at their real counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    front = sorted((p for p in points if p.pareto), key=lambda p: p.latency_us)
    for ax, key, label in ((axes[0], "luts", "LUT4s"), (axes[1], "brams", "block RAMs")):
        fit = [p for p in points if p.fits]
        misfit = [p for p in points if not p.fits]
        ax.scatter([getattr(p, key) for p in fit], [p.latency_us for p in fit], c="tab:blue", label="estimate (fits)")
        if misfit:
            ax.scatter([getattr(p, key) for p in misfit], [p.latency_us for p in misfit], c="tab:red", marker="x",
                       label="does not fit")
        if front:
            ax.plot([getattr(p, key) for p in front], [p.latency_us for p in front], "-", c="tab:green", lw=1,
                    zorder=0)
            ax.scatter([getattr(p, key) for p in front], [p.latency_us for p in front], s=120, facecolors="none",
                       edgecolors="tab:green", label="Pareto front")
        built = [p for p in points if p.built and p.built.get(key) is not None]
        if built:
            ax.scatter([p.built[key] for p in built], [p.latency_us for p in built], marker="s", s=60,
                       facecolors="none", edgecolors="black", label="built (actual)")
        for p in points:
            ax.annotate(f"P{p.lanes} {p.widths}", (getattr(p, key), p.latency_us), fontsize=7,
                        textcoords="offset points", xytext=(4, 4))
        ax.set_xlabel(label)
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("latency per sequence (us)")
    axes[0].legend(fontsize=8)
    fig.suptitle(textwrap.fill(title, 120), fontsize=9)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path


def write_json(points: Sequence[Point], path: str | os.PathLike, meta: dict) -> Path:
    data = dict(meta, axes=list(AXES), points=[p.as_dict() for p in points])
    atomic_write_text(path, json.dumps(data, indent=1))
    return Path(path)


family_board = {"ecp5": "ulx3s-85f", "ice40": "icebreaker"}


def calibration_entry(art, lanes: int, family: str, summary: dict, label: str) -> dict:
    """One row of ``explore_model.json``'s ``builds``: a real build's counts and its model features."""
    from skipcore.hdl.plan import plan_core

    return {"family": family, "model": label, "lanes": lanes,
            "features": datapath_features(plan_core(art, lanes=lanes, debug=False), get_target(family_board[family])),
            "luts": summary["luts"], "ffs": summary["ffs"], "brams": summary.get("brams")}


def write_model(builds: Sequence[dict], path: str | os.PathLike = MODEL_PATH, *, note: str = "") -> Path:
    """Fit the LUT/FF model on ``builds`` (:func:`calibration_entry` rows) and write it with them."""
    data = {"features": list(FEATURES),
            "about": "LUT4/FF model of skipcore explore: counts = sum(coefficient * feature); features: 1, "
                     "layers + 1 (readout), sum of lanes x (acc_bits + state_bits) over layers plus classes x "
                     "readout_bits. Fitted by boards.explore.write_model on the real builds listed in 'builds' "
                     "(skipcore build, nextpnr counts). " + note,
            "families": fit_model(builds), "builds": list(builds)}
    atomic_write_text(path, json.dumps(data, indent=1) + "\n")
    return Path(path)
