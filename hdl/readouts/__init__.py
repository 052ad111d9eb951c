"""Readout kinds on the hardware side (the same seam as ``hdl.kinds``).

The readout engine (:class:`hdl.readout_engine.ReadoutEngine`) updates one class per cycle from
rotating register chains; a readout kind says what the chains hold and what one update is:

* :meth:`ReadoutUnitKind.params`: its per-class constants (the plan keeps uniform ones constant);
* :meth:`ReadoutUnitKind.state_shapes`: its per-class state besides the readout value ``m``;
* :meth:`ReadoutUnitKind.update`: the combinational update of one class, returning the new ``m``
  (the streamed readout value) and the new state;
* :meth:`ReadoutUnitKind.prepare` (optional): the part of the update that does not need the class
  sum (e.g. the decay's multiplication). The engine computes it ahead from registered
  operands and registers it (or the kind does both, with ``prepare_registers``: a product two
  cycles after its operands, :func:`hdl.arith.registered_product`, on ECP5 in a multiplier
  block's own registers, which the engine registers once more in the fabric), so no path holds
  a multiplier and the adders after it; ``update`` then gets ``prepared``;
* :meth:`ReadoutUnitKind.multipliers`: multipliers of the update.
"""
from __future__ import annotations

from typing import Any

from skipcore.errors import ConfigError

from ..kinds import SHIFT_DECAY_BITS, ParamSource
from skipcore.golden.registry import Registry

__all__ = ["ReadoutUnitKind", "register", "get", "names"]


class ReadoutUnitKind:
    name: str = ""

    def params(self, art, readout) -> list[ParamSource]:
        return []

    def state_shapes(self, plan) -> dict[str, Any]:
        return {}

    def update(self, m, value, state: dict, acc, params: dict, plan, prepared: dict | None = None):
        """``(new_value, new_state)`` of one class (``value`` signed R bits, ``acc`` the class sum;
        ``prepared``: the registered results of :meth:`prepare` for this class, if it has any)."""
        raise NotImplementedError

    def split_update(self, m, value, state: dict, acc, params: dict, plan, prepared: dict | None = None):
        """The update in two cycles: ``(sums, finish)``. ``sums`` (``{name: Value}``) holds the
        additions and is registered; ``finish(registers)`` gives ``(new_value, new_state)`` from
        those registers (the saturation and what follows it), so that no path holds a carry chain
        and the saturation after it. The default registers the whole update."""
        new_value, new_state = self.update(m, value, state, acc, params, plan, prepared)
        sums = {"value": new_value, **{f"state_{k}": v for k, v in new_state.items()}}
        return sums, lambda regs: (regs["value"], {k: regs[f"state_{k}"] for k in new_state})

    #: True: :meth:`prepare` registers its operands and its values itself (two cycles after its
    #: inputs, e.g. :func:`hdl.arith.registered_product`, a multiplier block's input and output
    #: registers); False: the engine registers both.
    prepare_registers = False

    def prepare(self, m, value, state: dict, params: dict, plan, platform=None) -> dict:
        """Values of one class computed a cycle before its update, from everything but the class
        sum (``{name: Value}``; empty: nothing to prepare)."""
        return {}

    def multipliers(self, plan) -> int:
        return 0


def decay_source(name: str, values, art, mode: str) -> ParamSource:
    w = art.widths
    return ParamSource(name, values, w.decay_bits if mode == "mult" else SHIFT_DECAY_BITS, False)


_REGISTRY: Registry[ReadoutUnitKind] = Registry(
    "readout hardware kind", error=ConfigError, unknown="readout kind {name!r} has no hardware; kinds with one: {known}"
)
register = _REGISTRY.register
names = _REGISTRY.names
get = _REGISTRY.get

#: registered first, in this order (the order of the CLI choices and of random draws)
_REGISTRY.load_package(__name__, __path__, first=("builtin",))
