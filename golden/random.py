"""Random artifacts that exercise the whole contract (for the equivalence tests of QAT and RTL)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from . import kinds as neuron_kinds
from . import readouts
from .artifact import Artifact, InputSpec, LayerSpec, ReadoutSpec, Widths
from .kinds import RandomContext


def random_artifact(
    rng: np.random.Generator,
    *,
    channels: int | None = None,
    layer_sizes: list[int] | None = None,
    kinds: list[str] | None = None,
    spans: list[int] | None = None,
    input_kind: str | None = None,
    widths: Widths | None = None,
    readout_kind: str | None = None,
    readout_mode: str | None = None,
    classes: int | None = None,
    saturating: bool | None = None,
    decay_mode: str | None = None,
    weight_exps: bool | None = None,
) -> Artifact:
    """Draw a valid artifact; unspecified choices are random. ``saturating`` uses extreme weights.

    ``weight_exps`` draws non-zero weight exponents (section 3.1) for the input, recurrent and
    readout matrices (each in [0, 3]); None draws them for about a third of the artifacts.
    """
    pick = lambda seq: seq[int(rng.integers(len(seq)))]  # noqa: E731
    if widths is None:
        widths = Widths(
            weight_bits=int(rng.integers(2, 17)),
            state_bits=int(rng.integers(8, 25)),
            readout_bits=int(rng.integers(8, 33)),
            decay_bits=int(rng.integers(2, 13)),
        )
        # the ALIF trace's fraction bits T (section 1): either end of their range (D: a version
        # 1/2 artifact's arithmetic; the top: a new export's) or the middle, chosen from the other
        # widths rather than drawn, so that every seed's random stream stays what it was
        low, top = widths.decay_bits, widths.trace_bits
        choice = (widths.weight_bits + widths.state_bits + widths.readout_bits) % 3
        widths = replace(widths, trace_bits=(low, top, (low + top) // 2)[choice])
    if layer_sizes is None:
        layer_sizes = [int(rng.integers(1, 13)) for _ in range(int(rng.integers(1, 4)))]
    n_layers = len(layer_sizes)
    kinds = kinds or [pick(neuron_kinds.random_mix()) for _ in range(n_layers)]
    spans = spans if spans is not None else [int(rng.integers(0, 6)) for _ in range(n_layers)]
    input_kind = input_kind or pick(["spike", "count", "real"])
    channels = channels or int(rng.integers(1, 9))
    saturating = bool(rng.integers(2)) if saturating is None else saturating
    weight_exps = bool(rng.integers(3) == 0) if weight_exps is None else weight_exps
    draw_exp = (lambda: int(rng.integers(0, 4))) if weight_exps else (lambda: 0)  # noqa: E731
    if input_kind == "spike":
        inp = InputSpec(channels, "spike", 1, 0)
    elif input_kind == "count":
        inp = InputSpec(channels, "count", int(rng.integers(1, 5)), 0)
    else:
        bits = int(rng.integers(2, 11))
        inp = InputSpec(channels, "real", bits, int(rng.integers(0, bits)))

    wmax = 2 ** (widths.weight_bits - 1) - 1
    smax = 2 ** (widths.state_bits - 1) - 1

    def weights(shape):
        if saturating:
            return rng.choice([-wmax, wmax, 0], size=shape).astype(np.int64)
        return rng.integers(-wmax, wmax + 1, size=shape).astype(np.int64)

    layers = []
    fan_in = channels
    for i, (n, kind, span) in enumerate(zip(layer_sizes, kinds, spans)):
        mode = decay_mode or pick(["mult", "shift"])
        input_exp, recurrent_exp = draw_exp(), (draw_exp() if span > 0 else 0)
        typical = (wmax << input_exp) * max(1, fan_in // 2) * (inp.max_abs if i == 0 else 1)
        shift = inp.frac_bits if (i == 0 and inp.kind == "real") else 0
        kind_def = neuron_kinds.get(kind)
        w_in = weights((n, fan_in))
        bias = rng.integers(-wmax, wmax + 1, size=n).clip(-smax, smax).astype(np.int64)
        ctx = RandomContext(rng=rng, neurons=n, fan_in=fan_in, widths=widths, decay_mode=mode,
                            threshold_scale=max(2, typical >> (shift + 1)), saturating=saturating)
        options = kind_def.random_options(ctx)
        params = kind_def.random_arrays(replace(ctx, options=options))
        layer = LayerSpec(
            kind=kind, span=span, w_in=w_in, bias=bias, w_rec=weights((n, n)) if span > 0 else None,
            input_shift=shift, decay_mode=mode, reset=kind_def.random_reset(rng), params=params,
            options=options, input_exp=input_exp, recurrent_exp=recurrent_exp,
        )
        layers.append(layer)
        fan_in = n
    classes = classes or int(rng.integers(2, 7))
    readout_kind = readout_kind or pick(readouts.random_mix())
    r_mode = decay_mode or pick(["mult", "shift"])
    w_out = weights((classes, fan_in))
    rmax = 2 ** (widths.readout_bits - 1) - 1
    bias_out = rng.integers(-wmax, wmax + 1, size=classes).clip(-rmax, rmax).astype(np.int64)
    mode = readout_mode or pick(["sequence", "per_step"])
    weight_exp = draw_exp()
    typical_out = (wmax << weight_exp) * max(1, fan_in // 2)
    own = readouts.get(readout_kind).random_arrays(RandomContext(
        rng=rng, neurons=classes, fan_in=fan_in, widths=widths, decay_mode=r_mode,
        threshold_scale=max(2, typical_out >> 1), saturating=saturating))
    readout = ReadoutSpec(w=w_out, bias=bias_out, kind=readout_kind, mode=mode, decay_mode=r_mode,
                          skip_steps=int(rng.integers(0, 3)), params=own, weight_exp=weight_exp)
    return Artifact(inp, widths, layers, readout, provenance={"source": "random"}).validate()


def random_inputs(rng: np.random.Generator, art: Artifact, batch: int, steps: int, density: float = 0.4) -> np.ndarray:
    """Float inputs for ``art`` that quantise to the full input range (including clamping)."""
    inp = art.input
    shape = (batch, steps, inp.channels)
    if inp.kind == "spike":
        return (rng.random(shape) < density).astype(np.float32)
    if inp.kind == "count":
        vals = rng.integers(0, 2**inp.bits + 2, size=shape)  # a few beyond range: saturate
        return (vals * (rng.random(shape) < density)).astype(np.float32)
    span = 2 ** (inp.bits - 1 - inp.frac_bits)
    return (rng.uniform(-1.2 * span, 1.2 * span, size=shape) * (rng.random(shape) < density + 0.3)).astype(np.float32)
