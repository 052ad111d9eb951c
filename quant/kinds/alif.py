"""ALIF (SRNN) on the training side: float step, float-to-integer rule, QAT step."""
from __future__ import annotations

import torch
from torch import nn

from skipcore.errors import ConfigError

from ..fastloop import LoopSpec, layer_loop
from ..neurons import ALIFParams, ALIFState, alif_step
from . import QuantKind, register


class ALIF(QuantKind):
    name = "alif"
    surrogate = "multi_gaussian"
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
        spec = LoopSpec(kind="alif", span=layer.span if mixture is None else 0, surrogate=layer.surrogate,
                        b0=float(c.b0), beta=float(c.beta))
        p = self.float_params(layer)
        return layer_loop(current, spec, layer.rec.weight if layer.rec is not None else None, mixture, p.alpha, p.rho)

    def export_params(self, layer):
        c = layer.cfg
        p = self.float_params(layer)
        return {"alpha": p.alpha, "rho": p.rho, "b0": float(c.b0), "beta": float(c.beta), "threshold": float(c.b0),
                "reset": "delayed"}

    def fold(self, lp, n, device):
        from ..export import _f64
        return 1.0 - _f64(lp["alpha"], n=n, device=device)

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
