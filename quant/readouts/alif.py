"""Readout ``alif``: SRNN's spiking ALIF output layer read through its membrane (CONTRACT.md 4.3).

Float: one ALIF neuron per class with learnable tau_m (-> alpha) and tau_adp (-> rho) per class,
``b0``, ``beta`` from ``ReadoutConfig.options`` (SRNN ECG: tau_m 20, tau_adp 100, b0 0.01,
beta 1.8); the readout trace is the membrane ``u`` at every step (``quant.neurons.alif_step``).
"""
from __future__ import annotations

import torch
from torch import nn

from skipcore.errors import ConfigError

from ..kinds.alif import ALIFCell
from ..neurons import ALIFParams, ALIFState, alif_step
from ..surrogate import get_surrogate
from . import QuantReadoutKind, register

DEFAULTS = {"b0": 0.01, "beta": 1.8, "tau_adp": (100.0, 0.0)}


class _MembraneLoop(torch.autograd.Function):
    """The membrane trace ``u`` (B, T, M) of :class:`quant.kinds.alif.ALIFCell` driven by ``z``
    (B, T, M), zero state, no recurrence; backward: the cell's BPTT with ``dL/du_t`` fed in."""

    @staticmethod
    def forward(ctx, z, cell, surrogate, *params):
        batch, steps, m = z.shape
        spikes = z.new_zeros(steps + 1, batch, m)  # spikes[1 + t] = S[t]
        pre = z.new_empty(steps, batch, m)
        cell.start(z, params)
        for t, z_t in enumerate(z.unbind(1)):
            cell.forward(t, z_t, spikes[1 + t], spikes[t], pre[t], params)
        ctx.cell, ctx.surrogate = cell, surrogate
        ctx.save_for_backward(z, spikes, pre, *params)
        return cell.u_trace.transpose(0, 1).clone()

    @staticmethod
    def backward(ctx, grad_u):
        z, spikes, pre, *params = ctx.saved_tensors
        params, cell = tuple(params), ctx.cell
        cell.g_membrane = grad_u.transpose(0, 1)
        cell.start_backward(spikes, 1, params)
        slope = ctx.surrogate.derivative(pre)
        g_z = torch.empty_like(pre)
        no_output = pre.new_zeros(pre.shape[1:])  # the output spikes reach the loss only through u
        for t in range(pre.shape[0] - 1, -1, -1):
            cell.backward(t, no_output, slope[t], g_z[t], params)
        needs = tuple(ctx.needs_input_grad[3:])
        g_params = cell.param_grads(needs, z.transpose(0, 1), params) if any(needs) else (None,) * len(needs)
        return (g_z.transpose(0, 1) if ctx.needs_input_grad[0] else None, None, None, *g_params)


def _opt(cfg, name):
    return cfg.options.get(name, DEFAULTS[name])


class ALIFReadout(QuantReadoutKind):
    name = "alif"
    folds = True  # (1 - alpha) into the rows (CONTRACT.md section 7)

    def check_config(self, cfg):
        unknown = set(cfg.options) - set(DEFAULTS)
        if unknown:
            raise ConfigError(f"unknown alif readout options: {', '.join(sorted(unknown))}; known: b0, beta, tau_adp")
        if _opt(cfg, "b0") <= 0 or _opt(cfg, "beta") < 0 or cfg.tau_o[0] <= 0 or tuple(_opt(cfg, "tau_adp"))[0] <= 0:
            raise ConfigError("an alif readout needs b0 > 0, beta >= 0 and positive time constants")

    def build(self, readout):
        cfg, classes = readout.cfg, readout.fc.out_features
        mean, std = cfg.tau_o
        a_mean, a_std = tuple(_opt(cfg, "tau_adp"))
        readout.tau_o = nn.Parameter(torch.empty(classes).normal_(mean, std) if std > 0
                                     else torch.full((classes,), mean))
        readout.tau_adp = nn.Parameter(torch.empty(classes).normal_(a_mean, a_std) if a_std > 0
                                       else torch.full((classes,), a_mean))
        readout.surrogate = get_surrogate("multi_gaussian")

    def params(self, readout):
        cfg = readout.cfg
        return ALIFParams(alpha=torch.exp(-1.0 / readout.tau_o), rho=torch.exp(-1.0 / readout.tau_adp),
                          b0=float(_opt(cfg, "b0")), beta=float(_opt(cfg, "beta")), spike_fn=readout.surrogate)

    def forward(self, readout, z):
        p = self.params(readout)
        if p.spike_fn is not None and torch.is_grad_enabled():
            # one autograd node for the sequence: the ALIF layer's fused cell, read through u
            return _MembraneLoop.apply(z, ALIFCell(p.alpha, p.rho, p.b0, p.beta), p.spike_fn, p.alpha, p.rho)
        state = ALIFState.zeros(z.shape[0], z.shape[2], device=z.device, dtype=z.dtype)
        out = []
        for z_t in z.unbind(1):
            _, state = alif_step(z_t, state, p)
            out.append(state.u)
        return torch.stack(out, dim=1)

    def export_params(self, readout):
        p = self.params(readout)
        return {"alpha": p.alpha, "rho": p.rho, "b0": p.b0, "beta": p.beta}

    def quantize(self, rp, ctx):
        from ..export import _f64, _q, quantize_decay, round_half_away, ste_clamp

        m, dev, dbits = ctx.classes, ctx.device, ctx.widths.decay_bits
        rmax = 2 ** (ctx.widths.readout_bits - 1) - 1
        return {
            "decay": quantize_decay(_f64(rp["alpha"], n=m, device=dev), dbits, ctx.decay_mode),
            "rho": ste_clamp(round_half_away(_f64(rp["rho"], n=m, device=dev) * float(2**dbits)), 0, 2**dbits - 1),
            "threshold": _q(_f64(rp["b0"], n=m, device=dev), ctx.scale, 1, rmax),
            "beta": _q(_f64(rp["beta"], n=m, device=dev), ctx.scale, 0, rmax),
        }

    def qat_state(self, zeros):
        return (zeros, zeros, zeros)

    def qat_step(self, acc, state, r, widths, counter=None):
        """Section 4.3 line by line as ``golden.readouts.alif.alif_readout_step``."""
        from ..qat import decay, sat

        u, b, q = state
        d, t, bits = widths.decay_bits, widths.trace_bits, widths.readout_bits
        b = decay(b, r.rho, d, "mult", t + 2) + q * ((float(2**d) - r.rho) * float(2**(t - d)))
        # (beta * b) >> T with beta up to R bits: decay()'s split product with the roles swapped
        # (b <= 2**T is the small factor), exact where beta * b could pass 2**53
        big_b = sat(r.threshold + decay(r.beta, b, t, "mult", None), bits, counter, "readout")
        u = sat(decay(u, r.decay, d, r.decay_mode, bits) + acc - q * big_b, bits, counter, "readout")
        return (u, b, (u > big_b).to(u.dtype))

    def value(self, state):
        return state[0]


register(ALIFReadout())
