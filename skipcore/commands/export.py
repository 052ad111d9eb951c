"""``skipcore export --nir``: a float checkpoint as a NIR graph (``skipcore.quant.nir_export``).

What NIR cannot represent (ALIF and the other kinds, soft reset, the alif readout) is refused with
the reason, never written lossily. ``skipcore import`` of the file gives back the same integer
network.
"""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="float checkpoint (best.pt of `skipcore train`, or `skipcore import -o x.pt`)")
    parser.add_argument("--nir", required=True, metavar="OUT.nir", help="NIR file to write")
    parser.add_argument("--dt", type=float, default=1e-3,
                        help="seconds per step written into the graph's time constants (default %(default)s)")
    parser.add_argument("--force", action="store_true", help="replace an existing file")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from skipcore.errors import ConfigError
    from skipcore.outputs import OutputPlan

    if not args.dt > 0:
        raise ConfigError(f"--dt must be positive, not {args.dt}")
    plan = OutputPlan("export", inputs=[args.checkpoint], force=args.force)
    plan.file(args.nir, "--nir")
    plan.prepare()
    from skipcore.quant.nir_export import write_nir

    graph = write_nir(args.checkpoint, args.nir, dt=args.dt)
    Console().print(f"wrote [bold]{args.nir}[/bold]: {len(graph.nodes)} NIR nodes, dt {args.dt}")
    return 0
