"""Fused time loops for training: a whole layer's sequence as one autograd node, generic over the kind.

Autograd through the plain per-step loop of ``SpikingLayer`` records some twenty tiny operations
per step and replays them one by one in the backward pass; at 784 steps that bookkeeping, not the
arithmetic, is most of a training step on a CPU. Here the forward loop runs without autograd and
writes every step straight into preallocated time-major buffers (spikes in a (D + T, B, N) buffer
whose first D rows are the zeros before the sequence start, so ``S[t - k]`` and the ASRC window
``S[t - K .. t - 1]`` are plain slices, no growing history); the backward pass is hand-written
BPTT, with the weight and span-weight gradients done as a few large products after the loop
instead of T small ones.

This module is the recurrence and the bookkeeping only. The neuron update is a :class:`Cell`
that a kind supplies (``QuantKind.fused_run`` in ``quant/kinds/<kind>.py``): its forward step,
its backward step and the gradients of its own parameters, with the same equations and operation
order as the kind's float step, so spikes are identical and values agree to float rounding. A
kind without a cell runs the plain per-step loop (``SpikingLayer.run``).
``tests/test_quant_speed_equivalence.py`` checks spikes, readout and every gradient against a plain
autograd loop.

Recurrence: ``I_t = C_t + R_t W^T`` with ``R_t = S[t - k]`` (SRC, ASRC in eval) or
``sum_j w_j S[t - j]`` (ASRC training), so ``dL/dS_t`` gains ``rec_t = sum_j w_j (dL/dI_{t+j} W)``.
"""
from __future__ import annotations

import torch

from .surrogate import Surrogate

__all__ = ["Cell", "layer_loop"]


class Cell:
    """One kind's neuron update inside :func:`layer_loop`; a fresh instance per call.

    ``tensors`` are the cell's tensor parameters (autograd inputs of the loop, e.g. ALIF's
    per-neuron decays); they come back as ``params`` in every method and their gradients from
    :meth:`param_grads`. The loop owns the spike buffer: ``s`` and ``s_prev`` are rows of it
    (``S[t]``, ``S[t-1]``, zeros before the start), ``pre_row`` is ``x_t``, the value the spike
    compares with 0, whose surrogate slope the backward pass gets.
    """

    #: whether :meth:`param_grads` needs the total current ``I_t`` (input plus recurrence) kept
    needs_total: bool = False
    tensors: tuple[torch.Tensor, ...] = ()

    def start(self, current: torch.Tensor, params: tuple) -> None:
        """Allocate the state and traces for ``current`` (B, T, N); the state starts at zero."""
        raise NotImplementedError

    def forward(self, t: int, i: torch.Tensor, s: torch.Tensor, s_prev: torch.Tensor, pre_row: torch.Tensor,
                params: tuple) -> None:
        """Step t: from the total current ``i`` (B, N) write ``x_t`` into ``pre_row`` and ``S[t]`` into ``s``."""
        raise NotImplementedError

    def start_backward(self, spikes: torch.Tensor, lead: int, params: tuple) -> None:
        """Before the backward loop; ``spikes[lead + t]`` is ``S[t]``."""
        self.spikes, self.lead = spikes, lead

    def backward(self, t: int, g_s: torch.Tensor, slope: torch.Tensor, g_cur: torch.Tensor, params: tuple):
        """Step t backwards (t = T-1 first): ``dL/dI_t`` written into ``g_cur`` and returned, from
        ``g_s`` = ``dL/dS_t`` of the outputs and the recurrence and ``slope`` = surrogate'(x_t)."""
        raise NotImplementedError

    def param_grads(self, needs: tuple[bool, ...], total: torch.Tensor, params: tuple) -> tuple:
        """Gradients of :attr:`tensors` (None where ``needs`` is False); ``total`` is ``I`` (T, B, N)."""
        return tuple(None for _ in needs)


def layer_loop(current: torch.Tensor, cell: Cell, span: int, surrogate: Surrogate, w_rec: torch.Tensor | None = None,
               mixture: torch.Tensor | None = None) -> torch.Tensor:
    """Spikes (B, T, N) of one layer for the input current (B, T, N), zero state at the start.

    ``w_rec`` (N, N) with ``span`` = k: SRC; with ``mixture`` (K,): ASRC mixing
    ``sum_j mixture[j-1] S[t-j]`` (``span`` is then ignored); neither: no recurrence.
    """
    return _LayerLoop.apply(current, w_rec, mixture, cell, span, surrogate, *cell.tensors)


class _LayerLoop(torch.autograd.Function):
    # Fewer, larger kernels per step matter more than anything else here: every step writes its
    # results straight into the time-major buffers (``out=``), and products with a spike (0 or 1,
    # so exact) use addcmul.
    @staticmethod
    def forward(ctx, current, w_rec, mixture, cell: Cell, span: int, surrogate: Surrogate, *params):
        batch, steps, n = current.shape
        cur = current.transpose(0, 1)  # (T, B, N) view; every step reads one (B, N) slice
        if w_rec is None:
            depth = 0
        elif mixture is not None:
            depth = mixture.shape[0]
        else:
            depth = span
        lead = max(depth, 1)  # at least one zero row: a cell may read the previous spike S[t-1]
        spikes = current.new_zeros(lead + steps, batch, n)
        flat = spikes.view(lead + steps, batch * n)
        pre = current.new_empty(steps, batch, n)  # x_t, the value compared with 0
        mixed = current.new_empty(steps, batch, n) if mixture is not None else None
        w_rec_t = w_rec.t() if w_rec is not None else None
        mix_rev = mixture.flip(0).unsqueeze(0) if mixture is not None else None  # oldest span first
        total = current.new_empty(steps, batch, n) if w_rec is not None and cell.needs_total else None
        cell.start(current, params)
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
            cell.forward(t, i, spike_rows[lead + t], spike_rows[lead + t - 1], pre_rows[t], params)
        ctx.cell, ctx.surrogate, ctx.depth, ctx.lead = cell, surrogate, depth, lead
        ctx.save_for_backward(current, spikes, pre, mixed, total, w_rec, mixture, *params)
        return spikes[lead:].transpose(0, 1)

    @staticmethod
    def backward(ctx, grad_spikes):
        current, spikes, pre, mixed, total, w_rec, mixture, *params = ctx.saved_tensors
        cell, depth, lead = ctx.cell, ctx.depth, ctx.lead
        params = tuple(params)
        steps, batch, n = pre.shape
        g_out = grad_spikes.transpose(0, 1).contiguous()  # (T, B, N): each step's rows are one block
        g_out_rows = g_out.view(steps, 1, batch * n).unbind(0)
        slope = ctx.surrogate.derivative(pre)  # (T, B, N), every step at once
        g_cur = torch.empty_like(pre)  # dL/dI_t
        # dL/dR_t = dL/dI_t W, with `depth` zero rows past the end
        g_rec = pre.new_zeros(steps + depth, batch, n) if w_rec is not None else None
        g_rec_flat = g_rec.view(steps + depth, batch * n) if g_rec is not None else None
        mixture_row = mixture.unsqueeze(0) if mixture is not None else None
        flat = spikes.view(lead + steps, batch * n)
        want_mix = mixture is not None and ctx.needs_input_grad[2]
        g_mix_rev = pre.new_zeros(depth) if want_mix else None  # oldest span first
        cell.start_backward(spikes, lead, params)
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
            g_i = cell.backward(t, g_s, slope_rows[t], g_cur_rows[t], params)
            if w_rec is not None:
                torch.mm(g_i, w_rec, out=g_rec_rows[t])
                if want_mix and t:  # dL/dw_j += <dL/dR_t, S[t-j]>, on the window still in cache
                    g_mix_rev.addmv_(windows[t], g_rec_flat[t])
        g_current = g_cur.transpose(0, 1) if ctx.needs_input_grad[0] else None
        g_w = g_mix = None
        if w_rec is not None and ctx.needs_input_grad[1]:
            r = mixed if mixture is not None else spikes[lead - depth:lead - depth + steps]
            g_w = g_cur.reshape(-1, n).t() @ r.reshape(-1, n)
        if want_mix:
            g_mix = g_mix_rev.flip(0)
        needs = tuple(ctx.needs_input_grad[6:])
        g_params = cell.param_grads(needs, total if total is not None else current.transpose(0, 1), params) \
            if any(needs) else tuple(None for _ in needs)
        return (g_current, g_w, g_mix, None, None, None, *g_params)
