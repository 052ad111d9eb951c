"""Training of the float networks: presets in, ``best.pt``/``last.pt``/``history.json``/``summary.json`` out.

>>> from skipcore.quant.train import train
>>> summary = train("mnist1d-lif-src", out="runs/m1d", epochs=5)      # doctest: +SKIP
>>> summary["test_acc"]                                                # doctest: +SKIP

Run folder
----------
``best.pt``       the checkpoint with the best validation accuracy (metrics include test_acc)
``last.pt``       the latest epoch with optimizer, scheduler, RNG states (``resume=True``)
``history.json``  one record per epoch (loss, accuracies, lr, ASRC tau and spans, seconds)
``summary.json``  the result: float test accuracy of ``best.pt``, spans, firing rates, timings

Optimizer: one optimizer with three parameter groups as in ASRC-SNN: weights (lr, weight decay),
neuron/readout taus (lr * tau_lr_scale, no decay), ASRC span logits (lr_skip, no decay). The
scheduler (onecycle / step / linear) is stepped once per epoch, and the ASRC temperature is
multiplied by ``tau_decay`` after every epoch.
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from skipcore.errors import ConfigError

from .checkpoint import dataset_info_dict, read_checkpoint, save_checkpoint
from .network import SpikingNetwork
from .presets import TrainConfig, network_config, resolve

__all__ = ["train", "train_run", "resume_run", "evaluate", "build_optimizer", "select_device", "load_data",
           "write_json"]


def select_device(name: str | None = "auto") -> torch.device:
    """``auto`` -> cuda when available, else cpu."""
    name = name or "auto"
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu or cuda[:N]") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda asked for, but no CUDA GPU is available (use --device cpu)")
    return dev


def load_data(cfg: TrainConfig):
    from skipcore.datasets import load_dataset

    return load_dataset(cfg.dataset, cfg.data, seed=cfg.seed, val_fraction=cfg.val_fraction, limit=cfg.limit)


def build_optimizer(network: SpikingNetwork, cfg: TrainConfig):
    """(optimizer, scheduler or None) with the three parameter groups."""
    groups = network.parameter_groups()
    param_groups, max_lrs = [], []
    specs = [("weights", cfg.lr, cfg.weight_decay), ("taus", cfg.lr * cfg.tau_lr_scale, 0.0),
             ("spans", cfg.lr_skip, 0.0)]
    for name, lr, wd in specs:
        if groups[name]:
            param_groups.append({"params": groups[name], "lr": lr, "weight_decay": wd, "name": name})
            max_lrs.append(lr)
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "adamax": torch.optim.Adamax}[cfg.optimizer]
    optimizer = cls(param_groups, lr=cfg.lr, eps=cfg.eps)
    if cfg.scheduler == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lrs, total_steps=cfg.epochs)
    elif cfg.scheduler == "step":
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
    elif cfg.scheduler == "linear":
        epochs = cfg.epochs
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: max(0.0, 1.0 - e / epochs))
    else:
        scheduler = None
    return optimizer, scheduler


@torch.no_grad()
def evaluate(network: SpikingNetwork, split, *, batch: int = 256, device=None, rates: bool = False) -> dict:
    """Loss, accuracy (the deployed prediction rule, eval mode) and optionally firing rates."""
    device = device or next(network.parameters()).device
    dtype = next(network.parameters()).dtype  # an imported state dict may be float64
    was_training = network.training
    network.eval()
    loss_sum, correct, counted, n = 0.0, 0, 0, 0
    spike_sums = None
    steps = 0
    for xb, yb in split.batches(batch):
        x = torch.from_numpy(np.ascontiguousarray(xb)).to(device=device, dtype=dtype)
        y = torch.from_numpy(np.ascontiguousarray(yb)).to(device)
        res = network(x, record=rates)
        out = res.readout if rates else res
        loss_sum += float(network.loss(out, y)) * len(x)
        c, k = network.count_correct(out, y)
        correct, counted, n = correct + c, counted + k, n + len(x)
        if rates:
            sums = [float(s.sum()) for s in res.spikes]
            spike_sums = sums if spike_sums is None else [a + b for a, b in zip(spike_sums, sums)]
            steps = x.shape[1]
    network.train(was_training)
    result = {"loss": loss_sum / max(n, 1), "acc": correct / max(counted, 1), "samples": n}
    if rates and n:
        result["firing_rates"] = [s / (n * steps * layer.neurons) for s, layer in zip(spike_sums, network.layers)]
    return result


def write_json(path: Path, data) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")
    os.replace(tmp, path)


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _rng_state(np_rng: np.random.Generator) -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np_rng.bit_generator.state}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict, np_rng: np.random.Generator) -> None:
    torch.set_rng_state(state["torch"])
    np_rng.bit_generator.state = state["numpy"]
    if "cuda" in state and torch.cuda.is_available():
        try:
            torch.cuda.set_rng_state_all(state["cuda"])
        except RuntimeError:  # different GPU count: dropout stream differs, training still resumes
            pass


#: what a training run writes into its folder; ``train --qat`` adds QAT_FILES (quant.finetune)
TRAIN_FILES = ("best.pt", "last.pt", "history.json", "summary.json")
QAT_FILES = ("model.skc", "qat.pt", "qat_history.json", "qat_summary.json")


def _prepare_out(out: Path, *, resume: bool, force: bool, files=TRAIN_FILES) -> None:
    """Check the run folder (skipcore.outputs: --force replaces only what skipcore wrote there,
    and removes what an earlier ``train`` wrote there and this run does not write again)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} exists and is not a folder")
    if resume:
        if not (out / "last.pt").is_file():
            raise ConfigError(f"cannot resume: {str(out / 'last.pt')!r} does not exist")
        return
    from skipcore.outputs import OutputPlan

    plan = OutputPlan("train", force=force)
    plan.folder(out, "--out", files=files)
    plan.prepare()


def _log_default(msg: str) -> None:
    print(msg, flush=True)


def train(preset: str = "mnist1d-lif-src", *, out: str | os.PathLike, device: str = "auto", force: bool = False,
          resume: bool = False, loaded=None, progress: bool = True, log=_log_default, layers=None, spans=None,
          max_span=None, neuron=None, recurrence=None, outputs=TRAIN_FILES, **train_overrides) -> dict:
    """Train ``preset`` with overrides (see ``presets.resolve``); returns the summary dict.

    With ``resume=True`` the run in ``out`` continues from ``last.pt`` (its stored config is
    used; only ``epochs`` may be raised, and not for the onecycle scheduler).
    ``loaded``: an already loaded ``skipcore.datasets.Dataset`` to use instead of loading
    ``dataset`` (tests, benchmarks). ``dataset`` (a name) and other ``TrainConfig`` fields are
    ordinary overrides.
    """
    if resume:
        return resume_run(out, epochs=train_overrides.get("epochs"), device=device, loaded=loaded,
                          progress=progress, log=log)
    net_template, cfg = resolve(preset, layers=layers, spans=spans, max_span=max_span, neuron=neuron,
                                recurrence=recurrence, **train_overrides)
    return train_run(net_template, cfg, out=out, preset=preset, device=device, force=force, loaded=loaded,
                     progress=progress, log=log, outputs=outputs)


def train_run(net_template: dict, cfg: TrainConfig, *, out, preset: str = "custom", device: str = "auto",
              force: bool = False, loaded=None, progress: bool = True, log=_log_default,
              outputs=TRAIN_FILES) -> dict:
    """Train a network template with a ``TrainConfig`` from scratch into the folder ``out``.

    ``outputs``: the files the run folder receives (TRAIN_FILES, plus QAT_FILES for ``--qat``).
    """
    out = Path(out)
    dev = select_device(device)
    data = loaded if loaded is not None else load_data(cfg)
    config = network_config(net_template, data.info)
    _prepare_out(out, resume=False, force=force, files=outputs)
    torch.manual_seed(cfg.seed)
    np_rng = np.random.default_rng(cfg.seed)
    network = SpikingNetwork(config).to(dev)
    optimizer, scheduler = build_optimizer(network, cfg)
    state = {"epoch": 0, "history": [], "best": {"epoch": -1, "val_acc": -1.0}, "seconds": 0.0}
    return _fit(network, optimizer, scheduler, cfg, data, out=out, preset=preset, np_rng=np_rng, state=state,
                device=dev, progress=progress, log=log)


def resume_run(out, *, epochs: int | None = None, device: str = "auto", loaded=None, progress: bool = True,
               log=_log_default) -> dict:
    """Continue the run in ``out`` from its ``last.pt``."""
    out = Path(out)
    _prepare_out(out, resume=True, force=False)
    ckpt = read_checkpoint(out / "last.pt")
    for key in ("train", "optimizer", "rng", "epoch"):
        if key not in ckpt:
            raise ConfigError(f"{str(out / 'last.pt')!r} cannot be resumed: it lacks {key!r}")
    cfg = TrainConfig.from_dict(ckpt["train"])
    if epochs is not None and epochs != cfg.epochs:
        if cfg.scheduler == "onecycle":
            raise ConfigError(
                f"cannot change --epochs from {cfg.epochs} to {epochs} on resume: the onecycle schedule "
                "is fixed by the epoch count"
            )
        cfg.epochs = int(epochs)
    dev = select_device(device)
    data = loaded if loaded is not None else load_data(cfg)
    from .config import NetworkConfig

    config = NetworkConfig.from_dict(ckpt["config"])
    network = SpikingNetwork(config)
    network.load_state_dict(ckpt["model"])
    network.to(dev)
    optimizer, scheduler = build_optimizer(network, cfg)
    optimizer.load_state_dict(ckpt["optimizer"])
    if scheduler is not None and ckpt.get("scheduler") is not None:
        scheduler.load_state_dict(ckpt["scheduler"])
    np_rng = np.random.default_rng(cfg.seed)
    _set_rng_state(ckpt["rng"], np_rng)
    state = {"epoch": int(ckpt["epoch"]), "history": list(ckpt.get("history", [])),
             "best": dict(ckpt.get("best", {"epoch": -1, "val_acc": -1.0})),
             "seconds": float(ckpt.get("seconds", 0.0))}
    log(f"resuming {str(out)!r} at epoch {state['epoch']} of {cfg.epochs}")
    return _fit(network, optimizer, scheduler, cfg, data, out=out, preset=ckpt.get("preset", "custom"),
                np_rng=np_rng, state=state, device=dev, progress=progress, log=log)


def _progress(iterable, total, desc, enabled):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True, unit="batch", disable=None)


def _fit(network, optimizer, scheduler, cfg: TrainConfig, data, *, out: Path, preset: str, np_rng, state, device,
         progress, log) -> dict:
    info = data.info
    common = dict(network=network, dataset_info=info, train=cfg.to_dict(), preset=preset)
    n_batches = math.ceil(len(data.train) / cfg.batch)
    has_val = len(data.val) > 0
    for epoch in range(state["epoch"], cfg.epochs):
        t0 = time.perf_counter()
        network.train()
        loss_sum, correct, counted, seen = 0.0, 0, 0, 0
        bar = _progress(data.train.batches(cfg.batch, shuffle=True, rng=np_rng), n_batches,
                        f"epoch {epoch + 1}/{cfg.epochs}", progress)
        for xb, yb in bar:
            x = torch.from_numpy(np.ascontiguousarray(xb)).to(device)
            y = torch.from_numpy(np.ascontiguousarray(yb)).to(device)
            out_t = network(x)
            loss = network.loss(out_t, y)
            if not torch.isfinite(loss):
                raise ConfigError(f"training diverged at epoch {epoch + 1} (loss {float(loss)}); lower --lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(network.parameters(), cfg.grad_clip)
            optimizer.step()
            c, k = network.count_correct(out_t.detach(), y)
            loss_sum += float(loss.detach()) * len(x)
            correct, counted, seen = correct + c, counted + k, seen + len(x)
            if progress and hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / counted:.3f}")
        lrs = [g["lr"] for g in optimizer.param_groups]
        if scheduler is not None:
            scheduler.step()
        val = evaluate(network, data.val, batch=cfg.eval_batch, device=device) if has_val else None
        tau = [float(l.tau) for l in network.layers if l.cfg.recurrence == "asrc"]
        network.decrease_tau(cfg.tau_decay)
        seconds = time.perf_counter() - t0
        state["seconds"] += seconds
        record = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / max(seen, 1),
            "train_acc": correct / max(counted, 1),
            "val_loss": val["loss"] if val else None,
            "val_acc": val["acc"] if val else None,
            "lr": lrs[0],
            "spans": network.spans(),
            "asrc_tau": tau[0] if tau else None,
            "seconds": seconds,
        }
        state["history"].append(record)
        state["epoch"] = epoch + 1
        score = val["acc"] if val else -float(record["train_loss"])
        improved = score > state["best"]["val_acc"] if val else True
        if improved:
            state["best"] = {"epoch": epoch + 1, "val_acc": score if val else None}
            save_checkpoint(out / "best.pt", metrics={"val_acc": record["val_acc"], "val_loss": record["val_loss"],
                                                     "train_acc": record["train_acc"], "epoch": epoch + 1},
                            epoch=epoch + 1, **common)
        save_checkpoint(out / "last.pt", metrics={"val_acc": record["val_acc"], "epoch": epoch + 1},
                        epoch=epoch + 1, optimizer=optimizer.state_dict(),
                        scheduler=scheduler.state_dict() if scheduler is not None else None,
                        rng=_rng_state(np_rng), history=state["history"], best=state["best"],
                        seconds=state["seconds"], **common)
        write_json(out / "history.json", state["history"])
        val_txt = f"val loss {record['val_loss']:.4f} acc {record['val_acc']:.4f}" if val else "no val split"
        log(f"epoch {epoch + 1:3d}/{cfg.epochs}  train loss {record['train_loss']:.4f} acc {record['train_acc']:.4f}"
            f"  {val_txt}  spans {record['spans']}  {seconds:.1f}s" + ("  *" if improved else ""))
    return _finish(out, cfg, data, device=device, state=state, preset=preset, log=log)


def _finish(out: Path, cfg: TrainConfig, data, *, device, state, preset, log) -> dict:
    from .checkpoint import load_checkpoint

    best_path = out / "best.pt"
    network, ckpt = load_checkpoint(best_path, map_location=device)
    network.to(device)
    test = evaluate(network, data.test, batch=cfg.eval_batch, device=device, rates=True)
    metrics = dict(ckpt.get("metrics", {}))
    metrics.update(test_acc=test["acc"], test_loss=test["loss"], firing_rates=test.get("firing_rates"))
    extra = {k: ckpt[k] for k in ("train", "preset", "epoch") if k in ckpt}
    save_checkpoint(best_path, network=network, dataset_info=data.info, metrics=metrics, **extra)
    summary = {
        "preset": preset,
        "dataset": dataset_info_dict(data.info),
        "samples": {"train": len(data.train), "val": len(data.val), "test": len(data.test)},
        "epochs": state["epoch"],
        "best_epoch": state["best"]["epoch"],
        "best_val_acc": state["best"]["val_acc"],
        "test_acc": test["acc"],
        "test_loss": test["loss"],
        "spans": network.spans(),
        "firing_rates": test.get("firing_rates"),
        "parameters": network.count_parameters(),
        "train_seconds": state["seconds"],
        "device": str(device),
        "checkpoint": str(best_path),
        "train": cfg.to_dict(),
        "network": network.config.to_dict(),
    }
    write_json(out / "summary.json", summary)
    log(f"best epoch {summary['best_epoch']}: val acc {summary['best_val_acc']}, float test acc {test['acc']:.4f}"
        f" (spans {summary['spans']}, {summary['parameters']} weights)")
    return summary
