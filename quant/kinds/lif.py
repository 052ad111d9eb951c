"""LIF (ASRC-SNN) on the training side: float step, its fused training loop, float-to-integer rule,
QAT step."""
from __future__ import annotations

import torch

from ..fastloop import Cell, layer_loop
from ..neurons import LIFParams, LIFState, lif_step
from . import QuantKind, register


class LIFCell(Cell):
    """``quant.neurons.lif_step`` in the fused loop (same operation order).

    ``h = lam v + I; x = h - th; s = H(x); v = h - th s`` (soft) or ``h (1 - s)`` (hard)::

        dL/ds_t = out_t + rec_t + dL/dv_t * (-th | -h_t)
        dL/dh_t = dL/ds_t g(x_t) + dL/dv_t * (1 | 1 - s_t);   dL/dI_t = dL/dh_t;   dL/dv_{t-1} = lam dL/dh_t
    """

    def __init__(self, lam: float, threshold: float, soft_reset: bool):
        self.lam, self.th, self.soft = lam, threshold, soft_reset

    def start(self, current, params):
        batch, steps, n = current.shape
        self.membrane = None if self.soft else current.new_empty(steps, batch, n)  # h_t (hard reset's backward)
        self.v = current.new_zeros(batch, n)
        self.one = current.new_ones(())  # heaviside's value at x = 0: [x >= 0]

    def forward(self, t, i, s, s_prev, pre_row, params):
        h = torch.add(i, self.v, alpha=self.lam, out=self.membrane[t] if self.membrane is not None else None)
        torch.heaviside(torch.sub(h, self.th, out=pre_row), self.one, out=s)
        self.v = h.sub_(s, alpha=self.th) if self.soft else torch.addcmul(h, h, s, value=-1)

    def start_backward(self, spikes, lead, params):
        super().start_backward(spikes, lead, params)
        self.g_next = None  # dL/dh_{t+1}

    def backward(self, t, g_s, slope, g_cur, params):
        g_next, lam = self.g_next, self.lam
        if g_next is None:
            g_i = torch.mul(g_s, slope, out=g_cur)
        elif self.soft:
            # dL/dv_t = lam dL/dh_{t+1}; dL/ds_t -= th dL/dv_t; dL/dh_t += dL/dv_t
            g_s = torch.add(g_s, g_next, alpha=-self.th * lam)
            g_i = torch.mul(g_s, slope, out=g_cur).add_(g_next, alpha=lam)
        else:
            g_v = lam * g_next
            g_s = torch.addcmul(g_s, g_v, self.membrane[t], value=-1)
            g_i = torch.mul(g_s, slope, out=g_cur).addcmul_(g_v, 1.0 - self.spikes[self.lead + t])
        self.g_next = g_i
        return g_i


class LIF(QuantKind):
    name = "lif"
    surrogate = "triangle"
    FloatState = LIFState

    float_step = staticmethod(lif_step)

    def float_params(self, layer):
        c = layer.cfg
        return LIFParams(lam=c.lam, threshold=c.threshold, soft_reset=c.reset == "soft", spike_fn=layer.surrogate)

    def fused_run(self, layer, current, mixture):
        c = layer.cfg
        cell = LIFCell(float(c.lam), float(c.threshold), c.reset == "soft")
        return layer_loop(current, cell, layer.span, layer.surrogate,
                          layer.rec.weight if layer.rec is not None else None, mixture)

    def export_params(self, layer):
        c = layer.cfg
        return {"lam": float(c.lam), "threshold": float(c.threshold), "reset": c.reset}

    def quantize(self, lp, ctx):
        from ..export import _f64, _q, quantize_decay

        smax = 2 ** (ctx.widths.state_bits - 1) - 1
        n, dev = ctx.neurons, ctx.device
        reset = lp.get("reset", "soft")
        if reset not in ("soft", "hard"):
            from skipcore.errors import ConfigError
            raise ConfigError(f"layer {ctx.index}: LIF reset must be soft or hard, not {reset!r}")
        arrays = {
            "threshold": _q(_f64(lp["threshold"], n=n, device=dev), ctx.scale, 1, smax),
            "decay": quantize_decay(_f64(lp["lam"], n=n, device=dev), ctx.widths.decay_bits, ctx.decay_mode),
        }
        return arrays, {}, reset

    def qat_state(self, zeros):
        from ..qat import LIFState as IntState
        return IntState(zeros)

    def qat_step(self, acc, state, p, counter=None):
        from ..qat import lif_step as int_step
        return int_step(acc, state, p, counter)


register(LIF())
