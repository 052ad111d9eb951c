"""Fused time loops for training: a whole layer's (or leaky readout's) sequence as one autograd node.

Autograd through the plain per-step loop of ``SpikingLayer`` records some twenty tiny operations
per step and replays them one by one in the backward pass; at 784 steps that bookkeeping, not the
arithmetic, is most of a training step on a CPU. Here the forward loop runs without autograd and
writes every step straight into preallocated time-major buffers (spikes in a (D + T, B, N) buffer
whose first D rows are the zeros before the sequence start, so ``S[t - k]`` and the ASRC window
``S[t - K .. t - 1]`` are plain slices, no growing history); the backward pass is the hand-written
BPTT below, with the weight, span-weight and time-constant gradients done as a few large products
after the loop instead of T small ones.

The equations are those of ``quant.neurons`` (``lif_step``, ``alif_step``) and ``quant.layers``
with the same operation order, so spikes are identical and values agree to float rounding;
``tests/test_quant_speed_equivalence.py`` checks spikes, readout and every gradient against a plain
autograd loop. Derivatives (s_t = spikes, x_t = the value compared with 0, g = surrogate'):

LIF  ``h = lam v + I; x = h - th; s = H(x); v = h - th s`` (soft) or ``h (1 - s)`` (hard)::

    dL/ds_t = out_t + rec_t + dL/dv_t * (-th | -h_t)
    dL/dh_t = dL/ds_t g(x_t) + dL/dv_t * (1 | 1 - s_t);   dL/dI_t = dL/dh_t;   dL/dv_{t-1} = lam dL/dh_t

ALIF ``b = rho b + (1 - rho) s'; B = b0 + beta b; u = alpha u + (1 - alpha) I - B s'; x = u - B``
(s' = the previous spike)::

    dL/dx_t = dL/ds_t g(x_t);   dL/du_t += dL/dx_t;   dL/dB_t = -dL/dx_t - dL/du_t s'
    dL/db_t += beta dL/dB_t;    dL/dI_t = (1 - alpha) dL/du_t
    to step t-1: dL/du += alpha dL/du_t, dL/db += rho dL/db_t, dL/ds' += (1 - rho) dL/db_t - B_t dL/du_t

Recurrence: ``I_t = C_t + R_t W^T`` with ``R_t = S[t - k]`` (SRC, ASRC in eval) or
``sum_j w_j S[t - j]`` (ASRC training), so ``rec_t = sum_j w_j (dL/dI_{t+j} W)``.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from .surrogate import Surrogate

__all__ = ["LoopSpec", "layer_loop", "leaky_readout"]


class LoopSpec(NamedTuple):
    """The constant (non-tensor) part of a layer's time loop."""

    kind: str  #: "lif" or "alif"
    span: int  #: SRC span k (also ASRC in eval); 0: no recurrence or ASRC mixing
    surrogate: Surrogate | None
    lam: float = 0.5
    threshold: float = 1.0
    soft_reset: bool = True
    b0: float = 0.1
    beta: float = 1.8


def layer_loop(current: torch.Tensor, spec: LoopSpec, w_rec: torch.Tensor | None = None,
               mixture: torch.Tensor | None = None, alpha: torch.Tensor | None = None,
               rho: torch.Tensor | None = None) -> torch.Tensor:
    """Spikes (B, T, N) of one layer for the input current (B, T, N).

    ``w_rec`` (N, N) with ``spec.span`` = k: SRC; with ``mixture`` (K,): ASRC mixing
    ``sum_j mixture[j-1] S[t-j]``; neither: no recurrence. ``alpha``, ``rho`` (N,): ALIF decays.
    """
    return _LayerLoop.apply(current, w_rec, mixture, alpha, rho, spec)


class _LayerLoop(torch.autograd.Function):
    @staticmethod
    def forward(ctx, current, w_rec, mixture, alpha, rho, spec: LoopSpec):
        batch, steps, n = current.shape
        cur = current.transpose(0, 1)  # (T, B, N) view; every step reads one (B, N) slice
        if w_rec is None:
            depth = 0
        elif mixture is not None:
            depth = mixture.shape[0]
        else:
            depth = spec.span
        lead = max(depth, 1)  # at least one zero row: ALIF reads the previous spike S[t-1]
        spikes = current.new_zeros(lead + steps, batch, n)
        pre = current.new_empty(steps, batch, n)  # x_t, the value compared with 0
        mixed = current.new_empty(steps, batch, n) if mixture is not None else None
        w_rec_t = w_rec.t() if w_rec is not None else None
        mix_rev = mixture.flip(0).unsqueeze(0) if mixture is not None else None  # oldest span first
        flat = spikes.view(lead + steps, batch * n)
        lif = spec.kind == "lif"
        total = None if lif and w_rec is None else current.new_empty(steps, batch, n)
        if lif:
            membrane = None if spec.soft_reset else current.new_empty(steps, batch, n)
            v = current.new_zeros(batch, n)
        else:
            u_trace = current.new_empty(steps, batch, n)
            b_trace = current.new_empty(steps, batch, n)
            one_minus_alpha, one_minus_rho = 1.0 - alpha, 1.0 - rho
            u = b = current.new_zeros(batch, n)
        th = spec.threshold
        for t in range(steps):
            i = cur[t]
            if w_rec is not None:
                if mixture is not None:
                    # R_t = sum_j w_j S[t-j]: one (1, K) x (K, B*N) product over the window
                    r = torch.mm(mix_rev, flat[lead + t - depth:lead + t], out=mixed[t].view(1, -1)).view(batch, n)
                else:
                    r = spikes[lead + t - depth]
                i = torch.addmm(i, r, w_rec_t, out=total[t])
            elif total is not None:
                total[t] = i
            s = spikes[lead + t]
            if lif:
                h = v.mul_(spec.lam).add_(i) if t else i.clone()  # lam * v + I (v = 0 at t = 0)
                fire = torch.sub(h, th, out=pre[t]) >= 0
                s.copy_(fire)
                if spec.soft_reset:
                    v = h.sub_(s, alpha=th)
                else:
                    membrane[t] = h
                    v = h.masked_fill_(fire, 0.0)
            else:
                s_prev = spikes[lead + t - 1]
                b = torch.mul(rho, b).add_(one_minus_rho * s_prev)
                b_trace[t] = b
                big_b = b.mul(spec.beta).add_(spec.b0)
                u = torch.mul(alpha, u).add_(one_minus_alpha * i).sub_(big_b * s_prev)
                u_trace[t] = u
                x = torch.sub(u, big_b, out=pre[t])
                s.copy_(x > 0)
        ctx.spec, ctx.depth, ctx.lead = spec, depth, lead
        ctx.save_for_backward(spikes, pre, mixed, total, w_rec, mixture, alpha, rho,
                              membrane if lif else u_trace, None if lif else b_trace)
        return spikes[lead:].transpose(0, 1)

    @staticmethod
    def backward(ctx, grad_spikes):
        spikes, pre, mixed, total, w_rec, mixture, alpha, rho, trace_a, trace_b = ctx.saved_tensors
        spec, depth, lead = ctx.spec, ctx.depth, ctx.lead
        steps, batch, n = pre.shape
        g_out = grad_spikes.transpose(0, 1)
        slope = spec.surrogate.derivative(pre)  # (T, B, N), every step at once
        g_cur = torch.empty_like(pre)
        # dL/dR_t = dL/dI_t W, kept for `depth` steps past the end as zeros
        g_rec = pre.new_zeros(steps + depth, batch, n) if w_rec is not None else None
        g_rec_flat = g_rec.view(steps + depth, batch * n) if g_rec is not None else None
        mixture_col = mixture.unsqueeze(0) if mixture is not None else None
        flat = spikes.view(lead + steps, batch * n)
        want_mix = mixture is not None and ctx.needs_input_grad[2]
        g_mix_rev = pre.new_zeros(depth) if want_mix else None  # oldest span first
        lif = spec.kind == "lif"
        th = spec.threshold
        if lif:
            g_v = None
        else:
            g_u = g_b = g_s_next = None
            g_u_trace = torch.empty_like(pre)
            g_b_trace = torch.empty_like(pre)
            one_minus_alpha, one_minus_rho = 1.0 - alpha, 1.0 - rho
        for t in range(steps - 1, -1, -1):
            g_s = g_out[t]
            if w_rec is not None and t + 1 < steps:
                if mixture is not None:
                    rec = torch.mm(mixture_col, g_rec_flat[t + 1:t + 1 + depth]).view(batch, n)
                else:
                    rec = g_rec[t + depth]
                g_s = g_s + rec
            if lif:
                if g_v is not None:
                    if spec.soft_reset:
                        g_s = g_s - th * g_v
                    else:
                        g_s = g_s - g_v * trace_a[t]
                g_h = g_s * slope[t]
                if g_v is not None:
                    g_h += g_v if spec.soft_reset else g_v * (1.0 - spikes[lead + t])
                g_cur[t] = g_h
                g_v = spec.lam * g_h
                g_i = g_h
            else:
                if g_s_next is not None:
                    g_s = g_s + g_s_next
                g_x = g_s * slope[t]
                g_u = g_x if g_u is None else g_u + g_x
                s_prev = spikes[lead + t - 1]
                g_big_b = -g_x - g_u * s_prev
                g_b = spec.beta * g_big_b if g_b is None else g_b + spec.beta * g_big_b
                g_u_trace[t] = g_u
                g_b_trace[t] = g_b
                g_i = torch.mul(one_minus_alpha, g_u, out=g_cur[t])
                big_b = trace_b[t] * spec.beta + spec.b0
                g_s_next = one_minus_rho * g_b - big_b * g_u
                g_u = alpha * g_u
                g_b = rho * g_b
            if w_rec is not None:
                torch.mm(g_i, w_rec, out=g_rec[t])
                if want_mix and t:  # dL/dw_j += <dL/dR_t, S[t-j]>, on the window still in cache
                    g_mix_rev.addmv_(flat[lead + t - depth:lead + t], g_rec_flat[t])
        g_current = g_cur.transpose(0, 1) if ctx.needs_input_grad[0] else None
        g_w = g_mix = g_alpha = g_rho = None
        if w_rec is not None and ctx.needs_input_grad[1]:
            if mixture is not None:
                r = mixed
            else:
                r = spikes[lead - depth:lead - depth + steps]
            g_w = g_cur.reshape(-1, n).t() @ r.reshape(-1, n)
        if want_mix:
            g_mix = g_mix_rev.flip(0)
        if not lif:
            u_prev = torch.cat([pre.new_zeros(1, batch, n), trace_a[:-1]])
            b_prev = torch.cat([pre.new_zeros(1, batch, n), trace_b[:-1]])
            s_prev = spikes[lead - 1:lead - 1 + steps]
            i_total = total
            if ctx.needs_input_grad[3]:
                g_alpha = (g_u_trace * (u_prev - i_total)).sum((0, 1))
            if ctx.needs_input_grad[4]:
                g_rho = (g_b_trace * (b_prev - s_prev)).sum((0, 1))
        return g_current, g_w, g_mix, g_alpha, g_rho, None


def leaky_readout(z: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """``m[t] = alpha m[t-1] + (1 - alpha) z[t]``, m[-1] = 0, for z (B, T, M); alpha (M,)."""
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
