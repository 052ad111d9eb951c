"""CUBA-LIF (current-based LIF) on the training side: float step, its fused training loop,
float-to-integer rule (CONTRACT.md section 7) and the integer-exact QAT step (section 3.7).

Float step (NIR ``CubaLIF`` discretised with forward Euler, Norse ``LIFCell``, snnTorch
``Synaptic``), per neuron::

    I = alpha_syn I + C;   H = lam V + I;   S = [H >= th];   V = H - th S (soft) | H (1 - S) (hard)

``C`` is the layer's input current (``W_in x + b + W_rec R``); ``I`` and ``V`` are in the same
units, so one scale quantizes both. ``alpha_syn`` is the layer option ``alpha_syn`` (a constant
like LIF's ``lam``, default 0.5), ``lam``, ``threshold`` and ``reset`` are the layer's. Surrogate:
the triangle, as LIF.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import torch

from skipcore.errors import ConfigError

from ..fastloop import Cell, layer_loop
from . import QuantKind, register

__all__ = ["CubaState", "CubaParams", "cuba_step", "CubaCell", "DEFAULT_ALPHA_SYN"]

DEFAULT_ALPHA_SYN = 0.5  #: tau_syn = 2 steps (alpha_syn = 1 - dt / tau_syn)


class CubaState(NamedTuple):
    i: torch.Tensor  #: synaptic current
    v: torch.Tensor  #: membrane after reset

    @classmethod
    def zeros(cls, batch: int, neurons: int, *, device=None, dtype=torch.float32) -> "CubaState":
        z = torch.zeros(batch, neurons, device=device, dtype=dtype)
        return cls(z, z)


class CubaParams(NamedTuple):
    alpha_syn: float | torch.Tensor = DEFAULT_ALPHA_SYN  #: synaptic decay
    lam: float | torch.Tensor = 0.5                      #: membrane decay
    threshold: float | torch.Tensor = 1.0
    soft_reset: bool = True
    spike_fn: Callable[..., torch.Tensor] | None = None


def cuba_step(current: torch.Tensor, state: CubaState, params: CubaParams):
    """One CUBA-LIF step. Returns ``(spikes, CubaState)``."""
    i = params.alpha_syn * state.i + current
    h = params.lam * state.v + i
    x = h - params.threshold
    s = params.spike_fn(x, strict=False) if params.spike_fn is not None else (x >= 0).to(h.dtype)
    v = h - params.threshold * s if params.soft_reset else h * (1.0 - s)
    return s, CubaState(i, v)


class CubaCell(Cell):
    """:func:`cuba_step` in the fused loop (same operation order).

    ``i = a i + C; h = lam v + i; x = h - th; s = H(x); v = h - th s`` (soft) or ``h (1 - s)``::

        dL/ds_t = out_t + rec_t + dL/dv_t * (-th | -h_t)
        dL/dh_t = dL/ds_t g(x_t) + dL/dv_t * (1 | 1 - s_t);   dL/dv_{t-1} = lam dL/dh_t
        dL/di_t = dL/dh_t + a dL/di_{t+1};                     dL/dC_t = dL/di_t
    """

    def __init__(self, alpha_syn: float, lam: float, threshold: float, soft_reset: bool):
        self.a, self.lam, self.th, self.soft = alpha_syn, lam, threshold, soft_reset

    def start(self, current, params):
        batch, steps, n = current.shape
        self.membrane = None if self.soft else current.new_empty(steps, batch, n)  # h_t (hard reset's backward)
        self.i = self.v = current.new_zeros(batch, n)
        self.one = current.new_ones(())  # heaviside's value at x = 0: [x >= 0]

    def forward(self, t, i, s, s_prev, pre_row, params):
        self.i = torch.add(i, self.i, alpha=self.a)
        h = torch.add(self.i, self.v, alpha=self.lam, out=self.membrane[t] if self.membrane is not None else None)
        torch.heaviside(torch.sub(h, self.th, out=pre_row), self.one, out=s)
        self.v = h.sub_(s, alpha=self.th) if self.soft else torch.addcmul(h, h, s, value=-1)

    def start_backward(self, spikes, lead, params):
        super().start_backward(spikes, lead, params)
        self.g_h = self.g_i = None  # dL/dh_{t+1}, dL/di_{t+1}

    def backward(self, t, g_s, slope, g_cur, params):
        g_h, lam = self.g_h, self.lam
        if g_h is None:
            g_h = g_s * slope
            g_i = torch.clone(g_h)
        else:
            if self.soft:
                g_s = torch.add(g_s, g_h, alpha=-self.th * lam)
                g_h = torch.mul(g_s, slope).add_(g_h, alpha=lam)
            else:
                g_v = lam * g_h
                g_s = torch.addcmul(g_s, g_v, self.membrane[t], value=-1)
                g_h = torch.mul(g_s, slope).addcmul_(g_v, 1.0 - self.spikes[self.lead + t])
            g_i = torch.add(g_h, self.g_i, alpha=self.a)
        self.g_h, self.g_i = g_h, g_i
        return g_cur.copy_(g_i)


class IntState(NamedTuple):
    i: torch.Tensor
    v: torch.Tensor


def _alpha_syn(cfg) -> float:
    return float(cfg.options.get("alpha_syn", DEFAULT_ALPHA_SYN))


class Cuba(QuantKind):
    name = "cuba"
    surrogate = "triangle"
    FloatState = CubaState
    float_step = staticmethod(cuba_step)

    def check_config(self, cfg):
        unknown = set(cfg.options) - {"alpha_syn"}
        if unknown:
            raise ConfigError(f"unknown CUBA layer options: {', '.join(sorted(unknown))}; known: alpha_syn")
        a = cfg.options.get("alpha_syn", DEFAULT_ALPHA_SYN)
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not 0.0 <= a <= 1.0:
            raise ConfigError(f"CUBA alpha_syn (the synaptic decay, 1 - dt/tau_syn) must be a number in [0, 1], "
                              f"not {a!r}")

    def float_params(self, layer):
        c = layer.cfg
        return CubaParams(_alpha_syn(c), c.lam, c.threshold, c.reset == "soft", layer.surrogate)

    def fused_run(self, layer, current, mixture):
        c = layer.cfg
        cell = CubaCell(_alpha_syn(c), float(c.lam), float(c.threshold), c.reset == "soft")
        return layer_loop(current, cell, layer.span, layer.surrogate,
                          layer.rec.weight if layer.rec is not None else None, mixture)

    def export_params(self, layer):
        c = layer.cfg
        return {"alpha_syn": _alpha_syn(c), "lam": float(c.lam), "threshold": float(c.threshold), "reset": c.reset}

    def quantize(self, lp, ctx):
        from ..export import _f64, _q, quantize_decay

        smax = 2 ** (ctx.widths.state_bits - 1) - 1
        n, dev = ctx.neurons, ctx.device
        reset = lp.get("reset", "soft")
        if reset not in ("soft", "hard"):
            raise ConfigError(f"layer {ctx.index}: CUBA reset must be soft or hard, not {reset!r}")
        dbits, mode = ctx.widths.decay_bits, ctx.decay_mode
        arrays = {
            "threshold": _q(_f64(lp["threshold"], n=n, device=dev), ctx.scale, 1, smax),
            "decay": quantize_decay(_f64(lp["lam"], n=n, device=dev), dbits, mode),
            "syn_decay": quantize_decay(_f64(lp["alpha_syn"], n=n, device=dev), dbits, mode),
        }
        return arrays, {}, reset

    def qat_state(self, zeros):
        return IntState(zeros, zeros)

    def qat_step(self, acc, state, p, counter=None):
        """Section 3.7 in float64 integers, line by line as ``golden.kinds.cuba.cuba_step``."""
        from ..qat import decay, sat, spike

        layer, S, D = p.layer, p.state_bits, p.decay_bits
        i = sat(decay(state.i, layer.syn_decay, D, layer.decay_mode, S) + acc, S, counter, "synapse")
        h = sat(decay(state.v, layer.decay, D, layer.decay_mode, S) + i, S, counter, "membrane")
        s = spike(h - layer.threshold, layer.scale, p.surrogate, strict=False)
        v = h - layer.threshold * s if layer.reset == "soft" else h * (1.0 - s)
        return s, IntState(i, v)


register(Cuba())
