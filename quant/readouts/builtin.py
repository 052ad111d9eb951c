"""Readouts ``sum`` (ASRC-SNN running sum) and ``leaky`` (SRNN leaky integrator) on the training side."""
from __future__ import annotations

import torch
from torch import nn

from . import QuantReadoutKind, register


def leaky_readout(z: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """``m[t] = alpha m[t-1] + (1 - alpha) z[t]``, m[-1] = 0, for z (B, T, M); alpha (M,): the whole
    sequence as one autograd node (a hand-written BPTT, as ``quant.fastloop`` does for layers)."""
    return _LeakyReadout.apply(z, alpha)


class _LeakyReadout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z, alpha):
        out = torch.empty_like(z.transpose(0, 1))  # (T, B, M)
        one_minus_alpha = 1.0 - alpha
        m = z.new_zeros(z.shape[0], z.shape[2])
        for t, z_t in enumerate(z.unbind(1)):
            m = torch.add(alpha * m, one_minus_alpha * z_t, out=out[t])
        ctx.save_for_backward(z, alpha, out)
        return out.transpose(0, 1)

    @staticmethod
    def backward(ctx, grad):
        z, alpha, out = ctx.saved_tensors
        g = grad.transpose(0, 1)
        g_m_trace = torch.empty_like(out)
        g_m = None
        for t in range(out.shape[0] - 1, -1, -1):
            g_m = g[t] if g_m is None else g[t] + alpha * g_m
            g_m_trace[t] = g_m
        g_z = ((1.0 - alpha) * g_m_trace).transpose(0, 1) if ctx.needs_input_grad[0] else None
        g_alpha = None
        if ctx.needs_input_grad[1]:
            m_prev = torch.cat([out.new_zeros(1, *out.shape[1:]), out[:-1]])
            g_alpha = (g_m_trace * (m_prev - z.transpose(0, 1))).sum((0, 1))
        return g_z, g_alpha


class Sum(QuantReadoutKind):
    name = "sum"

    def forward(self, readout, z):
        return z.cumsum(dim=1)

    def qat_step(self, acc, state, r, widths, counter=None):
        from ..qat import sat
        return (sat(state[0] + acc, widths.readout_bits, counter, "readout"),)


class Leaky(QuantReadoutKind):
    name = "leaky"
    folds = True  # (1 - alpha) into the rows (CONTRACT.md section 7)

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
