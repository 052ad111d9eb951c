"""STC-LIF (dense form of Wang & Yu's autaptic cell), CONTRACT.md section 3.6."""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..arith import saturate
from . import ArraySpec, NeuronKind, OptionSpec, RandomContext, StateSpec, register
from .lif import threshold_spec

__all__ = ["STCState", "STCParams", "stc_step", "gate_preactivation", "gate_lookup", "gate_table", "gate_bias_limit",
           "STC"]


class STCState(NamedTuple):
    v: np.ndarray       # (B, N) membrane
    s_prev: np.ndarray  # (B, N) the layer's own spikes of the previous step


class STCParams(NamedTuple):
    theta: np.ndarray   # (N,)
    w_a: np.ndarray     # (N, m) block-diagonal gate weights, m = N / gate_groups
    w_g: np.ndarray     # (N, m)
    table_a: np.ndarray  # (2**k,) Q1.D values of 1 + tanh
    table_g: np.ndarray
    shift_a: int
    shift_g: int
    gate_groups: int
    gate_bits: int
    state_bits: int
    decay_bits: int
    bias_a: np.ndarray | int = 0  # (N,) gate biases, added to z before the shift (0: the paper's cell without
    bias_g: np.ndarray | int = 0  # GroupNorm shift; a silent neuron then has A = table(0) ~ 1, no leak)


def gate_preactivation(q: np.ndarray, w: np.ndarray, groups: int) -> np.ndarray:
    """``z_i = sum_{j in block(i)} w[i, j - block start] * q_j`` for (B, N) spikes ``q``."""
    batch, n = q.shape
    m = n // groups
    blocks = w.reshape(groups, m, m)                       # [group, out, in]
    return np.einsum("bgj,gij->bgi", q.reshape(batch, groups, m), blocks).reshape(batch, n)


def gate_lookup(z: np.ndarray, table: np.ndarray, shift: int, bits: int, sat=None) -> np.ndarray:
    """``table[clamp(z >> shift, -2**(k-1), 2**(k-1) - 1) + 2**(k-1)]``; a clamp is a 'gate' saturation."""
    half = 1 << (bits - 1)
    index = (z >> shift) + half
    if sat is not None:
        sat.add("gate", np.count_nonzero((index < 0) | (index > 2 * half - 1)))
    return table[np.clip(index, 0, 2 * half - 1)]


def stc_step(acc: np.ndarray, state: STCState, p: STCParams, sat=None):
    """Section 3.6: gates from the own previous spikes, ``H = sat_S((A V >> D) + (G acc >> D))``."""
    za = gate_preactivation(state.s_prev, p.w_a, p.gate_groups) + p.bias_a
    zg = gate_preactivation(state.s_prev, p.w_g, p.gate_groups) + p.bias_g
    a = gate_lookup(za, p.table_a, p.shift_a, p.gate_bits, sat)
    g = gate_lookup(zg, p.table_g, p.shift_g, p.gate_bits, sat)
    d = p.decay_bits
    h = saturate(((a * state.v) >> d) + ((g * acc) >> d), p.state_bits, sat, "membrane")
    spikes = (h >= p.theta).astype(h.dtype)
    return spikes, STCState(h - p.theta * spikes, spikes)


def gate_table(scale: float, shift: int, bits: int, decay_bits: int) -> np.ndarray:
    """Section 7: entry ``e`` is ``1 + tanh(x_e)`` in Q1.D, x_e the float midpoint of the entry's bin.

    Bin ``e`` holds the integer pre-activations ``z`` with ``z >> shift == e - 2**(k-1)``, i.e.
    ``z`` in ``[z0, z0 + 2**shift - 1]``; ``x_e = (z0 + (2**shift - 1) / 2) / scale``. Rounded
    half up, clamped to ``[0, 2**(D+1)]``.
    """
    half = 1 << (bits - 1)
    z0 = (np.arange(2 * half, dtype=np.float64) - half) * float(1 << shift)
    x = (z0 + ((1 << shift) - 1) / 2.0) / float(scale)
    entries = np.floor((1.0 + np.tanh(x)) * float(1 << decay_bits) + 0.5)
    return np.clip(entries, 0, 1 << (decay_bits + 1)).astype(np.int64)


def gate_bias_limit(bits: int, shift: int) -> int:
    """Section 3.6: ``|bias| <= 2**(k-1+shift)``, the pre-activation reach of the table (signed k+shift+1 bits)."""
    return 1 << (bits - 1 + shift)


def gate_shift(scale: float, bits: int, reach: float = 4.0) -> int:
    """Section 7: the smallest shift whose table spans ``|x| <= reach`` (tanh is flat beyond)."""
    need = reach * float(scale) / float(1 << (bits - 1))
    return max(0, math.ceil(math.log2(need))) if need > 1 else 0


class STC(NeuronKind):
    name = "stc"
    title = "STC-LIF (Wang & Yu, dense form)"
    section = "3.6"
    parameters = ("threshold", "w_a", "w_g", "bias_a", "bias_g", "table_a", "table_g")
    State = STCState
    options = (
        OptionSpec("gate_groups", 1, 1 << 20, 1),
        OptionSpec("gate_bits", 2, 12, 6),
        OptionSpec("shift_a", 0, 31, 0),
        OptionSpec("shift_g", 0, 31, 0),
    )

    def arrays(self, widths, layer):
        n = layer.neurons
        groups = int(layer.options.get("gate_groups", 1)) or 1
        m = n // groups if groups > 0 and n % groups == 0 else n
        wmax = 2 ** (widths.weight_bits - 1) - 1
        entries = 1 << int(layer.options.get("gate_bits", 6))
        gate_max = 1 << (widths.decay_bits + 1)
        bits = int(layer.options.get("gate_bits", 6))
        lim_a = gate_bias_limit(bits, int(layer.options.get("shift_a", 0)))
        lim_g = gate_bias_limit(bits, int(layer.options.get("shift_g", 0)))
        return (
            threshold_spec("threshold", widths, layer),
            ArraySpec("w_a", (n, m), -wmax, wmax, f"{widths.weight_bits}-bit weights"),
            ArraySpec("w_g", (n, m), -wmax, wmax, f"{widths.weight_bits}-bit weights"),
            ArraySpec("bias_a", (n,), -lim_a, lim_a, "gate bias, |b| <= 2**(k-1+shift_a)"),
            ArraySpec("bias_g", (n,), -lim_g, lim_g, "gate bias, |b| <= 2**(k-1+shift_g)"),
            ArraySpec("table_a", (entries,), 0, gate_max, f"Q1.{widths.decay_bits} gates [0, 2]"),
            ArraySpec("table_g", (entries,), 0, gate_max, f"Q1.{widths.decay_bits} gates [0, 2]"),
        )

    def check(self, layer, widths):
        groups = layer.options.get("gate_groups")
        if isinstance(groups, (int, np.integer)) and groups > 0 and layer.neurons % groups:
            return (f"options.gate_groups: {groups} does not divide the layer's {layer.neurons} neurons; "
                    "pick a divisor (1 = full matrices, N = one weight per neuron)")
        return None

    def state(self, widths):
        lo, hi = -(2 ** (widths.state_bits - 1)), 2 ** (widths.state_bits - 1) - 1
        return (StateSpec("v", lo, hi), StateSpec("s_prev", 0, 1, False))

    def params(self, art, layer, dtype=np.int64):
        w, o = art.widths, layer.options
        c = lambda a: a.astype(dtype)  # noqa: E731
        return STCParams(c(layer.threshold), c(layer.w_a), c(layer.w_g), c(layer.table_a), c(layer.table_g),
                         int(o["shift_a"]), int(o["shift_g"]), int(o["gate_groups"]), int(o["gate_bits"]),
                         w.state_bits, w.decay_bits, c(layer.bias_a), c(layer.bias_g))

    def step(self, acc, state, params, sat=None):
        return stc_step(acc, state, params, sat)

    def reference_step(self, acc, state, q, layer, ref):
        # the gates from the layer's own spikes of the previous step, one neuron's block at a time
        o, n, D = layer.options, layer.neurons, ref.widths.decay_bits
        size = n // o["gate_groups"]
        half, top = 2 ** (o["gate_bits"] - 1), 2 ** o["gate_bits"] - 1
        gates = []
        for w_gate, bias, table, shift in ((layer.w_a, layer.bias_a, layer.table_a, o["shift_a"]),
                                           (layer.w_g, layer.bias_g, layer.table_g, o["shift_g"])):
            z = np.zeros_like(acc)
            for i in range(n):
                start = (i // size) * size
                z[:, i] = q[:, start:start + size] @ w_gate[i] + bias[i]
            e = ref.floor_shift(z, shift) + half
            ref.count("gate", int(np.count_nonzero((e < 0) | (e > top))))
            gates.append(table[np.clip(e, 0, top)])
        pre = ref.floor_shift(gates[0] * state["v"], D) + ref.floor_shift(gates[1] * acc, D)
        ref.require_fits(pre, ref.width + 2, "(A*V >> D) + (G*acc >> D)")
        h = ref.saturate(pre, ref.widths.state_bits, "membrane")
        spikes = (h >= layer.threshold).astype(np.int64)
        state["v"] = h - layer.threshold * spikes
        state["s_prev"] = spikes
        return spikes

    def gate_bound(self, layer) -> int:
        """Largest |z| of either gate pre-activation, bias included."""
        return int(max((np.abs(layer.w_a).sum(axis=1) + np.abs(layer.bias_a)).max(initial=0),
                       (np.abs(layer.w_g).sum(axis=1) + np.abs(layer.bias_g)).max(initial=0)))

    def work_bits(self, widths, layer, acc_bits):
        # A*V <= 2**(D+1) * 2**(S-1); G*acc < 2**(D+1) * 2**(acc_bits-1); their shifted sum < 2**S + 2**acc_bits
        S, D = widths.state_bits, widths.decay_bits
        return max(D + S + 1, D + acc_bits + 1, max(S, acc_bits) + 2, self.gate_bound(layer).bit_length() + 1)

    def random_arrays(self, ctx: RandomContext):
        n = ctx.neurons
        groups, bits = ctx.options["gate_groups"], ctx.options["gate_bits"]
        m = n // groups
        gate_max = 1 << (ctx.widths.decay_bits + 1)
        out = {"threshold": ctx.thresholds(), "w_a": ctx.weights((n, m)), "w_g": ctx.weights((n, m))}
        for gate in ("a", "g"):
            lim = gate_bias_limit(bits, int(ctx.options[f"shift_{gate}"]))
            out[f"bias_{gate}"] = ctx.rng.integers(-lim, lim + 1, size=n).astype(np.int64)
        for name in ("table_a", "table_g"):
            if ctx.rng.random() < 0.5:   # a real 1 + tanh table for a random scale
                wmax = 2 ** (ctx.widths.weight_bits - 1) - 1
                out[name] = gate_table(wmax / ctx.rng.uniform(0.2, 3.0), int(ctx.rng.integers(0, 4)), bits,
                                       ctx.widths.decay_bits)
            else:                        # any legal table (extremes included)
                out[name] = ctx.rng.integers(0, gate_max + 1, size=1 << bits).astype(np.int64)
        return out

    def random_options(self, ctx: RandomContext):
        n = ctx.neurons
        divisors = [d for d in range(1, n + 1) if n % d == 0]
        return {"gate_groups": divisors[int(ctx.rng.integers(len(divisors)))], "gate_bits": int(ctx.rng.integers(2, 9)),
                "shift_a": int(ctx.rng.integers(0, 5)), "shift_g": int(ctx.rng.integers(0, 5))}


register(STC())
