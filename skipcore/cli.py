"""The ``skipcore`` command line.

Each subcommand lives in ``skipcore/commands/<name>.py`` and defines ``add_arguments(parser)``
and ``run(args) -> int``. Modules are imported only when their command runs, so ``skipcore
--help`` stays fast and a torch-free command never imports torch.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from skipcore.errors import SkipcoreError

#: name -> one-line help. Order is the order of the flow.
COMMANDS = {
    "train": "train a float (or --qat integer-exact) network from a preset",
    "import": "a model from elsewhere (NIR graph, SRNN or ASRC-SNN state dict) to model.skc or a checkpoint",
    "quantize": "post-training quantization of a checkpoint into model.skc",
    "export": "write a checkpoint's network as a NIR graph (--nir)",
    "eval": "run the bit-exact golden model on a dataset and report accuracy",
    "sweep": "accuracy against weight and state bit widths",
    "generate": "generate the Amaranth core: core.v + core.json",
    "simulate": "simulate the core (cocotb or the fast Verilator runner) against the golden model",
    "build": "synthesize, place and route for a board",
    "verify": "the whole check: float/golden/RTL accuracy, mismatches, cycles, resources",
    "demo": "the whole flow on the embedded MNIST-1D dataset",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skipcore",
        description="Bit-exact FPGA cores for recurrent spiking networks with skip recurrent connections.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_command=name)
        # Arguments are added lazily in main() for the chosen command only.
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        if argv and argv[0] not in ("-h", "--help") and not argv[0].startswith("-"):
            parser.error(f"unknown command {argv[0]!r}; choose one of: {', '.join(COMMANDS)}")
        parser.print_help() if not argv or argv[0] in ("-h", "--help") else parser.parse_args(argv)
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    name = argv[0]
    # "import" is a Python keyword: its module is import_.py
    module = importlib.import_module(f"skipcore.commands.{name}{'_' if name == 'import' else ''}")
    sub = argparse.ArgumentParser(prog=f"skipcore {name}", description=COMMANDS[name])
    module.add_arguments(sub)
    args = sub.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except SkipcoreError as exc:
        print(f"skipcore {name}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file that changed under us after the checks: one line, not a traceback
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"skipcore {name}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"skipcore {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
