"""Neuron kinds: one definition per kind, found by name in a registry.

A kind (``golden/kinds/<name>.py``) declares, for the integer contract:

* its **parameter schema**: the per-neuron arrays it reads from the artifact (name, shape, integer
  range), and any integer header options (:class:`OptionSpec`);
* its **state schema**: the state arrays of one neuron (name, integer range) and which of them are
  recorded as traces;
* its **integer step** ``step(acc, state, params, sat) -> (spikes, state)`` (CONTRACT.md, one
  section per kind), the parameters it takes (:meth:`NeuronKind.params`) and the widest
  intermediate it needs (:meth:`NeuronKind.work_bits`);
* the same section written a second time, literally in plain int64 with its section 5 bounds
  asserted, for the reference model (:meth:`NeuronKind.reference_step`, ``golden/reference.py``);
* how to draw **random parameters** for the equivalence tests (:meth:`NeuronKind.random_arrays`).

Artifact validation, save/load, the golden loop and random artifacts only ask the kind; nothing
else in golden/ tests a kind's name. The arrays every kind shares (``w_in``, ``bias``, ``w_rec``)
and the accumulation (CONTRACT.md section 3.1) are generic.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from skipcore.errors import SkipcoreError
from ..registry import Registry

if TYPE_CHECKING:  # annotations only: golden.artifact imports this package
    from ..arith import Saturation
    from ..artifact import Artifact, LayerSpec, Widths

__all__ = [
    "ArraySpec",
    "StateSpec",
    "OptionSpec",
    "RandomContext",
    "NeuronKind",
    "UnknownKindError",
    "register",
    "get",
    "names",
    "all_kinds",
    "parameter_names",
]


class UnknownKindError(SkipcoreError, ValueError):
    """A neuron kind name that no registered kind answers to."""


@dataclass(frozen=True)
class ArraySpec:
    """One parameter array of a kind: its name, shape, allowed integer range and what it is."""

    name: str
    shape: tuple[int, ...]
    lo: int
    hi: int
    what: str


@dataclass(frozen=True)
class StateSpec:
    """One state array of a neuron kind ((batch, neurons) at run time), its range and trace flag."""

    name: str
    lo: int
    hi: int
    trace: bool = True


@dataclass(frozen=True)
class OptionSpec:
    """An integer layer option in the artifact header (besides span, shift, decay_mode, reset)."""

    name: str
    lo: int
    hi: int
    default: int


@dataclass(frozen=True)
class RandomContext:
    """What a kind needs to draw valid random parameters for one layer."""

    rng: np.random.Generator
    neurons: int
    fan_in: int
    widths: Any                  # golden.artifact.Widths
    decay_mode: str
    threshold_scale: int         # typical |acc|: thresholds up to this keep neurons active
    saturating: bool             # extreme values (exercise saturation)
    options: dict = field(default_factory=dict)  # the layer's options (drawn first)

    def weights(self, shape) -> np.ndarray:
        wmax = 2 ** (self.widths.weight_bits - 1) - 1
        if self.saturating:
            return self.rng.choice([-wmax, wmax, 0], size=shape).astype(np.int64)
        return self.rng.integers(-wmax, wmax + 1, size=shape).astype(np.int64)

    def thresholds(self) -> np.ndarray:
        smax = 2 ** (self.widths.state_bits - 1) - 1
        hi = max(2, min(smax, self.threshold_scale))
        return self.rng.integers(1, hi + 1, size=self.neurons).astype(np.int64)

    def decays(self, mode: str | None = None) -> np.ndarray:
        if (mode or self.decay_mode) == "mult":
            return self.rng.integers(0, 2**self.widths.decay_bits, size=self.neurons).astype(np.int64)
        return self.rng.integers(1, 8, size=self.neurons).astype(np.int64)


class NeuronKind:
    """Base class of a neuron kind's golden definition; subclasses fill in the schema and step."""

    #: registry name (the artifact's ``layers[i].kind``)
    name: str = ""
    #: human title, e.g. "LIF (ASRC-SNN)"
    title: str = ""
    #: the CONTRACT.md section of the kind
    section: str = ""
    #: names of the kind's parameter arrays (the schema proper is :meth:`arrays`)
    parameters: tuple[str, ...] = ()
    #: the NamedTuple of the state (its fields are the state arrays, in order)
    State: type = NamedTuple
    #: integer header options of the layer
    options: tuple[OptionSpec, ...] = ()
    #: whether the layer's ``reset`` header field means anything for this kind
    uses_reset: bool = False
    #: whether the kind's arithmetic depends on ``widths.trace_bits`` (CONTRACT.md section 1)
    uses_trace_bits: bool = False
    #: drawn by ``random_artifact`` when the caller names no kinds (only kinds that every
    #: implementation -- QAT and RTL -- supports, since the equivalence suites draw from this mix)
    in_random_mix: bool = True

    # ---- schema ---------------------------------------------------------------------------------
    def arrays(self, widths: "Widths", layer: "LayerSpec") -> tuple[ArraySpec, ...]:
        """The kind's parameter arrays for ``layer`` (shapes and ranges from ``widths``)."""
        raise NotImplementedError

    def state(self, widths: "Widths") -> tuple[StateSpec, ...]:
        """The state arrays of one neuron, in the order of :attr:`State`."""
        raise NotImplementedError

    def traces(self, widths: "Widths") -> tuple[str, ...]:
        """State arrays recorded per step by the golden model (``GoldenResult.states``)."""
        return tuple(s.name for s in self.state(widths) if s.trace)

    def check(self, layer: "LayerSpec", widths: "Widths") -> str | None:
        """Checks across arrays beyond the per-array ranges; return a problem (``'field: ...'``) or None."""
        return None

    # ---- integer contract -----------------------------------------------------------------------
    def params(self, art: "Artifact", layer: "LayerSpec", dtype=np.int64):
        """The constants :meth:`step` takes, arrays cast to ``dtype``."""
        raise NotImplementedError

    def initial_state(self, layer: "LayerSpec", batch: int, dtype=np.int64):
        """Contract section 3.5: every state array starts at zero."""
        return self.State(*(np.zeros((batch, layer.neurons), dtype=dtype) for _ in self.State._fields))

    def step(self, acc: np.ndarray, state, params, sat: "Saturation | None" = None):
        """One step of every neuron: ``(acc (B, N), state) -> (spikes (B, N), state)``."""
        raise NotImplementedError

    def work_bits(self, widths: "Widths", layer: "LayerSpec", acc_bits: int) -> int:
        """Signed bits of the widest intermediate of :meth:`step` (int32 work when <= 31)."""
        raise NotImplementedError

    def reference_step(self, acc: np.ndarray, state: dict, q: np.ndarray, layer: "LayerSpec", ref) -> np.ndarray:
        """The kind's CONTRACT.md section written out literally, for the reference model.

        ``state`` maps every state array name (:meth:`state`) to its int64 (B, N) array and is
        updated in place; ``q`` is the layer's own spikes of the previous step (0 at t = 0); ``ref``
        is a ``golden.reference.Reference`` (plain int64 decay, floor shift, counted saturation and
        the section 5 bound checks). Returns the spikes. Kept independent of :meth:`step`: the
        reference checks the optimised model, so the two are written twice.
        """
        raise NotImplementedError

    # ---- tests ----------------------------------------------------------------------------------
    def random_arrays(self, ctx: RandomContext) -> dict[str, np.ndarray]:
        """Valid random parameter arrays for one layer (for the equivalence tests)."""
        raise NotImplementedError

    def random_options(self, ctx: RandomContext) -> dict[str, int]:
        """Valid random header options for one layer, drawn before :meth:`random_arrays`."""
        return {}

    def random_reset(self, rng: np.random.Generator) -> str:
        drawn = ("soft", "hard")[int(rng.integers(2))]  # drawn always: same random stream for every kind
        return drawn if self.uses_reset else "soft"

    def __repr__(self) -> str:
        return f"<neuron kind {self.name!r}>"


_REGISTRY: Registry[NeuronKind] = Registry(
    "neuron kind", error=UnknownKindError, unknown="unknown neuron kind {name!r}; known kinds: {known}"
)
register = _REGISTRY.register
names = _REGISTRY.names
get = _REGISTRY.get


def random_mix() -> tuple[str, ...]:
    """Kinds ``random_artifact`` draws from when none are named."""
    return tuple(k.name for k in _REGISTRY.values() if k.in_random_mix)


def all_kinds() -> tuple[NeuronKind, ...]:
    return _REGISTRY.values()


def parameter_names() -> frozenset[str]:
    """Every parameter array name of any registered kind (LayerSpec attribute access)."""
    return frozenset(n for k in _REGISTRY.values() for n in k.parameters)


#: registered first, in this order (the order of the CLI choices and of random draws)
_REGISTRY.load_package(__name__, __path__, first=("lif", "alif"))
