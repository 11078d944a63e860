"""Base class of the deep domain-adaptation estimators.

A deep method defines its networks (``_build``) and its loss (a :class:`TrainTask`); this
class does the rest once for all of them: validation, scaling, default networks sized
from the data, the supervised loss on labelled source and target rows (classification or
regression), the Trainer, and prediction through encoder and head.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._random import seed_from
from .._validation import CLASSIFICATION, DomainData, check_choice
from ..base import TransferEstimator
from ..errors import InputError, ParameterError
from .estimator import _reset_parameters, standard_scaling
from .networks import cnn_encoder, image_shape, mlp
from .trainer import Trainer, resolve_device


class SupervisedLoss:
    """Cross-entropy (binary or multi-class) or squared error on labelled rows.

    ``target_labels`` says whether any target row is labelled: when none is (the
    unsupervised setting), the per-batch search for labelled target rows is skipped.
    """

    def __init__(self, kind: str, target_labels: bool = True) -> None:
        self.kind = kind  # "binary", "multiclass" or "regression"
        self.target_labels = target_labels

    def __call__(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if y.numel() == 0:
            return out.sum() * 0.0
        if self.kind == "binary":
            return F.binary_cross_entropy_with_logits(out.reshape(-1), y.float())
        if self.kind == "multiclass":
            return F.cross_entropy(out, y.long())
        return F.mse_loss(out.reshape(-1), y.float())

    def probabilities(self, out: torch.Tensor) -> torch.Tensor:
        """Class probabilities, shape (n, n_classes), for conditioning (CDAN) or entropy."""
        if self.kind == "binary":
            p = torch.sigmoid(out.reshape(-1, 1))
            return torch.cat([1 - p, p], dim=1)
        return torch.softmax(out, dim=1)


class DeepAdaptation(TransferEstimator):
    """Shared machinery of the deep adaptation methods (not registered itself).

    Subclasses set their hyper-parameters in ``__init__`` (calling nothing) and implement
    ``_make_task(nets, loss) -> TrainTask``; they may override ``_build_extra(width)`` to
    add networks (a discriminator, a second head) to ``nets``.

    Common parameters
    -----------------
    encoder, head : torch.nn.Module or None
        Feature extractor and task head. ``None`` builds an MLP encoder with
        ``hidden_layer_sizes`` and a linear head sized from the labels; a given module is
        copied (and re-initialised from ``random_state`` unless ``reinit=False``).
        ``encoder="cnn"`` reads each row as a flattened square image (grey when the
        feature count is a square, RGB when it is three times one) and builds
        :func:`~transferkit.nn.networks.cnn_encoder` ending in
        ``hidden_layer_sizes[-1]`` features; other image shapes take
        ``encoder=cnn_encoder((C, H, W))``.
    standardize : bool, default=True
        Scale each input feature by its pooled source+target mean and std before the
        encoder; ``False`` feeds the raw inputs (per-feature scaling changes the geometry
        of a shift: a rotation becomes a shear).
    init : {"torch", "glorot"}, default="torch"
        Initialisation of every linear layer: torch's default, or Glorot-uniform weights
        with zero biases (the Keras default, which ADAPT's networks use).
    epochs, batch_size, lr, weight_decay, optimizer, device, verbose, random_state
        Passed to the :class:`~transferkit.nn.Trainer`.
    trainer_params : dict or None
        Further Trainer options (``early_stopping``, ``checkpoint_dir``, ``resume``,
        ``optimizer_params``, ...).
    """

    _backend = "torch"

    # ------------------------------------------------------------------ fit
    def _fit(self, data: DomainData, **fit_params: Any) -> None:
        check_choice("init", self.init, ("torch", "glorot"))
        self._fit_scaling(data)
        if data.task == CLASSIFICATION:
            n_classes = len(data.classes)
            kind = "binary" if n_classes == 2 else "multiclass"
            n_out = 1 if kind == "binary" else n_classes
            ys, yt = data.ys.astype(np.float32), data.yt.astype(np.float32)
            self.y_mean_, self.y_scale_ = 0.0, 1.0
        else:
            kind, n_out = "regression", 1
            self.y_mean_ = float(data.ys.mean())
            self.y_scale_ = float(data.ys.std()) or 1.0
            ys = ((data.ys - self.y_mean_) / self.y_scale_).astype(np.float32)
            yt = np.nan_to_num((data.yt - self.y_mean_) / self.y_scale_).astype(np.float32)
        self._kind = kind
        seed = seed_from(self.random_state)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.networks_ = self._build(data.Xt.shape[1], n_out)
        loss = SupervisedLoss(kind, target_labels=bool(np.any(data.labeled)))
        task = self._make_task(self.networks_, loss)
        trainer = Trainer(
            epochs=fit_params.pop("epochs", self.epochs),
            batch_size=fit_params.pop("batch_size", self.batch_size), optimizer=self.optimizer,
            lr=self.lr, weight_decay=self.weight_decay, device=self.device,
            progress=bool(fit_params.pop("verbose", self.verbose)), random_state=seed,
            **(self.trainer_params or {}))
        if fit_params:
            raise InputError(f"unknown fit parameters {sorted(fit_params)}; use epochs, "
                             "batch_size or verbose.")
        f32 = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)  # noqa: E731
        batches = {"source": (f32(self._scale_source(data.Xs)), f32(ys)),
                   "target": (f32(self._scale(data.Xt)), f32(yt),
                              torch.as_tensor(data.labeled))}
        self.history_ = trainer.fit(task, batches)
        self.networks_.cpu().eval()

    def _fit_scaling(self, data: DomainData) -> None:
        """Input scaling: pooled source+target mean and std (one encoder reads both)."""
        self.x_mean_, self.x_scale_ = standard_scaling(np.vstack([data.Xs, data.Xt]))

    def _build(self, n_in: int, n_out: int) -> nn.ModuleDict:
        nets = nn.ModuleDict()
        nets["encoder"] = self._make_encoder(self.encoder, n_in, "encoder")
        width = self._width(nets["encoder"], n_in)
        nets["head"] = nn.Linear(width, n_out) if self.head is None else self._copy(self.head)
        self._build_extra(nets, width, n_out)
        if self.init == "glorot":
            # Called while _fit seeds torch from random_state: reproducible.
            for m in nets.modules():
                if isinstance(m, nn.Linear):
                    nn.init.xavier_uniform_(m.weight)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
        return nets

    def _make_encoder(self, spec: nn.Module | str | None, n_in: int, name: str) -> nn.Module:
        """The encoder ``spec`` describes (None, "cnn" or a module) for ``n_in`` inputs."""
        if spec is None:
            return mlp(n_in, self.hidden_layer_sizes, None)
        if isinstance(spec, str):
            if spec != "cnn":
                raise ParameterError(f"{name} must be a torch.nn.Module, None or 'cnn'; got "
                                     f"{spec!r}.")
            try:
                shape = image_shape(n_in)
            except ValueError as exc:
                raise ParameterError(str(exc)) from None
            return cnn_encoder(shape, self.hidden_layer_sizes[-1:])
        return self._copy(spec)

    def _build_extra(self, nets: nn.ModuleDict, width: int, n_out: int) -> None:
        """Add method-specific networks (discriminators, second heads)."""

    def _copy(self, module: nn.Module) -> nn.Module:
        import copy

        m = copy.deepcopy(module)
        if getattr(self, "reinit", True):
            _reset_parameters(m)
        return m

    @staticmethod
    def _width(encoder: nn.Module, n_in: int) -> int:
        with torch.no_grad():
            return int(encoder(torch.zeros(2, n_in)).reshape(2, -1).shape[1])

    def _make_task(self, nets: nn.ModuleDict, loss: SupervisedLoss):  # pragma: no cover
        raise NotImplementedError

    # ------------------------------------------------------------------ predict
    def _scale(self, X: np.ndarray) -> np.ndarray:
        """Target-domain (prediction) inputs as the encoder reads them."""
        if not self.standardize:
            return np.asarray(X, dtype=np.float64)
        return (X - self.x_mean_) / self.x_scale_

    def _scale_source(self, X: np.ndarray) -> np.ndarray:
        """Source inputs as the encoder reads them (the same scaling by default)."""
        return self._scale(X)

    @torch.no_grad()
    def _outputs(self, X: np.ndarray, part: str = "head", source: bool = False) -> np.ndarray:
        """``part``'s outputs on rows ``X`` of the target (or, ``source``, the source)."""
        device = resolve_device(self.device)
        nets = self.networks_.to(device)
        scale = self._scale_source if source else self._scale
        encoder = nets["source_encoder" if source and "source_encoder" in nets else "encoder"]
        outs = []
        for start in range(0, len(X), 65536):
            xb = torch.as_tensor(scale(X[start:start + 65536]), dtype=torch.float32)
            z = encoder(xb.to(device))
            outs.append((z if part == "encoder" else nets[part](z)).cpu().numpy())
        nets.cpu()
        return np.concatenate(outs).reshape(len(X), -1)

    def transform(self, X: Any) -> np.ndarray:
        """The learned (domain-invariant) features of ``X``."""
        return self._outputs(self._check_predict_X(X), "encoder")

    def _predict_proba_raw(self, X: np.ndarray) -> np.ndarray:
        out = torch.as_tensor(self._outputs(X))
        return SupervisedLoss(self._kind).probabilities(out).numpy()

    def _predict_raw(self, X: np.ndarray) -> np.ndarray:
        if self._kind == "regression":
            return self._outputs(X).ravel() * self.y_scale_ + self.y_mean_
        return self._predict_proba_raw(X).argmax(1)


def encode_batch(batch: dict, nets: nn.ModuleDict, loss: SupervisedLoss,
                 head_on_target: bool = False, encoder: str = "encoder",
                 source_encoder: str | None = None
                 ) -> tuple[torch.Tensor, int, torch.Tensor, torch.Tensor]:
    """One encoder pass over a paired batch and the supervised loss every method shares.

    Returns ``(z, n_source, out, task)``: features of the source rows then the target
    rows, the number of source rows, the head's outputs (source rows only, or every row
    with ``head_on_target``) and the supervised loss on the source rows plus the labelled
    target rows. ``encoder`` names the network in ``nets`` to use; ``source_encoder``, if
    given, the one for the source rows (heterogeneous transfer: the domains have
    different inputs). One pass over the concatenated domains costs half the kernel
    launches of two, which dominates on small networks.
    """
    xs, ys = batch["source"]
    xt, yt, mask = batch["target"]
    n = len(xs)
    if source_encoder is None:
        z = nets[encoder](torch.cat([xs, xt]))
    else:
        z = torch.cat([nets[source_encoder](xs), nets[encoder](xt)])
    out = nets["head"](z if head_on_target else z[:n])
    task = loss(out[:n] if head_on_target else out, ys)
    if loss.target_labels and bool(mask.any()):  # labelled target rows join the loss
        out_t = out[n:][mask] if head_on_target else nets["head"](z[n:][mask])
        task = task + loss(out_t, yt[mask])
    return z, n, out, task


def labelled_target(batch: dict, nets: nn.ModuleDict, z_t: torch.Tensor, loss: SupervisedLoss
                    ) -> torch.Tensor:
    """Supervised loss on the labelled rows of a target batch (0 when there are none)."""
    _, yt, mask = batch["target"]
    if not (loss.target_labels and bool(mask.any())):
        return z_t.sum() * 0.0
    return loss(nets["head"](z_t[mask]), yt[mask])


HiddenSizes = Sequence[int]
