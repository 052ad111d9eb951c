"""Readout kinds: one definition per kind, found by name in a registry (the same seam as neuron
kinds, ``golden/kinds``).

A readout kind declares its parameter arrays beyond the shared ``w`` (M, N) and ``bias`` (M,),
its state (all zero at the start of a sequence), and its integer step
``step(acc, state, params, sat) -> state`` with ``acc_c = bias_c + sum_j w[c, j] S_L,j[t]``; the
readout value ``m[t]`` that the core streams and the prediction reads is :meth:`ReadoutKind.value`
of the state. CONTRACT.md section 4 has one subsection per kind.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from skipcore.errors import SkipcoreError

from ..kinds import ArraySpec, RandomContext, StateSpec
from ..registry import Registry

__all__ = ["ReadoutKind", "UnknownReadoutError", "register", "get", "names", "parameter_names",
           "ArraySpec", "StateSpec", "RandomContext"]


class UnknownReadoutError(SkipcoreError, ValueError):
    """A readout kind name that no registered kind answers to."""


class ReadoutKind:
    """Base class of a readout kind's golden definition."""

    name: str = ""
    section: str = ""
    parameters: tuple[str, ...] = ()
    State: type = NamedTuple
    #: whether the kind's arithmetic depends on ``widths.trace_bits`` (CONTRACT.md section 1)
    uses_trace_bits: bool = False
    #: drawn by ``random_artifact`` when no readout kind is named (QAT and RTL must support it)
    in_random_mix: bool = True

    def arrays(self, widths, readout) -> tuple[ArraySpec, ...]:
        return ()

    def state(self, widths) -> tuple[StateSpec, ...]:
        raise NotImplementedError

    def initial_state(self, classes: int, batch: int, dtype=np.int64):
        return self.State(*(np.zeros((batch, classes), dtype=dtype) for _ in self.State._fields))

    def params(self, art, readout, dtype=np.int64):
        raise NotImplementedError

    def step(self, acc: np.ndarray, state, params, sat=None):
        raise NotImplementedError

    def reference_step(self, acc: np.ndarray, state: dict, readout, ref) -> np.ndarray:
        """The readout's CONTRACT.md subsection written out literally for the reference model
        (``golden/reference.py``): ``state`` maps each state name to its int64 (B, M) array and is
        updated in place; returns the readout value ``m`` (B, M). Independent of :meth:`step`."""
        raise NotImplementedError

    def value(self, state) -> np.ndarray:
        """The readout value ``m`` (B, M) of a state."""
        return state[0]

    def random_arrays(self, ctx: RandomContext) -> dict[str, np.ndarray]:
        return {}


_REGISTRY: Registry[ReadoutKind] = Registry(
    "readout kind", error=UnknownReadoutError, unknown="unknown readout kind {name!r}; known kinds: {known}"
)
register = _REGISTRY.register
names = _REGISTRY.names
get = _REGISTRY.get


def random_mix() -> tuple[str, ...]:
    return tuple(k.name for k in _REGISTRY.values() if k.in_random_mix)


def parameter_names() -> frozenset[str]:
    return frozenset(n for k in _REGISTRY.values() for n in k.parameters)


#: registered first, in this order (the order of the CLI choices and of random draws)
_REGISTRY.load_package(__name__, __path__, first=("sum", "leaky"))
