"""Neuron kinds on the hardware side: one update unit per kind, found by name in a registry.

A kind's hardware definition (``hdl/kinds/<name>.py``) gives the layer engine, the plan, the
resource estimates and the multiplier count everything they need to know about it:

* the update unit (a fixed-latency ``wiring.Component``, one per lane) and its ``latency``;
* the **state layout** of one neuron (an ``amaranth.lib.data.StructLayout``: the state RAM holds
  an ``ArrayLayout`` of it, one element per lane) and how the unit's ports map onto it;
* the **parameter fields** it reads from the artifact (per-neuron constants with their widths;
  the plan keeps uniform ones as constants and packs the rest with a ``StructLayout``);
* the hardware multipliers one lane uses;
* test vectors for the unit against the golden contract (:meth:`UnitKind.vectors`), which the
  generic unit testbenches (tests/test_hdl_units.py, sim/tb_neuron_units.py) replay.

The layer engine connects a unit generically: every state field ``f`` goes to the unit port ``f``
(zero on the first step of a sequence), every parameter ``name`` to port ``name``, the
accumulator to ``acc``; the next state comes from :meth:`UnitKind.next_state`.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
from amaranth.hdl import Value
from amaranth.lib import data

from skipcore.errors import ConfigError
from skipcore.golden.registry import Registry

__all__ = ["UnitKind", "ParamSource", "register", "get", "names"]

#: Width of the per-neuron shift of ``decay_mode = shift`` (n in [1, 30]).
SHIFT_DECAY_BITS = 5


class ParamSource(tuple):
    """``(name, values, width, signed)``: one per-neuron constant a kind takes from the artifact."""

    def __new__(cls, name: str, values, width: int, signed: bool):
        return super().__new__(cls, (name, values, width, signed))


class UnitKind:
    """Base class of a kind's hardware definition."""

    #: registry name, equal to the golden kind's name
    name: str = ""
    #: the update unit component class (has a ``latency`` class attribute)
    Unit: type = object

    # ---- construction -------------------------------------------------------------------------
    def unit_args(self, plan) -> dict[str, Any]:
        """Constructor arguments of :attr:`Unit` for a layer plan."""
        raise NotImplementedError

    def unit(self, plan):
        return self.Unit(**self.unit_args(plan))

    def latency(self, plan) -> int:
        """Pipeline registers of one unit: cycles from its inputs to its outputs."""
        return int(self.Unit.latency)

    # ---- memories -----------------------------------------------------------------------------
    def state_layout(self, plan) -> data.StructLayout:
        """One neuron's state word (fields low bits first)."""
        raise NotImplementedError

    def params(self, art, layer) -> list[ParamSource]:
        """The kind's per-neuron constants (the engine adds ``bias``; widths from the artifact)."""
        raise NotImplementedError

    def constants(self, art, layer) -> dict[str, Any]:
        """Layer-wide constants the unit is built with (e.g. STC's tables); hashable values."""
        return {}

    def own_event_rows(self, art, layer) -> dict[str, np.ndarray]:
        """Extra accumulator fields fed by the layer's own spikes of the previous step.

        ``{field: (N, N) matrix}``: entry ``[i, j]`` is added to neuron i's field for every spike
        of neuron j at step t - 1 (event by event, like the recurrent path). The fields go to the
        unit's ports of the same name. Empty for kinds without such inputs.
        """
        return {}

    # ---- wiring -------------------------------------------------------------------------------
    def connect(self, m, unit, state: data.View, param: Callable[[str], Value], plan) -> None:
        """Drive the unit's state and parameter ports (``state`` is already zero on a first step)."""
        for name, _ in self.state_layout(plan):
            m.d.comb += getattr(unit, name).eq(state[name])
        for source in self.params_of_plan(plan):
            m.d.comb += getattr(unit, source).eq(param(source))

    def params_of_plan(self, plan) -> tuple[str, ...]:
        return tuple(p.name for p in plan.params if p.name != "bias")

    def next_state(self, unit, spike: Value, plan) -> dict[str, Value]:
        """The state fields to write back, by default each from the unit port ``<field>_next``."""
        return {name: getattr(unit, f"{name}_next") for name, _ in self.state_layout(plan)}

    # ---- reports ------------------------------------------------------------------------------
    def multipliers(self, plan) -> int:
        """Hardware multipliers of one lane's unit."""
        raise NotImplementedError

    # ---- tests --------------------------------------------------------------------------------
    def example_args(self, rng: np.random.Generator, *, acc_bits: int, state_bits: int, decay_bits: int,
                     decay_mode: str) -> dict[str, Any]:
        """Unit constructor arguments for the unit tests (widths given, the kind's own drawn)."""
        args = dict(acc_bits=acc_bits, state_bits=state_bits, decay_bits=decay_bits, decay_mode=decay_mode)
        if "reset" in self.Unit.__init__.__code__.co_varnames:
            args["reset"] = ("soft", "hard")[int(rng.integers(2))]
        return args

    def vectors(self, rng: np.random.Generator, args: dict[str, Any], count: int):
        """Random unit inputs over the whole legal range (edges included) and the contract's outputs.

        Returns ``(inputs, outputs, signed_outputs)``: dicts of (count,) int64 arrays by port name,
        and the output ports that are signed (with their widths).
        """
        raise NotImplementedError


def edge_values(rng: np.random.Generator, lo: int, hi: int, n: int) -> np.ndarray:
    """Uniform in [lo, hi] with the ends, 0, +-1 and the ends' neighbours drawn more often."""
    base = rng.integers(lo, hi + 1, size=n).astype(np.int64)
    edges = np.array([lo, hi, 0, 1, -1, lo + 1, hi - 1], dtype=np.int64)
    edges = edges[(edges >= lo) & (edges <= hi)]
    pick = rng.random(n) < 0.3
    base[pick] = rng.choice(edges, size=int(pick.sum()))
    return base


_REGISTRY: Registry[UnitKind] = Registry(
    "hardware kind", error=ConfigError, unknown="neuron kind {name!r} has no hardware unit; kinds with one: {known}"
)
register = _REGISTRY.register
names = _REGISTRY.names
get = _REGISTRY.get

#: registered first, in this order (the order of the CLI choices and of random draws)
_REGISTRY.load_package(__name__, __path__, first=("lif", "alif"))
