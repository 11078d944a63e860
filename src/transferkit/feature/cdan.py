"""Conditional domain-adversarial network (CDAN, CDAN+E)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from .._validation import check_choice, check_positive
from ..nn.adaptation import DeepAdaptation, SupervisedLoss, encode_batch
from ..nn.layers import adversarial_coefficient, grad_reverse
from ..nn.networks import mlp
from ..registry import register
from ._adversarial import entropy, frozen_gaussian, multilinear_map

_FULL_MAP_MAX = 4096  # "auto" randomizes the map beyond this many d·K dimensions


class _CDANTask:
    def __init__(self, nets: nn.ModuleDict, loss: SupervisedLoss, weight: float,
                 schedule: str, gamma: float, use_entropy: bool) -> None:
        self.module, self.nets, self.sup = nets, nets, loss
        self.weight, self.schedule, self.gamma = weight, schedule, gamma
        self.use_entropy = use_entropy

    def domain_weights(self, g: torch.Tensor, n_source: int) -> torch.Tensor:
        """w = 1 + exp(−H(g)) (CDAN+E) or 1, normalised to mean 1 within each domain."""
        w = 1.0 + torch.exp(-entropy(g)) if self.use_entropy else torch.ones(len(g))
        w = w.to(g.device)
        ws, wt = w[:n_source], w[n_source:]
        return torch.cat([ws / ws.mean(), wt / wt.mean()])

    def adaptation(self, z: torch.Tensor, out: torch.Tensor, n_source: int,
                   coeff: float) -> torch.Tensor:
        """Weighted domain loss of D(T(R(f), g)); the encoder gets −coeff times its gradient."""
        g = self.sup.probabilities(out).detach()
        rf, rg = (self.nets[k] if k in self.nets else None
                  for k in ("random_features", "random_classes"))
        h = multilinear_map(grad_reverse(z, coeff), g, rf, rg)
        d = self.nets["discriminator"](h).reshape(-1)
        domain = torch.zeros_like(d)
        domain[:n_source] = 1.0
        per_row = F.binary_cross_entropy_with_logits(d, domain, reduction="none")
        per_row = per_row * self.domain_weights(g, n_source)
        # Each domain's weighted mean, then their average (unequal batches weigh equally).
        return 0.5 * (per_row[:n_source].mean() + per_row[n_source:].mean())

    def loss(self, batch: dict, progress: float) -> dict[str, torch.Tensor]:
        z, n, out, task = encode_batch(batch, self.nets, self.sup, head_on_target=True)
        coeff = adversarial_coefficient(self.weight, progress, self.schedule, self.gamma)
        domain = self.adaptation(z, out, n, coeff)
        return {"loss": task + domain, "task": task, "domain": domain}


@register(family="feature", settings=("unsupervised", "semi-supervised", "supervised"),
          backend="torch")
class CDAN(DeepAdaptation):
    """Conditional adversarial domain adaptation on features ⊗ predictions (Long et al., 2018).

    Long, Cao, Wang & Jordan, "Conditional Adversarial Domain Adaptation", NeurIPS 2018.
    Setting: unsupervised domain adaptation for classification (labelled target rows,
    when ``yt`` has some, join the supervised loss). Like DANN, a domain discriminator D
    is trained through a gradient-reversal layer R_λ, but it sees the features f = G(x)
    conditioned on the class probabilities g = softmax(C(f)) through the multilinear
    map T(f, g) = f ⊗ g (the flattened outer product, d·K values), so the encoder aligns
    the joint distribution of features and predictions, i.e. the class-conditional
    structure, not only the marginals:

        L = L_y(C(G(x_s)), y_s) + Σ_domains E[w(x) · BCE(D(T(R_λ(f), g)), domain)]

    When d·K is large the randomized multilinear map
    T(f, g) = (R_f f) ⊙ (R_g g) / √m with fixed Gaussian R_f (m×d), R_g (m×K) is used.
    With ``entropy=True`` (CDAN+E) each row is weighted by w = 1 + exp(−H(g)), normalised
    to mean 1 per domain, so confidently predicted (transferable) examples count more;
    otherwise w = 1. g and w are constants for the gradient (as in the authors' code):
    the encoder is trained through f. λ follows DANN's ramp
    λ_p = λ·(2/(1+exp(−γp)) − 1) over training progress p.

    Parameters
    ----------
    encoder, head, discriminator : torch.nn.Module or None
        ``None`` builds MLPs: encoder ``hidden_layer_sizes``, linear head, discriminator
        ``discriminator_hidden`` -> 1 logit. A given discriminator must take the map's
        width: d·K for the full map (K = 2 for binary), ``random_dim`` when randomized.
    hidden_layer_sizes : tuple of int, default=(64, 64)
    discriminator_hidden : tuple of int, default=(64,)
    lambda_ : float, default=1.0
        Weight of the adversarial term; 0 trains the encoder as source-only.
    entropy : bool, default=False
        CDAN+E: entropy conditioning of the domain loss.
    multilinear : {"auto", "full", "randomized"}, default="auto"
        "auto" uses the full map up to d·K = 4096 and the randomized one beyond.
    random_dim : int, default=1024
        Output width m of the randomized map.
    schedule : {"ganin", "constant"}, default="ganin"
    gamma : float, default=10.0
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
        ``encoder``, ``head``, ``discriminator`` and, with the randomized map, the fixed
        projections ``random_features`` and ``random_classes``.
    history_ : dict
        Per-epoch ``loss``, ``task`` and ``domain`` terms.

    Examples
    --------
    >>> from transferkit.datasets import make_two_moons_shift
    >>> from transferkit.feature.cdan import CDAN
    >>> Xs, ys, Xt, yt = make_two_moons_shift()
    >>> m = CDAN(entropy=True, epochs=50, random_state=0).fit(Xs, ys, Xt)
    >>> m.predict(Xt).shape
    (100,)
    """

    _tasks = ("classification",)

    def __init__(self, encoder: nn.Module | None = None, head: nn.Module | None = None,
                 discriminator: nn.Module | None = None,
                 hidden_layer_sizes: Sequence[int] = (64, 64),
                 discriminator_hidden: Sequence[int] = (64,), lambda_: float = 1.0,
                 entropy: bool = False, multilinear: str = "auto", random_dim: int = 1024,
                 schedule: str = "ganin", gamma: float = 10.0, standardize: bool = True,
                 init: str = "torch", epochs: int = 100,
                 batch_size: int | None = 64, lr: float = 1e-3, weight_decay: float = 0.0,
                 optimizer: str = "adam", device: str = "auto", verbose: bool = False,
                 trainer_params: dict | None = None, reinit: bool = True,
                 random_state: Any = None) -> None:
        self.encoder = encoder
        self.head = head
        self.discriminator = discriminator
        self.hidden_layer_sizes = hidden_layer_sizes
        self.discriminator_hidden = discriminator_hidden
        self.lambda_ = lambda_
        self.entropy = entropy
        self.multilinear = multilinear
        self.random_dim = random_dim
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
        check_choice("multilinear", self.multilinear, ("auto", "full", "randomized"))
        check_positive("random_dim", self.random_dim, strict=True)
        n_classes = max(n_out, 2)
        randomized = self.multilinear == "randomized" or (
            self.multilinear == "auto" and width * n_classes > _FULL_MAP_MAX)
        if randomized:
            nets["random_features"] = frozen_gaussian(width, int(self.random_dim))
            nets["random_classes"] = frozen_gaussian(n_classes, int(self.random_dim))
        n_in = int(self.random_dim) if randomized else width * n_classes
        nets["discriminator"] = (mlp(n_in, self.discriminator_hidden, 1)
                                 if self.discriminator is None else self._copy(self.discriminator))

    def _make_task(self, nets: nn.ModuleDict, loss: SupervisedLoss) -> _CDANTask:
        check_choice("schedule", self.schedule, ("ganin", "constant"))
        check_positive("lambda_", self.lambda_)
        return _CDANTask(nets, loss, self.lambda_, self.schedule, self.gamma,
                         bool(self.entropy))
