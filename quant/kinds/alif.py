"""ALIF (SRNN) on the training side: float step, float-to-integer rule, QAT step."""
from __future__ import annotations

import torch
from torch import nn

from skipcore.errors import ConfigError

from ..fastloop import Cell, layer_loop
from ..neurons import ALIFParams, ALIFState, alif_step
from . import QuantKind, register


class ALIFCell(Cell):
    """``quant.neurons.alif_step`` in the fused loop (same operation order); tensors: alpha, rho (N,).

    ``b = rho b + (1 - rho) s'; B = b0 + beta b; u = alpha u + (1 - alpha) I - B s'; x = u - B``
    (s' = the previous spike)::

        dL/dx_t = dL/ds_t g(x_t);   dL/du_t += dL/dx_t;   dL/dB_t = -dL/dx_t - dL/du_t s'
        dL/db_t += beta dL/dB_t;    dL/dI_t = (1 - alpha) dL/du_t
        to step t-1: dL/du += alpha dL/du_t, dL/db += rho dL/db_t, dL/ds' += (1 - rho) dL/db_t - B_t dL/du_t
    """

    needs_total = True  # d u_t / d alpha = u_{t-1} - I_t

    def __init__(self, alpha: torch.Tensor, rho: torch.Tensor, b0: float, beta: float):
        self.tensors = (alpha, rho)
        self.b0, self.beta = b0, beta
        #: dL/du_t (T, B, N) from outside the loop, when the membrane itself is an output (the
        #: spiking ALIF readout, ``quant/readouts/alif.py``); None for a hidden layer
        self.g_membrane: torch.Tensor | None = None

    def start(self, current, params):
        alpha, rho = params
        batch, steps, n = current.shape
        self.u_trace, self.b_trace, self.big_b_trace = (current.new_empty(steps, batch, n) for _ in range(3))
        self.one_minus_alpha, self.one_minus_rho = 1.0 - alpha, 1.0 - rho
        self.u = self.b = current.new_zeros(batch, n)
        self.zero = current.new_zeros(())  # heaviside's value at x = 0: [x > 0]

    def forward(self, t, i, s, s_prev, pre_row, params):
        alpha, rho = params
        self.b = torch.mul(rho, self.b, out=self.b_trace[t]).addcmul_(self.one_minus_rho, s_prev)
        big_b = torch.mul(self.b, self.beta, out=self.big_b_trace[t]).add_(self.b0)
        self.u = (torch.mul(alpha, self.u, out=self.u_trace[t]).addcmul_(self.one_minus_alpha, i)
                  .addcmul_(big_b, s_prev, value=-1))
        torch.heaviside(torch.sub(self.u, big_b, out=pre_row), self.zero, out=s)

    def start_backward(self, spikes, lead, params):
        super().start_backward(spikes, lead, params)
        self.g_u_trace, self.g_b_trace = torch.empty_like(self.u_trace), torch.empty_like(self.u_trace)
        self.g_next = None  # (dL/du_{t+1}, dL/db_{t+1})

    def backward(self, t, g_s, slope, g_cur, params):
        alpha, rho = params
        spikes, lead, beta = self.spikes, self.lead, self.beta
        if self.g_next is None:
            g_x = g_s * slope
            g_u = self.g_u_trace[t].copy_(g_x)
        else:
            g_u_next, g_b_next = self.g_next
            # s_t enters b_{t+1} with weight (1 - rho) and u_{t+1} with weight -B_{t+1}
            g_s = g_s + torch.mul(self.one_minus_rho, g_b_next).addcmul_(self.big_b_trace[t + 1], g_u_next, value=-1)
            g_x = g_s * slope
            g_u = torch.add(g_x, alpha * g_u_next, out=self.g_u_trace[t])
        if self.g_membrane is not None:
            g_u.add_(self.g_membrane[t])
        # dL/dB_t = -(dL/dx_t + dL/du_t s_{t-1}); dL/db_t = rho dL/db_{t+1} + beta dL/dB_t
        g_big = torch.addcmul(g_x, g_u, spikes[lead + t - 1])
        if self.g_next is not None:
            g_b = torch.add(rho * self.g_next[1], g_big, alpha=-beta, out=self.g_b_trace[t])
        else:
            g_b = torch.mul(g_big, -beta, out=self.g_b_trace[t])
        g_i = torch.mul(self.one_minus_alpha, g_u, out=g_cur)
        self.g_next = (g_u, g_b)
        return g_i

    def param_grads(self, needs, total, params):
        spikes, lead = self.spikes, self.lead
        steps = total.shape[0]
        g_alpha = g_rho = None
        # du_t/dalpha = u_{t-1} - I_t and db_t/drho = b_{t-1} - s_{t-1}, with u_{-1} = b_{-1} = 0
        if needs[0]:
            g_alpha = (self.g_u_trace[1:] * self.u_trace[:-1]).sum((0, 1)) - (self.g_u_trace * total).sum((0, 1))
        if needs[1]:
            g_rho = ((self.g_b_trace[1:] * self.b_trace[:-1]).sum((0, 1))
                     - (self.g_b_trace * spikes[lead - 1:lead - 1 + steps]).sum((0, 1)))
        return g_alpha, g_rho


class ALIF(QuantKind):
    name = "alif"
    surrogate = "multi_gaussian"
    folds = True  # (1 - alpha) into the rows (CONTRACT.md section 7)
    FloatState = ALIFState

    def check_config(self, cfg):
        if min(cfg.tau_m[0], cfg.tau_adp[0]) <= 0:
            raise ConfigError("ALIF time constants must be positive")

    def build(self, layer):
        cfg, n = layer.cfg, layer.neurons
        tau_m = torch.empty(n).normal_(*cfg.tau_m) if cfg.tau_m[1] > 0 else torch.full((n,), cfg.tau_m[0])
        tau_adp = torch.empty(n).normal_(*cfg.tau_adp) if cfg.tau_adp[1] > 0 else torch.full((n,), cfg.tau_adp[0])
        layer.tau_m = nn.Parameter(tau_m, requires_grad=cfg.learn_taus)
        layer.tau_adp = nn.Parameter(tau_adp, requires_grad=cfg.learn_taus)

    float_step = staticmethod(alif_step)

    def float_params(self, layer):
        c = layer.cfg
        return ALIFParams(alpha=torch.exp(-1.0 / layer.tau_m), rho=torch.exp(-1.0 / layer.tau_adp), b0=c.b0,
                          beta=c.beta, spike_fn=layer.surrogate)

    def fused_run(self, layer, current, mixture):
        c = layer.cfg
        p = self.float_params(layer)
        return layer_loop(current, ALIFCell(p.alpha, p.rho, float(c.b0), float(c.beta)), layer.span,
                          layer.surrogate, layer.rec.weight if layer.rec is not None else None, mixture)

    def export_params(self, layer):
        c = layer.cfg
        p = self.float_params(layer)
        return {"alpha": p.alpha, "rho": p.rho, "b0": float(c.b0), "beta": float(c.beta), "threshold": float(c.b0),
                "reset": "delayed"}

    def quantize(self, lp, ctx):
        from ..export import _f64, _q, quantize_decay, round_half_away, ste_clamp

        smax = 2 ** (ctx.widths.state_bits - 1) - 1
        n, dev, dbits = ctx.neurons, ctx.device, ctx.widths.decay_bits
        arrays = {
            "threshold": _q(_f64(lp.get("b0", lp.get("threshold")), n=n, device=dev), ctx.scale, 1, smax),
            "decay": quantize_decay(_f64(lp["alpha"], n=n, device=dev), dbits, ctx.decay_mode),
            "rho": ste_clamp(round_half_away(_f64(lp["rho"], n=n, device=dev) * float(2**dbits)), 0, 2**dbits - 1),
            "beta": _q(_f64(lp["beta"], n=n, device=dev), ctx.scale, 0, smax),
        }
        return arrays, {}, "soft"

    def qat_state(self, zeros):
        from ..qat import ALIFState as IntState
        return IntState(zeros, zeros, zeros)

    def qat_step(self, acc, state, p, counter=None):
        from ..qat import alif_step as int_step
        return int_step(acc, state, p, counter)


register(ALIF())
