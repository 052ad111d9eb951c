"""Bring your own network (issue 11): an SRNN trained elsewhere, imported and quantized at W8/S16.

As a new user would do it: the official SRNN ECG network (Yin et al., byin-cwi/Efficient-spiking-networks,
``mem_update_adp``; reference/seed-models.md section 2) is written here in plain PyTorch from its
published equations, trained briefly on ECG QTDB (4 spike channels -> 36 recurrent ALIF -> 6 ALIF
outputs read through their membranes, per-step NLL from t = 10), and its ``state_dict`` is saved.
Then, through the CLI:

    skipcore import srnn_ecg.pth -o ecg-<policy>.skc --input-kind spike --b-j0 0.1 --beta 1.8 \
        --mode per_step --skip-steps 10 --scale-policy <policy> --data ecg

for each scale policy, and the golden integer model of every artifact is run on the test split.
With ``--qat-epochs N`` the state dict is also imported as a skipcore checkpoint
(``skipcore import srnn_ecg.pth -o imported.pt ...``) and fine-tuned with QAT at the same widths
(``quant.finetune.qat_finetune``, scale policy auto). Prints float vs each policy's (and QAT's)
per-step test accuracy.

    python benchmarks/bench_import_srnn.py --minutes 15            # train (1 thread) + import + PTQ
    python benchmarks/bench_import_srnn.py --skip-train            # reuse OUT/srnn_ecg.pth
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

from common import command_line, pin_threads, policy_cells, save_result

POLICIES = ("max", "threshold", "percentile", "auto")
SKIP_STEPS = 10  # the ECG script's loss and accuracy leave out the first 10 steps


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/import-srnn-ecg", help="working folder (default %(default)s)")
    p.add_argument("--data", default=None, help="QTDB folder (default: skipcore's search path)")
    p.add_argument("--minutes", type=float, default=15.0, help="training time budget (default %(default)s)")
    p.add_argument("--max-epochs", type=int, default=400, help="at most this many epochs (the script's 400)")
    p.add_argument("--neurons", type=int, default=36)
    p.add_argument("--b-j0", type=float, default=0.1, help="base threshold (default %(default)s)")
    p.add_argument("--beta", type=float, default=1.8, help="adaptation strength, hidden and output")
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--chunk", type=int, default=100, help="truncated BPTT: steps per update (default %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weight-bits", type=int, default=8)
    p.add_argument("--state-bits", type=int, default=16)
    p.add_argument("--fold", choices=("float", "decay"), default=None,
                   help="skipcore's --fold for every policy (default: none given: float, auto tries both)")
    p.add_argument("--skip-train", action="store_true", help="reuse OUT/srnn_ecg.pth")
    p.add_argument("--qat-epochs", type=int, default=0, help="QAT epochs after the import (0: none)")
    p.add_argument("--qat-lr", type=float, default=1e-3, help="QAT learning rate (default %(default)s)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default="benchmarks/results/bench_import_srnn.json", help="result file")
    return p.parse_args(argv)


def build_model(torch, channels: int, neurons: int, classes: int, b_j0: float, beta: float):
    """The official SRNN ECG module (parameter names as in the repository's state dicts)."""
    from torch import nn

    class ActFunADP(torch.autograd.Function):
        """Heaviside forward; multi-Gaussian surrogate backward (lens 0.5, hight 0.15, scale 6, gamma 0.5)."""

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return (x > 0).to(x.dtype)

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            lens, hight, scale, gamma = 0.5, 0.15, 6.0, 0.5

            def gauss(v, mu, sigma):
                return torch.exp(-((v - mu) ** 2) / (2 * sigma**2)) / math.sqrt(2 * math.pi) / sigma

            temp = gauss(x, 0.0, lens) * (1.0 + hight) - gauss(x, lens, scale * lens) * hight \
                - gauss(x, -lens, scale * lens) * hight
            return grad * temp * gamma

    class SRNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.i2h = nn.Linear(channels, neurons)
            self.h2h = nn.Linear(neurons, neurons)
            self.h2o = nn.Linear(neurons, classes)
            nn.init.xavier_uniform_(self.i2h.weight)
            nn.init.orthogonal_(self.h2h.weight)
            nn.init.xavier_uniform_(self.h2o.weight)
            for lin in (self.i2h, self.h2h, self.h2o):
                nn.init.zeros_(lin.bias)
            # the ECG script's constants as initial values (all learnable)
            self.tau_m_h = nn.Parameter(torch.full((neurons,), 20.0))
            self.tau_adp_h = nn.Parameter(torch.full((neurons,), 7.0))
            self.tau_m_o = nn.Parameter(torch.full((classes,), 20.0))
            self.tau_adp_o = nn.Parameter(torch.full((classes,), 100.0))

        @staticmethod
        def mem_update_adp(inputs, mem, spike, tau_adp, b, tau_m):
            alpha = torch.exp(-1.0 / tau_m)
            ro = torch.exp(-1.0 / tau_adp)
            b = ro * b + (1 - ro) * spike
            big_b = b_j0 + beta * b
            mem = mem * alpha + (1 - alpha) * inputs - big_b * spike
            spike = ActFunADP.apply(mem - big_b)
            return mem, spike, b

        def forward(self, x, state=None):  # x (B, T, C) -> output membranes (B, T, M)
            bsz, steps, _ = x.shape
            if state is None:
                state = [x.new_zeros(bsz, neurons)] * 3 + [x.new_zeros(bsz, classes)] * 3
            mem, spike, b, mem_o, spike_o, b_o = state
            outs = []
            for t in range(steps):
                h_in = self.i2h(x[:, t]) + self.h2h(spike)
                mem, spike, b = self.mem_update_adp(h_in, mem, spike, self.tau_adp_h, b, self.tau_m_h)
                mem_o, spike_o, b_o = self.mem_update_adp(self.h2o(spike), mem_o, spike_o, self.tau_adp_o, b_o,
                                                          self.tau_m_o)
                outs.append(mem_o)
            self.state = [v.detach() for v in (mem, spike, b, mem_o, spike_o, b_o)]  # for truncated BPTT
            return torch.stack(outs, 1)

    return SRNN()


def per_step_accuracy(torch, model, split, batch: int = 128) -> float:
    correct = counted = 0
    model.eval()
    with torch.no_grad():
        for xb, yb in split.batches(batch):
            out = model(torch.from_numpy(xb).float())[:, SKIP_STEPS:]
            y = torch.from_numpy(yb[:, SKIP_STEPS:]).long()
            correct += int((out.argmax(-1) == y).sum())
            counted += y.numel()
    return correct / max(counted, 1)


def train(torch, data, args, log) -> dict:
    import numpy as np

    torch.manual_seed(args.seed)
    info = data.info
    model = build_model(torch, info.channels, args.neurons, info.classes, args.b_j0, args.beta)
    taus_h = [model.tau_m_h, model.tau_adp_h]
    taus_o = [model.tau_m_o, model.tau_adp_o]
    weights = [p for n, p in model.named_parameters() if not n.startswith("tau")]
    # the ECG script: Adam lr 1e-2, hidden taus x3, output taus x2, StepLR(100, 0.5)
    optimizer = torch.optim.Adam([{"params": weights, "lr": args.lr}, {"params": taus_h, "lr": 3 * args.lr},
                                  {"params": taus_o, "lr": 2 * args.lr}], lr=args.lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=100, gamma=0.5)
    rng = np.random.default_rng(args.seed)
    best = {"val": -1.0}
    history = []
    t0 = time.perf_counter()
    epoch = 0
    while epoch < args.max_epochs and time.perf_counter() - t0 < 60 * args.minutes:
        epoch += 1
        model.train()
        loss_sum = seen = 0
        for xb, yb in data.train.batches(args.batch, shuffle=True, rng=rng):
            x, y = torch.from_numpy(xb).float(), torch.from_numpy(yb).long()
            state = None
            # truncated BPTT (as the SRNN PS-MNIST script does): one update per chunk of steps, the
            # state carried over detached; far more updates per minute than one per full sequence
            for start in range(0, x.shape[1], args.chunk):
                out = model(x[:, start:start + args.chunk], state)
                state = model.state
                first = max(0, SKIP_STEPS - start)
                if first >= out.shape[1]:
                    continue
                logp = torch.log_softmax(out[:, first:], dim=-1)
                target = y[:, start + first:start + out.shape[1]]
                # the script's loss: NLL summed over the steps, averaged over the batch
                loss = torch.nn.functional.nll_loss(logp.reshape(-1, logp.shape[-1]), target.reshape(-1),
                                                    reduction="sum") / len(xb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum += float(loss.detach()) * len(xb)
            seen += len(xb)
        scheduler.step()
        val = per_step_accuracy(torch, model, data.val)
        history.append({"epoch": epoch, "loss": loss_sum / seen, "val_acc": val,
                        "seconds": time.perf_counter() - t0})
        mark = ""
        if val > best["val"]:
            best = {"val": val, "epoch": epoch, "state": copy.deepcopy(model.state_dict())}
            mark = "  *"
        log(f"epoch {epoch:3d}  loss {loss_sum / seen:9.2f}  val per-step acc {val:.4f}  "
            f"{time.perf_counter() - t0:6.0f}s{mark}")
    model.load_state_dict(best["state"])
    return {"model": model, "epochs": epoch, "best_epoch": best["epoch"], "val_acc": best["val"],
            "test_acc": per_step_accuracy(torch, model, data.test),
            "seconds": time.perf_counter() - t0, "history": history}


def main(argv=None) -> int:
    args = parse_args(argv)
    torch = pin_threads(args.threads)

    def log(msg: str) -> None:
        print(msg, flush=True)

    from skipcore.datasets import accuracy, load_dataset
    from skipcore.golden import model as golden
    from skipcore.golden.artifact import load

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pth = out / "srnn_ecg.pth"
    data = load_dataset("ecg", args.data)  # the same train/val/test split that `--data ecg` gives the import
    result: dict = {"command": command_line(argv), "b_j0": args.b_j0, "beta": args.beta, "neurons": args.neurons}
    if args.skip_train:
        if not pth.is_file():
            raise SystemExit(f"{pth} does not exist; run without --skip-train first")
        model = build_model(torch, data.info.channels, args.neurons, data.info.classes, args.b_j0, args.beta)
        model.load_state_dict(torch.load(pth, weights_only=True))
        result["official_test_acc"] = per_step_accuracy(torch, model, data.test)
    else:
        trained = train(torch, data, args, log)
        torch.save(trained["model"].state_dict(), pth)
        result.update({k: trained[k] for k in ("epochs", "best_epoch", "val_acc", "seconds",
                                               "history")})
        result["official_test_acc"] = trained["test_acc"]
        model = trained["model"]
    result["largest_weight"] = max(float(p.detach().abs().max()) for n, p in model.named_parameters()
                                   if n.endswith("weight"))
    result["smallest_threshold"] = args.b_j0
    log(f"official module: test per-step accuracy {result['official_test_acc']:.4f}, "
        f"largest |w| {result['largest_weight']:.2f}, b_j0 {args.b_j0}")

    skipcore = Path(sys.executable).with_name("skipcore")
    base = [str(skipcore), "import", str(pth), "--input-kind", "spike", "--b-j0", str(args.b_j0),
            "--beta", str(args.beta), "--mode", "per_step", "--skip-steps", str(SKIP_STEPS),
            "--weight-bits", str(args.weight_bits), "--state-bits", str(args.state_bits), "--force"]
    if args.fold:
        base += ["--fold", args.fold]
    if args.data:
        base += ["--data", args.data]
    # float of the imported network (skipcore's float model) on the test split
    from skipcore.quant.importers import import_file
    from skipcore.quant.ptq import float_accuracy

    imported = import_file(pth, "srnn", {"b_j0": args.b_j0, "beta": args.beta, "mode": "per_step",
                                         "skip_steps": SKIP_STEPS})
    result["float_test_acc"] = float_accuracy(imported.network, data.test)
    log(f"imported float network: test per-step accuracy {result['float_test_acc']:.4f}")
    result["ptq"] = {}
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    for policy in POLICIES:
        skc = out / f"ecg-{policy}.skc"
        cmd = base + ["-o", str(skc), "--scale-policy", policy]
        if policy == "auto" and not args.data:
            cmd += ["--data", "ecg"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            log(proc.stdout + proc.stderr)
            raise SystemExit(f"`{' '.join(cmd)}` failed")
        art = load(skc)
        res = golden.run_batched(art, data.test.x, batch_size=128)
        acc = accuracy(data.info, data.test.y, res.predictions)
        chosen = (art.provenance.get("scale_policy_auto") or {}).get("chosen", policy)
        clipped = art.provenance.get("clipped_weights") or {}
        result["ptq"][policy] = {
            "command": " ".join(["skipcore"] + cmd[1:]), "accuracy": acc, "chosen": chosen,
            "saturation": int(sum(res.saturation.values())),
            "clipped": int(sum(clipped.get("layers") or []) + int(clipped.get("readout") or 0)),
            "weight_exps": [[l.input_exp, l.recurrent_exp] for l in art.layers] + [[art.readout.weight_exp]],
            "trace_bits": art.widths.trace_bits,  # the ALIF traces' fraction bits (CONTRACT.md section 1)
            "fold": (art.provenance.get("export_options") or {}).get("fold") or "float",  # CONTRACT.md section 7
            "threshold_range": [[int(l.threshold.min()), int(l.threshold.max())] for l in art.layers],
            "seconds": time.perf_counter() - t0,
            "auto_candidates": (art.provenance.get("scale_policy_auto") or {}).get("candidates"),
        }
        log(f"PTQ {policy:<10s} ({chosen}) test {acc:.4f} ({100 * (acc - result['float_test_acc']):+.2f} pp)  "
            f"saturation {result['ptq'][policy]['saturation']}  exps {result['ptq'][policy]['weight_exps']}")
    if args.qat_epochs > 0:
        from skipcore.quant.export import ExportOptions
        from skipcore.quant.finetune import qat_finetune

        ckpt = out / "imported.pt"
        cmd = [str(skipcore), "import", str(pth), "-o", str(ckpt), "--input-kind", "spike", "--b-j0", str(args.b_j0),
               "--beta", str(args.beta), "--mode", "per_step", "--skip-steps", str(SKIP_STEPS), "--force"]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            log(proc.stdout + proc.stderr)
            raise SystemExit(f"`{' '.join(cmd)}` failed")
        t0 = time.perf_counter()
        opts = ExportOptions(weight_bits=args.weight_bits, state_bits=args.state_bits, scale_policy="auto")
        qat_finetune(ckpt, data, out / "qat", epochs=args.qat_epochs, lr=args.qat_lr, export_options=opts,
                     force=True, progress=False, log=lambda m: log("  " + m))
        summary = json.loads((out / "qat" / "qat_summary.json").read_text())
        result["qat"] = {"accuracy": summary["golden_test_acc"], "policy": summary["scale_policy"],
                         "epochs": args.qat_epochs, "lr": args.qat_lr, "best_epoch": summary["best_epoch"],
                         "ptq_val": summary["ptq_val_acc"], "qat_val": summary["qat_val_acc"],
                         "import_command": " ".join(["skipcore"] + cmd[1:]), "seconds": time.perf_counter() - t0}
        log(f"QAT ({summary['scale_policy']}, {args.qat_epochs} epochs, best {summary['best_epoch']}) test "
            f"{summary['golden_test_acc']:.4f} ({100 * (summary['golden_test_acc'] - result['float_test_acc']):+.2f} pp)")
    path = save_result(args.json, result)

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"imported SRNN ECG (36 ALIF, b0 {args.b_j0}, largest |w| {result['largest_weight']:.1f}): "
                        f"per-step test accuracy (%), W{args.weight_bits} S{args.state_bits}")
    for col in ("float", *(f"PTQ {p}" for p in POLICIES), "QAT"):
        table.add_column(col, justify="right")
    table.add_row(f"{100 * result['float_test_acc']:.2f}",
                  *policy_cells(result["ptq"], POLICIES),
                  f"{100 * result['qat']['accuracy']:.2f}" if "qat" in result else "-")
    Console().print(table)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
