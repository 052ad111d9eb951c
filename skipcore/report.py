"""The verification report: one JSON file, a Markdown summary, PNG figures and a rich table.

The JSON schema (keys are stable; later tools read them):

```
accuracy.{float,golden,rtl}                 fractions in [0, 1], measured on this data; float is null
                                            (verify runs no float model)
float_training.{accuracy,dataset,split}     the float accuracy recorded at training time (provenance),
                                            on the training-time data: not comparable with the above
mismatches.{samples,steps,count,first}      samples x steps compared, differing (sample, step) pairs
mismatches.compared                         what the fast RTL run was compared in (every neuron's spikes)
cycles.{mean_per_step,max_per_step,bound_per_step,ratio_mean,ratio_max}
build.{board,luts,ffs,brams,dsps,fmax_mhz}  null values when no build ran
throughput.{clock_mhz,clock_source,samples_per_s,latency_us,steps_per_s}
```
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from skipcore.outputs import atomic_path, atomic_write_text


@dataclass
class VerifyReport:
    model: str
    dataset: str
    samples: int
    steps: int
    accuracy: dict[str, float | None]
    mismatches: dict[str, Any]
    cycles: dict[str, float | None]
    build: dict[str, Any]
    throughput: dict[str, float | None]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "dataset": self.dataset,
            "samples": self.samples,
            "steps": self.steps,
            "accuracy": self.accuracy,
            "mismatches": self.mismatches,
            "cycles": self.cycles,
            "build": self.build,
            "throughput": self.throughput,
            **self.extra,
        }


def cycle_summary(cycles_per_step: np.ndarray, bound_per_step: np.ndarray) -> dict[str, float]:
    """Mean/max measured cycles per step against the bound (both (samples, steps))."""
    cycles = np.asarray(cycles_per_step, dtype=np.float64)
    bound = np.asarray(bound_per_step, dtype=np.float64)
    ratio = cycles / np.maximum(bound, 1)
    return {
        "mean_per_step": float(cycles.mean()),
        "max_per_step": float(cycles.max()),
        "bound_per_step": float(bound.mean()),
        "bound_max_per_step": float(bound.max()),
        "ratio_mean": float(cycles.sum() / max(bound.sum(), 1)),
        "ratio_max": float(ratio.max()),
    }


def throughput(cycles_per_sample: float, steps: int, clock_mhz: float | None, source: str) -> dict[str, Any]:
    if not clock_mhz:
        return {"clock_mhz": None, "clock_source": source, "samples_per_s": None, "latency_us": None,
                "steps_per_s": None, "cycles_per_sample": cycles_per_sample}
    hz = clock_mhz * 1e6
    return {
        "clock_mhz": clock_mhz,
        "clock_source": source,
        "samples_per_s": hz / cycles_per_sample,
        "latency_us": cycles_per_sample / clock_mhz,
        "steps_per_s": hz * steps / cycles_per_sample,
        "cycles_per_sample": cycles_per_sample,
    }


def write(report: VerifyReport, out_dir: Path, json_path: Path | None = None) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = json_path or out_dir / "report.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(json_path, json.dumps(report.to_json(), indent=2, default=_json_default))
    md = out_dir / "report.md"
    atomic_write_text(md, markdown(report))
    return {"json": json_path, "markdown": md}


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def _pct(v):
    return "n/a" if v is None else f"{100 * v:.2f} %"


def _num(v, fmt="{:.1f}"):
    return "n/a" if v is None else fmt.format(v)


def _float_row(measured, training) -> str:
    if measured is not None:
        return _pct(measured)
    if training and training.get("accuracy") is not None:
        return (f"not measured here; at training time {_pct(training['accuracy'])} on "
                f"{training.get('dataset') or '?'} {training.get('split') or '?'}")
    return "not measured here"


def rows(report: VerifyReport) -> list[tuple[str, str]]:
    a, m, c, b, t = report.accuracy, report.mismatches, report.cycles, report.build, report.throughput
    out = [
        ("model", report.model),
        ("dataset", f"{report.dataset} ({report.samples} samples x {report.steps} steps)"),
        ("accuracy float", _float_row(a.get("float"), report.extra.get("float_training"))),
        ("accuracy golden (integer)", _pct(a.get("golden"))),
        ("accuracy RTL", _pct(a.get("rtl"))),
        ("mismatches RTL vs golden", f"{m.get('count')} of {m.get('samples')} samples x {m.get('steps')} steps"),
    ]
    if m.get("compared"):
        out.append(("  compared (fast RTL)", str(m["compared"])))
    if m.get("cocotb"):
        cc = m["cocotb"]
        out.append(("  of which cocotb, every neuron", f"{cc.get('count', 'error')} in {cc.get('samples')} samples"))
    out += [
        ("cycles per step (mean / max)", f"{_num(c.get('mean_per_step'))} / {_num(c.get('max_per_step'), '{:.0f}')}"),
        ("cycle bound per step (mean)", _num(c.get("bound_per_step"))),
        ("measured / bound (mean / max)", f"{_num(c.get('ratio_mean'), '{:.3f}')} / {_num(c.get('ratio_max'), '{:.3f}')}"),
    ]
    if b.get("board"):
        out += [
            ("board", str(b.get("board"))),
            ("LUTs / FFs", f"{b.get('luts')} / {b.get('ffs')}"),
            ("BRAMs / DSPs", f"{b.get('brams')} / {b.get('dsps')}"),
            ("Fmax", f"{_num(b.get('fmax_mhz'), '{:.1f}')} MHz"),
        ]
    out += [
        ("clock used", f"{_num(t.get('clock_mhz'), '{:.1f}')} MHz ({t.get('clock_source')})"),
        ("throughput", f"{_num(t.get('samples_per_s'), '{:,.0f}')} samples/s"),
        ("latency per sample", f"{_num(t.get('latency_us'), '{:,.1f}')} us"),
    ]
    fast = report.extra.get("fast_runner")
    if fast:
        jobs = fast.get("jobs", 1)
        out.append(("fast RTL simulation", f"{_num(fast.get('cycles_per_s', 0) / 1e6, '{:.2f}')} M cycles/s, "
                    f"{_num(fast.get('seconds'), '{:.1f}')} s ({jobs} process{'es' if jobs != 1 else ''})"))
    return out


def markdown(report: VerifyReport) -> str:
    lines = ["# skipcore verification report", "", "| quantity | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows(report)]
    figs = report.extra.get("figures", {})
    if figs:
        lines += ["", "## Figures", ""]
        lines += [f"![{name}]({Path(p).name})" for name, p in figs.items()]
    first = report.mismatches.get("first")
    if first:
        lines += ["", f"First mismatch: {first}"]
    return "\n".join(lines) + "\n"


def print_table(report: VerifyReport, title: str = "skipcore verify") -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for k, v in rows(report):
        table.add_row(k, v)
    Console().print(table)


def plot_raster(golden_spikes: list[np.ndarray], rtl_spikes: list[np.ndarray] | None, path: Path,
                title: str = "spike raster") -> Path:
    """Per-layer raster of one sample: golden dots, RTL rings (they coincide when bit-exact)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = len(golden_spikes)
    fig, axes = plt.subplots(layers, 1, figsize=(9, 2.2 * layers + 0.6), squeeze=False, sharex=True)
    for index, ax in enumerate(axes[:, 0]):
        t, n = np.nonzero(golden_spikes[index])
        ax.scatter(t, n, s=6, c="k", marker=".", label="golden")
        if rtl_spikes is not None:
            t2, n2 = np.nonzero(rtl_spikes[index])
            ax.scatter(t2, n2, s=22, facecolors="none", edgecolors="tab:red", linewidths=0.6, label="RTL")
        ax.set_ylabel(f"layer {index}\nneuron")
        if index == 0:
            ax.legend(loc="upper right", fontsize=7)
    axes[-1, 0].set_xlabel("step")
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path


def plot_cycles(cycles_per_step: np.ndarray, bound_per_step: np.ndarray, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.6))
    cyc = np.asarray(cycles_per_step).ravel()
    bnd = np.asarray(bound_per_step).ravel()
    bins = np.linspace(0, max(cyc.max(), bnd.max()) + 1, 50)
    ax.hist(cyc, bins=bins, alpha=0.7, label="measured")
    ax.hist(bnd, bins=bins, alpha=0.5, label="bound")
    ax.set_xlabel("cycles per step")
    ax.set_ylabel("steps")
    ax.legend()
    ax.set_title("cycles per step: RTL against the bound")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path
