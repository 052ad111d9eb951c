"""Readout kinds on the training side (the same seam as ``quant.kinds``): the float readout, the
float-to-integer rule and the integer-exact QAT step of each readout kind in ``golden.readouts``."""
from __future__ import annotations

from typing import Any, NamedTuple

import torch

from skipcore.errors import ConfigError
from skipcore.golden.registry import Registry

__all__ = ["QuantReadoutKind", "ReadoutQuantizeContext", "register", "get", "names"]


class ReadoutQuantizeContext(NamedTuple):
    classes: int
    scale: float            # scale_o
    widths: Any
    decay_mode: str
    device: Any


class QuantReadoutKind:
    name: str = ""

    def check_config(self, cfg) -> None:
        """Refuse a :class:`quant.config.ReadoutConfig` this kind cannot build (ConfigError)."""

    def build(self, readout) -> None:
        """Add the kind's learnable parameters to a ``quant.readout.Readout`` (``readout.cfg`` set)."""

    def forward(self, readout, z: torch.Tensor) -> torch.Tensor:
        """The readout trace (B, T, M) from ``z = W_o S_L + b_o`` (B, T, M)."""
        raise NotImplementedError

    def export_params(self, readout) -> dict:
        """The kind's entries of the readout's float-parameter dict (tensors keep autograd)."""
        return {}

    #: whether the export folds the complement of the readout's decay (``alpha``) into row c of
    #: ``w`` and ``bias`` before scaling (CONTRACT.md section 7, ``quant.export.fold_factor``)
    folds: bool = False

    def thresholds(self, rp: dict, classes: int, device) -> list[torch.Tensor]:
        """The readout's float threshold values (``b0``/``threshold``, ``beta``), for the
        ``threshold`` scale policy; none for readouts without thresholds."""
        from ..kinds import float_thresholds

        return float_thresholds(rp, classes, device)

    def quantize(self, rp: dict, ctx: ReadoutQuantizeContext) -> dict[str, torch.Tensor]:
        return {}

    def qat_state(self, zeros: torch.Tensor) -> tuple:
        return (zeros,)

    def qat_step(self, acc, state: tuple, r, widths, counter=None) -> tuple:
        raise NotImplementedError

    def value(self, state: tuple) -> torch.Tensor:
        return state[0]


_REGISTRY: Registry[QuantReadoutKind] = Registry(
    "quant readout kind", error=ConfigError, unknown="unknown readout {name!r}; choose one of: {known}"
)
register = _REGISTRY.register
names = _REGISTRY.names
get = _REGISTRY.get

#: registered first, in this order (the order of the CLI choices and of random draws)
_REGISTRY.load_package(__name__, __path__, first=("builtin",))
