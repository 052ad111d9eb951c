"""The float network: a stack of ``SpikingLayer`` and a ``Readout``.

>>> cfg = NetworkConfig(input_channels=1, classes=10, layers=[LayerConfig(64, recurrence="src", span=4)])
>>> net = SpikingNetwork(cfg)
>>> out = net(torch.zeros(2, 40, 1))     # readout trace (B, T, M)
>>> net.predict(out).shape
torch.Size([2])

Layers run one after the other over the whole sequence (there is no top-down feedback, so this is
the same as stepping all layers together at every t).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .config import LayerConfig, NetworkConfig, ReadoutConfig
from .layers import SpikingLayer
from .readout import Readout, count_correct, readout_loss, readout_predict
from .surrogate import get_surrogate

__all__ = ["SpikingNetwork", "NetworkOutput", "NetworkConfig", "LayerConfig", "ReadoutConfig"]


class NetworkOutput(NamedTuple):
    readout: torch.Tensor  #: readout trace (B, T, M)
    spikes: list[torch.Tensor]  #: per hidden layer spikes (B, T, N_l)


class SpikingNetwork(nn.Module):
    """Float recurrent spiking network built from a ``NetworkConfig``."""

    def __init__(self, config: NetworkConfig):
        super().__init__()
        self.config = config
        surrogate = get_surrogate(config.surrogate) if config.surrogate else None
        layers, width = [], config.input_channels
        for lc in config.layers:
            layers.append(SpikingLayer(width, lc, dropout=config.dropout, bias=config.bias,
                                       init=config.init, surrogate=surrogate))
            width = lc.neurons
        self.layers = nn.ModuleList(layers)
        self.readout = Readout(width, config.classes, config.readout, bias=config.bias, init=config.init)

    def forward(self, x: torch.Tensor, *, record: bool = False):
        """Readout trace (B, T, M) for input (B, T, C); with ``record`` a ``NetworkOutput``."""
        spikes = []
        h = x
        for layer in self.layers:
            h = layer(h)
            if record:
                spikes.append(h)
        out = self.readout(h)
        return NetworkOutput(out, spikes) if record else out

    # -- prediction and loss (the one rule used everywhere) ------------------------------------
    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        r = self.config.readout
        return readout_loss(out, y, r.mode, r.skip_steps)

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        return readout_predict(out, self.config.readout.mode)

    def count_correct(self, out: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
        r = self.config.readout
        return count_correct(self.predict(out), y, r.mode, r.skip_steps)

    # -- ASRC ------------------------------------------------------------------------------------
    def decrease_tau(self, factor: float | None = None) -> None:
        """Once per epoch: multiply every ASRC layer's temperature by 0.96 (or ``factor``)."""
        for layer in self.layers:
            layer.decrease_tau() if factor is None else layer.decrease_tau(factor)

    @torch.no_grad()
    def constrain(self) -> None:
        """After every optimizer step: each layer's kind projects its parameters (``QuantKind.constrain``)."""
        for layer in self.layers:
            layer.kind.constrain(layer)

    def spans(self) -> list[int]:
        """Deployed span per layer (0 = no recurrence)."""
        return [layer.span for layer in self.layers]

    # -- parameter groups (weights / neuron taus / span logits) ----------------------------------
    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        groups = {"weights": [], "taus": [], "spans": []}
        for name, p in self.named_parameters():
            if not p.requires_grad:
                continue
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "span_logits":
                groups["spans"].append(p)
            elif leaf in ("tau_m", "tau_adp", "tau_o"):
                groups["taus"].append(p)
            else:
                groups["weights"].append(p)
        return groups

    def count_parameters(self) -> int:
        """Deployed parameter count (weights and biases; not span logits or taus)."""
        return sum(p.numel() for p in self.parameter_groups()["weights"])

    @torch.no_grad()
    def float_params(self) -> dict:
        """``{"layers": [layer.float_params() ...], "readout": readout.float_params(),
        "input_channels": C, "classes": M}`` (see ``SpikingLayer.float_params``)."""
        return {
            "input_channels": self.config.input_channels,
            "classes": self.config.classes,
            "layers": [layer.float_params() for layer in self.layers],
            "readout": self.readout.float_params(),
        }
