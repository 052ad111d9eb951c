"""Post-training quantization of checkpoints, and the bit-width sweep.

``quantize_checkpoint`` is ``skipcore quantize``; ``sweep_bits`` is ``skipcore sweep``. Both use
:func:`quant.export.export_artifact` (the contract's section 7) and measure the artifact with the
golden model, which is the reference the hardware reproduces.
"""
from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from skipcore.errors import ConfigError, DatasetError
from skipcore.outputs import atomic_path, atomic_write_text

from .checkpoint import load_checkpoint
from .export import ExportOptions, _as_options, checkpoint_provenance, export_artifact, input_spec_for

__all__ = ["quantize_checkpoint", "sweep_bits", "checkpoint_dataset", "golden_accuracy", "float_accuracy"]


def checkpoint_dataset(ckpt: dict, data: str | os.PathLike | None = None, *, limit: int | None = None,
                       required: bool = True):
    """Load the dataset of a checkpoint. ``data``: None (the checkpoint's), a name, a path or a Dataset.

    With ``required=False`` a missing dataset gives None instead of an error.
    """
    from skipcore.datasets import DATASETS, Dataset, data_format

    from .finetune import load_checkpoint_data

    if isinstance(data, Dataset):
        return data
    try:
        if data is None:
            return load_checkpoint_data(ckpt, None, None, limit=limit)
        if str(data).strip().lower() in DATASETS:
            return load_checkpoint_data(ckpt, str(data).strip().lower(), None, limit=limit)
        if not Path(data).exists():
            raise DatasetError(f"--data {str(data)!r} is neither a dataset name ({', '.join(DATASETS)}) nor an existing path")
        train = ckpt.get("train") or {}
        name = train.get("dataset") or (ckpt.get("dataset") or {}).get("name")
        found = data_format(data)  # a path is read in the format it holds, not as the training set
        if found is not None and not (found == "smnist" and name == "psmnist"):
            name = found
        return load_checkpoint_data(ckpt, name, data, limit=limit)
    except DatasetError:
        if required:
            raise
        return None


def golden_accuracy(art, split, info, *, batch_size: int = 256, progress=None):
    """(accuracy, GoldenResult) of the artifact on a split, with the golden model."""
    from skipcore.datasets import accuracy
    from skipcore.golden import model as golden

    res = golden.run_batched(art, split.x, batch_size=batch_size, progress=progress)
    return accuracy(info, split.y, res.predictions), res


def float_accuracy(network, split, *, batch: int = 256) -> float:
    from .train import evaluate

    return float(evaluate(network, split, batch=batch, device=torch.device("cpu"))["acc"])


def _input_spec(ckpt: dict, network, data, opts: ExportOptions):
    info = data.info if data is not None else None
    kind = info.input_kind if info is not None else (ckpt.get("dataset") or {}).get("input_kind")
    channels = network.config.input_channels
    if kind is None:
        raise ConfigError("the checkpoint does not record its input kind and no dataset is available; pass --data")
    if data is not None:
        return input_spec_for(kind, channels, opts, x=data.train.x)
    if kind == "real" and opts.input_frac_bits is None:
        raise ConfigError("the dataset is not available to choose the input's frac_bits; pass --data or "
                          "--input-frac-bits")
    if kind == "count" and opts.input_bits is None:
        raise ConfigError("the dataset is not available to size the count input; pass --data or --input-bits")
    return input_spec_for(kind, channels, opts)


def quantize_checkpoint(checkpoint: str | os.PathLike, out: str | os.PathLike | None = None,
                        options: ExportOptions | dict | None = None, *, data=None, limit: int | None = None,
                        force: bool = False, evaluate: bool = True, split: str = "val", batch_size: int = 256,
                        progress=None) -> dict:
    """PTQ of a float checkpoint into an artifact, written to ``out`` when given.

    Returns a report: ``artifact`` (the Artifact), ``path`` (or None), ``input`` spec, and, when
    the dataset is available and ``evaluate``: ``split``, ``float_acc``, ``golden_acc``,
    ``saturation``, ``spike_rates`` and ``samples``.
    """
    from skipcore.golden.artifact import save

    opts = _as_options(options)
    if out is not None and Path(out).exists() and not force:
        raise ConfigError(f"{str(out)!r} exists; pass --force to replace it")
    if split not in ("train", "val", "test"):
        raise ConfigError(f"split must be train, val or test, not {split!r}")
    network, ckpt = load_checkpoint(checkpoint)
    dataset = checkpoint_dataset(ckpt, data, limit=limit, required=data is not None)
    if dataset is not None:
        from .finetune import check_compatible

        check_compatible(network, dataset.info)
    input_spec = _input_spec(ckpt, network, dataset, opts)
    prov = checkpoint_provenance(ckpt, checkpoint, opts, method="ptq")
    art = export_artifact(network, opts, input_spec=input_spec, provenance=prov)
    report: dict = {"artifact": art, "path": None, "input": input_spec, "checkpoint": str(checkpoint),
                    "float_accuracy_recorded": prov.get("float_accuracy")}
    if dataset is not None and evaluate:
        part = getattr(dataset, split)
        if len(part) == 0:
            part, split = dataset.test, "test"
        t0 = time.perf_counter()
        acc, res = golden_accuracy(art, part, dataset.info, batch_size=batch_size, progress=progress)
        seconds = time.perf_counter() - t0
        steps = part.x.shape[1]
        report.update(
            split=split, samples=len(part), float_acc=float_accuracy(network, part, batch=batch_size), golden_acc=acc,
            saturation=res.saturation, golden_seconds=seconds,
            spike_rates=[float(c.sum()) / (len(part) * steps * l.neurons) for c, l in zip(res.spike_counts, art.layers)],
        )
    if out is not None:
        report["path"] = save(art, out, overwrite=force)
    return report


def sweep_bits(checkpoint: str | os.PathLike, data=None, out_dir: str | os.PathLike | None = None, *,
               weight_bits=tuple(range(2, 17)), state_bits=tuple(range(8, 25)), base: ExportOptions | dict | None = None,
               split: str = "test", limit: int | None = None, batch_size: int = 256, headroom: bool = True,
               log=None) -> dict:
    """PTQ accuracy (golden model) against weight bits and against state bits.

    ``base`` gives the fixed widths (default W8 S16 R24 D8). The state sweep keeps the base's
    weight and readout bits. The weight sweep keeps the base's state and readout bits when
    ``headroom`` is False; with ``headroom`` (default) they follow the weight bits with the base's
    headroom (``S - W``, ``R - W``; clamped to the contract's limits), because every export maps
    the largest weight to the full W-bit range, so a wider weight needs a wider state to hold the
    same membrane. Each row records the widths it used. Writes ``sweep.json`` and ``sweep.png``
    into ``out_dir`` when given. Returns the sweep dict.
    """
    import json

    opts = _as_options(base)
    for name, values, (lo, hi) in (("weight_bits", weight_bits, (2, 16)), ("state_bits", state_bits, (8, 32))):
        values = list(values)
        if not values:
            raise ConfigError(f"the {name} sweep is empty")
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= int(v) <= hi:
                raise ConfigError(f"{name} sweep value {v!r} is impossible: the contract allows {lo}..{hi}")
    network, ckpt = load_checkpoint(checkpoint)
    dataset = checkpoint_dataset(ckpt, data, limit=limit)
    from .finetune import check_compatible

    check_compatible(network, dataset.info)
    part = getattr(dataset, split, None)
    if part is None:
        raise ConfigError(f"split must be train, val or test, not {split!r}")
    f_acc = float_accuracy(network, part, batch=batch_size)

    def point(o: ExportOptions) -> dict:
        spec = input_spec_for(dataset.info.input_kind, network.config.input_channels, o, x=dataset.train.x)
        art = export_artifact(network, o, input_spec=spec)
        acc, res = golden_accuracy(art, part, dataset.info, batch_size=batch_size)
        row = {"weight_bits": o.weight_bits, "state_bits": o.state_bits, "readout_bits": o.readout_bits,
               "decay_bits": o.decay_bits, "accuracy": acc, "saturation": dict(res.saturation)}
        if log:
            log(f"W{o.weight_bits:<2d} S{o.state_bits:<2d}  acc {acc:.4f}  saturation {sum(res.saturation.values())}")
        return row

    t0 = time.perf_counter()
    def weight_point(w: int) -> ExportOptions:
        if not headroom:
            return replace(opts, weight_bits=w)
        state = min(32, max(8, opts.state_bits + w - opts.weight_bits))
        readout = min(40, max(8, opts.readout_bits + w - opts.weight_bits))
        return replace(opts, weight_bits=w, state_bits=state, readout_bits=readout)

    w_rows = [point(weight_point(int(w))) for w in weight_bits]
    s_rows = [point(replace(opts, state_bits=int(s))) for s in state_bits]
    result = {
        "checkpoint": str(checkpoint),
        "dataset": dataset.info.name,
        "split": split,
        "samples": len(part),
        "float_accuracy": f_acc,
        "base_options": opts.to_dict(),
        "headroom": bool(headroom),
        "weight_sweep": w_rows,
        "state_sweep": s_rows,
        "seconds": time.perf_counter() - t0,
    }
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "sweep.json", json.dumps(result, indent=2) + "\n")
        plot_sweep(result, out / "sweep.png")
        result["files"] = [str(out / "sweep.json"), str(out / "sweep.png")]
    return result


def plot_sweep(result: dict, path: str | os.PathLike) -> Path:
    """Two panels: accuracy vs weight bits and vs state bits, with the float accuracy as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    base = result["base_options"]
    w_fixed = "state W+" + str(base["state_bits"] - base["weight_bits"]) if result.get("headroom") else \
        f"state {base['state_bits']} bits"
    for ax, key, xkey, fixed in ((axes[0], "weight_sweep", "weight_bits", w_fixed),
                                 (axes[1], "state_sweep", "state_bits", f"weights {base['weight_bits']} bits")):
        rows = result[key]
        ax.plot([r[xkey] for r in rows], [100 * r["accuracy"] for r in rows], "o-", label="PTQ (golden)")
        ax.axhline(100 * result["float_accuracy"], color="gray", ls="--", label="float")
        ax.set_xlabel(xkey.replace("_", " ") + f"  ({fixed})")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"{result['split']} accuracy (%)")
    axes[0].legend(loc="lower right")
    fig.suptitle(f"{result['dataset']}: {Path(result['checkpoint']).name}")
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
    return path
