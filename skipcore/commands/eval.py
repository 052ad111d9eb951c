"""``skipcore eval``: run the bit-exact golden model of a ``model.skc`` on a dataset.

Prints accuracy, saturation counts and spike rates per layer; ``--json`` writes them. Needs no
torch: only the artifact, the golden model and ``skipcore.datasets``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from skipcore.errors import DatasetError, SkipcoreError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("artifact", help="model.skc")
    parser.add_argument("--data", default=None, metavar="NAME_OR_PATH",
                        help="dataset name (mnist1d, ecg, smnist, psmnist) or path (ECG folder, .npz, MNIST IDX "
                             "folder); default: the dataset named in the artifact's provenance")
    parser.add_argument("--split", choices=("train", "val", "test"), default="test", help="default: %(default)s")
    parser.add_argument("--limit", type=int, default=None, help="at most this many samples")
    parser.add_argument("--batch", type=int, default=256, help="golden-model batch size (default %(default)s)")
    parser.add_argument("--json", default=None, metavar="OUT.json", help="write the results as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def resolve_data(data: str | None, provenance: dict, *, limit: int | None = None):
    """Load the dataset for an artifact: ``data`` is a dataset name, a path, or None (provenance)."""
    from skipcore.datasets import DATASETS, load_dataset

    prov = provenance if isinstance(provenance, dict) else {}
    prov_name = prov.get("dataset")
    seed = int(prov.get("dataset_seed", 0))
    val_fraction = float(prov.get("val_fraction", 0.1))
    if data is None:
        if not prov_name:
            raise DatasetError("the artifact's provenance names no dataset; pass --data NAME_OR_PATH")
        return load_dataset(prov_name, prov.get("dataset_path"), seed=seed, val_fraction=val_fraction, limit=limit)
    key = str(data).strip().lower()
    if key in DATASETS and not Path(data).exists():
        path = prov.get("dataset_path") if key == prov_name else None
        return load_dataset(key, path, seed=seed, val_fraction=val_fraction, limit=limit)
    path = Path(data)
    if not path.exists():
        raise DatasetError(f"--data {data!r} is neither a dataset name ({', '.join(DATASETS)}) nor an existing path")
    if prov_name in DATASETS and prov_name != "npz":
        name = prov_name
    elif path.suffix == ".npz":
        name = "npz"
    elif path.is_dir() and (path / "QTDB_train.mat").exists():
        name = "ecg"
    else:
        raise DatasetError(f"cannot tell which dataset {data!r} holds; pass a dataset name with it "
                           f"(the artifact's provenance names none)")
    return load_dataset(name, path, seed=seed, val_fraction=val_fraction, limit=limit)


def check_data(art, info) -> None:
    """Raise a SkipcoreError when the dataset does not fit the artifact."""
    problems = []
    if info.channels != art.input.channels:
        problems.append(f"{info.channels} input channels, the artifact expects {art.input.channels}")
    if info.classes != art.classes:
        problems.append(f"{info.classes} classes, the artifact has {art.classes}")
    if info.per_step != (art.readout.mode == "per_step"):
        problems.append(f"{'per-step' if info.per_step else 'per-sequence'} labels, the artifact's readout mode is "
                        f"{art.readout.mode!r}")
    if art.input.kind == "spike" and info.input_kind != "spike":
        problems.append(f"{info.input_kind} inputs, the artifact takes spikes (0/1)")
    if problems:
        raise SkipcoreError(f"dataset {info.name!r} does not match the artifact: " + "; ".join(problems))


def evaluate_artifact(art, split, info, *, batch_size: int = 256, progress=None) -> dict:
    """Golden accuracy of ``art`` on ``split``, with saturation counts and spike rates per layer."""
    from skipcore.datasets import accuracy
    from skipcore.golden import model as golden

    check_data(art, info)
    if split.x.shape[1] < 1:
        raise SkipcoreError("the split has no time steps")
    t0 = time.perf_counter()
    res = golden.run_batched(art, split.x, batch_size=batch_size, progress=progress)
    seconds = time.perf_counter() - t0
    n, steps = split.x.shape[0], split.x.shape[1]
    acc = accuracy(info, split.y, res.predictions)
    neuron_steps = n * steps * sum(l.neurons for l in art.layers)
    return {
        "accuracy": acc,
        "samples": int(n),
        "steps": int(steps),
        "saturation": {k: int(v) for k, v in res.saturation.items()},
        "spike_rates": [float(c.sum()) / (n * steps * l.neurons) for c, l in zip(res.spike_counts, art.layers)],
        "spikes_per_sample": [float(c.mean()) for c in res.spike_counts],
        "input_events_per_step": float(res.input_events.mean()) if res.input_events is not None else None,
        "seconds": seconds,
        "neuron_steps_per_s": neuron_steps / seconds if seconds > 0 else None,
        "predictions": res.predictions,
    }


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
    for col in ("golden accuracy", "float (provenance)", "saturation events", "seconds", "neuron-steps/s"):
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
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=2, default=_json_default) + "\n")
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
