"""``skipcore eval``: run the bit-exact golden model of a ``model.skc`` on a dataset.

Prints accuracy, saturation counts and spike rates per layer; ``--json`` writes them. Needs no
torch: only the artifact, the golden model and ``skipcore.datasets``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from skipcore.errors import DatasetError
from skipcore.evaluate import check_data, evaluate_artifact, resolve_data
from skipcore.outputs import OutputPlan, atomic_write_text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("artifact", help="model.skc")
    parser.add_argument("--data", default=None, metavar="NAME_OR_PATH",
                        help="dataset name (mnist1d, ecg, smnist, psmnist) or path (ECG folder, .npz, MNIST IDX "
                             "folder); default: the dataset named in the artifact's provenance")
    parser.add_argument("--split", choices=("train", "val", "test"), default="test", help="default: %(default)s")
    parser.add_argument("--limit", type=int, default=None, help="at most this many samples")
    parser.add_argument("--batch", type=int, default=256, help="golden-model batch size (default %(default)s)")
    parser.add_argument("--json", default=None, metavar="OUT.json", help="write the results as JSON")
    parser.add_argument("--force", action="store_true", help="replace an existing --json file")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from skipcore.errors import ConfigError
    from skipcore.golden.artifact import load

    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be positive, not {args.limit}")
    if args.batch < 1:
        raise ConfigError(f"--batch must be positive, not {args.batch}")
    plan = OutputPlan("eval", inputs=[args.artifact, args.data], force=args.force)
    if args.json:
        plan.file(args.json, "--json")
    console = Console()
    art = load(args.artifact)
    data = resolve_data(args.data, art.provenance, limit=args.limit)
    split = getattr(data, args.split)
    if len(split) == 0:
        raise DatasetError(f"the {args.split} split of {data.info.name!r} is empty")
    check_data(art, data.info)
    with Progress(TextColumn("golden {task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, disable=args.no_progress, transient=True) as bar:
        task = bar.add_task(args.split, total=len(split))
        result = evaluate_artifact(art, split, data.info, batch_size=args.batch,
                                   progress=lambda done: bar.update(task, completed=done))
    prov = art.provenance if isinstance(art.provenance, dict) else {}
    float_acc = prov.get("float_accuracy")

    table = Table(title=f"{Path(args.artifact).name} on {data.info.name} {args.split} ({result['samples']} samples)")
    for col in ("golden accuracy", "float (training time)", "saturation events", "seconds", "neuron-steps/s"):
        table.add_column(col, justify="right")
    sat = ", ".join(f"{k} {v}" for k, v in sorted(result["saturation"].items())) or "0"
    table.add_row(f"{100 * result['accuracy']:.2f} %",
                  f"{100 * float_acc:.2f} % ({prov.get('float_accuracy_split', '?')})" if float_acc is not None else "-",
                  sat, f"{result['seconds']:.2f}",
                  f"{result['neuron_steps_per_s']:.3g}" if result["neuron_steps_per_s"] else "-")
    console.print(table)
    layers = Table(title="layers")
    for col in ("layer", "kind", "neurons", "span", "spike rate", "spikes / sample"):
        layers.add_column(col, justify="right")
    for i, (l, rate, per) in enumerate(zip(art.layers, result["spike_rates"], result["spikes_per_sample"])):
        layers.add_row(str(i), l.kind, str(l.neurons), str(l.span), f"{rate:.4f}", f"{per:.1f}")
    console.print(layers)

    if args.json:
        out = {k: v for k, v in result.items() if k != "predictions"}
        out.update(artifact=str(args.artifact), summary=art.summary(), dataset=data.info.name, split=args.split,
                   float_accuracy=float_acc, provenance=prov)
        plan.prepare()
        path = atomic_write_text(args.json, json.dumps(out, indent=2, default=_json_default) + "\n")
        console.print(f"wrote {path}")
    return 0


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
