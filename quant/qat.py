"""The integer-exact forward pass in torch, for quantization-aware training (QAT).

This is the contract of ``golden/CONTRACT.md`` written a second time (the golden model in
``golden/model.py`` is the first). Every value in the forward pass is an integer held in a float64
tensor; all of them stay below 2**53, where float64 arithmetic on integers is exact:

- ``>> n`` is ``floor(x / 2**n)`` (division by a power of two is exact);
- ``sat_B`` is a clamp;
- ``(a * v) >> D`` is computed as ``a * (v >> D) + ((a * (v mod 2**D)) >> D)``, which is the same
  integer but never forms a product above 2**(R-1) (the readout can be 40 bits wide and ``a``
  16 bits, whose plain product could pass 2**53);
- synaptic sums are float64 matrix products of integers whose partial sums are bounded by the
  accumulator bound (section 5), which is checked against 2**52.

The step functions :func:`lif_step`, :func:`alif_step` and :func:`readout_step` mirror
``golden.contract`` line by line. Backward: rounding, floors and clamps pass gradients straight
through; a spike ``[x >= 0]`` (LIF) or ``[x > 0]`` (ALIF) uses the float model's surrogate,
evaluated in float units (``x / scale``, ``scale`` being the layer's float-to-integer factor), so
the gradient has the size the float network was trained with.

Public API
----------
``QATNetwork(network, options, input_spec=..., x=...)``  the QAT module: ``forward(x)`` gives the
integer readout (B, T, M); ``logits(out)`` divides by the readout scale for the loss;
``to_artifact()`` exports exactly the integers the forward pass used.
``QATNetwork.from_artifact(art)``  a fixed-integer network for equivalence tests.
``run_qat(artifact_or_network, x)``  dict with ``spikes`` (per layer (B, T, N)), ``readout``
(B, T, M) int64, ``predictions``, ``states`` and ``saturation`` as NumPy arrays.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from skipcore.errors import ConfigError
from skipcore.golden import kinds as golden_kinds
from skipcore.golden.artifact import Artifact, InputSpec
from skipcore.golden.contract import accumulator_bound

from . import kinds as quant_kinds
from . import readouts as quant_readouts
from .export import (
    ExportOptions,
    QuantLayer,
    QuantModel,
    QuantReadout,
    _as_options,
    input_spec_for,
    quantize_network,
    ste_clamp,
    ste_floor,
)
from .surrogate import Surrogate, get_surrogate

__all__ = [
    "QATNetwork",
    "run_qat",
    "integer_forward",
    "quantize_input",
    "lif_step",
    "alif_step",
    "readout_step",
    "decay",
]

_EXACT = 2**52


# ---------------------------------------------------------------------------------------------
# saturation counting (no gradient; optional)


class SatCounter:
    """Counts saturation events per quantity, like ``golden.contract.Saturation``."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def add(self, name: str, n: int) -> None:
        if n:
            self.counts[name] = self.counts.get(name, 0) + int(n)


def sat(x: torch.Tensor, bits: int, counter: SatCounter | None = None, name: str = "") -> torch.Tensor:
    """``sat_B``: clamp to the signed B-bit range (straight-through gradient)."""
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    if counter is not None:
        with torch.no_grad():
            counter.add(name, int(((x < lo) | (x > hi)).sum()))
    return ste_clamp(x, lo, hi)


def shr(x: torch.Tensor, n) -> torch.Tensor:
    """Arithmetic right shift ``x >> n`` = ``floor(x / 2**n)`` (n an int or a tensor of ints)."""
    if isinstance(n, torch.Tensor):
        return ste_floor(x * _pow2_neg(n))
    if n == 0:
        return x
    return ste_floor(x * (2.0**-n))


def _pow2_neg(n: torch.Tensor) -> torch.Tensor:
    """``2**-n`` exactly for integer-valued ``n``, with the gradient of the smooth 2**-n."""
    smooth = torch.pow(2.0, -n)
    exact = torch.ldexp(torch.ones_like(n.detach()), -n.detach().to(torch.int64)).to(n.dtype)
    return exact + (smooth - smooth.detach())


def decay(v: torch.Tensor, a: torch.Tensor, decay_bits: int, mode: str, value_bits: int | None = None) -> torch.Tensor:
    """Section 3.2. ``mult``: ``(a*v) >> D``; ``shift``: ``v - (v >> n)``.

    ``value_bits`` bounds ``|v| <= 2**(value_bits-1)``. When ``a * v`` could pass 2**53 (None, or
    ``value_bits - 1 + D > 53``: a 40-bit readout with 16-bit decays) the product is split as
    ``a * (v >> D) + ((a * (v mod 2**D)) >> D)``, the same integer with smaller products.
    """
    if mode == "mult":
        inv = 2.0**-decay_bits
        if value_bits is not None and value_bits - 1 + decay_bits <= 53:
            return ste_floor(a * v * inv)
        high = ste_floor(v * inv)
        low = v - high * 2.0**decay_bits  # in [0, 2**D)
        return a * high + ste_floor(a * low * inv)
    return v - shr(v, a)


def quantize_input(spec: InputSpec, x, counter: SatCounter | None = None) -> torch.Tensor:
    """Section 2: float input -> integer-valued float64 tensor (round half up, clamped)."""
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).detach().to(torch.float64)
    lo, hi = spec.range
    if spec.kind == "spike":
        if not bool(((x == 0) | (x == 1)).all()):
            raise ValueError("spike inputs must be 0 or 1")
        q = x
    elif spec.kind == "count":
        q = torch.floor(x + 0.5)
    else:
        q = torch.floor(x * float(2**spec.frac_bits) + 0.5)
    if counter is not None:
        counter.add("input", int(((q < lo) | (q > hi)).sum()))
    return q.clamp(lo, hi)


# ---------------------------------------------------------------------------------------------
# spikes with a surrogate gradient in float units


class _IntSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale, surrogate, strict):
        ctx.save_for_backward(x)
        ctx.scale = scale
        ctx.surrogate = surrogate
        return (x > 0).to(x.dtype) if strict else (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        if ctx.surrogate is None:
            return None, None, None, None
        s = ctx.scale
        return grad * ctx.surrogate.derivative(x / s) / s, None, None, None


def spike(x: torch.Tensor, scale: float, surrogate: Surrogate | None, strict: bool) -> torch.Tensor:
    if not torch.is_grad_enabled() or not x.requires_grad or surrogate is None:
        return (x > 0).to(x.dtype) if strict else (x >= 0).to(x.dtype)
    return _IntSpike.apply(x, float(scale), surrogate, strict)


# ---------------------------------------------------------------------------------------------
# neuron steps (mirror golden.contract)


class LIFState(NamedTuple):
    v: torch.Tensor


class ALIFState(NamedTuple):
    u: torch.Tensor
    b: torch.Tensor
    s_prev: torch.Tensor


class StepParams(NamedTuple):
    layer: QuantLayer
    state_bits: int
    decay_bits: int
    surrogate: Surrogate | None
    trace_bits: int  #: fraction bits T of the ALIF adaptation trace (section 3.4)


def lif_step(acc: torch.Tensor, state: LIFState, p: StepParams, counter: SatCounter | None = None):
    """Section 3.3: ``H = sat_S(decay(V) + acc)``, ``S = [H >= theta]``, soft or hard reset."""
    layer = p.layer
    h = sat(decay(state.v, layer.decay, p.decay_bits, layer.decay_mode, p.state_bits) + acc, p.state_bits, counter,
            "membrane")
    s = spike(h - layer.threshold, layer.scale, p.surrogate, strict=False)
    if layer.reset == "soft":
        v = h - layer.threshold * s
    else:
        v = h * (1.0 - s)
    return s, LIFState(v)


def alif_step(acc: torch.Tensor, state: ALIFState, p: StepParams, counter: SatCounter | None = None):
    """Section 3.4: adaptation, dynamic threshold, one-step-late reset, ``S = [u > B]``."""
    layer = p.layer
    d, t = p.decay_bits, p.trace_bits
    q = state.s_prev
    b = decay(state.b, layer.rho, d, "mult", t + 2) + q * ((float(2**d) - layer.rho) * float(2**(t - d)))  # [0, 2**T]
    # (beta * b) >> T: decay()'s split product with the roles swapped (b <= 2**T is the small
    # factor), exact where beta * b could pass 2**53 (S - 1 + T > 53)
    big_b = sat(layer.threshold + decay(layer.beta, b, t, "mult", p.state_bits), p.state_bits, counter, "threshold")
    u = sat(decay(state.u, layer.decay, d, layer.decay_mode, p.state_bits) + acc - q * big_b, p.state_bits, counter,
            "membrane")
    s = spike(u - big_b, layer.scale, p.surrogate, strict=True)
    return s, ALIFState(u, b, s)


def readout_step(acc: torch.Tensor, m: torch.Tensor, r: QuantReadout, readout_bits: int, decay_bits: int,
                 counter: SatCounter | None = None) -> torch.Tensor:
    """Section 4 for readouts whose whole state is ``m`` (``sum``, ``leaky``): one update."""
    from skipcore.golden.artifact import Widths

    kind = quant_readouts.get(r.kind)
    widths = Widths(readout_bits=readout_bits, decay_bits=decay_bits)
    return kind.value(kind.qat_step(acc, (m,), r, widths, counter))


# ---------------------------------------------------------------------------------------------
# the recurrent product with its weight gradient taken once per layer, not once per step


class _RecurrentTape:
    """The (spikes, gradient) pairs of a layer's recurrent products, collected during backward."""

    def __init__(self) -> None:
        self.spikes: list[torch.Tensor] = []
        self.grads: list[torch.Tensor] = []


class _RecurrentProduct(torch.autograd.Function):
    """``spikes @ w_rec_t`` whose backward passes the gradient to the spikes only and leaves the
    (spikes, gradient) pair on the tape; :class:`_RecurrentWeightGrad` turns the tape into the
    weights' gradient with one product instead of one (N, B) x (B, N) product per step."""

    @staticmethod
    def forward(ctx, spikes, w_rec_t, tape):
        ctx.save_for_backward(spikes, w_rec_t)
        ctx.tape = tape
        return spikes @ w_rec_t

    @staticmethod
    def backward(ctx, grad):
        spikes, w_rec_t = ctx.saved_tensors
        ctx.tape.spikes.append(spikes)
        ctx.tape.grads.append(grad)
        return grad @ w_rec_t.t(), None, None


class _RecurrentWeightGrad(torch.autograd.Function):
    """Identity on a layer's feed-forward currents that gives ``w_rec_t`` its gradient.

    Every step's current depends on the output, so autograd runs this backward only after the
    backward of every step, when the tape is complete: ``d w_rec_t = sum_t S[t-k]^T g_t``.
    """

    @staticmethod
    def forward(ctx, current, w_rec_t, tape):
        ctx.tape = tape
        return current.view_as(current)

    @staticmethod
    def backward(ctx, grad):
        tape = ctx.tape
        g_w = None
        if ctx.needs_input_grad[1] and tape.grads:
            n_in, n_out = tape.spikes[0].shape[-1], tape.grads[0].shape[-1]
            g_w = torch.stack(tape.spikes).reshape(-1, n_in).t() @ torch.stack(tape.grads).reshape(-1, n_out)
        tape.spikes.clear()
        tape.grads.clear()
        return grad, g_w, None


# ---------------------------------------------------------------------------------------------
# the whole network


def _check_exact(qm: QuantModel) -> None:
    for index, layer in enumerate(qm.layers):
        spec_like = _BoundView(layer)
        bound = accumulator_bound(spec_like, qm.input.max_abs if index == 0 else 1)
        if bound >= _EXACT:
            raise ConfigError(
                f"layer {index}: accumulator bound {bound} is beyond 2**52; the float64 QAT pass cannot be exact"
            )


class _BoundView:
    """Duck-typed LayerSpec view (NumPy int64 arrays) for ``accumulator_bound``."""

    def __init__(self, layer: QuantLayer):
        self.w_in = layer.w_in.detach().cpu().numpy().astype(np.int64)
        self.bias = layer.bias.detach().cpu().numpy().astype(np.int64)
        self.w_rec = None if layer.w_rec is None else layer.w_rec.detach().cpu().numpy().astype(np.int64)
        self.input_shift = layer.input_shift
        self.w_in_shifted = self.w_in << int(layer.input_exp)
        self.w_rec_shifted = None if self.w_rec is None else self.w_rec << int(layer.recurrent_exp)


def integer_forward(qm: QuantModel, x, *, surrogates: list[Surrogate | None] | None = None, record: bool = False,
                    counter: SatCounter | None = None, quantized: bool = False) -> dict:
    """Run the contract on ``x`` (B, T, C) floats (or integers with ``quantized=True``).

    Returns ``{"readout": (B, T, M)}`` (float64, integer-valued, differentiable) and, with
    ``record``, ``"spikes"`` (per layer (B, T, N)) and ``"states"`` (per layer dict of (B, T, N)).
    Layers run one after the other over the whole sequence; there is no feedback between layers,
    so this gives the same numbers as the step-major order of section 6.
    """
    device = qm.layers[0].w_in.device
    if quantized:
        h = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).to(torch.float64)
    else:
        h = quantize_input(qm.input, x, counter)
    h = h.to(device)
    if h.dim() != 3 or h.shape[2] != qm.input.channels:
        raise ConfigError(
            f"input shape {tuple(h.shape)} does not match the model: expected (batch, steps, {qm.input.channels})"
        )
    batch, steps, _ = h.shape
    w = qm.widths
    spikes_out, states_out = [], []
    for index, layer in enumerate(qm.layers):
        sur = surrogates[index] if surrogates is not None else None
        p = StepParams(layer, w.state_bits, w.decay_bits, sur, w.trace_bits)
        # section 3.1: the weights enter as w * 2**e (exact in float64: the bound stays below 2**52)
        ff = torch.matmul(h, layer.w_in.t() * float(2**layer.input_exp))
        cur = shr(ff, layer.input_shift) + layer.bias  # (B, T, N)
        n = layer.neurons
        zeros = cur.new_zeros(batch, n)
        kind = quant_kinds.get(layer.kind)
        state, step = kind.qat_state(zeros), kind.qat_step
        k = layer.span
        w_rec_t = layer.w_rec.t() * float(2**layer.recurrent_exp) if (k > 0 and layer.w_rec is not None) else None
        tape = None
        if w_rec_t is not None and torch.is_grad_enabled() and w_rec_t.requires_grad:
            tape = _RecurrentTape()
            cur = _RecurrentWeightGrad.apply(cur, w_rec_t, tape)
            w_rec_t = w_rec_t.detach()
        spikes = []
        trace = {key: [] for key in golden_kinds.get(layer.kind).traces(w)} if record else None
        cur_steps = cur.unbind(1)  # not cur[:, t]: each select's backward would fill a (B, T, N) zero tensor
        for t in range(steps):
            acc = cur_steps[t]
            if w_rec_t is not None and t >= k:
                rec = spikes[t - k] @ w_rec_t if tape is None else _RecurrentProduct.apply(spikes[t - k], w_rec_t, tape)
                acc = acc + rec
            s, state = step(acc, state, p, counter)
            spikes.append(s)
            if record:
                for key, values in trace.items():
                    values.append(getattr(state, key))
        h = torch.stack(spikes, dim=1)
        if record:
            spikes_out.append(h)
            states_out.append({key: torch.stack(v, dim=1) for key, v in trace.items()})
    r = qm.readout
    z = torch.matmul(h, r.w.t() * float(2**r.weight_exp)) + r.bias
    r_kind = quant_readouts.get(r.kind)
    r_state = r_kind.qat_state(z.new_zeros(batch, r.w.shape[0]))
    outs = []
    for z_t in z.unbind(1):
        r_state = r_kind.qat_step(z_t, r_state, r, w, counter)
        outs.append(r_kind.value(r_state))
    result = {"readout": torch.stack(outs, dim=1)}
    if record:
        result["spikes"] = spikes_out
        result["states"] = states_out
    return result


def _predict(readout: np.ndarray, mode: str) -> np.ndarray:
    if mode == "sequence":
        return np.argmax(readout[:, -1, :], axis=-1)
    return np.argmax(readout, axis=-1)


class QATNetwork(nn.Module):
    """Integer-exact network for QAT, built on a float :class:`~quant.network.SpikingNetwork`.

    Parameters
    ----------
    network:
        The float network; its parameters are the ones trained. Every forward pass quantizes
        them with :func:`quant.export.quantize_network` (straight-through rounding).
    options:
        :class:`ExportOptions` (or a dict of them): the bit widths and decay mode.
    input_spec:
        The input quantisation; else built from ``input_kind`` and the data ``x`` with
        :func:`quant.export.input_spec_for`. Fixed for the life of the module.
    """

    def __init__(self, network: nn.Module | None, options: ExportOptions | dict | None = None, *,
                 input_spec: InputSpec | None = None, input_kind: str | None = None, x: np.ndarray | None = None):
        super().__init__()
        self.options = _as_options(options)
        self.network = network
        self._fixed: QuantModel | None = None
        if network is None:
            return
        if input_spec is None:
            if input_kind is None:
                raise ConfigError("QATNetwork needs an input_spec, or input_kind (and data x for a real input)")
            input_spec = input_spec_for(input_kind, network.config.input_channels, self.options, x=x)
        self.input_spec = input_spec
        self.surrogates = [layer.surrogate for layer in network.layers]

    @classmethod
    def from_artifact(cls, art: Artifact, *, surrogates: bool = True) -> "QATNetwork":
        """A QAT network with the artifact's fixed integers (no float network behind it)."""
        self = cls(None, None)
        self._fixed = QuantModel.from_artifact(art)
        self.input_spec = art.input
        self.options = ExportOptions(art.widths.weight_bits, art.widths.state_bits, art.widths.readout_bits,
                                     art.widths.decay_bits, trace_bits=art.widths.trace_bits)
        if surrogates:
            self.surrogates = [get_surrogate(quant_kinds.get(l.kind).surrogate) for l in art.layers]
        else:
            self.surrogates = [None] * len(art.layers)
        return self

    # -- quantization --------------------------------------------------------------------------
    def quantized(self) -> QuantModel:
        """The integer model for the current float parameters (differentiable under autograd)."""
        if self._fixed is not None:
            return self._fixed
        return quantize_network(self.network, self.options, self.input_spec)

    def to_artifact(self, provenance: dict | None = None) -> Artifact:
        """Export the integers the forward pass uses, as a validated Artifact."""
        with torch.no_grad():
            qm = self.quantized()
        prov = {"method": "qat", "export_options": self.options.to_dict(),
                "scales": {"layers": [l.scale for l in qm.layers], "readout": qm.readout.scale}}
        prov.update(provenance or {})
        return qm.to_artifact(prov)

    # -- forward -------------------------------------------------------------------------------
    def forward(self, x, *, record: bool = False, counter: SatCounter | None = None):
        """Integer readout (B, T, M) (float64 holding integers); with ``record`` the full dict."""
        qm = self.quantized()
        _check_exact(qm)
        res = integer_forward(qm, x, surrogates=self.surrogates, record=record, counter=counter)
        return res if record else res["readout"]

    def readout_scale(self) -> float:
        with torch.no_grad():
            return float(self.quantized().readout.scale)

    def logits(self, out: torch.Tensor, scale: float | None = None) -> torch.Tensor:
        """Readout in float units (``out / scale_o``) for the float network's loss."""
        return out / (self.readout_scale() if scale is None else scale)

    @property
    def mode(self) -> str:
        if self._fixed is not None:
            return self._fixed.readout.mode
        return self.network.config.readout.mode


@torch.no_grad()
def run_qat(source, x, *, quantized: bool = False) -> dict:
    """Run the QAT forward pass of an Artifact, a :class:`QATNetwork` or a QuantModel on ``x``.

    Returns NumPy arrays: ``readout`` (B, T, M) int64, ``spikes`` (per layer (B, T, N) uint8),
    ``states`` (per layer dict of int64 (B, T, N)), ``predictions`` and ``saturation`` counts.
    """
    if isinstance(source, Artifact):
        qm = QuantModel.from_artifact(source)
    elif isinstance(source, QATNetwork):
        qm = source.quantized()
    elif isinstance(source, QuantModel):
        qm = source
    else:
        raise ConfigError(f"run_qat needs an Artifact, QATNetwork or QuantModel, not {type(source).__name__}")
    _check_exact(qm)
    counter = SatCounter()
    res = integer_forward(qm, x, record=True, counter=counter, quantized=quantized)
    readout = res["readout"].cpu().numpy().astype(np.int64)
    return {
        "readout": readout,
        "spikes": [s.cpu().numpy().astype(np.uint8) for s in res["spikes"]],
        "states": [{k: v.cpu().numpy().astype(np.int64) for k, v in st.items()} for st in res["states"]],
        "predictions": _predict(readout, qm.readout.mode),
        "saturation": dict(counter.counts),
    }
