"""Margin disparity discrepancy (MDD)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from .._validation import check_choice, check_positive
from ..nn.adaptation import DeepAdaptation, SupervisedLoss, encode_batch
from ..nn.layers import adversarial_coefficient, grad_reverse
from ..registry import register
from ._adversarial import head_like, log_probabilities


class _MDDTask:
    def __init__(self, nets: nn.ModuleDict, loss: SupervisedLoss, weight: float,
                 margin: float, schedule: str, gamma: float) -> None:
        self.module, self.nets, self.sup = nets, nets, loss
        self.weight, self.margin = weight, margin
        self.schedule, self.gamma = schedule, gamma

    def adaptation(self, z: torch.Tensor, out: torch.Tensor, n_source: int,
                   coeff: float) -> torch.Tensor:
        """The adversary's loss γ·L_s − L_t; the encoder gets −coeff times its gradient."""
        out = out.detach()  # f's decisions are the adversary's targets, not trained here
        adv = self.nets["adversary"](grad_reverse(z, coeff))
        n = n_source
        if self.sup.kind == "regression":
            gap = (adv.reshape(-1) - out.reshape(-1)).abs()
            return self.margin * gap[:n].mean() - gap[n:].mean()
        y_hat = self.sup.probabilities(out).argmax(1)
        logp = log_probabilities(adv, self.sup.kind)
        agree_s = F.nll_loss(logp[:n], y_hat[:n])
        p_t = logp[n:].gather(1, y_hat[n:, None]).exp().squeeze(1)
        disagree_t = -torch.log1p(-p_t.clamp(max=1.0 - 1e-6)).mean()
        return self.margin * agree_s + disagree_t

    def loss(self, batch: dict, progress: float) -> dict[str, torch.Tensor]:
        z, n, out, task = encode_batch(batch, self.nets, self.sup, head_on_target=True)
        coeff = adversarial_coefficient(self.weight, progress, self.schedule, self.gamma)
        transfer = self.adaptation(z, out, n, coeff)
        return {"loss": task + transfer, "task": task, "transfer": transfer}


@register(family="feature", settings=("unsupervised", "semi-supervised", "supervised"),
          backend="torch")
class MDD(DeepAdaptation):
    """Margin disparity discrepancy with an adversarial auxiliary head (Zhang et al., 2019).

    Zhang, Liu, Long & Jordan, "Bridging Theory and Algorithm for Domain Adaptation",
    ICML 2019. Setting: unsupervised domain adaptation (labelled target rows, when ``yt``
    has some, join the supervised loss). An encoder ψ feeds the task head f and, through
    a gradient-reversal layer R_λ, an auxiliary head f' of the same architecture. f' is
    trained to agree with f's decisions on the source and disagree on the target,
    maximising the empirical margin disparity discrepancy

        D_γ = E_t L'(f'(ψ(x)), f(ψ(x))) − γ · E_s L(f'(ψ(x)), f(ψ(x)))

    while the reversed gradient trains ψ to minimise it, alongside the task loss of f:
    min_{ψ,f} L_y + max_{f'} D_γ. Classification follows the paper's implementation:
    with ŷ = argmax f (a constant), L = −log σ_ŷ(f') on the source and the modified
    L' = log(1 − σ_ŷ(f')) on the target, so f' minimises
    γ · CE(f'(ψ(x_s)), ŷ_s) − E_t log(1 − σ_ŷ(f'(ψ(x_t)))). Regression uses the L1
    disparity |f'(ψ(x)) − f(ψ(x))| (f constant) on the standardised outputs:
    D_γ = E_t |f' − f| − γ · E_s |f' − f|. λ follows DANN's ramp
    λ_p = λ·(2/(1+exp(−γ_s p)) − 1) over training progress p (γ_s = ``gamma``).

    Parameters
    ----------
    encoder, head : torch.nn.Module or None
        ``None`` builds an MLP encoder with ``hidden_layer_sizes`` and a linear head.
        The adversary f' is a freshly initialised copy of the head.
    hidden_layer_sizes : tuple of int, default=(64, 64)
    lambda_ : float, default=0.1
        Weight of the adversarial term on the encoder (the final reversal coefficient);
        0 trains it as source-only. The authors' code and Transfer-Learning-Library
        ramp the reversal coefficient to 0.1; 1 was unstable on small problems.
    margin : float, default=4.0
        The margin factor γ (γ = exp(ρ) for margin ρ); larger values weigh source
        agreement more.
    schedule : {"ganin", "constant"}, default="ganin"
    gamma : float, default=10.0
        Steepness of the λ ramp.
    standardize, init
        Input scaling and layer initialisation; see
        :class:`~transferkit.nn.adaptation.DeepAdaptation`.
    epochs : int, default=100
    batch_size : int or None, default=64
    lr : float, default=1e-3
    weight_decay : float, default=0.0
    optimizer : str, default="adam"
    device : str, default="auto"
    verbose : bool, default=False
    trainer_params : dict or None
    reinit : bool, default=True
    random_state : int or None

    Attributes
    ----------
    networks_ : torch.nn.ModuleDict
        ``encoder``, ``head`` and ``adversary``.
    history_ : dict
        Per-epoch ``loss``, ``task`` and ``transfer`` (the adversary's loss) terms.

    Examples
    --------
    >>> from transferkit.datasets import make_two_moons_shift
    >>> from transferkit.feature.mdd import MDD
    >>> Xs, ys, Xt, yt = make_two_moons_shift()
    >>> m = MDD(epochs=50, random_state=0).fit(Xs, ys, Xt)
    >>> m.predict(Xt).shape
    (100,)
    """

    def __init__(self, encoder: nn.Module | None = None, head: nn.Module | None = None,
                 hidden_layer_sizes: Sequence[int] = (64, 64), lambda_: float = 0.1,
                 margin: float = 4.0, schedule: str = "ganin", gamma: float = 10.0,
                 standardize: bool = True,
                 init: str = "torch", epochs: int = 100,
                 batch_size: int | None = 64, lr: float = 1e-3,
                 weight_decay: float = 0.0, optimizer: str = "adam", device: str = "auto",
                 verbose: bool = False, trainer_params: dict | None = None,
                 reinit: bool = True, random_state: Any = None) -> None:
        self.encoder = encoder
        self.head = head
        self.hidden_layer_sizes = hidden_layer_sizes
        self.lambda_ = lambda_
        self.margin = margin
        self.schedule = schedule
        self.gamma = gamma
        self.standardize = standardize
        self.init = init
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.device = device
        self.verbose = verbose
        self.trainer_params = trainer_params
        self.reinit = reinit
        self.random_state = random_state

    def _build_extra(self, nets: nn.ModuleDict, width: int, n_out: int) -> None:
        nets["adversary"] = head_like(nets["head"])

    def _make_task(self, nets: nn.ModuleDict, loss: SupervisedLoss) -> _MDDTask:
        check_choice("schedule", self.schedule, ("ganin", "constant"))
        check_positive("margin", self.margin)
        check_positive("lambda_", self.lambda_)
        return _MDDTask(nets, loss, self.lambda_, self.margin, self.schedule, self.gamma)
