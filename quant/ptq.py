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
from skipcore.golden.artifact import max_trace_bits
from skipcore.outputs import atomic_path, atomic_write_text

from .checkpoint import load_checkpoint
from .export import ExportOptions, _as_options, checkpoint_provenance, export_artifact, input_spec_for, network_folds

__all__ = ["quantize_checkpoint", "quantize_float_network", "sweep_bits", "checkpoint_dataset", "golden_accuracy",
           "float_accuracy", "policy_candidates", "policy_label", "choose_policy", "trace_bits_candidates",
           "fold_candidates"]

#: what ``scale_policy="auto"`` tries, in this order (ties keep the earlier, simpler one)
AUTO_CANDIDATES = (
    ("max", {}),
    *(("threshold", {"threshold_steps": k}) for k in range(2, 9)),
    ("percentile", {"percentile": 99.9}),
    ("percentile", {"percentile": 99.0}),
)


def policy_label(opts: ExportOptions) -> str:
    """``max``, ``threshold k=6`` or ``percentile 99.9``, with `` T=8`` when the options set the
    ALIF trace's fraction bits (``trace_bits``; unset: the top of its range) and `` fold=decay``
    when they fold the integer decay's complement (``fold``; unset or ``float``: the float one)."""
    label = opts.scale_policy
    if opts.scale_policy == "threshold":
        label = f"threshold k={opts.threshold_steps}"
    elif opts.scale_policy == "percentile":
        label = f"percentile {opts.percentile:g}"
    if opts.trace_bits is not None:
        label = f"{label} T={opts.trace_bits}"
    return label if opts.fold in (None, "float") else f"{label} fold={opts.fold}"


def trace_bits_candidates(opts: ExportOptions) -> tuple[int, ...]:
    """The trace fraction bits ``auto`` tries when the network's kinds use them: the export's
    default (the top of the range) first, then ``decay_bits`` (the coarse trace of version 1 and 2
    artifacts, which can suit weights rounded to few bits better). An explicit ``trace_bits`` is
    kept as it is: ``()``."""
    if opts.trace_bits is not None:
        return ()
    top = max_trace_bits(opts.state_bits, opts.readout_bits, opts.decay_bits)
    return tuple(dict.fromkeys((top, opts.decay_bits)))


def fold_candidates(opts: ExportOptions) -> tuple[str, ...]:
    """The folds ``auto`` tries when a kind of the network folds its decay into its rows: the
    default ``float`` first, then ``decay``. An explicit ``fold`` is kept as it is: ``()``."""
    return () if opts.fold is not None else ("float", "decay")


def policy_candidates(opts: ExportOptions, *, trace_bits: bool = False, fold: bool = False) -> list[ExportOptions]:
    """The export options ``auto`` tries (every other policy is its own single candidate).

    ``trace_bits``: the network computes with ``widths.trace_bits`` (``Artifact.uses_trace_bits``);
    then ``auto`` also tries each of :func:`trace_bits_candidates`. ``fold``: a kind of the network
    folds its decay into its rows (``quant.export.network_folds``); then ``auto`` also tries each of
    :func:`fold_candidates`. Every policy comes at the first trace before any at the next, and
    every trace at the first fold before any at the next (ties keep the defaults).
    """
    if opts.scale_policy != "auto":
        return [opts]
    policies = [replace(opts, scale_policy=name, **extra) for name, extra in AUTO_CANDIDATES]
    traces = trace_bits_candidates(opts) if trace_bits else ()
    if len(traces) >= 2:
        policies = [replace(p, trace_bits=t) for t in traces for p in policies]
    folds = fold_candidates(opts) if fold else ()
    if len(folds) >= 2:
        policies = [replace(p, fold=f) for f in folds for p in policies]
    return policies


def clipped_total(art) -> int:
    clipped = (art.provenance or {}).get("clipped_weights") or {}
    return int(sum(clipped.get("layers") or [])) + int(clipped.get("readout") or 0)


def choose_policy(network, input_spec, opts: ExportOptions, split, info, *, batch_size: int = 256,
                  provenance: dict | None = None, log=None) -> tuple[ExportOptions, object, list[dict]]:
    """Export with every candidate of ``opts`` (``auto``: :data:`AUTO_CANDIDATES`), measure each on
    ``split`` with the golden model, keep the most accurate (ties: the earlier).

    When the network computes with ``widths.trace_bits`` (an ALIF layer or readout) and ``opts``
    leaves it unset, ``auto`` also tries each of :func:`trace_bits_candidates` (the chosen options
    then set ``trace_bits``); likewise each of :func:`fold_candidates` where a kind folds its
    decay into its rows and ``opts`` leaves ``fold`` unset. Explicit values are kept.

    Returns ``(chosen options, its artifact, rows)``; each row holds ``policy``, ``trace_bits``, ``fold``, ``accuracy``,
    ``saturation`` (events), ``clipped`` (weights) and ``weight_exps``, and ``same_as`` (the earlier
    candidate) when a candidate gives the very integers of an earlier one (it is not run again).
    """
    rows, best, seen = [], None, []
    candidates = policy_candidates(opts)
    if opts.scale_policy == "auto" and (trace_bits_candidates(opts) or fold_candidates(opts)):
        # the kinds say whether the trace's fraction bits (the exported artifact's) and the fold matter
        uses_trace = bool(trace_bits_candidates(opts)) and export_artifact(
            network, candidates[0], input_spec=input_spec, provenance=provenance).uses_trace_bits
        candidates = policy_candidates(opts, trace_bits=uses_trace,
                                       fold=bool(fold_candidates(opts)) and network_folds(network))
    for cand in candidates:
        art = export_artifact(network, cand, input_spec=input_spec, provenance=provenance)
        twin = next((i for i, (widths, layers, readout) in enumerate(seen)
                     if widths == art.widths and layers == art.layers and readout == art.readout), None)
        seen.append((art.widths, art.layers, art.readout))
        row = {"policy": policy_label(cand), "trace_bits": art.widths.trace_bits, "fold": cand.fold or "float",
               "clipped": clipped_total(art),
               "weight_exps": [[l.input_exp, l.recurrent_exp] for l in art.layers] + [[art.readout.weight_exp]]}
        if twin is not None:
            row.update(accuracy=rows[twin]["accuracy"], saturation=rows[twin]["saturation"],
                       same_as=rows[twin].get("same_as", rows[twin]["policy"]))
        else:
            acc, res = golden_accuracy(art, split, info, batch_size=batch_size)
            row.update(accuracy=acc, saturation=int(sum(res.saturation.values())))
        rows.append(row)
        acc = row["accuracy"]
        if log:
            log(f"{row['policy']:<16s} acc {acc:.4f}  saturation {row['saturation']}  clipped {row['clipped']}"
                + (f"  (= {row['same_as']})" if "same_as" in row else ""))
        if best is None or acc > best[2]:
            best = (cand, art, acc)
    return best[0], best[1], rows


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
    opts = _as_options(options)
    if out is not None and Path(out).exists() and not force:
        raise ConfigError(f"{str(out)!r} exists; pass --force to replace it")
    if split not in ("train", "val", "test"):
        raise ConfigError(f"split must be train, val or test, not {split!r}")
    network, ckpt = load_checkpoint(checkpoint)
    dataset = checkpoint_dataset(ckpt, data, limit=limit, required=data is not None or opts.scale_policy == "auto")
    recorded_kind = (ckpt.get("dataset") or {}).get("input_kind") if dataset is None else None
    report = quantize_float_network(network, opts, dataset=dataset, input_kind=recorded_kind,
                                    provenance=lambda o: checkpoint_provenance(ckpt, checkpoint, o, method="ptq"),
                                    evaluate=evaluate, split=split, batch_size=batch_size, progress=progress)
    report["checkpoint"] = str(checkpoint)
    report["float_accuracy_recorded"] = report["artifact"].provenance.get("float_accuracy")
    if out is not None:
        from skipcore.golden.artifact import save

        report["path"] = save(report["artifact"], out, overwrite=force)
    return report


def quantize_float_network(network, options: ExportOptions | dict | None = None, *, dataset=None,
                           input_kind: str | None = None, provenance=None, evaluate: bool = True,
                           split: str = "val", batch_size: int = 256, progress=None) -> dict:
    """PTQ of a float network (``quant.network.SpikingNetwork``) into an artifact (not written).

    ``dataset`` (a loaded ``skipcore.datasets.Dataset`` or None) sets the input quantisation,
    lets ``auto`` choose its policy on the validation split (the training split when there is
    none; never the test split) and, with ``evaluate``, compares float and golden on ``split``.
    ``auto`` needs it. ``input_kind`` is used without a dataset (and must agree with one).
    ``provenance``: a dict, or a function of the chosen ExportOptions giving one.

    Returns the report of :func:`quantize_checkpoint` (``path`` None).
    """
    opts = _as_options(options)
    if split not in ("train", "val", "test"):
        raise ConfigError(f"split must be train, val or test, not {split!r}")
    auto = opts.scale_policy == "auto"
    if auto and dataset is None:
        raise ConfigError("--scale-policy auto picks by validation accuracy and needs the dataset: pass --data "
                          "NAME_OR_PATH, or choose max, threshold or percentile")
    if dataset is not None:
        from .finetune import check_compatible

        check_compatible(network, dataset.info)
        if input_kind is not None and input_kind != dataset.info.input_kind:
            raise ConfigError(f"the input kind {input_kind!r} does not match the dataset's "
                              f"({dataset.info.input_kind!r}); drop --input-kind or pass the right one")
    input_spec = _input_spec({"dataset": {"input_kind": input_kind}}, network, dataset, opts)
    choices = chooser_name = None
    if auto:
        # chosen on the validation split (the training split when there is none), never on the test split
        chooser, chooser_name = (dataset.val, "val") if len(dataset.val) else (dataset.train, "train")
        opts, _, choices = choose_policy(network, input_spec, opts, chooser, dataset.info, batch_size=batch_size)
    prov = dict((provenance(opts) if callable(provenance) else provenance) or {})
    prov["export_options"] = opts.to_dict()
    if choices is not None:
        # trace_bits: the chosen options' (auto sets it where it tried several; None: the top of the range)
        prov["scale_policy_auto"] = {"split": chooser_name, "chosen": policy_label(opts), "trace_bits": opts.trace_bits,
                                     "fold": opts.fold or "float", "candidates": choices}
    art = export_artifact(network, opts, input_spec=input_spec, provenance=prov)
    report: dict = {"artifact": art, "path": None, "input": input_spec, "options": opts,
                    "scale_policy": policy_label(opts), "policy_choices": choices,
                    "clipped_weights": art.provenance.get("clipped_weights")}
    if choices is not None:
        report["policy_split"] = chooser_name
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
    return report


def sweep_bits(checkpoint: str | os.PathLike, data=None, out_dir: str | os.PathLike | None = None, *,
               weight_bits=tuple(range(2, 17)), state_bits=tuple(range(8, 25)), base: ExportOptions | dict | None = None,
               split: str = "test", limit: int | None = None, batch_size: int = 256, headroom: bool = True,
               policies=("max",), log=None) -> dict:
    """PTQ accuracy (golden model) against weight bits and against state bits.

    ``base`` gives the fixed widths (default W8 S16 R24 D8). The state sweep keeps the base's
    weight and readout bits. The weight sweep keeps the base's state and readout bits when
    ``headroom`` is False; with ``headroom`` (default) they follow the weight bits with the base's
    headroom (``S - W``, ``R - W``; clamped to the contract's limits), because every export maps
    the largest weight to the full W-bit range, so a wider weight needs a wider state to hold the
    same membrane. ``policies`` is the scale-policy axis (``max``, ``threshold``, ``percentile``,
    with the base's ``threshold_steps`` and ``percentile``): every width is exported with each.
    Each row records the widths and the policy it used. Writes ``sweep.json`` and ``sweep.png``
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
    policies = list(policies)
    if not policies:
        raise ConfigError("the scale-policy sweep is empty")
    for name in policies:
        if name not in ("max", "threshold", "percentile"):
            raise ConfigError(f"scale policy {name!r} cannot be a sweep axis value: use max, threshold or percentile "
                              "(auto picks one of them per export; the sweep shows each)")
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
               "decay_bits": o.decay_bits, "scale_policy": policy_label(o), "accuracy": acc,
               "saturation": dict(res.saturation), "clipped": clipped_total(art)}
        if log:
            log(f"W{o.weight_bits:<2d} S{o.state_bits:<2d} {policy_label(o):<16s} acc {acc:.4f}  "
                f"saturation {sum(res.saturation.values())}  clipped {row['clipped']}")
        return row

    t0 = time.perf_counter()
    def weight_point(w: int) -> ExportOptions:
        if not headroom:
            return replace(opts, weight_bits=w)
        state = min(32, max(8, opts.state_bits + w - opts.weight_bits))
        readout = min(40, max(8, opts.readout_bits + w - opts.weight_bits))
        return replace(opts, weight_bits=w, state_bits=state, readout_bits=readout)

    w_rows = [point(replace(weight_point(int(w)), scale_policy=p)) for p in policies for w in weight_bits]
    s_rows = [point(replace(opts, state_bits=int(s), scale_policy=p)) for p in policies for s in state_bits]
    result = {
        "checkpoint": str(checkpoint),
        "dataset": dataset.info.name,
        "split": split,
        "samples": len(part),
        "float_accuracy": f_acc,
        "base_options": opts.to_dict(),
        "headroom": bool(headroom),
        "policies": policies,
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
        for policy in dict.fromkeys(r.get("scale_policy", "max") for r in result[key]):
            rows = [r for r in result[key] if r.get("scale_policy", "max") == policy]
            ax.plot([r[xkey] for r in rows], [100 * r["accuracy"] for r in rows], "o-", label=f"PTQ {policy} (golden)")
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
