"""The float time loops as they were before issue 14 (commit 7e96018), kept for ``bench_train.py``.

``before_loops()`` is a context manager that puts these loops back on ``SpikingLayer`` and
``Readout`` so the benchmark can time "before" and "after" side by side in one process. Nothing in
the library uses this file. The code below is a faithful copy of ``SpikingLayer.run``,
``SpikingLayer.recurrent_current``, ``span_mixture`` and ``Readout.forward`` of that commit: each
step slices the (B, T, N) input current with ``current[:, t]``, whose backward fills and adds a
whole (B, T, N) tensor, so the backward grows as T**2.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from skipcore.quant.layers import SpikingLayer
from skipcore.quant.readout import Readout


class _SpanMixture(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weights, *past):
        ctx.save_for_backward(weights, *past)
        return torch.tensordot(weights, torch.stack(past), dims=1)

    @staticmethod
    def backward(ctx, grad):
        weights, *past = ctx.saved_tensors
        grad_w = None
        if ctx.needs_input_grad[0]:
            grad_w = torch.stack(past).flatten(1) @ grad.flatten()
        grad_past = (weights.view(-1, *([1] * grad.dim())) * grad).unbind(0)
        return (grad_w, *grad_past)


def _recurrent_current(self, history, t, *, span, mixture=None):
    if self.rec is None:
        return None
    if mixture is not None:
        if t == 0:
            return None
        past = history[-1 : -mixture.shape[0] - 1 : -1]
        return F.linear(_SpanMixture.apply(mixture, *past), self.rec.weight)
    if t < span:
        return None
    return F.linear(history[-span], self.rec.weight)


def _run(self, current, *, state=None, return_currents=False):
    batch, steps, n = current.shape
    if state is None:
        state = self.initial_state(batch, device=current.device, dtype=current.dtype)
    params = self.neuron_params()
    mixture = self.span_weights() if (self.cfg.recurrence == "asrc" and self.training) else None
    depth = self.cfg.depth
    span = self.span
    zero = current.new_zeros(batch, n)
    history = [zero] * depth
    spikes, currents = [], []
    for t in range(steps):
        i_t = current[:, t]
        rec = _recurrent_current(self, history, t, span=span, mixture=mixture)
        if rec is not None:
            i_t = i_t + rec
        s, state = self.step_fn(i_t, state, params)
        spikes.append(s)
        if depth:
            history.append(s)
            if len(history) > depth:
                del history[0]
        if return_currents:
            currents.append(i_t)
    out = torch.stack(spikes, dim=1)
    if return_currents:
        return out, torch.stack(currents, dim=1)
    return out


def _layer_forward(self, x):
    return _run(self, self.input_current(x))


def _readout_forward(self, spikes):
    z = self.fc(spikes)
    if self.cfg.kind == "sum":
        return z.cumsum(dim=1)
    alpha = self.alpha()
    m = z.new_zeros(z.shape[0], z.shape[2])
    out = []
    for t in range(z.shape[1]):
        m = alpha * m + (1.0 - alpha) * z[:, t]
        out.append(m)
    return torch.stack(out, dim=1)


@contextlib.contextmanager
def before_loops():
    """Within the block, every SpikingLayer and Readout runs the pre-issue-14 loops."""
    saved = (SpikingLayer.forward, Readout.forward)
    SpikingLayer.forward, Readout.forward = _layer_forward, _readout_forward
    try:
        yield
    finally:
        SpikingLayer.forward, Readout.forward = saved
