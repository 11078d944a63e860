"""Adversarial discriminative domain adaptation (ADDA)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._validation import check_choice, check_positive
from ..errors import ParameterError
from ..nn.adaptation import DeepAdaptation, SupervisedLoss, encode_batch, labelled_target
from ..nn.networks import mlp
from ..registry import register

_TERMS = ("loss", "task", "discriminator", "adversarial")


class _ADDATask:
    def __init__(self, nets: nn.ModuleDict, loss: SupervisedLoss, weight: float,
                 pretrain: float, target_labels: bool = True) -> None:
        self.module, self.nets, self.sup = nets, nets, loss
        self.weight, self.pretrain = weight, pretrain
        # Whether any target row is labelled (a data-level flag, the same on every
        # torchrun process, so that all of them skip or take the same steps).
        self.target_labels = target_labels

    def configure_optimizers(self, make) -> dict:
        n = self.nets
        return {"source": make(list(n["source_encoder"].parameters())
                               + list(n["head"].parameters())),
                "encoder": make(n["encoder"].parameters()),
                "discriminator": make(n["discriminator"].parameters())}

    def adaptation(self, z_t: torch.Tensor) -> torch.Tensor:
        """GAN loss with inverted labels: target features should pass for source ones."""
        d = self.nets["discriminator"](z_t).reshape(-1)
        return F.binary_cross_entropy_with_logits(d, torch.ones_like(d))

    def discriminator_loss(self, z_s: torch.Tensor, z_t: torch.Tensor) -> torch.Tensor:
        d_s = self.nets["discriminator"](z_s).reshape(-1)
        d_t = self.nets["discriminator"](z_t).reshape(-1)
        return 0.5 * (F.binary_cross_entropy_with_logits(d_s, torch.ones_like(d_s))
                      + F.binary_cross_entropy_with_logits(d_t, torch.zeros_like(d_t)))

    def training_step(self, batch: dict, progress: float, optimizers: dict) -> dict:
        nets = self.nets
        xs = batch["source"][0]
        xt = batch["target"][0]
        zero = xs.new_zeros(())
        if progress < self.pretrain:
            # Stage 1: source encoder and head learn the task (labelled target rows too).
            task = encode_batch(batch, nets, self.sup, encoder="source_encoder")[3]
            optimizers["source"].zero_grad(set_to_none=True)
            task.backward()
            optimizers["source"].step()
            # The target encoder starts stage 2 as a copy of the source encoder; copying
            # every stage-1 step keeps the task stateless (resume-safe).
            nets["encoder"].load_state_dict(nets["source_encoder"].state_dict())
            return dict(zip(_TERMS, (task.detach(), task.detach(), zero, zero)))
        if self.weight == 0 and not self.target_labels:  # source-only: M_t stays M_s
            return dict(zip(_TERMS, (zero,) * 4))
        # Stage 2: source encoder and head frozen.
        z_t = nets["encoder"](xt)
        disc = adv = zero
        if self.weight > 0:
            with torch.no_grad():
                z_s = nets["source_encoder"](xs)
            disc = self.discriminator_loss(z_s, z_t.detach())
            optimizers["discriminator"].zero_grad(set_to_none=True)
            disc.backward()
            optimizers["discriminator"].step()
            adv = self.adaptation(z_t)
        task = labelled_target(batch, nets, z_t, self.sup)
        loss = self.weight * adv + task
        optimizers["encoder"].zero_grad(set_to_none=True)
        loss.backward()
        optimizers["encoder"].step()
        return dict(zip(_TERMS, (loss.detach(), task.detach(), disc.detach(), adv.detach())))


@register(family="feature", settings=("unsupervised", "semi-supervised", "supervised"),
          backend="torch")
class ADDA(DeepAdaptation):
    """Adversarial discriminative adaptation of a separate target encoder (Tzeng et al., 2017).

    Tzeng, Hoffman, Saenko & Darrell, "Adversarial Discriminative Domain Adaptation",
    CVPR 2017. Setting: unsupervised domain adaptation (labelled target rows, when ``yt``
    has some, join both stages' task loss). Training runs in one Trainer in two stages:

    1. for the first ``pretrain`` fraction of the epochs, a source encoder M_s and the
       head C minimise the task loss L_y(C(M_s(x_s)), y_s);
    2. then M_s and C are frozen; a target encoder M_t, initialised from M_s, and a
       domain discriminator D play the GAN game with inverted labels, alternating
       min_D −E_s log D(M_s(x)) − E_t log(1 − D(M_t(x))) and
       min_{M_t} −λ·E_t log D(M_t(x)).

    Target samples are predicted by C(M_t(x)); ``transform`` maps with M_t (or M_s for
    ``domain="source"``). The Trainer's early stopping is not meaningful across the two
    stages (the logged ``loss`` is the task loss in stage 1, the target encoder's loss
    in stage 2).

    Parameters
    ----------
    encoder, head, discriminator : torch.nn.Module or None
        ``None`` builds MLPs: encoder ``hidden_layer_sizes`` (used for both M_s and
        M_t), linear head, discriminator ``discriminator_hidden`` -> 1 logit.
    hidden_layer_sizes : tuple of int, default=(64, 64)
    discriminator_hidden : tuple of int, default=(64,)
    lambda_ : float, default=1.0
        Weight of the adversarial loss of M_t; 0 leaves M_t = M_s (source-only) unless
        labelled target rows fine-tune it.
    pretrain : float, default=0.5
        Fraction of the epochs (of training progress) spent in stage 1, in (0, 1).
    standardize, init
        Input scaling and layer initialisation; see
        :class:`~transferkit.nn.adaptation.DeepAdaptation`.
    epochs : int, default=100
        Both stages together.
    batch_size : int or None, default=64
    lr : float, default=1e-3
    weight_decay : float, default=0.0
    optimizer : str, default="adam"
        Separate optimisers for M_s + C, M_t and D.
    device : str, default="auto"
    verbose : bool, default=False
    trainer_params : dict or None
    reinit : bool, default=True
    random_state : int or None

    Attributes
    ----------
    networks_ : torch.nn.ModuleDict
        ``encoder`` (M_t, used for prediction), ``source_encoder`` (M_s), ``head`` and
        ``discriminator``.
    history_ : dict
        Per-epoch ``loss``, ``task``, ``discriminator`` and ``adversarial`` terms
        (stage-2 terms are 0 during stage 1).

    Examples
    --------
    >>> from transferkit.datasets import make_two_moons_shift
    >>> from transferkit.feature.adda import ADDA
    >>> Xs, ys, Xt, yt = make_two_moons_shift()
    >>> m = ADDA(epochs=50, random_state=0).fit(Xs, ys, Xt)
    >>> m.predict(Xt).shape
    (100,)
    """

    def __init__(self, encoder: nn.Module | None = None, head: nn.Module | None = None,
                 discriminator: nn.Module | None = None,
                 hidden_layer_sizes: Sequence[int] = (64, 64),
                 discriminator_hidden: Sequence[int] = (64,), lambda_: float = 1.0,
                 pretrain: float = 0.5, standardize: bool = True,
                 init: str = "torch", epochs: int = 100,
                 batch_size: int | None = 64,
                 lr: float = 1e-3, weight_decay: float = 0.0, optimizer: str = "adam",
                 device: str = "auto", verbose: bool = False,
                 trainer_params: dict | None = None, reinit: bool = True,
                 random_state: Any = None) -> None:
        self.encoder = encoder
        self.head = head
        self.discriminator = discriminator
        self.hidden_layer_sizes = hidden_layer_sizes
        self.discriminator_hidden = discriminator_hidden
        self.lambda_ = lambda_
        self.pretrain = pretrain
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
        nets["source_encoder"] = copy.deepcopy(nets["encoder"])
        nets["discriminator"] = (mlp(width, self.discriminator_hidden, 1)
                                 if self.discriminator is None else self._copy(self.discriminator))

    def _make_task(self, nets: nn.ModuleDict, loss: SupervisedLoss) -> _ADDATask:
        if not 0 < self.pretrain < 1:
            raise ParameterError(f"pretrain must be in (0, 1); got {self.pretrain!r}.")
        check_positive("lambda_", self.lambda_)
        return _ADDATask(nets, loss, self.lambda_, float(self.pretrain),
                         getattr(self, "_target_labels", True))

    def _fit(self, data, **fit_params: Any) -> None:
        self._target_labels = bool(np.any(data.labeled))
        super()._fit(data, **fit_params)

    def transform(self, X: Any, domain: str = "target") -> np.ndarray:
        """Features of ``X`` from the target encoder M_t (or M_s for ``domain="source"``)."""
        check_choice("domain", domain, ("target", "source"))
        X = self._check_predict_X(X)
        if domain == "target":
            return self._outputs(X, "encoder")
        nets = self.networks_
        with torch.no_grad():
            z = nets["source_encoder"](torch.as_tensor(self._scale(X), dtype=torch.float32))
        return z.reshape(len(X), -1).numpy()
