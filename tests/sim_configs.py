"""Random core configurations for the RTL-vs-golden tests (shared by tests and benchmarks).

:func:`random_configs` draws tiny artifacts (1 to 6 neurons per layer, 1 to 3 layers, 6 to 12 steps,
3 back-to-back sequences) that together cover the contract: every neuron kind of the registry's
random mix (``golden.kinds.random_mix``: LIF, ALIF, STC-LIF with its gate groups drawn from 1, a
divisor and N, and any kind added since), each alone in some cores and mixed in others, every
readout kind of ``golden.readouts.random_mix``, spans 0, 1, >1 (with
the ring depth equal to the span, the default, and deeper rings), lanes 1, N and a non-divisor of N,
E = 1 and E in {2, 3, 4} events per cycle (composed with every lane mode),
spike, count and real inputs, saturating weights, sum, leaky and spiking ALIF readouts in sequence
and per-step mode, mult and shift decays, non-zero weight exponents (input, recurrent, readout),
ALIF traces with T = D and T > D fraction bits.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skipcore.golden import kinds as neuron_kinds
from skipcore.golden import readouts
from skipcore.golden.artifact import Artifact
from skipcore.golden.contract import quantize_input
from skipcore.golden.random import random_artifact, random_inputs


@dataclass
class Config:
    name: str
    art: Artifact
    lanes: int
    ring_depth: int | None
    x: np.ndarray  # (B, T, C) quantised
    seed: int
    events: int = 1  # E, events per cycle of every layer engine

    def features(self) -> set[str]:
        f = {f"input:{self.art.input.kind}", f"readout:{self.art.readout.mode}", f"readout_kind:{self.art.readout.kind}"}
        for layer in self.art.layers:
            f.add(f"kind:{layer.kind}")
            f.add(f"decay:{layer.decay_mode}")
            f.add("span:0" if layer.span == 0 else "span:1" if layer.span == 1 else "span:>1")
            if layer.span > 1:
                f.add("span=ring_depth" if (self.ring_depth or layer.span) == layer.span else "span<ring_depth")
            p = min(self.lanes, layer.neurons)
            f.add("lanes:1" if p == 1 else "lanes:N" if p == layer.neurons else
                  "lanes:divisor" if layer.neurons % p == 0 else "lanes:non-divisor")
        if any(l.input_exp or l.recurrent_exp for l in self.art.layers) or self.art.readout.weight_exp:
            f.add("weight_exp")
        if self.art.provenance.get("saturating"):
            f.add("saturating")
        if self.x.shape[0] > 1:
            f.add("back-to-back")
        f.add("events:1" if self.events == 1 else "events:>1")
        if any(l.kind == "alif" for l in self.art.layers) or self.art.readout.kind == "alif":
            w = self.art.widths  # the ALIF trace's fraction bits (contract section 1)
            f.add("trace_bits:D" if w.trace_bits == w.decay_bits else "trace_bits:>D")
        return f


def random_configs(count: int = 32, seed: int = 2024, batch: int = 3) -> list[Config]:
    rng = np.random.default_rng(seed)
    mix, readout_mix = neuron_kinds.random_mix(), readouts.random_mix()
    out = []
    for i in range(count):
        n_layers = [1, 2, 2, 3][i % 4]
        sizes = [int(rng.integers(1, 7)) for _ in range(n_layers)]
        lane_mode = (i + i // 3) % 3  # every (input kind, lane mode) pair occurs
        if lane_mode == 2:
            sizes[0] = int(rng.choice([5, 6]))  # room for a non-divisor
        # every kind alone in some cores, then two cores of mixed kinds, in turn
        turn = i % (len(mix) + 2)
        kinds = [mix[turn]] * n_layers if turn < len(mix) else [str(rng.choice(mix)) for _ in range(n_layers)]
        spans = [[0, 1, 2, 3, 4][(i + 2 * l) % 5] for l in range(n_layers)]
        saturating = i % 4 in (1, 2)
        art = random_artifact(
            rng, layer_sizes=sizes, kinds=kinds, spans=spans, input_kind=["spike", "count", "real"][i % 3],
            readout_mode=["sequence", "per_step"][(i // 3) % 2], saturating=saturating,
            readout_kind=readout_mix[(i // 2) % len(readout_mix)],
            channels=int(rng.integers(1, 7)), weight_exps=i % 7 in (2, 5),
        )
        art.provenance = {"source": "random", "saturating": saturating}
        n_max = max(sizes)
        if lane_mode == 0:
            lanes = 1
        elif lane_mode == 1:
            lanes = n_max
        else:
            lanes = next(p for p in (4, 3, 2) if sizes[0] % p != 0)
        ring_depth = max(spans) + int(rng.integers(1, 4)) if (i % 4 == 3 and max(spans) > 1) else None
        steps = 6 + 2 * (i % 4)
        x = quantize_input(art.input, random_inputs(rng, art, batch, steps))
        # E drawn without the random generator (the configurations drawn before E existed stay as
        # they were): half the cores E = 1, the others E = 2, 3, 4, across every lane mode
        events = [1, 2, 1, 3, 1, 4][i % 6]
        out.append(Config(f"cfg{i:02d}", art, lanes, ring_depth, x, seed=1000 + i, events=events))
    return out
