"""Non-spiking readouts, their loss and the prediction rule.

``Readout`` maps the last hidden layer's spikes S_L (B, T, N) to a readout trace (B, T, M):

- ``sum`` (ASRC-SNN): ``out[t] = sum_{t' <= t} (W_o S_L[t'] + b_o)``, a plain running sum (no leak,
  no (1-alpha) factor). The sequence logits are ``out[T-1]``, the time sum.
- ``leaky`` (SRNN): ``m[t] = alpha_o * m[t-1] + (1 - alpha_o) * (W_o S_L[t] + b_o)``, m[-1] = 0,
  ``alpha_o = exp(-1 / tau_o)`` with a learnable tau_o per class.

Prediction rule (identical in float, golden model and hardware):

- ``sequence``: ``argmax(out[T-1])``;
- ``per_step``: ``argmax(out[t])`` at every step; loss and accuracy ignore t < skip_steps.

Loss: cross entropy (log_softmax NLL) on ``out[T-1]`` for ``sequence``; the mean over steps
t >= skip_steps (and the batch) of the per-step cross entropy for ``per_step``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ReadoutConfig
from .fastloop import leaky_readout

__all__ = ["Readout", "readout_loss", "readout_predict", "count_correct"]


class Readout(nn.Module):
    """Linear readout ``W_o S + b_o`` followed by a sum or a leaky integrator."""

    def __init__(self, in_features: int, classes: int, cfg: ReadoutConfig, *, bias: bool = True,
                 init: str = "default"):
        super().__init__()
        self.cfg = cfg
        self.fc = nn.Linear(in_features, classes, bias=bias)
        if init == "xavier":
            nn.init.xavier_uniform_(self.fc.weight)
            if bias:
                nn.init.zeros_(self.fc.bias)
        if cfg.kind == "leaky":
            mean, std = cfg.tau_o
            tau = torch.empty(classes).normal_(mean, std) if std > 0 else torch.full((classes,), mean)
            self.tau_o = nn.Parameter(tau)

    def alpha(self) -> torch.Tensor | None:
        """``exp(-1/tau_o)`` per class, or None for the sum readout."""
        return torch.exp(-1.0 / self.tau_o) if self.cfg.kind == "leaky" else None

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        z = self.fc(spikes)
        if self.cfg.kind == "sum":
            return z.cumsum(dim=1)
        return leaky_readout(z, self.alpha())

    @torch.no_grad()
    def float_params(self) -> dict:
        """Keys: kind, mode, skip_steps, w (M, N), bias (M,), alpha (M,) or None."""
        alpha = self.alpha()
        return {
            "kind": self.cfg.kind,
            "mode": self.cfg.mode,
            "skip_steps": int(self.cfg.skip_steps),
            "w": self.fc.weight.detach().clone(),
            "bias": (self.fc.bias.detach().clone() if self.fc.bias is not None
                     else torch.zeros(self.fc.out_features)),
            "alpha": alpha.detach().clone() if alpha is not None else None,
        }


def readout_loss(out: torch.Tensor, y: torch.Tensor, mode: str, skip_steps: int = 0) -> torch.Tensor:
    """Cross entropy of the readout trace ``out`` (B, T, M) against labels (B,) or (B, T)."""
    if mode == "sequence":
        return F.cross_entropy(out[:, -1], y)
    logits = out[:, skip_steps:]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y[:, skip_steps:].reshape(-1))


def readout_predict(out: torch.Tensor, mode: str) -> torch.Tensor:
    """Predictions: (B,) for ``sequence`` (argmax at the last step), (B, T) for ``per_step``."""
    return out[:, -1].argmax(dim=-1) if mode == "sequence" else out.argmax(dim=-1)


def count_correct(pred: torch.Tensor, y: torch.Tensor, mode: str, skip_steps: int = 0) -> tuple[int, int]:
    """(correct, counted) for a batch; per_step counts steps t >= skip_steps of every sequence."""
    if mode == "per_step":
        pred, y = pred[:, skip_steps:], y[:, skip_steps:]
    return int((pred == y).sum()), int(y.numel())
