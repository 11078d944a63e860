"""Layers the adaptation methods share."""

from __future__ import annotations

import math

import torch
from torch import nn


def grad_reverse(x: torch.Tensor, coeff: float = 1.0) -> torch.Tensor:
    """Identity forward, gradient multiplied by ``-coeff`` backward (Ganin & Lempitsky 2015).

    Placed between a feature extractor and a domain discriminator, one backward pass
    trains the discriminator to separate the domains and the extractor to confuse it.
    """
    # lerp(a, b, w) = a + w·(b − a) is exactly x when a = b = x, and its gradient reaches
    # x only through the undetached end, times w = −coeff: one native autograd node, where
    # a Python autograd.Function costs 30-40 µs a step on the seed's small networks.
    return torch.lerp(x.detach(), x, -float(coeff))


class GradientReversal(nn.Module):
    """Module form of :func:`grad_reverse` with a settable coefficient."""

    def __init__(self, coeff: float = 1.0) -> None:
        super().__init__()
        self.coeff = coeff

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grad_reverse(x, self.coeff)


def ganin_schedule(progress: float, gamma: float = 10.0) -> float:
    """λ_p = 2 / (1 + exp(-γ p)) - 1: ramps the adversarial weight from 0 to 1 (Ganin 2016)."""
    return 2.0 / (1.0 + math.exp(-gamma * progress)) - 1.0


def adversarial_coefficient(weight: float, progress: float, schedule: str = "ganin",
                            gamma: float = 10.0) -> float:
    """λ_p of the adversarial methods: ``weight`` times the Ganin ramp, or constant."""
    if schedule == "ganin":
        return float(weight) * ganin_schedule(progress, gamma)
    return float(weight)
