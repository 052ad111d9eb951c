"""Recurrent spiking layer with none / SRC / ASRC recurrence.

``SpikingLayer`` computes, for every step t of a sequence::

    I[t] = Dropout(W_in x[t] + b) + W_rec R[t]
    S[t], state = step_fn(I[t], state, params)

with the recurrent spikes ``R[t]``:

- ``none``: no recurrent term (k = 0);
- ``src``: ``R[t] = S[t-k]`` for the layer's fixed span k (k = 1 is a vanilla RSNN);
- ``asrc`` in training: ``R[t] = sum_j softmax(p / tau)_j S[t-j]`` over the K candidate spans
  j = 1..K; ``p`` (the span logits, init 0) is trained, ``tau`` is a buffer that
  ``decrease_tau()`` multiplies by 0.96 once per epoch;
- ``asrc`` in eval mode: ``R[t] = S[t-k*]`` with ``k* = argmax(p) + 1``, i.e. a plain SRC layer.

Spikes before the sequence start are zero. The input projection ``W_in x + b`` (and the dropout
mask, drawn once per sequence) is applied to the whole sequence at once; only the recurrent part
and the neuron step run in the time loop (``SpikingLayer.run``). For a kind's own float step that
loop is ``quant.fastloop.layer_loop`` with the kind's cell (``fused_run``; every built-in kind has
one): one autograd node per layer with a hand-written backward, the same numbers as the
step-by-step loop (tested against it). A kind without a cell, any other
``step_fn`` (or an initial ``state``, or ``return_currents``) runs the step-by-step loop, so a
quantized or experimental forward pass can still override ``input_current``,
``recurrent_current``, ``neuron_params`` or ``step_fn``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import kinds as quant_kinds
from .config import LayerConfig
from .surrogate import Surrogate, get_surrogate

__all__ = ["SpikingLayer", "span_mixture"]

#: factor applied to the ASRC temperature by ``decrease_tau()`` (ASRC-SNN ``de_tau``)
TAU_DECAY = 0.96


class _SpanMixture(torch.autograd.Function):
    """``sum_j w[j] * past[j]`` that saves references to ``past`` instead of a stacked copy.

    A ``torch.stack`` + ``tensordot`` would keep a (K, batch, N) copy alive per step for the
    backward pass (gigabytes for K = 41 over 784 steps); this keeps only the K references.
    """

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


def span_mixture(weights: torch.Tensor, past: list[torch.Tensor]) -> torch.Tensor:
    """Mixture ``sum_j weights[j] * past[j]``; ``past[j]`` holds the spikes at t-1-j."""
    return _SpanMixture.apply(weights, *past)


class SpikingLayer(nn.Module):
    """One hidden layer of ``cfg.neurons`` neurons of a registered kind (``quant.kinds``).

    Parameters
    ----------
    in_features:
        Size of the layer input per step.
    cfg:
        The layer's ``LayerConfig``.
    dropout:
        Dropout probability on ``W_in x + b``; the mask is constant over the sequence.
    bias:
        Whether ``W_in`` has a bias.
    init:
        "default" (PyTorch Linear init) or "xavier" (xavier_uniform weights, zero bias).
    surrogate:
        Surrogate gradient; None picks the kind's default (triangle / multi-Gaussian).

    Attributes
    ----------
    fc: nn.Linear            input projection (``w_in``, ``bias``)
    rec: nn.Linear | None    recurrent weights ``W_rec`` (orthogonal init, no bias)
    span_logits: Parameter   (K,) ASRC logits p (ASRC only)
    tau: buffer              ASRC softmax temperature (ASRC only)
    (the kind's own parameters, e.g. ALIF's raw time constants ``tau_m``, ``tau_adp``)
    step_fn:                 the pure neuron step of the kind (``kind.float_step``)
    """

    def __init__(
        self,
        in_features: int,
        cfg: LayerConfig,
        *,
        dropout: float = 0.0,
        bias: bool = True,
        init: str = "default",
        surrogate: Surrogate | None = None,
    ):
        super().__init__()
        self.cfg = cfg
        self.in_features = in_features
        self.neurons = n = cfg.neurons
        self.dropout = float(dropout)
        self.fc = nn.Linear(in_features, n, bias=bias)
        if init == "xavier":
            nn.init.xavier_uniform_(self.fc.weight)
            if bias:
                nn.init.zeros_(self.fc.bias)
        self.rec = None
        if cfg.recurrence != "none":
            self.rec = nn.Linear(n, n, bias=False)
            nn.init.orthogonal_(self.rec.weight, gain=1.0)
        if cfg.recurrence == "asrc":
            self.span_logits = nn.Parameter(torch.zeros(cfg.max_span))
            self.register_buffer("tau", torch.ones(()))
        self.kind = kind = quant_kinds.get(cfg.kind)
        kind.build(self)
        self.step_fn = kind.float_step
        self.state_cls = kind.FloatState
        if surrogate is None:
            surrogate = get_surrogate(kind.surrogate)
        self.surrogate = surrogate

    # -- spans -------------------------------------------------------------------------------
    @property
    def span(self) -> int:
        """The deployed span: k for SRC, argmax(p) + 1 for ASRC, 0 without recurrence."""
        if self.cfg.recurrence == "asrc":
            return int(torch.argmax(self.span_logits.detach())) + 1
        return self.cfg.depth

    def span_weights(self) -> torch.Tensor:
        """ASRC mixture weights ``softmax(p / tau)`` over spans 1..K."""
        return torch.softmax(self.span_logits / self.tau, dim=0)

    @torch.no_grad()
    def decrease_tau(self, factor: float = TAU_DECAY) -> None:
        """Multiply the ASRC temperature by ``factor`` (once per epoch). No-op for other layers."""
        if self.cfg.recurrence == "asrc":
            self.tau.mul_(factor)

    # -- the pieces of the forward pass --------------------------------------------------------
    def neuron_params(self):
        """The step function's parameter tuple (the kind computes it, e.g. ALIF's alpha from tau_m)."""
        return self.kind.float_params(self)

    def initial_state(self, batch: int, *, device=None, dtype=torch.float32):
        """All-zero neuron state (the hardware resets to zero)."""
        return self.state_cls.zeros(batch, self.neurons, device=device, dtype=dtype)

    def input_current(self, x: torch.Tensor) -> torch.Tensor:
        """``Dropout(W_in x + b)`` for a whole sequence (B, T, C) -> (B, T, N)."""
        cur = self.fc(x)
        if self.training and self.dropout > 0:
            keep = 1.0 - self.dropout
            mask = torch.empty(cur.shape[0], 1, cur.shape[2], device=cur.device, dtype=cur.dtype)
            cur = cur * mask.bernoulli_(keep).div_(keep)
        return cur

    def recurrent_current(self, history: list[torch.Tensor], t: int, *, span: int, mixture=None):
        """``W_rec R[t]``; ``history[-j]`` holds S[t-j] (zeros before the start).

        ``mixture`` (ASRC training) holds the K span weights; otherwise ``span`` is the fixed span.
        Returns None when there is no recurrent term at this step.
        """
        if self.rec is None:
            return None
        if mixture is not None:
            if t == 0:
                return None
            past = history[-1 : -mixture.shape[0] - 1 : -1]
            return F.linear(span_mixture(mixture, past), self.rec.weight)
        if t < span:
            return None
        return F.linear(history[-span], self.rec.weight)

    def run(self, current: torch.Tensor, *, state=None, return_currents: bool = False):
        """The time loop on a precomputed input current (B, T, N) -> spikes (B, T, N).

        With ``return_currents=True`` also returns the total currents I[t] (B, T, N).
        A kind's own step from a zero state may run as one fused autograd node (the kind's
        ``fused_run``: a ``quant.fastloop.Cell`` in ``quant.fastloop.layer_loop``); a kind without
        one, or any other ``step_fn``, runs step by step through autograd.
        """
        batch, steps, n = current.shape
        mixture = self.span_weights() if (self.cfg.recurrence == "asrc" and self.training) else None
        if state is None and not return_currents and self.surrogate is not None \
                and self.step_fn == self.kind.float_step:
            fused = self.kind.fused_run(self, current, mixture)
            if fused is not None:
                return fused
        if state is None:
            state = self.initial_state(batch, device=current.device, dtype=current.dtype)
        params = self.neuron_params()
        depth = self.cfg.depth
        span = self.span
        zero = current.new_zeros(batch, n)
        history = [zero] * depth
        spikes, currents = [], []
        # unbind, not current[:, t]: each select's backward would fill and add a whole (B, T, N)
        # tensor, which makes the backward grow as T**2
        current_steps = current.unbind(1)
        for t in range(steps):
            i_t = current_steps[t]
            rec = self.recurrent_current(history, t, span=span, mixture=mixture)
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Spikes (B, T, N) for an input sequence (B, T, C)."""
        return self.run(self.input_current(x))

    # -- export --------------------------------------------------------------------------------
    @torch.no_grad()
    def float_params(self) -> dict:
        """Plain tensors and numbers describing the deployed (eval-mode) layer.

        Keys: kind, recurrence, span (deployed int), w_in (N, C_in), bias (N,), w_rec (N, N) or None,
        and the kind's own (``kind.export_params``), e.g. LIF: lam, threshold, reset; ALIF: alpha (N,),
        rho (N,), b0, beta, threshold = b0, reset "delayed".
        """
        c = self.cfg
        d = {
            "kind": c.kind,
            "recurrence": c.recurrence,
            "span": self.span,
            "w_in": self.fc.weight.detach().clone(),
            "bias": (self.fc.bias.detach().clone() if self.fc.bias is not None else torch.zeros(self.neurons)),
            "w_rec": self.rec.weight.detach().clone() if self.rec is not None else None,
        }
        d.update({k: v.detach().clone() if isinstance(v, torch.Tensor) else v
                  for k, v in self.kind.export_params(self).items()})
        return d

    def extra_repr(self) -> str:
        c = self.cfg
        rec = {"none": "none", "src": f"src k={c.span}", "asrc": f"asrc K={c.max_span}"}[c.recurrence]
        return f"{self.in_features} -> {self.neurons} {c.kind}, {rec}, dropout={self.dropout}"

