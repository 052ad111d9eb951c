"""Quantization-aware fine-tuning: float checkpoint in, integer ``model.skc`` out.

>>> from skipcore.quant.finetune import qat_finetune
>>> path = qat_finetune("runs/m1d/best.pt", None, "runs/m1d-qat", epochs=5)   # doctest: +SKIP

The float network is trained through the integer-exact forward pass of ``quant/qat.py`` (the
contract, bit for bit), so the validation accuracy measured during fine-tuning *is* the accuracy
of the artifact. Epoch 0 is plain PTQ; the artifact written is the epoch with the best validation
accuracy, ties broken by the lower validation loss of the integer model (PTQ itself when
fine-tuning does not help), so QAT never ends worse than PTQ on val.

Output folder:

``model.skc``          the artifact (golden-checked on a slice of the validation set)
``qat.pt``             the fine-tuned float checkpoint (same format as ``best.pt``)
``qat_history.json``   one record per epoch (loss, train/val accuracy, seconds)
``qat_summary.json``   float / PTQ / QAT accuracies on val and test, options, timings
"""
from __future__ import annotations

import copy
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from skipcore.errors import ConfigError, DatasetError, SkipcoreError
from skipcore.outputs import atomic_write_text

from .checkpoint import load_checkpoint, save_checkpoint
from .export import ExportOptions, _as_options, checkpoint_provenance, input_spec_for
from .ptq import choose_policy, policy_label
from .qat import QATNetwork, run_qat

__all__ = ["qat_finetune", "evaluate_integer", "load_checkpoint_data"]


def _log_default(msg: str) -> None:
    print(msg, flush=True)


def load_checkpoint_data(ckpt: dict, dataset=None, data_path=None, *, limit: int | None = None, seed: int | None = None):
    """The dataset a checkpoint was trained on (or ``dataset``: a name or a loaded Dataset)."""
    from skipcore.datasets import Dataset, load_dataset

    if isinstance(dataset, Dataset):
        return dataset
    train = ckpt.get("train") or {}
    info = ckpt.get("dataset") or {}
    name = dataset or train.get("dataset") or info.get("name")
    if not name:
        raise DatasetError("the checkpoint does not name its dataset; pass the dataset name (--data NAME)")
    if data_path is None and dataset is None:
        data_path = train.get("data")
    return load_dataset(name, data_path, seed=int(train.get("seed", 0) if seed is None else seed),
                        val_fraction=float(train.get("val_fraction", 0.1)), limit=limit)


def check_compatible(network, info) -> None:
    cfg = network.config
    if info.channels != cfg.input_channels or info.classes != cfg.classes:
        raise ConfigError(
            f"dataset {info.name!r} has {info.channels} channels and {info.classes} classes but the network expects "
            f"{cfg.input_channels} channels and {cfg.classes} classes"
        )
    per_step = cfg.readout.mode == "per_step"
    if per_step != info.per_step:
        raise ConfigError(f"dataset {info.name!r} per_step={info.per_step} does not match the readout mode "
                          f"{cfg.readout.mode!r}")


@torch.no_grad()
def evaluate_integer(qat: QATNetwork, split, *, batch: int = 256) -> dict:
    """Loss and accuracy of the integer forward pass (= the artifact's accuracy) on a split."""
    network = qat.network
    qm = qat.quantized()
    scale = float(qm.readout.scale)
    loss_sum, correct, counted, n = 0.0, 0, 0, 0
    for xb, yb in split.batches(batch):
        out = qat(xb)
        y = torch.from_numpy(np.ascontiguousarray(yb)).to(out.device)
        loss_sum += float(network.loss(qat.logits(out, scale).float(), y)) * len(xb)
        c, k = network.count_correct(out, y)
        correct, counted, n = correct + c, counted + k, n + len(xb)
    return {"loss": loss_sum / max(n, 1), "acc": correct / max(counted, 1), "samples": n}


@torch.no_grad()
def _float_accuracy(network, split, batch: int = 256) -> float:
    from .train import evaluate

    return float(evaluate(network, split, batch=batch, device=next(network.parameters()).device)["acc"])


def qat_finetune(checkpoint_path: str | os.PathLike, dataset=None, out_dir: str | os.PathLike = "runs/qat",
                 epochs: int = 5, lr: float | None = None, export_options: ExportOptions | dict | None = None, *,
                 data_path: str | os.PathLike | None = None, batch: int | None = None, limit: int | None = None,
                 seed: int = 0, force: bool = False, progress: bool = True, log=_log_default,
                 check_golden: int = 64, eval_batch: int = 256, device: str = "cpu") -> Path:
    """Fine-tune a float checkpoint with the integer-exact forward pass; write ``model.skc``.

    Parameters
    ----------
    checkpoint_path:
        A float checkpoint (``best.pt`` of ``skipcore train``).
    dataset:
        Dataset name (``mnist1d``, ``ecg``, ...), a loaded ``skipcore.datasets.Dataset``, or None
        for the checkpoint's own dataset (and its ``--data`` path, seed and val fraction).
    out_dir:
        Output folder (``model.skc``, ``qat.pt``, ``qat_history.json``, ``qat_summary.json``).
    epochs:
        Fine-tuning epochs (0: PTQ only, still golden-checked and written).
    lr:
        Learning rate of the weights (Adam, cosine decay to 0 over the run); None: a tenth of the
        checkpoint's training lr. Neuron and readout time constants use the checkpoint's
        ``tau_lr_scale`` times it; ASRC span logits are frozen (the deployed span is fixed).
    export_options:
        :class:`ExportOptions` or a dict (weight_bits, state_bits, readout_bits, decay_bits,
        input_bits, input_frac_bits, decay_mode, scale_policy, threshold_steps, percentile). QAT
        starts from the scale policy's integers and keeps the policy while it trains; ``auto``
        first picks the policy whose PTQ is best on the validation split (golden model).
    data_path, batch, limit, seed:
        Dataset location, batch size (default: the checkpoint's), samples per split, shuffle seed.
    force:
        Replace an existing ``model.skc`` in ``out_dir``.
    check_golden:
        Compare QAT with the golden model on this many validation samples (0: skip).
    device:
        ``cpu`` (default), ``cuda`` or ``auto``; the integer forward pass is float64 on any device.

    Returns
    -------
    pathlib.Path
        The written ``model.skc``.
    """
    from skipcore.golden import model as golden
    from skipcore.golden.artifact import save

    opts = _as_options(export_options)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ConfigError(f"epochs must be a non-negative integer, not {epochs!r}")
    out = Path(out_dir)
    art_path = out / "model.skc"
    if art_path.exists() and not force:
        raise ConfigError(f"{str(art_path)!r} exists; pass force=True (CLI: --force) to replace it")
    from .train import select_device

    dev = select_device(device)
    network, ckpt = load_checkpoint(checkpoint_path)
    network.to(dev)
    train_cfg = ckpt.get("train") or {}
    data = load_checkpoint_data(ckpt, dataset, data_path, limit=limit)
    check_compatible(network, data.info)
    if lr is None:
        lr = 0.1 * float(train_cfg.get("lr", 1e-3))
    if not isinstance(lr, (int, float)) or not lr > 0:
        raise ConfigError(f"lr must be a positive number, not {lr!r}")
    batch = int(batch or train_cfg.get("batch", 64))
    info = data.info
    input_spec = input_spec_for(info.input_kind, info.channels, opts, x=data.train.x)
    has_val = len(data.val) > 0
    select = data.val if has_val else data.train
    policy_choices = None
    if opts.scale_policy == "auto":
        # QAT starts from the integers of the policy that PTQ finds best on the validation split
        network.eval()
        opts, _, policy_choices = choose_policy(network, input_spec, opts, select, info, batch_size=eval_batch)
        log("scale policy auto: " + ", ".join(f"{r['policy']} {r['accuracy']:.4f}" for r in policy_choices)
            + f" -> {policy_label(opts)}")
    qat = QATNetwork(network, opts, input_spec=input_spec)
    log(f"QAT: {qat.to_artifact().summary()}  input {input_spec.kind} {input_spec.bits}b "
        f"frac {input_spec.frac_bits}; {epochs} epochs, lr {lr:g}, batch {batch}")

    groups = network.parameter_groups()
    tau_scale = float(train_cfg.get("tau_lr_scale", 1.0))
    param_groups = [{"params": groups["weights"], "lr": lr}]
    if groups["taus"]:
        param_groups.append({"params": groups["taus"], "lr": lr * tau_scale})
    for p in groups["spans"]:
        p.requires_grad_(False)
    optimizer = torch.optim.Adam(param_groups, lr=lr)
    n_batches = max(1, math.ceil(len(data.train) / batch))
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs * n_batches))
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)

    t_start = time.perf_counter()
    float_val = _float_accuracy(network, select, eval_batch)
    base = evaluate_integer(qat, select, batch=eval_batch)
    log(f"epoch   0 (PTQ)  val acc {base['acc']:.4f} loss {base['loss']:.4f} (float {float_val:.4f})")
    best = {"epoch": 0, "acc": base["acc"], "loss": base["loss"], "state": copy.deepcopy(network.state_dict())}
    history = [{"epoch": 0, "train_loss": None, "train_acc": None, "val_loss": base["loss"], "val_acc": base["acc"],
                "seconds": time.perf_counter() - t_start}]
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        network.train()
        loss_sum, correct, counted, seen = 0.0, 0, 0, 0
        batches = data.train.batches(batch, shuffle=True, rng=rng)
        if progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, total=n_batches, desc=f"QAT epoch {epoch}/{epochs}", leave=False,
                           dynamic_ncols=True, unit="batch")
        for xb, yb in batches:
            y = torch.from_numpy(np.ascontiguousarray(yb)).to(dev)
            out_t = qat(xb)
            loss = network.loss(qat.logits(out_t).float(), y)
            if not torch.isfinite(loss):
                raise ConfigError(f"QAT diverged at epoch {epoch} (loss {float(loss)}); lower --lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            # a non-finite gradient would make the weights NaN (and the gate tables' indices garbage)
            grad_norm = torch.nn.utils.clip_grad_norm_([p for g in param_groups for p in g["params"]], math.inf)
            if not torch.isfinite(grad_norm):
                raise ConfigError(f"QAT diverged at epoch {epoch} (a gradient is not finite); lower --qat-lr")
            optimizer.step()
            network.constrain()
            scheduler.step()
            c, k = network.count_correct(out_t.detach(), y)
            loss_sum += float(loss.detach()) * len(xb)
            correct, counted, seen = correct + c, counted + k, seen + len(xb)
            if progress and hasattr(batches, "set_postfix"):
                batches.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / counted:.3f}")
        network.eval()
        val = evaluate_integer(qat, select, batch=eval_batch)
        seconds = time.perf_counter() - t0
        # equal accuracy (common on a small validation split): the lower integer-model loss, i.e. the
        # larger margins, wins, so a tie never pins the result to the PTQ start
        improved = val["acc"] > best["acc"] or (val["acc"] == best["acc"] and val["loss"] < best["loss"])
        if improved:
            best = {"epoch": epoch, "acc": val["acc"], "loss": val["loss"], "state": copy.deepcopy(network.state_dict())}
        history.append({"epoch": epoch, "train_loss": loss_sum / max(seen, 1), "train_acc": correct / max(counted, 1),
                        "val_loss": val["loss"], "val_acc": val["acc"], "seconds": seconds})
        log(f"epoch {epoch:3d}/{epochs}  train loss {loss_sum / max(seen, 1):.4f} acc {correct / max(counted, 1):.4f}"
            f"  val acc {val['acc']:.4f} loss {val['loss']:.4f}  {seconds:.1f}s" + ("  *" if improved else ""))

    network.load_state_dict(best["state"])
    network.eval()
    network.to("cpu")
    metrics = dict(ckpt.get("metrics") or {})
    float_test = metrics.get("test_acc")
    provenance = checkpoint_provenance(ckpt, checkpoint_path, opts, method="qat", qat_epochs=epochs,
                                       qat_best_epoch=best["epoch"], qat_val_accuracy=best["acc"],
                                       ptq_val_accuracy=base["acc"], float_val_accuracy=float_val)
    if policy_choices is not None:
        provenance["scale_policy_auto"] = {"split": "val" if has_val else "train", "chosen": policy_label(opts),
                                           "trace_bits": opts.trace_bits, "fold": opts.fold or "float",
                                           "candidates": policy_choices}
    art = qat.to_artifact(provenance)
    if check_golden:
        xs = select.x[:check_golden]
        g = golden.run(art, xs)
        q = run_qat(art, xs)
        if not np.array_equal(g.readout, q["readout"]):  # pragma: no cover - the contract is shared
            raise SkipcoreError("internal error: the QAT forward pass and the golden model disagree on the artifact")
    test_res = golden.run_batched(art, data.test.x, batch_size=eval_batch)
    from skipcore.datasets import accuracy

    golden_test = accuracy(info, data.test.y, test_res.predictions)
    out.mkdir(parents=True, exist_ok=True)
    save(art, art_path, overwrite=True)
    save_checkpoint(out / "qat.pt", network=network, dataset_info=info,
                    metrics={"val_acc": best["acc"], "golden_test_acc": golden_test, "float_test_acc": float_test},
                    train=train_cfg, preset=ckpt.get("preset", "custom"), epoch=best["epoch"],
                    qat={"epochs": epochs, "lr": lr, "batch": batch, "export_options": opts.to_dict(),
                         "source": str(checkpoint_path)})
    summary = {
        "checkpoint": str(checkpoint_path),
        "artifact": str(art_path),
        "summary": art.summary(),
        "export_options": opts.to_dict(),
        "scale_policy": policy_label(opts),
        "policy_choices": policy_choices,
        "input": {"kind": art.input.kind, "bits": art.input.bits, "frac_bits": art.input.frac_bits},
        "epochs": epochs,
        "best_epoch": best["epoch"],
        "float_val_acc": float_val,
        "ptq_val_acc": base["acc"],
        "qat_val_acc": best["acc"],
        "float_test_acc": float_test,
        "golden_test_acc": golden_test,
        "saturation_test": test_res.saturation,
        "seconds": time.perf_counter() - t_start,
    }
    atomic_write_text(out / "qat_history.json", json.dumps(history, indent=2) + "\n")
    atomic_write_text(out / "qat_summary.json", json.dumps(summary, indent=2) + "\n")
    log(f"QAT best epoch {best['epoch']}: val acc {best['acc']:.4f} (PTQ {base['acc']:.4f}, float {float_val:.4f}); "
        f"golden test acc {golden_test:.4f}" + (f" (float {float_test:.4f})" if float_test is not None else "")
        + f" -> {art_path}")
    return art_path
