"""``skipcore train``: train a float network from a named preset; with ``--qat`` also fine-tune it
with the integer-exact forward pass and write ``OUT/model.skc``.

Every option overrides the preset; ``--list`` prints the presets. The run folder (``--out``)
receives best.pt, last.pt, history.json and summary.json (see ``skipcore.quant.train``).
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from skipcore.errors import ConfigError
from skipcore.golden import kinds as neuron_kinds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="mnist1d-lif-src", help="preset name (default: %(default)s; --list)")
    parser.add_argument("--list", action="store_true", help="list the presets and exit")
    parser.add_argument("--out", default=None, help="run folder (default: runs/<preset>)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    parser.add_argument("--force", action="store_true",
                        help="replace the files an earlier skipcore run wrote in --out (never other files)")
    parser.add_argument("--dataset", default=None, help="dataset name (default: the preset's)")
    parser.add_argument("--data", default=None, metavar="PATH",
                        help="location of the dataset (--dataset, default the preset's); for your own .npz pass "
                             "--dataset npz")
    parser.add_argument("--limit", type=int, default=None, help="at most this many samples per split")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None, help="learning rate of the weights")
    parser.add_argument("--lr-skip", type=float, default=None, help="learning rate of the ASRC span logits")
    parser.add_argument("--batch", type=int, default=None, help="batch size")
    parser.add_argument("--layers", default=None, metavar="N,N,...", help="neurons per hidden layer, e.g. 128,128")
    parser.add_argument("--spans", default=None, metavar="K,K,...",
                        help="fixed SRC span per layer (0: no recurrence, 1: vanilla); not with --max-span")
    parser.add_argument("--max-span", type=int, default=None,
                        help="ASRC on every layer with spans 1..K; not with --spans")
    parser.add_argument("--neuron", choices=neuron_kinds.names(), default=None, help="neuron kind of every layer")
    parser.add_argument("--recurrence", choices=("none", "src", "asrc"), default=None,
                        help="recurrence of every layer")
    parser.add_argument("--device", default="auto", help="auto (GPU when available), cpu or cuda")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--qat", action="store_true",
                        help="after float training, fine-tune with the integer-exact forward pass and write "
                             "OUT/model.skc (golden/CONTRACT.md)")
    parser.add_argument("--qat-epochs", type=int, default=5, help="QAT fine-tuning epochs (default %(default)s)")
    parser.add_argument("--qat-lr", type=float, default=None, help="QAT learning rate (default: a tenth of --lr)")
    from skipcore.commands.quantize import add_policy_arguments, add_width_arguments

    add_width_arguments(parser)
    add_policy_arguments(parser)  # the PTQ integers QAT starts from (auto: the best on the validation split)


def run(args: argparse.Namespace) -> int:
    from skipcore.quant.presets import preset_table

    if args.list:
        _print_presets(preset_table())
        return 0
    check_architecture_options(args)
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {args.limit}")
    if args.epochs is not None and args.epochs < 1:
        raise ConfigError(f"--epochs must be at least 1, got {args.epochs}")
    if args.qat and args.qat_epochs < 1:
        raise ConfigError(f"--qat-epochs must be at least 1, got {args.qat_epochs}")
    if args.data is not None and not args.resume:
        check_data_option(args)
    import torch

    from skipcore.quant.train import QAT_FILES, TRAIN_FILES, train

    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError(f"--threads must be positive, not {args.threads}")
        torch.set_num_threads(args.threads)
    out = args.out or f"runs/{args.preset}"
    if args.resume:
        fixed = [opt for opt, value in (("--dataset", args.dataset), ("--data", args.data), ("--limit", args.limit),
                                        ("--lr", args.lr), ("--lr-skip", args.lr_skip), ("--batch", args.batch),
                                        ("--layers", args.layers), ("--spans", args.spans),
                                        ("--max-span", args.max_span), ("--neuron", args.neuron),
                                        ("--recurrence", args.recurrence), ("--seed", args.seed))
                 if value is not None]
        if fixed:
            raise ConfigError(f"--resume continues the stored run configuration; drop {', '.join(fixed)}")
    from skipcore.commands.quantize import options_from_args
    from skipcore.quant.export import ExportOptions

    export_options = options_from_args(args)  # checked before spending minutes on training
    if not args.qat and export_options != ExportOptions():
        raise ConfigError("bit-width and scale-policy options apply to --qat; add --qat, or quantize the checkpoint "
                          "later with `skipcore quantize`")
    outputs = TRAIN_FILES + (QAT_FILES if args.qat else ())
    if not args.resume:  # the run folder, before any work (train() checks it again and prepares it)
        from skipcore.outputs import OutputPlan

        OutputPlan("train", inputs=[args.data], force=args.force).folder(out, "--out", files=outputs)
    data_path = os.path.abspath(args.data) if args.data is not None else None  # provenance: from anywhere
    summary = train(
        args.preset, out=out, device=args.device, force=args.force, resume=args.resume,
        progress=not args.no_progress, layers=args.layers, spans=args.spans, max_span=args.max_span,
        neuron=args.neuron, recurrence=args.recurrence, epochs=args.epochs, lr=args.lr, lr_skip=args.lr_skip,
        batch=args.batch, seed=args.seed, limit=args.limit, data=data_path, dataset=args.dataset,
        outputs=outputs,
    )
    print(json.dumps({k: summary[k] for k in ("preset", "epochs", "best_epoch", "best_val_acc", "test_acc",
                                                 "spans", "parameters", "checkpoint")}, indent=2))
    if args.qat:
        from skipcore.quant.finetune import qat_finetune

        artifact = qat_finetune(summary["checkpoint"], out_dir=out, epochs=args.qat_epochs, lr=args.qat_lr,
                                export_options=export_options, data_path=data_path, limit=args.limit,
                                force=True, progress=not args.no_progress)
        qat = json.loads((Path(out) / "qat_summary.json").read_text())
        print(json.dumps({"artifact": str(artifact), **{k: qat.get(k) for k in (
            "scale_policy", "float_test_acc", "golden_test_acc", "ptq_val_acc", "qat_val_acc")}}, indent=2))
    return 0


def check_architecture_options(args: argparse.Namespace) -> None:
    """Refuse combinations that would silently override each other."""
    if args.spans is not None and args.max_span is not None:
        raise ConfigError("--spans fixes an SRC span per layer and --max-span trains ASRC; pass one of them")
    if args.recurrence is not None and args.spans is not None:
        try:
            spans = [int(k) for k in str(args.spans).split(",") if k.strip()]
        except ValueError:
            raise ConfigError(f"--spans must be integers like 2,2, not {args.spans!r}") from None
        wanted = {"none": lambda k: k == 0, "src": lambda k: k > 0, "asrc": lambda k: False}[args.recurrence]
        if not all(wanted(k) for k in spans):
            raise ConfigError(f"--recurrence {args.recurrence} contradicts --spans {args.spans} (0: none, >0: src); "
                              "pass one of them (--max-span K for ASRC)")
    if args.recurrence is not None and args.max_span is not None and args.recurrence != "asrc":
        raise ConfigError(f"--max-span trains ASRC, which contradicts --recurrence {args.recurrence}; pass one of them")


def check_data_option(args: argparse.Namespace) -> None:
    """``--data`` names where the dataset lies; refuse a path that holds another dataset's format."""
    from skipcore.datasets import data_format, mnist1d_file
    from skipcore.quant.presets import get_preset

    path = Path(args.data)
    if not path.exists():
        raise ConfigError(f"--data {args.data!r} does not exist")
    if args.dataset is not None:
        return
    dataset = get_preset(args.preset).train.dataset
    found = data_format(path)
    if found == "npz" and dataset == "mnist1d" and mnist1d_file(path):
        return  # MNIST-1D arrays as an .npz (x, y, x_test, y_test; T=40, C=1)
    if found is not None and found != dataset and not {found, dataset} <= {"smnist", "psmnist"}:
        hint = "your own data" if found == "npz" else f"{found} data"
        raise ConfigError(f"--data {args.data} holds {hint}, but preset {args.preset!r} trains on {dataset}; "
                          f"pass --dataset {found} to train on it")


def _print_presets(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="skipcore training presets")
    for col in ("name", "dataset", "layers", "readout", "optimizer", "lr", "scheduler", "batch", "epochs"):
        table.add_column(col)
    for r in rows:
        table.add_row(*(str(r[c]) for c in ("name", "dataset", "layers", "readout", "optimizer", "lr", "scheduler",
                                            "batch", "epochs")))
    Console(width=max(Console().width, 130)).print(table)
