"""Training benchmark: step throughput before/after the fused loops, an official-style ASRC step,
epoch times, and (``--full``) real training runs.

    python benchmarks/bench_train.py                          # every preset, 1 and 2 threads
    python benchmarks/bench_train.py --presets asrc-smnist --threads 1,2
    python benchmarks/bench_train.py --presets none --epochs-compare mnist1d-lif-asrc
    python benchmarks/bench_train.py --full --threads 1 --presets mnist1d-lif-src   # + train

Throughput is training samples per second of one step (forward, loss, backward, optimizer step;
train mode) on random inputs of each preset's dataset shape, at ``--batch`` (64) so the T = 784
steps stay affordable, after a short warm-up step. For every preset and thread count, in the same
process and interleaved so the shared machine's load hits both alike:

- ``before``: the time loops of commit 7e96018 (``benchmarks/train_before.py``, patched in);
- ``after``: the library as it is;
- ``official`` (LIF-ASRC presets with a sum readout only): the step written the way the ASRC-SNN
  code computes it, with the same weights: a Linear on the input at every step, the layer's past
  spikes kept in a list, ``(softmax(p / tau) * stack(past)).sum(0)``, ``W_r``, the LIF charge /
  fire / reset with the Triangle surrogate, the readout Linear summed over time. Its gradients are
  compared with skipcore's in float64 (``grad rel diff``: max |difference| / max |gradient| over
  all parameters) on a few sequences of the full length.

``--epochs-compare PRESET`` also trains PRESET on its dataset for ``--compare-epochs`` epochs with
the old and the new loops (1 and 2 threads) and reports the seconds per epoch. Ratios measured in
one run are what to read; absolute figures depend on the machine's load.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save_result  # noqa: E402
from train_before import before_loops  # noqa: E402

from skipcore.quant.network import SpikingNetwork  # noqa: E402
from skipcore.quant.presets import PRESETS, network_config, resolve  # noqa: E402
from skipcore.quant.train import build_optimizer, select_device, train  # noqa: E402

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


class OfficialStyleASRC(nn.Module):
    """An ASRC-SNN network stepped the way the official code does it, sharing ``net``'s weights."""

    def __init__(self, net: SpikingNetwork):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layers, steps = self.net.layers, x.shape[1]
        past = [[x.new_zeros(x.shape[0], layer.neurons)] * layer.cfg.max_span for layer in layers]
        v = [x.new_zeros(x.shape[0], layer.neurons) for layer in layers]
        logits = 0.0
        for t in range(steps):
            h = x[:, t]
            for index, layer in enumerate(layers):
                c = layer.cfg
                w = torch.softmax(layer.span_logits / layer.tau, 0).view(-1, 1, 1)
                mixed = (w * torch.stack(past[index])).sum(0)  # past[index][j] = S[t-1-j]
                current = layer.fc(h) + layer.rec(mixed)
                charged = c.lam * v[index] + current
                s = layer.surrogate(charged - c.threshold, strict=False)
                v[index] = charged - c.threshold * s
                past[index] = [s] + past[index][:-1]
                h = s
            logits = logits + self.net.readout.fc(h)
        return logits


def _official_applies(net: SpikingNetwork) -> bool:
    return (all(l.cfg.kind == "lif" and l.cfg.recurrence == "asrc" and l.cfg.reset == "soft" for l in net.layers)
            and net.readout.cfg.kind == "sum" and net.readout.cfg.mode == "sequence" and net.config.dropout == 0)


def _build(preset: str, batch: int, *, dtype=torch.float32, steps: int | None = None, device="cpu"):
    net_t, cfg = resolve(preset)
    full_steps, channels, classes, per_step, skip = SHAPES[cfg.dataset]
    steps = steps or full_steps
    info = _Info(cfg.dataset, steps, channels, classes, per_step, skip)
    torch.manual_seed(0)
    net = SpikingNetwork(network_config(net_t, info)).to(device=device, dtype=dtype)
    gen = torch.Generator().manual_seed(0)
    scale = 3.0 if cfg.dataset == "mnist1d" else 1.0
    x = (torch.rand(batch, steps, channels, generator=gen, dtype=dtype) * scale).to(device)
    y = torch.randint(0, classes, (batch, steps) if per_step else (batch,), generator=gen).to(device)
    return net, cfg, x, y


def _grad_check(preset: str, batch: int, device, steps: int | None = None) -> float:
    """Max |official - skipcore| / max |gradient| over all parameters, float64, full length."""
    net, _, x, y = _build(preset, batch, dtype=torch.float64, device=device, steps=steps)
    net.train()
    grads = []
    for forward in (lambda: net(x)[:, -1], lambda: OfficialStyleASRC(net)(x)):
        net.zero_grad(set_to_none=True)
        F.cross_entropy(forward(), y).backward()
        grads.append([p.grad.clone() for p in net.parameters()])
    diff = max(float((a - b).abs().max()) for a, b in zip(*grads))
    scale = max(float(a.abs().max()) for a in grads[0])
    return diff / scale


def step_rates(preset: str, *, batch: int, threads: list[int], reps: int, device, steps=None) -> list[dict]:
    """Samples/s of one training step, before / after (/ official), per thread count."""
    net, cfg, x, y = _build(preset, batch, device=device, steps=steps)
    opt, _ = build_optimizer(net, cfg)
    official = OfficialStyleASRC(net) if _official_applies(net) else None

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def timed(forward, x, y) -> float:
        sync()
        t0 = time.perf_counter()
        loss = net.loss(forward(x), y) if forward is net else F.cross_entropy(forward(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sync()
        return time.perf_counter() - t0

    variants = {"after": net}
    variants["before"] = net
    if official is not None:
        variants["official"] = official
    rows = []
    net.train()
    for n_threads in threads:
        torch.set_num_threads(n_threads)
        seconds = {name: [] for name in variants}
        short = min(16, x.shape[1])
        for rep in range(reps + 1):  # rep 0: warm-up on a short slice
            xs, ys = (x[:, :short], y[:, :short] if y.dim() == 2 else y) if rep == 0 else (x, y)
            for name, forward in variants.items():
                if name == "before":
                    with before_loops():
                        s = timed(forward, xs, ys)
                else:
                    s = timed(forward, xs, ys)
                if rep:
                    seconds[name].append(s)
        row = {"preset": preset, "dataset": cfg.dataset, "T": x.shape[1], "batch": batch, "threads": n_threads}
        for name, values in seconds.items():
            row[f"{name}_samples_per_s"] = batch / statistics.median(values)
        row["after_vs_before"] = row["after_samples_per_s"] / row["before_samples_per_s"]
        if official is not None:
            row["after_vs_official"] = row["after_samples_per_s"] / row["official_samples_per_s"]
        rows.append(row)
    return rows


def eval_rate(preset: str, *, batch: int, device, batches: int = 2, steps=None) -> float:
    net, _, x, _ = _build(preset, batch, device=device, steps=steps)
    net.eval()
    with torch.no_grad():
        net(x[:, :16])
        t0 = time.perf_counter()
        for _ in range(batches):
            net(x)
        return batch * batches / (time.perf_counter() - t0)


def epoch_compare(preset: str, *, epochs: int, threads: list[int], device: str) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n_threads in threads:
            torch.set_num_threads(n_threads)
            row = {"preset": preset, "threads": n_threads, "epochs": epochs}
            for name in ("before", "after"):
                def run():
                    return train(preset, out=Path(tmp) / f"{name}{n_threads}", force=True, device=device,
                                 progress=False, log=lambda m: None, epochs=epochs)
                if name == "before":
                    with before_loops():
                        summary = run()
                else:
                    summary = run()
                history = json.loads((Path(tmp) / f"{name}{n_threads}" / "history.json").read_text())
                row[f"{name}_s_per_epoch"] = sum(h["seconds"] for h in history) / len(history)
                row[f"{name}_val_acc"] = summary["best_val_acc"]
            row["speedup"] = row["before_s_per_epoch"] / row["after_s_per_epoch"]
            rows.append(row)
            print(f"epochs {preset:18s} {n_threads} thr  before {row['before_s_per_epoch']:6.2f} s/epoch  "
                  f"after {row['after_s_per_epoch']:6.2f} s/epoch  x{row['speedup']:.2f}  "
                  f"(val acc {row['before_val_acc']:.4f} / {row['after_val_acc']:.4f})", flush=True)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", default=",".join(PRESETS), help="comma-separated presets, or none (default: all)")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts (default: %(default)s)")
    p.add_argument("--batch", type=int, default=64, help="batch of the step timings (default: %(default)s)")
    p.add_argument("--reps", type=int, default=3, help="timed steps per variant, short presets (default: %(default)s)")
    p.add_argument("--long-reps", type=int, default=1,
                   help="timed steps per variant for T = 784 / 1301 (default: %(default)s)")
    p.add_argument("--steps", type=int, default=None,
                   help="override every preset's sequence length (quick looks; default: the dataset's)")
    p.add_argument("--grad-batch", type=int, default=4,
                   help="sequences of the float64 official-vs-skipcore gradient check (0: skip)")
    p.add_argument("--epochs-compare", default=None, metavar="PRESET",
                   help="also time real training epochs of PRESET, old loops vs new")
    p.add_argument("--compare-epochs", type=int, default=2, help="epochs per run of --epochs-compare")
    p.add_argument("--full", action="store_true", help="also train the MNIST-1D presets and srnn-ecg")
    p.add_argument("--ecg-epochs", type=int, default=40, help="epochs of srnn-ecg with --full")
    p.add_argument("--out", default="runs/bench_train", help="run folders for --full")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", default=None, help="write the results here")
    a = p.parse_args(argv)
    threads = [int(v) for v in a.threads.split(",") if v.strip()]
    if not threads or min(threads) < 1:
        p.error(f"--threads needs positive thread counts, not {a.threads!r}")
    presets = [] if a.presets == "none" else [s.strip() for s in a.presets.split(",") if s.strip()]
    unknown = [name for name in presets if name not in PRESETS]
    if unknown:
        p.error(f"unknown preset(s) {', '.join(unknown)}; choose from {', '.join(PRESETS)}")
    device = select_device(a.device)
    print(f"device {device}, torch {torch.__version__}, threads {threads}, batch {a.batch}", flush=True)
    print(f"{'preset':18s} {'T':>5s} {'thr':>3s} {'before smp/s':>12s} {'after smp/s':>12s} {'after/before':>12s} "
          f"{'official smp/s':>14s} {'after/official':>14s} {'grad rel diff':>13s}", flush=True)
    rows = []
    for name in presets:
        long = SHAPES[PRESETS[name].train.dataset][0] > 100
        found = step_rates(name, batch=a.batch, threads=threads, reps=a.long_reps if long else a.reps, device=device,
                           steps=a.steps)
        check = None
        if "official_samples_per_s" in found[0] and a.grad_batch > 0:
            check = _grad_check(name, a.grad_batch, device, a.steps)
        torch.set_num_threads(threads[0])
        eval_sps = eval_rate(name, batch=a.batch, device=device, steps=a.steps)
        for r in found:
            r["official_grad_rel_diff"] = check
            r["eval_samples_per_s"] = eval_sps
            official = (f"{r['official_samples_per_s']:14.2f} {r['after_vs_official']:14.2f}"
                        if "official_samples_per_s" in r else f"{'-':>14s} {'-':>14s}")
            print(f"{name:18s} {r['T']:5d} {r['threads']:3d} {r['before_samples_per_s']:12.2f} "
                  f"{r['after_samples_per_s']:12.2f} {r['after_vs_before']:12.2f} {official} "
                  f"{(f'{check:.1e}' if check is not None else '-'):>13s}", flush=True)
        rows.extend(found)
    results = {"device": str(device), "threads": threads, "batch": a.batch, "throughput": rows}
    if a.epochs_compare:
        results["epochs"] = epoch_compare(a.epochs_compare, epochs=a.compare_epochs, threads=threads,
                                          device=a.device)
    if a.full:
        torch.set_num_threads(threads[0])
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
        save_result(a.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
