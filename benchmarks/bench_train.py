"""Training benchmark: throughput of every preset, and (``--full``) real training runs.

    python benchmarks/bench_train.py                     # throughput table (random data of each shape)
    python benchmarks/bench_train.py --full              # + train the MNIST-1D presets and srnn-ecg
    python benchmarks/bench_train.py --full --ecg-epochs 30 --presets mnist1d-lif-src

Throughput is training samples per second (forward + backward + optimizer step, train mode) on
random inputs with each preset's dataset shape and batch size, warm-up batch excluded. Evaluation
throughput (eval mode, no gradient) is reported too. ``--json PATH`` writes the results.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from skipcore.quant.network import SpikingNetwork
from skipcore.quant.presets import PRESETS, network_config, resolve
from skipcore.quant.train import build_optimizer, select_device, train

#: dataset shapes, so throughput needs no data download: (steps, channels, classes, per_step, skip)
SHAPES = {
    "mnist1d": (40, 1, 10, False, 0),
    "ecg": (1301, 4, 6, True, 10),
    "smnist": (784, 1, 10, False, 0),
    "psmnist": (784, 1, 10, False, 0),
}
FULL_PRESETS = ("mnist1d-lif-src", "mnist1d-lif-asrc", "mnist1d-alif", "srnn-ecg")


class _Info:
    def __init__(self, name, steps, channels, classes, per_step, skip):
        self.name, self.steps, self.channels, self.classes = name, steps, channels, classes
        self.per_step, self.skip_steps, self.input_kind = per_step, skip, "real"


def throughput(preset: str, *, batches: int, device, batch: int | None = None) -> dict:
    net_t, cfg = resolve(preset, batch=batch)
    steps, channels, classes, per_step, skip = SHAPES[cfg.dataset]
    info = _Info(cfg.dataset, steps, channels, classes, per_step, skip)
    torch.manual_seed(0)
    net = SpikingNetwork(network_config(net_t, info)).to(device)
    opt, _ = build_optimizer(net, cfg)
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(cfg.batch, steps, channels, generator=gen) * (3.0 if cfg.dataset == "mnist1d" else 1.0)).to(device)
    y = (torch.randint(0, classes, (cfg.batch, steps) if per_step else (cfg.batch,), generator=gen)).to(device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def train_batch():
        out = net(x)
        loss = net.loss(out, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    net.train()
    train_batch()  # warm-up
    sync()
    t0 = time.perf_counter()
    for _ in range(batches):
        train_batch()
    sync()
    t_train = (time.perf_counter() - t0) / batches
    net.eval()
    with torch.no_grad():
        net(x)
        sync()
        t0 = time.perf_counter()
        for _ in range(batches):
            net(x)
        sync()
        t_eval = (time.perf_counter() - t0) / batches
    return {"preset": preset, "dataset": cfg.dataset, "T": steps, "batch": cfg.batch,
            "weights": net.count_parameters(), "train_samples_per_s": cfg.batch / t_train,
            "eval_samples_per_s": cfg.batch / t_eval, "s_per_train_batch": t_train}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", default=",".join(PRESETS), help="comma-separated presets (default: all)")
    p.add_argument("--batches", type=int, default=3, help="timed batches per preset (default: %(default)s)")
    p.add_argument("--long-batches", type=int, default=1,
                   help="timed batches for the T=784/1301 presets (default: %(default)s)")
    p.add_argument("--full", action="store_true", help="also train the MNIST-1D presets and srnn-ecg")
    p.add_argument("--ecg-epochs", type=int, default=40, help="epochs of srnn-ecg with --full")
    p.add_argument("--out", default="runs/bench_train", help="run folders for --full")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", default=None, help="write the results here")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    device = select_device(a.device)
    presets = [s.strip() for s in a.presets.split(",") if s.strip()]
    rows = []
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    print(f"{'preset':18s} {'dataset':8s} {'T':>5s} {'batch':>5s} {'weights':>8s} {'train smp/s':>12s} "
          f"{'eval smp/s':>11s} {'s/batch':>8s}", flush=True)
    for name in presets:
        long = SHAPES[PRESETS[name].train.dataset][0] > 100
        r = throughput(name, batches=a.long_batches if long else a.batches, device=device)
        rows.append(r)
        print(f"{name:18s} {r['dataset']:8s} {r['T']:5d} {r['batch']:5d} {r['weights']:8d} "
              f"{r['train_samples_per_s']:12.1f} {r['eval_samples_per_s']:11.1f} {r['s_per_train_batch']:8.3f}",
              flush=True)
    results = {"device": str(device), "threads": torch.get_num_threads(), "throughput": rows}
    if a.full:
        full = []
        for name in [n for n in FULL_PRESETS if n in presets]:
            overrides = {"epochs": a.ecg_epochs} if name == "srnn-ecg" else {}
            t0 = time.perf_counter()
            s = train(name, out=Path(a.out) / name, force=True, device=a.device, progress=False,
                      log=lambda m: None, **overrides)
            full.append({"preset": name, "epochs": s["epochs"], "best_epoch": s["best_epoch"],
                         "best_val_acc": s["best_val_acc"], "test_acc": s["test_acc"], "spans": s["spans"],
                         "weights": s["parameters"], "seconds": time.perf_counter() - t0})
            f = full[-1]
            print(f"trained {name:18s} epochs {f['epochs']:4d}  val {f['best_val_acc']:.4f}  "
                  f"test {f['test_acc']:.4f}  spans {f['spans']}  {f['seconds']:.0f}s", flush=True)
        results["training"] = full
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
