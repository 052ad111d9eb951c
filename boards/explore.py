"""``skipcore explore``: a design-space grid, its resource and latency estimates, and the Pareto front.

The grid is the product of a small declared list of axes (:data:`AXES`): today ``lanes`` (P)
and ``widths`` (one artifact per weight/state width pair). "E", the events a layer engine takes
per cycle, joins as one more entry of :data:`AXES` when the generator has it; there is no E axis
yet. Each point gets, without running any tool:

* LUT4s, flip-flops, block RAMs and DSPs of the board design (core + UART bridge):
  :func:`.estimate.estimate_design`, from the same ``hdl.plan`` the generator elaborates. Block
  RAMs: every memory (banked weight ROMs included) mapped as Yosys' memory_libmap maps it; LUTs
  and flip-flops: per component (units, engine, ring, decoders, FIFOs, readout, bridge) from
  its structure, with coefficients fitted on real builds (benchmarks/calibrate_estimate.py);
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

__all__ = ["AXES", "Point", "Variant", "build_points", "estimate_grid", "grid_options", "pareto_front", "plot_points",
           "plot_series", "points_table", "built_table", "check_lanes"]

#: The grid's generator-option axes, in table order: each value is passed by its name to the
#: plan, the estimate and the build (``plan_core(art, lanes=P)``, ``build(..., lanes=P)``), and
#: ``OPTION_LABELS`` gives its letter in point names. "E" (events per cycle) joins as
#: ``"events"`` here and in ``OPTION_LABELS`` once the generator and ``skipcore build`` take it.
OPTION_AXES = ("lanes",)
OPTION_LABELS = {"lanes": "P"}
#: every axis: the option axes, then ``widths`` (one artifact per weight/state width pair)
AXES = OPTION_AXES + ("widths",)


def grid_options(axes: dict[str, Sequence[int]]) -> list[dict[str, int]]:
    """Every combination of the option axes' values (first axis slowest), as generator options."""
    import itertools

    missing = [a for a in OPTION_AXES if a not in axes]
    unknown = [a for a in axes if a not in OPTION_AXES]
    if missing or unknown:
        raise ConfigError(f"the grid's option axes are {', '.join(OPTION_AXES)}; "
                          f"missing {missing or 'none'}, unknown {unknown or 'none'}")
    return [dict(zip(OPTION_AXES, combo)) for combo in itertools.product(*(axes[a] for a in OPTION_AXES))]



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
    #: the generator options of the point (its option axes: ``{"lanes": P}``)
    options: dict[str, int] = field(default_factory=dict)
    #: the estimate's detail: memories and where Yosys puts them, LUTs and FFs per component
    estimate: dict[str, Any] = field(default_factory=dict, repr=False)
    variant: int = field(default=0, repr=False)

    @property
    def name(self) -> str:
        options = self.options or {"lanes": self.lanes}
        return "_".join(f"{OPTION_LABELS[k]}{v}" for k, v in options.items()) + \
            f"_W{self.weight_bits}S{self.state_bits}"

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("variant")
        d["name"] = self.name
        return d


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


def estimate_point(art, options: dict[str, int], target: Target, activity, *, clock_mhz: float, variant: int = 0,
                   queue_depth: int | None = None) -> Point:
    """Estimate one grid point: ``options`` are the generator options of its axes (``{"lanes": P}``)."""
    from skipcore.hdl.generate import activity_summary
    from skipcore.hdl.plan import plan_core

    from .estimate import estimate_design

    w = art.widths
    lanes = options["lanes"]
    point = Point(lanes=lanes, widths=f"W{w.weight_bits} S{w.state_bits}", weight_bits=w.weight_bits,
                  state_bits=w.state_bits, clock_mhz=clock_mhz, variant=variant, options=dict(options))
    design = estimate_design(art, target, queue_depth=queue_depth, **options)
    if not design.components:
        raise ConfigError(f"the resource estimate has no LUT coefficients for {target.family} ({target.name})")
    point.luts, point.ffs, point.brams, point.dsps = design.luts, design.ffs, design.brams, design.dsps
    point.memory_bits, point.estimate = design.memory_bits, design.as_dict()
    plan = plan_core(art, debug=False, **options)
    input_events, spikes = activity
    summary = activity_summary(plan, input_events, spikes, "")
    point.cycles_per_step, point.steps = summary["per_step_mean"], summary["steps"]
    point.latency_us = round(point.cycles_per_step * point.steps / clock_mhz, 3)
    est = estimate([{"name": m.memory.name, "width": m.memory.width, "depth": m.memory.depth}
                    for m in design.mappings], target)
    try:
        check_fit(est, target, what=f"P{lanes} {point.widths}")
    except DoesNotFit as exc:
        point.fits, point.why_not = False, f"memories {exc.needed / 1024:.0f} kbit > {exc.available / 1024:.0f} kbit"
    reasons = []
    if point.fits and point.brams > target.bram_blocks:
        reasons.append(f"BRAM {point.brams} > {target.bram_blocks}")
    if design.logic_cells > target.luts:
        what = "logic cells" if target.family == "ice40" else "LUT"
        reasons.append(f"{what} {design.logic_cells} > {target.luts}")
    if point.dsps > target.dsps:
        reasons.append(f"DSP {point.dsps} > {target.dsps}")
    if reasons:
        point.fits = False
        point.why_not = "; ".join(filter(None, [point.why_not, *reasons]))
    return point


def estimate_grid(variants: Sequence[Variant], axes: Sequence[int] | dict[str, Sequence[int]], board: str,
                  x: np.ndarray, *, clock_mhz: float | None = None,
                  progress: Callable[[str], None] | None = None) -> list[Point]:
    """Every point of the option axes x widths, estimated, with the Pareto points marked (see the
    module docstring). ``axes``: the option axes' values (``{"lanes": [1, 2, 4]}``), or the lanes alone."""
    target = get_target(board)
    if not target.is_board:
        raise ConfigError(f"explore needs a board with a device, not {target.name!r}; choose icebreaker or ulx3s-85f")
    axes = dict(axes) if isinstance(axes, dict) else {"lanes": axes}
    axes["lanes"] = check_lanes(axes.get("lanes", ()))
    if not variants:
        raise ConfigError("the widths axis is empty")
    options = grid_options(axes)
    clock = float(clock_mhz or target.clock_hz / 1e6)
    points = []
    for vi, variant in enumerate(variants):
        if progress:
            progress(f"golden activity of {variant.label}")
        activity = measure_spikes(variant.art, x)
        for opts in options:
            if progress:
                progress(f"estimating {' '.join(f'{OPTION_LABELS[k]}{v}' for k, v in opts.items())} {variant.label}")
            points.append(estimate_point(variant.art, opts, target, activity, clock_mhz=clock, variant=vi))
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
            result = build(variants[point.variant].art, board, Path(out_dir) / point.name, freq_mhz=freq_mhz,
                           force=force, console=console, **(point.options or {"lanes": point.lanes}))
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
    table = Table(title="estimate vs real build (error = (estimate - real) / real; FF and DSP for information)")
    for col in ("P", "widths", "LUT4 est", "real", "err", "BRAM est", "real", "err", "FF est", "real", "err",
                "DSP est", "real", "Fmax MHz", "lat us @Fmax"):
        table.add_column(col, justify="right")
    for p in built:
        b = p.built
        if b.get("luts") is None:
            table.add_row(str(p.lanes), p.widths, str(p.luts), f"[red]{b.get('error', '')[:70]}[/]")
            continue
        err = b["error_percent"]
        pct = lambda v: "" if v is None else f"{v:+.1f}%"  # noqa: E731
        table.add_row(str(p.lanes), p.widths, str(p.luts), str(b["luts"]), pct(err["luts"]), str(p.brams),
                      str(b["brams"]), pct(err["brams"]), str(p.ffs), str(b["ffs"]), pct(err["ffs"]), str(p.dsps),
                      str(b["dsps"]), str(b.get("fmax_mhz")), str(b.get("latency_us_at_fmax")))
    return table


def plot_series(points: Sequence[Point], key: str) -> dict[str, list[tuple[float, float, str]]]:
    """What one panel of the plot draws, as (x, latency, label) per series: ``fits``, ``misfit``
    (points that do not fit, never dropped), ``front`` (the Pareto front, fastest first) and
    ``built`` (the real counts of the built points). ``key``: "luts" or "brams"."""
    label = lambda p: f"P{p.lanes} {p.widths}"  # noqa: E731
    at = lambda p: (float(getattr(p, key)), p.latency_us, label(p))  # noqa: E731
    return {
        "fits": [at(p) for p in points if p.fits],
        "misfit": [at(p) for p in points if not p.fits],
        "front": [at(p) for p in sorted((p for p in points if p.pareto), key=lambda p: p.latency_us)],
        "built": [(float(p.built[key]), p.latency_us, label(p)) for p in points
                  if p.built and p.built.get(key) is not None],
    }


def plot_points(points: Sequence[Point], path: str | os.PathLike, title: str) -> Path:
    """Latency against LUT4s and against block RAMs (:func:`plot_series`): estimates as dots, the
    Pareto front joined and ringed, misfits as red crosses, built points as hollow squares at
    their real counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for ax, key, label in ((axes[0], "luts", "LUT4s"), (axes[1], "brams", "block RAMs")):
        series = plot_series(points, key)
        xs = lambda name: [s[0] for s in series[name]]  # noqa: E731
        ys = lambda name: [s[1] for s in series[name]]  # noqa: E731
        ax.scatter(xs("fits"), ys("fits"), c="tab:blue", label="estimate (fits)")
        if series["misfit"]:
            ax.scatter(xs("misfit"), ys("misfit"), c="tab:red", marker="x", label="does not fit")
        if series["front"]:
            ax.plot(xs("front"), ys("front"), "-", c="tab:green", lw=1, zorder=0)
            ax.scatter(xs("front"), ys("front"), s=120, facecolors="none", edgecolors="tab:green",
                       label="Pareto front")
        if series["built"]:
            ax.scatter(xs("built"), ys("built"), marker="s", s=60, facecolors="none", edgecolors="black",
                       label="built (actual)")
        for x, y, text in series["fits"] + series["misfit"]:
            ax.annotate(text, (x, y), fontsize=7, textcoords="offset points", xytext=(4, 4))
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
