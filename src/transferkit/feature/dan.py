"""Deep adaptation network (DAN): multi-kernel MMD between learned features."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .._validation import check_choice
from ..errors import ParameterError
from ..nn.adaptation import DeepAdaptation, SupervisedLoss, encode_batch
from ..nn.losses import mmd_kernel_spec, mmd_loss, mmd_loss_pooled
from ..registry import register


class _DANTask:
    def __init__(self, nets: nn.ModuleDict, loss: SupervisedLoss, weight: float,
                 kernel_mul: float, kernel_num: int, bandwidth: Any, estimator: str) -> None:
        self.module, self.nets, self.sup, self.weight = nets, nets, loss, float(weight)
        self.kw = {"kernel_mul": kernel_mul, "kernel_num": kernel_num, "bandwidth": bandwidth,
                   "estimator": estimator}
        self.spec: tuple | None = None

    def loss(self, batch: dict, progress: float) -> dict[str, torch.Tensor]:
        z, n, _, task = encode_batch(batch, self.nets, self.sup)
        if self.kw["estimator"] == "linear":
            mmd = mmd_loss(z[:n], z[n:], **self.kw)
        else:  # the pooled form skips re-concatenating the two domains
            if self.spec is None:  # the kernel family, resolved once for the whole fit
                self.spec = mmd_kernel_spec(self.kw["kernel_mul"], self.kw["kernel_num"],
                                         self.kw["bandwidth"], z.dtype, z.device)
            mmd = mmd_loss_pooled(z, n, **self.kw, spec=self.spec)
        return {"loss": torch.add(task, mmd, alpha=self.weight), "task": task, "mmd": mmd}


@register(family="feature", settings=("unsupervised", "semi-supervised", "supervised"),
          backend="torch")
class DAN(DeepAdaptation):
    """Deep adaptation network: multi-kernel MMD of learned features (Long et al., 2015).

    Setting: unsupervised domain adaptation (labelled target rows, when ``yt`` has some,
    join the supervised loss). An encoder G_f and a task head G_y are trained on

        L = L_y(G_y(G_f(x_s)), y_s) + λ · MMD²_k(G_f(x_s), G_f(x_t))

    with the multi-kernel maximum mean discrepancy of each minibatch,

        MMD²_k(P, Q) = E k(s, s') + E k(t, t') − 2 E k(s, t),
        k(a, b) = Σ_{i=1..m} exp(−‖a − b‖² / γ_i),  γ_i = γ₀ · r^(i − ⌊m/2⌋),

    γ₀ the mean pairwise squared distance of the pooled minibatch features, as in DAN's
    reference code (a geometric family of ``kernel_num`` = m bandwidths with ratio
    ``kernel_mul`` = r). The
    encoder learns features whose kernel mean embeddings match across domains while the
    task loss keeps them predictive. Works for classification and regression.

    The paper adapts the last task-specific layers of a CNN and learns the kernel weights
    β by a max step; here the encoder output is the adapted representation and the m
    kernels have equal weights, as in most re-implementations.

    Parameters
    ----------
    encoder, head : torch.nn.Module or None
        ``None`` builds an MLP encoder with ``hidden_layer_sizes`` and a linear head.
    hidden_layer_sizes : tuple of int, default=(64, 64)
    lambda_ : float, default=1.0
        Weight of the MMD term; 0 trains the encoder as source-only.
    kernel_mul : float, default=2.0
        Ratio between consecutive Gaussian bandwidths.
    kernel_num : int, default=5
        Number of Gaussian kernels.
    bandwidth : float, "mean", "median" or None, default="mean"
        Centre bandwidth γ₀: a number, or from each pooled batch (detached) the mean
        pairwise squared distance (``"mean"``, as DAN's reference code: one reduction a
        step) or the median (``None`` or ``"median"``, the median heuristic: a sort a
        step, the same accuracy on the seed's Two Moons and about 10% slower).
    mmd_estimator : {"unbiased", "linear", "biased"}, default="unbiased"
        ``"unbiased"``: the quadratic-time U-statistic; ``"linear"``: the linear-time
        estimate of the paper (eq. 5), cheaper on large batches but noisier.
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
        Further :class:`~transferkit.nn.Trainer` options.
    reinit : bool, default=True
    random_state : int or None

    Attributes
    ----------
    networks_ : torch.nn.ModuleDict
        ``encoder`` and ``head``.
    history_ : dict
        Per-epoch ``loss``, ``task`` and ``mmd`` terms.

    References
    ----------
    M. Long, Y. Cao, J. Wang and M. I. Jordan, "Learning Transferable Features with Deep
    Adaptation Networks", ICML 2015, PMLR 37, pp. 97-105.

    Examples
    --------
    >>> import transferkit as tk
    >>> from transferkit.feature.dan import DAN
    >>> Xs, ys, Xt, yt = tk.datasets.make_two_moons_shift()
    >>> m = DAN(epochs=50, random_state=0).fit(Xs, ys, Xt)
    >>> m.predict(Xt).shape
    (100,)
    """

    def __init__(self, encoder: nn.Module | None = None, head: nn.Module | None = None,
                 hidden_layer_sizes: Sequence[int] = (64, 64), lambda_: float = 1.0,
                 kernel_mul: float = 2.0, kernel_num: int = 5,
                 bandwidth: float | str | None = "mean",
                 mmd_estimator: str = "unbiased", standardize: bool = True,
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
        self.kernel_mul = kernel_mul
        self.kernel_num = kernel_num
        self.bandwidth = bandwidth
        self.mmd_estimator = mmd_estimator
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

    def _make_task(self, nets: nn.ModuleDict, loss: SupervisedLoss) -> _DANTask:
        if isinstance(self.bandwidth, str):
            check_choice("bandwidth", self.bandwidth, ("mean", "median"))
        check_choice("mmd_estimator", self.mmd_estimator, ("unbiased", "linear", "biased"))
        if int(self.kernel_num) < 1 or float(self.kernel_mul) <= 0:
            raise ParameterError("kernel_num must be >= 1 and kernel_mul > 0.")
        return _DANTask(nets, loss, self.lambda_, float(self.kernel_mul), int(self.kernel_num),
                        self.bandwidth, self.mmd_estimator)
