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
    # Fewer, larger kernels per step matter more than anything else here: every step writes its
    # results straight into the time-major buffers (``out=``), and products with a spike (0 or 1,
    # so exact) use addcmul.
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
        flat = spikes.view(lead + steps, batch * n)
        pre = current.new_empty(steps, batch, n)  # x_t, the value compared with 0
        mixed = current.new_empty(steps, batch, n) if mixture is not None else None
        w_rec_t = w_rec.t() if w_rec is not None else None
        mix_rev = mixture.flip(0).unsqueeze(0) if mixture is not None else None  # oldest span first
        lif = spec.kind == "lif"
        # the total current I_t: only ALIF's backward needs it (d u_t / d alpha = u_{t-1} - I_t)
        total = current.new_empty(steps, batch, n) if w_rec is not None and not lif else None
        th = spec.threshold
        one, zero = current.new_ones(()), current.new_zeros(())  # heaviside's value at x = 0
        if lif:
            membrane = None if spec.soft_reset else current.new_empty(steps, batch, n)
            v = current.new_zeros(batch, n)
        else:
            u_trace, b_trace, big_b_trace = (current.new_empty(steps, batch, n) for _ in range(3))
            one_minus_alpha, one_minus_rho = 1.0 - alpha, 1.0 - rho
            u = b = current.new_zeros(batch, n)
        # per-step views made once (unbind / as_strided): indexing in the loop costs as much as a kernel
        spike_rows = spikes.unbind(0)  # spike_rows[lead + t] = S[t]
        pre_rows = pre.unbind(0)
        if mixture is not None:
            # windows[t] = S[t-K .. t-1] as (K, B*N); mixed_rows[t] = R_t as (1, B*N)
            windows = flat.as_strided((steps, depth, batch * n), (batch * n, batch * n, 1)).unbind(0)
            mixed_rows = mixed.view(steps, 1, batch * n).unbind(0)
        total_rows = total.unbind(0) if total is not None else [None] * steps
        for t, i in enumerate(cur.unbind(0)):
            if w_rec is not None:
                if mixture is not None:
                    # R_t = sum_j w_j S[t-j]: one (1, K) x (K, B*N) product over the window
                    r = torch.mm(mix_rev, windows[t], out=mixed_rows[t]).view(batch, n)
                else:
                    r = spike_rows[t + lead - depth]
                i = torch.addmm(i, r, w_rec_t, out=total_rows[t])
            s = spike_rows[lead + t]
            if lif:
                h = torch.add(i, v, alpha=spec.lam, out=membrane[t] if membrane is not None else None)
                torch.heaviside(torch.sub(h, th, out=pre_rows[t]), one, out=s)  # [x >= 0]
                v = h.sub_(s, alpha=th) if spec.soft_reset else torch.addcmul(h, h, s, value=-1)
            else:
                s_prev = spike_rows[lead + t - 1]
                b = torch.mul(rho, b, out=b_trace[t]).addcmul_(one_minus_rho, s_prev)
                big_b = torch.mul(b, spec.beta, out=big_b_trace[t]).add_(spec.b0)
                u = torch.mul(alpha, u, out=u_trace[t]).addcmul_(one_minus_alpha, i).addcmul_(big_b, s_prev, value=-1)
                torch.heaviside(torch.sub(u, big_b, out=pre_rows[t]), zero, out=s)  # [x > 0]
        ctx.spec, ctx.depth, ctx.lead = spec, depth, lead
        if lif:
            traces = (membrane, None, None)
        else:
            traces = (u_trace, b_trace, big_b_trace)
        ctx.save_for_backward(current, spikes, pre, mixed, total, w_rec, mixture, alpha, rho, *traces)
        return spikes[lead:].transpose(0, 1)

    @staticmethod
    def backward(ctx, grad_spikes):
        current, spikes, pre, mixed, total, w_rec, mixture, alpha, rho, trace_a, trace_b, trace_c = ctx.saved_tensors
        spec, depth, lead = ctx.spec, ctx.depth, ctx.lead
        steps, batch, n = pre.shape
        g_out = grad_spikes.transpose(0, 1).contiguous()  # (T, B, N): each step's rows are one block
        g_out_rows = g_out.view(steps, 1, batch * n).unbind(0)
        slope = spec.surrogate.derivative(pre)  # (T, B, N), every step at once
        g_cur = torch.empty_like(pre)  # dL/dI_t
        # dL/dR_t = dL/dI_t W, with `depth` zero rows past the end
        g_rec = pre.new_zeros(steps + depth, batch, n) if w_rec is not None else None
        g_rec_flat = g_rec.view(steps + depth, batch * n) if g_rec is not None else None
        mixture_row = mixture.unsqueeze(0) if mixture is not None else None
        flat = spikes.view(lead + steps, batch * n)
        want_mix = mixture is not None and ctx.needs_input_grad[2]
        g_mix_rev = pre.new_zeros(depth) if want_mix else None  # oldest span first
        lif = spec.kind == "lif"
        th, lam, beta = spec.threshold, spec.lam, spec.beta
        if not lif:
            g_u_trace, g_b_trace = torch.empty_like(pre), torch.empty_like(pre)
            one_minus_alpha, one_minus_rho = 1.0 - alpha, 1.0 - rho
        g_next = None  # LIF: dL/dh_{t+1}; ALIF: (dL/du_{t+1}, dL/db_{t+1})
        slope_rows, g_cur_rows = slope.unbind(0), g_cur.unbind(0)
        if w_rec is not None:
            g_rec_rows = g_rec.unbind(0)
            if mixture is not None:
                # g_windows[t] = dL/dR_{t+1 .. t+K} as (K, B*N); windows[t] = S[t-K .. t-1]
                g_windows = g_rec_flat[1:].as_strided((steps, depth, batch * n), (batch * n, batch * n, 1)).unbind(0)
                windows = flat.as_strided((steps, depth, batch * n), (batch * n, batch * n, 1)).unbind(0)
        for t in range(steps - 1, -1, -1):
            g_s = g_out[t]
            if w_rec is not None and t + 1 < steps:
                if mixture is not None:  # dL/dS_t += sum_j w_j dL/dR_{t+j}, added to dL/dS_t by addmm
                    g_s = torch.addmm(g_out_rows[t], mixture_row, g_windows[t]).view(batch, n)
                else:
                    g_s = g_s + g_rec_rows[t + depth]
            if lif:
                if g_next is None:
                    g_i = torch.mul(g_s, slope_rows[t], out=g_cur_rows[t])
                elif spec.soft_reset:
                    # dL/dv_t = lam dL/dh_{t+1}; dL/ds_t -= th dL/dv_t; dL/dh_t += dL/dv_t
                    g_s = torch.add(g_s, g_next, alpha=-th * lam)
                    g_i = torch.mul(g_s, slope_rows[t], out=g_cur_rows[t]).add_(g_next, alpha=lam)
                else:
                    g_v = lam * g_next
                    g_s = torch.addcmul(g_s, g_v, trace_a[t], value=-1)
                    g_i = torch.mul(g_s, slope_rows[t], out=g_cur_rows[t]).addcmul_(g_v, 1.0 - spikes[lead + t])
                g_next = g_i
            else:
                if g_next is None:
                    g_x = g_s * slope_rows[t]
                    g_u = g_u_trace[t].copy_(g_x)
                else:
                    g_u_next, g_b_next = g_next
                    # s_t enters b_{t+1} with weight (1 - rho) and u_{t+1} with weight -B_{t+1}
                    g_s = g_s + torch.mul(one_minus_rho, g_b_next).addcmul_(trace_c[t + 1], g_u_next, value=-1)
                    g_x = g_s * slope_rows[t]
                    g_u = torch.add(g_x, alpha * g_u_next, out=g_u_trace[t])
                # dL/dB_t = -(dL/dx_t + dL/du_t s_{t-1}); dL/db_t = rho dL/db_{t+1} + beta dL/dB_t
                g_big = torch.addcmul(g_x, g_u, spikes[lead + t - 1])
                if g_next is not None:
                    g_b = torch.add(rho * g_b_next, g_big, alpha=-beta, out=g_b_trace[t])
                else:
                    g_b = torch.mul(g_big, -beta, out=g_b_trace[t])
                g_i = torch.mul(one_minus_alpha, g_u, out=g_cur_rows[t])
                g_next = (g_u, g_b)
            if w_rec is not None:
                torch.mm(g_i, w_rec, out=g_rec_rows[t])
                if want_mix and t:  # dL/dw_j += <dL/dR_t, S[t-j]>, on the window still in cache
                    g_mix_rev.addmv_(windows[t], g_rec_flat[t])
        g_current = g_cur.transpose(0, 1) if ctx.needs_input_grad[0] else None
        g_w = g_mix = g_alpha = g_rho = None
        if w_rec is not None and ctx.needs_input_grad[1]:
            r = mixed if mixture is not None else spikes[lead - depth:lead - depth + steps]
            g_w = g_cur.reshape(-1, n).t() @ r.reshape(-1, n)
        if want_mix:
            g_mix = g_mix_rev.flip(0)
        if not lif:
            i_total = total if total is not None else current.transpose(0, 1)
            # du_t/dalpha = u_{t-1} - I_t and db_t/drho = b_{t-1} - s_{t-1}, with u_{-1} = b_{-1} = 0
            if ctx.needs_input_grad[3]:
                g_alpha = (g_u_trace[1:] * trace_a[:-1]).sum((0, 1)) - (g_u_trace * i_total).sum((0, 1))
            if ctx.needs_input_grad[4]:
                g_rho = ((g_b_trace[1:] * trace_b[:-1]).sum((0, 1))
                         - (g_b_trace * spikes[lead - 1:lead - 1 + steps]).sum((0, 1)))
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
