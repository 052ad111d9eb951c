"""The cycle bound that DESIGN.md promises for every layer engine, from golden activity.

Per layer per step: ``groups * (input_events + recurrent_events + own_events) + groups + constant``
with ``groups = ceil(N/P)``, ``input_events`` the layer-0 input words or the spikes of layer l-1 at
the same step, ``recurrent_events`` the spikes replayed from slot ``t - span``, and ``own_events``
the layer's own spikes of step ``t - 1`` for kinds whose unit takes them as events (STC's gates;
``own_spans[l] = 1``). For such a layer the constant also holds ``groups`` more cycles: the engine
spends exactly one cycle per group word of S[t-1] when it moves to the next one
(``hdl.plan.LayerPlan.constant_cycles``: issue-to-write stages + unit input register + unit latency
+ 1 + groups; issue 12 added the issue register and the unit input register, a stage to the
LIF and ALIF units, and the multipliers' operand registers, another stage of the LIF, CUBA and ALIF
units: 9 for LIF and CUBA-LIF, 8 for STC-LIF, 10 for ALIF, two more with multi-bit inputs (the
product's operand, product and fabric registers), one more for a weight ROM in banks (two with
multi-bit inputs: the bank multiplexer is registered before the multiplier), one more for over
four banks (issue 12 item 1 registers the word of each group of banks before the group
multiplexer), one more for over sixteen (a fabric register per bank that only its block RAM
drives, placed between the bank and the engine)). The generator
(hdl/) reports it, the testbenches and the fast runner (sim/) measure against it: both call this
one function.

With ``events[l] = E > 1`` (the generator's ``--events``: the engine reads the weight rows of up
to E events of one stream per cycle) the input and the recurrent events arrive packed E to a
bundle (only a stream's last bundle of a step may hold fewer) and each bundle costs G cycles:
``groups * (ceil(input_events / E) + ceil(recurrent_events / E) + own_events) + groups + constant``.
Own events stay one per bundle; the constant holds one more stage (the adder tree of the E
weight words).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def spike_counts(spikes: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """Per-layer spike counts (B, T, L) from per-layer spikes (B, T, N), or counts passed through."""
    if isinstance(spikes, np.ndarray) and spikes.ndim == 3:
        return spikes.astype(np.int64)
    return np.stack([np.asarray(s).sum(axis=2) for s in spikes], axis=2).astype(np.int64)


def cycle_bounds(groups: Sequence[int], constants: Sequence[int], spans: Sequence[int],
                 input_events: np.ndarray, counts: np.ndarray,
                 own_spans: Sequence[int] | None = None, events: Sequence[int] | None = None) -> np.ndarray:
    """The bound (B, T, L) for layer-0 input events (B, T) and per-layer spike counts (B, T, L);
    ``events[l]`` is the layer's E (default 1)."""
    own_spans = list(own_spans) if own_spans is not None else [0] * len(groups)
    events = list(events) if events is not None else [1] * len(groups)
    input_events = np.asarray(input_events, dtype=np.int64)
    batch, steps = input_events.shape
    out = np.zeros((batch, steps, len(groups)), dtype=np.int64)
    for l, (g, c, k, j, e) in enumerate(zip(groups, constants, spans, own_spans, events)):
        ev_in = input_events if l == 0 else counts[:, :, l - 1]
        ev_rec = np.zeros((batch, steps), dtype=np.int64)
        ev_own = np.zeros((batch, steps), dtype=np.int64)
        if k > 0 and steps > k:
            ev_rec[:, k:] = counts[:, : steps - k, l]
        if j > 0 and steps > j:
            ev_own[:, j:] = counts[:, : steps - j, l]
        out[:, :, l] = g * (-(-ev_in // e) + -(-ev_rec // e) + ev_own) + g + c
    return out
