"""Maximum classifier discrepancy (MCD)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .._validation import check_positive
from ..nn.adaptation import DeepAdaptation, SupervisedLoss, labelled_target
from ..registry import register
from ._adversarial import discrepancy, head_like


class _MCDTask:
    def __init__(self, nets: nn.ModuleDict, loss: SupervisedLoss, weight: float,
                 num_k: int) -> None:
        self.module, self.nets, self.sup = nets, nets, loss
        self.weight, self.num_k = weight, num_k

    def configure_optimizers(self, make) -> dict:
        heads = list(self.nets["head"].parameters()) + list(self.nets["head2"].parameters())
        return {"encoder": make(self.nets["encoder"].parameters()), "heads": make(heads)}

    def _supervised(self, batch: dict, z: torch.Tensor, n: int) -> torch.Tensor:
        """Task loss of both heads on the source and the labelled target rows."""
        ys = batch["source"][1]
        total = z.sum() * 0.0
        for name in ("head", "head2"):
            total = total + self.sup(self.nets[name](z[:n]), ys) + labelled_target(
                batch, {"head": self.nets[name]}, z[n:], self.sup)
        return total

    def adaptation(self, z_t: torch.Tensor) -> torch.Tensor:
        """Discrepancy d(F1(z_t), F2(z_t)) between the heads on target features."""
        return discrepancy(self.nets["head"](z_t), self.nets["head2"](z_t), self.sup)

    def training_step(self, batch: dict, progress: float, optimizers: dict) -> dict:
        enc, heads = optimizers["encoder"], optimizers["heads"]
        xs, xt = batch["source"][0], batch["target"][0]
        n = len(xs)
        x = torch.cat([xs, xt])
        # Step A: encoder and both heads learn the task.
        task = self._supervised(batch, self.nets["encoder"](x), n)
        enc.zero_grad(set_to_none=True)
        heads.zero_grad(set_to_none=True)
        task.backward()
        enc.step()
        heads.step()
        if self.weight == 0:  # source-only: no discrepancy steps at all
            return {"loss": task.detach(), "task": task.detach(),
                    "discrepancy": task.detach() * 0.0}
        # Step B: encoder fixed, heads stay accurate and disagree on the target.
        with torch.no_grad():
            z = self.nets["encoder"](x)
        loss_b = self._supervised(batch, z, n) - self.weight * self.adaptation(z[n:])
        heads.zero_grad(set_to_none=True)
        loss_b.backward()
        heads.step()
        # Step C: heads fixed, the encoder removes their disagreement, num_k times.
        for _ in range(self.num_k):
            disc = self.adaptation(self.nets["encoder"](xt))
            enc.zero_grad(set_to_none=True)
            (self.weight * disc).backward()
            enc.step()
        return {"loss": task.detach(), "task": task.detach(), "discrepancy": disc.detach()}


@register(family="feature", settings=("unsupervised", "semi-supervised", "supervised"),
          backend="torch")
class MCD(DeepAdaptation):
    """Maximum classifier discrepancy between two heads on one encoder (Saito et al., 2018).

    Saito, Watanabe, Ushiku & Harada, "Maximum Classifier Discrepancy for Unsupervised
    Domain Adaptation", CVPR 2018. Setting: unsupervised domain adaptation (labelled
    target rows, when ``yt`` has some, join the task loss of both heads). An encoder G
    feeds two heads F1, F2; with the discrepancy

        d(p1, p2) = (1/K) Σ_k |p1_k − p2_k|

    between their class probabilities on target samples, every minibatch runs
    A) min_{G,F1,F2} L_y(F1∘G) + L_y(F2∘G) on the source;
    B) min_{F1,F2} L_y(F1∘G) + L_y(F2∘G) − λ·E_t d(F1(G(x)), F2(G(x))) (G fixed): the
    heads detect target samples outside the source support;
    C) min_G λ·E_t d(F1(G(x)), F2(G(x))) (heads fixed), repeated ``num_k`` times: the
    encoder moves target features inside it.
    Regression uses the L1 distance of the two heads' standardised predictions,
    |F1(G(x)) − F2(G(x))|. Predictions average the two heads' outputs (logits for
    classification). λ = 0 skips steps B and C (source-only).

    Parameters
    ----------
    encoder, head : torch.nn.Module or None
        ``None`` builds an MLP encoder with ``hidden_layer_sizes`` and a linear head.
        The second head is a freshly initialised copy of the first.
    hidden_layer_sizes : tuple of int, default=(64, 64)
    lambda_ : float, default=1.0
        Weight of the discrepancy in steps B and C; 0 trains source-only.
    num_k : int, default=4
        Encoder updates (step C) per minibatch.
    standardize, init
        Input scaling and layer initialisation; see
        :class:`~transferkit.nn.adaptation.DeepAdaptation`.
    epochs : int, default=100
    batch_size : int or None, default=64
    lr : float, default=1e-3
    weight_decay : float, default=0.0
    optimizer : str, default="adam"
        One optimiser for the encoder, one for the two heads.
    device : str, default="auto"
    verbose : bool, default=False
    trainer_params : dict or None
    reinit : bool, default=True
    random_state : int or None

    Attributes
    ----------
    networks_ : torch.nn.ModuleDict
        ``encoder``, ``head`` (F1) and ``head2`` (F2).
    history_ : dict
        Per-epoch ``loss`` (= ``task``, step A) and ``discrepancy`` (last step C).

    Examples
    --------
    >>> from transferkit.datasets import make_two_moons_shift
    >>> from transferkit.feature.mcd import MCD
    >>> Xs, ys, Xt, yt = make_two_moons_shift()
    >>> m = MCD(epochs=50, random_state=0).fit(Xs, ys, Xt)
    >>> m.predict(Xt).shape
    (100,)
    """

    def __init__(self, encoder: nn.Module | None = None, head: nn.Module | None = None,
                 hidden_layer_sizes: Sequence[int] = (64, 64), lambda_: float = 1.0,
                 num_k: int = 4, standardize: bool = True,
                 init: str = "torch", epochs: int = 100,
                 batch_size: int | None = 64,
                 lr: float = 1e-3, weight_decay: float = 0.0, optimizer: str = "adam",
                 device: str = "auto", verbose: bool = False,
                 trainer_params: dict | None = None, reinit: bool = True,
                 random_state: Any = None) -> None:
        self.encoder = encoder
        self.head = head
        self.hidden_layer_sizes = hidden_layer_sizes
        self.lambda_ = lambda_
        self.num_k = num_k
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
        nets["head2"] = head_like(nets["head"])

    def _make_task(self, nets: nn.ModuleDict, loss: SupervisedLoss) -> _MCDTask:
        check_positive("lambda_", self.lambda_)
        check_positive("num_k", self.num_k, strict=True)
        return _MCDTask(nets, loss, self.lambda_, int(self.num_k))

    def _outputs(self, X: np.ndarray, part: str = "head") -> np.ndarray:
        if part != "head":
            return super()._outputs(X, part)
        return 0.5 * (super()._outputs(X, "head") + super()._outputs(X, "head2"))
