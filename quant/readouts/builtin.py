"""Readouts ``sum`` (ASRC-SNN running sum) and ``leaky`` (SRNN leaky integrator) on the training side."""
from __future__ import annotations

import torch
from torch import nn

from ..fastloop import leaky_readout
from . import QuantReadoutKind, register


class Sum(QuantReadoutKind):
    name = "sum"

    def forward(self, readout, z):
        return z.cumsum(dim=1)

    def qat_step(self, acc, state, r, widths, counter=None):
        from ..qat import sat
        return (sat(state[0] + acc, widths.readout_bits, counter, "readout"),)


class Leaky(QuantReadoutKind):
    name = "leaky"

    def build(self, readout):
        mean, std = readout.cfg.tau_o
        classes = readout.fc.out_features
        tau = torch.empty(classes).normal_(mean, std) if std > 0 else torch.full((classes,), mean)
        readout.tau_o = nn.Parameter(tau)

    def alpha(self, readout):
        return torch.exp(-1.0 / readout.tau_o)

    def forward(self, readout, z):
        return leaky_readout(z, self.alpha(readout))

    def export_params(self, readout):
        return {"alpha": self.alpha(readout)}

    def fold(self, rp, classes, device):
        from ..export import _f64
        return 1.0 - _f64(rp["alpha"], n=classes, device=device)

    def quantize(self, rp, ctx):
        from ..export import _f64, quantize_decay
        return {"decay": quantize_decay(_f64(rp["alpha"], n=ctx.classes, device=ctx.device),
                                        ctx.widths.decay_bits, ctx.decay_mode)}

    def qat_step(self, acc, state, r, widths, counter=None):
        from ..qat import decay, sat
        nxt = decay(state[0], r.decay, widths.decay_bits, r.decay_mode, widths.readout_bits) + acc
        return (sat(nxt, widths.readout_bits, counter, "readout"),)


register(Sum())
register(Leaky())
