"""Neuron kinds on the training side: one definition per kind, found by name in a registry.

A kind's quant definition (``quant/kinds/<name>.py``) gives:

* the **float step** ``step(current, state, params) -> (spikes, state)`` with its state class, the
  learnable parameters it adds to a :class:`quant.layers.SpikingLayer` (:meth:`QuantKind.build`),
  its default surrogate and, optionally, a fused training time loop;
* the **float-to-integer rule** (CONTRACT.md section 7): whether the complement of its decay is
  folded into the weight rows before scaling (:attr:`QuantKind.folds`), and the kind's integer arrays and options (:meth:`QuantKind.quantize`);
* the **integer-exact QAT step** in torch (float64 tensors holding integers), which mirrors the
  golden kind's step line by line.

The layer, the exporter, the QAT forward pass, the config and the CLI ask the kind by name;
nothing else in quant/ tests a kind's name.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import torch

from skipcore.errors import ConfigError
from skipcore.golden.registry import Registry

__all__ = ["QuantKind", "QuantizeContext", "register", "get", "names"]


class QuantizeContext(NamedTuple):
    """What a kind's float-to-integer rule needs for one layer."""

    index: int
    neurons: int
    scale: float            # the layer's scale_l (state units per float unit)
    widths: Any             # golden.artifact.Widths
    decay_mode: str
    device: Any


class QuantKind:
    """Base class of a kind's training-side definition."""

    name: str = ""
    #: the surrogate a layer of this kind uses unless the network names one
    surrogate: str = "triangle"
    #: the float state (a NamedTuple with a ``zeros(batch, neurons, device=, dtype=)`` classmethod)
    FloatState: type = NamedTuple

    # ---- config ---------------------------------------------------------------------------------
    def check_config(self, cfg) -> None:
        """Refuse a :class:`quant.config.LayerConfig` this kind cannot build (ConfigError)."""

    # ---- float model ----------------------------------------------------------------------------
    def build(self, layer) -> None:
        """Add the kind's own learnable parameters to a ``SpikingLayer`` (``layer.cfg`` is set)."""

    def float_step(self, current, state, params):
        raise NotImplementedError

    def float_params(self, layer):
        """The params tuple :meth:`float_step` takes, from the layer's parameters."""
        raise NotImplementedError

    def constrain(self, layer) -> None:
        """After every optimizer step: project the layer's parameters back onto the set the kind
        trains on (a kind option may ask for it; the default does nothing)."""

    def fused_run(self, layer, current: torch.Tensor, mixture: torch.Tensor | None) -> torch.Tensor | None:
        """A fused time loop for the layer (zero state, no currents returned): ``quant.fastloop.layer_loop``
        with the kind's ``quant.fastloop.Cell``; None (the default) runs the generic step loop."""
        return None

    def export_params(self, layer) -> dict:
        """The kind's entries of the layer's float-parameter dict (tensors keep autograd)."""
        raise NotImplementedError

    # ---- quantization ---------------------------------------------------------------------------
    #: whether the export folds the complement of the kind's membrane decay (the float-parameter
    #: dict's ``alpha``) into row i of ``w_in``, ``w_rec`` and ``bias`` before scaling (CONTRACT.md
    #: section 7; ``ExportOptions.fold`` says which complement: ``quant.export.fold_factor``)
    folds: bool = False

    def thresholds(self, lp: dict, n: int, device) -> list[torch.Tensor]:
        """The layer's float threshold values (the ``threshold`` scale policy keeps them resolved):
        by default the float-parameter dict's ``b0`` or ``threshold``, and ``beta`` when present."""
        return float_thresholds(lp, n, device)

    def quantize(self, lp: dict, ctx: QuantizeContext) -> tuple[dict[str, torch.Tensor], dict[str, int], str]:
        """``(arrays, options, reset)`` of the layer: the kind's integers (float64, STE-rounded)."""
        raise NotImplementedError

    # ---- QAT ------------------------------------------------------------------------------------
    def qat_state(self, zeros: torch.Tensor):
        """The all-zero integer state (section 3.5) given one zero (B, N) tensor."""
        raise NotImplementedError

    def qat_step(self, acc: torch.Tensor, state, p, counter=None):
        """The integer step, mirroring the golden kind (``p`` is ``quant.qat.StepParams``)."""
        raise NotImplementedError

    def qat_bits(self, layer, widths, acc_bits: int) -> int:
        """Largest product any float64 intermediate of :meth:`qat_step` may form (checked < 2**53)."""
        return 0


def float_thresholds(params: dict, n: int, device) -> list[torch.Tensor]:
    """``b0`` (else ``threshold``) and ``beta`` of a float-parameter dict, those it has."""
    from ..export import _f64

    first = "b0" if params.get("b0") is not None else "threshold"
    return [_f64(params[key], n=n, device=device) for key in (first, "beta") if params.get(key) is not None]


_REGISTRY: Registry[QuantKind] = Registry(
    "quant kind", error=ConfigError, unknown="unknown neuron kind {name!r}; known kinds: {known}"
)
register = _REGISTRY.register
names = _REGISTRY.names
get = _REGISTRY.get

#: registered first, in this order (the order of the CLI choices and of random draws)
_REGISTRY.load_package(__name__, __path__, first=("lif", "alif"))
