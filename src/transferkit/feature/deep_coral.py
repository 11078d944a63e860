"""Deep CORAL: correlation alignment of learned features (Sun & Saenko, 2016)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..nn.adaptation import DeepAdaptation, SupervisedLoss, encode_batch
from ..nn.losses import coral_loss_pooled
from ..registry import register


class _DeepCORALTask:
    def __init__(self, nets: nn.ModuleDict, loss: SupervisedLoss, weight: float) -> None:
        self.module, self.nets, self.sup, self.weight = nets, nets, loss, float(weight)

    def loss(self, batch: dict, progress: float) -> dict[str, torch.Tensor]:
        z, n, _, task = encode_batch(batch, self.nets, self.sup)
        coral = coral_loss_pooled(z, n)
        return {"loss": torch.add(task, coral, alpha=self.weight), "task": task, "coral": coral}


@register(family="feature", settings=("unsupervised", "semi-supervised", "supervised"),
          backend="torch")
class DeepCORAL(DeepAdaptation):
    """Deep CORAL: align the covariances of source and target features (Sun & Saenko, 2016).

    Setting: unsupervised domain adaptation (labelled target rows, when ``yt`` has some,
    join the supervised loss). An encoder G_f and a task head G_y are trained on

        L = L_y(G_y(G_f(x_s)), y_s) + λ · ‖C_S − C_T‖²_F / (4 d²)

    where C_S and C_T are the (unbiased) covariance matrices of the d-dimensional encoder
    features of the source and target rows of each minibatch. The CORAL term is
    differentiable, so the encoder learns features whose second-order statistics match
    across domains while the task loss keeps them predictive (without it the trivial
    solution of collapsed features would minimise the CORAL term). Works for
    classification and regression.

    Parameters
    ----------
    encoder, head : torch.nn.Module or None
        ``None`` builds an MLP encoder with ``hidden_layer_sizes`` and a linear head.
    hidden_layer_sizes : tuple of int, default=(64, 64)
    lambda_ : float, default=1.0
        Weight of the CORAL term; 0 trains the encoder as source-only.
    standardize, init
        Input scaling and layer initialisation; see
        :class:`~transferkit.nn.adaptation.DeepAdaptation`.
    epochs : int, default=100
    batch_size : int or None, default=64
        Per domain; covariances are estimated on each minibatch.
    lr : float, default=1e-3
    weight_decay : float, default=0.0
    optimizer : str, default="adam"
    device : str, default="auto"
    verbose : bool, default=False
    trainer_params : dict or None
        Further :class:`~transferkit.nn.Trainer` options.
    reinit : bool, default=True
        Re-initialise given modules from ``random_state``.
    random_state : int or None

    Attributes
    ----------
    networks_ : torch.nn.ModuleDict
        ``encoder`` and ``head``.
    history_ : dict
        Per-epoch ``loss``, ``task`` and ``coral`` terms.

    References
    ----------
    B. Sun and K. Saenko, "Deep CORAL: Correlation Alignment for Deep Domain
    Adaptation", ECCV 2016 Workshops (TASK-CV), LNCS 9915, pp. 443-450.

    Examples
    --------
    >>> import transferkit as tk
    >>> from transferkit.feature.deep_coral import DeepCORAL
    >>> Xs, ys, Xt, yt = tk.datasets.make_two_moons_shift()
    >>> m = DeepCORAL(epochs=50, random_state=0).fit(Xs, ys, Xt)
    >>> m.predict(Xt).shape
    (100,)
    """

    def __init__(self, encoder: nn.Module | None = None, head: nn.Module | None = None,
                 hidden_layer_sizes: Sequence[int] = (64, 64), lambda_: float = 1.0,
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

    def _make_task(self, nets: nn.ModuleDict, loss: SupervisedLoss) -> _DeepCORALTask:
        return _DeepCORALTask(nets, loss, self.lambda_)
