"""STC-LIF on the training side: float step (the paper's cell, dense form), float-to-integer rule
(CONTRACT.md section 7) and the integer-exact QAT step (section 3.6).

Float step (``reference/seed-models.md`` 3.2), per layer with block-diagonal gate matrices::

    A = 1 + tanh(W_a S[t-1] + c_a);  G = 1 + tanh(W_g S[t-1] + c_g)   (S[t-1]: the layer's own spikes)
    H = A * V + G * I;  S = [H >= th];  V = H - th * S

Surrogate: SpikingJelly's ``Sigmoid`` (alpha = 4), the paper's. The per-neuron biases ``c_a``,
``c_g`` are the dense form of the paper's GroupNorm shift after each gate convolution: without
them a silent neuron has ``A = 1`` (no leak at all) and MNIST-1D stalls near 60 %. ``c_a`` starts
at ``gate_bias_a`` (option, default -1: ``A = 0.24`` for a silent neuron, a leak), ``c_g`` at 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch
from torch import nn

from skipcore.errors import ConfigError
from skipcore.golden.kinds.stc import gate_bias_limit, gate_shift, gate_table

from .. import surrogate as _surrogates
from ..fastloop import Cell, layer_loop
from . import QuantKind, register

__all__ = ["Sigmoid", "STCState", "STCParams", "stc_step", "block_gate"]

DEFAULT_GATE_BITS = 6
DEFAULT_GATE_BIAS_A = -1.0  #: initial c_a: 1 + tanh(-1) = 0.24, a leak for silent neurons


@dataclass(frozen=True)
class Sigmoid(_surrogates.Surrogate):
    """SpikingJelly ``surrogate.Sigmoid``: ``dS/dx = alpha sig(alpha x) (1 - sig(alpha x))``."""

    alpha: float = 4.0
    name = "sigmoid"

    def derivative(self, x):
        sg = torch.sigmoid(self.alpha * x)
        return sg * (1.0 - sg) * self.alpha


_surrogates.SURROGATES.setdefault("sigmoid", Sigmoid)


def block_gate(q: torch.Tensor, w: torch.Tensor, groups: int) -> torch.Tensor:
    """``z_i = sum_{j in block(i)} w[i, j] q_j`` for (B, N) ``q`` and (N, N / groups) ``w``."""
    batch, n = q.shape
    m = n // groups
    return torch.einsum("bgj,gij->bgi", q.reshape(batch, groups, m), w.reshape(groups, m, m)).reshape(batch, n)


class STCState(NamedTuple):
    v: torch.Tensor  #: membrane after reset
    s: torch.Tensor  #: the layer's spikes at the previous step

    @classmethod
    def zeros(cls, batch: int, neurons: int, *, device=None, dtype=torch.float32) -> "STCState":
        z = torch.zeros(batch, neurons, device=device, dtype=dtype)
        return cls(z, z)


class STCParams(NamedTuple):
    w_a: torch.Tensor
    w_g: torch.Tensor
    groups: int
    threshold: float | torch.Tensor = 1.0
    spike_fn: Callable[..., torch.Tensor] | None = None
    bias_a: float | torch.Tensor = 0.0  #: c_a (N,)
    bias_g: float | torch.Tensor = 0.0  #: c_g (N,)


def stc_step(current: torch.Tensor, state: STCState, params: STCParams):
    """One STC-LIF step. Returns ``(spikes, STCState)``."""
    a = 1.0 + torch.tanh(block_gate(state.s, params.w_a, params.groups) + params.bias_a)
    g = 1.0 + torch.tanh(block_gate(state.s, params.w_g, params.groups) + params.bias_g)
    h = a * state.v + g * current
    x = h - params.threshold
    s = params.spike_fn(x, strict=False) if params.spike_fn is not None else (x >= 0).to(h.dtype)
    return s, STCState(h - params.threshold * s, s)


def block_gate_t(g: torch.Tensor, w: torch.Tensor, groups: int) -> torch.Tensor:
    """The transpose of :func:`block_gate`: ``dL/dq_j = sum_{i in block(j)} w[i, j'] g_i`` for (B, N) ``g``."""
    batch, n = g.shape
    m = n // groups
    return torch.einsum("bgi,gij->bgj", g.reshape(batch, groups, m), w.reshape(groups, m, m)).reshape(batch, n)


class STCCell(Cell):
    """:func:`stc_step` in the fused loop (same operation order); tensors: w_a, w_g, c_a, c_g.

    ``z_X = W_X s' + c_X; A = 1 + tanh(z_a); G = 1 + tanh(z_g); h = A v + G I; x = h - th;
    s = H(x); v = h - th s`` (s' = the previous spike, W_X block-diagonal)::

        dL/ds_t = out_t + rec_t - th dL/dv_t + W_a^T dL/dz_a,t+1 + W_g^T dL/dz_g,t+1
        dL/dh_t = dL/ds_t g(x_t) + dL/dv_t;   dL/dv_{t-1} = A_t dL/dh_t;   dL/dI_t = G_t dL/dh_t
        dL/dz_a,t = v_{t-1} dL/dh_t (1 - (A_t - 1)**2);   dL/dz_g,t = I_t dL/dh_t (1 - (G_t - 1)**2)
    """

    def __init__(self, w_a, w_g, c_a, c_g, groups: int, threshold: float):
        self.tensors = (w_a, w_g, c_a, c_g)
        self.groups, self.th = groups, threshold

    def start(self, current, params):
        batch, steps, n = current.shape
        self.v_trace = current.new_zeros(steps + 1, batch, n)  # v_trace[t] = v_{t-1}, v_{-1} = 0
        self.a_trace, self.g_trace = current.new_empty(steps, batch, n), current.new_empty(steps, batch, n)
        self.i_trace = current.new_empty(steps, batch, n)
        self.one = current.new_ones(())  # heaviside's value at x = 0: [x >= 0]

    def forward(self, t, i, s, s_prev, pre_row, params):
        w_a, w_g, c_a, c_g = params
        a = torch.tanh(block_gate(s_prev, w_a, self.groups) + c_a, out=self.a_trace[t]).add_(1.0)
        g = torch.tanh(block_gate(s_prev, w_g, self.groups) + c_g, out=self.g_trace[t]).add_(1.0)
        self.i_trace[t].copy_(i)
        h = a * self.v_trace[t] + g * i
        torch.heaviside(torch.sub(h, self.th, out=pre_row), self.one, out=s)
        torch.sub(h, s, alpha=self.th, out=self.v_trace[t + 1])

    def start_backward(self, spikes, lead, params):
        super().start_backward(spikes, lead, params)
        self.g_za, self.g_zg = torch.empty_like(self.a_trace), torch.empty_like(self.a_trace)
        self.g_h = None  # dL/dh_{t+1}

    def backward(self, t, g_s, slope, g_cur, params):
        w_a, w_g, _, _ = params
        if self.g_h is not None:
            g_v = self.a_trace[t + 1] * self.g_h  # dL/dv_t
            g_s = (g_s - self.th * g_v + block_gate_t(self.g_za[t + 1], w_a, self.groups)
                   + block_gate_t(self.g_zg[t + 1], w_g, self.groups))
            g_h = g_s * slope + g_v
        else:
            g_h = g_s * slope
        a, g = self.a_trace[t], self.g_trace[t]
        torch.mul(self.v_trace[t] * g_h, 1.0 - (a - 1.0).square(), out=self.g_za[t])
        torch.mul(self.i_trace[t] * g_h, 1.0 - (g - 1.0).square(), out=self.g_zg[t])
        self.g_h = g_h
        return torch.mul(g, g_h, out=g_cur)

    def param_grads(self, needs, total, params):
        steps, batch, n = self.a_trace.shape
        groups, m = self.groups, n // self.groups
        s_prev = self.spikes[self.lead - 1:self.lead - 1 + steps].reshape(steps * batch, groups, m)
        out = []
        for g_z in (self.g_za, self.g_zg):  # dL/dW_X[i, j'] = sum dL/dz_X,i s'_{block(i) j'}
            out.append(torch.einsum("kgi,kgj->gij", g_z.reshape(steps * batch, groups, m), s_prev).reshape(n, m))
        out += [self.g_za.sum((0, 1)), self.g_zg.sum((0, 1))]
        return tuple(g if need else None for g, need in zip(out, needs))


class _GateLookup(torch.autograd.Function):
    """``table[clamp((z >> shift) + 2**(k-1))]`` exactly; backward: the table's central slope."""

    @staticmethod
    def forward(ctx, z, table, shift, bits):
        half = 1 << (bits - 1)
        raw = torch.floor(z * (2.0 ** -shift)) + half
        index = raw.clamp(0, 2 * half - 1).to(torch.int64)
        ctx.save_for_backward(index, table)
        ctx.step = float(2 ** shift)
        return table[index]

    @staticmethod
    def backward(ctx, grad):
        index, table = ctx.saved_tensors
        top = table.shape[0] - 1
        up, down = table[(index + 1).clamp(max=top)], table[(index - 1).clamp(min=0)]
        span = ((index + 1).clamp(max=top) - (index - 1).clamp(min=0)).to(grad.dtype).clamp(min=1)
        return grad * (up - down) / (span * ctx.step), None, None, None


class IntState(NamedTuple):
    v: torch.Tensor
    s_prev: torch.Tensor


def _groups(cfg) -> int:
    return int(cfg.options.get("gate_groups", 1))


def _bits(cfg) -> int:
    return int(cfg.options.get("gate_bits", DEFAULT_GATE_BITS))


class STC(QuantKind):
    name = "stc"
    surrogate = "sigmoid"
    FloatState = STCState
    float_step = staticmethod(stc_step)

    def check_config(self, cfg):
        unknown = set(cfg.options) - {"gate_groups", "gate_bits", "gate_bias_a"}
        if unknown:
            raise ConfigError(f"unknown STC layer options: {', '.join(sorted(unknown))}; "
                              "known: gate_groups, gate_bits, gate_bias_a")
        bias = cfg.options.get("gate_bias_a", DEFAULT_GATE_BIAS_A)
        if isinstance(bias, bool) or not isinstance(bias, (int, float)) or not -4.0 <= bias <= 4.0:
            raise ConfigError(f"STC gate_bias_a (initial c_a of A = 1 + tanh(W_a S + c_a)) must be a number "
                              f"in [-4, 4], not {bias!r}")
        groups, bits = cfg.options.get("gate_groups", 1), cfg.options.get("gate_bits", DEFAULT_GATE_BITS)
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or cfg.neurons % groups:
            raise ConfigError(f"STC gate_groups must divide the layer's {cfg.neurons} neurons, not {groups!r} "
                              "(1 = full gate matrices, N = one weight per neuron)")
        if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 12:
            raise ConfigError(f"STC gate_bits (log2 of the 1 + tanh table size) must be in 2..12, not {bits!r}")

    def build(self, layer):
        n = layer.neurons
        m = n // _groups(layer.cfg)
        bound = 1.0 / math.sqrt(m)
        layer.w_a = nn.Parameter(torch.empty(n, m).uniform_(-bound, bound))
        layer.w_g = nn.Parameter(torch.empty(n, m).uniform_(-bound, bound))
        layer.c_a = nn.Parameter(torch.full((n,), float(layer.cfg.options.get("gate_bias_a", DEFAULT_GATE_BIAS_A))))
        layer.c_g = nn.Parameter(torch.zeros(n))

    def float_params(self, layer):
        return STCParams(layer.w_a, layer.w_g, _groups(layer.cfg), layer.cfg.threshold, layer.surrogate,
                         layer.c_a, layer.c_g)

    def fused_run(self, layer, current, mixture):
        cell = STCCell(layer.w_a, layer.w_g, layer.c_a, layer.c_g, _groups(layer.cfg), float(layer.cfg.threshold))
        return layer_loop(current, cell, layer.span, layer.surrogate,
                          layer.rec.weight if layer.rec is not None else None, mixture)

    def export_params(self, layer):
        c = layer.cfg
        return {"w_a": layer.w_a, "w_g": layer.w_g, "bias_a": layer.c_a, "bias_g": layer.c_g,
                "threshold": float(c.threshold), "reset": "soft", "gate_groups": _groups(c), "gate_bits": _bits(c)}

    def quantize(self, lp, ctx):
        from ..export import _f64, _q, _scale

        w = ctx.widths
        wmax, smax = 2 ** (w.weight_bits - 1) - 1, 2 ** (w.state_bits - 1) - 1
        bits = int(lp.get("gate_bits", DEFAULT_GATE_BITS))
        arrays = {"threshold": _q(_f64(lp["threshold"], n=ctx.neurons, device=ctx.device), ctx.scale, 1, smax)}
        options = {"gate_groups": int(lp.get("gate_groups", 1)), "gate_bits": bits}
        for gate in ("a", "g"):
            weights = _f64(lp[f"w_{gate}"], device=ctx.device)
            scale = _scale(weights, wmax=wmax)
            shift = gate_shift(scale, bits)
            arrays[f"w_{gate}"] = _q(weights, scale, -wmax, wmax)
            limit = gate_bias_limit(bits, shift)
            bias = lp.get(f"bias_{gate}", 0.0)  # float params from before the gate biases: 0
            arrays[f"bias_{gate}"] = _q(_f64(bias, n=ctx.neurons, device=ctx.device), scale, -limit, limit)
            arrays[f"table_{gate}"] = torch.as_tensor(gate_table(scale, shift, bits, w.decay_bits),
                                                      dtype=torch.float64, device=ctx.device)
            options[f"shift_{gate}"] = shift
        return arrays, options, "soft"

    def qat_state(self, zeros):
        return IntState(zeros, zeros)

    def qat_step(self, acc, state, p, counter=None):
        """Section 3.6 in float64 integers, line by line as ``golden.kinds.stc.stc_step``."""
        from ..qat import decay, sat, spike

        layer, o = p.layer, p.layer.options
        d, bits = p.decay_bits, int(o["gate_bits"])
        gates = []
        for gate in ("a", "g"):
            z = (block_gate(state.s_prev, layer.params[f"w_{gate}"], int(o["gate_groups"]))
                 + layer.params[f"bias_{gate}"])
            shift = int(o[f"shift_{gate}"])
            if counter is not None:
                with torch.no_grad():
                    raw = torch.floor(z * (2.0 ** -shift)) + (1 << (bits - 1))
                    counter.add("gate", int(((raw < 0) | (raw > (1 << bits) - 1)).sum()))
            gates.append(_GateLookup.apply(z, layer.params[f"table_{gate}"], shift, bits))
        a, g = gates
        # (A * V) >> D and (G * acc) >> D: decay()'s exact floor product (split when it could pass 2**53)
        h = sat(decay(state.v, a, d, "mult", p.state_bits + 1) + decay(acc, g, d, "mult", None), p.state_bits,
                counter, "membrane")
        s = spike(h - layer.threshold, layer.scale, p.surrogate, strict=False)
        return s, IntState(h - layer.threshold * s, s)


register(STC())
