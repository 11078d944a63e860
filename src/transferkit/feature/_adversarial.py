"""Pieces shared by the adversarial deep methods (ADDA, MCD, MDD, CDAN).

Every function works on the head outputs the :class:`~transferkit.nn.adaptation.
SupervisedLoss` of a fit produces: one logit for binary classification, one per class
for multi-class, one standardised value for regression.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.nn import functional as F

from ..nn.adaptation import SupervisedLoss
from ..nn.estimator import _reset_parameters


def log_probabilities(out: torch.Tensor, kind: str) -> torch.Tensor:
    """Log class probabilities (n, n_classes) of logits (binary: one logit, two columns)."""
    if kind == "binary":
        o = out.reshape(-1, 1)
        return torch.cat([F.logsigmoid(-o), F.logsigmoid(o)], dim=1)
    return F.log_softmax(out, dim=1)


def entropy(p: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Per-row Shannon entropy H(p) = −Σ_c p_c log p_c of class probabilities, shape (n,)."""
    return -(p * p.clamp_min(eps).log()).sum(1)


def discrepancy(out1: torch.Tensor, out2: torch.Tensor, sup: SupervisedLoss) -> torch.Tensor:
    """Mean L1 distance between two heads' outputs (MCD's d(p1, p2)).

    Classification: (1/K) Σ_k |p1_k − p2_k| on class probabilities, averaged over rows
    (Saito et al., 2018, eq. 2); regression: |f1(x) − f2(x)| on the standardised outputs.
    """
    if sup.kind == "regression":
        return (out1.reshape(-1) - out2.reshape(-1)).abs().mean()
    return (sup.probabilities(out1) - sup.probabilities(out2)).abs().mean()


def head_like(head: nn.Module) -> nn.Module:
    """A freshly initialised copy of ``head`` (MCD's second classifier, MDD's adversary)."""
    m = copy.deepcopy(head)
    _reset_parameters(m)
    return m


def frozen_gaussian(n_in: int, n_out: int) -> nn.Linear:
    """A fixed random projection (a bias-free Linear whose weight is N(0, 1), no grad).

    A plain ``torch.nn`` layer so that fitted models save and load like any other.
    """
    lin = nn.Linear(n_in, n_out, bias=False)
    with torch.no_grad():
        lin.weight.normal_()
    lin.weight.requires_grad_(False)
    return lin


def multilinear_map(f: torch.Tensor, g: torch.Tensor, random_f: nn.Module | None = None,
                    random_g: nn.Module | None = None) -> torch.Tensor:
    """CDAN's conditioning T(f, g) of features f (n, d) on class probabilities g (n, K).

    Without projections the flattened outer product f ⊗ g (n, d·K); with them the
    randomized multilinear map (R_f f) ⊙ (R_g g) / √m (n, m), an unbiased estimate of
    its inner products (Long et al., 2018, section 3.2).
    """
    if random_f is None:
        return torch.bmm(g.unsqueeze(2), f.unsqueeze(1)).reshape(f.shape[0], -1)
    rf, rg = random_f(f), random_g(g)
    return rf * rg / math.sqrt(rf.shape[1])
