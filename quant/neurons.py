"""Pure neuron step functions and thin module wrappers.

Each neuron kind is a pure function ``step(current, state, params) -> (spikes, new_state)`` on
tensors of shape (batch, neurons), with NamedTuple states and parameters (Norse/snnTorch style).
The layer time loop (``quant.layers``) only calls ``layer.step_fn``, so a quantized (integer-exact)
step with the same signature can replace the float one. For training speed the two stock steps
also run as one fused loop per layer (``quant.fastloop``, same equations and operation order,
hand-written backward); ``tests/test_quant_speed_equivalence.py`` holds both to a plain loop.

Both kinds keep their paper's convention (see ``reference/seed-models.md`` sections 1.2 and 2.2):

LIF (ASRC-SNN, ``LIFNODE``), order charge, fire, reset::

    H = lam * V + I                  # input NOT scaled by (1 - lam)
    S = (H - th >= 0)
    V = H - th * S  (soft)   or   H * (1 - S)  (hard)

ALIF (SRNN, ``mem_update_adp``), reset one step late with the current threshold::

    b = rho * b + (1 - rho) * S_prev
    B = b0 + beta * b
    u = alpha * u + (1 - alpha) * I - B * S_prev
    S = (u - B > 0)

All states start at zero at the start of every sequence, as the hardware does. (The SRNN scripts
start from random membranes or b = b0 in some tasks; we deliberately do not.)
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import torch

__all__ = [
    "LIFParams",
    "LIFState",
    "lif_step",
    "ALIFParams",
    "ALIFState",
    "alif_step",
]


class LIFParams(NamedTuple):
    """Parameters of the ASRC-SNN LIF neuron."""

    lam: float | torch.Tensor = 0.5  #: membrane decay (0.5 = tau 2 steps)
    threshold: float | torch.Tensor = 1.0  #: firing threshold Vth
    soft_reset: bool = True  #: True: V = H - th*S; False: V = H*(1-S)
    spike_fn: Callable[..., torch.Tensor] | None = None  #: surrogate spike function


class LIFState(NamedTuple):
    v: torch.Tensor  #: membrane after reset, (batch, neurons)

    @classmethod
    def zeros(cls, batch: int, neurons: int, *, device=None, dtype=torch.float32) -> "LIFState":
        return cls(torch.zeros(batch, neurons, device=device, dtype=dtype))


def lif_step(current: torch.Tensor, state: LIFState, params: LIFParams):
    """One LIF step. Returns ``(spikes, LIFState)``."""
    h = params.lam * state.v + current
    x = h - params.threshold
    spike_fn = params.spike_fn
    s = spike_fn(x, strict=False) if spike_fn is not None else (x >= 0).to(h.dtype)
    if params.soft_reset:
        v = h - params.threshold * s
    else:
        v = h * (1.0 - s)
    return s, LIFState(v)


class ALIFParams(NamedTuple):
    """Parameters of the SRNN adaptive LIF neuron (alpha, rho per neuron)."""

    alpha: torch.Tensor  #: exp(-1/tau_m), (neurons,)
    rho: torch.Tensor  #: exp(-1/tau_adp), (neurons,)
    b0: float | torch.Tensor = 0.1  #: base threshold (b_j0)
    beta: float | torch.Tensor = 1.8  #: adaptation strength (0: non-adaptive LIF, SRNN convention)
    spike_fn: Callable[..., torch.Tensor] | None = None


class ALIFState(NamedTuple):
    u: torch.Tensor  #: membrane potential
    b: torch.Tensor  #: adaptation trace
    s: torch.Tensor  #: this neuron's spike at the previous step

    @classmethod
    def zeros(cls, batch: int, neurons: int, *, device=None, dtype=torch.float32) -> "ALIFState":
        z = torch.zeros(batch, neurons, device=device, dtype=dtype)
        return cls(z, z, z)


def alif_step(current: torch.Tensor, state: ALIFState, params: ALIFParams):
    """One ALIF step. Returns ``(spikes, ALIFState)``."""
    s_prev = state.s
    b = params.rho * state.b + (1.0 - params.rho) * s_prev
    big_b = params.b0 + params.beta * b
    u = params.alpha * state.u + (1.0 - params.alpha) * current - big_b * s_prev
    x = u - big_b
    spike_fn = params.spike_fn
    s = spike_fn(x, strict=True) if spike_fn is not None else (x > 0).to(u.dtype)
    return s, ALIFState(u, b, s)


