"""Surrogate spike functions: Heaviside forward, smooth derivative backward.

Each surrogate is a small callable object ``spike = surrogate(x, strict=...)``:

- forward: ``S = (x >= 0)`` (``strict=False``, the ASRC-SNN/SpikingJelly convention) or
  ``S = (x > 0)`` (``strict=True``, the SRNN convention). The neuron kind picks the comparison,
  the surrogate only shapes the gradient;
- backward: ``dS/dx = h(x)``, a function of the same ``x``.

Available shapes (``get_surrogate(name)``):

``triangle`` (ASRC-SNN default, ``surrogate.Triangle``)
    ``h(x) = max(0, g - |x|) / g**2`` with ``g = 1`` (so ``max(0, 1 - |x|)``).
``multi_gaussian`` (SRNN NMI 2021, ``ActFun_adp`` with surrogate 'MG')
    ``h(x) = gamma * [(1+hh) N(x; 0, s) - hh N(x; s, k s) - hh N(x; -s, k s)]``,
    gamma 0.5, s ("lens") 0.5, hh ("hight") 0.15, k ("scale") 6, N the Gaussian pdf.
``gaussian`` (SRNN ICONS 2020)
    ``h(x) = gamma * N(x; 0, s)`` with gamma 0.5, s 0.5.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from skipcore.errors import ConfigError

__all__ = ["Surrogate", "Triangle", "MultiGaussian", "Gaussian", "SURROGATES", "get_surrogate"]


def _heaviside(x: torch.Tensor, strict: bool) -> torch.Tensor:
    return (x > 0).to(x.dtype) if strict else (x >= 0).to(x.dtype)


def _gauss(x: torch.Tensor, mu: float, sigma: float) -> torch.Tensor:
    """``exp(-(x - mu)**2 / (2 sigma**2)) / (sqrt(2 pi) sigma)``, in place on one new tensor (the
    fused training loop applies it to whole (T, B, N) sequences at once)."""
    d = x - mu if mu else x.clone()
    return d.square_().neg_().div_(2.0 * sigma * sigma).exp_().div_(math.sqrt(2.0 * math.pi) * sigma)


class _SpikeFn(torch.autograd.Function):
    """Heaviside with a surrogate derivative given by ``surrogate.derivative(x)``."""

    @staticmethod
    def forward(ctx, x, surrogate, strict):  # noqa: D401 - autograd signature
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return _heaviside(x, strict)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out * ctx.surrogate.derivative(x), None, None


class Surrogate:
    """Base class: subclasses define ``derivative(x)`` and a ``name``."""

    name = "base"

    def __call__(self, x: torch.Tensor, strict: bool = False) -> torch.Tensor:
        if not torch.is_grad_enabled() or not x.requires_grad:
            return _heaviside(x, strict)
        return _SpikeFn.apply(x, self, strict)

    def derivative(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class Triangle(Surrogate):
    """``dS/dx = max(0, width - |x|) / width**2`` (ASRC-SNN ``Triangle``, width g = 1)."""

    width: float = 1.0
    name = "triangle"

    def derivative(self, x):
        d = x.abs().neg_().add_(self.width).clamp_(min=0.0)
        return d if self.width == 1.0 else d.div_(self.width * self.width)


@dataclass(frozen=True)
class MultiGaussian(Surrogate):
    """Yin et al.'s multi-Gaussian (SRNN ``ActFun_adp``, 'MG')."""

    gamma: float = 0.5
    sigma: float = 0.5
    height: float = 0.15
    scale: float = 6.0
    name = "multi_gaussian"

    def derivative(self, x):
        s, hh, k = self.sigma, self.height, self.scale
        h = _gauss(x, 0.0, s).mul_(1.0 + hh).sub_(_gauss(x, s, k * s).mul_(hh)).sub_(_gauss(x, -s, k * s).mul_(hh))
        return h.mul_(self.gamma)


@dataclass(frozen=True)
class Gaussian(Surrogate):
    """Single Gaussian (SRNN ICONS 2020 scripts): ``gamma * N(x; 0, sigma)``."""

    gamma: float = 0.5
    sigma: float = 0.5
    name = "gaussian"

    def derivative(self, x):
        return _gauss(x, 0.0, self.sigma).mul_(self.gamma)


#: name -> factory with the papers' default parameters
SURROGATES = {"triangle": Triangle, "multi_gaussian": MultiGaussian, "gaussian": Gaussian}


def get_surrogate(name: str) -> Surrogate:
    """Return the surrogate called ``name`` with its paper defaults."""
    try:
        return SURROGATES[name]()
    except KeyError:
        raise ConfigError(
            f"unknown surrogate {name!r}; choose one of: {', '.join(SURROGATES)}"
        ) from None
