"""Integer primitives shared by every part of the contract (``golden/CONTRACT.md`` section 1, 3.2).

Pure functions on int64 (or provably wide enough int32) NumPy arrays. The neuron kinds in
``golden/kinds/`` and the layer-level code in :mod:`golden.contract` build on these.
"""
from __future__ import annotations

import numpy as np

__all__ = ["Saturation", "signed_range", "saturate", "decay"]


class Saturation:
    """Counts saturation events per named quantity (section 1: 'counts one saturation event')."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def add(self, name: str, n: int) -> None:
        if n:
            self.counts[name] = self.counts.get(name, 0) + int(n)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def signed_range(bits: int) -> tuple[int, int]:
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def saturate(x: np.ndarray, bits: int, counter: Saturation | None = None, name: str = "") -> np.ndarray:
    """``sat_B``: clamp to the signed B-bit range, counting the clamped elements.

    Returns ``x`` itself when nothing is out of range, found with two reductions (the common case
    by far); callers pass temporaries.
    """
    lo, hi = signed_range(bits)
    if x.size == 0 or (x.max() <= hi and x.min() >= lo):
        return x
    if counter is not None:
        counter.add(name, np.count_nonzero((x < lo) | (x > hi)))
    return np.clip(x, lo, hi)


def decay(v: np.ndarray, a: np.ndarray, decay_bits: int, mode: str) -> np.ndarray:
    """Section 3.2: ``(a*v) >> D`` (mult) or ``v - (v >> n)`` (shift). ``>>`` floors."""
    if mode == "mult":
        return (a * v) >> decay_bits
    return v - (v >> a)
