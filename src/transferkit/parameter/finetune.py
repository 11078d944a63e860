"""Fine-tuning: reuse a network trained on the source (or a pretrained backbone) on the target."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .._random import seed_from
from .._validation import CLASSIFICATION, DomainData, check_choice, check_X, check_y
from ..base import TransferEstimator
from ..errors import InputError, ParameterError
from ..nn.adaptation import SupervisedLoss, class_output
from ..nn.estimator import _reset_parameters, standard_scaling
from ..nn.trainer import SCHEDULES, Trainer, resolve_device
from ..registry import register

STRATEGIES = ("feature_extraction", "full", "partial")


def split_blocks(backbone: nn.Module) -> list[nn.Module]:
    """The backbone's blocks from input to output: its ``blocks`` attribute, the children
    of an ``nn.Sequential``, or the whole module as one block."""
    blocks = getattr(backbone, "blocks", None)
    if blocks is not None and not isinstance(backbone, nn.Sequential):
        return list(blocks)
    if isinstance(backbone, nn.Sequential):
        return list(backbone.children())
    return [backbone]


class _Backbone(nn.Module):
    """Blocks run in order; blocks below ``first_trainable`` run without autograd (and in
    eval mode, so frozen batch-norm statistics stay the pretrained ones). With
    ``freeze_bn``, the batch-norm layers of the trainable blocks run in eval mode too: they
    normalise with, and keep, their running statistics while their scale and shift learn."""

    def __init__(self, blocks: Sequence[nn.Module], preprocess: Callable | None = None,
                 flatten: bool = True) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.preprocess = preprocess
        self.flatten = flatten
        self.first_trainable = 0
        self.freeze_bn = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.preprocess is not None:
            x = self.preprocess(x)
        frozen = self.blocks[:self.first_trainable]
        if len(frozen):
            with torch.no_grad():
                for b in frozen:
                    b.eval()
                    x = b(x)
        trainable = self.blocks[self.first_trainable:]
        if self.freeze_bn and self.training:
            for m in trainable.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        for b in trainable:
            x = b(x)
        return x.reshape(len(x), -1) if self.flatten else x


class _FineTuneTask:
    """Supervised loss on the target, L2-SP penalty, and the unfreezing schedule."""

    def __init__(self, backbone: _Backbone, head: nn.Module, loss: SupervisedLoss,
                 first_trainable: int, gradual: bool, l2_sp: float, l2_head: float,
                 lr: float, layer_lr_decay: float | None, features_only: bool) -> None:
        self.module = nn.ModuleDict({"backbone": backbone, "head": head})
        self.backbone, self.head, self.sup = backbone, head, loss
        self.first, self.gradual = first_trainable, gradual
        self.l2_sp, self.l2_head = float(l2_sp), float(l2_head)
        self.lr, self.decay, self.features_only = lr, layer_lr_decay, features_only
        # L2-SP pulls the weights toward where fine-tuning started: the source solution.
        self.start = [p.detach().clone() for p in backbone.parameters()] if l2_sp else []

    def configure_optimizers(self, make):
        groups = [{"params": list(self.head.parameters()), "lr": self.lr}]
        if not self.features_only:
            n = len(self.backbone.blocks)
            for i, block in enumerate(self.backbone.blocks):
                if i < self.first:
                    continue
                # ULMFiT's discriminative rates: each block below the head's lr / decay^depth.
                lr = self.lr / (self.decay ** (n - i)) if self.decay else self.lr
                params = [p for p in block.parameters() if p.requires_grad]
                if params:
                    groups.append({"params": params, "lr": lr})
        return {"main": make(groups)}

    def unfrozen_from(self, progress: float) -> int:
        """First trainable block at this point of training (gradual unfreezing: one more
        block from the top at each of n + 1 equal stages, the head alone first)."""
        n = len(self.backbone.blocks)
        if not self.gradual:
            return self.first
        stage = int(progress * (n - self.first + 1))
        return max(self.first, n - stage)

    def loss(self, batch: tuple[torch.Tensor, ...], progress: float) -> dict[str, torch.Tensor]:
        x, y = batch
        if self.features_only:  # features were computed once, before training
            z = x
        else:
            self.backbone.first_trainable = self.unfrozen_from(progress)
            z = self.backbone(x)
        task = self.sup(self.head(z), y)
        terms = {"task": task}
        total = task
        if self.l2_sp:
            sp = sum(((p - p0) ** 2).sum() for p, p0 in
                     zip(self.backbone.parameters(), self.start, strict=True))
            terms["l2_sp"] = sp
            total = total + 0.5 * self.l2_sp * sp
        if self.l2_head:
            total = total + 0.5 * self.l2_head * sum((p ** 2).sum()
                                                     for p in self.head.parameters())
        terms["loss"] = total
        return terms


class _HeadTask:
    """Backbone plus a head trained on the source (stage 1)."""

    def __init__(self, backbone: nn.Module, head: nn.Module, loss: SupervisedLoss) -> None:
        self.module = nn.ModuleDict({"backbone": backbone, "head": head})
        self.backbone, self.head, self.sup = backbone, head, loss

    def loss(self, batch, progress):
        x, y = batch
        return {"loss": self.sup(self.head(self.backbone(x)), y)}


@register(family="parameter", settings=("semi-supervised", "supervised"), backend="torch")
class FineTune(TransferEstimator):
    """Fine-tuning: train on the source, then continue on the few labelled target rows.

    Setting: parameter transfer (パラメータ転移) with a labelled target sample. A backbone
    holds the source knowledge: an MLP trained here on (Xs, ys) with a source head
    (``backbone=None``), or a given pretrained module (an ImageNet CNN, a sentence
    encoder). A new head sized from the target labels is then trained on the labelled
    target rows together with as much of the backbone as ``strategy`` allows:

    - ``"feature_extraction"``: the backbone is frozen and only the head learns (the
      backbone's features are computed once);
    - ``"full"``: every layer learns;
    - ``"partial"``: the first ``n_frozen`` blocks stay frozen, the rest learn.

    Options from the fine-tuning literature: discriminative learning rates
    (``layer_lr_decay``: block i of n learns at lr / decay^(n − i), ULMFiT's 2.6), gradual
    unfreezing (``gradual_unfreezing``: the head alone first, then one more block from the
    top at each of n + 1 equal stages of training), L2-SP (``l2_sp``: the penalty
    α/2 ‖w − w⁰‖² toward the starting weights w⁰, ``l2_head``: β/2 ‖w_head‖²), which fights
    catastrophic forgetting on small targets, and LP-FT (``linear_probe_epochs``: the new
    head is first trained alone on the frozen backbone's features, as in
    ``"feature_extraction"``, and fine-tuning starts from it, so the first updates of the
    backbone follow a trained head rather than a random one, which would distort the
    pretrained features).

    Parameters
    ----------
    backbone : torch.nn.Module, "efficientnet-lite0" or None, default=None
        ``None`` builds an MLP (``hidden_layer_sizes``, one block per layer) and trains it
        on the source first. A module is used as given (its pretrained weights are the
        starting point); its blocks are its ``blocks`` attribute, the children of an
        ``nn.Sequential``, or the whole module as one block. A name loads that pretrained
        image backbone from :mod:`transferkit.pretrained` (rows are flattened images).
    hidden_layer_sizes : tuple of int, default=(64, 64)
    strategy : {"full", "partial", "feature_extraction"}, default="full"
    n_frozen : int, default=1
        Blocks frozen from the bottom with ``strategy="partial"``.
    layer_lr_decay : float or None, default=None
    gradual_unfreezing : bool, default=False
    l2_sp, l2_head : float, default=0.0
    linear_probe_epochs : int, default=0
        Epochs of linear probing (the head alone, on features computed once) before
        fine-tuning (LP-FT); 0 starts fine-tuning from a freshly initialised head.
    linear_probe_lr : float or None, default=None
        Learning rate of the probe (None: ``lr``), so that fine-tuning can take the small
        rate pretrained weights want while the probe converges at a larger one.
    freeze_batchnorm : bool, default=False
        Batch-norm layers keep normalising with their (pretrained) running statistics
        during fine-tuning, and do not update them; their scale and shift still learn.
        Small targets otherwise replace the source's statistics by those of a few images,
        which moves every feature the head was trained on.
    source_epochs : int or "auto", default="auto"
        Epochs of source training; "auto" trains on the source only when the backbone is
        built here (a given backbone is already trained).
    source_head : torch.nn.Module or None
        With a given backbone, its original head (e.g. the ImageNet classifier), so that
        forgetting can be measured.
    input_shape : tuple of int or None
        Rows are reshaped to this shape before the backbone (flattened images).
    standardize : bool or "auto", default="auto"
        Scale inputs by the pooled source+target mean and std; "auto" does it for the MLP
        built here only (a pretrained backbone has its own preprocessing).
    epochs, batch_size, lr, weight_decay, optimizer, device, verbose
        Fine-tuning settings, passed to the :class:`~transferkit.nn.Trainer` (source
        training uses the same ones).
    lr_schedule : {None, "cosine", "linear"}, default=None
        Decay of every learning rate over each training stage (see
        :class:`~transferkit.nn.Trainer`); with discriminative rates the blocks decay
        together. From ImageNet to 2000 Fashion-MNIST images, cosine decay took partial
        fine-tuning from below the frozen features to 1.4–3.8 points above them on three
        seeds (``docs/benchmarks.md``); a good first choice for a pretrained backbone.
    early_stopping : int or None, default=None
        Patience in epochs on the loss of ``validation_fraction`` of the labelled target
        rows held out (the best epoch's weights are kept).
    validation_fraction : float, default=0.2
    trainer_params : dict or None
    random_state : int or None

    Attributes
    ----------
    backbone_, head_ : torch.nn.Module
        The fine-tuned backbone (an ``nn.Sequential`` of its blocks) and the target head.
    preprocess_ : callable or None
        The pretrained backbone's input preprocessing (None for the MLP built here).
    source_head_ : torch.nn.Module or None
    history_, source_history_, probe_history_ : dict
        Per-epoch loss terms of fine-tuning, of source training and of linear probing.
    source_score_before_, source_score_after_, forgetting_ : float
        With ``fit(..., source_validation=(X, y))`` and a source head: the source score
        before and after fine-tuning, and their difference (catastrophic forgetting).

    References
    ----------
    J. Yosinski, J. Clune, Y. Bengio and H. Lipson, "How transferable are features in
    deep neural networks?", NeurIPS 2014. J. Howard and S. Ruder, "Universal Language
    Model Fine-tuning for Text Classification" (ULMFiT), ACL 2018. X. Li, Y. Grandvalet and
    F. Davoine, "Explicit Inductive Bias for Transfer Learning with Convolutional
    Networks" (L2-SP), ICML 2018. A. Kumar, A. Raghunathan, R. Jones, T. Ma and P. Liang,
    "Fine-Tuning can Distort Pretrained Features and Underperform Out-of-Distribution"
    (LP-FT), ICLR 2022.

    Examples
    --------
    >>> import numpy as np, transferkit as tk
    >>> Xs, ys, Xt, yt = tk.datasets.make_two_moons_shift()
    >>> few = np.full(len(yt), np.nan); few[:10] = yt[:10]
    >>> m = tk.parameter.FineTune(epochs=50, random_state=0).fit(Xs, ys, Xt, few)
    >>> m.predict(Xt).shape
    (100,)
    """

    _needs_target_labels = True

    def __init__(self, backbone: nn.Module | str | None = None,
                 hidden_layer_sizes: Sequence[int] = (64, 64), strategy: str = "full",
                 n_frozen: int = 1, layer_lr_decay: float | None = None,
                 gradual_unfreezing: bool = False, l2_sp: float = 0.0, l2_head: float = 0.0,
                 linear_probe_epochs: int = 0, linear_probe_lr: float | None = None,
                 freeze_batchnorm: bool = False,
                 source_epochs: int | str = "auto", source_head: nn.Module | None = None,
                 input_shape: Sequence[int] | None = None, standardize: bool | str = "auto",
                 epochs: int = 100, batch_size: int | None = 32, lr: float = 1e-3,
                 weight_decay: float = 0.0, optimizer: str = "adam",
                 lr_schedule: str | None = None, early_stopping: int | None = None,
                 validation_fraction: float = 0.2,
                 device: str = "auto", verbose: bool = False,
                 trainer_params: dict | None = None, random_state: Any = None) -> None:
        self.backbone = backbone
        self.hidden_layer_sizes = hidden_layer_sizes
        self.strategy = strategy
        self.n_frozen = n_frozen
        self.layer_lr_decay = layer_lr_decay
        self.gradual_unfreezing = gradual_unfreezing
        self.l2_sp = l2_sp
        self.l2_head = l2_head
        self.linear_probe_epochs = linear_probe_epochs
        self.linear_probe_lr = linear_probe_lr
        self.freeze_batchnorm = freeze_batchnorm
        self.source_epochs = source_epochs
        self.source_head = source_head
        self.input_shape = input_shape
        self.standardize = standardize
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.lr_schedule = lr_schedule
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.device = device
        self.verbose = verbose
        self.trainer_params = trainer_params
        self.random_state = random_state

    _backend = "torch"

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> None:
        check_choice("strategy", self.strategy, STRATEGIES)
        if int(self.n_frozen) < 0:
            raise ParameterError(f"n_frozen must be >= 0; got {self.n_frozen}.")
        if self.layer_lr_decay is not None and float(self.layer_lr_decay) < 1:
            raise ParameterError("layer_lr_decay must be >= 1 (lower blocks learn slower; "
                                 f"ULMFiT uses 2.6); got {self.layer_lr_decay}.")
        if self.l2_sp < 0 or self.l2_head < 0:
            raise ParameterError("l2_sp and l2_head must be >= 0.")
        if int(self.linear_probe_epochs) < 0:
            raise ParameterError("linear_probe_epochs must be >= 0 (0: no linear probing "
                                 f"before fine-tuning); got {self.linear_probe_epochs}.")
        if self.linear_probe_lr is not None and not float(self.linear_probe_lr) > 0:
            raise ParameterError(f"linear_probe_lr must be > 0 or None (the fine-tuning lr); "
                                 f"got {self.linear_probe_lr}.")
        if int(self.linear_probe_epochs) and self.strategy == "feature_extraction":
            raise ParameterError("linear_probe_epochs precedes fine-tuning; with strategy="
                                 "'feature_extraction' the head already learns alone (set "
                                 "epochs), or choose strategy 'full' or 'partial'.")
        if self.lr_schedule not in SCHEDULES:
            raise ParameterError(f"lr_schedule must be None (constant rates), 'cosine' or "
                                 f"'linear'; got {self.lr_schedule!r}.")
        # Checked here, before any backbone runs: a pretrained one's frozen blocks may take
        # minutes before the first Trainer is built.
        twice = sorted(set(self._own_trainer_args(0, 1)) & set(self.trainer_params or {}))
        if twice:
            raise ParameterError(f"trainer_params sets {twice}, which FineTune sets itself; "
                                 "pass them as FineTune's own parameters.")
        if not 0 < self.validation_fraction < 1:
            raise ParameterError("validation_fraction must be in (0, 1).")
        if self.source_epochs != "auto" and int(self.source_epochs) < 0:
            raise ParameterError("source_epochs must be 'auto' or >= 0.")

    def _own_trainer_args(self, seed: int, epochs: int) -> dict[str, Any]:
        """The Trainer arguments FineTune sets from its own parameters (trainer_params
        must not repeat them: :meth:`_check_params`)."""
        own = {"epochs": epochs, "batch_size": self.batch_size, "optimizer": self.optimizer,
               "lr": self.lr, "weight_decay": self.weight_decay, "device": self.device,
               "progress": bool(self.verbose), "random_state": seed}
        if self.lr_schedule is not None:
            own["lr_schedule"] = self.lr_schedule
        return own

    def _trainer(self, seed: int, epochs: int, **extra: Any) -> Trainer:
        return Trainer(**self._own_trainer_args(seed, epochs),
                       **{**(self.trainer_params or {}), **extra})

    # ------------------------------------------------------------------ networks
    def _make_backbone(self, n_in: int) -> tuple[_Backbone, bool]:
        """The backbone and whether it was built here (untrained)."""
        if self.backbone is None:
            from ..nn.networks import _ACTIVATIONS

            blocks, width = [], n_in
            for h in self.hidden_layer_sizes:
                blocks.append(nn.Sequential(nn.Linear(width, int(h)), _ACTIVATIONS["relu"]()))
                width = int(h)
            if not blocks:
                raise ParameterError("hidden_layer_sizes must name at least one layer.")
            return _Backbone(blocks), True
        if isinstance(self.backbone, str):
            from ..pretrained import ImageEncoder

            module, preprocess, _, blocks = ImageEncoder(self.backbone).backbone()
            return _Backbone(copy.deepcopy(blocks) if blocks else [copy.deepcopy(module)],
                             preprocess), False
        if not isinstance(self.backbone, nn.Module):
            raise ParameterError("backbone must be a torch.nn.Module, a pretrained model "
                                 f"name or None; got {type(self.backbone).__name__}.")
        return _Backbone([copy.deepcopy(b) for b in split_blocks(self.backbone)]), False

    def _tensor(self, X: np.ndarray) -> torch.Tensor:
        X = np.asarray(X, dtype=np.float64)
        if self._scaled:
            X = (X - self.x_mean_) / self.x_scale_
        t = torch.as_tensor(X, dtype=torch.float32)
        if self.input_shape is not None:
            t = t.reshape(len(t), *self.input_shape)
        return t

    def _kind_and_targets(self, data: DomainData, y: np.ndarray, fit_scale: bool):
        if data.task == CLASSIFICATION:
            return class_output(len(data.classes)), y.astype(np.float32)
        if fit_scale:
            self.y_mean_, self.y_scale_ = float(y.mean()), float(y.std()) or 1.0
        return ("regression", 1), ((y - self.y_mean_) / self.y_scale_).astype(np.float32)

    @staticmethod
    def _width(backbone: nn.Module, x: torch.Tensor) -> int:
        with torch.no_grad():
            backbone.eval()
            return int(backbone(x[:2]).shape[1])

    # ------------------------------------------------------------------ fit
    def _fit(self, data: DomainData, source_validation: Any = None, **fit_params: Any) -> None:
        self._check_params()
        if fit_params:
            raise InputError(f"unknown fit parameters {sorted(fit_params)}; FineTune takes "
                             "source_validation=(X, y).")
        seed = seed_from(self.random_state)
        self._scaled = (self.backbone is None) if self.standardize == "auto" \
            else bool(self.standardize)
        self.x_mean_, self.x_scale_ = standard_scaling(np.vstack([data.Xs, data.Xt]))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            backbone, built = self._make_backbone(data.Xs.shape[1])
        Xs = self._tensor(data.Xs)
        width = self._width(backbone, Xs)

        # Stage 1: the source task (the knowledge to transfer).
        source_epochs = (self.epochs if built else 0) if self.source_epochs == "auto" \
            else int(self.source_epochs)
        if built and source_epochs == 0:
            raise ParameterError("a backbone built here must learn the source first; set "
                                 "source_epochs > 0 or pass a pretrained backbone.")
        (kind_s, n_out_s), ys = self._kind_and_targets(data, data.ys, fit_scale=True)
        self.source_head_ = None if self.source_head is None else copy.deepcopy(self.source_head)
        self.source_history_ = {}
        if source_epochs:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed + 1)
                self.source_head_ = nn.Linear(width, n_out_s)
            self.source_history_ = self._trainer(seed, source_epochs).fit(
                _HeadTask(backbone, self.source_head_, SupervisedLoss(kind_s)),
                (Xs, torch.as_tensor(ys)))
        self._source_kind = kind_s
        before = self._source_score(backbone, source_validation)

        # Stage 2: a new head on the labelled target rows.
        Xl, yl = data.Xt[data.labeled], data.yt[data.labeled]
        (kind, n_out), yl = self._kind_and_targets(data, yl, fit_scale=False)
        self._kind = kind
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 2)
            head = nn.Linear(width, n_out)
            _reset_parameters(head)  # a second draw: kept so that seeded results stay put
        n_blocks = len(backbone.blocks)
        first = {"full": 0, "partial": min(int(self.n_frozen), n_blocks),
                 "feature_extraction": n_blocks}[self.strategy]
        features_only = first == n_blocks
        backbone.first_trainable = first
        for i, block in enumerate(backbone.blocks):
            block.requires_grad_(i >= first)
        X_fit, trained, trained_first = self._tensor(Xl), backbone, first
        if features_only:  # a frozen backbone: compute its features once
            X_fit = self._encode(backbone, X_fit)
        elif first:
            # Frozen blocks never change: run them once and train the rest on their outputs
            # (on a large pretrained CNN, most of each step's cost). Gradual unfreezing
            # only ever opens blocks from `first` up, so its schedule, counted from the top,
            # is the same on the remaining blocks.
            X_fit = self._encode(_Backbone(list(backbone.blocks[:first]), backbone.preprocess,
                                           flatten=False), X_fit)
            trained, trained_first = _Backbone(list(backbone.blocks[first:])), 0
        trained.freeze_bn = bool(self.freeze_batchnorm)
        task = _FineTuneTask(trained, head, SupervisedLoss(kind), trained_first,
                             bool(self.gradual_unfreezing), self.l2_sp, self.l2_head, self.lr,
                             self.layer_lr_decay, features_only)
        train, validation = self._split(X_fit, torch.as_tensor(yl), task, seed)
        self.probe_history_ = {}
        if int(self.linear_probe_epochs) and not features_only:
            # LP-FT: the head learns on the frozen features of the same training rows first.
            lr = self.lr if self.linear_probe_lr is None else float(self.linear_probe_lr)
            probe = _FineTuneTask(trained, head, SupervisedLoss(kind), 0, False, 0.0,
                                  self.l2_head, lr, None, True)
            self.probe_history_ = self._trainer(seed, int(self.linear_probe_epochs)).fit(
                probe, (self._encode(trained, train[0]), train[1]))
        extra = {"early_stopping": self.early_stopping, "monitor": "val_loss"} \
            if self.early_stopping else {}
        self.history_ = self._trainer(seed, self.epochs, **extra).fit(task, train, validation)
        backbone.first_trainable = 0
        backbone.requires_grad_(True)
        # Stored as plain modules (a Sequential of the blocks) so that a saved model rebuilds.
        self.backbone_ = nn.Sequential(*backbone.blocks).cpu().eval()
        self.preprocess_ = backbone.preprocess
        self.head_ = head.cpu().eval()
        after = self._source_score(backbone, source_validation)
        if before is not None:
            self.source_score_before_, self.source_score_after_ = before, after
            self.forgetting_ = before - after

    def _split(self, X: torch.Tensor, y: torch.Tensor, task: _FineTuneTask, seed: int):
        if not self.early_stopping:
            return (X, y), None
        n_val = int(round(self.validation_fraction * len(X)))
        if n_val < 1 or n_val >= len(X):
            raise InputError(f"early stopping holds out {self.validation_fraction:.0%} of the "
                             f"{len(X)} labelled target rows, which leaves no validation or no "
                             "training rows; label more target rows or set early_stopping=None.")
        order = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed))
        val, tr = order[:n_val], order[n_val:]
        Xv, yv = X[val], y[val]

        def validation() -> dict[str, float]:
            device = next(task.module.parameters()).device
            z = Xv.to(device) if task.features_only else task.backbone(Xv.to(device))
            return {"loss": float(task.sup(task.head(z), yv.to(device)))}

        return (X[tr], y[tr]), validation

    @torch.no_grad()
    def _encode(self, backbone: nn.Module, X: torch.Tensor, batch: int = 256) -> torch.Tensor:
        device = resolve_device(self.device)
        backbone.to(device).eval()
        out = [backbone(X[i:i + batch].to(device)).cpu() for i in range(0, len(X), batch)]
        return torch.cat(out) if out else X.new_zeros(0, 0)

    def _source_score(self, backbone: nn.Module, source_validation: Any) -> float | None:
        if source_validation is None or self.source_head_ is None:
            return None
        X, y = source_validation
        X = check_X(X, "source_validation X", n_features=self.n_features_in_)
        y = check_y(y, len(X), "source_validation y")
        with torch.no_grad():
            out = self.source_head_(self._encode(backbone, self._tensor(X)).to(
                next(self.source_head_.parameters()).device))
        if self._source_kind == "regression":
            pred = out.reshape(-1).double().numpy() * self.y_scale_ + self.y_mean_
            return float(1 - ((y - pred) ** 2).sum() / (((y - y.mean()) ** 2).sum() or 1.0))
        idx = SupervisedLoss(self._source_kind).probabilities(out).argmax(1).numpy()
        pred = self.classes_[idx] if getattr(self, "classes_", None) is not None else idx
        return float(np.mean(pred == y))

    # ------------------------------------------------------------------ predict
    @torch.no_grad()
    def _outputs(self, X: np.ndarray) -> torch.Tensor:
        return self.head_(self._encode(self._fitted_backbone(), self._tensor(X)))

    def _fitted_backbone(self) -> _Backbone:
        return _Backbone(list(self.backbone_), getattr(self, "preprocess_", None))

    def transform(self, X: Any) -> np.ndarray:
        """The fine-tuned backbone's features of ``X``."""
        X = self._tensor(self._check_predict_X(X))
        return self._encode(self._fitted_backbone(), X).numpy()

    def _predict_proba_raw(self, X: np.ndarray) -> np.ndarray:
        return SupervisedLoss(self._kind).probabilities(self._outputs(X)).numpy()

    def _predict_raw(self, X: np.ndarray) -> np.ndarray:
        if self._kind == "regression":
            return self._outputs(X).reshape(-1).double().numpy() * self.y_scale_ + self.y_mean_
        return self._predict_proba_raw(X).argmax(1)
