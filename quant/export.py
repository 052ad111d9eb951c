"""From float parameters to the integer artifact (``golden/CONTRACT.md`` section 7).

The quantizer is written once, in torch, and used twice:

- post-training quantization (:func:`export_artifact`, ``skipcore quantize``) runs it without
  gradients and writes the integers into a :class:`golden.artifact.Artifact`;
- quantization-aware training (``quant/qat.py``) runs the same code on the live parameters, where
  the rounding and clamping pass gradients straight through (STE), so the fine-tuned float weights
  and time constants see the integer network they will become.

Because both paths call :func:`quantize_network`, ``QATNetwork.to_artifact()`` gives exactly the
integers that PTQ of the same float weights gives.

Rules (section 7), per hidden layer ``l``:

- the kind may fold a per-neuron factor into the rows (ALIF: ``(1 - alpha_i)`` into row ``i`` of
  ``w_in``, ``w_rec`` and ``bias``, float64; ``fold="decay"``: the integer decay's complement
  ``(2**D - a_i) / 2**D``, :func:`fold_factor`); the kind's own integers come from its rule
  (``quant/kinds/<kind>.py``, ``QuantKind.quantize``);
- ``scale_l = (2**(W-1) - 1) / max|w|`` over the (folded) ``w_in`` and ``w_rec``;
- weights ``round(w * scale)`` (half away from zero), clamped to ``|w| <= 2**(W-1) - 1``;
- biases ``round(b * scale)``, clamped to the signed ``state_bits`` range (section 1: biases are
  state-width integers, added after the input shift);
- thresholds: LIF ``theta = round(vth * scale)``, ALIF ``b0 = round(b0 * scale)``,
  ``beta = round(beta * scale)``, clamped to ``state_bits``, ``theta, b0 >= 1``, ``beta >= 0``;
- decays ``a = min(round(lam * 2**D), 2**D - 1)`` (``mult``) or ``n = round(-log2(1 - lam))``
  clamped to 1..30 (``shift``); ALIF ``rho`` is always a Q0.D fraction;
- a ``real`` first layer gets ``input_shift = input.frac_bits``.

The readout folds ``(1 - alpha_o)`` for ``leaky``, uses ``scale_o = (2**(W-1) - 1) / max|w_o|``
and clamps its bias to ``readout_bits``.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from skipcore.errors import ConfigError
from . import kinds as quant_kinds
from .kinds import QuantizeContext
from . import readouts as quant_readouts
from .readouts import ReadoutQuantizeContext
from skipcore.golden.artifact import (
    DECAY_MODES,
    MAX_WEIGHT_EXP,
    WIDTH_LIMITS,
    max_trace_bits,
    Artifact,
    InputSpec,
    LayerSpec,
    ReadoutSpec,
    Widths,
)

__all__ = [
    "ExportOptions",
    "QuantLayer",
    "QuantReadout",
    "QuantModel",
    "export_artifact",
    "fold_factor",
    "input_spec_for",
    "live_float_params",
    "make_provenance",
    "network_folds",
    "quantize_network",
    "round_half_away",
    "ste_clamp",
    "ste_floor",
    "sha256_file",
]

INPUT_BITS_LIMITS = (1, 16)
FRAC_BITS_LIMITS = (0, 16)
SHIFT_LIMITS = (1, 30)
DEFAULT_REAL_INPUT_BITS = 8
#: scale policies of the export (ExportOptions.scale_policy); ``auto`` is resolved by quant.ptq
SCALE_POLICIES = ("max", "threshold", "percentile", "auto")
#: which complement of a folding kind's decay goes into its rows (CONTRACT.md section 7):
#: ``float`` the float ``1 - alpha``; ``decay`` the integer decay's ``(2**D - a) / 2**D`` (shift: ``2**-n``)
FOLDS = ("float", "decay")
THRESHOLD_STEPS_LIMITS = (0, 16)


# ---------------------------------------------------------------------------------------------
# options


@dataclass(frozen=True)
class ExportOptions:
    """Bit widths and modes of the export.

    ``input_bits``: width of a ``real`` (default 8) or ``count`` input (default: just enough for
    the largest count in the data); ignored for spikes. ``input_frac_bits``: fractional bits of a
    ``real`` input; None picks the most that keep the data's largest magnitude inside the range.
    ``decay_mode`` applies to the LIF/ALIF membrane decays and the leaky readout.
    """

    weight_bits: int = 8
    state_bits: int = 16
    readout_bits: int = 24
    decay_bits: int = 8
    input_bits: int | None = None
    input_frac_bits: int | None = None
    decay_mode: str = "mult"
    #: how each layer's state scale and weight exponents are chosen (CONTRACT.md section 7):
    #: ``max`` (the largest weight uses the full range, exponents 0), ``threshold`` (the smallest
    #: threshold keeps at least ``2**threshold_steps`` steps, the exponents absorb the rest),
    #: ``percentile`` (the ``percentile``-th |w| uses the full range; larger weights clip),
    #: ``auto`` (PTQ tries them and keeps the best on validation data: quant.ptq).
    scale_policy: str = "max"
    threshold_steps: int = 6
    percentile: float = 99.9
    #: fraction bits of the ALIF adaptation traces (CONTRACT.md section 1, ``trace_bits``):
    #: ``decay_bits`` .. ``golden.artifact.max_trace_bits``; None: the most
    trace_bits: int | None = None
    #: the complement folded into the rows of ALIF layers and leaky/ALIF readouts (the kinds'
    #: ``folds``): ``float`` (``1 - alpha``), ``decay`` (the integer decay's complement, which keeps
    #: the integer leak's DC gain equal to the float one); None: ``float``, and ``auto`` tries both
    fold: str | None = None

    def validate(self) -> "ExportOptions":
        for name, (lo, hi) in WIDTH_LIMITS.items():
            _check_option(name, getattr(self, name), lo, hi)
        if self.input_bits is not None:
            _check_option("input_bits", self.input_bits, *INPUT_BITS_LIMITS)
        if self.input_frac_bits is not None:
            _check_option("input_frac_bits", self.input_frac_bits, *FRAC_BITS_LIMITS)
        if self.decay_mode not in DECAY_MODES:
            raise ConfigError(
                f"decay_mode: unknown value {self.decay_mode!r}; choose one of {', '.join(DECAY_MODES)}"
            )
        if self.scale_policy not in SCALE_POLICIES:
            raise ConfigError(f"scale_policy: unknown value {self.scale_policy!r}; choose one of "
                              f"{', '.join(SCALE_POLICIES)}")
        _check_option("threshold_steps", self.threshold_steps, *THRESHOLD_STEPS_LIMITS)
        if self.fold is not None and self.fold not in FOLDS:
            raise ConfigError(f"fold: unknown value {self.fold!r}; choose one of {', '.join(FOLDS)}")
        if self.trace_bits is not None:
            _check_option("trace_bits", self.trace_bits, self.decay_bits,
                          max_trace_bits(self.state_bits, self.readout_bits, self.decay_bits))
        if isinstance(self.percentile, bool) or not isinstance(self.percentile, (int, float)) \
                or not 50.0 <= float(self.percentile) <= 100.0:
            raise ConfigError(f"percentile={self.percentile!r} is impossible: use a number in 50..100 "
                              "(the |w| percentile that maps to the largest weight)")
        return self

    @property
    def widths(self) -> Widths:
        return Widths(self.weight_bits, self.state_bits, self.readout_bits, self.decay_bits, self.trace_bits)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> "ExportOptions":
        data = dict(data or {})
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown export options: {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
        return cls(**data).validate()


def _check_option(name: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
    if not lo <= int(value) <= hi:
        raise ConfigError(f"{name}={value} is impossible: the contract allows {lo}..{hi}")


def _as_options(options: ExportOptions | dict | None) -> ExportOptions:
    if options is None:
        return ExportOptions()
    if isinstance(options, dict):
        return ExportOptions.from_dict(options)
    return options.validate()


# ---------------------------------------------------------------------------------------------
# straight-through integer operations (exact forward in float64, identity backward)


def _straight_through(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Value ``y``, gradient of ``x``: ``x + (y - x).detach()``.

    Exact for the values used here: ``x`` is a dyadic rational or integer below 2**53 and ``y``
    an integer, so ``y - x`` and ``x + (y - x)`` are representable and IEEE arithmetic returns
    them exactly. Built from plain torch ops, so the backward pass stays in C++.
    """
    if not x.requires_grad:
        return y
    return x + (y - x).detach()


def round_half_away(x: torch.Tensor) -> torch.Tensor:
    """``sign(x) * floor(|x| + 1/2)`` with a straight-through gradient."""
    with torch.no_grad():
        y = torch.sign(x) * torch.floor(torch.abs(x) + 0.5)
    return _straight_through(x, y)


def ste_floor(x: torch.Tensor) -> torch.Tensor:
    """``floor(x)`` with a straight-through gradient."""
    with torch.no_grad():
        y = torch.floor(x)
    return _straight_through(x, y)


def ste_clamp(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """``clamp(x, lo, hi)`` with a straight-through gradient (also outside the range)."""
    with torch.no_grad():
        y = torch.clamp(x, float(lo), float(hi))
    return _straight_through(x, y)


# ---------------------------------------------------------------------------------------------
# the quantized model in torch (float64 tensors holding integers)


@dataclass
class QuantLayer:
    """One hidden layer's integers as float64 tensors (differentiable during QAT).

    ``scale`` is the float-to-state factor (``scale_l``): one float unit of membrane is ``scale``
    integer units. QAT uses it to evaluate the surrogate gradient in float units. The kind's own
    arrays (its golden schema) are in ``params`` and read as attributes (``layer.threshold``);
    ``options`` are the kind's integer header options.
    """

    kind: str
    span: int
    w_in: torch.Tensor
    bias: torch.Tensor
    w_rec: torch.Tensor | None = None
    input_shift: int = 0
    decay_mode: str = "mult"
    reset: str = "soft"
    scale: float = 1.0
    params: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    input_exp: int = 0      # weight exponents (CONTRACT.md 3.1): w enters the accumulator as w * 2**e
    recurrent_exp: int = 0
    clipped: int = 0        # float weights that clipped to +-(2**(W-1) - 1) in the export

    def __getattr__(self, name: str):
        params = self.__dict__.get("params")
        if params is not None and name in params:
            return params[name]
        if name in _kind_parameter_names():
            return None
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    @property
    def neurons(self) -> int:
        return int(self.w_in.shape[0])

    def to_spec(self) -> LayerSpec:
        return LayerSpec(
            kind=self.kind, span=int(self.span), w_in=_np(self.w_in), bias=_np(self.bias), w_rec=_np(self.w_rec),
            input_shift=int(self.input_shift), decay_mode=self.decay_mode, reset=self.reset,
            params={k: _np(v) for k, v in self.params.items()}, options=dict(self.options),
            input_exp=int(self.input_exp), recurrent_exp=int(self.recurrent_exp),
        )

    @classmethod
    def from_spec(cls, spec: LayerSpec, dtype=torch.float64) -> "QuantLayer":
        return cls(
            kind=spec.kind, span=int(spec.span), w_in=_t(spec.w_in, dtype), bias=_t(spec.bias, dtype),
            w_rec=_t(spec.w_rec, dtype), input_shift=int(spec.input_shift), decay_mode=spec.decay_mode,
            reset=spec.reset, scale=1.0, params={k: _t(v, dtype) for k, v in spec.params.items()},
            options=dict(spec.options), input_exp=int(spec.input_exp), recurrent_exp=int(spec.recurrent_exp),
        )


def _kind_parameter_names() -> frozenset[str]:
    from skipcore.golden.kinds import parameter_names

    return parameter_names()


@dataclass
class QuantReadout:
    """The readout's integers as float64 tensors; ``scale`` is ``scale_o``. The readout kind's own
    arrays are in ``params`` and read as attributes (``readout.decay``)."""

    kind: str
    mode: str
    w: torch.Tensor
    bias: torch.Tensor
    decay_mode: str = "mult"
    skip_steps: int = 0
    scale: float = 1.0
    params: dict = field(default_factory=dict)
    weight_exp: int = 0     # w enters the readout accumulator as w * 2**weight_exp (CONTRACT.md 4)
    clipped: int = 0        # float weights that clipped in the export

    def __getattr__(self, name: str):
        params = self.__dict__.get("params")
        if params is not None and name in params:
            return params[name]
        from skipcore.golden.readouts import parameter_names

        if name in parameter_names():
            return None
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def to_spec(self) -> ReadoutSpec:
        return ReadoutSpec(w=_np(self.w), bias=_np(self.bias), kind=self.kind, mode=self.mode,
                           decay_mode=self.decay_mode, skip_steps=int(self.skip_steps),
                           params={k: _np(v) for k, v in self.params.items()}, weight_exp=int(self.weight_exp))

    @classmethod
    def from_spec(cls, spec: ReadoutSpec, dtype=torch.float64) -> "QuantReadout":
        return cls(kind=spec.kind, mode=spec.mode, w=_t(spec.w, dtype), bias=_t(spec.bias, dtype),
                   decay_mode=spec.decay_mode, skip_steps=int(spec.skip_steps), scale=1.0,
                   params={k: _t(v, dtype) for k, v in spec.params.items()}, weight_exp=int(spec.weight_exp))


@dataclass
class QuantModel:
    """A whole quantized network in torch: what an :class:`Artifact` holds, as tensors."""

    input: InputSpec
    widths: Widths
    layers: list[QuantLayer]
    readout: QuantReadout
    provenance: dict = field(default_factory=dict)

    def to_artifact(self, provenance: dict | None = None) -> Artifact:
        prov = dict(self.provenance)
        prov.update(provenance or {})
        art = Artifact(input=self.input, widths=self.widths, layers=[l.to_spec() for l in self.layers],
                       readout=self.readout.to_spec(), provenance=prov)
        return art.validate()

    @classmethod
    def from_artifact(cls, art: Artifact, dtype=torch.float64) -> "QuantModel":
        return cls(input=art.input, widths=art.widths, layers=[QuantLayer.from_spec(l, dtype) for l in art.layers],
                   readout=QuantReadout.from_spec(art.readout, dtype), provenance=dict(art.provenance))


def _np(t: torch.Tensor | None) -> np.ndarray | None:
    if t is None:
        return None
    arr = t.detach().cpu().to(torch.float64).numpy()
    out = arr.astype(np.int64)
    if not np.array_equal(out, arr):  # pragma: no cover - the quantizer always rounds
        raise ConfigError("internal error: a quantized tensor holds non-integer values")
    return out


def _t(a: np.ndarray | None, dtype) -> torch.Tensor | None:
    if a is None:
        return None
    return torch.as_tensor(np.asarray(a, dtype=np.float64), dtype=dtype)


# ---------------------------------------------------------------------------------------------
# float parameters


def live_float_params(network) -> dict:
    """Like ``network.float_params()``, but the tensors keep their autograd graph (for QAT).

    Uses the float network's own pieces (``fc``, ``rec``, the kind's ``export_params``, ``span``,
    ``readout.alpha()``), so ALIF decays are computed exactly as the float model computes them.
    """
    layers = []
    for layer in network.layers:
        c = layer.cfg
        d = {
            "kind": c.kind,
            "span": int(layer.span),
            "w_in": layer.fc.weight,
            "bias": layer.fc.bias if layer.fc.bias is not None else torch.zeros(layer.neurons),
            "w_rec": layer.rec.weight if layer.rec is not None else None,
        }
        d.update(layer.kind.export_params(layer))
        layers.append(d)
    r = network.readout
    readout = {
        "kind": r.cfg.kind,
        "mode": r.cfg.mode,
        "skip_steps": int(r.cfg.skip_steps),
        "w": r.fc.weight,
        "bias": r.fc.bias if r.fc.bias is not None else torch.zeros(r.fc.out_features),
        "alpha": r.alpha(),
    }
    readout.update(r.kind.export_params(r))
    return {"input_channels": network.config.input_channels, "classes": network.config.classes,
            "layers": layers, "readout": readout}


def _float_params(source) -> dict:
    if isinstance(source, dict):
        return source
    if hasattr(source, "layers") and hasattr(source, "readout") and hasattr(source, "config"):
        return live_float_params(source)
    if hasattr(source, "float_params"):
        return source.float_params()
    raise ConfigError(f"cannot export a {type(source).__name__}: pass a float network or its float_params() dict")


def _f64(x, n: int | None = None, device=None) -> torch.Tensor:
    """A float64 tensor (N,) from a tensor or a python number (on ``device``)."""
    if isinstance(x, torch.Tensor):
        t = x.to(device=device, dtype=torch.float64) if device is not None else x.to(torch.float64)
    else:
        t = torch.tensor(float(x), dtype=torch.float64, device=device)
    if n is not None and t.dim() == 0:
        t = t.expand(n)
    return t


# ---------------------------------------------------------------------------------------------
# the quantizer


def _scale(*weights: torch.Tensor | None, wmax: int) -> float:
    """``(2**(W-1) - 1) / max|w|`` over all given tensors (no gradient; 1.0 for all-zero weights)."""
    largest = 0.0
    for w in weights:
        if w is not None and w.numel():
            largest = max(largest, float(w.detach().abs().max()))
    if largest == 0.0 or not math.isfinite(largest):
        if not math.isfinite(largest):
            raise ConfigError("the float network has non-finite weights; it cannot be quantized")
        return 1.0
    return wmax / largest


def _largest(*tensors: torch.Tensor | None) -> float:
    values = [float(t.detach().abs().max()) for t in tensors if t is not None and t.numel()]
    return max(values, default=0.0)


def _policy_scale(opts: "ExportOptions", wmax: int, state_max: int, matrices: list[torch.Tensor | None],
                  thresholds: list[torch.Tensor | None]) -> tuple[float, list[int]]:
    """The state scale and one weight exponent per matrix under ``opts.scale_policy`` (section 7).

    ``max``: ``wmax / max|w|``, exponents 0. ``percentile``: ``wmax / P``, P the
    ``opts.percentile``-th percentile of every |w| of the matrices (the larger ones clip), exponents 0.
    ``threshold``: ``scale_max * 2**s``, s >= 0 the smallest that gives ``t_min`` (the smallest
    positive threshold) at least ``2**k`` steps (k = ``opts.threshold_steps``), but lowered while
    the scale exceeds ``state_max / (8 * t_top)`` (``t_top`` the largest threshold value: the state
    keeps 8x headroom above it); each matrix's exponent is the smallest e >= 0 with
    ``max|w| * scale / 2**e <= wmax``.
    """
    base = _scale(*matrices, wmax=wmax)
    zeros = [0] * len(matrices)
    if opts.scale_policy == "max":
        return base, zeros
    if opts.scale_policy == "percentile":
        flat = [m.detach().abs().reshape(-1).cpu().to(torch.float64) for m in matrices if m is not None and m.numel()]
        if not flat:
            return base, zeros
        top = float(np.percentile(torch.cat(flat).numpy(), float(opts.percentile)))
        return (wmax / top if top > 0 else base), zeros
    if opts.scale_policy != "threshold":
        raise ConfigError(f"scale policy {opts.scale_policy!r} is chosen by PTQ with validation data "
                          "(quant.ptq.quantize_checkpoint), not by a single export")
    values = [t.detach().abs().reshape(-1).cpu().to(torch.float64) for t in thresholds if t is not None and t.numel()]
    values = torch.cat(values) if values else torch.zeros(0, dtype=torch.float64)
    positive = values[values > 0]
    if not positive.numel():
        return base, zeros
    target = min(2.0 ** opts.threshold_steps / float(positive.min()), state_max / (8.0 * float(values.max())))
    # a power-of-two multiple of the max scale: the largest weight then still uses the full W-bit
    # range at its exponent (any other scale wastes up to one bit of every weight to the exponent's
    # power-of-two steps); rounded up to reach 2**k steps, down where the headroom cap forbids more
    cap = state_max / (8.0 * float(values.max()))
    steps = max(0, math.ceil(math.log2(target / base) - 1e-9)) if target > base else 0
    while steps > 0 and base * 2.0**steps > cap * (1 + 1e-9):
        steps -= 1
    scale = base * 2.0**steps
    exps = []
    for m in matrices:
        largest, e = _largest(m), 0
        while largest * scale / 2.0**e > wmax + 0.5 and e < MAX_WEIGHT_EXP:
            e += 1
        exps.append(e)
    return scale, exps


def _clipped(x: torch.Tensor | None, scale: float, wmax: int) -> int:
    """Weights whose rounded value lies beyond the W-bit range (they clip to +-wmax)."""
    if x is None:
        return 0
    with torch.no_grad():
        return int((torch.floor(x.abs() * scale + 0.5) > wmax).sum())


def _q(x: torch.Tensor, scale: float, lo: int, hi: int) -> torch.Tensor:
    return ste_clamp(round_half_away(x * scale), lo, hi)


def quantize_decay(lam: torch.Tensor, decay_bits: int, mode: str) -> torch.Tensor:
    """Q0.D integer ``min(round(lam * 2**D), 2**D - 1)`` or shift ``clamp(round(-log2(1 - lam)), 1, 30)``."""
    if mode == "mult":
        return ste_clamp(round_half_away(lam * float(2**decay_bits)), 0, 2**decay_bits - 1)
    with torch.no_grad():
        gap = (1.0 - lam).clamp(min=2.0**-60)  # lam >= 1 -> the slowest leak (clamped to 30)
    n = -torch.log2(gap + (1.0 - lam - (1.0 - lam).detach()))
    return ste_clamp(round_half_away(n), *SHIFT_LIMITS)


def fold_factor(alpha: torch.Tensor, opts: ExportOptions) -> torch.Tensor:
    """The per-row factor a folding kind multiplies into its rows (CONTRACT.md section 7): the
    complement of its decay ``alpha``, float (``1 - alpha``) or, with ``fold="decay"``, of the
    integer decay (``(2**D - a) / 2**D``, shift ``2**-n``; exact in float64, STE in QAT)."""
    if (opts.fold or "float") == "float":
        return 1.0 - alpha
    a = quantize_decay(alpha, opts.decay_bits, opts.decay_mode)
    if opts.decay_mode == "mult":
        return 1.0 - a / float(2**opts.decay_bits)
    return torch.pow(2.0, -a)


def network_folds(source) -> bool:
    """Whether any layer's kind or the readout's kind of a float network (or its ``float_params()``)
    folds its decay into its rows (the kinds' ``folds``): then ``ExportOptions.fold`` matters."""
    with torch.no_grad():
        fp = _float_params(source)
    return (any(quant_kinds.get(lp["kind"]).folds for lp in fp["layers"])
            or quant_readouts.get(fp["readout"]["kind"]).folds)


def quantize_network(source, options: ExportOptions | dict | None, input_spec: InputSpec) -> QuantModel:
    """Quantize a float network (or its ``float_params()`` dict) to a :class:`QuantModel`.

    Differentiable through straight-through rounding when ``source`` is a network (its live
    parameters) and autograd is on; exact integers either way.
    """
    opts = _as_options(options)
    fp = _float_params(source)
    widths = opts.widths
    wmax = 2 ** (widths.weight_bits - 1) - 1
    smin, smax = -(2 ** (widths.state_bits - 1)), 2 ** (widths.state_bits - 1) - 1
    rmin, rmax = -(2 ** (widths.readout_bits - 1)), 2 ** (widths.readout_bits - 1) - 1
    channels = int(fp.get("input_channels", input_spec.channels))
    if channels != input_spec.channels:
        raise ConfigError(f"the network has {channels} input channels but the input spec has {input_spec.channels}")

    layers: list[QuantLayer] = []
    for index, lp in enumerate(fp["layers"]):
        kind = lp["kind"]
        w_in = _f64(lp["w_in"])
        dev = w_in.device
        n = int(w_in.shape[0])
        bias = _f64(lp["bias"], n=n, device=dev)
        span = int(lp["span"])
        w_rec = _f64(lp["w_rec"], device=dev) if (lp.get("w_rec") is not None and span > 0) else None
        kind_def = quant_kinds.get(kind)
        if kind_def.folds:
            fold = fold_factor(_f64(lp["alpha"], n=n, device=dev), opts)
            w_in = fold[:, None] * w_in
            bias = fold * bias
            if w_rec is not None:
                w_rec = fold[:, None] * w_rec
        scale, (e_in, e_rec) = _policy_scale(opts, wmax, smax, [w_in, w_rec], kind_def.thresholds(lp, n, dev))
        shift = input_spec.frac_bits if (index == 0 and input_spec.kind == "real") else 0
        arrays, options, reset = kind_def.quantize(
            lp, QuantizeContext(index, n, scale, widths, opts.decay_mode, dev))
        s_in, s_rec = scale / 2.0**e_in, scale / 2.0**e_rec  # weight units: 2**e state units each
        q = QuantLayer(
            kind=kind, span=span,
            w_in=_q(w_in, s_in, -wmax, wmax),
            bias=_q(bias, scale, smin, smax),
            w_rec=_q(w_rec, s_rec, -wmax, wmax) if w_rec is not None else None,
            input_shift=shift, decay_mode=opts.decay_mode, reset=reset, scale=scale,
            params=arrays, options=options, input_exp=e_in, recurrent_exp=e_rec if w_rec is not None else 0,
            clipped=_clipped(w_in, s_in, wmax) + _clipped(w_rec, s_rec, wmax),
        )
        layers.append(q)

    rp = fp["readout"]
    w = _f64(rp["w"])
    m = int(w.shape[0])
    bias = _f64(rp["bias"], n=m, device=w.device)
    r_kind = quant_readouts.get(rp["kind"])
    if r_kind.folds:
        fold = fold_factor(_f64(rp["alpha"], n=m, device=w.device), opts)
        w = fold[:, None] * w
        bias = fold * bias
    scale_o, (e_o,) = _policy_scale(opts, wmax, rmax, [w], r_kind.thresholds(rp, m, w.device))
    s_o = scale_o / 2.0**e_o
    readout = QuantReadout(
        kind=rp["kind"], mode=rp["mode"], w=_q(w, s_o, -wmax, wmax), bias=_q(bias, scale_o, rmin, rmax),
        decay_mode=opts.decay_mode, skip_steps=int(rp.get("skip_steps", 0)), scale=scale_o,
        params=r_kind.quantize(rp, ReadoutQuantizeContext(m, scale_o, widths, opts.decay_mode, w.device)),
        weight_exp=e_o, clipped=_clipped(w, s_o, wmax),
    )
    return QuantModel(input=input_spec, widths=widths, layers=layers, readout=readout)


# ---------------------------------------------------------------------------------------------
# input quantisation


def input_spec_for(kind: str, channels: int, options: ExportOptions | dict | None = None, *,
                   x: np.ndarray | None = None, max_abs: float | None = None) -> InputSpec:
    """The input quantisation (section 2) for data of ``kind`` (``real``, ``count``, ``spike``).

    ``real``: ``input_bits`` (default 8) signed bits; ``frac_bits`` = ``input_frac_bits`` or,
    when None, the largest F in 0..16 with ``max|x| * 2**F <= 2**(bits-1) - 1`` (``max_abs`` or
    the data ``x`` give the range; without either F = bits - 1, i.e. inputs in (-1, 1)).
    ``count``: ``input_bits`` or the bit length of the largest count in ``x``.
    """
    opts = _as_options(options)
    if kind == "spike":
        return InputSpec(channels, "spike", 1, 0)
    if x is not None and max_abs is None:
        arr = np.asarray(x)
        max_abs = float(np.max(np.abs(arr))) if arr.size else 0.0
    if kind == "count":
        bits = opts.input_bits
        if bits is None:
            bits = max(1, int(math.ceil(max_abs or 0.0)).bit_length()) if max_abs is not None else 8
            bits = min(bits, INPUT_BITS_LIMITS[1])
        return InputSpec(channels, "count", int(bits), 0)
    if kind != "real":
        raise ConfigError(f"unknown input kind {kind!r}; expected spike, count or real")
    bits = DEFAULT_REAL_INPUT_BITS if opts.input_bits is None else int(opts.input_bits)
    if bits < 2:
        raise ConfigError(f"input_bits={bits} is impossible for a real (signed) input: the contract allows 2..16")
    frac = opts.input_frac_bits
    if frac is None:
        top = 2 ** (bits - 1) - 1
        if max_abs is None:
            frac = bits - 1
        elif max_abs == 0.0:
            frac = FRAC_BITS_LIMITS[1]
        else:
            frac = int(math.floor(math.log2(top / max_abs)))
            while frac > FRAC_BITS_LIMITS[0] and max_abs * 2.0**frac > top:
                frac -= 1
            while frac + 1 <= FRAC_BITS_LIMITS[1] and max_abs * 2.0 ** (frac + 1) <= top:
                frac += 1
            frac = max(FRAC_BITS_LIMITS[0], min(FRAC_BITS_LIMITS[1], frac))
    return InputSpec(channels, "real", bits, int(frac))


# ---------------------------------------------------------------------------------------------
# provenance and the public export


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def make_provenance(*, dataset: str | None = None, float_accuracy: float | None = None, preset: str | None = None,
                    checkpoint: str | os.PathLike | None = None, options: ExportOptions | None = None,
                    method: str = "ptq", **extra) -> dict:
    """The artifact's provenance: dataset, float accuracy, creation time (UTC ISO), preset,
    checkpoint path and sha256, export options, and any JSON-serialisable ``extra``."""
    prov: dict[str, Any] = {"created": utc_now(), "method": method}
    if dataset is not None:
        prov["dataset"] = dataset
    if float_accuracy is not None:
        prov["float_accuracy"] = float(float_accuracy)
    if preset is not None:
        prov["preset"] = preset
    if checkpoint is not None:
        prov["checkpoint"] = str(checkpoint)
        if Path(checkpoint).is_file():
            prov["checkpoint_sha256"] = sha256_file(checkpoint)
    if options is not None:
        prov["export_options"] = options.to_dict()
    for k, v in extra.items():
        if v is not None:
            prov[k] = v
    return prov


def checkpoint_provenance(ckpt: dict, checkpoint_path: str | os.PathLike | None, options: ExportOptions,
                          method: str = "ptq", **extra) -> dict:
    """Provenance from a checkpoint dict written by ``quant.checkpoint.save_checkpoint``."""
    info = ckpt.get("dataset") or {}
    metrics = ckpt.get("metrics") or {}
    acc = metrics.get("test_acc", metrics.get("val_acc"))
    extra.setdefault("float_accuracy_split", "test" if "test_acc" in metrics else ("val" if acc is not None else None))
    train = ckpt.get("train") or {}
    if train.get("data"):
        extra.setdefault("dataset_path", str(train["data"]))
    if "seed" in train:
        extra.setdefault("dataset_seed", int(train["seed"]))
    if "val_fraction" in train:
        extra.setdefault("val_fraction", float(train["val_fraction"]))
    return make_provenance(dataset=info.get("name") or train.get("dataset"), float_accuracy=acc,
                           preset=ckpt.get("preset"), checkpoint=checkpoint_path, options=options, method=method,
                           **extra)


def export_artifact(source, options: ExportOptions | dict | None = None, *, input_spec: InputSpec | None = None,
                    input_kind: str | None = None, x: np.ndarray | None = None,
                    provenance: dict | None = None) -> Artifact:
    """Post-training quantization: float network (or ``float_params()`` dict) -> validated Artifact.

    The input quantisation is ``input_spec`` when given, else built by :func:`input_spec_for`
    from ``input_kind`` and the data ``x`` (its largest magnitude sets a ``real`` input's
    ``frac_bits``). ``provenance`` is stored as is (see :func:`make_provenance`); a ``created``
    time is added when missing.
    """
    opts = _as_options(options)
    with torch.no_grad():
        fp = _float_params(source)
        if input_spec is None:
            if input_kind is None:
                raise ConfigError("export needs the input kind (real, count or spike) or an input_spec")
            input_spec = input_spec_for(input_kind, int(fp["input_channels"]), opts, x=x)
        qm = quantize_network(fp, opts, input_spec)
    prov = dict(provenance or {})
    prov.setdefault("created", utc_now())
    prov.setdefault("export_options", opts.to_dict())
    prov.setdefault("scales", {"layers": [l.scale for l in qm.layers], "readout": qm.readout.scale})
    prov.setdefault("clipped_weights", {"layers": [int(l.clipped) for l in qm.layers],
                                        "readout": int(qm.readout.clipped)})
    return qm.to_artifact(prov)
